"""PreVote, CheckQuorum, the leader lease and leadership transfer (Raft dissertation
§9.6, §6.2, §4.2.3, §3.10)."""

from __future__ import annotations

import pytest
from raftnet import Net, ids, msg

from ackdb.consensus import MsgType, ProposalDropped, Role


def test_prevote_does_not_bump_terms_of_a_partitioned_member() -> None:
    # Dissertation §9.6: a member that cannot win does not increase its term, so when it
    # rejoins it does not depose the leader.
    net = Net(ids(3), pre_vote=True)
    net.elect("n1")
    term = net.raft("n1").term
    net.isolate("n3")
    for _ in range(100):
        net.tick("n3")
        net.stabilize()
    assert net.raft("n3").term == term
    assert net.raft("n3").role == Role.PRE_CANDIDATE
    net.heal()
    net.tick("n1")
    net.stabilize()
    assert net.raft("n1").role == Role.LEADER and net.raft("n1").term == term
    assert net.raft("n3").lead == "n1"


def test_without_prevote_a_rejoining_member_disrupts_the_leader() -> None:
    # The problem PreVote solves (dissertation §9.6), shown so the test above can fail.
    net = Net(ids(3), pre_vote=False)
    net.elect("n1")
    term = net.raft("n1").term
    net.isolate("n3")
    net.tick("n3", 40)
    net.stabilize()
    net.heal()
    for _ in range(40):
        net.tick("n3")
        net.stabilize()
    assert net.raft("n1").term > term


def test_prevote_grants_only_to_up_to_date_logs() -> None:
    # Dissertation §9.6: the pre-vote uses the same log check as the vote (§5.4.1).
    net = Net(ids(3), pre_vote=True)
    net.elect("n1")
    net.propose("n1", b"x")
    node = net.nodes["n2"]
    node.raft.become_follower(node.raft.term, None)  # no leader: willing to pre-vote
    node.step(msg(MsgType.PRE_VOTE, "n3", "n2", node.raft.term + 1, index=1, log_term=1))
    (resp,) = node.raft.msgs
    assert resp.type == MsgType.PRE_VOTE_RESP and resp.reject
    assert node.raft.vote == "n1"  # a pre-vote records nothing


def test_check_quorum_leader_steps_down_without_a_majority() -> None:
    # Dissertation §6.2: "a leader steps down if an election timeout elapses without a
    # successful round of heartbeats to a majority of its cluster."
    net = Net(ids(3), check_quorum=True)
    net.elect("n1")
    net.isolate("n1")
    r = net.raft("n1")
    for _ in range(2 * r.cfg.election_tick + 1):
        net.tick("n1")
        net.stabilize()
    assert r.role == Role.FOLLOWER


def test_check_quorum_leader_stays_with_a_majority() -> None:
    net = Net(ids(3), check_quorum=True)
    net.elect("n1")
    net.down.add("n3")
    for _ in range(5 * net.raft("n1").cfg.election_tick):
        net.tick("n1")
        net.stabilize()
    assert net.raft("n1").role == Role.LEADER


def test_leader_lease_ignores_disruptive_votes() -> None:
    # Dissertation §4.2.3: "if a server receives a RequestVote request within the minimum
    # election timeout of hearing from a current leader, it does not update its term or
    # grant its vote."
    net = Net(ids(3), check_quorum=True)
    net.elect("n1")
    node = net.nodes["n2"]
    term = node.raft.term
    node.step(msg(MsgType.VOTE, "n3", "n2", term + 1, index=99, log_term=99))
    assert node.raft.term == term and node.raft.vote == "n1" and node.raft.msgs == []
    # ... except for a leadership transfer, which the leader itself asked for.
    node.step(msg(MsgType.VOTE, "n3", "n2", term + 1, index=99, log_term=99, context=b"transfer"))
    assert node.raft.term == term + 1 and node.raft.vote == "n3"


def test_stale_leader_learns_the_new_term_from_a_response() -> None:
    # With CheckQuorum a follower answers a stale leader's append with its higher term so
    # the stale leader steps down (etcd raft.go, "m.Term < r.Term").
    net = Net(ids(3), check_quorum=True)
    net.elect("n1")
    net.isolate("n1")
    leaders: list[str] = []
    for _ in range(60):
        net.tick("n2")
        net.tick("n3")
        net.stabilize()
        leaders = [n for n in ("n2", "n3") if net.raft(n).role == Role.LEADER]
        if leaders:
            break
    assert leaders and net.raft("n1").role == Role.LEADER  # n1 has not noticed yet
    net.heal()
    net.tick("n1")
    net.stabilize()
    assert net.raft("n1").role == Role.FOLLOWER
    assert net.raft("n1").term == net.raft(leaders[0]).term


def test_leadership_transfer_to_an_up_to_date_follower() -> None:
    # Dissertation §3.10: the leader brings the target up to date, then sends TimeoutNow;
    # the target campaigns at once and wins.
    net = Net(ids(3), check_quorum=True, pre_vote=True)
    net.elect("n1")
    net.down.add("n3")
    net.propose("n1", b"a")
    net.down.clear()
    net.nodes["n1"].transfer_leadership("n3")
    net.stabilize()
    assert net.raft("n3").role == Role.LEADER
    assert net.raft("n1").role == Role.FOLLOWER and net.raft("n1").lead == "n3"


def test_transfer_blocks_proposals_and_is_abandoned_after_an_election_timeout() -> None:
    # Dissertation §3.10: the leader stops accepting client requests during a transfer,
    # and aborts it if it does not complete within an election timeout.
    net = Net(ids(3))
    net.elect("n1")
    net.down.add("n3")
    node = net.nodes["n1"]
    node.transfer_leadership("n3")
    with pytest.raises(ProposalDropped):
        node.propose(b"x")
    net.tick("n1", node.raft.cfg.election_tick)
    assert node.raft.lead_transferee is None
    node.propose(b"x")


def test_transfer_to_a_non_voter_or_from_a_follower_is_refused() -> None:
    net = Net(ids(3))
    net.elect("n1")
    with pytest.raises(ProposalDropped):
        net.nodes["n1"].transfer_leadership("n9")
    with pytest.raises(ProposalDropped) as exc:
        net.nodes["n2"].transfer_leadership("n3")
    assert exc.value.leader == "n1"


def test_follower_refuses_proposals_and_names_the_leader() -> None:
    net = Net(ids(3))
    net.elect("n1")
    with pytest.raises(ProposalDropped) as exc:
        net.nodes["n2"].propose(b"x")
    assert exc.value.leader == "n1"


def test_uncommitted_bytes_limit_drops_proposals() -> None:
    net = Net(ids(3), max_uncommitted_bytes=100)
    net.elect("n1")
    net.down |= {"n2", "n3"}
    node = net.nodes["n1"]
    node.propose(b"x" * 60)
    with pytest.raises(ProposalDropped):
        node.propose(b"y" * 60)
    net.down.clear()
    net.tick("n1")
    net.stabilize()
    node.propose(b"y" * 60)  # committed entries free the budget
