"""Seeded simulation of automatic failover (issue 15, item 8): src/ackdb/sim/failover_world.py.

One seed builds a three-node cluster on one event queue and one network: Raft members
applying the real cluster metadata, the real Reconciler and FailoverController on each
member, node agents running the real shard Supervisor (lease_targets, down_facts, Freeze,
CheckDiverged, SetReplication) against the REAL server cores and replication engines of
one shard (primary + 2 replicas, ``ackdb-lease yes``), and clients writing then WAITing
through the real endpoint core on every node (sim/fo_endpoint.py). Faults: node kills and
restarts, partitions (one-way too), cut TCP links, pauses of a node, a shard process or an
agent, an operator's planned failovers and maintenance, clock rates within the profile's
drift. Checks: after every event at most one shard process
would acknowledge a write (primary, unpaused, valid lease on its host's clock); primaries
acknowledge writes in disjoint real-time intervals; at the end every write acknowledged
by WAIT n >= the database's guarantee is on the final primary (strict; with available a
loss must have been announced), and every acknowledged write is there or in a divergent
file of an old primary.

Replay one seed:  ACKDB_SIM_SEED=<seed> python3 -m pytest tests/sim/test_failover_sim.py -k replay
Many random seeds: ACKDB_SIM_SEEDS=<n> python3 -m pytest tests/sim/test_failover_sim.py -k random
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
from collections.abc import Iterable

import pytest

from ackdb.cluster import failover, supervise
from ackdb.cluster.databases import Shard, ShardState
from ackdb.sim.failover_world import FailoverWorld, FoResult, run_seed
from ackdb.sim.fo_faults import KINDS, strike
from ackdb.sim.world import SimFailure

pytestmark = pytest.mark.sim

CI_SEEDS = list(range(1, 51))
SLOW_SEEDS = list(range(51, 551))


_RESULTS: dict[int, FoResult] = {}  # default seeds already run in this session


def _weights(**kinds: int) -> tuple[int, ...]:
    """A plan's fault weights: only the named kinds of fo_faults.KINDS."""
    assert set(kinds) <= set(KINDS), kinds
    return tuple(kinds.get(k, 0) for k in KINDS)


LAGGING = _weights(kill=3, cut_link=3)  # kills and cut links: a replica falls behind


def _run(seed: int, **forced: object) -> FoResult:
    try:
        return run_seed(seed, **forced)
    except SimFailure as exc:
        pytest.fail(str(exc), pytrace=False)


def _default(seed: int) -> FoResult:
    if seed not in _RESULTS:
        _RESULTS[seed] = _run(seed)
    return _RESULTS[seed]


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_seed(seed: int) -> None:
    r = _default(seed)
    assert r.outcome.acked > 0 and r.outcome.covered > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_seed_slow(seed: int) -> None:
    _run(seed)


def test_seeds_fail_over() -> None:
    """The default seeds do what they are for: failovers happen (epochs move), writes are
    refused while fenced, divergent writes of old primaries get saved."""
    results = [_default(s) for s in CI_SEEDS[:20]]
    assert sum(r.epoch > 1 for r in results) >= 10
    assert sum(r.outcome.refused for r in results) > 0
    assert sum(r.outcome.diverged_saved for r in results) > 0


def test_a_seed_replays_identically() -> None:
    a, b = FailoverWorld(7), FailoverWorld(7)
    ra, rb = a.run(), b.run()
    assert ra == rb
    assert list(a.raft.trace) == list(b.raft.trace)


def test_replay() -> None:
    seed = os.environ.get("ACKDB_SIM_SEED")
    if seed is None:
        pytest.skip("set ACKDB_SIM_SEED=<seed> to replay one seed")
    _run(int(seed))


def test_random_seeds() -> None:
    count = int(os.environ.get("ACKDB_SIM_SEEDS", "0"))
    if not count:
        pytest.skip("set ACKDB_SIM_SEEDS=<n> to run n random seeds")
    for seed in random.Random().sample(range(10**9), count):
        _run(seed)


