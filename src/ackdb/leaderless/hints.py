"""Hinted handoff: writes a coordinator keeps for a replica it could not reach.

Owns: one bounded queue per replica of (key -> merged record, first-stored time), the
three limits (``hint_bytes_max``, ``hint_count_max``, ``hint_age_ms_max``, per replica;
a database's settings, cluster/databases.py, defaults 64 MiB, 100 000 and 3 h),
coalescing (two hints for one key merge into one, so a hot key costs one entry), and
throttled replay (``replay_batch_max`` hints per call). Never sends: the shell sends what
``take`` returns as ``LL.APPLY`` and calls ``delivered`` or ``put`` back on failure.

A hint that does not fit, or grows older than ``hint_age_ms_max``, is dropped and
counted (``dropped``): the write is then only carried to that replica by read repair or
anti-entropy, which is also why dropping is safe -- the replicas that acknowledged it
still hold it. Replay is idempotent (a replica merges, applying only what is newer).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ..cluster.databases import (
    HINT_AGE_MS_MAX_DEFAULT,
    HINT_BYTES_MAX_DEFAULT,
    HINT_COUNT_MAX_DEFAULT,
)
from ..keyspace import lww
from ..keyspace.lww import Record

__all__ = [
    "HINT_AGE_MS_MAX_DEFAULT",
    "HINT_BYTES_MAX_DEFAULT",
    "HINT_COUNT_MAX_DEFAULT",
    "REPLAY_BATCH_MAX_DEFAULT",
    "HintQueue",
]
REPLAY_BATCH_MAX_DEFAULT = 128


@dataclass(slots=True)
class _Hint:
    record: Record
    stored_ms: int
    size_bytes: int


@dataclass(slots=True)
class HintQueue:
    """The hints for one replica (see the module docstring)."""

    hint_bytes_max: int = HINT_BYTES_MAX_DEFAULT
    hint_count_max: int = HINT_COUNT_MAX_DEFAULT
    hint_age_ms_max: int = HINT_AGE_MS_MAX_DEFAULT
    replay_batch_max: int = REPLAY_BATCH_MAX_DEFAULT
    size_bytes: int = 0
    dropped: int = 0
    _hints: OrderedDict[bytes, _Hint] = field(default_factory=OrderedDict)

    def __len__(self) -> int:
        return len(self._hints)

    def put(self, key: bytes, record: Record, now_ms: int) -> bool:
        """Keep ``record`` for ``key``; False (and counted) when a limit refuses it."""
        old = self._hints.get(key)
        if old is not None:
            merged = lww.merge(old.record, record)
            size = len(key) + len(lww.encode(merged))
            if self.size_bytes - old.size_bytes + size > self.hint_bytes_max:
                self.dropped += 1
                return False
            self.size_bytes += size - old.size_bytes
            old.record, old.size_bytes = merged, size
            return True
        size = len(key) + len(lww.encode(record))
        if len(self._hints) >= self.hint_count_max or self.size_bytes + size > self.hint_bytes_max:
            self.dropped += 1
            return False
        self._hints[key] = _Hint(record.copy(), now_ms, size)
        self.size_bytes += size
        return True

    def expire(self, now_ms: int) -> int:
        """Drop hints older than ``hint_age_ms_max``; returns how many went."""
        gone = 0
        while self._hints:
            key, h = next(iter(self._hints.items()))
            if now_ms - h.stored_ms <= self.hint_age_ms_max:
                break
            del self._hints[key]
            self.size_bytes -= h.size_bytes
            gone += 1
        self.dropped += gone
        return gone

    def take(self, now_ms: int) -> list[tuple[bytes, Record]]:
        """The next batch to replay (oldest first), removed from the queue; hand any
        that fail back with ``put_back`` (or ``put``, which restarts their age)."""
        return [(key, rec) for key, rec, _ in self.take_timed(now_ms)]

    def take_timed(self, now_ms: int) -> list[tuple[bytes, Record, int]]:
        """``take`` with each hint's first-stored time, for ``put_back``. Never hands
        out a hint older than ``hint_age_ms_max``, whatever the queue's order: the
        tombstone grace (tombstones.py) counts on no older hint ever landing."""
        self.expire(now_ms)
        out: list[tuple[bytes, Record, int]] = []
        while self._hints and len(out) < self.replay_batch_max:
            key, h = self._hints.popitem(last=False)
            self.size_bytes -= h.size_bytes
            if now_ms - h.stored_ms > self.hint_age_ms_max:
                self.dropped += 1
                continue
            out.append((key, h.record, h.stored_ms))
        return out

    def put_back(self, key: bytes, record: Record, stored_ms: int) -> bool:
        """Hand back a hint that failed to replay, keeping its first-stored time (a
        failed replay must not make a hint young again), at the front of the queue."""
        if not self.put(key, record, stored_ms):
            return False
        h = self._hints[key]
        h.stored_ms = min(h.stored_ms, stored_ms)
        self._hints.move_to_end(key, last=False)
        return True

    def oldest_ms(self) -> int | None:
        if not self._hints:
            return None
        return next(iter(self._hints.values())).stored_ms
