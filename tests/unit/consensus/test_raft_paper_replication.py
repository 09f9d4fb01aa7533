"""The claims of the Raft paper on log replication and safety (§5.3-§5.5, §8), one test
per claim (after etcd-io/raft raft_paper_test.go)."""

from __future__ import annotations

import pytest
from raftnet import Net, ids, msg, raft_with_log

from ackdb.consensus import Entry, EntryKind, MsgType, Role


def test_leader_appends_and_replicates_a_proposal() -> None:
    # Raft §5.3: "the leader appends the command to its log as a new entry, then issues
    # AppendEntries RPCs in parallel to each of the other servers to replicate the entry."
    net = Net(ids(3))
    net.elect("n1")
    r = net.raft("n1")
    last = r.log.last_index()
    index = net.nodes["n1"].propose(b"cmd")
    assert index == last + 1 and r.log.last_index() == index
    apps = net.take("n1", MsgType.APPEND)
    assert sorted(m.to for m in apps) == ["n2", "n3"]
    for m in apps:
        assert [e.data for e in m.entries] == [b"cmd"]
        assert (m.index, m.log_term) == (last, r.term)


@pytest.mark.parametrize(
    ("size", "acks", "committed"),
    [(1, 0, True), (3, 0, False), (3, 1, True), (5, 1, False), (5, 2, True), (5, 4, True)],
)
def test_entry_commits_once_on_a_majority(size: int, acks: int, committed: bool) -> None:
    # Raft §5.3: "A log entry is committed once the leader that created the entry has
    # replicated it on a majority of the servers."
    net = Net(ids(size))
    net.elect("n1")
    node = net.nodes["n1"]
    index = node.propose(b"cmd")
    net.take("n1")
    for frm in net.ids[1 : 1 + acks]:
        node.step(msg(MsgType.APPEND_RESP, frm, "n1", node.raft.term, index=index))
    assert (node.raft.log.committed >= index) == committed


def test_committing_an_entry_commits_all_before_it() -> None:
    # Raft §5.3: committing an entry "also commits all preceding entries in the leader's
    # log, including entries created by previous leaders."
    node = raft_with_log("n1", ids(3), [2, 2, 3], term=3)
    r = node.raft
    r.become_candidate()
    r.become_leader()
    noop = r.log.last_index()
    node.step(msg(MsgType.APPEND_RESP, "n2", "n1", r.term, index=noop))
    assert r.log.committed == noop
    rd = node.ready()
    assert [e.index for e in rd.committed_entries] == list(range(1, noop + 1))


def test_follower_applies_entries_the_leader_committed() -> None:
    # Raft §5.3: "Once a follower learns that a log entry is committed, it applies the entry
    # to its local state machine (in log order)."
    net = Net(ids(3))
    net.elect("n1")
    net.propose("n1", b"a")
    net.propose("n1", b"b")
    net.tick("n1")  # a heartbeat carries the final commit index
    net.stabilize()
    assert net.data_applied("n2") == [b"a", b"b"]
    assert [e.index for e in net.applied["n2"]] == list(range(1, 5))


@pytest.mark.parametrize(
    ("index", "log_term", "reject"),
    [(3, 2, False), (2, 2, False), (3, 3, True), (4, 2, True), (1, 1, False)],
)
def test_follower_refuses_entries_after_a_mismatch(index: int, log_term: int, reject: bool) -> None:
    # Raft §5.3: "If the follower does not find an entry in its log with the same index and
    # term [as the one preceding the new entries], then it refuses the new entries."
    node = raft_with_log("n1", ids(3), [2, 2], term=2)  # log: 1(t1) 2(t2) 3(t2)
    node.step(msg(MsgType.APPEND, "n2", "n1", 2, index=index, log_term=log_term, commit=1))
    (resp,) = node.raft.msgs
    assert resp.type == MsgType.APPEND_RESP and resp.reject == reject
    if reject:
        assert resp.index == index
        assert resp.reject_hint <= min(index, 3)


def test_conflicting_entries_are_replaced() -> None:
    # Raft §5.3: "If an existing entry conflicts with a new one (same index but different
    # terms), delete the existing entry and all that follow it" (Figure 2 step 3); entries
    # already present are kept (step 4 appends only new ones).
    node = raft_with_log("n1", ids(3), [2, 2, 2], term=3)  # 1(t1) 2 3 4 (t2)
    new = (Entry(term=3, index=3, data=b"n3"), Entry(term=3, index=4, data=b"n4"))
    node.step(msg(MsgType.APPEND, "n2", "n1", 3, index=2, log_term=2, entries=new))
    log = node.raft.log
    assert [log.term(i) for i in range(1, 5)] == [1, 2, 3, 3]
    assert node.raft.msgs[-1].index == 4 and not node.raft.msgs[-1].reject
    same = (Entry(term=2, index=2, data=b"x"),)
    node.step(msg(MsgType.APPEND, "n2", "n1", 3, index=1, log_term=1, entries=same))
    assert log.last_index() == 4  # a matching prefix truncates nothing


