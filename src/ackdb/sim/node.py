"""A simulated member: a RawNode, its disk, its state machine and the shell between them.

Owns: carrying out each Ready in the order the core demands -- write snapshot, entries and
hard state; fsync when ``must_sync``; only then send messages; then apply committed
entries and serve read states -- and answering the clients whose requests it took. A
crash may strike between the writes and the fsync (the writes are then lost and nothing
was sent). Never does real IO: the disk and the network are simulated.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ackdb.consensus import (
    Config,
    Message,
    ProposalDropped,
    RawNode,
    Role,
)
from ackdb.sim.checks import SafetyChecker
from ackdb.sim.disk import SimDisk
from ackdb.sim.kv import KvStateMachine

Reply = Callable[[Any], None]


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
    disk: SimDisk = field(default_factory=SimDisk)
    raw: RawNode | None = None
    sm: KvStateMachine | None = None
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
        self.sm = KvStateMachine.restore(snap.data, snap.index)
        self.checked_commit = snap.index
        self.incarnation += 1
        if bootstrap is not None:
            self.raw.bootstrap(bootstrap)

    def crash(self) -> None:
        self.raw = None
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

    def process(self, send: Callable[[Message], None], checker: SafetyChecker) -> bool:
        """Carry out every pending Ready; False if the member crashed doing it."""
        raw = self.raw
        while raw is not None and raw.has_ready():
            rd = raw.ready()
            storage = raw.storage
            log = raw.raft.log
            # 1. write (the MemoryStorage mirrors what the shell has written)
            if rd.snapshot is not None:
                checker.on_snapshot(self.id, rd.snapshot)
                self.disk.write_snapshot(rd.snapshot)
                storage.apply_snapshot(rd.snapshot)
            if rd.entries:
                self.disk.write_entries(rd.entries)
                storage.append(rd.entries)
                checker.on_write(self.id, log, rd.entries)
            if rd.hard_state is not None:
                self.disk.write_hard_state(rd.hard_state)
                storage.set_hard_state(rd.hard_state)
            if rd.snapshot is not None:
                self.checked_commit = max(self.checked_commit, rd.snapshot.index)
            if log.committed > self.checked_commit:
                checker.on_commit(self.id, log, self.checked_commit, log.committed)
                self.checked_commit = log.committed
            if self.crash_in_ready and self.rng.random() < self.crash_in_ready:
                self.crash()
                return False
            # 2. fsync, and only then 3. send
            if rd.must_sync:
                self.disk.sync()
            for m in rd.messages:
                send(m)
            # 4. apply and serve reads
            self._apply(rd.snapshot, rd.committed_entries, checker)
            for rs in rd.read_states:
                pr = self.reads.get(rs.ctx)
                if pr is not None:
                    pr.index = rs.index
            raw.advance(rd)
            self._serve_reads()
            self._maybe_compact()
        return True

    def _apply(self, snap: Any, entries: tuple[Any, ...], checker: SafetyChecker) -> None:
        assert self.sm is not None
        if snap is not None:
            self.sm = KvStateMachine.restore(snap.data, snap.index)
        for e in entries:
            checker.on_apply(self.id, e)
            applied = self.sm.apply(e)
            if applied is not None:
                reply = self.proposals.pop((applied.client, applied.seq), None)
                if reply is not None:
                    reply(applied.result)

    def _serve_reads(self) -> None:
        assert self.sm is not None
        done = [ctx for ctx, pr in self.reads.items() if 0 <= pr.index <= self.sm.applied]
        for ctx in done:
            pr = self.reads.pop(ctx)
            pr.reply(self.sm.get(pr.key))

    def _maybe_compact(self) -> None:
        raw, sm = self.raw, self.sm
        assert raw is not None and sm is not None
        if not self.compact_every:
            return
        snap_index = raw.storage.snapshot().index
        if sm.applied - snap_index >= self.compact_every:
            snap = raw.compact(sm.applied, sm.snapshot())
            self.disk.compact(snap)
