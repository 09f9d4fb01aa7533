"""Per-request state machines of a leaderless coordinator: writes, reads, scans.

Owns: whom one request asks, when it has enough answers for its level, what it replies
(with a receipt: who acknowledged or answered, the version, whether a repair ran), which
replicas it repairs and which writes become hints. Never sends, waits or reads a clock:
the shell feeds replies (``on_*``) and time (``tick``) and carries out the returned
actions -- ``SendApply`` is ``LL.APPLY key <record>`` on the replica (merge: applies only
what is newer, so it is idempotent and a repair can never clobber a newer write),
``SendRead`` is ``LL.GET`` / ``LL.DIGEST``, ``SendRange`` is ``LL.RANGE`` (the actions
are in ``actions.py``; scans in ``scans.py``).

States of a write: sent -> (level reached: replied) -> every replica answered or timed
out. A write that misses its level is answered with ``LevelError`` saying how many
replicas applied it; it is **not rolled back** (the replicas that applied keep it and
repair / anti-entropy spread it), so the error means "outcome stands where applied".
Replicas that fail or do not answer by the deadline get a ``StoreHint``.

States of a read: first round (one full read, digests from the rest of the level) ->
(digests differ) full reads from the disagreeing replicas -> (stale participants)
blocking repair -> reply. The reply waits for the repair, so two successive QUORUM reads
never go back in time (Cassandra 4.0's blocking read repair).
"""

from __future__ import annotations

from collections import OrderedDict

from ..keyspace import lww
from ..keyspace.lww import Record, Version
from .actions import (
    Action,
    ConflictError,
    Done,
    LevelError,
    Receipt,
    SendApply,
    SendRange,
    SendRead,
    StoreHint,
)
from .deletes import DeletionStrategy, conflict, winning_delete
from .levels import Level, required
from .scans import ScanRequest

__all__ = [
    "Action",
    "ConflictError",
    "Done",
    "LevelError",
    "ReadRequest",
    "Receipt",
    "RequestIds",
    "ScanRequest",
    "SendApply",
    "SendRange",
    "SendRead",
    "StoreHint",
    "WriteRequest",
]


class WriteRequest:
    """One write: to every replica; done when ``level`` of them applied it."""

    def __init__(
        self,
        key: bytes,
        record: Record,
        replicas: tuple[int, ...],
        level: Level,
        deadline_ms: int,
    ) -> None:
        assert replicas and len(set(replicas)) == len(replicas)
        self.key, self.record, self.replicas, self.level = key, record, replicas, level
        self.deadline_ms = deadline_ms
        self.need = required(level, len(replicas))
        self.acked: list[int] = []
        self.failed: list[int] = []
        self.replied = False

    @property
    def finished(self) -> bool:
        return len(self.acked) + len(self.failed) == len(self.replicas)

    def start(self) -> list[Action]:
        return [SendApply(r, self.key, self.record) for r in self.replicas]

    def _pending(self, replica: int) -> bool:
        return replica in self.replicas and replica not in self.acked + self.failed

    def on_ack(self, replica: int) -> list[Action]:
        if not self._pending(replica):
            return []
        self.acked.append(replica)
        if not self.replied and len(self.acked) >= self.need:
            self.replied = True
            return [Done(self._receipt())]
        return self._maybe_fail()

    def on_failure(self, replica: int, hint: bool = True) -> list[Action]:
        """``hint=False``: the replica refused the write for good (its version is too far
        ahead of the replica's clock); a hint would land it later, after the client was
        told it failed, so none is kept."""
        if not self._pending(replica):
            return []
        self.failed.append(replica)
        keep: list[Action] = [StoreHint(replica, self.key, self.record)] if hint else []
        return [*keep, *self._maybe_fail()]

    def tick(self, now_ms: int) -> list[Action]:
        if now_ms < self.deadline_ms or self.finished:
            return []
        late = [r for r in self.replicas if self._pending(r)]
        out: list[Action] = []
        for r in late:
            out += self.on_failure(r)
        return out

    def _maybe_fail(self) -> list[Action]:
        """The error once the level is out of reach *and* every replica answered (or the
        deadline passed): the error then says how many replicas applied the write."""
        if self.replied or len(self.replicas) - len(self.failed) >= self.need:
            return []
        if not self.finished:
            return []
        self.replied = True
        err = LevelError("write", self.level, self.need, len(self.acked), len(self.replicas))
        return [Done(self._receipt(), error=err)]

    def _receipt(self) -> Receipt:
        return Receipt(tuple(self.acked), self.record.newest())


