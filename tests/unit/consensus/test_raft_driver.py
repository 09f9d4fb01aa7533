"""The Raft driver (ackdb.consensus.driver) against fake ports that write one shared
journal: the Ready rule's order (etcd raft node.go; Raft §5: persist and fsync BEFORE
sending), applying only committed entries, snapshots installed and taken."""

from __future__ import annotations

import random
from collections.abc import Sequence

import msgpack
import pytest

from ackdb.consensus import (
    Config,
    Entry,
    EntryKind,
    HardState,
    MemoryStorage,
    Message,
    MsgType,
    RawNode,
    ReadState,
    Role,
    Snapshot,
)
from ackdb.consensus.driver import RaftDriver

Journal = list[tuple[str, str, object]]  # (member, what, detail)


class FakeDisk:
    def __init__(self, nid: str, journal: Journal) -> None:
        self.nid, self.journal = nid, journal
        self.fail_sync = False
        self.snapshots: list[Snapshot] = []

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> None:
        if hard_state is not None or entries or snapshot is not None:
            what = (hard_state, tuple(e.index for e in entries), snapshot and snapshot.index)
            self.journal.append((self.nid, "save", what))

    def sync(self) -> None:
        if self.fail_sync:
            raise OSError(5, "Input/output error")
        self.journal.append((self.nid, "sync", None))

    def save_snapshot(self, snap: Snapshot) -> None:
        self.snapshots.append(snap)
        self.journal.append((self.nid, "save_snapshot", snap.index))


class FakeNet:
    def __init__(self, nid: str, journal: Journal, queue: list[Message]) -> None:
        self.nid, self.journal, self.queue = nid, journal, queue
        self.refuse: set[MsgType] = set()  # message types the link cannot take

    def send(self, m: Message) -> bool:
        self.journal.append((self.nid, "send", m.type))
        if m.type in self.refuse:
            return False
        self.queue.append(m)
        return True


class ListMachine:
    """A state machine that appends each applied entry's data to a list."""

    def __init__(self, nid: str, journal: Journal) -> None:
        self.nid, self.journal = nid, journal
        self.applied_index = 0
        self.items: list[bytes] = []
        self.restored: list[int] = []

    def restore(self, snap: Snapshot) -> None:
        self.items = list(msgpack.unpackb(snap.data)) if snap.data else []
        self.applied_index = snap.index
        self.restored.append(snap.index)

    def apply(self, entry: Entry) -> None:
        assert entry.index == self.applied_index + 1, (entry.index, self.applied_index)
        self.applied_index = entry.index
        if entry.kind is EntryKind.NORMAL and entry.data:
            self.items.append(entry.data)
        self.journal.append((self.nid, "apply", entry.index))

    def snapshot_data(self) -> bytes:
        out = msgpack.packb(self.items)
        assert isinstance(out, bytes)
        return out


class FakeReads:
    def __init__(self, machine: ListMachine) -> None:
        self.machine = machine
        self.waiting: dict[bytes, int] = {}
        self.served: list[tuple[bytes, int]] = []

    def on_read_state(self, rs: ReadState) -> None:
        self.waiting[rs.ctx] = rs.index

    def on_applied(self, applied_index: int) -> None:
        for ctx, index in list(self.waiting.items()):
            if index <= applied_index:
                del self.waiting[ctx]
                self.served.append((ctx, len(self.machine.items)))


class Member:
    def __init__(self, nid: str, journal: Journal, queue: list[Message], **kw: int) -> None:
        storage = MemoryStorage()
        cfg = Config(node_id=nid, pre_vote=False, check_quorum=False)
        self.raw = RawNode(cfg, storage, random.Random(7))
        self.disk = FakeDisk(nid, journal)
        self.net = FakeNet(nid, journal, queue)
        self.machine = ListMachine(nid, journal)
        self.reads = FakeReads(self.machine)
        self.driver = RaftDriver(
            self.raw, storage, self.disk, self.net, self.machine, self.reads, **kw
        )


