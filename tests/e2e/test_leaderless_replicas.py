"""End to end: three real ``ackdb server`` processes as the replicas of a leaderless
replica set, driven through their LL.* commands by the real coordinator cores
(leaderless/coordinator.py, hints.py, antientropy.py) from this test.

The driver below is the smallest shell there is: it carries out one request's actions in
order over redis-py, feeding each reply (or a connection failure) back to the core.
Checked: QUORUM writes and ALL reads; a killed replica (SIGKILL) turns an ALL write into
an error that says how many replicas applied it while QUORUM still succeeds and keeps a
hint; the hint is replayed when the replica returns from its AOF; blocking read repair
fixes a stale replica without clobbering a newer write; tombstones hide deleted keys from
a QUORUM scan; a replica whose data directory was wiped is rebuilt by anti-entropy.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from coordinator_support import Replicas

from ackdb.keyspace import lww
from ackdb.keyspace.lww import Record
from ackdb.leaderless import antientropy as ae
from ackdb.leaderless.coordinator import (
    Done,
    ReadRequest,
    ScanRequest,
    SendApply,
    SendRange,
    SendRead,
    StoreHint,
    WriteRequest,
)
from ackdb.leaderless.hints import HintQueue
from ackdb.leaderless.hlc import HybridClock
from ackdb.leaderless.levels import Level

pytestmark = pytest.mark.e2e

N = 3
DEPTH = 6
FAR_DEADLINE_MS = 1 << 62


class Driver:
    """Carries out a coordinator core's actions, one at a time, over real sockets."""

    def __init__(self, reps: Replicas) -> None:
        self.reps = reps
        self.clock = HybridClock(node=1)
        self.hints = {i: HintQueue() for i in range(N)}

    def run(self, req: Any) -> Done:
        queue = list(req.start())
        done: Done | None = None
        while queue:
            a = queue.pop(0)
            if isinstance(a, Done):
                done = done or a
            elif isinstance(a, StoreHint):
                self.hints[a.replica].put(a.key, a.record, 0)
            else:
                queue += self._send(req, a)
        assert done is not None
        return done

    def _send(self, req: Any, a: SendApply | SendRead | SendRange) -> list[Any]:
        try:
            if isinstance(a, SendApply):
                self.reps.call(a.replica, "LL.APPLY", a.key, lww.encode(a.record))
                if isinstance(req, WriteRequest):
                    return req.on_ack(a.replica)  # type: ignore[no-any-return]
                if isinstance(req, ReadRequest):
                    return req.on_repaired(a.replica)  # type: ignore[no-any-return]
                return []
            if isinstance(a, SendRead):
                cmd = "LL.GET" if a.full else "LL.DIGEST"
                value = self.reps.call(a.replica, cmd, a.key)
                if a.full:
                    return req.on_record(a.replica, None if value is None else lww.decode(value))  # type: ignore[no-any-return]
                return req.on_digest(a.replica, value)  # type: ignore[no-any-return]
            flat = self.reps.call(a.replica, "LL.RANGE", a.depth, a.lo, a.hi)
            items = {flat[i]: lww.decode(flat[i + 1]) for i in range(0, len(flat), 2)}
            return req.on_range(a.replica, items)  # type: ignore[no-any-return]
        except redis.ConnectionError:
            return req.on_failure(a.replica)  # type: ignore[no-any-return]

    def write(self, key: bytes, make: Any, level: Level) -> Done:
        rec = make(self.clock.now(_wall_ms()))
        return self.run(WriteRequest(key, rec, tuple(range(N)), level, FAR_DEADLINE_MS))

    def read(self, key: bytes, level: Level, order: tuple[int, ...] = (0, 1, 2)) -> Done:
        return self.run(ReadRequest(key, order, level, FAR_DEADLINE_MS))

    def replay_hints(self, replica: int) -> int:
        sent = 0
        for key, rec in self.hints[replica].take(0):
            self.reps.call(replica, "LL.APPLY", key, lww.encode(rec))
            sent += 1
        return sent

    def anti_entropy(self, a: int, b: int) -> int:
        trees = []
        for r in (a, b):
            raw = self.reps.call(r, "LL.TREE", DEPTH)
            trees.append(
                ae.HashTree([int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw), 8)])
            )
        pushed = 0
        for lo, hi in ae.leaf_ranges(ae.differing_leaves(trees[0], trees[1])):
            pages = []
            for r in (a, b):
                flat = self.reps.call(r, "LL.RANGE", DEPTH, lo, hi)
                pages.append({flat[i]: lww.decode(flat[i + 1]) for i in range(0, len(flat), 2)})
            to_a, to_b = ae.plan_sync(pages[0], pages[1])
            for r, push in ((a, to_a), (b, to_b)):
                for key, rec in push.items():
                    self.reps.call(r, "LL.APPLY", key, lww.encode(rec))
                    pushed += 1
        return pushed


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _record(reps: Replicas, i: int, key: bytes) -> Record | None:
    raw = reps.call(i, "LL.GET", key)
    return None if raw is None else lww.decode(raw)


