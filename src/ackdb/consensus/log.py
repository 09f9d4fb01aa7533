"""RaftLog: the stable log (MemoryStorage) plus the unstable tail not yet persisted.

Owns: the log as one sequence of indexes -- [first_index, last_index] -- regardless of
where each entry lives; the commit and applied indexes; the configuration history (the
configuration takes effect when its entry is appended, so it follows the log tail,
including truncations). Never does IO and never writes the MemoryStorage (the shell does,
after persisting a Ready).

States of the unstable part (etcd raft log_unstable.go): an optional snapshot to install,
then ``entries`` starting at ``offset``. ``stable_to`` / ``stable_snap_to`` drop what the
shell has persisted.

Invariants: applied <= committed <= last_index; a committed entry is never truncated
(asserted: truncating one would break Raft §5.4 Leader Completeness).
"""

from __future__ import annotations

from collections.abc import Sequence

from ackdb.consensus.codec import decode_conf_entry
from ackdb.consensus.storage import MemoryStorage, StorageError, limit_size
from ackdb.consensus.types import ConfState, Entry, EntryKind, Snapshot


class RaftLog:
    def __init__(self, storage: MemoryStorage) -> None:
        self.storage = storage
        self.unstable_snapshot: Snapshot | None = None
        self.unstable: list[Entry] = []
        self.offset = storage.last_index() + 1
        snap = storage.snapshot()
        self.committed = snap.index
        self.applied = snap.index
        # (index, configuration) for the snapshot and each conf entry after it, in order.
        self.confs: list[tuple[int, ConfState]] = [(snap.index, snap.conf)]
        if storage.last_index() >= storage.first_index():
            self._track_confs(storage.entries(storage.first_index(), storage.last_index() + 1))

    # -- indexes and terms --

    def first_index(self) -> int:
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        if self.unstable:
            return self.offset + len(self.unstable) - 1
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot.index
        return self.storage.last_index()

    def term(self, index: int) -> int | None:
        """The term of ``index``, or None when it is compacted or beyond the log."""
        if index < self.first_index() - 1 or index > self.last_index():
            return None
        if index >= self.offset and self.unstable:
            return self.unstable[index - self.offset].term
        snap = self.unstable_snapshot
        if snap is not None and index == snap.index:
            return snap.term
        try:
            return self.storage.term(index)
        except StorageError:
            return None

    def last_term(self) -> int:
        t = self.term(self.last_index())
        assert t is not None
        return t

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        # Raft §5.4.1: the later last term wins; on equal terms the longer log.
        lt = self.last_term()
        return term > lt or (term == lt and last_index >= self.last_index())

    def conf_state(self) -> ConfState:
        return self.confs[-1][1]

    def last_conf_index(self) -> int:
        return self.confs[-1][0]

    def conf_at(self, index: int) -> ConfState:
        """The configuration in force at ``index`` (the last conf entry at or before it)."""
        for i, conf in reversed(self.confs):
            if i <= index:
                return conf
        return self.confs[0][1]

    # -- conflict search (Raft §5.3) --

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """Index of the first entry whose term differs from ours (0 if none do)."""
        for e in entries:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest (i, term(i)) with i <= index and term(i) <= term: the leader can
        skip every index above it at once (etcd's fast backtracking, Raft §5.3 end)."""
        index = min(index, self.last_index())
        while index > 0:
            t = self.term(index)
            if t is None:
                return index, 0
            if t <= term:
                return index, t
            index -= 1
        return 0, 0

    # -- appending --

    def maybe_append(
        self, index: int, log_term: int, committed: int, entries: Sequence[Entry]
    ) -> int | None:
        """AppendEntries on a follower (Raft §5.3): None if the entry before ``entries``
        does not match; otherwise the last index known to match the leader."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(entries)
        ci = self.find_conflict(entries)
        if ci:
            assert ci > self.committed, f"conflict {ci} at or below commit {self.committed}"
            self.append(entries[ci - index - 1 :])
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, entries: Sequence[Entry]) -> int:
        if not entries:
            return self.last_index()
        after = entries[0].index
        assert after - 1 >= self.committed, f"truncating committed {self.committed} at {after}"
        assert after <= self.last_index() + 1, "gap in the log"
        if after == self.offset + len(self.unstable):
            self.unstable.extend(entries)
        elif after <= self.offset:
            # Replace the whole unstable tail (and logically any stable suffix >= after;
            # the shell truncates the storage when it persists these entries).
            self.offset = after
            self.unstable = list(entries)
        else:
            del self.unstable[after - self.offset :]
            self.unstable.extend(entries)
        while self.confs[-1][0] >= after and len(self.confs) > 1:
            self.confs.pop()
        self._track_confs(entries)
        return self.last_index()

    def _track_confs(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            if e.kind == EntryKind.CONF_CHANGE:
                _, conf = decode_conf_entry(e.data)
                self.confs.append((e.index, conf))

    # -- reading entries --

    def slice(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi) from storage and the unstable tail; lo must not be compacted."""
        assert self.first_index() <= lo <= hi <= self.last_index() + 1, (lo, hi)
        out: list[Entry] = []
        if lo < self.offset:
            out = self.storage.entries(lo, min(hi, self.offset), max_bytes)
            if len(out) < min(hi, self.offset) - lo:
                return out  # the size limit cut it short
        if hi > self.offset:
            start = max(lo, self.offset)
            out = out + self.unstable[start - self.offset : hi - self.offset]
        return limit_size(out, max_bytes)

    def entries_from(self, lo: int, max_bytes: int | None) -> list[Entry] | None:
        """Entries from ``lo`` to the end; None if ``lo`` is compacted."""
        if lo < self.first_index():
            return None
        if lo > self.last_index():
            return []
        return self.slice(lo, self.last_index() + 1, max_bytes)

    def next_committed_entries(self, max_bytes: int | None) -> list[Entry]:
        lo = max(self.applied + 1, self.first_index())
        if self.committed + 1 <= lo:
            return []
        return self.slice(lo, self.committed + 1, max_bytes)

    def has_next_committed_entries(self) -> bool:
        return self.committed > max(self.applied, self.first_index() - 1)

    def snapshot(self) -> Snapshot:
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot
        return self.storage.snapshot()

    # -- commit and apply --

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            assert index <= self.last_index(), f"commit {index} beyond last {self.last_index()}"
            self.committed = index

    def applied_to(self, index: int) -> None:
        if index == 0:
            return
        assert self.applied <= index <= self.committed, (self.applied, index, self.committed)
        self.applied = index

    # -- what the shell persisted --

    def stable_to(self, index: int, term: int) -> None:
        t = self.term(index)
        if t == term and index >= self.offset and self.unstable:
            del self.unstable[: index + 1 - self.offset]
            self.offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        if self.unstable_snapshot is not None and self.unstable_snapshot.index == index:
            self.unstable_snapshot = None

    def restore(self, snap: Snapshot) -> None:
        """InstallSnapshot (Raft §7): the snapshot replaces the whole log."""
        assert snap.index > self.committed, "restoring an older snapshot"
        self.committed = snap.index
        self.unstable_snapshot = snap
        self.unstable = []
        self.offset = snap.index + 1
        self.confs = [(snap.index, snap.conf)]

    def compacted_to(self, index: int) -> None:
        """The storage dropped entries up to ``index``; forget older configurations."""
        while len(self.confs) > 1 and self.confs[1][0] <= index:
            self.confs.pop(0)
