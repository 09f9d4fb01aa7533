"""The claims of the Raft paper (Ongaro & Ousterhout, 2014) on terms and elections, one
test per claim (after etcd-io/raft raft_paper_test.go)."""

from __future__ import annotations

import random

import pytest
from raftnet import Net, config, ids, msg, raft_with_log

from ackdb.consensus import MemoryStorage, MsgType, RawNode, Role


def test_servers_start_as_followers() -> None:
    # Raft §5.2: "When servers start up, they begin as followers."
    net = Net(ids(3))
    for nid in net.ids:
        assert net.raft(nid).role == Role.FOLLOWER
        assert net.raft(nid).lead is None


@pytest.mark.parametrize("role", [Role.FOLLOWER, Role.CANDIDATE, Role.LEADER])
def test_higher_term_updates_term_and_reverts_to_follower(role: Role) -> None:
    # Raft §5.1: "If one server's current term is smaller than the other's, then it updates
    # its current term to the larger value. If a candidate or leader discovers that its term
    # is out of date, it immediately reverts to follower state."
    net = Net(ids(3))
    r = net.raft("n1")
    if role == Role.CANDIDATE:
        r.become_candidate()
    elif role == Role.LEADER:
        net.elect("n1")
    term = r.term
    net.nodes["n1"].step(msg(MsgType.HEARTBEAT, "n2", "n1", term + 5))
    assert r.role == Role.FOLLOWER
    assert r.term == term + 5
    assert r.lead == "n2"
    assert r.vote is None


def test_stale_term_messages_are_rejected() -> None:
    # Raft §5.1: "If a server receives a request with a stale term number, it rejects the
    # request." The log and term are untouched.
    node = raft_with_log("n1", ids(3), [2], term=4)
    node.step(msg(MsgType.APPEND, "n2", "n1", 3, index=2, log_term=2, entries=()))
    r = node.raft
    assert (r.term, r.lead, r.log.last_index()) == (4, None, 2)
    assert r.msgs == []  # (with CheckQuorum/PreVote off nothing is answered)


def test_leader_sends_heartbeats() -> None:
    # Raft §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log
    # entries) to all followers in order to maintain their authority."
    net = Net(ids(3), heartbeat_tick=2, election_tick=10)
    net.elect("n1")
    net.tick("n1", 2)
    beats = net.take("n1", MsgType.HEARTBEAT)
    assert sorted(m.to for m in beats) == ["n2", "n3"]
    assert all(not m.entries and m.term == net.raft("n1").term for m in beats)


@pytest.mark.parametrize("role", [Role.FOLLOWER, Role.CANDIDATE])
def test_election_timeout_starts_an_election(role: Role) -> None:
    # Raft §5.2: "If a follower receives no communication over a period of time called the
    # election timeout ... To begin an election, a follower increments its current term and
    # transitions to candidate state. It then votes for itself and issues RequestVote RPCs in
    # parallel to each of the other servers." A candidate that times out starts a new one.
    net = Net(ids(3))
    r = net.raft("n1")
    if role == Role.CANDIDATE:
        r.become_candidate()
        net.take("n1")
    term = r.term
    net.tick("n1", 2 * r.cfg.election_tick)
    assert r.role == Role.CANDIDATE
    assert r.term == term + 1
    assert r.vote == "n1"
    votes = net.take("n1", MsgType.VOTE)
    assert sorted(m.to for m in votes) == ["n2", "n3"]
    assert all(m.term == term + 1 and m.index == r.log.last_index() for m in votes)


@pytest.mark.parametrize(
    ("size", "grants", "role"),
    [
        (1, {}, Role.LEADER),
        (3, {"n2": True, "n3": True}, Role.LEADER),
        (3, {"n2": True}, Role.LEADER),
        (5, {"n2": True, "n3": True, "n4": True, "n5": True}, Role.LEADER),
        (5, {"n2": True, "n3": True}, Role.LEADER),
        (3, {}, Role.CANDIDATE),
        (5, {"n2": True}, Role.CANDIDATE),
        (5, {"n2": False, "n3": False}, Role.CANDIDATE),
        (3, {"n2": False, "n3": False}, Role.FOLLOWER),
        (5, {"n2": False, "n3": False, "n4": False}, Role.FOLLOWER),
    ],
)
def test_candidate_wins_with_a_majority(size: int, grants: dict[str, bool], role: Role) -> None:
    # Raft §5.2: "A candidate wins an election if it receives votes from a majority of the
    # servers in the full cluster for the same term." A majority of refusals means it lost.
    net = Net(ids(size))
    node = net.nodes["n1"]
    node.campaign()
    net.take("n1")
    term = node.raft.term
    for frm, granted in grants.items():
        node.step(msg(MsgType.VOTE_RESP, frm, "n1", term, reject=not granted))
    assert node.raft.role == role
    assert node.raft.term == term


