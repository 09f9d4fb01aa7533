"""The anti-entropy jobs (leaderless/antientropy.py: PairSync, PurgeSweep) and the
schedule and CONVERGE passes (leaderless/convergence.py), run against in-process
replicas (the real server core and LL.* commands) by a synchronous driver."""

from __future__ import annotations

from typing import Any

import hiredis

from ackdb.keyspace import lww
from ackdb.keyspace.lww import Record, Version
from ackdb.leaderless.antientropy import Call, PairSync, PurgeSweep, split_ranges
from ackdb.leaderless.convergence import (
    Answer,
    ConvergeWait,
    KeyPass,
    Partition,
    Retry,
    Schedule,
    db_pass,
    db_pass_agreed,
    describe_db_pass,
)
from conftest import Harness


class Cluster:
    """Replicas per (partition, replica index); ``down`` ones fail every call."""

    def __init__(self, partitions: int = 1, n: int = 3) -> None:
        self.h = {(p, r): Harness() for p in range(partitions) for r in range(n)}
        self.down: set[tuple[int, int]] = set()
        self.calls: list[Call] = []

    def run(self, p: int, r: int, *argv: Any) -> Any:
        h = self.h[p, r]
        reader = hiredis.Reader()
        reader.feed(h.run(h.client(), *argv))
        return reader.gets()

    def records(self, p: int, r: int) -> dict[bytes, Record]:
        return {k: v for k, v in self.h[p, r].server.dbs[0].data.items() if isinstance(v, Record)}

    def drive(self, job: Any) -> Any:
        pending = list(job.start())
        while pending:
            call = pending.pop(0)
            self.calls.append(call)
            if (call.partition, call.replica) in self.down:
                pending += job.on_failure(call)
                continue
            reply = self.run(call.partition, call.replica, *call.argv)
            if isinstance(reply, hiredis.ReplyError):
                pending += job.on_failure(call)
            else:
                pending += job.on_reply(call, reply)
        return job


def _v(ms: int, node: int = 1) -> bytes:
    return Version(ms, 0, node).to_bytes()


def test_pair_sync_pushes_the_merge_both_ways_and_then_finds_nothing() -> None:
    c = Cluster()
    for i in range(40):
        c.run(0, 0, "LL.SET", b"k%d" % i, _v(10), b"old")
    c.run(0, 1, "LL.SET", b"k3", _v(20), b"new")
    c.run(0, 1, "LL.HSET", b"h", _v(5), b"f", b"1")
    job = c.drive(PairSync(0, 0, 1, 6, push_budget=1000))
    assert job.complete and not job.failed and job.differing > 0
    assert job.pushed == 39 + 2  # 39 keys to replica 1; the newer k3 and h to replica 0
    assert c.records(0, 0) == c.records(0, 1)
    assert c.records(0, 0)[b"k3"].view() == ("string", b"new")
    again = c.drive(PairSync(0, 0, 1, 6, push_budget=1000))
    assert again.complete and again.differing == 0 and again.pushed == 0


def test_pair_sync_respects_its_push_budget_and_pages_few_leaves() -> None:
    c = Cluster()
    for i in range(200):
        c.run(0, 0, "LL.SET", b"k%d" % i, _v(10), b"x")
    job = c.drive(PairSync(0, 0, 1, 8, push_budget=20))
    assert not job.complete and 20 <= job.pushed < 200
    ranges = [call.argv for call in c.calls if call.argv[0] == b"LL.RANGE"]
    assert all(int(a[3]) - int(a[2]) <= 8 for a in ranges)
    while not job.complete:
        job = c.drive(PairSync(0, 0, 1, 8, push_budget=20))
    assert c.records(0, 0) == c.records(0, 1)


def test_pair_sync_names_an_unreachable_replica() -> None:
    c = Cluster()
    c.down.add((0, 1))
    job = c.drive(PairSync(0, 0, 1, 4, push_budget=10))
    assert job.failed == [1] and not job.complete


def test_split_ranges() -> None:
    assert split_ranges([(0, 20), (30, 31)], 8) == [(0, 8), (8, 16), (16, 20), (30, 31)]


def test_purge_sweep_needs_every_replica_and_the_grace() -> None:
    c = Cluster()
    for r in range(3):
        c.run(0, r, "LL.DEL", b"gone", _v(1000))
        c.run(0, r, "LL.SET", b"live", _v(1000), b"x")
    c.run(0, 0, "LL.DEL", b"partial", _v(1000))  # only one replica holds it
    early = c.drive(PurgeSweep(0, 3, 4, 0, 16, now_ms=1500, grace_ms=1000))
    assert not early.purged
    c.down.add((0, 2))
    down = c.drive(PurgeSweep(0, 3, 4, 0, 16, now_ms=5000, grace_ms=1000))
    assert not down.purged and down.failed == [2]
    c.down.clear()
    job = c.drive(PurgeSweep(0, 3, 4, 0, 16, now_ms=5000, grace_ms=1000))
    assert job.purged == {b"gone"}
    for r in range(3):
        assert b"gone" not in c.records(0, r) and b"live" in c.records(0, r)
    assert b"partial" in c.records(0, 0)


