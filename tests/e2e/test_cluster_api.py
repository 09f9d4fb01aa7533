"""The cluster API through real endpoints: three shard processes, three ``ackdb proxy``
processes (nodes 127.0.0.1, .2, .3 on the database's port, each owning the slots of the
shard whose primary runs on its node), driven by cluster-aware clients: redis-py's
``RedisCluster``, ``redis-cli -c``, ``redis-cli --cluster check`` and a smoke run of
``redis-benchmark --cluster``; MOVED and CROSSSLOT as a Redis Cluster node sends them;
every endpoint reporting the same cluster; keys in a slot; INFO and HELLO saying cluster.
Pub/Sub through several endpoints is in test_endpoint_pubsub.py."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tests.e2e.cluster_api_support import ShardedDb, start_db

from ackdb.cluster.keyslot import key_slot

pytestmark = pytest.mark.e2e

REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCHMARK = shutil.which("redis-benchmark")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedDb]:
    base: Path = tmp_path_factory.mktemp("cluster_api")
    sharded = start_db(base)
    yield sharded
    sharded.stop()


def node(db: ShardedDb, i: int, **kw: object) -> redis.Redis:
    return redis.Redis(host=f"127.0.0.{i + 1}", port=db.port, socket_timeout=10, **kw)  # type: ignore[arg-type]


def owner_of(key: bytes) -> int:
    """The node whose endpoint owns the key's slot (shard i's primary runs on node i)."""
    slot = key_slot(key)
    return 0 if slot <= 5460 else 1 if slot <= 10922 else 2


def test_every_endpoint_reports_the_same_cluster(db: ShardedDb) -> None:
    slots = [node(db, i).execute_command("CLUSTER", "SLOTS") for i in range(3)]
    assert slots[0] == slots[1] == slots[2]
    assert [(s[0], s[1], s[2][0], s[2][1]) for s in sorted(slots[0])] == [
        (0, 5460, b"127.0.0.1", db.port),
        (5461, 10922, b"127.0.0.2", db.port),
        (10923, 16383, b"127.0.0.3", db.port),
    ]
    ids = [node(db, i).execute_command("CLUSTER", "MYID") for i in range(3)]
    assert len(set(ids)) == 3
    for i in range(3):
        text = node(db, i).execute_command("CLUSTER", "NODES")
        text = text if isinstance(text, str) else text.decode()  # redis-py parses NODES
        assert "myself" in str(text)
        info = node(db, i).info("cluster")
        assert info["cluster_enabled"] == 1
        assert node(db, i).info("server")["redis_mode"] == "cluster"
    hello = node(db, 0, protocol=3).execute_command("HELLO", "3")
    assert hello[b"mode"] == b"cluster"


def test_moved_and_crossslot(db: ShardedDb) -> None:
    r = node(db, 0)
    assert owner_of(b"foo") == 2
    with pytest.raises(redis.exceptions.MovedError) as e:
        r.get("foo")
    assert str(e.value) == f"{key_slot(b'foo')} 127.0.0.3:{db.port}"
    assert owner_of(b"{b}") == owner_of(b"{f}") == 0
    with pytest.raises(redis.exceptions.ClusterCrossSlotError):
        r.mget("{b}1", "{f}1")  # both slots are node 0's, but a cluster refuses two
    assert r.mset({"{b}1": "x", "{b}2": "y"}) and r.mget("{b}1", "{b}2") == [b"x", b"y"]
    assert r.execute_command("READONLY") is True and r.execute_command("ASKING") is True


def test_redis_py_cluster_client(db: ShardedDb) -> None:
    rc = redis.RedisCluster(host="127.0.0.2", port=db.port, socket_timeout=10)
    try:
        before = [node(db, i).dbsize() for i in range(3)]
        keys = [f"user:{i}" for i in range(200)]
        for i, k in enumerate(keys):
            rc.set(k, i)
        assert [int(rc.get(k)) for k in keys] == list(range(200))  # type: ignore[arg-type]
        pipe = rc.pipeline()
        for k in keys[:20]:
            pipe.incr(k)
        assert pipe.execute() == [i + 1 for i in range(20)]
        assert rc.mget_nonatomic(keys[:5]) == [b"1", b"2", b"3", b"4", b"5"]
        # each node's keys are its own shard's: the endpoints' DBSIZEs add up
        per_node = [node(db, i).dbsize() - before[i] for i in range(3)]
        owned = [sum(1 for k in keys if owner_of(k.encode()) == i) for i in range(3)]
        assert per_node == owned
        # keys in a slot, asked of the slot's owner (SCAN-and-filter on its shard)
        slot = key_slot(b"user:7")
        owner = node(db, owner_of(b"user:7"))
        n = owner.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)
        in_slot = [k for k in keys if key_slot(k.encode()) == slot]
        assert n == len(in_slot) >= 1
        got = owner.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
        assert sorted(got) == sorted(k.encode() for k in in_slot)
        other = node(db, (owner_of(b"user:7") + 1) % 3)
        assert other.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        for k in keys:
            rc.delete(k)
    finally:
        rc.close()


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli not on PATH")
def test_redis_cli_follows_redirections_and_checks_the_cluster(db: ShardedDb) -> None:
    assert REDIS_CLI is not None
    base = [REDIS_CLI, "-c", "-h", "127.0.0.1", "-p", str(db.port)]
    run = subprocess.run([*base, "SET", "foo", "bar"], capture_output=True, text=True, timeout=30)
    assert run.stdout == "OK\n"
    run = subprocess.run([*base, "GET", "foo"], capture_output=True, text=True, timeout=30)
    assert run.stdout == "bar\n"
    assert node(db, 2).get("foo") == b"bar"
    check = subprocess.run(
        [REDIS_CLI, "--cluster", "check", f"127.0.0.1:{db.port}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "[OK] All nodes agree about slots configuration." in check.stdout
    assert "[OK] All 16384 slots covered." in check.stdout
    assert "3 masters" in check.stdout


@pytest.mark.skipif(REDIS_BENCHMARK is None, reason="redis-benchmark not on PATH")
def test_redis_benchmark_cluster_smoke(db: ShardedDb) -> None:
    assert REDIS_BENCHMARK is not None
    argv = [REDIS_BENCHMARK, "--cluster", "-h", "127.0.0.1", "-p", str(db.port)]
    run = subprocess.run(
        [*argv, "-n", "300", "-c", "4", "-t", "set,get", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Cluster has 3 master nodes" in run.stdout
    assert "SET:" in run.stdout and "GET:" in run.stdout
    assert "requests per second" in run.stdout


def test_redis_py_cluster_pubsub(db: ShardedDb) -> None:
    """redis-py's cluster Pub/Sub: classic channels through any node, shard channels
    through the slot's owner."""
    rc = redis.RedisCluster(host="127.0.0.3", port=db.port, socket_timeout=10)
    try:
        p = rc.pubsub()
        p.subscribe("orders")
        p.ssubscribe("{b}events")
        deadline = time.monotonic() + 10
        kinds = set()
        while len(kinds) < 2 and time.monotonic() < deadline:
            m = p.get_sharded_message(timeout=0.1) or p.get_message(timeout=0.1)
            if m is not None:
                kinds.add(m["type"])
        assert kinds == {"subscribe", "ssubscribe"}
        assert rc.publish("orders", "a") == 1
        assert rc.spublish("{b}events", "b") == 1
        got = set()
        while len(got) < 2 and time.monotonic() < deadline + 10:
            m = p.get_sharded_message(timeout=0.1) or p.get_message(timeout=0.1)
            if m is not None:
                got.add((m["type"], m["channel"], m["data"]))
        assert got == {("message", b"orders", b"a"), ("smessage", b"{b}events", b"b")}
        p.close()
    finally:
        rc.close()
