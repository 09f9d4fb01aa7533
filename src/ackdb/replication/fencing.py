"""Fencing of one shard server: the lease, the failover epoch, the frozen flag, and the
range of history that diverged from a new primary's (issue 15, docs/fencing.md).

Owns: ``ackdb-lease`` as the engine sees it, the last epoch seen (ACKDB.LEASE,
ACKDB.FREEZE), the lease's deadline in CLOCK_MONOTONIC milliseconds, whether the node is
frozen, and ``diverged_range``: which bytes of this node's stream a fork (replid, offset)
of a new primary does not hold. Never touches sockets, files or clocks: monotonic time
comes in as ``mono_ms``; the engine (``engine.py``) applies a freeze to the link.

States of a primary under ``ackdb-lease yes``: fenced (no lease, or the deadline passed;
writes get ``FENCED``) <-> leased (``mono_ms < deadline_ms``). A promotion and a demotion
drop the lease (``drop_lease``): a promoted node is fenced until its first ACKDB.LEASE.
``frozen`` (ACKDB.FREEZE) fences a primary whatever ``ackdb-lease`` says, until a lease
or the next REPLICAOF; on a replica the engine also stops the link from reconnecting.
"""

from __future__ import annotations

from dataclasses import dataclass

from .state import ReplicationState
from .util import parse_ll
from .wire import LinkProtocolError, LinkReader

# Stream commands that are not writes of the dataset: keep-alives and acknowledgement
# requests (PING, REPLCONF GETACK), db switches and transaction brackets. They are kept
# in a diverged file (the bytes are the stream's, exactly) but not counted.
NOT_COUNTED = frozenset({b"ping", b"replconf", b"select", b"multi", b"exec"})

ERR_EPOCH = "ERR invalid epoch"
ERR_DEADLINE = "ERR invalid deadline"
ERR_OFFSET = "ERR invalid offset"


@dataclass(frozen=True, slots=True)
class DivergedRange:
    """Stream bytes ``(fork_offset, last_offset]`` this node holds beyond a fork:
    ``data`` is exactly them when the backlog still holds them, else None (the shell
    saves the whole dataset instead)."""

    first_offset: int  # the first diverged byte (fork offset + 1)
    last_offset: int  # our own offset: the last diverged byte
    data: bytes | None


class Fencing:
    """Lease, epoch and freeze of one node (state only; the engine wires it)."""

    __slots__ = ("enabled", "epoch", "deadline_ms", "frozen")

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled  # ackdb-lease yes
        self.epoch = 0  # the highest failover epoch seen
        self.deadline_ms = 0  # CLOCK_MONOTONIC ms; writes allowed strictly before it
        self.frozen = False  # ACKDB.FREEZE, undone by REPLICAOF (or a lease on a primary)

    @property
    def fencing(self) -> bool:
        """Writes of a primary depend on the lease now (the command gate must check)."""
        return self.enabled or self.frozen

    def fenced(self, mono_ms: int) -> bool:
        """A primary's writes are refused at ``mono_ms`` (check ``fencing`` first)."""
        return mono_ms >= self.deadline_ms

    def remaining_ms(self, mono_ms: int) -> int:
        return max(0, self.deadline_ms - mono_ms)

    def check_epoch(self, raw: bytes) -> str | None:
        """The error text for a stale or malformed epoch argument, or None."""
        epoch = self._epoch(raw)
        return epoch if isinstance(epoch, str) else None

    def _epoch(self, raw: bytes) -> int | str:
        """The epoch argument, or the error text (stale or not a number)."""
        epoch = parse_ll(raw)
        if epoch is None or epoch < 0:
            return ERR_EPOCH
        if epoch < self.epoch:
            return f"ERR stale epoch {epoch} (current {self.epoch})"
        return epoch

    def lease(self, epoch_raw: bytes, deadline_raw: bytes) -> str | None:
        """ACKDB.LEASE <epoch> <deadline>: None when taken, else the error text. A
        lease also lifts a primary's freeze (the agent leases only the primary of a
        shard in state OK: the failover that froze it was aborted)."""
        epoch = self._epoch(epoch_raw)
        if isinstance(epoch, str):
            return epoch
        deadline = parse_ll(deadline_raw)
        if deadline is None or deadline < 0:
            return ERR_DEADLINE
        self.epoch = epoch
        self.deadline_ms = deadline
        self.frozen = False
        return None

    def freeze(self, epoch_raw: bytes) -> str | None:
        """ACKDB.FREEZE <epoch>: None when frozen (the lease is gone), else the error."""
        epoch = self._epoch(epoch_raw)
        if isinstance(epoch, str):
            return epoch
        self.epoch = epoch
        self.deadline_ms = 0
        self.frozen = True
        return None

    def drop_lease(self) -> None:
        """A role change: no lease carries over; a REPLICAOF ends a freeze."""
        self.deadline_ms = 0
        self.frozen = False


def diverged_range(state: ReplicationState, replid: str, offset: int) -> DivergedRange | None:
    """What of our history a fork ``(replid, offset)`` lacks, or None when nothing.

    The fork is on our history when ``replid`` is our id, or our ``replid2`` and the
    fork lies in the shared part (offsets below ``second_repl_offset``); past that
    point our history left it, so what we hold beyond ``second_repl_offset - 1`` is
    ours alone. A fork of another history tells nothing about our bytes: None (the
    caller logs it). Redis's PSYNC uses the same test (``psync.decide``).
    """
    if replid == state.replid:
        fork = offset
    elif replid == state.replid2 and state.second_repl_offset > 0:
        fork = min(offset, state.second_repl_offset - 1)
    else:
        return None
    own = state.master_repl_offset
    if own <= fork:
        return None
    b = state.backlog
    covered = b is not None and b.contains(fork + 1) and b.end_offset == own + 1
    data = b.read_from(fork + 1) if covered and b is not None else None
    return DivergedRange(fork + 1, own, data)


def count_commands(data: bytes) -> int | None:
    """The writes in a stretch of the stream (``NOT_COUNTED`` skipped), or None when
    the bytes do not parse as whole RESP commands (never expected: the backlog holds
    exactly the stream, and a fork offset is a command boundary of both histories)."""
    reader = LinkReader()
    reader.feed(data)
    n = 0
    try:
        while (argv := reader.next_command()) is not None:
            if argv[0].lower() not in NOT_COUNTED:
                n += 1
    except LinkProtocolError:
        return None
    return n if reader.command_end == len(data) else None