def test_one_vote_per_term_first_come_first_served() -> None:
    # Raft §5.2: "Each server will vote for at most one candidate in a given term, on a
    # first-come-first-served basis."
    net = Net(ids(3))
    node = net.nodes["n1"]
    node.step(msg(MsgType.VOTE, "n2", "n1", 2, index=1, log_term=1))
    node.step(msg(MsgType.VOTE, "n3", "n1", 2, index=1, log_term=1))
    node.step(msg(MsgType.VOTE, "n2", "n1", 2, index=1, log_term=1))  # a retry: granted again
    resps = net.take("n1", MsgType.VOTE_RESP)
    assert [(m.to, m.reject) for m in resps] == [("n2", False), ("n3", True), ("n2", False)]
    assert node.raft.vote == "n2"


def test_candidate_steps_down_for_a_leader_of_its_term() -> None:
    # Raft §5.2: "If the leader's term is at least as large as the candidate's current term,
    # then the candidate recognizes the leader as legitimate and returns to follower state."
    for delta in (0, 1):
        net = Net(ids(3))
        r = net.raft("n1")
        r.become_candidate()
        term = r.term + delta
        net.nodes["n1"].step(msg(MsgType.APPEND, "n2", "n1", term, index=1, log_term=1))
        assert (r.role, r.term, r.lead) == (Role.FOLLOWER, term, "n2")


def test_election_timeouts_are_randomized() -> None:
    # Raft §5.2: "election timeouts are chosen randomly from a fixed interval"; here
    # [election_tick, 2 * election_tick).
    seen = set()
    for seed in range(200):
        node = RawNode(config("n1", election_tick=10), MemoryStorage(), random.Random(seed))
        node.raft.become_follower(node.raft.term + 1, None)
        seen.add(node.raft.randomized_election_timeout)
    assert seen == set(range(10, 20))


def test_split_votes_are_rare() -> None:
    # Raft §5.2: randomized timeouts mean "in most cases only a single server will time
    # out"; count the rounds in which two of five followers time out on the same tick.
    rng = random.Random(5)
    conflicts = 0
    rounds = 300
    for _ in range(rounds):
        nodes = [RawNode(config(f"n{i}"), MemoryStorage(), rng) for i in range(1, 6)]
        for n in nodes:
            n.bootstrap(ids(5))
        first = None
        for _tick in range(40):
            timed_out = 0
            for n in nodes:
                n.tick()
                timed_out += n.raft.role == Role.CANDIDATE
            if timed_out:
                first = timed_out
                break
        assert first is not None
        conflicts += first > 1
    assert conflicts / rounds < 0.3


@pytest.mark.parametrize(
    ("voter_terms", "cand_index", "cand_term", "granted"),
    [
        # voter log (terms after the bootstrap entry) vs the candidate's last entry
        ([2, 2], 3, 2, True),  # same last term, same length
        ([2, 2], 4, 2, True),  # same last term, longer
        ([2, 2], 2, 2, False),  # same last term, shorter
        ([2, 2], 2, 3, True),  # higher last term wins even if shorter
        ([2, 3], 5, 2, False),  # lower last term loses even if longer
        ([], 1, 1, True),
    ],
)
def test_vote_only_for_up_to_date_logs(
    voter_terms: list[int], cand_index: int, cand_term: int, granted: bool
) -> None:
    # Raft §5.4.1: "the voter denies its vote if its own log is more up-to-date than that of
    # the candidate ... If the logs have last entries with different terms, then the log
    # with the later term is more up-to-date. If the logs end with the same term, then
    # whichever log is longer is more up-to-date."
    node = raft_with_log("n1", ids(3), voter_terms, term=3)
    node.step(msg(MsgType.VOTE, "n2", "n1", 4, index=cand_index, log_term=cand_term))
    (resp,) = [m for m in node.raft.msgs if m.type == MsgType.VOTE_RESP]
    assert resp.reject == (not granted)
    assert node.raft.vote == ("n2" if granted else None)


def test_vote_is_persisted_before_the_answer_is_sent() -> None:
    # Raft §5 (Figure 2, "Persistent state on all servers: ... votedFor"): the Ready that
    # carries the vote answer also carries the hard state holding the vote, to be synced
    # first.
    net = Net(ids(3))
    node = net.nodes["n1"]
    node.step(msg(MsgType.VOTE, "n2", "n1", 5, index=1, log_term=1))
    rd = node.ready()
    assert rd.hard_state is not None and rd.hard_state.vote == "n2" and rd.hard_state.term == 5
    assert rd.must_sync
    assert [m.type for m in rd.messages] == [MsgType.VOTE_RESP]
    node.advance(rd)