def test_schedule_rounds_ring_pairs_purge_windows_and_info() -> None:
    parts = [Partition(0, ("n1", "n2", "n3")), Partition(1, ("n2", "n3", "n1"))]
    s = Schedule("n1", grace_ms=0, interval_ms=10_000, depth=4, purge_window=8)
    s.set_partitions(parts)
    assert s.pairs() == [(0, 0, 1), (1, 2, 0)]
    assert s.wait_ms(1_000) == 0
    assert ("ll_ae_last_full_comparison_age_ms", "-1") in s.info(1_000)
    jobs = s.begin_round(1_000)
    syncs = [j for j in jobs if isinstance(j, PairSync)]
    sweeps = [j for j in jobs if isinstance(j, PurgeSweep)]
    # Partition 0 is swept by replica 0's node (n1), partition 1 by replica 1's (n3).
    assert len(syncs) == 2 and [j.partition for j in sweeps] == [0]
    for j in syncs:
        j.complete, j.differing, j.pushed = True, 3, 5
    sweeps[0].purged = {b"a"}
    s.end_round(1_200, jobs)
    assert s.wait_ms(1_200) == 9_800
    info = dict(s.info(2_000))
    assert info == {
        "ll_ae_rounds": "1",
        "ll_ae_differing_leaves": "6",
        "ll_ae_pushed": "10",
        "ll_ae_last_full_comparison_age_ms": "1000",
        "ll_tombstones_purged": "1",
    }
    # The next sweep window follows on; a failed comparison is not a full comparison.
    jobs = s.begin_round(11_000)
    assert [j.argv for j in jobs if isinstance(j, PurgeSweep)] == [(b"LL.RANGE", b"4", b"8", b"16")]
    s.end_round(11_100, jobs)
    assert dict(s.info(11_100))["ll_ae_last_full_comparison_age_ms"] == "10100"


def test_key_pass_pushes_the_merge_and_agrees_next() -> None:
    c = Cluster()
    c.run(0, 0, "LL.SET", b"k", _v(10), b"a")
    c.run(0, 1, "LL.HSET", b"k", _v(20), b"f", b"1")
    first = c.drive(KeyPass(0, 3, b"k"))
    assert not first.agreed and first.distinct == 3
    assert "3 replicas of the key hold 3 different records" in first.describe(("a", "b", "c"))
    second = c.drive(KeyPass(0, 3, b"k"))
    assert second.agreed
    assert c.records(0, 0) == c.records(0, 1) == c.records(0, 2)
    assert c.drive(KeyPass(0, 3, b"absent")).agreed
    c.down.add((0, 2))
    down = c.drive(KeyPass(0, 3, b"k"))
    assert not down.agreed and "unreachable: replica 2 on c" in down.describe(("a", "b", "c"))


def test_db_pass_converges_every_partition_within_two_passes() -> None:
    c = Cluster(partitions=2)
    parts = [Partition(0, ("a", "b", "c")), Partition(1, ("b", "c", "a"))]
    c.run(0, 1, "LL.SET", b"x", _v(10), b"1")
    c.run(0, 2, "LL.SET", b"y", _v(10), b"2")
    c.run(1, 2, "LL.DEL", b"z", _v(10))
    jobs = [c.drive(j) for j in db_pass(parts, 4)]
    assert not db_pass_agreed(jobs)
    assert describe_db_pass(jobs, parts).startswith("replicas differ in 2 of 2 partitions")
    for _ in range(2):
        jobs = [c.drive(j) for j in db_pass(parts, 4)]
    assert db_pass_agreed(jobs)
    for p in range(2):
        assert c.records(p, 0) == c.records(p, 1) == c.records(p, 2)
    c.down.add((1, 1))
    jobs = [c.drive(j) for j in db_pass(parts, 4)]
    assert not db_pass_agreed(jobs)
    assert "unreachable: replica 1 of partition 1 on c" in describe_db_pass(jobs, parts)


def test_converge_wait_answers_or_retries_until_the_deadline() -> None:
    w = ConvergeWait(now_ms=0, timeout_ms=100, retry_ms=30)
    assert w.after_pass(10, "x differs") == Retry(30)
    assert w.after_pass(90, "x differs") == Retry(10)
    assert w.after_pass(100, "x differs") == Answer(
        "TIMEOUT not converged after 3 passes: x differs"
    )
    assert ConvergeWait(0, 0).after_pass(0, None) == Answer(None)
    assert lww.TREE_DEPTH_MAX >= 4


def test_a_fast_coordinator_clock_cannot_purge_early() -> None:
    """The grace is judged by the earliest of the replicas' clocks (TIME) and this
    node's: a sweeping node 1 h ahead purges nothing the replicas' clocks hold recent."""
    import time

    c = Cluster()
    recent = time.time_ns() // 1_000_000 - 500
    for r in range(3):
        c.run(0, r, "LL.DEL", b"gone", _v(recent))
    fast = c.drive(PurgeSweep(0, 3, 4, 0, 16, now_ms=recent + 3_600_000, grace_ms=60_000))
    assert not fast.purged and not fast.failed
    assert all(b"gone" in c.records(0, r) for r in range(3))


def test_a_hint_put_back_keeps_its_age_and_no_aged_hint_is_handed_out() -> None:
    """The tombstone grace counts on no hint older than hint_age_ms_max ever landing: a
    failed replay put back keeps its first-stored time, and take never hands out an aged
    hint even when the queue's order is not its age order."""
    from ackdb.leaderless.hints import HintQueue

    q = HintQueue(hint_age_ms_max=100)
    q.put(b"a", lww.string_write(Version(1, 0, 1), b"x"), now_ms=0)
    [(key, rec, stored)] = q.take_timed(now_ms=50)
    q.put(b"b", lww.string_write(Version(2, 0, 1), b"y"), now_ms=60)
    assert q.put_back(key, rec, stored) and stored == 0
    assert [k for k, _ in q.take(now_ms=90)] == [b"a", b"b"]
    q.put(b"c", lww.string_write(Version(3, 0, 1), b"z"), now_ms=100)
    q.put_back(b"a", rec, 0)  # behind c's young hint after a reorder: still too old
    q._hints.move_to_end(b"a")
    assert [k for k, _ in q.take(now_ms=150)] == [b"c"]
    assert q.dropped == 1
