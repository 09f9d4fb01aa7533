"""node/lease.py with a scripted Raft read and shard connections: which primaries get a
lease, with which deadline, and what a failed or slow read renews (nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.unit.cluster.test_dbops import Log, cluster, db

from ackdb.cluster.commands import OK, Op
from ackdb.cluster.failover import PROFILES
from ackdb.node import lease as lease_mod
from ackdb.node.lease import LeaseRenewer
from ackdb.resp.client import ReplyError
from ackdb.server.log import Log as NodeLog


class Fake:
    def __init__(self, log: Log, read: str = "ok", read_delay_s: float = 0.0) -> None:
        self.log = log
        self.read_mode = read
        self.read_delay_s = read_delay_s
        self.sent: list[tuple[str, ...]] = []
        self.refuse: set[str] = set()

    def read(self, run: Callable[[], None], failed: Callable[[str], None]) -> None:
        loop = asyncio.get_running_loop()
        if self.read_mode == "ok":
            loop.call_later(self.read_delay_s, run)
        elif self.read_mode == "fail":
            loop.call_soon(failed, "NOQUORUM no leader")
        # "never": the read never completes

    async def call(self, unit: str, *args: str) -> Any:
        if unit in self.refuse:
            raise ReplyError("ERR stale epoch 1 (current 2)")
        self.sent.append((unit, *args))
        return b"OK"


def _renewer(f: Fake, node: str = "n1") -> tuple[LeaseRenewer, NodeLog]:
    nlog = NodeLog("warning")
    return LeaseRenewer(node, nlog, lambda: f.log.store, f.read, f.call), nlog


def _two_shards() -> Log:
    log = cluster(3)
    assert log.create("d", shards=3, replicas=1) == OK  # primaries on n1, n2, n3
    return log


def test_primaries_of_ok_shards_get_a_lease_from_the_reads_start() -> None:
    log = _two_shards()
    d = db(log, "d")
    f = Fake(log)
    r, _ = _renewer(f)

    async def go() -> int:
        a = lease_mod.now_ms()
        await r._round()
        return a

    a = asyncio.run(go())
    ((unit, cmd, epoch, deadline),) = f.sent
    assert (unit, cmd, epoch) == (f"shards/{d.uid}-0", "ACKDB.LEASE", "1")
    lease_ms = PROFILES["high"].lease_ms
    assert a <= int(deadline) - lease_ms <= a + 50  # a + lease_ms, a taken before the read


def test_a_failing_shard_gets_no_lease() -> None:
    log = _two_shards()
    assert log.cmd(Op.SHARD_FENCE, "d", 0, 1, 0, "") == OK
    f = Fake(log)
    r, _ = _renewer(f)
    asyncio.run(r._round())
    assert f.sent == []


def test_a_failed_or_slow_read_renews_nothing() -> None:
    for mode, delay in (("fail", 0.0), ("never", 0.0), ("ok", 0.6)):
        f = Fake(_two_shards(), read=mode, read_delay_s=delay)
        r, _ = _renewer(f)
        asyncio.run(r._round())
        assert f.sent == [], mode
        assert r._lost


def test_no_primary_here_no_read() -> None:
    log = cluster(3)
    assert log.create("d", shards=1, replicas=1) == OK  # primary on n1
    f = Fake(log, read="never")
    r, _ = _renewer(f, node="n2")
    asyncio.run(asyncio.wait_for(r._round(), 1.0))  # returns at once: nothing to renew
    assert r.rounds == 0


def test_a_refused_lease_is_not_counted() -> None:
    log = _two_shards()
    f = Fake(log)
    f.refuse.add(f"shards/{db(log, 'd').uid}-0")
    r, _ = _renewer(f)
    asyncio.run(r._round())
    assert r.renewed == 0


def test_the_period_is_the_strictest_profiles() -> None:
    log = cluster(3)
    assert log.create("d", shards=1, replicas=1) == OK
    r, _ = _renewer(Fake(log))
    assert r._period_ms(log.store) == PROFILES["high"].lease_renew_ms


def test_a_planned_targets_lease_starts_once_the_old_primary_handed_over() -> None:
    from ackdb.cluster.leases import lease_targets

    log = cluster(3)
    assert log.create("d", shards=1, replicas=1) == OK
    s = db(log, "d").shards[0]
    old, target = s.primary.node, s.replicas[0].node
    unit = f"shards/{db(log, 'd').uid}-0"
    assert log.cmd(Op.SHARD_FENCE, "d", 0, 1, 1, target) == OK  # planned, epoch 2
    assert lease_targets(log.store, old) == [] and lease_targets(log.store, target) == []
    assert log.cmd(Op.SHARD_REPORT, "d", 0, 2, old, "r", 100) == OK  # handed over
    assert lease_targets(log.store, target) == [(unit, 2)]
    assert lease_targets(log.store, old) == []
