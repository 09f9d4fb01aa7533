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


@dataclass(frozen=True, slots=True)
class DivergedRange:
    """Stream bytes ``(fork_offset, last_offset]`` this node holds beyond a fork:
    ``data`` is exactly them when the backlog still holds them, else None (the shell
    saves the whole dataset instead)."""

    first_offset: int  # the first diverged byte (fork offset + 1); 0: unknown history
    last_offset: int  # the last diverged byte
    data: bytes | None


class Fencing:
    """Lease, epoch and freeze of one node (state only; the engine wires it)."""

    __slots__ = (
        "enabled",
        "epoch",
        "deadline_ms",
        "frozen",
        "fencing",
        "promotions",
        "awaiting_lease",
    )

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled  # ackdb-lease yes
        self.epoch = 0  # the highest failover epoch seen
        self.deadline_ms = 0  # CLOCK_MONOTONIC ms; writes allowed strictly before it
        self.frozen = False  # ACKDB.FREEZE, undone by REPLICAOF (or a lease on a primary)
        # Writes of a primary depend on the lease now: ``enabled or frozen``, kept as a
        # field because the command gate reads it on every write while it is gated.
        self.fencing = enabled
        # Promotions so far, and whether the last one still awaits its first lease (the
        # shell holds writes briefly meanwhile instead of refusing them: docs/fencing.md).
        self.promotions = 0
        self.awaiting_lease = False
        if enabled:  # a start under ackdb-lease: the first lease is awaited
            self.promotions, self.awaiting_lease = 1, True

    def set_enabled(self, enabled: bool) -> None:
        """CONFIG SET ackdb-lease (and the config file at start). Turned on with no lease
        yet, a primary awaits its first one as after a promotion (writes are held, not
        refused, while the node agent leases it: a database just created)."""
        if enabled and not self.enabled and self.deadline_ms == 0:
            self.promotions += 1
            self.awaiting_lease = True
        self.enabled = enabled
        self.fencing = enabled or self.frozen

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

    def lease(self, epoch_raw: bytes, deadline_raw: bytes, *, primary: bool) -> str | None:
        """ACKDB.LEASE <epoch> <deadline>: None when taken, else the error text. A
        lease also lifts a primary's freeze (the agent leases only the primary of a
        shard in state OK: the failover that froze it was aborted); a frozen replica
        stays frozen (only REPLICAOF reconnects it)."""
        epoch = self._epoch(epoch_raw)
        if isinstance(epoch, str):
            return epoch
        deadline = parse_ll(deadline_raw)
        if deadline is None or deadline < 0:
            return ERR_DEADLINE
        self.epoch = epoch
        self.deadline_ms = deadline
        self.awaiting_lease = False
        if primary:
            self.frozen = False
        self.fencing = self.enabled or self.frozen
        return None

    def freeze(self, epoch_raw: bytes) -> str | None:
        """ACKDB.FREEZE <epoch>: None when frozen (the lease is gone), else the error."""
        epoch = self._epoch(epoch_raw)
        if isinstance(epoch, str):
            return epoch
        self.epoch = epoch
        self.deadline_ms = 0
        self.frozen = self.fencing = True
        self.awaiting_lease = False
        return None

    def drop_lease(self) -> None:
        """A role change: no lease carries over; a REPLICAOF ends a freeze."""
        self.deadline_ms = 0
        self.frozen = False
        self.fencing = self.enabled
        self.awaiting_lease = False

    def promoted(self) -> None:
        """A promotion: fenced until the first lease (``drop_lease``), which is expected
        soon (the node agent leases a primary the metadata names at once)."""
        self.drop_lease()
        self.promotions += 1
        self.awaiting_lease = self.enabled


def diverged_range(
    state: ReplicationState, replid: str, offset: int, *, has_data: bool, own: bool = False
) -> DivergedRange | None:
    """What of our data a new primary's fork ``(replid, offset)`` lacks, or None.

    The fork says: the new primary holds history ``replid`` up to ``offset`` and went on
    under an id of its own. Three cases (docs/fencing.md):

    - ``replid`` is our id: we are still on that history; our bytes past ``offset``
      are ours alone (an old primary, or a replica that received more than the winner).
    - ``replid`` is our ``replid2``: we left that history at ``second_repl_offset - 1``
      (a promotion, a partial resync onto a new id, a restart). What we held of it past
      ``offset`` is ours alone; what came after we left it is on our new history, which
      is the new primary's when we are its replica or the winner itself. When we are a
      primary (``own``), our new history is our own (a primary restarted onto a new id
      acknowledged writes there): everything past ``offset`` is ours alone (found by the
      failover simulator: before, those writes were lost without a trace).
    - another id: when our history is known, our data descends from a later history (a
      replica that synced with the new primary since): nothing -- unless we are a
      primary, whose history the new primary never had: all of it. When it is unknown (a
      start without a saved history, no sync since) and we hold data, we cannot tell
      which of it is divergent: the whole dataset is (``first_offset`` 0, no bytes).
    """
    mine = state.master_repl_offset
    if replid == state.replid:
        fork, last = offset, mine
    elif replid == state.replid2 and state.second_repl_offset > 0:
        fork, last = offset, mine if own else state.second_repl_offset - 1
    elif (own or not state.history_known) and has_data:
        return DivergedRange(0, mine, None)
    else:
        return None
    if last <= fork:
        return None
    b = state.backlog
    covered = b is not None and b.first_byte_offset <= fork + 1 and last < b.end_offset
    data = b.read_from(fork + 1)[: last - fork] if covered and b is not None else None
    return DivergedRange(fork + 1, last, data)


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
