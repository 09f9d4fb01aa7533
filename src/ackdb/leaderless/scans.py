"""SCAN / KEYS / DBSIZE of a leaderless database at the requested level.

Owns: ``ScanRequest``, the state machine of one page: the records of hash-tree leaves
[lo, hi) (``LL.RANGE``) from as many replicas as the level needs, merged per key (newest
wins), tombstones hidden; stale participants repaired without holding the reply. The
cursor is a leaf index, the same on every replica. Sans-IO, like ``coordinator.py``.
"""

from __future__ import annotations

from ..keyspace import lww
from ..keyspace.lww import Record
from .actions import Action, Done, LevelError, Receipt, SendApply, SendRange
from .levels import Level, required


class ScanRequest:
    """SCAN / KEYS / DBSIZE at a level: the records of leaves [lo, hi) from ``need``
    replicas, merged per key (newest wins), tombstones hidden. Stale participants are
    repaired without holding the reply (anti-entropy is the backstop)."""

    def __init__(
        self,
        replicas: tuple[int, ...],
        level: Level,
        depth: int,
        lo: int,
        hi: int,
        deadline_ms: int,
    ) -> None:
        self.replicas, self.level, self.depth, self.lo, self.hi = replicas, level, depth, lo, hi
        self.deadline_ms = deadline_ms
        self.need = required(level, len(replicas))
        self.asked: list[int] = []
        self.failed: list[int] = []
        self.pages: dict[int, dict[bytes, Record]] = {}
        self.replied = False

    def start(self) -> list[Action]:
        return [self._ask(r) for r in self.replicas[: self.need]]

    def _ask(self, replica: int) -> SendRange:
        self.asked.append(replica)
        return SendRange(replica, self.depth, self.lo, self.hi)

    def on_range(self, replica: int, items: dict[bytes, Record]) -> list[Action]:
        if self.replied or replica not in self.asked or replica in self.pages:
            return []
        self.pages[replica] = items
        if len(self.pages) < self.need:
            return []
        return self._finish()

    def on_failure(self, replica: int) -> list[Action]:
        if self.replied or replica not in self.asked or replica in self.failed:
            return []
        self.failed.append(replica)
        self.pages.pop(replica, None)
        spare = [r for r in self.replicas if r not in self.asked]
        if spare:
            return [self._ask(spare[0])]
        return self._fail()

    def tick(self, now_ms: int) -> list[Action]:
        return self._fail() if not self.replied and now_ms >= self.deadline_ms else []

    def _fail(self) -> list[Action]:
        self.replied = True
        err = LevelError("scan", self.level, self.need, len(self.pages), len(self.replicas))
        return [Done(Receipt(tuple(self.pages), lww.ZERO), error=err)]

    def _finish(self) -> list[Action]:
        self.replied = True
        merged: dict[bytes, Record] = {}
        for page in self.pages.values():
            for key, rec in page.items():
                mine = merged.get(key)
                if mine is None:
                    merged[key] = rec.copy()
                else:
                    lww.merge_into(mine, rec)
        self.merged = merged
        out: list[Action] = []
        for r, page in self.pages.items():
            for key, rec in merged.items():
                if page.get(key) != rec:
                    out.append(SendApply(r, key, rec, repair=True))
        newest = max((rec.newest() for rec in merged.values()), default=lww.ZERO)
        out.append(Done(Receipt(tuple(self.pages), newest)))
        return out

    def live_keys(self) -> list[bytes]:
        """The keys that exist (tombstones hidden), sorted; after Done."""
        return sorted(k for k, r in self.merged.items() if r.view()[0] in ("string", "hash"))
