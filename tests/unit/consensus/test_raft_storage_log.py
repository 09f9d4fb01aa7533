"""MemoryStorage, RaftLog (stable + unstable), progress arithmetic against naive models."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ackdb.consensus import (
    CompactedError,
    ConfState,
    Entry,
    MemoryStorage,
    Snapshot,
    SnapshotOutOfDateError,
    UnavailableError,
)
from ackdb.consensus.log import RaftLog
from ackdb.consensus.progress import (
    Inflights,
    Progress,
    ProgressState,
    VoteResult,
    committed_index,
    quorum,
    vote_result,
)


def ents(*terms: int, start: int = 1) -> list[Entry]:
    return [Entry(term=t, index=start + i, data=b"%d" % (start + i)) for i, t in enumerate(terms)]


def test_memory_storage_indexes_terms_and_compaction() -> None:
    s = MemoryStorage()
    s.append(ents(1, 1, 2, 3))
    assert (s.first_index(), s.last_index(), s.term(3)) == (1, 4, 2)
    s.create_snapshot(2, ConfState(("a",)), b"d")
    s.compact(2)
    assert (s.first_index(), s.term(2)) == (3, 1)
    with pytest.raises(CompactedError):
        s.term(1)
    with pytest.raises(CompactedError):
        s.entries(2, 4)
    with pytest.raises(UnavailableError):
        s.term(9)
    with pytest.raises(SnapshotOutOfDateError):
        s.create_snapshot(2, ConfState(), b"")
    s.append(ents(5, start=4))  # truncates the old 4
    assert [e.term for e in s.entries(3, 5)] == [2, 5]
    assert [e.index for e in s.entries(3, 5, max_bytes=1)] == [3]  # at least one


def test_memory_storage_apply_snapshot_replaces_everything() -> None:
    s = MemoryStorage()
    s.append(ents(1, 1))
    s.apply_snapshot(Snapshot(index=5, term=3, conf=ConfState(("a",))))
    assert (s.first_index(), s.last_index(), s.term(5)) == (6, 5, 3)
    with pytest.raises(SnapshotOutOfDateError):
        s.apply_snapshot(Snapshot(index=4, term=3))


def test_log_spans_stable_and_unstable_entries() -> None:
    s = MemoryStorage()
    s.append(ents(1, 1, 2))
    log = RaftLog(s)
    log.append(ents(2, 3, start=4))
    assert log.last_index() == 5
    assert [e.index for e in log.slice(2, 6)] == [2, 3, 4, 5]
    assert [e.index for e in log.slice(2, 6, max_bytes=1)] == [2]
    # A conflicting append into the stable part replaces it in the unstable tail.
    log.append(ents(4, start=3))
    assert (log.last_index(), log.term(3), log.term(2)) == (3, 4, 1)
    log.stable_to(3, 4)
    assert log.unstable == []


def test_log_never_truncates_committed_entries() -> None:
    s = MemoryStorage()
    s.append(ents(1, 1, 2))
    log = RaftLog(s)
    log.commit_to(3)
    with pytest.raises(AssertionError):
        log.append(ents(5, start=3))


def test_find_conflict_by_term() -> None:
    s = MemoryStorage()
    s.append(ents(1, 2, 2, 4, 4, 5))
    log = RaftLog(s)
    assert log.find_conflict_by_term(6, 3) == (3, 2)
    assert log.find_conflict_by_term(6, 9) == (6, 5)
    assert log.find_conflict_by_term(6, 0) == (0, 0)


def test_maybe_append_commits_only_to_the_last_new_entry() -> None:
    # Raft Figure 2, AppendEntries step 5: commitIndex = min(leaderCommit, index of last
    # new entry).
    s = MemoryStorage()
    s.append(ents(1, 1))
    log = RaftLog(s)
    assert log.maybe_append(2, 1, 10, ents(2, start=3)) == 3
    assert log.committed == 3
    assert log.maybe_append(3, 9, 10, []) is None


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=9))
def test_committed_index_is_the_majority_median(matches: list[int]) -> None:
    voters = [f"v{i}" for i in range(len(matches))]
    got = committed_index(voters, dict(zip(voters, matches, strict=True)))
    # Naive: the largest index that at least a majority has reached.
    naive = max(i for i in range(51) if sum(m >= i for m in matches) >= len(matches) // 2 + 1)
    assert got == naive


@given(st.lists(st.sampled_from([True, False, None]), min_size=1, max_size=9))
def test_vote_result_against_counting(votes: list[bool | None]) -> None:
    voters = [f"v{i}" for i in range(len(votes))]
    tally = {v: g for v, g in zip(voters, votes, strict=True) if g is not None}
    got = vote_result(voters, tally)
    q = quorum(len(votes))
    yes, no = votes.count(True), votes.count(False)
    want = (
        VoteResult.WON
        if yes >= q
        else VoteResult.LOST
        if len(votes) - no < q
        else VoteResult.PENDING
    )
    assert got == want


def test_inflights_window() -> None:
    w = Inflights(3)
    for i in (5, 7, 9):
        w.add(i)
    assert w.full()
    w.free_le(7)
    assert w.count() == 1 and not w.full()
    w.free_first_one()
    assert w.count() == 0


def test_progress_decrements_only_on_the_current_probe() -> None:
    pr = Progress(next_index=10, max_inflight=4)
    assert not pr.maybe_decr_to(5, 3)  # an answer to an older probe: stale
    assert pr.maybe_decr_to(9, 3)
    assert pr.next == 4
    pr.maybe_update(6)
    pr.become_replicate()
    assert pr.state == ProgressState.REPLICATE and pr.next == 7
    assert not pr.maybe_decr_to(5, 0)  # at or below match: stale
    assert pr.maybe_decr_to(8, 0) and pr.next == 7