# -- the checks can fail ----------------------------------------------------------------


def _long_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lease that outlives detection (2500 ms > node_timeout 1000 ms): then nothing
    but the controller's lease wait keeps a cut-off primary from overlapping the next."""
    high = failover.PROFILES["high"]
    monkeypatch.setitem(
        failover.PROFILES, "high", dataclasses.replace(high, lease_ms=2500, lease_renew_ms=300)
    )


def _caught(match: str, seeds: Iterable[int], **forced: object) -> None:
    """Some seed must fail with ``match``: which seed first meets the broken path depends
    on every timing of the world, so no single seed is pinned."""
    for seed in seeds:
        try:
            run_seed(seed, **forced)
        except SimFailure as e:
            assert re.search(match, str(e)), str(e)
            return
    pytest.fail(f"no seed caught it ({match})")


def test_lease_wait_keeps_primaries_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the long lease, the real controller's lease wait is what keeps the checks
    green."""
    _long_lease(monkeypatch)
    for seed in range(1, 9):
        _run(seed, profile="high")


def test_checks_catch_a_controller_without_the_lease_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _long_lease(monkeypatch)
    monkeypatch.setattr(failover.Profile, "lease_wait_ms", property(lambda self: 0))
    _caught("two primaries hold a valid lease|overlapping primaries", range(1, 41), profile="high")


def test_checks_catch_promoting_the_lowest_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    """A controller that promotes the least up-to-date replica loses writes WAIT
    acknowledged: the final check must say so."""
    monkeypatch.setattr(
        failover,
        "best_report",
        lambda reports, *_: min(reports, key=lambda r: r.offset, default=None),
    )
    _caught(
        "acknowledged by WAIT|silently lost",
        range(1, 41),
        policy="strict",
        guarantee=1,
        overlap=0.8,
        weights=LAGGING,
    )


def _killed_twice(seed: int) -> FoResult:
    """A scripted world: the primary P's links to both replicas are cut (it goes on
    acknowledging writes no replica gets: divergent, not WAIT-covered), P's node dies; once
    the fence is applied P restarts (its shard comes up as a fenced primary, on a new
    replid) and dies again before the promotion; it returns after it. Its DIVERGED check
    must save the divergent writes (issue 15: no silent loss)."""
    w = FailoverWorld(seed, policy="strict", guarantee=1, weights=(0,) * len(KINDS))
    p = ""

    def record() -> Shard:
        """The shard as the leader (or, without one, as any member) applied it."""
        nodes = [w.leader() or "", *sorted(w.agents)]
        recs = [w.shard_record(n) for n in nodes if n and w.raft.nodes[n].up]
        return next(r for r in recs if r is not None)

    def cut() -> None:
        nonlocal p
        rec = record()
        p = rec.primary.node
        for r in rec.replicas:
            strike(w, "cut_link", p, 1500, r.node)
        w.queue.schedule(500, w.kill_node, p)
        w.queue.schedule(510, fenced)

    def fenced() -> None:
        if record().state is ShardState.FAILING:
            w.start_node(p)
            w.queue.schedule(10, started)
        else:
            w.queue.schedule(10, fenced)

    def started() -> None:
        shard = w.shards[p]
        if shard.alive and shard.durable is not None and shard.engine.state.replid2 != "0" * 40:
            w.kill_node(p)
            w.queue.schedule(10, promoted)
        else:
            w.queue.schedule(10, started)

    def promoted() -> None:
        if record().state is ShardState.OK:
            w.queue.schedule(500, w.start_node, p)
        else:
            w.queue.schedule(10, promoted)

    w.queue.schedule(3000, cut)
    try:
        return w.run()
    except SimFailure as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_old_primary_restarted_twice_keeps_its_divergent_writes(seed: int) -> None:
    # Found by this simulator: each start as a primary shifted the replid and the saved
    # history kept only the newest, so the fork's replid was lost and DIVERGED answered
    # "nothing diverged" (replication/engine.py saved_history keeps replid2 now).
    r = _killed_twice(seed)
    assert r.epoch > 1


def _lagging_then_lost(policy: str, seed: int) -> FoResult:
    """A scripted world: the link between the primary and one replica B is cut (B falls
    behind while the other replica A acknowledges WAIT 1); then A's shard process stops
    (it cannot report) and the primary's node dies. Strict must wait for A; available
    promotes B after its grace and loses the writes only A had -- and says so."""
    w = FailoverWorld(seed, policy=policy, guarantee=1, weights=(0,) * len(KINDS))

    def cut() -> None:
        rec = w.shard_record(w.leader() or "n1")
        assert rec is not None
        p, b = rec.primary.node, rec.replicas[1].node
        strike(w, "cut_link", p, 8000, b)

    def fail() -> None:
        rec = w.shard_record(w.leader() or "n1")
        assert rec is not None
        strike(w, "pause_shard", rec.replicas[0].node, 4000)
        strike(w, "kill", rec.primary.node, 4000)

    w.queue.schedule(3000, cut)
    w.queue.schedule(5000, fail)
    try:
        return w.run()
    except SimFailure as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_strict_waits_for_the_replica_that_has_the_writes(seed: int) -> None:
    r = _lagging_then_lost("strict", seed)
    assert r.epoch > 1 and r.outcome.reported_loss == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_available_policy_reports_what_it_loses(seed: int) -> None:
    """The final check allows the loss only because the promotion's note announced it."""
    r = _lagging_then_lost("available", seed)
    assert r.epoch > 1 and r.outcome.reported_loss > 0


