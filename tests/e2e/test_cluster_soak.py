"""Longer cluster runs (``pytest -m slow``): repeated leader crashes of a five-member
cluster under load, a rolling restart, slow and one-way-broken links."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from test_cluster_failover import FAILOVER_MAX_S, Load, check_all_readable
from test_cluster_partition import ProxiedCluster, write_keys

from ackdb.node.localcluster import LocalCluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROUNDS = 6


def test_repeated_leader_crashes_five_members(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 5, ["--snapshot-entries", "500"]) as c:
        c.start_all()
        figures = []
        with Load(c, writers=6) as load:
            for _ in range(ROUNDS):
                old = c.wait_leader()
                term = c.status(old).term  # type: ignore[union-attr]
                n0 = load.count()
                wait_for(lambda n0=n0: load.count() >= n0 + 300, 60, "writes")
                t0 = time.monotonic()
                c.kill(old, signal.SIGKILL)
                rest = [i for i in c.members if i != old]
                c.wait_leader(rest, min_term=term + 1, timeout_s=10)
                figures.append(time.monotonic() - t0)
                c.start(old)
        print(f"\nfailovers (ms): {[round(f * 1000) for f in figures]}")
        assert max(figures) < FAILOVER_MAX_S
        for node_id in c.members:
            check_all_readable(c, node_id, load.acked)


def test_rolling_restart_under_load(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 3, ["--snapshot-entries", "200"]) as c:
        c.start_all()
        c.wait_leader()
        with Load(c) as load:
            for node_id in list(c.members):
                n0 = load.count()
                wait_for(lambda n0=n0: load.count() >= n0 + 200, 60, "writes")
                c.kill(node_id, signal.SIGTERM)
                c.start(node_id)
                c.wait_leader(timeout_s=10)
        for node_id in c.members:
            check_all_readable(c, node_id, load.acked)


def test_slow_links_still_commit(tmp_path: Path) -> None:
    pc = ProxiedCluster(tmp_path, 3)
    try:
        pc.c.start_all()
        leader = pc.c.wait_leader()
        for p in pc.proxies.values():
            p.delay(100)  # 200 ms round trips: below the election timeout
        t0 = time.monotonic()
        acked = write_keys(pc.c, leader, "slow", 50)
        assert time.monotonic() - t0 >= 0.2
        assert pc.c.leader() == leader  # no spurious election
        for node_id in pc.c.members:
            check_all_readable(pc.c, node_id, acked)
    finally:
        pc.close()


def test_one_way_blackhole_to_a_follower(tmp_path: Path) -> None:
    """The leader's messages to one follower vanish while the follower's still arrive:
    the majority (leader and the other follower) goes on; healed, the follower catches
    up."""
    pc = ProxiedCluster(tmp_path, 3)
    try:
        c = pc.c
        c.start_all()
        leader = c.wait_leader()
        follower = next(i for i in c.members if i != leader)
        pc.proxies[(leader, follower)].blackhole("up")
        other = next(i for i in c.members if i not in (leader, follower))
        acked = write_keys(c, other, "oneway", 100)
        pc.heal()
        pc.proxies[(leader, follower)].close_connections()
        check_all_readable(c, follower, acked)
    finally:
        pc.close()
