"""The proxy endpoint end to end: three real ``ackdb server`` shards (requirepass = the
shard password; replicas where a test needs them) behind ``ackdb proxy`` started from a
topology file, driven with redis-py and redis-cli."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ackdb.cluster.keyslot import key_slot
from ackdb.resp.client import BlockingClient
from conftest import REDIS_CLI, no_retry, wait_until
from proxy_support import FakeMeta, ShardedDb

pytestmark = pytest.mark.e2e


def keys_on_each_shard(db: ShardedDb, per_shard: int = 1) -> list[list[bytes]]:
    """Keys that land on each shard, ``per_shard`` of each."""
    topo = db.topology().db
    found: list[list[bytes]] = [[] for _ in topo.shards]
    i = 0
    while any(len(f) < per_shard for f in found):
        k = b"key:%d" % i
        s = topo.shard_of_slot(key_slot(k)).index
        if len(found[s]) < per_shard:
            found[s].append(k)
        i += 1
    return found


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedDb]:
    with ShardedDb(tmp_path_factory.mktemp("proxy"), shards=3, replicas={0: 1}) as d:
        yield d


@pytest.fixture
def r(db: ShardedDb) -> Iterator[redis.Redis]:
    c = db.client()
    c.flushall()
    yield c
    c.close()


def test_pipelines_and_splits(r: redis.Redis, db: ShardedDb) -> None:
    p = r.pipeline(transaction=False)
    for i in range(300):
        p.set(f"k{i}", i)
    for i in range(300):
        p.get(f"k{i}")
    replies = p.execute()
    assert replies[300:] == [str(i).encode() for i in range(300)]
    assert r.dbsize() == 300
    # Every shard got some keys (routing really spread them).
    for prim in db.primaries:
        assert db.shard_client(prim.port).dbsize() > 0
    names = [f"k{i}" for i in range(0, 300, 7)] + ["missing"]
    assert r.mget(names) == [str(i).encode() for i in range(0, 300, 7)] + [None]
    assert r.mset({"a": "1", "b": "2", "c": "3", "{a}x": "4"})
    assert r.exists("a", "b", "c", "nope", "a") == 4
    assert r.touch("a", "b", "zz") == 2
    assert r.unlink("a", "b") == 2
    assert r.delete("c", "{a}x", "k0", "nope") == 3
    assert sorted(r.keys("k29*")) == [
        b"k29",
        b"k290",
        b"k291",
        b"k292",
        b"k293",
        b"k294",
        b"k295",
        b"k296",
        b"k297",
        b"k298",
        b"k299",
    ]
    assert r.randomkey() is not None
    with pytest.raises(redis.ResponseError, match="hash to the same slot"):
        r.sunion("k1", "k2")
    with pytest.raises(redis.ResponseError, match="hash to the same slot"):
        r.msetnx({"x1": 1, "x2": 2})
    assert r.sunion("{t}1", "{t}2") == set()


def test_scan_returns_every_key_present_throughout(r: redis.Redis) -> None:
    r.mset({f"s{i}": i for i in range(200)})
    seen: set[bytes] = set()
    cursor, calls = 0, 0
    while True:
        cursor, page = r.scan(cursor, count=17)
        seen.update(page)
        r.set(f"new{calls}", 1)  # keys come and go during the iteration
        r.delete(f"new{calls - 1}")
        calls += 1
        if cursor == 0:
            break
    assert {f"s{i}".encode() for i in range(200)} <= seen
    assert sorted(r.scan_iter(match="s1?", _type="string")) == sorted(
        f"s{i}".encode() for i in range(10, 20)
    )
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        r.execute_command("SCAN", "x")


def test_transactions_on_one_slot(r: redis.Redis) -> None:
    with r.pipeline() as p:
        p.set("{u}a", 1)
        p.incr("{u}a")
        p.lpush("{u}l", "x")
        assert p.execute() == [True, 2, 1]
    with pytest.raises(redis.ResponseError, match="hash to the same slot"):
        with r.pipeline() as p:
            p.set("a", 1)
            p.set("b", 2)
            p.execute()
    # WATCH: a change from another connection aborts EXEC.
    other = r.__class__(connection_pool=redis.ConnectionPool(**r.connection_pool.connection_kwargs))
    with r.pipeline() as p:
        p.watch("{u}a")
        p.multi()
        p.set("{u}a", 100)
        other.set("{u}a", 5)
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("{u}a") == b"5"
    # Queued errors: EXECABORT, as Redis does.
    c = r.connection_pool.get_connection()
    try:
        c.send_command("MULTI")
        assert c.read_response() == b"OK"
        c.send_command("SET", "{u}a")
        with pytest.raises(redis.ResponseError, match="wrong number"):
            c.read_response()
        c.send_command("EXEC")
        with pytest.raises(redis.exceptions.ExecAbortError):
            c.read_response()
    finally:
        r.connection_pool.release(c)


def test_resp3_and_connection_commands(db: ShardedDb) -> None:
    r3 = db.client(protocol=3)
    r3.flushall()
    r3.hset("h", mapping={"a": "1", "b": "2"})
    assert r3.hgetall("h") == {b"a": b"1", b"b": b"2"}
    hello = r3.execute_command("HELLO", "3")
    assert hello[b"proto"] == 3
    assert r3.execute_command("ZADD", "z", "1.5", "m") == 1
    assert r3.zscore("z", "m") == 1.5
    assert r3.client_setname("me") and r3.client_getname() == b"me"
    assert r3.ping() and r3.echo("x") == b"x"
    with BlockingClient(f"127.0.0.1:{db.port}") as raw:
        assert len(raw.call("COMMAND")) > 200  # the table, from a shard
    assert r3.command_count() > 200
    for cmd, err in [
        ("MOVE a 1", "not available"),
        ("SWAPDB 0 1", "not available"),
        ("SELECT 1", "database 0 only"),
        ("BGSAVE", "not available"),
        ("REPLICAOF no one", "not available"),
        ("CONFIG SET appendonly yes", "not available"),
        ("CLIENT PAUSE 100", "not available"),
        ("DEBUG SLEEP 0", "not available"),
    ]:
        with pytest.raises(redis.ResponseError, match=err):
            r3.execute_command(*cmd.split())
    assert r3.execute_command("SELECT", "0") in (b"OK", "OK", True)
    info = r3.info()
    assert info["redis_mode"] == "standalone" and info["db0"]["keys"] == 2
    r3.close()


def test_blocking_command_through_the_proxy(r: redis.Redis, db: ShardedDb) -> None:
    other = db.client()
    t0 = time.monotonic()
    assert r.blpop(["{q}list"], timeout=0.2) is None
    assert time.monotonic() - t0 >= 0.15
    p = r.pipeline(transaction=False)
    p.set("before", 1)
    p.blpop(["{q}list"], timeout=5)
    p.get("before")
    import threading

    timer = threading.Timer(0.3, lambda: other.rpush("{q}list", "v"))
    timer.start()
    assert p.execute() == [True, (b"{q}list", b"v"), b"1"]
    timer.join()
    other.close()


def test_auth_through_the_endpoint(tmp_path: Path) -> None:
    with ShardedDb(tmp_path / "pw", shards=2, password="s3cret") as d:
        with BlockingClient(f"127.0.0.1:{d.port}") as anon:
            replies = anon.pipeline(
                [
                    ["GET", "a"],
                    ["AUTH", "wrong"],
                    ["AUTH", "s3cret"],
                    ["SET", "a", "1"],
                    ["GET", "a"],
                ]
            )
        assert [str(x) for x in replies[:2]] == [
            "NOAUTH Authentication required.",
            "WRONGPASS invalid username-password pair or user is disabled.",
        ]
        assert replies[2:] == [b"OK", b"OK", b"1"]
        r3 = redis.Redis(port=d.port, protocol=3, password="s3cret", socket_timeout=10)
        assert r3.get("a") == b"1"
        r3.close()
    with ShardedDb(tmp_path / "nopw", shards=1) as d:
        c = redis.Redis(port=d.port, protocol=2, socket_timeout=10, retry=no_retry())
        with pytest.raises(redis.AuthenticationError, match="without any password configured"):
            c.execute_command("AUTH", "x")
        assert c.execute_command("AUTH", "default", "x")  # the default user has nopass
        c.close()


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli not on PATH")
def test_redis_cli_script(db: ShardedDb) -> None:
    assert REDIS_CLI is not None
    script = "FLUSHALL\nSET a 1\nMSET b 2 c 3\nMGET a b c\nDBSIZE\nDEL a b c\nINCR n\nPING\n"
    out = subprocess.run(
        [REDIS_CLI, "-p", str(db.port)], input=script.encode(), capture_output=True, timeout=30
    )
    assert out.stdout.decode().split() == ["OK", "OK", "OK", "1", "2", "3", "3", "3", "1", "PONG"]
    # --pipe: a mass insert, every reply read back.
    proto = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\nm%d\r\n$1\r\nv\r\n" % (len(b"m%d" % i), i) for i in range(2000)
    )
    out = subprocess.run(
        [REDIS_CLI, "-p", str(db.port), "--pipe"], input=proto, capture_output=True, timeout=60
    )
    assert b"errors: 0, replies: 2000" in out.stdout
    out = subprocess.run(
        [REDIS_CLI, "-p", str(db.port), "--scan", "--pattern", "m1*"],
        capture_output=True,
        timeout=30,
    )
    assert len(out.stdout.split()) == 1111
    out = subprocess.run([REDIS_CLI, "-p", str(db.port), "DBSIZE"], capture_output=True, timeout=30)
    assert out.stdout.strip() == b"2001"


def test_wait_is_the_minimum_over_the_shards_written(tmp_path: Path) -> None:
    with ShardedDb(tmp_path, shards=3, replicas={0: 1, 1: 1}) as d:
        k0, k1, k2 = (ks[0] for ks in keys_on_each_shard(d))
        r = d.client()
        r.set(k0, 1)
        r.set(k1, 1)
        assert r.wait(1, 2000) == 1  # both written shards have their replica
        assert r.wait(0, 0) == 0  # wrote nothing since: every shard asked; shard 2 has none
        stopped = d.replicas[1][0]
        stopped.proc.send_signal(signal.SIGSTOP)
        try:
            r.set(k0, 2)
            assert r.wait(1, 2000) == 1  # only shard 0 written: its replica acks
            r.set(k0, 3)
            r.set(k1, 3)
            t0 = time.monotonic()
            assert r.wait(1, 400) == 0  # shard 1's replica is stopped: the minimum is 0
            took = time.monotonic() - t0
            assert 0.3 <= took < 2.0  # one timeout overall
            r.set(k2, 1)
            assert r.wait(0, 100) == 0
        finally:
            stopped.proc.send_signal(signal.SIGCONT)
        d.wait_replicas(1)
        r.set(k1, 4)
        assert r.wait(1, 5000) == 1
        r.close()


def test_wait_after_writes_over_the_shared_connection_waits_and_blocks_nobody_else(
    tmp_path: Path,
) -> None:
    """Plain writes go over the endpoint's shared shard connection; a WAIT pipelined right
    behind them still waits for them (ACKDB.SYNCWOFF on the client's own connection), and
    neither a WAIT nor a blocking command holds other clients' requests."""
    with ShardedDb(tmp_path, shards=2, replicas={0: 1}) as d:
        k0 = keys_on_each_shard(d)[0][0]
        a, b = d.client(), d.client()
        a.set(k0, 0)
        assert a.wait(1, 2000) == 1
        with pytest.raises(redis.exceptions.ResponseError, match="internal to the endpoint"):
            a.execute_command("ACKDB.SYNCWOFF")
        stopped = d.replicas[0][0]
        stopped.proc.send_signal(signal.SIGSTOP)
        try:
            p = a.pipeline(transaction=False)
            p.set(k0, 1).execute_command("WAIT", 1, 600).get(k0)
            t0 = time.monotonic()
            done = threading.Event()
            others: list[float] = []

            def other() -> None:
                while not done.is_set():
                    t = time.monotonic()
                    b.get(k0)
                    others.append(time.monotonic() - t)

            th = threading.Thread(target=other)
            th.start()
            assert p.execute() == [True, 0, b"1"]  # the write is not acknowledged
            done.set()
            th.join()
            assert time.monotonic() - t0 >= 0.5
            assert others and max(others) < 0.5  # b's reads passed while a's WAIT waited
            started = time.monotonic()
            blocked = threading.Thread(target=lambda: a.blpop(["{%s}l" % k0.decode()], 1))
            blocked.start()
            time.sleep(0.1)
            assert b.get(k0) == b"1" and time.monotonic() - started < 0.5
            blocked.join()
        finally:
            stopped.proc.send_signal(signal.SIGCONT)
        a.close()
        b.close()


def test_waitaof_is_the_minimum_over_the_shards_written(tmp_path: Path) -> None:
    with ShardedDb(tmp_path, shards=2, replicas={0: 1}, appendonly=True) as d:
        k0, k1 = (ks[0] for ks in keys_on_each_shard(d))
        r = d.client()
        r.set(k0, 1)
        assert r.execute_command("WAITAOF", 1, 1, 3000) == [1, 1]
        r.set(k0, 2)
        r.set(k1, 2)  # shard 1 has no replica
        assert r.execute_command("WAITAOF", 1, 1, 1500) == [1, 0]  # everysec: local within 1 s
        r.close()


def test_shard_crash_mid_pipeline_gives_errors_not_hangs(tmp_path: Path) -> None:
    with ShardedDb(tmp_path, shards=3) as d:
        ks = keys_on_each_shard(d, 5)
        r = d.client()
        for group in ks:
            for k in group:
                r.set(k, 1)
        victim = d.primaries[1]
        victim.proc.send_signal(signal.SIGSTOP)
        p = r.pipeline(transaction=False)
        for i in range(5):
            for group in ks:
                p.get(group[i])
        import threading

        killer = threading.Timer(0.5, lambda: victim.proc.send_signal(signal.SIGKILL))
        killer.start()
        t0 = time.monotonic()
        replies = p.execute(raise_on_error=False)
        killer.join()
        assert time.monotonic() - t0 < 10
        for i, reply in enumerate(replies):
            if i % 3 == 1:
                assert isinstance(reply, redis.exceptions.TryAgainError), reply
            else:
                assert reply == b"1"
        victim.stop()
        # The shard comes back on its port: the next command reconnects.
        d.primaries[1] = d.start_shard("shard1", victim.port)
        assert r.set(ks[1][0], 2) and r.get(ks[1][0]) == b"2"
        r.close()


def test_topology_change_sends_new_commands_to_the_new_primary(tmp_path: Path) -> None:
    with ShardedDb(tmp_path, shards=2, replicas={1: 1}) as d:
        k1 = keys_on_each_shard(d)[1][0]
        r = d.client()
        r.set(k1, "old")
        assert r.wait(1, 2000) == 1
        new = d.replicas[1][0]
        d.shard_client(new.port).execute_command("REPLICAOF", "NO", "ONE")
        d.primaries[1], d.replicas[1] = new, [d.primaries[1]]
        d.version += 1
        d.write_topology()
        wait_until(lambda: r.info("server")["topology_version"] == 2, 10)
        r.set(k1, "new")
        assert d.shard_client(new.port).get(k1) == b"new"
        r.close()


def test_the_proxy_stops_on_sigterm(tmp_path: Path) -> None:
    with ShardedDb(tmp_path, shards=1) as d:
        assert d.proxy is not None
        assert d.proxy.stop() == 0
        assert not os.path.exists(f"/proc/{d.proxy.proc.pid}")


def test_topology_from_the_node_by_long_poll(tmp_path: Path) -> None:
    meta = FakeMeta()
    try:
        with ShardedDb(tmp_path, shards=2, replicas={1: 1}, meta=meta) as d:
            k1 = keys_on_each_shard(d)[1][0]
            r = d.client()
            r.set(k1, "old")
            assert r.wait(1, 2000) == 1
            new = d.replicas[1][0]
            d.shard_client(new.port).execute_command("REPLICAOF", "NO", "ONE")
            d.primaries[1], d.replicas[1] = new, [d.primaries[1]]
            d.version += 1
            t0 = time.monotonic()
            d.write_topology()
            wait_until(lambda: r.info("server")["topology_version"] == 2, 5)
            assert time.monotonic() - t0 < 3  # the long poll answered at once, not at 10 s
            r.set(k1, "new")
            assert d.shard_client(new.port).get(k1) == b"new"
            r.close()
    finally:
        meta.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_does_not_read_is_paused_not_buffered(db: ShardedDb) -> None:
    """Back-pressure: a client pipelining far more than it reads stops being read (its
    replies wait in bounded buffers), and gets every reply once it reads."""
    import select
    import socket
    import threading

    assert db.proxy is not None
    db.client().set("bp", "v" * 100)
    n = 200_000
    request = b"*2\r\n$3\r\nGET\r\n$2\r\nbp\r\n"
    reply = b"$100\r\n" + b"v" * 100 + b"\r\n"  # 200k replies: 21 MB
    sock = socket.create_connection(("127.0.0.1", db.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    before = _rss_kib(db.proxy.proc.pid)
    sender = threading.Thread(target=lambda: sock.sendall(request * n), daemon=True)
    sender.start()
    time.sleep(2)
    grown_kib = _rss_kib(db.proxy.proc.pid) - before
    assert grown_kib < 16 * 1024, grown_kib  # far below the 21 MB of replies owed
    got = 0
    want = len(reply) * n
    while got < want:  # select, not a socket timeout: the sender shares the socket
        assert select.select([sock], [], [], 30)[0], f"stalled after {got} bytes"
        chunk = sock.recv(1 << 20)
        assert chunk
        got += len(chunk)
    sender.join(10)
    assert got == want
    sock.close()


def test_an_endpoint_of_a_database_created_on_a_real_node(tmp_path: Path) -> None:
    """``ackdb proxy --meta`` against a real node: DB.CREATE, the node's supervisor starts
    the shards on the ports the cluster gave them (they require the shard password,
    derived from the cluster secret), and a second endpoint run here follows
    DB.TOPOLOGY and authenticates with the secret file."""
    import sys

    from ackdb.cluster.databases import Topology
    from ackdb.node.localcluster import LocalCluster
    from ackdb.node.secrets import read_secret, shard_password
    from conftest import ServerProcess, free_port

    (tmp_path / "cluster").mkdir()
    with LocalCluster(tmp_path / "cluster", 1) as c:
        c.start_all()
        node = c.wait_leader()
        wait_until(lambda: _created(c, node), 30)
        with c.client(node) as cl:
            topo = Topology.from_bytes(cl.call("DB.TOPOLOGY", "px"))
        password = shard_password(read_secret(str(c.secret_file)))
        shards = [
            redis.Redis(port=s.primary.port, password=password, socket_timeout=10)
            for s in topo.db.shards
        ]
        wait_until(lambda: all(_answers(r) for r in shards), 30)
        port = free_port()
        argv = [sys.executable, "-m", "ackdb", "proxy", "--db", "px", "--bind", "127.0.0.1"]
        argv += ["--port", str(port), "--meta", c[node].addr]
        argv += ["--secret-file", str(c.secret_file)]
        proxy = ServerProcess(argv, port, tmp_path, "proxy")
        try:
            r = redis.Redis(port=port, socket_timeout=10)
            assert r.mset({f"k{i}": i for i in range(50)})
            assert r.dbsize() == 50
            assert sum(int(s.dbsize()) for s in shards) == 50
            assert r.info("server")["topology_version"] == topo.version
            r.close()
        finally:
            proxy.stop()


def _answers(r: redis.Redis) -> bool:
    try:
        return bool(r.ping())
    except redis.RedisError:
        return False


def _created(c: object, node: str) -> bool:
    from ackdb.resp.client import ReplyError

    try:
        with c.client(node) as cl:  # type: ignore[attr-defined]
            cl.call("DB.CREATE", "px", "SHARDS", "3", "REPLICATION", "no")
        return True
    except ReplyError as e:
        return "already exists" in str(e)
    except (OSError, ConnectionError):
        return False
