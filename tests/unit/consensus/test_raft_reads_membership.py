"""ReadIndex (dissertation §6.4) and one-server-at-a-time membership changes (§4.1)."""

from __future__ import annotations

import pytest
from raftnet import Net, ids, msg

from ackdb.consensus import (
    ConfChange,
    ConfChangeKind,
    EntryKind,
    MsgType,
    ProposalDropped,
    ReadState,
    Role,
    decode_conf_entry,
)


def test_read_index_is_the_commit_index_confirmed_by_a_heartbeat_round() -> None:
    # Dissertation §6.4: record the commit index, send heartbeats, answer once a majority
    # acknowledged them.
    net = Net(ids(3))
    net.elect("n1")
    net.propose("n1", b"a")
    node = net.nodes["n1"]
    node.read_index(b"r1")
    beats = net.take("n1", MsgType.HEARTBEAT)
    assert net.reads["n1"] == []
    net.deliver(beats[:1])  # one follower answers: with the leader, a majority of 3
    net.stabilize()
    assert net.reads["n1"] == [ReadState(ctx=b"r1", index=node.raft.log.committed)]


def test_read_index_waits_without_a_majority() -> None:
    net = Net(ids(3))
    net.elect("n1")
    net.isolate("n1")
    net.nodes["n1"].read_index(b"r1")
    net.stabilize()
    net.tick("n1", 3)
    net.stabilize()
    assert net.reads["n1"] == []
    net.heal()
    net.tick("n1")
    net.stabilize()
    assert [r.ctx for r in net.reads["n1"]] == [b"r1"]


def test_read_index_waits_for_the_first_commit_of_the_term() -> None:
    # Dissertation §6.4 step 1: a new leader does not know the commit index until it has
    # committed an entry of its own term.
    net = Net(ids(3))
    net.nodes["n1"].campaign()
    for m in net.take("n1"):
        net.nodes[m.to].step(m)
    for nid in ("n2", "n3"):
        net.nodes["n1"].step(*net.take(nid, MsgType.VOTE_RESP))
    r = net.raft("n1")
    assert r.role == Role.LEADER and r.log.term(r.log.committed) != r.term
    net.nodes["n1"].read_index(b"early")
    assert r.read_only.waiting_commit
    net.stabilize()
    net.tick("n1")
    net.stabilize()
    (rs,) = net.reads["n1"]
    assert rs.ctx == b"early" and r.log.term(rs.index) == r.term


def test_follower_read_is_forwarded_to_the_leader() -> None:
    net = Net(ids(3))
    net.elect("n1")
    net.propose("n1", b"a")
    net.nodes["n3"].read_index(b"f1")
    net.stabilize()
    (rs,) = net.reads["n3"]
    assert rs.ctx == b"f1" and rs.index == net.raft("n1").log.committed


def test_read_without_a_leader_is_refused() -> None:
    net = Net(ids(3))
    with pytest.raises(ProposalDropped):
        net.nodes["n1"].read_index(b"x")


def test_single_voter_reads_at_once() -> None:
    net = Net(ids(1))
    net.elect("n1")
    net.nodes["n1"].read_index(b"solo")
    net.stabilize()
    assert [r.ctx for r in net.reads["n1"]] == [b"solo"]


def test_pending_reads_are_bounded() -> None:
    net = Net(ids(3), max_pending_reads=2)
    net.elect("n1")
    net.isolate("n1")
    net.nodes["n1"].read_index(b"a")
    net.nodes["n1"].read_index(b"b")
    with pytest.raises(ProposalDropped):
        net.nodes["n1"].read_index(b"c")


def _add(net: Net, leader: str, nid: str) -> int:
    net.add(nid)  # an empty member, not bootstrapped
    index = net.nodes[leader].propose_conf_change(ConfChange(ConfChangeKind.ADD_NODE, nid))
    net.stabilize()
    return index


def test_conf_change_takes_effect_when_appended() -> None:
    # Dissertation §4.1: "a server always uses the latest configuration in its log,
    # regardless of whether the entry is committed."
    net = Net(ids(3))
    net.elect("n1")
    net.down |= {"n2", "n3"}
    net.add("n4")
    net.nodes["n1"].propose_conf_change(ConfChange(ConfChangeKind.ADD_NODE, "n4"))
    assert net.raft("n1").voters() == ("n1", "n2", "n3", "n4")
    assert "n4" in net.raft("n1").prs
    assert net.raft("n1").log.committed < net.raft("n1").log.last_index()


