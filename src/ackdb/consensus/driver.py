"""The Raft driver: carries out a RawNode's Ready through small ports, the same code in the
node agent (asyncio, real disk and TCP) and in the simulator (simulated disk, network and
clock).

Owns: the order of the Ready rule (etcd raft node.go; Raft §5; ``Ready``'s docstring):

    1. ``begin``: take a Ready and write its durable part -- snapshot, entries, hard state --
       through the ``Disk`` port (not synced yet);
    2. the caller fsyncs (``Disk.sync``) when ``Written.must_sync``: ``run`` does it in
       place, the agent on a worker thread while its loop keeps feeding the core;
    3. ``complete``: mirror what is now durable into the MemoryStorage the core reads, and
       only then send the messages (a vote or an append acknowledgement promises
       durability); install a snapshot into the ``StateMachine`` and apply the committed
       entries it does not cover; hand the read states to the ``Reads`` port; advance;
       tell ``Reads`` what is applied; take a local snapshot and compact the log every
       ``compact_entries`` applied entries.

Also the input side: ``tick`` (the shell's clock calls it once per tick period).

Never does IO itself and never imports asyncio: every effect goes through a port, so the
simulator runs this very code. Never decides anything about Raft or the state machine.
A port may raise (a failed fsync, a simulated crash): the driver is then unusable and
the caller discards or stops it; nothing of the failed Ready was sent or applied.

States: IDLE (no Ready outstanding) -> WRITTEN (``begin`` returned a Ready; waiting for
``complete``) -> IDLE.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ackdb.consensus.rawnode import RawNode
from ackdb.consensus.storage import MemoryStorage
from ackdb.consensus.types import (
    Entry,
    HardState,
    Message,
    MsgType,
    ReadState,
    Ready,
    Snapshot,
)


class Disk(Protocol):
    """Durable Raft state (node: RaftStore; sim: the simulated disk)."""

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> None:
        """Write one Ready's durable part in this order; durable only after ``sync``."""

    def sync(self) -> None:
        """Make everything saved so far durable."""

    def save_snapshot(self, snap: Snapshot) -> None:
        """A local snapshot (after ``RawNode.compact``): durable on return; the log
        entries it covers may be dropped."""


class Network(Protocol):
    def send(self, m: Message) -> bool:
        """Queue ``m`` for its peer; False if it cannot be sent at all."""


class StateMachine(Protocol):
    """What the log is applied to (node: the cluster metadata; sim: a register map)."""

    @property
    def applied_index(self) -> int: ...

    def restore(self, snap: Snapshot) -> None:
        """Replace the whole state with the snapshot's (``applied_index`` = its index)."""

    def apply(self, entry: Entry) -> None:
        """Apply the next committed entry (index ``applied_index + 1``)."""

    def snapshot_data(self) -> bytes:
        """The state at ``applied_index``, as ``restore`` reads it back."""


class Reads(Protocol):
    """Linearizable reads waiting on ReadIndex (Raft §6.4)."""

    def on_read_state(self, rs: ReadState) -> None:
        """The leader confirmed the commit index for a read request's context."""

    def on_applied(self, applied_index: int) -> None:
        """The state machine has applied up to here: serve what waited for it."""


@dataclass(frozen=True, slots=True)
class Written:
    """A Ready whose durable part was written; ``complete`` it after the fsync, if any."""

    ready: Ready
    must_sync: bool


@dataclass(slots=True)
class DriverStats:
    fsyncs: int = 0
    entries_persisted: int = 0
    applied: int = 0
    snapshots_installed: int = 0
    snapshots_taken: int = 0


@dataclass(slots=True)
class RaftDriver:
    raw: RawNode
    storage: MemoryStorage  # what the core reads: mirrors the Disk after each fsync
    disk: Disk
    network: Network
    machine: StateMachine
    reads: Reads
    # Applied entries between two local snapshots (count; 0: never snapshot locally).
    compact_entries: int = 0
    on_compacted: Callable[[Snapshot], None] | None = None
    stats: DriverStats = field(default_factory=DriverStats)
    snap_index: int = 0
    _written: Written | None = None

    def __post_init__(self) -> None:
        self.snap_index = self.storage.snapshot().index

    # -- input --------------------------------------------------------------------------

    def tick(self) -> None:
        self.raw.tick()

    # -- the Ready rule -----------------------------------------------------------------

    def has_ready(self) -> bool:
        return self._written is None and self.raw.has_ready()

    def begin(self) -> Written | None:
        """Take the next Ready, if any, and write its durable part (not synced)."""
        assert self._written is None, "begin() before the previous Ready completed"
        if not self.raw.has_ready():
            return None
        rd = self.raw.ready()
        wrote = rd.hard_state is not None or bool(rd.entries) or rd.snapshot is not None
        self.disk.save(rd.hard_state, rd.entries, rd.snapshot)
        w = self._written = Written(rd, wrote and rd.must_sync)
        return w

    def complete(self, w: Written) -> None:
        """Everything after the fsync: mirror, send, apply, read states, advance, compact."""
        assert w is self._written, "complete() of a Ready not begun"
        self._written = None
        rd = w.ready
        if w.must_sync:
            self.stats.fsyncs += 1
        # The core reads the persisted log from the MemoryStorage: mirror what is on disk.
        if rd.snapshot is not None:
            self.storage.apply_snapshot(rd.snapshot)
        self.storage.append(rd.entries)
        if rd.hard_state is not None:
            self.storage.set_hard_state(rd.hard_state)
        self.stats.entries_persisted += len(rd.entries)
        for m in rd.messages:
            if not self.network.send(m) and m.type is MsgType.SNAPSHOT:
                self.raw.report_snapshot(m.to, False)
        self._apply(rd)
        for rs in rd.read_states:
            self.reads.on_read_state(rs)
        self.raw.advance(rd)
        self.reads.on_applied(self.machine.applied_index)
        self._maybe_compact()

    def run(self, rounds_max: int | None = None) -> None:
        """Carry out Readys until none is left (or ``rounds_max``), fsyncing in place: for
        a disk whose ``sync`` may block the caller."""
        n = 0
        while rounds_max is None or n < rounds_max:
            w = self.begin()
            if w is None:
                return
            if w.must_sync:
                self.disk.sync()
            self.complete(w)
            n += 1

    # -- helpers ------------------------------------------------------------------------

    def _apply(self, rd: Ready) -> None:
        sm = self.machine
        if rd.snapshot is not None:
            sm.restore(rd.snapshot)
            self.snap_index = rd.snapshot.index
            self.stats.snapshots_installed += 1
        for e in rd.committed_entries:
            if e.index <= sm.applied_index:
                continue  # covered by a snapshot installed in this Ready
            sm.apply(e)
            self.stats.applied += 1

    def _maybe_compact(self) -> None:
        applied = self.machine.applied_index
        if not self.compact_entries or applied - self.snap_index < self.compact_entries:
            return
        snap = self.raw.compact(applied, self.machine.snapshot_data())
        self.disk.save_snapshot(snap)
        self.snap_index = applied
        self.stats.snapshots_taken += 1
        if self.on_compacted is not None:
            self.on_compacted(snap)
