"""The PSYNC decision: continue a replica's history from the backlog, or resync fully.

Owns: parsing ``PSYNC <replid> <offset> [FAILOVER]`` and the pure rule that decides
between ``Continue`` and ``FullResync``, with the statistics it implies. Never touches
sockets or the keyspace; never changes the ``ReplicationState`` (the caller does, e.g.
creating the backlog or promoting itself for ``PSYNC ... FAILOVER``).

The rule (notes: "When a partial resync is allowed"; Redis masterTryPartialResynchronization):
(a) the requested id is our ``replid``, or our ``replid2`` with offset <=
``second_repl_offset``; and (b) ``first_byte_offset <= offset <= first_byte_offset +
histlen`` -- asking for exactly the next byte is allowed and sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .state import ReplicationState
from .util import parse_ll

ERR_NOT_INTEGER = "ERR value is not an integer or out of range"
ERR_FAILOVER_REPLID = "ERR PSYNC FAILOVER replid must match my replid."


@dataclass(frozen=True, slots=True)
class PsyncRequest:
    replid: str
    offset: int
    failover: bool


@dataclass(frozen=True, slots=True)
class PsyncError:
    """The PSYNC cannot be served; ``message`` is the error text (no leading '-')."""

    message: str


@dataclass(frozen=True, slots=True)
class Continue:
    """Partial resync: reply ``+CONTINUE <replid>`` and send the backlog from ``from_offset``."""

    replid: str
    from_offset: int


@dataclass(frozen=True, slots=True)
class FullResync:
    """Full resync. ``offset`` is the stream offset now; ``partial_err`` says whether the
    replica had asked for a partial resync (``sync_partial_err`` is bumped then)."""

    replid: str
    offset: int
    partial_err: bool
    reason: str


Decision = Continue | FullResync


def parse_psync(argv: list[bytes]) -> PsyncRequest | PsyncError:
    """``PSYNC replid offset [FAILOVER]`` (argv[0] is the command name)."""
    assert len(argv) >= 3, "the command table enforces PSYNC's arity (-3)"
    offset = parse_ll(argv[2])
    if offset is None:
        return PsyncError(ERR_NOT_INTEGER)
    failover = len(argv) > 3 and argv[3].lower() == b"failover"
    return PsyncRequest(argv[1].decode("latin-1"), offset, failover)


def decide(state: ReplicationState, replid: str, offset: int) -> Decision:
    """Continue or full resync for a replica asking for ``replid`` from ``offset``."""
    asked_partial = replid != "?"
    if replid.lower() == state.replid:
        pass
    elif replid.lower() == state.replid2 and state.second_repl_offset >= 0:
        if offset > state.second_repl_offset:
            # notes: replid2 is only valid up to second_repl_offset.
            return _full(state, asked_partial, "offset beyond the shared history")
    else:
        reason = "full resync requested" if not asked_partial else "replication id mismatch"
        return _full(state, asked_partial, reason)
    b = state.backlog
    if b is None or not b.contains(offset):
        return _full(state, asked_partial, "offset outside the backlog")
    return Continue(state.replid, offset)


def _full(state: ReplicationState, asked_partial: bool, reason: str) -> FullResync:
    return FullResync(state.replid, state.master_repl_offset, asked_partial, reason)


@dataclass(slots=True)
class SyncStats:
    """INFO stats: sync_full, sync_partial_ok, sync_partial_err."""

    sync_full: int = 0
    sync_partial_ok: int = 0
    sync_partial_err: int = 0

    def record(self, decision: Decision) -> None:
        if isinstance(decision, Continue):
            self.sync_partial_ok += 1
            return
        self.sync_full += 1
        if decision.partial_err:
            # notes: sync_partial_err is not bumped for "PSYNC ? -1".
            self.sync_partial_err += 1
