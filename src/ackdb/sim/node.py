"""A simulated member: a RawNode run by the production Raft driver behind simulated ports.

Owns: the member's process state (up or crashed, its incarnation), its replicated register
map (kv.py, what the linearizability check reasons about), the client requests it took,
and the sim's side of each port of ``ackdb.consensus.driver``:

- Disk: ``SimDisk`` (writes lost on a crash until synced); after each Ready's writes the
  safety checker looks at what was written and committed, and a crash may strike between
  the writes and the fsync (the writes are then lost and nothing was sent);
- Network: the world's ``send`` (delay, loss, partitions are the world's);
- StateMachine and Reads: the register map, and the ReadIndex reads waiting on it.

The Ready handling itself -- write, fsync, send, apply, serve reads, compact -- is the
driver's, the same code the node agent runs. Never does real IO.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ackdb.consensus import (
    Config,
    Entry,
    HardState,
    Message,
    ProposalDropped,
    RawNode,
    ReadState,
    Role,
    Snapshot,
)
from ackdb.consensus.driver import RaftDriver
from ackdb.sim.checks import SafetyChecker
from ackdb.sim.disk import SimDisk
from ackdb.sim.kv import KvStateMachine

Reply = Callable[[Any], None]


class Crashed(Exception):
    """The simulated process died inside a driver port (between a write and its fsync)."""


@dataclass(slots=True)
class PendingRead:
    key: str
    reply: Reply
    index: int = -1  # the read index, once the ReadState arrived


@dataclass(slots=True)
class SimNode:
    id: str
    config: Config
    rng: random.Random
    send: Callable[[Message], None]
    checker: SafetyChecker
    disk: SimDisk = field(default_factory=SimDisk)
    raw: RawNode | None = None
    driver: RaftDriver | None = None
    sm: KvStateMachine | None = None
    # The replicated state machine's class (a subclass may apply another state machine,
    # e.g. the cluster metadata).
    machine: type[KvStateMachine] = KvStateMachine
    incarnation: int = 0
    checked_commit: int = 0
    compact_every: int = 0  # entries applied between local snapshots (0: never)
    crash_in_ready: float = 0.0  # probability of crashing between write and fsync
    # TEST ONLY: answer reads from the local state machine without ReadIndex, a classic
    # stale-read bug; exists so a test can show the linearizability check catches it.
    unsafe_local_reads: bool = False
    proposals: dict[tuple[str, int], Reply] = field(default_factory=dict)
    reads: dict[bytes, PendingRead] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        return self.raw is not None

    def start(self, bootstrap: tuple[str, ...] | None = None) -> None:
        assert self.raw is None
        storage = self.disk.load()
        self.raw = RawNode(self.config, storage, self.rng)
        snap = storage.snapshot()
        self.sm = self.machine.restore(snap.data, snap.index)
        self.checked_commit = snap.index
        self.incarnation += 1
        port = _Ports(self)
        self.driver = RaftDriver(
            self.raw, storage, port, port, port, port, compact_entries=self.compact_every
        )
        if bootstrap is not None:
            self.raw.bootstrap(bootstrap)

    def crash(self) -> None:
        self.raw = None
        self.driver = None
        self.sm = None
        self.disk.crash()
        self.proposals.clear()
        self.reads.clear()

    def role(self) -> Role | None:
        return None if self.raw is None else self.raw.raft.role

    # -- client requests --

    def propose(self, client: str, seq: int, data: bytes, reply: Reply) -> None:
        """Raises ProposalDropped when this member cannot take it."""
        if self.raw is None:
            raise ProposalDropped(None, "down")
        self.raw.propose(data)
        self.proposals[(client, seq)] = reply

    def read(self, ctx: bytes, key: str, reply: Reply) -> None:
        if self.raw is None:
            raise ProposalDropped(None, "down")
        if self.unsafe_local_reads:
            assert self.sm is not None
            reply(self.sm.get(key))
            return
        self.raw.read_index(ctx)
        self.reads[ctx] = PendingRead(key=key, reply=reply)

    # -- the Ready loop --

    def tick(self) -> None:
        assert self.driver is not None
        self.driver.tick()

    def process(self) -> bool:
        """Carry out every pending Ready; False if the member crashed doing it."""
        if self.driver is None:
            return True
        try:
            self.driver.run()
        except Crashed:
            self.crash()
            return False
        return True


class _Ports:
    """The driver's ports for one incarnation of a SimNode."""

    __slots__ = ("node",)

    def __init__(self, node: SimNode) -> None:
        self.node = node

    # -- Disk --

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> None:
        n = self.node
        assert n.raw is not None
        log = n.raw.raft.log
        if snapshot is not None:
            n.checker.on_snapshot(n.id, snapshot)
            n.disk.write_snapshot(snapshot)
        if entries:
            n.disk.write_entries(entries)
            n.checker.on_write(n.id, log, tuple(entries))
        if hard_state is not None:
            n.disk.write_hard_state(hard_state)
        if snapshot is not None:
            n.checked_commit = max(n.checked_commit, snapshot.index)
        if log.committed > n.checked_commit:
            n.checker.on_commit(n.id, log, n.checked_commit, log.committed)
            n.checked_commit = log.committed
        if n.crash_in_ready and n.rng.random() < n.crash_in_ready:
            raise Crashed(n.id)

    def sync(self) -> None:
        self.node.disk.sync()

    def save_snapshot(self, snap: Snapshot) -> None:
        self.node.disk.compact(snap)

    # -- Network --

    def send(self, m: Message) -> bool:
        self.node.send(m)
        return True

    # -- StateMachine --

    @property
    def applied_index(self) -> int:
        sm = self.node.sm
        assert sm is not None
        return sm.applied

    def restore(self, snap: Snapshot) -> None:
        self.node.sm = self.node.machine.restore(snap.data, snap.index)

    def apply(self, entry: Entry) -> None:
        n = self.node
        assert n.sm is not None
        n.checker.on_apply(n.id, entry)
        applied = n.sm.apply(entry)
        if applied is not None:
            reply = n.proposals.pop((applied.client, applied.seq), None)
            if reply is not None:
                reply(applied.result)

    def snapshot_data(self) -> bytes:
        sm = self.node.sm
        assert sm is not None
        return sm.snapshot()

    # -- Reads --

    def on_read_state(self, rs: ReadState) -> None:
        pr = self.node.reads.get(rs.ctx)
        if pr is not None:
            pr.index = rs.index

    def on_applied(self, applied_index: int) -> None:
        reads = self.node.reads
        sm = self.node.sm
        assert sm is not None
        done = [ctx for ctx, pr in reads.items() if 0 <= pr.index <= applied_index]
        for ctx in done:
            pr = reads.pop(ctx)
            pr.reply(sm.get(pr.key))