class ReadRequest:
    """One point read at ``level``; replicas[0] is asked for the full record first.
    ``strategy`` decides delete/update conflicts (``deletes.py``); ``stamp`` is the
    version the coordinator stamped for this read (DeleteOnConflict's tombstone)."""

    def __init__(
        self,
        key: bytes,
        replicas: tuple[int, ...],
        level: Level,
        deadline_ms: int,
        strategy: DeletionStrategy = DeletionStrategy.TIME_BASED_RESOLUTION,
        stamp: Version = lww.ZERO,
    ) -> None:
        assert replicas and len(set(replicas)) == len(replicas)
        self.key, self.replicas, self.level = key, replicas, level
        self.strategy, self.stamp = strategy, stamp
        self.deadline_ms = deadline_ms
        self.need = required(level, len(replicas))
        self.records: dict[int, Record | None] = {}
        self.digests: dict[int, bytes] = {}
        self.asked: dict[int, bool] = {}  # replica -> full?
        self.failed: list[int] = []
        self.repairs: dict[int, bool] = {}  # replica -> acknowledged?
        self.merged: Record | None = None
        self.replied = False

    def start(self) -> list[Action]:
        out: list[Action] = [self._ask(self.replicas[0], True)]
        out += [self._ask(r, False) for r in self.replicas[1 : self.need]]
        return out

    def _ask(self, replica: int, full: bool) -> SendRead:
        self.asked[replica] = full
        return SendRead(replica, self.key, full)

    def on_record(self, replica: int, record: Record | None) -> list[Action]:
        if self.replied or self.asked.get(replica) is not True or replica in self.records:
            return []
        self.records[replica] = record
        return self._advance()

    def on_digest(self, replica: int, digest: bytes) -> list[Action]:
        if self.replied or self.asked.get(replica) is not False or replica in self.digests:
            return []
        self.digests[replica] = digest
        return self._advance()

    def on_repaired(self, replica: int) -> list[Action]:
        if self.replied or self.repairs.get(replica) is not False:
            return []
        self.repairs[replica] = True
        return self._advance()

    def on_failure(self, replica: int) -> list[Action]:
        if self.replied or replica not in self.asked or replica in self.failed:
            return []
        self.failed.append(replica)
        self.records.pop(replica, None)
        self.digests.pop(replica, None)
        self.repairs.pop(replica, None)
        spare = [r for r in self.replicas if r not in self.asked]
        if spare and self.merged is None:
            full = not any(v for r, v in self.asked.items() if r not in self.failed)
            return [self._ask(spare[0], full)]
        return self._advance()

    def tick(self, now_ms: int) -> list[Action]:
        if self.replied or now_ms < self.deadline_ms:
            return []
        return self._fail(self._holding())

    def _live(self) -> list[int]:
        return [r for r in self.asked if r not in self.failed]

    def _advance(self) -> list[Action]:
        if self.merged is not None:
            if not all(self.repairs.values()):
                return []  # repairs still running
            holding = self._holding()
            return self._reply() if holding >= self.need else self._fail(holding)
        live = self._live()
        if len(live) < self.need:
            return self._fail(len(self.records) + len(self.digests))
        return self._compare(live)

    def _compare(self, live: list[int]) -> list[Action]:
        if any(r not in self.records and r not in self.digests for r in live):
            return []  # answers still missing
        if not self.records:
            return []  # only digests so far: a full read was re-asked of a spare
        base = next(iter(self.records.values()))
        want = lww.digest(base) if base is not None else b""
        differ = [r for r, d in self.digests.items() if d != want]
        if differ:
            for r in differ:  # the digest round is over for these: read them in full
                del self.digests[r]
            return [self._ask(r, True) for r in differ]
        merged = Record()
        for rec in self.records.values():
            if rec is not None:
                lww.merge_into(merged, rec)
        if self.strategy is not DeletionStrategy.TIME_BASED_RESOLUTION and conflict(
            self.records.values()
        ):
            if self.strategy is DeletionStrategy.NO_AUTOMATED_RESOLUTION:
                self.replied = True
                receipt = Receipt(tuple(self._live()), merged.newest())
                return [Done(receipt, error=ConflictError(self.key))]
            merged = winning_delete(merged, self.stamp)
        self.merged = merged
        stale = [r for r, rec in self.records.items() if (rec or Record()) != merged]
        if not stale:
            return self._reply()
        out: list[Action] = []
        for r in stale:
            self.repairs[r] = False
            out.append(SendApply(r, self.key, merged, repair=True))
        return out

    def _holding(self) -> int:
        """Participants known to hold the merged record now."""
        if self.merged is None:
            return 0
        fresh = [r for r, rec in self.records.items() if r not in self.repairs]
        fresh += [r for r in self.digests]
        return len(fresh) + sum(1 for ok in self.repairs.values() if ok)

    def _reply(self) -> list[Action]:
        self.replied = True
        merged = self.merged
        rec = None if merged is None or merged == Record() else merged
        answered = tuple(r for r in self._live())
        version = rec.newest() if rec is not None else lww.ZERO
        repaired = tuple(r for r, ok in self.repairs.items() if ok)
        return [Done(Receipt(answered, version, repaired), record=rec)]

    def _fail(self, reached: int) -> list[Action]:
        if self.replied:
            return []
        self.replied = True
        err = LevelError("read", self.level, self.need, reached, len(self.replicas))
        return [Done(Receipt(tuple(self._live()), lww.ZERO), error=err)]


class RequestIds:
    """Client request ids -> the version their write was given, so a retried write is
    re-sent with its first version and the replicas' merge applies it once. Bounded
    (``ids_max`` entries, least recently used dropped)."""

    def __init__(self, ids_max: int = 100_000) -> None:
        self.ids_max = ids_max
        self._ids: OrderedDict[bytes, Version] = OrderedDict()

    def version_for(self, request_id: bytes, fresh: Version) -> Version:
        """The version of an earlier write with this id, or ``fresh`` (remembered)."""
        v = self._ids.get(request_id)
        if v is not None:
            self._ids.move_to_end(request_id)
            return v
        self._ids[request_id] = fresh
        if len(self._ids) > self.ids_max:
            self._ids.popitem(last=False)
        return fresh
