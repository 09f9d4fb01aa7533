"""MemoryStorage: the stable log as the core reads it (etcd raft storage.go semantics).

Owns: the entries already persisted by the shell, the latest snapshot, the hard state.
The core only reads it (``entries``, ``term``, ``first_index``, ``last_index``,
``snapshot``, ``initial_state``); the shell writes it after persisting a Ready (``append``,
``apply_snapshot``, ``set_hard_state``) and compacts it (``compact``). Never does IO: the
durable copy is ackdb.node.raftstore, which loads into a MemoryStorage at start.

Layout: ``_ents[0]`` is a dummy entry holding the snapshot's index and term, so
``term(snapshot.index)`` answers without the compacted entry. Invariant: indexes in
``_ents`` are consecutive.
"""

from __future__ import annotations

from collections.abc import Sequence

from ackdb.consensus.types import (
    EMPTY_HARD_STATE,
    EMPTY_SNAPSHOT,
    ConfState,
    Entry,
    HardState,
    Snapshot,
)


class StorageError(Exception):
    """Base of the errors a Storage raises for indexes it cannot serve."""


class CompactedError(StorageError):
    """The index lies at or below the last snapshot; its entry is gone."""


class UnavailableError(StorageError):
    """The index lies beyond the last entry."""


class SnapshotOutOfDateError(StorageError):
    """A snapshot older than the one held was offered."""


class MemoryStorage:
    def __init__(self) -> None:
        self._hard_state = EMPTY_HARD_STATE
        self._snapshot = EMPTY_SNAPSHOT
        self._ents: list[Entry] = [Entry(term=0, index=0)]

    # -- reads (the core) --

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.conf

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def term(self, index: int) -> int:
        offset = self._ents[0].index
        if index < offset:
            raise CompactedError(index)
        if index - offset >= len(self._ents):
            raise UnavailableError(index)
        return self._ents[index - offset].term

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi); at least one if any, then up to ``max_bytes``."""
        offset = self._ents[0].index
        if lo <= offset:
            raise CompactedError(lo)
        if hi > self.last_index() + 1:
            raise UnavailableError(hi)
        ents = self._ents[lo - offset : hi - offset]
        return limit_size(ents, max_bytes)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def all_entries(self) -> list[Entry]:
        """Every entry after the snapshot (for the durable store's rewrite)."""
        return self._ents[1:]

    # -- writes (the shell, after persisting) --

    def set_hard_state(self, hs: HardState) -> None:
        self._hard_state = hs

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the whole log by ``snap`` (an InstallSnapshot, or loading at start)."""
        if snap.index < self._snapshot.index or (snap.index == self._snapshot.index > 0):
            raise SnapshotOutOfDateError(snap.index)
        self._snapshot = snap
        self._ents = [Entry(term=snap.term, index=snap.index)]

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        """Record a snapshot the application took at ``index`` (<= last index)."""
        if index <= self._snapshot.index:
            raise SnapshotOutOfDateError(index)
        assert index <= self.last_index(), f"snapshot {index} beyond last {self.last_index()}"
        snap = Snapshot(index=index, term=self.term(index), conf=conf, data=data)
        self._snapshot = snap
        return snap

    def compact(self, index: int) -> None:
        """Drop entries up to and including ``index`` (keeping it as the dummy)."""
        offset = self._ents[0].index
        if index <= offset:
            raise CompactedError(index)
        assert index <= self.last_index(), f"compact {index} beyond last {self.last_index()}"
        self._ents = self._ents[index - offset :]
        self._ents[0] = Entry(term=self._ents[0].term, index=index)

    def append(self, entries: Sequence[Entry]) -> None:
        """Append, truncating any existing suffix from ``entries[0].index`` on."""
        if not entries:
            return
        first = self.first_index()
        last = entries[-1].index
        if last < first:
            return  # all already compacted
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._ents[0].index
        assert offset >= 1, "append below the snapshot"
        assert offset <= len(self._ents), (
            f"missing log entry: last {self.last_index()}, appending at {entries[0].index}"
        )
        del self._ents[offset:]
        self._ents.extend(entries)


def limit_size(ents: list[Entry], max_bytes: int | None) -> list[Entry]:
    """The longest prefix of ``ents`` within ``max_bytes``, but at least one entry."""
    if max_bytes is None or not ents:
        return ents
    total = 0
    for i, e in enumerate(ents):
        total += e.size()
        if total > max_bytes and i > 0:
            return ents[:i]
    return ents