class Cluster:
    def __init__(self, n: int = 3, **kw: int) -> None:
        self.journal: Journal = []
        self.queue: list[Message] = []
        self.ids = tuple(f"n{i}" for i in range(1, n + 1))
        self.m = {i: Member(i, self.journal, self.queue, **kw) for i in self.ids}
        for member in self.m.values():
            member.raw.bootstrap(self.ids)
            member.driver.run()
        self.cut: set[str] = set()

    def deliver(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            for member in self.m.values():
                member.driver.run()
            if not self.queue:
                return
            batch, self.queue[:] = list(self.queue), []
            for msg in batch:
                if msg.to not in self.cut and msg.frm not in self.cut:
                    self.m[msg.to].raw.step(msg)

    def elect(self, nid: str = "n1") -> Member:
        self.m[nid].raw.campaign()
        self.deliver()
        assert self.m[nid].raw.raft.role is Role.LEADER
        return self.m[nid]

    def events(self, nid: str) -> list[tuple[str, object]]:
        return [(what, d) for who, what, d in self.journal if who == nid]


def _index_of(events: list[tuple[str, object]], what: str) -> int:
    return next(i for i, (w, _) in enumerate(events) if w == what)


def test_a_vote_is_persisted_and_synced_before_it_is_sent() -> None:
    # Raft §5.2 / Figure 2: currentTerm and votedFor are on stable storage before
    # responding; etcd's Ready: "saved to stable storage BEFORE messages are sent".
    c = Cluster()
    c.m["n1"].raw.campaign()
    c.m["n1"].driver.run()
    ev = c.events("n1")
    assert _index_of(ev, "save") < _index_of(ev, "sync") < _index_of(ev, "send")
    c.journal.clear()
    c.deliver(rounds=2)  # the voters persist their vote before answering
    for nid in ("n2", "n3"):
        ev = c.events(nid)
        assert ev[0][0] == "save" and ev[1][0] == "sync" and ev[2] == ("send", MsgType.VOTE_RESP)


def test_appended_entries_are_synced_before_the_append_and_its_acknowledgement() -> None:
    c = Cluster()
    leader = c.elect()
    c.journal.clear()
    leader.raw.propose(b"x")
    c.deliver()
    for nid in c.ids:
        ev = c.events(nid)
        first_send = _index_of(ev, "send")
        assert any(w == "save" for w, _ in ev[:first_send]), nid
        assert any(w == "sync" for w, _ in ev[:first_send]), nid
    assert all(m.machine.items == [b"x"] for m in c.m.values())


def test_nothing_is_sent_or_applied_until_the_ready_completes() -> None:
    # The agent fsyncs on a worker thread between begin() and complete().
    c = Cluster(n=1)
    leader = c.m["n1"]
    leader.raw.campaign()
    leader.driver.run()
    leader.raw.propose(b"y")
    c.journal.clear()
    w = leader.driver.begin()
    assert w is not None and w.must_sync
    assert [what for _, what, _ in c.journal] == ["save"]
    assert not leader.driver.has_ready()  # no second Ready while one is outstanding
    with pytest.raises(AssertionError):
        leader.driver.begin()
    leader.driver.complete(w)
    leader.driver.run()
    assert leader.machine.items == [b"y"]
    assert leader.driver.stats.fsyncs >= 1


def test_a_failed_fsync_sends_and_applies_nothing() -> None:
    c = Cluster()
    leader = c.elect()
    applied = leader.machine.applied_index
    leader.disk.fail_sync = True
    leader.raw.propose(b"lost")
    c.journal.clear()
    with pytest.raises(OSError):
        leader.driver.run()
    assert [what for who, what, _ in c.journal if who == "n1"] == ["save"]
    assert leader.machine.applied_index == applied


def test_only_committed_entries_are_applied() -> None:
    c = Cluster()
    leader = c.elect()
    before = leader.machine.applied_index
    c.cut = {"n2", "n3"}  # no follower acknowledges
    leader.raw.propose(b"uncommitted")
    c.deliver()
    assert leader.raw.raft.log.last_index() > before
    assert leader.machine.applied_index == before  # persisted on the leader, not committed
    c.cut = set()
    leader.raw.tick()  # a heartbeat lets the followers catch up
    c.deliver()
    for m in c.m.values():
        assert m.machine.items == [b"uncommitted"]


def test_read_states_are_served_once_applied() -> None:
    c = Cluster()
    leader = c.elect()
    leader.raw.propose(b"a")
    c.deliver()
    follower = c.m["n2"]
    follower.raw.read_index(b"ctx1")
    c.deliver()
    assert follower.reads.served == [(b"ctx1", 1)]


def test_local_snapshots_compact_the_log() -> None:
    c = Cluster(n=1, compact_entries=3)
    leader = c.m["n1"]
    leader.raw.campaign()
    leader.driver.run()
    for i in range(7):
        leader.raw.propose(b"v%d" % i)
        leader.driver.run()
    snaps = leader.disk.snapshots
    indexes = [0] + [s.index for s in snaps]
    assert len(snaps) >= 2 and all(b - a >= 3 for a, b in zip(indexes, indexes[1:], strict=False))
    assert leader.driver.snap_index == snaps[-1].index == leader.raw.storage.snapshot().index
    assert leader.raw.storage.first_index() == snaps[-1].index + 1  # the log was compacted
    taken = msgpack.unpackb(snaps[-1].data)
    assert taken == leader.machine.items[: len(taken)]  # the state at the snapshot's index
    assert leader.driver.stats.snapshots_taken == len(snaps)


def test_a_lagging_follower_installs_the_leaders_snapshot() -> None:
    c = Cluster(compact_entries=2)
    leader = c.elect()
    c.cut = {"n3"}
    for i in range(6):
        leader.raw.propose(b"w%d" % i)
        c.deliver()
    assert leader.driver.snap_index > 0
    lagging = c.m["n3"]
    assert lagging.machine.items == []
    c.cut = set()
    for _ in range(3):
        leader.raw.tick()
        c.deliver()
    assert lagging.machine.restored, "the follower did not install a snapshot"
    assert lagging.driver.stats.snapshots_installed == len(lagging.machine.restored)
    assert lagging.machine.items == leader.machine.items == [b"w%d" % i for i in range(6)]
    # The snapshot was written before anything was sent in that Ready.
    ev = c.events("n3")
    snap_save = next(i for i, (w, d) in enumerate(ev) if w == "save" and d[2])  # type: ignore[index]
    assert ev[snap_save + 1][0] == "sync"


def test_an_unsendable_snapshot_is_reported() -> None:
    c = Cluster(compact_entries=2)
    leader = c.elect()
    c.cut = {"n3"}
    for i in range(6):
        leader.raw.propose(b"z%d" % i)
        c.deliver()
    c.cut = set()
    leader.net.refuse = {MsgType.SNAPSHOT}
    reported: list[tuple[str, bool]] = []
    real = leader.raw.report_snapshot

    def spy(peer: str, ok: bool) -> None:
        reported.append((peer, ok))
        real(peer, ok)

    leader.raw.report_snapshot = spy  # type: ignore[method-assign]
    for _ in range(3):
        leader.raw.tick()
        c.deliver()
    assert ("n3", False) in reported
    assert c.m["n3"].machine.restored == []
