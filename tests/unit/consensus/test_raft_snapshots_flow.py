"""Log compaction and InstallSnapshot (Raft §7), flow control (etcd tracker states) and
the Ready handshake."""

from __future__ import annotations

from raftnet import Net, ids, msg

from ackdb.consensus import ConfState, Entry, MsgType, Snapshot
from ackdb.consensus.progress import ProgressState


def _compact_leader(net: Net, nid: str) -> Snapshot:
    node = net.nodes[nid]
    applied = node.raft.log.applied
    return node.compact(applied, b"state@%d" % applied)


def test_lagging_follower_gets_the_snapshot_when_entries_are_compacted() -> None:
    # Raft §7: "the leader must occasionally send snapshots to followers that lag behind"
    # -- when the entries they need were discarded.
    net = Net(ids(3))
    net.elect("n1")
    net.down.add("n3")
    for i in range(5):
        net.propose("n1", b"%d" % i)
    snap = _compact_leader(net, "n1")
    assert net.nodes["n1"].storage.first_index() == snap.index + 1
    net.down.clear()
    net.tick("n1")
    net.stabilize()
    f = net.raft("n3").log
    assert f.snapshot().index == snap.index and f.snapshot().data == snap.data
    assert f.snapshot().conf.voters == ("n1", "n2", "n3")
    net.propose("n1", b"after")
    net.tick("n1")
    net.stabilize()
    assert net.data_applied("n3")[-1] == b"after"
    assert net.raft("n1").prs["n3"].state == ProgressState.REPLICATE


def test_snapshot_replaces_a_conflicting_log() -> None:
    # Raft §7: "If the follower's log is in conflict or shorter, the follower discards its
    # entire log; it is all superseded by the snapshot."
    net = Net(ids(3))
    node = net.nodes["n2"]
    snap = Snapshot(index=10, term=5, conf=ConfState(ids(3)), data=b"s")
    node.step(msg(MsgType.SNAPSHOT, "n1", "n2", 5, snapshot=snap))
    rd = node.ready()
    assert rd.snapshot == snap and rd.must_sync
    (resp,) = rd.messages
    assert resp.type == MsgType.APPEND_RESP and resp.index == 10
    node.storage.apply_snapshot(rd.snapshot)
    node.advance(rd)
    assert node.raft.log.last_index() == 10 and node.raft.log.committed == 10
    assert node.raft.log.applied == 10


def test_snapshot_covered_by_the_log_only_advances_commit() -> None:
    # Raft §7: "If instead the follower receives a snapshot that describes a prefix of its
    # log ... entries covered by the snapshot are deleted but entries following the snapshot
    # are still valid and must be retained." We keep the log and learn the commit index.
    net = Net(ids(3))
    net.elect("n1")
    for i in range(3):
        net.propose("n1", b"%d" % i)
    node = net.nodes["n2"]
    r = node.raft
    last = r.log.last_index()
    snap = Snapshot(index=last - 1, term=r.log.term(last - 1) or 0, conf=ConfState(ids(3)))
    r.log.committed = 1  # as if the commit index had not reached us yet
    node.step(msg(MsgType.SNAPSHOT, "n1", "n2", r.term, snapshot=snap))
    assert r.log.last_index() == last
    assert r.log.committed == last - 1
    assert r.log.unstable_snapshot is None


def test_stale_snapshot_is_ignored() -> None:
    net = Net(ids(3))
    net.elect("n1")
    net.propose("n1", b"a")
    node = net.nodes["n2"]
    before = node.raft.log.last_index()
    node.step(
        msg(
            MsgType.SNAPSHOT,
            "n1",
            "n2",
            node.raft.term,
            snapshot=Snapshot(index=1, term=1, conf=ConfState(ids(3))),
        )
    )
    assert node.raft.log.last_index() == before
    assert node.raft.msgs[-1].index == node.raft.log.committed


def test_lost_snapshot_is_retried_after_the_timeout() -> None:
    net = Net(ids(3), snapshot_timeout_ticks=5)
    net.elect("n1")
    net.down.add("n3")
    net.propose("n1", b"a")
    _compact_leader(net, "n1")
    net.down.clear()
    net.tick("n1")
    for _ in range(20):  # every snapshot sent is lost
        msgs = [m for nid in net.nodes for m in net.persist(nid)]
        net.deliver([m for m in msgs if m.type != MsgType.SNAPSHOT])
    assert net.raft("n1").prs["n3"].state == ProgressState.SNAPSHOT
    for _ in range(6):
        net.tick("n1")
        net.stabilize()
    assert net.raft("n3").log.snapshot().index > 0
    assert net.raft("n1").prs["n3"].state == ProgressState.REPLICATE