def test_new_member_catches_up_and_votes() -> None:
    net = Net(ids(3))
    net.elect("n1")
    net.propose("n1", b"a")
    _add(net, "n1", "n4")
    net.tick("n1")
    net.stabilize()
    assert net.raft("n4").voters() == ("n1", "n2", "n3", "n4")
    assert net.data_applied("n4") == [b"a"]
    net.down |= {"n2", "n3"}
    net.propose("n1", b"b")
    assert net.raft("n1").log.committed < net.raft("n1").log.last_index()  # 2 of 4: no


def test_only_one_conf_change_at_a_time() -> None:
    # Dissertation §4.1: the leader does not start a new change until the previous one is
    # committed.
    net = Net(ids(3))
    net.elect("n1")
    net.down |= {"n2", "n3"}
    node = net.nodes["n1"]
    node.propose_conf_change(ConfChange(ConfChangeKind.ADD_NODE, "n4"))
    with pytest.raises(ProposalDropped):
        node.propose_conf_change(ConfChange(ConfChangeKind.ADD_NODE, "n5"))


def test_no_conf_change_before_an_entry_of_the_term_commits() -> None:
    # Ongaro, raft-dev 2015-07-10 ("bug in single-server membership changes"): a leader
    # may not append a configuration entry until it has committed an entry of its term.
    net = Net(ids(3))
    net.nodes["n1"].campaign()
    for m in net.take("n1"):
        net.nodes[m.to].step(m)
    for nid in ("n2", "n3"):
        net.nodes["n1"].step(*net.take(nid, MsgType.VOTE_RESP))
    assert net.raft("n1").role == Role.LEADER
    with pytest.raises(ProposalDropped):
        net.nodes["n1"].propose_conf_change(ConfChange(ConfChangeKind.ADD_NODE, "n4"))


def test_truncated_conf_entry_reverts_the_configuration() -> None:
    # A conf entry takes effect when appended, so a follower that loses it to a conflicting
    # leader returns to the configuration before it.
    net = Net(ids(3))
    net.elect("n1")
    net.isolate("n1")
    net.nodes["n1"].propose_conf_change(ConfChange(ConfChangeKind.REMOVE_NODE, "n3"))
    assert net.raft("n1").voters() == ("n1", "n2")
    net.stabilize()
    net.heal()
    net.elect("n2")
    net.stabilize()
    net.tick("n2")
    net.stabilize()
    assert net.raft("n1").voters() == ("n1", "n2", "n3")


def test_removed_leader_steps_down_once_the_removal_commits() -> None:
    # Dissertation §4.2.2: the leader manages the cluster until Cnew is committed, then
    # steps down (here handing over with TimeoutNow).
    net = Net(ids(3))
    net.elect("n1")
    net.nodes["n1"].propose_conf_change(ConfChange(ConfChangeKind.REMOVE_NODE, "n1"))
    net.stabilize()
    assert net.raft("n1").role == Role.FOLLOWER
    leaders = [n for n in ("n2", "n3") if net.raft(n).role == Role.LEADER]
    assert len(leaders) == 1
    assert net.raft(leaders[0]).voters() == ("n2", "n3")
    for _ in range(50):  # the removed member never campaigns
        net.tick("n1")
    assert net.raft("n1").role == Role.FOLLOWER


def test_committed_conf_entries_carry_the_change_and_the_configuration() -> None:
    net = Net(ids(3))
    net.elect("n1")
    _add(net, "n1", "n4")
    confs = [
        decode_conf_entry(e.data) for e in net.applied["n1"] if e.kind == EntryKind.CONF_CHANGE
    ]
    assert confs[0][0] is None and confs[0][1].voters == ("n1", "n2", "n3")  # bootstrap
    cc, conf = confs[1]
    assert cc is not None and (cc.kind, cc.node_id) == (ConfChangeKind.ADD_NODE, "n4")
    assert conf.voters == ("n1", "n2", "n3", "n4")


@pytest.mark.parametrize(
    ("kind", "node_id"),
    [(ConfChangeKind.ADD_NODE, "n2"), (ConfChangeKind.REMOVE_NODE, "n9")],
)
def test_pointless_conf_changes_are_refused(kind: ConfChangeKind, node_id: str) -> None:
    net = Net(ids(3))
    net.elect("n1")
    with pytest.raises(ProposalDropped):
        net.nodes["n1"].propose_conf_change(ConfChange(kind, node_id))


def test_vote_from_outside_the_configuration_does_not_count() -> None:
    net = Net(ids(3))
    node = net.nodes["n1"]
    node.campaign()
    net.take("n1")
    node.step(msg(MsgType.VOTE_RESP, "n9", "n1", node.raft.term))
    assert node.raft.role == Role.CANDIDATE
