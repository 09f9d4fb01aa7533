"""Seeded simulation of a leaderless replica set: n=3 replicas running the real server
core and LL.* commands, three coordinators running the real coordinator cores
(src/ackdb/sim/ll_world.py, ll_replica.py), clients writing (SET, DEL, HSET, HDEL),
reading and scanning at ONE / QUORUM / ALL.

Safety phase, under faults the design claims to survive -- replica crashes that lose
unsynced writes (appendfsync always: nothing acknowledged is unsynced), cut links,
message loss, clock skew (and, in half the seeds, a coordinator 5 s ahead whose writes
replicas refuse) -- every reply is checked:
- r + w > n: a read returns a record covering every write acknowledged at w that ended
  before the read started (it sees the latest acknowledged write, or a newer one);
- two successive reads whose levels overlap (r1 + r2 > n): the second covers the first
  (blocking repair: reads never go back in time);
- HLC: of two acknowledged writes to a key separated by more than the coordinators'
  clock spread, the later has the higher version.
Liveness phase: faults healed, hints replayed, anti-entropy run; then every replica holds
the same records; every write any replica acknowledged is covered (none lost); nothing
appears that no client wrote; every key whose newest write is a delete stays deleted.
Finally tombstones that every replica holds are purged past the grace period, and a new
anti-entropy round brings none of those keys back.

Replay one seed:  ACKDB_SIM_SEED=<seed> [ACKDB_SIM_N=5] python3 -m pytest tests/sim/test_leaderless_sim.py -k replay
Many random seeds: ACKDB_SIM_SEEDS=<n> python3 -m pytest tests/sim/test_leaderless_sim.py -k random
"""

from __future__ import annotations

import os
import random

import pytest

from ackdb.keyspace import lww
from ackdb.keyspace.lww import Record
from ackdb.leaderless.levels import Level, strong
from ackdb.leaderless.tombstones import grace_ms, may_purge
from ackdb.sim.ll_world import MAX_SKEW_MS, REQUEST_TIMEOUT_MS, LlWorld, Op

pytestmark = pytest.mark.sim

SAFETY_MS = 3_000
CLIENTS = 4
STRINGS = [b"k0", b"k1", b"k2"]
HASHES = [b"h0", b"h1"]
FIELDS = [b"a", b"b", b"c"]
LEVELS = list(Level)


def _client(w: LlWorld, rng: random.Random, end_ms: int, cid: int) -> None:
    counter = {"n": 0}

    def next_op(_: Op | None = None) -> None:
        if w.q.now >= end_ms:
            return
        w.q.schedule(rng.randint(0, 15), one)

    def one() -> None:
        coord = rng.randrange(len(w.coords))
        level = rng.choice(LEVELS)
        p = rng.random()
        counter["n"] += 1
        value = b"c%d-%d" % (cid, counter["n"])
        if p < 0.45:
            if rng.random() < 0.5:
                key = rng.choice(STRINGS)
                if rng.random() < 0.25:
                    w.write(coord, key, lww.delete_write, level, next_op)
                else:
                    w.write(coord, key, lambda v: lww.string_write(v, value), level, next_op)
            else:
                key, f = rng.choice(HASHES), rng.choice(FIELDS)
                x = None if rng.random() < 0.25 else value
                if rng.random() < 0.1:
                    w.write(coord, key, lww.delete_write, level, next_op)
                else:
                    w.write(coord, key, lambda v: lww.fields_write(v, {f: x}), level, next_op)
        elif p < 0.92:
            w.read(coord, rng.choice(STRINGS + HASHES), level, next_op)
        else:
            w.scan(coord, level, next_op)

    next_op()