def _bounced(seed: int) -> FoResult:
    """A scripted world with ``appendfsync everysec``: under the WAIT 1 load, the primary's
    node dies (its last writes since the AOF's fsync with it: WAIT saw them on the
    replicas) and comes back 300 ms later, before the leader's node timeout. Its agent
    finds the primary's process gone: restarted as the primary, it would be behind its
    replicas, which then full-sync from it and drop what WAIT acknowledged."""
    w = FailoverWorld(
        seed,
        policy="strict",
        guarantee=1,
        aof="everysec",
        profile="high",
        weights=(0,) * len(KINDS),
    )

    def bounce() -> None:
        rec = w.shard_record(w.leader() or "n1")
        assert rec is not None
        strike(w, "bounce", rec.primary.node, 300)

    w.queue.schedule(4900, bounce)  # 800 ms after the last fsync (every second)
    return w.run()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_node_back_before_node_timeout_loses_no_wait_acked_write(seed: int) -> None:
    try:
        r = _bounced(seed)
    except SimFailure as exc:
        pytest.fail(str(exc), pytrace=False)
    assert r.epoch > 1  # its primary was held and the failover chose (issue 15's hole 1)


def test_checks_catch_restarting_a_primary_found_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old rule (a primary found without its process at start-up starts again as the
    primary) loses writes WAIT 1 acknowledged: the final check says so."""
    monkeypatch.setattr(supervise, "held_after_restart", lambda spec, clean_stop=None: False)
    for seed in (1, 2, 3):
        with pytest.raises(SimFailure, match="acknowledged by WAIT 1 are not on the final"):
            _bounced(seed)


BOUNCES = _weights(bounce=3, pause_shard=1, cut_link=1)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_bounces_with_everysec_lose_no_wait_acked_write(seed: int) -> None:
    """Random worlds of bounced nodes (the primary's, 60% of the time) whose shards fsync
    once a second. (With the old rule -- a primary found gone restarts as the primary --
    18 of seeds 1-20 lose writes WAIT acknowledged; with this one none of 1-40 does.)"""
    _run(seed, aof="everysec", weights=BOUNCES, overlap=0.0)