@pytest.fixture
def reps(tmp_path: Path) -> Any:
    r = Replicas(tmp_path)
    yield r
    r.stop_all()


def test_levels_hints_repair_tombstones_and_anti_entropy(reps: Replicas) -> None:
    d = Driver(reps)
    ok = d.write(b"k", lambda v: lww.string_write(v, b"one"), Level.QUORUM)
    assert ok.error is None and len(ok.receipt.answered) >= 2
    got = d.read(b"k", Level.ALL)
    assert got.record is not None and got.record.view() == ("string", b"one")

    # A replica dies: ALL fails saying 2 of 3 applied (and stands); QUORUM succeeds.
    reps.kill(2)
    bad = d.write(b"k", lambda v: lww.string_write(v, b"two"), Level.ALL)
    assert bad.error is not None and "reached 2 of 3" in bad.error.text()
    assert "not rolled back" in bad.error.text()
    ok = d.write(b"h", lambda v: lww.fields_write(v, {b"f": b"1", b"g": b"2"}), Level.QUORUM)
    assert ok.error is None and len(d.hints[2]) == 2
    assert d.read(b"k", Level.QUORUM).record.view() == ("string", b"two")  # type: ignore[union-attr]

    # It comes back from its AOF with its old data; the hints bring it up to date.
    reps.start(2)
    assert _record(reps, 2, b"k").view() == ("string", b"one")  # type: ignore[union-attr]
    assert d.replay_hints(2) == 2
    assert _record(reps, 2, b"k").view() == ("string", b"two")  # type: ignore[union-attr]

    # Blocking read repair: a stale replica is fixed before the reply, and a repair
    # carrying an older version never overwrites the newer write it meets.
    reps.call(0, "LL.DEL", b"k", b"1.0.9")  # ancient: ignored by the merge
    v_new = d.clock.now(_wall_ms())
    reps.call(1, "LL.SET", b"k", v_new.to_bytes(), b"three")
    got = d.read(b"k", Level.QUORUM, order=(0, 1, 2))
    assert got.record.view() == ("string", b"three") and got.receipt.repaired == (0,)  # type: ignore[union-attr]
    assert _record(reps, 0, b"k").view() == ("string", b"three")  # type: ignore[union-attr]
    stale = lww.string_write(ok.receipt.version, b"stale")
    assert reps.call(0, "LL.APPLY", b"k", lww.encode(stale)) == 0

    # Deletes leave tombstones: a QUORUM scan hides them, LL.GET still shows them.
    assert d.write(b"h", lambda v: lww.delete_write(v), Level.ALL).error is None
    scan = ScanRequest((0, 1, 2), Level.QUORUM, DEPTH, 0, 1 << DEPTH, FAR_DEADLINE_MS)
    assert d.run(scan).error is None and scan.live_keys() == [b"k"]
    assert _record(reps, 1, b"h").view()[0] == "deleted"  # type: ignore[union-attr]

    # Records survive an AOF rewrite and restart.
    reps.call(1, "BGREWRITEAOF")
    before = {key: _record(reps, 1, key) for key in (b"k", b"h")}
    deadline = time.monotonic() + 20
    while reps.call(1, "INFO", "persistence")["aof_rewrite_in_progress"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    reps.kill(1)
    reps.start(1)
    assert {key: _record(reps, 1, key) for key in (b"k", b"h")} == before

    # A replica whose data directory is wiped is rebuilt by anti-entropy.
    reps.kill(0)
    shutil.rmtree(reps.root / "r0")
    reps.start(0)
    assert reps.call(0, "DBSIZE") == 0
    assert d.anti_entropy(1, 0) == 2
    assert d.anti_entropy(1, 0) == 0
    # Replica 2 took no part in the repairing read: anti-entropy brings it the newer k.
    assert d.anti_entropy(2, 0) == 1 and d.anti_entropy(2, 1) == 0
    for key in (b"k", b"h"):
        assert _record(reps, 0, key) == _record(reps, 1, key) == _record(reps, 2, key)
