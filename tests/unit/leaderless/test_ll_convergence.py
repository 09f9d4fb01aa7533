"""Hints, anti-entropy trees and the tombstone purge rule (leaderless/hints.py,
antientropy.py, tombstones.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ackdb.keyspace import lww
from ackdb.keyspace.lww import Record, Version
from ackdb.leaderless.antientropy import HashTree, differing_leaves, leaf_ranges, plan_sync
from ackdb.leaderless.hints import HintQueue
from ackdb.leaderless.tombstones import grace_ms, may_purge


def _w(ms: int, value: bytes = b"v") -> Record:
    return lww.string_write(Version(ms, 0, 1), value)


def test_hints_coalesce_per_key_and_replay_in_batches() -> None:
    q = HintQueue(replay_batch_max=2)
    assert q.put(b"a", _w(1), 0) and q.put(b"a", _w(3, b"new"), 1) and q.put(b"b", _w(2), 1)
    q.put(b"c", _w(2), 1)
    assert len(q) == 3
    first = q.take(10)
    assert [k for k, _ in first] == [b"a", b"b"] and first[0][1].view() == ("string", b"new")
    assert [k for k, _ in q.take(10)] == [b"c"] and q.size_bytes == 0


def test_hint_limits_count_bytes_and_age() -> None:
    q = HintQueue(hint_count_max=2, hint_bytes_max=10_000, hint_age_ms_max=100)
    assert q.put(b"a", _w(1), 0) and q.put(b"b", _w(1), 50)
    assert not q.put(b"c", _w(1), 50) and q.dropped == 1
    assert q.expire(120) == 1 and len(q) == 1 and q.oldest_ms() == 50
    small = HintQueue(hint_bytes_max=30)
    assert not small.put(b"k", _w(1, b"x" * 64), 0) and small.dropped == 1


def test_tree_finds_exactly_the_differing_leaves() -> None:
    a = {b"k%d" % i: _w(i) for i in range(50)}
    b = dict(a)
    b[b"k7"] = _w(99)
    del b[b"k30"]
    ta = HashTree(lww.tree_leaves(a.items(), 6))
    tb = HashTree(lww.tree_leaves(b.items(), 6))
    want = sorted({lww.leaf_of(b"k7", 6), lww.leaf_of(b"k30", 6)})
    assert differing_leaves(ta, tb) == want
    assert differing_leaves(ta, ta) == [] and ta.root != tb.root
    assert leaf_ranges([5, 3, 4, 9]) == [(3, 6), (9, 10)]


@given(
    st.dictionaries(st.sampled_from([b"a", b"b", b"c", b"d"]), st.integers(1, 9)),
    st.dictionaries(st.sampled_from([b"a", b"b", b"c", b"d"]), st.integers(1, 9)),
)
def test_plan_sync_makes_both_sides_the_merge(da: dict[bytes, int], db: dict[bytes, int]) -> None:
    a = {k: _w(ms, b"%d" % ms) for k, ms in da.items()}
    b = {k: lww.string_write(Version(ms, 0, 2), b"%d" % ms) for k, ms in db.items()}
    to_a, to_b = plan_sync(a, b)
    for side, push in ((a, to_a), (b, to_b)):
        for k, r in push.items():
            if k in side:
                lww.merge_into(side[k], r)
            else:
                side[k] = r.copy()
    assert a == b
    assert plan_sync(a, b) == ({}, {})


def test_purge_needs_every_replica_and_the_grace_period() -> None:
    v = Version(1_000, 0, 1)
    dead = lww.delete_write(v)
    grace = grace_ms(hint_age_ms_max=500, request_timeout_ms=100, max_skew_ms=50)
    all_hold = {1: dead, 2: dead.copy(), 3: dead.copy()}
    assert not may_purge(v, all_hold, (1, 2, 3), 1_000 + grace, grace)  # timer not past
    assert may_purge(v, all_hold, (1, 2, 3), 1_001 + grace, grace)
    missing = {1: dead, 2: dead}
    assert not may_purge(v, missing, (1, 2, 3), 10**9, grace)  # never by a timer alone
    newer = {1: dead, 2: dead, 3: _w(2_000)}
    assert not may_purge(v, newer, (1, 2, 3), 10**9, grace)
