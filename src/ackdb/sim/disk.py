"""A simulated disk for one Raft member: writes are lost on a crash until synced.

Owns: the member's durable Raft state (hard state, snapshot, log) as two layers -- what an
fsync has made durable (``synced``) and the writes issued since (``pending``). A crash drops
``pending``; a restart loads ``synced``. Never touches real files.
"""

from __future__ import annotations

from collections.abc import Sequence

from ackdb.consensus import Entry, HardState, MemoryStorage, Snapshot


class SimDisk:
    def __init__(self) -> None:
        self.synced = MemoryStorage()
        self.pending: list[tuple[str, object]] = []
        self.syncs = 0

    def write_snapshot(self, snap: Snapshot) -> None:
        self.pending.append(("snapshot", snap))

    def write_entries(self, entries: Sequence[Entry]) -> None:
        self.pending.append(("entries", tuple(entries)))

    def write_hard_state(self, hs: HardState) -> None:
        self.pending.append(("hard_state", hs))

    def sync(self) -> None:
        self.syncs += 1
        for kind, value in self.pending:
            if kind == "snapshot":
                assert isinstance(value, Snapshot)
                self.synced.apply_snapshot(value)
            elif kind == "entries":
                assert isinstance(value, tuple)
                self.synced.append(value)
            else:
                assert isinstance(value, HardState)
                self.synced.set_hard_state(value)
        self.pending.clear()

    def compact(self, snap: Snapshot) -> None:
        """A local snapshot: written atomically and durably (like RaftStore.compact),
        after everything written before it."""
        self.sync()
        if snap.index <= self.synced.snapshot().index:
            return
        assert snap.index <= self.synced.last_index()
        self.synced.create_snapshot(snap.index, snap.conf, snap.data)
        self.synced.compact(snap.index)

    def crash(self) -> int:
        """Lose every unsynced write; returns how many were lost."""
        lost = len(self.pending)
        self.pending.clear()
        return lost

    def load(self) -> MemoryStorage:
        """A fresh MemoryStorage holding exactly the synced state (a restart)."""
        out = MemoryStorage()
        snap = self.synced.snapshot()
        if snap.index > 0:
            out.apply_snapshot(snap)
        out.append(self.synced.all_entries())
        out.set_hard_state(self.synced.hard_state)
        return out