def test_probe_sends_one_append_until_answered() -> None:
    # etcd tracker/progress.go: in the probe state the leader sends at most one append per
    # heartbeat interval.
    net = Net(ids(2))
    net.elect("n1")
    net.down.add("n2")
    net.raft("n1").prs["n2"].become_probe()
    node = net.nodes["n1"]
    node.propose(b"a")
    node.propose(b"b")
    apps = net.take("n1", MsgType.APPEND)
    assert len(apps) == 1
    net.tick("n1")
    net.nodes["n1"].step(msg(MsgType.HEARTBEAT_RESP, "n2", "n1", node.raft.term))
    assert len(net.take("n1", MsgType.APPEND)) == 1  # the heartbeat answer unpauses it


def test_replicate_state_limits_inflight_appends() -> None:
    net = Net(ids(2), max_inflight_msgs=3, max_entries_bytes_per_msg=1)
    net.elect("n1")
    net.down.add("n2")
    node = net.nodes["n1"]
    for i in range(6):
        node.propose(b"%d" % i)
    apps = net.take("n1", MsgType.APPEND)
    assert len(apps) == 3 and all(len(m.entries) == 1 for m in apps)
    assert net.take("n1", MsgType.APPEND) == []
    pr = node.raft.prs["n2"]
    assert pr.state == ProgressState.REPLICATE and pr.inflights.full()
    node.step(msg(MsgType.APPEND_RESP, "n2", "n1", node.raft.term, index=apps[0].entries[0].index))
    assert len(net.take("n1", MsgType.APPEND)) == 1  # one freed slot, one more append


def test_rejection_backs_off_by_whole_terms() -> None:
    # Raft §5.3 (end): the follower's hint lets the leader skip all entries of a
    # conflicting term in one round trip.
    from raftnet import raft_with_log

    leader = raft_with_log("n1", ("n1", "n2"), [2, 2, 2, 2, 5, 5], term=5)
    r = leader.raft
    r.become_candidate()
    r.become_leader()
    leader.ready()
    # The follower holds 1(t1) then five entries of term 3: it rejects the probe at 7 with
    # a hint of (6, 3); every leader entry of a term above 3 is skipped.
    leader.step(
        msg(
            MsgType.APPEND_RESP, "n2", "n1", r.term, index=7, reject=True, reject_hint=6, log_term=3
        )
    )
    assert r.prs["n2"].next == 6  # index 5 (term 2) is the last that can match


def test_ready_orders_persistence_before_messages() -> None:
    net = Net(ids(3))
    net.elect("n1")
    node = net.nodes["n1"]
    node.propose(b"x")
    rd = node.ready()
    assert rd.entries and rd.must_sync and rd.messages
    node.storage.append(rd.entries)
    node.advance(rd)
    assert not node.has_ready()


def test_commit_only_ready_needs_no_fsync() -> None:
    # etcd MustSync: only term, vote and entries must be synced; the commit index can be
    # recomputed after a crash.
    net = Net(ids(3))
    net.elect("n1")
    node = net.nodes["n2"]
    term = node.raft.term
    index = node.raft.log.last_index()
    e = Entry(term=term, index=index + 1, data=b"y")
    node.step(msg(MsgType.APPEND, "n1", "n2", term, index=index, log_term=term, entries=(e,)))
    net.persist("n2")
    node.step(msg(MsgType.HEARTBEAT, "n1", "n2", term, commit=index + 1))
    rd = node.ready()
    assert rd.hard_state is not None and rd.hard_state.commit == index + 1
    assert not rd.must_sync
    node.advance(rd)


def test_garbage_messages_are_ignored() -> None:
    net = Net(ids(3))
    net.elect("n1")
    node = net.nodes["n2"]
    term = node.raft.term
    last = node.raft.log.last_index()
    bad = [
        msg(
            MsgType.APPEND,
            "n1",
            "n2",
            term,
            index=last,
            log_term=term,
            entries=(Entry(term=term, index=last + 5),),
        ),  # not after index
        msg(
            MsgType.APPEND,
            "n1",
            "n2",
            term,
            index=last,
            log_term=term,
            entries=(Entry(term=term + 9, index=last + 1),),
        ),  # entry from the future
        msg(MsgType.SNAPSHOT, "n1", "n2", term),  # no snapshot
        msg(MsgType.HEARTBEAT, "n1", "n9", term),  # not for us
        msg(MsgType.HEARTBEAT, "n1", "n2", 0),  # no term
    ]
    for m in bad:
        node.step(m)
    assert node.raft.log.last_index() == last and node.raft.msgs == []
    node.step(msg(MsgType.HEARTBEAT, "n1", "n2", term, commit=10**9))  # clamped
    assert node.raft.log.committed == last