def _faults(w: LlWorld, rng: random.Random, end_ms: int) -> None:
    def tick() -> None:
        if w.q.now >= end_ms:
            return
        p = rng.random()
        if p < 0.3:
            r = w.replicas[rng.randrange(w.n)]
            if r.alive:
                r.crash()
                w.q.schedule(rng.randint(30, 400), lambda: r.alive or r.restart())
        elif p < 0.6:
            link = (rng.randrange(len(w.coords)), rng.randrange(w.n))
            w.net.cut.add(link)
            w.q.schedule(rng.randint(50, 300), w.net.cut.discard, link)
        else:
            w.net.drop_p = rng.choice([0.0, 0.0, 0.02, 0.1])
        w.q.schedule(rng.randint(40, 200), tick)

    w.q.schedule(rng.randint(0, 100), tick)


def _background(w: LlWorld, rng: random.Random) -> None:
    """Hint replay every 25 ms; an anti-entropy pass over a random pair every 400 ms."""

    def hints() -> None:
        for c in w.coords:
            c.replay_hints()
        w.q.schedule(25, hints)

    def entropy() -> None:
        a, b = rng.sample(range(w.n), 2)
        w.coords[0].sync_pair(a, b, lambda: None)
        w.q.schedule(400, entropy)

    w.q.schedule(25, hints)
    w.q.schedule(400, entropy)


def _covers(a: Record | None, b: Record) -> bool:
    return lww.covers(a if a is not None else Record(), b)


def check_safety(w: LlWorld) -> None:
    ops = [o for o in w.history if o.end_ms is not None]
    writes = [o for o in ops if o.kind == "write" and o.ok]
    reads = [o for o in ops if o.kind == "read" and o.ok]
    normal = [c.skew_ms for c in w.coords if c.skew_ms < MAX_SKEW_MS]
    spread = max(normal) - min(normal)
    for r in reads:
        for wr in writes:
            if wr.key == r.key and strong(r.level, wr.level, w.n):
                assert wr.end_ms is not None
                if wr.end_ms < r.start_ms:
                    assert _covers(r.record, wr.record), (r, wr)  # type: ignore[arg-type]
        for r1 in reads:
            if r1.key == r.key and strong(r1.level, r.level, w.n) and r1.end_ms < r.start_ms:  # type: ignore[operator]
                assert _covers(r.record, r1.record or Record()), (r1, r)
    for w1 in writes:
        for w2 in writes:
            if w1.key == w2.key and w2.start_ms - w1.end_ms > spread:  # type: ignore[operator]
                assert w2.record.newest() > w1.record.newest(), (w1, w2)  # type: ignore[union-attr]


def _heal_and_converge(w: LlWorld) -> None:
    w.net.cut.clear()
    w.net.drop_p = 0.0
    for r in w.replicas:
        if not r.alive:
            r.restart()
    end = w.q.now + 5_000
    while w.q.now < end:
        w.run_until(w.q.now + 200)
        if any(len(q) for c in w.coords for q in c.hints.values()):
            continue
        pairs = [(a, b) for a in range(w.n) for b in range(a + 1, w.n)]
        for a, b in pairs:
            w.coords[0].sync_pair(a, b, lambda: None)
        w.run_until(w.q.now + 300)
        first = w.replicas[0].records()
        if all(r.records() == first for r in w.replicas[1:]):
            return
    raise AssertionError(f"replicas did not converge (seed {w.seed})")


def check_convergence(w: LlWorld) -> None:
    final = w.replicas[0].records()
    for r in w.replicas[1:]:
        assert r.records() == final
    issued: dict[bytes, Record] = {}
    for o in w.history:
        if o.kind != "write":
            continue
        assert o.record is not None
        lww.merge_into(issued.setdefault(o.key, Record()), o.record)
        if o.request.acked:  # some replica acknowledged it (durably): never lost
            assert _covers(final.get(o.key), o.record), (o, final.get(o.key))
    for key, rec in final.items():
        assert key in issued and _covers(issued[key], rec), "a record nobody wrote"
        newest_write = max(
            (o for o in w.history if o.kind == "write" and o.key == key and o.request.acked),
            key=lambda o: o.record.newest(),
            default=None,
        )
        if newest_write is not None and newest_write.record.base_version == rec.newest():
            if newest_write.record.is_tombstone():
                assert rec.view()[0] == "deleted", "a deleted key came back"


