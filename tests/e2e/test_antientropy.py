"""End to end: three real ``ackdb server`` replicas (``appendfsync always``, a password)
of one partition, and the coordinators' anti-entropy shell (coordinator/antientropy.py,
running the sans-IO schedule of leaderless/convergence.py) driven from this test with a
Topology built by hand. Checked: a replica whose data directory was wiped is rebuilt by
the schedule alone; tombstones every replica holds are purged past the grace and never
come back, and a tombstone one replica lacks is spread before any purge (no live value
resurfaces); INFO's lines count it; CONVERGE (key and whole database) pushes the merge,
answers a TIMEOUT naming the unreachable replica, and waits for a replica that returns.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis
from coordinator_support import LLDb
from coordinator_support import Replicas as LLReplicas

from ackdb.cluster.databases import (
    Database,
    DbType,
    Instance,
    Persistence,
    Shard,
    Topology,
)
from ackdb.coordinator.antientropy import AntiEntropy
from ackdb.keyspace import lww
from ackdb.keyspace.lww import Record, Version
from conftest import free_port

pytestmark = pytest.mark.e2e

N = 3
PASSWORD = "replica-secret"
NODES = ("n1", "n2", "n3")


class Replicas(LLReplicas):
    def __init__(self, root: Path) -> None:
        super().__init__(root, N, PASSWORD)

    def records(self, i: int) -> dict[bytes, Record]:
        flat = self.call(i, "LL.RANGE", 0, 0, 1)
        return {flat[j]: lww.decode(flat[j + 1]) for j in range(0, len(flat), 2)}


def topology(reps: Replicas, node: str) -> Topology:
    insts = [Instance(NODES[i], reps.ports[i]) for i in range(N)]
    shard = Shard(0, 0, 16383, 1, insts[0], tuple(insts[1:]))
    db = Database(
        "ll", 1, DbType.LEADERLESS, free_port(), True, N - 1, Persistence.AOF_ALWAYS, "",
        False, (shard,), max_clock_skew_ms=100, hint_age_ms_max=1,
    )  # fmt: skip
    return Topology(1, db, dict.fromkeys(NODES, "127.0.0.1"), node)


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def notice(self, msg: str) -> None:
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        self.lines.append(msg)


def coordinator(reps: Replicas, node: str, interval_ms: int = 100) -> AntiEntropy:
    ae = AntiEntropy(
        node, PASSWORD.encode(), Log(), interval_ms=interval_ms, depth=6, call_timeout_s=2.0,
        request_timeout_ms=100,
    )  # fmt: skip
    ae.set_topology(topology(reps, node))
    return ae


async def until(pred: Any, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not await asyncio.to_thread(pred):
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.05)


def _v(ms: int) -> bytes:
    return Version(ms, 0, 1).to_bytes()


@pytest.fixture
def reps(tmp_path: Path) -> Any:
    r = Replicas(tmp_path)
    yield r
    r.stop_all()


def test_schedule_rebuilds_a_wiped_replica_and_purges_without_resurrection(
    reps: Replicas,
) -> None:
    for i in range(N):
        for k in range(200):
            reps.call(i, "LL.SET", b"k%d" % k, _v(5_000), b"v%d" % k)
        reps.call(i, "LL.DEL", b"old-delete", _v(2_000))  # on every replica: purgeable
        reps.call(i, "LL.DEL", b"recent-delete", _v(1 << 42))  # within the grace: kept
    reps.wipe(2)
    assert reps.call(2, "DBSIZE") == 0
    # z: live (old) on replica 1, deleted (newer, past the grace) on the others.
    reps.call(1, "LL.SET", b"z", _v(1_000), b"zombie")
    reps.call(0, "LL.DEL", b"z", _v(3_000))
    reps.call(2, "LL.DEL", b"z", _v(3_000))

    async def scenario() -> list[AntiEntropy]:
        aes = [coordinator(reps, node) for node in NODES]
        tasks = [asyncio.create_task(ae.run()) for ae in aes]

        def converged() -> bool:
            recs = [reps.records(i) for i in range(N)]
            for i in (0, 2):  # they hold the tombstone: never live again
                z = recs[i].get(b"z")
                assert z is None or z.view()[0] == "deleted", "a deleted key came back"
            return recs[0] == recs[1] == recs[2] and b"old-delete" not in recs[0]

        await until(converged, 30)
        await until(lambda: all(b"z" not in reps.records(i) for i in range(N)), 30)
        await asyncio.sleep(0.5)  # several more rounds: nothing comes back
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return aes

    aes = asyncio.run(scenario())
    recs = reps.records(2)
    assert len([k for k in recs if k.startswith(b"k")]) == 200
    assert recs[b"recent-delete"].is_tombstone()
    info = [dict(ae.info()) for ae in aes]
    assert all(int(i["ll_ae_rounds"]) >= 1 for i in info)
    assert sum(int(i["ll_ae_pushed"]) for i in info) >= 200
    assert int(info[0]["ll_tombstones_purged"]) >= 2  # n1 sweeps partition 0
    assert all(0 <= int(i["ll_ae_last_full_comparison_age_ms"]) for i in info)
    assert all(b"z" not in reps.records(i) for i in range(N))


def test_converge_pushes_the_merge_times_out_naming_the_replica_and_waits(
    reps: Replicas,
) -> None:
    reps.call(0, "LL.SET", b"c", _v(10), b"a")
    reps.call(1, "LL.HSET", b"c", _v(20), b"f", b"1")
    reps.call(2, "LL.SET", b"other", _v(10), b"x")

    async def scenario() -> None:
        ae = coordinator(reps, "n1", interval_ms=3_600_000)  # no rounds: CONVERGE alone
        try:
            await checks(ae)
        finally:  # on every path: its connections must not outlive the loop unclosed
            await ae.close()

    async def checks(ae: AntiEntropy) -> None:
        assert dict(ae.info())["ll_ae_last_full_comparison_age_ms"] == "-1"
        assert await ae.converge(b"c", 5_000) is None
        c = [reps.records(i).get(b"c") for i in range(N)]
        assert c[0] == c[1] == c[2] and c[0] is not None
        assert c[0].view() == ("hash", {b"f": b"1"})
        assert await ae.converge(None, 5_000) is None
        assert reps.records(0) == reps.records(1) == reps.records(2)

        await asyncio.to_thread(reps.kill, 1)
        err = await ae.converge(b"c", 300)
        assert err is not None and err.startswith("TIMEOUT")
        assert f"unreachable: replica 1 on n2 (127.0.0.1:{reps.ports[1]})" in err
        err = await ae.converge(None, 300)
        assert err is not None and "replica 1 of partition 0 on n2" in err

        # CONVERGE waits: the replica returns (from its AOF) while it is waiting.
        reps.call(0, "LL.SET", b"late", _v(30), b"y")
        waiting = asyncio.create_task(ae.converge(None, 20_000))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await asyncio.to_thread(reps.start, 1)
        assert await waiting is None
        assert reps.records(0) == reps.records(1) == reps.records(2)

    asyncio.run(scenario())


def test_converge_and_info_through_the_coordinator_endpoint(tmp_path: Path) -> None:
    """The seam: the real coordinator endpoint (llcoord's Endpoint and Runner) with an
    AntiEntropy plugged in, as coordinator/main.py's ``serve`` does -- CONVERGE and INFO
    leaderless over RESP."""

    from ackdb.coordinator.endpoint import Endpoint
    from ackdb.coordinator.runner import Runner

    db = LLDb(tmp_path)
    pw = db.shard_password
    try:

        async def scenario() -> None:
            topo = db.topology("n1")
            log = Log()
            runner = Runner(topo, pw, log)
            ae = AntiEntropy("n1", pw, log, interval_ms=3_600_000, depth=6)
            port = db.coord_ports["n1"]
            ep = Endpoint(topo, runner, pw, log, port, ae)
            await ep.listen("127.0.0.1")
            ae.set_topology(topo)
            task = asyncio.create_task(ae.run())

            def client_side() -> None:
                with redis.Redis(port=port, socket_timeout=20) as c:
                    assert c.set("k", "v")
                    with db.replica(2) as r2:
                        r2.execute_command("LL.SET", "only2", _v(10), "x")
                    assert c.execute_command("CONVERGE", "KEY", "only2", "TIMEOUT", 5000)
                    assert c.execute_command("CONVERGE", "TIMEOUT", 5000)
                    for i in range(N):
                        with db.replica(i) as r:
                            assert r.execute_command("LL.GET", "only2") is not None
                    info = c.info("leaderless")
                    for name in (
                        "ll_ae_rounds",
                        "ll_ae_differing_leaves",
                        "ll_ae_pushed",
                        "ll_ae_last_full_comparison_age_ms",
                        "ll_tombstones_purged",
                    ):
                        assert name in info, name
                    db.kill_replica(1)
                    try:
                        c.execute_command("CONVERGE", "KEY", "k", "TIMEOUT", 200)
                        raise AssertionError("CONVERGE answered OK with a replica down")
                    except redis.ResponseError as e:
                        assert str(e).startswith("TIMEOUT") and "replica 1 on n2" in str(e)

            try:
                await asyncio.to_thread(client_side)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await ep.close()

        asyncio.run(scenario())
    finally:
        db.stop()
