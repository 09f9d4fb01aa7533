"""WAIT and WAITAOF: argument checks, the immediate answer, and clients parked until
enough replicas (and the local AOF) reach their last write.

Owns: the parked clients (target offset, counts wanted, ``deadline_ms``), the decision to
answer them, and the ``needs_getack`` flag (one ``REPLCONF GETACK *`` per loop iteration
for all waiters). Never touches sockets or clocks; the acknowledgement counts come from an
``AckCounter`` (the ``ReplicaTable``), the local fsynced offset from the shell.

States of a client here: absent, or parked until one of: its counts are reached (reply the
counts), its deadline passes (reply the counts reached so far), the node is demoted
(``-UNBLOCKED``, then closed), AOF is switched off while it waits for the local fsync
(the WAITAOF error), or it disconnects (``cancel``).

Redis order of checks (replication.c): WAIT checks the role first, then its arguments;
WAITAOF checks its arguments first, then the role, then numlocal against AOF.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .actions import ReplyToClient
from .util import INT64_MAX, error_reply, integer_reply, parse_ll

ERR_WAIT_REPLICA = (
    "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 "
    "if a replica is configured to be writable (which is not the default) writes to replicas "
    "are just local and are not propagated."
)
ERR_WAITAOF_REPLICA = (
    "ERR WAITAOF cannot be used with replica instances. Please also note that writes to "
    "replicas are just local and are not propagated."
)
ERR_WAITAOF_NO_AOF = "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
ERR_NOT_INTEGER = "ERR value is not an integer or out of range"
ERR_NUMLOCAL_RANGE = "ERR value is out of range, value must between 0 and 1"
ERR_NOT_POSITIVE = "ERR value is out of range, must be positive"
ERR_TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
ERR_TIMEOUT_NEGATIVE = "ERR timeout is negative"
ERR_TIMEOUT_RANGE = "ERR timeout is out of range"
UNBLOCKED = (
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"
)


class AckCounter(Protocol):
    def count_acked(self, offset: int) -> int: ...

    def count_facked(self, offset: int) -> int: ...


@dataclass(slots=True)
class _Waiter:
    client: int
    is_aof: bool
    target: int
    numreplicas: int
    numlocal: int
    deadline_ms: int  # 0: wait forever


def parse_timeout_ms(arg: bytes, now_ms: int) -> int | str:
    """Redis getTimeoutFromObjectOrReply (ms): the deadline (0 = none) or an error."""
    t = parse_ll(arg)
    if t is None:
        return ERR_TIMEOUT_NOT_INTEGER
    if t < 0:
        return ERR_TIMEOUT_NEGATIVE
    if t == 0:
        return 0
    if t > INT64_MAX - now_ms:
        return ERR_TIMEOUT_RANGE
    return now_ms + t


def _waitaof_reply(local: int, replicas: int) -> bytes:
    return b"*2\r\n:%d\r\n:%d\r\n" % (local, replicas)


class Waiters:
    """Clients parked in WAIT / WAITAOF, in arrival order."""

    def __init__(self) -> None:
        self._parked: dict[int, _Waiter] = {}
        self.needs_getack = False

    def __len__(self) -> int:
        return len(self._parked)

    def count_with_deadline(self) -> int:
        """Parked clients that have a timeout (INFO clients_in_timeout_table)."""
        return sum(1 for w in self._parked.values() if w.deadline_ms)

    def __contains__(self, client: object) -> bool:
        return client in self._parked

    # -- commands ---------------------------------------------------------------------

    def wait(
        self,
        client: int,
        argv: list[bytes],
        *,
        target_offset: int,
        now_ms: int,
        is_replica: bool,
        can_block: bool,
        acks: AckCounter,
    ) -> bytes | None:
        """WAIT numreplicas timeout. Returns the reply, or None when the client is parked.

        ``target_offset`` is the stream offset after the client's last write (0: it never
        wrote). ``can_block`` is False inside MULTI/EXEC and scripts.
        """
        assert len(argv) == 3, "the command table enforces WAIT's arity"
        if is_replica:
            return error_reply(ERR_WAIT_REPLICA)  # Redis checks the role first for WAIT.
        numreplicas = parse_ll(argv[1])
        if numreplicas is None:
            return error_reply(ERR_NOT_INTEGER)
        deadline = parse_timeout_ms(argv[2], now_ms)
        if isinstance(deadline, str):
            return error_reply(deadline)
        count = acks.count_acked(target_offset)
        # notes: a client that never wrote gets the current count at once; inside MULTI
        # or a script WAIT never blocks.
        if count >= numreplicas or not can_block or target_offset <= 0:
            return integer_reply(count)
        self._park(_Waiter(client, False, target_offset, numreplicas, 0, deadline))
        return None

    def waitaof(
        self,
        client: int,
        argv: list[bytes],
        *,
        target_offset: int,
        now_ms: int,
        is_replica: bool,
        can_block: bool,
        acks: AckCounter,
        aof_enabled: bool,
        fsynced_offset: int,
    ) -> bytes | None:
        """WAITAOF numlocal numreplicas timeout. The reply is always [local, replicas]."""
        assert len(argv) == 4, "the command table enforces WAITAOF's arity"
        numlocal = parse_ll(argv[1])
        if numlocal is None:
            return error_reply(ERR_NOT_INTEGER)
        if not 0 <= numlocal <= 1:
            return error_reply(ERR_NUMLOCAL_RANGE)
        numreplicas = parse_ll(argv[2])
        if numreplicas is None:
            return error_reply(ERR_NOT_INTEGER)
        if numreplicas < 0:
            return error_reply(ERR_NOT_POSITIVE)
        deadline = parse_timeout_ms(argv[3], now_ms)
        if isinstance(deadline, str):
            return error_reply(deadline)
        # notes: arguments are checked before the role.
        if is_replica:
            return error_reply(ERR_WAITAOF_REPLICA)
        if numlocal and not aof_enabled:
            return error_reply(ERR_WAITAOF_NO_AOF)
        local = 1 if fsynced_offset >= target_offset else 0
        replicas = acks.count_facked(target_offset)
        done = local >= numlocal and replicas >= numreplicas
        if done or not can_block or target_offset <= 0:
            return _waitaof_reply(local, replicas)
        self._park(_Waiter(client, True, target_offset, numreplicas, numlocal, deadline))
        return None

    def _park(self, w: _Waiter) -> None:
        assert w.client not in self._parked, "a blocked client sends no further command"
        self._parked[w.client] = w
        # notes: one GETACK per loop iteration, batched for all waiters.
        self.needs_getack = True

    # -- events -----------------------------------------------------------------------

    def process(
        self, now_ms: int, acks: AckCounter, *, fsynced_offset: int, aof_enabled: bool
    ) -> list[ReplyToClient]:
        """Answer every parked client whose counts are reached or whose deadline passed."""
        out: list[ReplyToClient] = []
        for w in list(self._parked.values()):
            reply = self._answer(w, now_ms, acks, fsynced_offset, aof_enabled)
            if reply is not None:
                del self._parked[w.client]
                out.append(ReplyToClient(w.client, reply))
        return out

    def _answer(
        self, w: _Waiter, now_ms: int, acks: AckCounter, fsynced: int, aof_enabled: bool
    ) -> bytes | None:
        expired = w.deadline_ms != 0 and w.deadline_ms <= now_ms
        if not w.is_aof:
            count = acks.count_acked(w.target)
            return integer_reply(count) if count >= w.numreplicas or expired else None
        if w.numlocal and not aof_enabled:
            # notes: also sent to waiters if AOF is switched off while they wait.
            return error_reply(ERR_WAITAOF_NO_AOF)
        local = 1 if fsynced >= w.target else 0
        replicas = acks.count_facked(w.target)
        if (local >= w.numlocal and replicas >= w.numreplicas) or expired:
            return _waitaof_reply(local, replicas)
        return None

    def unblock(
        self,
        client: int,
        now_ms: int,
        acks: AckCounter,
        *,
        fsynced_offset: int,
        aof_enabled: bool,
        error: bool,
    ) -> bytes | None:
        """CLIENT UNBLOCK: the parked client's reply now -- what its timeout would give,
        or the UNBLOCKED error -- or None when it is not parked here."""
        w = self._parked.pop(client, None)
        if w is None:
            return None
        if error:
            return error_reply("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        w.deadline_ms = now_ms  # answered as if its time had run out
        reply = self._answer(w, now_ms, acks, fsynced_offset, aof_enabled)
        assert reply is not None
        return reply

    def cancel(self, client: int) -> None:
        """The client disconnected (or was unblocked by CLIENT UNBLOCK)."""
        self._parked.pop(client, None)

    def unblock_all(self) -> list[ReplyToClient]:
        """The node was demoted: every waiter gets -UNBLOCKED and is closed."""
        out = [ReplyToClient(c, error_reply(UNBLOCKED), close=True) for c in self._parked]
        self._parked.clear()
        self.needs_getack = False
        return out

    def take_getack(self, writes_paused: bool) -> bool:
        """True once per loop iteration when waiters want a GETACK sent.

        notes: never while writes are paused (the GETACK would move the offset; FAILOVER
        waits for a replica to match it exactly); the request stays pending until then.
        """
        if not self.needs_getack or writes_paused:
            return False
        self.needs_getack = False
        return True

    def next_deadline_ms(self) -> int | None:
        deadlines = [w.deadline_ms for w in self._parked.values() if w.deadline_ms]
        return min(deadlines) if deadlines else None
