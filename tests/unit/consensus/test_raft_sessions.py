"""Client sessions: a retried command applies once (Raft dissertation §6.3)."""

from __future__ import annotations

import msgpack
import pytest

from ackdb.consensus.sessions import Sessions, StaleRequest


def test_retry_returns_the_remembered_result_without_running_again() -> None:
    s = Sessions()
    calls: list[int] = []

    def fn() -> int:
        calls.append(1)
        return len(calls)

    assert s.apply("c1", 1, fn, index=10) == 1
    assert s.apply("c1", 1, fn, index=11) == 1  # retry: same answer, not run
    assert s.apply("c1", 2, fn, index=12) == 2
    assert calls == [1, 1]
    with pytest.raises(StaleRequest):
        s.apply("c1", 1, fn, index=13)  # a delayed duplicate of an older command
    assert s.apply("c1", 5, fn, index=14) == 3  # sequence numbers may skip


def test_clients_are_independent() -> None:
    s = Sessions()
    assert s.apply("a", 1, lambda: "a1", index=1) == "a1"
    assert s.apply("b", 1, lambda: "b1", index=2) == "b1"
    assert s.last_seq("a") == 1 and s.last_seq("zz") == 0


def test_expiry_is_by_log_index_and_deterministic() -> None:
    s = Sessions(expiry_entries=10)
    s.apply("old", 1, lambda: 0, index=1)
    s.apply("new", 1, lambda: 0, index=8)
    s.apply("new", 2, lambda: 0, index=12)  # index 12 > 1 + 10: "old" expires
    assert s.last_seq("old") == 0 and s.last_seq("new") == 2


def test_max_clients_evicts_the_least_recently_active() -> None:
    s = Sessions(max_clients=2)
    s.apply("a", 1, lambda: 0, index=1)
    s.apply("b", 1, lambda: 0, index=2)
    s.apply("a", 2, lambda: 0, index=3)
    s.apply("c", 1, lambda: 0, index=4)
    assert (s.last_seq("a"), s.last_seq("b"), s.last_seq("c")) == (2, 0, 1)


def test_snapshot_restore_round_trips_through_msgpack() -> None:
    s = Sessions(expiry_entries=100)
    s.apply("a", 3, lambda: [1, "x"], index=5)
    s.apply("b", 1, lambda: None, index=6)
    image = msgpack.unpackb(msgpack.packb(s.snapshot()), raw=False)
    t = Sessions.restore(image, expiry_entries=100)
    assert t.snapshot() == s.snapshot()
    assert t.apply("a", 3, lambda: "rerun", index=7) == [1, "x"]
    assert list(t.snapshot()[1][0][:2]) == ["b", 1]  # "a" moved to most recent
    with pytest.raises(ValueError):
        Sessions.restore([99, []])