def purge_tombstones(w: LlWorld) -> list[bytes]:
    grace = grace_ms(hint_age_ms_max=0, request_timeout_ms=REQUEST_TIMEOUT_MS, max_skew_ms=500)
    w.run_until(w.q.now + grace + 1_000)
    final = w.replicas[0].records()
    holders = [r.records() for r in w.replicas]
    purged = []
    for key, rec in final.items():
        v = rec.base_version
        if not rec.is_tombstone():
            continue
        seen = {i: h.get(key) for i, h in enumerate(holders)}
        if may_purge(v, seen, tuple(range(w.n)), w.coords[0].wall(), grace):
            purged.append(key)
            for i in range(w.n):
                w.coords[0].rpc(i, [b"LL.PURGE", key, v.to_bytes()], lambda _: None, lambda _: None)
    w.run_until(w.q.now + 100)
    for a, b in [(x, y) for x in range(w.n) for y in range(x + 1, w.n)]:
        w.coords[0].sync_pair(a, b, lambda: None)
    w.run_until(w.q.now + 300)
    for r in w.replicas:
        records = r.records()
        assert not any(k in records for k in purged), "a purged tombstone came back"
    return purged


def run_seed(seed: int, n: int = 3) -> LlWorld:
    w = LlWorld(seed, n=n)
    rng = random.Random(seed ^ 0x5EED)
    end = w.q.now + SAFETY_MS
    for cid in range(CLIENTS):
        _client(w, rng, end, cid)
    _faults(w, rng, end)
    _background(w, rng)
    w.run_until(end + 200)
    check_safety(w)
    # Hints of the safety phase only: a liveness phase replays them, never expires them.
    _heal_and_converge(w)
    check_convergence(w)
    purge_tombstones(w)
    return w


SEEDS = [1, 2, 3, 5, 8, 13, 21, 34]


@pytest.mark.parametrize("seed", SEEDS)
def test_fixed_seeds(seed: int) -> None:
    w = run_seed(seed)
    assert sum(o.kind == "read" and o.ok for o in w.history) > 20, "too few reads checked"


@pytest.mark.parametrize("seed", [4, 9])
def test_five_replicas(seed: int) -> None:
    run_seed(seed, n=5)


def test_fast_coordinator_is_refused_and_never_lands() -> None:
    seed = next(s for s in range(100) if LlWorld(s).coords[-1].skew_ms == 5_000)
    w = run_seed(seed)
    fast = [o for o in w.history if o.kind == "write" and o.coord == len(w.coords) - 1]
    assert fast and not any(o.ok for o in fast)
    fast_node = w.coords[-1].clock.node
    for r in w.replicas:
        for rec in r.records().values():
            versions = [rec.base_version, *(v for v, _ in rec.fields.values())]
            assert all(v.node != fast_node for v in versions), "a refused write landed"


def test_replay() -> None:
    seed = os.environ.get("ACKDB_SIM_SEED")
    if seed is None:
        pytest.skip("set ACKDB_SIM_SEED to replay one seed")
    run_seed(int(seed), n=int(os.environ.get("ACKDB_SIM_N", "3")))


def test_random() -> None:
    n = int(os.environ.get("ACKDB_SIM_SEEDS", "0"))
    if not n:
        pytest.skip("set ACKDB_SIM_SEEDS to run that many random seeds")
    for _ in range(n):
        seed = random.randrange(1 << 30)
        try:
            run_seed(seed, n=3 if seed % 4 else 5)
        except AssertionError:
            print(f"failing seed: ACKDB_SIM_SEED={seed} ACKDB_SIM_N={3 if seed % 4 else 5}")
            raise