FIGURE7_LEADER = [1, 1, 4, 4, 5, 5, 6, 6, 6]  # after the shared bootstrap entry (term 1)
FIGURE7_FOLLOWERS = {
    "a": [1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 4],
    "c": [1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 4, 4, 4, 4],
    "f": [1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}


@pytest.mark.parametrize("case", sorted(FIGURE7_FOLLOWERS))
def test_leader_forces_followers_to_duplicate_its_log(case: str) -> None:
    # Raft §5.3 and Figure 7: "the leader handles inconsistencies by forcing the followers'
    # logs to duplicate its own", whatever mix of missing and extraneous entries they hold.
    voters = ("n1", "n2", "n3")
    net = Net(())
    net.nodes["n1"] = raft_with_log("n1", voters, FIGURE7_LEADER, term=8)
    net.nodes["n2"] = raft_with_log("n2", voters, FIGURE7_FOLLOWERS[case], term=8)
    for nid in ("n1", "n2"):
        net.applied[nid], net.reads[nid] = [], []
    net.down.add("n3")
    r = net.raft("n1")
    r.become_candidate()
    r.become_leader()
    net.stabilize()
    leader_log = r.log.slice(1, r.log.last_index() + 1)
    follower = net.raft("n2").log
    assert [(e.index, e.term) for e in follower.slice(1, follower.last_index() + 1)] == [
        (e.index, e.term) for e in leader_log
    ]
    assert follower.committed == r.log.committed == r.log.last_index()


def test_only_entries_of_the_current_term_commit_by_counting() -> None:
    # Raft §5.4.2: "Raft never commits log entries from previous terms by counting
    # replicas. Only log entries from the leader's current term are committed by counting."
    node = raft_with_log("n1", ids(3), [2, 2], term=2)
    r = node.raft
    r.become_candidate()
    r.become_leader()  # term 3, no-op at index 4
    node.step(msg(MsgType.APPEND_RESP, "n2", "n1", r.term, index=3))
    assert r.log.committed == 1  # index 3 (term 2) is on a majority, yet not committed
    node.step(msg(MsgType.APPEND_RESP, "n2", "n1", r.term, index=4))
    assert r.log.committed == 4


def test_figure8_old_term_entry_is_not_committed_by_a_later_leader() -> None:
    # Raft §5.4.2, Figure 8: S1 (term 4) re-replicates its term-2 entry to a majority; if it
    # counted that as committed, S5 (holding a term-3 entry there) could still be elected
    # and overwrite it. With the rule, the entry stays uncommitted; the test-only flag that
    # drops the rule commits it.
    for unsafe, want in ((False, 1), (True, 2)):
        s1 = raft_with_log("n1", ids(5), [2], term=3, test_only_unsafe_commit_any_term=unsafe)
        r = s1.raft
        r.become_candidate()
        r.become_leader()  # term 4
        s1.step(msg(MsgType.APPEND_RESP, "n2", "n1", r.term, index=2))
        s1.step(msg(MsgType.APPEND_RESP, "n3", "n1", r.term, index=2))
        assert r.log.committed == want
        # S5's log (a term-3 entry at index 2) is more up to date than S2 and S3's.
        s3 = raft_with_log("n3", ids(5), [2], term=4)
        s3.step(msg(MsgType.VOTE, "n5", "n3", 5, index=2, log_term=3))
        assert s3.raft.vote == "n5"


def test_new_leader_appends_a_noop_of_its_term() -> None:
    # Raft §8: "each leader [commits] a blank no-op entry into the log at the start of its
    # term", so it learns which entries are committed.
    net = Net(ids(3))
    net.elect("n2")
    r = net.raft("n2")
    last = r.log.slice(r.log.last_index(), r.log.last_index() + 1)[0]
    assert (last.kind, last.term) == (EntryKind.NOOP, r.term)
    assert r.log.committed == last.index


def test_append_entries_is_idempotent() -> None:
    # Raft §5.5: "Raft RPCs are idempotent": a repeated AppendEntries changes nothing.
    node = raft_with_log("n1", ids(3), [2], term=2)
    app = msg(
        MsgType.APPEND,
        "n2",
        "n1",
        2,
        index=2,
        log_term=2,
        entries=(Entry(term=2, index=3, data=b"z"),),
        commit=3,
    )
    node.step(app)
    before = (node.raft.log.last_index(), node.raft.log.committed)
    node.step(app)
    assert (node.raft.log.last_index(), node.raft.log.committed) == before == (3, 3)
    assert [m.index for m in node.raft.msgs] == [3, 3]


def test_a_crashed_follower_catches_up() -> None:
    # Raft §5.5: "If a follower or candidate crashes, then future RequestVote and
    # AppendEntries RPCs sent to it will fail. Raft handles these failures by retrying".
    net = Net(ids(3))
    net.elect("n1")
    net.down.add("n3")
    for i in range(5):
        net.propose("n1", b"%d" % i)
    net.down.clear()
    for _ in range(3):
        net.tick("n1")
        net.stabilize()
    assert net.data_applied("n3") == [b"%d" % i for i in range(5)]
    assert net.raft("n3").role == Role.FOLLOWER
