"""End to end: a spawned ``ackdb server`` driven with redis-py (RESP2 and RESP3) and raw
sockets, on ephemeral loopback ports.

Most tests share one server per module (``shared``) and start from FLUSHALL; tests that
need their own configuration (requirepass, maxclients, timeout, query buffer limit) or end
the process (SHUTDOWN, SIGTERM) start their own through ``start``.

Check the tests themselves against redis-server (everything but ackdb's own log lines):
    ACKDB_E2E_TARGET=redis python -m pytest tests/e2e/test_redis_py.py
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from conftest import (
    REDIS_SERVER,
    ServerProcess,
    ackdb_argv,
    free_port,
    no_retry,
    redis_argv,
    wait_until,
)

pytestmark = pytest.mark.e2e

TARGET = os.environ.get("ACKDB_E2E_TARGET", "ackdb")
CLIENT_TIMEOUT_S = 10.0
RAW_TIMEOUT_S = 5.0

Start = Callable[..., ServerProcess]


def server_argv(port: int, *extra: str) -> list[str]:
    if TARGET == "redis":
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed")
        return redis_argv(port, *extra)
    return ackdb_argv(port, *extra)


@pytest.fixture
def start(tmp_path: Path, start_ackdb: Start) -> Iterator[Start]:
    if TARGET != "redis":
        yield start_ackdb
        return
    started: list[ServerProcess] = []

    def start_redis(*extra: str, port: int | None = None) -> ServerProcess:
        p = port or free_port()
        srv = ServerProcess(server_argv(p, *extra), p, tmp_path, "redis")
        started.append(srv)
        return srv

    yield start_redis
    for srv in started:
        srv.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    srv = ServerProcess(server_argv(port), port, tmp_path_factory.mktemp("e2e"), TARGET)
    yield srv
    srv.stop()


def connect(srv: ServerProcess, protocol: int = 2, **kw: object) -> redis.Redis:
    """A redis-py client; redis-py 8 defaults to RESP3, so the protocol is always explicit."""
    return redis.Redis(
        port=srv.port,
        protocol=protocol,
        socket_timeout=CLIENT_TIMEOUT_S,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def r(shared: ServerProcess) -> Iterator[redis.Redis]:
    with connect(shared, single_connection_client=True) as client:
        client.flushall()
        yield client


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def rp(request: pytest.FixtureRequest, shared: ServerProcess) -> Iterator[redis.Redis]:
    with connect(shared, protocol=request.param, single_connection_client=True) as client:
        client.flushall()
        yield client


def raw(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=RAW_TIMEOUT_S)


def recv_until_closed(sock: socket.socket, limit_bytes: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    out = bytearray()
    while len(out) < limit_bytes:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def is_closed(sock: socket.socket) -> bool:
    """True once the server closed ``sock`` (non-blocking check)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


# -- strings, keys, expiry ----------------------------------------------------------------


def test_strings(rp: redis.Redis) -> None:
    assert rp.set("s", "v") is True
    assert rp.get("s") == b"v"
    assert rp.get("missing") is None
    assert rp.set("s", "w", nx=True) is None
    assert rp.set("s", "w", xx=True, get=True) == b"v"
    assert rp.append("s", "xyz") == 4
    assert rp.strlen("s") == 4
    assert rp.getrange("s", 1, -1) == b"xyz"
    assert rp.setrange("s", 1, "A") == 4
    assert rp.get("s") == b"wAyz"
    assert rp.incr("n") == 1
    assert rp.incrby("n", 41) == 42
    assert rp.decrby("n", 2) == 40
    assert rp.incrbyfloat("n", 0.5) == 40.5
    assert rp.mset({"a": "1", "b": "2"}) is True
    assert rp.mget("a", "missing", "b") == [b"1", None, b"2"]
    assert rp.msetnx({"a": "x", "c": "3"}) is False
    assert rp.getdel("a") == b"1"
    assert rp.exists("a") == 0
    assert rp.getset("b", "two") == b"2"
    assert rp.setnx("b", "x") is False
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range$"):
        rp.incr("s")
    rp.hset("h", "f", "v")
    with pytest.raises(redis.ResponseError, match="^WRONGTYPE"):
        rp.get("h")


def test_keys(r: redis.Redis) -> None:
    r.mset({"k1": "a", "k2": "b", "other": "c"})
    assert sorted(r.keys("k*")) == [b"k1", b"k2"]
    assert r.exists("k1", "k2", "nope", "k1") == 3
    assert r.type("k1") == b"string"
    assert r.type("nope") == b"none"
    assert r.rename("k1", "k3") is True
    assert r.renamenx("k3", "k2") is False
    assert r.touch("k2", "k3", "nope") == 2
    assert r.delete("k2", "nope") == 1
    assert r.unlink("k3") == 1
    assert r.randomkey() == b"other"
    assert r.object("encoding", "other") == b"embstr"
    r.set("int", 12345)
    assert r.object("encoding", "int") == b"int"
    assert r.dbsize() == 2
    with pytest.raises(redis.ResponseError, match="^no such key$"):
        r.rename("nope", "x")


def test_expiry(rp: redis.Redis) -> None:
    rp.set("k", "v")
    assert rp.ttl("k") == -1
    assert rp.expire("k", 100) is True
    assert 99 <= rp.ttl("k") <= 100
    assert 99_000 <= rp.pttl("k") <= 100_000
    assert rp.expire("k", 50, gt=True) is False
    assert rp.expire("k", 50, lt=True) is True
    assert abs(rp.expiretime("k") - (time.time() + 50)) < 3
    assert rp.persist("k") is True
    assert rp.ttl("k") == -1
    assert rp.ttl("missing") == -2
    assert rp.set("short", "v", px=100) is True
    assert rp.getex("k", ex=1000) == b"v" and rp.ttl("k") > 900
    assert rp.getex("k", persist=True) == b"v" and rp.ttl("k") == -1
    wait_until(lambda: rp.get("short") is None, timeout_s=5)  # lazy expiry on access
    assert rp.expireat("k", int(time.time()) - 1) is True  # in the past: deleted at once
    assert rp.exists("k") == 0


def test_active_expiry_reclaims_untouched_keys(r: redis.Redis) -> None:
    # Redis docs (EXPIRE, "How Redis expires keys"): keys nobody reads are reclaimed by the
    # active expire cycle. DBSIZE does not touch keys, so only that cycle can empty the db.
    with r.pipeline(transaction=False) as p:
        for i in range(200):
            p.set(f"volatile:{i}", "x", px=50)
        p.execute()
    wait_until(lambda: r.dbsize() == 0, timeout_s=5, interval_s=0.05)


# -- hashes --------------------------------------------------------------------------------


def test_hashes(rp: redis.Redis) -> None:
    assert rp.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert rp.hset("h", "a", "one") == 0
    assert rp.hsetnx("h", "a", "x") == 0
    assert rp.hsetnx("h", "c", "3") == 1
    assert rp.hget("h", "a") == b"one"
    assert rp.hget("h", "zz") is None
    assert rp.hmget("h", ["a", "zz", "c"]) == [b"one", None, b"3"]
    assert rp.hgetall("h") == {b"a": b"one", b"b": b"2", b"c": b"3"}
    assert sorted(rp.hkeys("h")) == [b"a", b"b", b"c"]
    assert sorted(rp.hvals("h")) == [b"2", b"3", b"one"]
    assert rp.hlen("h") == 3
    assert rp.hexists("h", "b") is True
    assert rp.hstrlen("h", "a") == 3
    assert rp.hincrby("h", "b", 40) == 42
    assert rp.hincrbyfloat("h", "b", 0.5) == 42.5
    assert rp.hdel("h", "a", "zz") == 1
    assert rp.hgetall("missing") == {}
    with pytest.raises(redis.ResponseError, match="^hash value is not an integer$"):
        rp.hincrby("h", "b", 1)
    assert rp.hdel("h", "b", "c") == 2
    assert rp.exists("h") == 0  # the last field deleted removes the key
    rp.set("s", "v")
    with pytest.raises(redis.ResponseError, match="^WRONGTYPE"):
        rp.hget("s", "f")


def test_big_hash_converts_and_scans(r: redis.Redis) -> None:
    fields = {f"f{i}": str(i) for i in range(1000)}
    r.hset("big", mapping=fields)
    assert r.object("encoding", "big") == b"hashtable"
    assert r.hlen("big") == 1000
    seen = dict(r.hscan_iter("big", count=50))
    assert len(seen) == 1000 and seen[b"f999"] == b"999"


# -- transactions and pipelines -------------------------------------------------------------


def test_multi_exec(rp: redis.Redis) -> None:
    with rp.pipeline(transaction=True) as p:
        p.set("a", "1").incr("a").hset("h", "f", "v").get("a")
        assert p.execute() == [True, 2, 1, b"2"]
    with rp.pipeline(transaction=True) as p:
        p.set("s", "x").incr("s").get("s")
        result = p.execute(raise_on_error=False)
    assert result[0] is True and result[2] == b"x"
    assert isinstance(result[1], redis.ResponseError)  # a runtime error does not abort


def test_watch_aborts_on_modification_by_another_client(
    r: redis.Redis, shared: ServerProcess
) -> None:
    r.set("w", "1")
    with r.pipeline() as p, connect(shared) as other:
        p.watch("w")
        other.set("w", "2")
        p.multi()
        p.set("w", "3")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("w") == b"2"


def test_watch_aborts_on_expiry(r: redis.Redis) -> None:
    r.set("w", "1", px=500)
    with r.pipeline() as p:
        p.watch("w")
        assert r.pttl("w") > 0, "expired before WATCH: the machine is too slow for this test"
        wait_until(lambda: r.pttl("w") == -2, timeout_s=5)
        p.multi()
        p.set("other", "x")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.exists("other") == 0


def test_watch_aborts_on_flushall(r: redis.Redis, shared: ServerProcess) -> None:
    r.set("w", "1")
    with r.pipeline() as p, connect(shared) as other:
        p.watch("w")
        other.flushall()
        p.multi()
        p.set("other", "x")
        with pytest.raises(redis.WatchError):
            p.execute()


def test_watch_untouched_key_commits(r: redis.Redis, shared: ServerProcess) -> None:
    r.set("w", "1")
    with r.pipeline() as p, connect(shared) as other:
        p.watch("w")
        other.set("unrelated", "2")
        p.multi()
        p.set("w", "3")
        assert p.execute() == [True]


def test_execabort_after_queued_wrong_arity(shared: ServerProcess) -> None:
    with raw(shared.port) as s:
        s.sendall(b"DEL a\r\nMULTI\r\nSET a 1\r\nSET a\r\nEXEC\r\nEXISTS a\r\nEXEC\r\n")
        assert wait_for_bytes(
            s,
            b":0\r\n+OK\r\n+QUEUED\r\n"
            b"-ERR wrong number of arguments for 'set' command\r\n"
            b"-EXECABORT Transaction discarded because of previous errors.\r\n"
            b":0\r\n"
            b"-ERR EXEC without MULTI\r\n",
        )


def test_pipeline_of_1000_commands(rp: redis.Redis) -> None:
    with rp.pipeline(transaction=False) as p:
        for i in range(500):
            p.set(f"p:{i}", i)
            p.incr(f"p:{i}")
        replies = p.execute()
    assert replies == [x for i in range(500) for x in (True, i + 1)]
    assert rp.dbsize() == 500


# -- authentication, HELLO, clients ----------------------------------------------------------


def test_requirepass(start: Start) -> None:
    srv = start("--requirepass", "s3cret")
    with raw(srv.port) as s:
        s.sendall(b"GET k\r\n")
        assert s.recv(100) == b"-NOAUTH Authentication required.\r\n"
        s.sendall(b"AUTH wrong\r\n")
        assert s.recv(200).startswith(b"-WRONGPASS invalid username-password pair")
        s.sendall(b"AUTH s3cret\r\nPING\r\n")
        assert wait_for_bytes(s, b"+OK\r\n+PONG\r\n")
    with connect(srv, password="s3cret") as ok:
        assert ok.ping() is True
    with connect(srv, protocol=3, password="s3cret") as ok3:
        assert ok3.ping() is True
    with (
        connect(srv, password="nope", retry=no_retry()) as bad,
        pytest.raises(redis.AuthenticationError),
    ):
        bad.ping()


def wait_for_bytes(sock: socket.socket, expected: bytes) -> bool:
    got = b""
    while len(got) < len(expected):
        chunk = sock.recv(len(expected) - len(got))
        if not chunk:
            break
        got += chunk
    return got == expected


def test_hello_3_with_auth_and_setname(start: Start) -> None:
    srv = start("--requirepass", "s3cret")
    with connect(srv, protocol=3, password="s3cret") as c:
        hello = c.execute_command("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "e2e-name")
        assert isinstance(hello, dict)
        assert hello[b"proto"] == 3
        assert {b"server", b"version", b"id", b"mode", b"role", b"modules"} <= set(hello)
        assert hello[b"mode"] == b"standalone" and hello[b"role"] == b"master"
        assert c.client_getname() == b"e2e-name"
        assert c.client_id() == hello[b"id"]
    with raw(srv.port) as s:
        s.sendall(b"HELLO 3\r\n")
        assert s.recv(300).startswith(b"-NOAUTH HELLO must be called with the client already")
        s.sendall(b"HELLO 3 AUTH default wrong\r\n")
        assert s.recv(300).startswith(b"-WRONGPASS")
        s.sendall(b"HELLO 4\r\n")
        assert s.recv(300) == b"-NOPROTO unsupported protocol version\r\n"


def test_client_list_and_kill(shared: ServerProcess) -> None:
    no_retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
    with (
        connect(shared, single_connection_client=True) as admin,
        connect(
            shared, single_connection_client=True, client_name="victim", retry=no_retry
        ) as victim,
    ):
        victim_id = victim.client_id()
        listed = {c["name"]: c for c in admin.client_list()}
        assert "victim" in listed and int(listed["victim"]["id"]) == victim_id
        assert listed["victim"]["db"] == "0"
        assert admin.client_kill_filter(_id=str(victim_id)) == 1
        wait_until(lambda: "victim" not in {c["name"] for c in admin.client_list()}, 5)
        with pytest.raises(redis.ConnectionError):
            victim.get("k")


def test_client_pause_write_blocks_writes_not_reads(r: redis.Redis, shared: ServerProcess) -> None:
    r.set("k", "before")
    done: dict[str, object] = {}
    sending = threading.Event()

    def writer() -> None:
        with connect(shared) as w:
            w.ping()
            sending.set()
            done["reply"] = w.set("k", "after")

    with connect(shared) as admin, connect(shared) as reader:
        assert admin.client_pause(10_000, all=False) is True  # CLIENT PAUSE 10000 WRITE
        thread = threading.Thread(target=writer, daemon=True)
        try:
            thread.start()
            assert sending.wait(CLIENT_TIMEOUT_S)
            assert reader.get("k") == b"before"  # reads go through
            thread.join(timeout=0.5)  # give the SET time to (wrongly) run
            assert thread.is_alive(), "SET ran during CLIENT PAUSE WRITE"
            assert reader.get("k") == b"before"
        finally:
            admin.client_unpause()
        thread.join(timeout=CLIENT_TIMEOUT_S)
        assert not thread.is_alive() and done["reply"] is True
        assert reader.get("k") == b"after"


# -- databases, SCAN, large values -------------------------------------------------------------


def test_select_swapdb_move_copy(r: redis.Redis, shared: ServerProcess) -> None:
    with connect(shared, db=1, single_connection_client=True) as db1:
        r.set("k", "in0")
        db1.set("k", "in1")
        assert r.swapdb(0, 1) is True
        assert r.get("k") == b"in1" and db1.get("k") == b"in0"
        assert r.move("k", 2) is True
        assert r.exists("k") == 0
        assert db1.copy("k", "k2", destination_db="2") is True
        with connect(shared, db=2, single_connection_client=True) as db2:
            assert sorted(db2.keys()) == [b"k", b"k2"]
            assert db2.get("k2") == b"in0"
        assert db1.copy("k", "k", destination_db="2") is False  # exists there, no REPLACE
        assert db1.copy("k", "k", destination_db="2", replace=True) is True
        assert r.execute_command("SELECT", "2")
        assert r.get("k") == b"in0"
        with pytest.raises(redis.ResponseError, match="^DB index is out of range$"):
            r.execute_command("SELECT", "16")


SCAN_KEYS = 20_000
SCAN_CALLS_MAX = 100_000


def test_scan_returns_every_key_present_throughout(r: redis.Redis, shared: ServerProcess) -> None:
    # SCAN guarantee (Redis SCAN docs): an element present for the whole iteration is returned.
    keep = {b"keep:%d" % i for i in range(SCAN_KEYS)}
    with r.pipeline(transaction=False) as p:
        batch = sorted(keep)
        for i in range(0, len(batch), 1000):
            p.mset({k: b"v" for k in batch[i : i + 1000]})
        p.execute()
    seen: set[bytes] = set()
    cursor, calls, churn = 0, 0, 0
    deadline = time.monotonic() + 60
    with connect(shared, single_connection_client=True) as other:
        while True:
            cursor, keys = r.scan(cursor, count=100)
            seen.update(keys)
            calls += 1
            # Another client deletes and adds OTHER keys between SCAN calls (rehashing).
            with other.pipeline(transaction=False) as p:
                for _ in range(20):
                    p.set(b"churn:%d" % churn, b"x")
                    p.delete(b"churn:%d" % (churn - 10))
                    churn += 1
                p.execute()
            if cursor == 0:
                break
            assert calls < SCAN_CALLS_MAX and time.monotonic() < deadline
    missing = keep - seen
    assert not missing, f"{len(missing)} keys never returned, e.g. {sorted(missing)[:5]}"


def test_large_values(rp: redis.Redis) -> None:
    big = os.urandom(10 * 1024 * 1024)
    assert rp.set("big", big) is True
    assert rp.strlen("big") == len(big)
    assert rp.get("big") == big
    assert rp.getrange("big", 5_000_000, 5_000_009) == big[5_000_000:5_000_010]
    assert rp.append("big", b"!") == len(big) + 1


# -- protocol errors and limits ----------------------------------------------------------------


def test_protocol_error_closes_only_that_client(shared: ServerProcess) -> None:
    with raw(shared.port) as bad, connect(shared) as good:
        bad.sendall(b"*abc\r\n")
        reply = recv_until_closed(bad)
        assert reply == b"-ERR Protocol error: invalid multibulk length\r\n"
        assert good.ping() is True
    for frame, error in (
        (b"*1\r\n$abc\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n"),
        (b'SET "a b\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    ):
        with raw(shared.port) as bad:
            bad.sendall(frame)
            assert recv_until_closed(bad) == error


def test_inline_commands(shared: ServerProcess) -> None:
    with raw(shared.port) as s:
        s.sendall(b"PING\r\nSET inline \"a b\"\r\nGET inline\r\nECHO 'x'\r\n")
        assert wait_for_bytes(s, b"+PONG\r\n+OK\r\n$3\r\na b\r\n$1\r\nx\r\n")


def test_query_buffer_limit_closes_that_client_only(start: Start) -> None:
    srv = start("--client-query-buffer-limit", "1mb")
    with raw(srv.port) as big, connect(srv) as good:
        big.sendall(b"*2\r\n$3\r\nSET\r\n$3145728\r\n")
        chunk = b"x" * 65536
        try:
            for _ in range(32):  # 2 MB of a 3 MB argument: never a complete request
                big.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending
        wait_until(lambda: is_closed(big), timeout_s=5)
        assert good.ping() is True
        assert good.dbsize() == 0


def test_maxclients(start: Start) -> None:
    srv = start("--maxclients", "5")
    conns: list[socket.socket] = []

    def one_more() -> bool:
        # Retried: the start-up probe's connection may not be reaped yet.
        s = raw(srv.port)
        s.sendall(b"PING\r\n")
        if recv_exactly(s, 7) == b"+PONG\r\n":
            conns.append(s)
            return True
        s.close()
        return False

    try:
        for _ in range(5):
            wait_until(one_more, timeout_s=5)
        with raw(srv.port) as sixth:
            assert recv_until_closed(sixth) == b"-ERR max number of clients reached\r\n"
        conns.pop().close()
        wait_until(one_more, timeout_s=5)
    finally:
        for s in conns:
            s.close()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        try:
            chunk = sock.recv(n - len(got))
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    return got


def test_idle_client_timeout(start: Start) -> None:
    srv = start("--timeout", "1")
    with raw(srv.port) as idle:
        idle.sendall(b"PING\r\n")
        assert idle.recv(64) == b"+PONG\r\n"
        wait_until(lambda: is_closed(idle), timeout_s=10, interval_s=0.1)


# -- process lifecycle -----------------------------------------------------------------------


def test_shutdown_command(start: Start) -> None:
    srv = start()
    with connect(srv, retry=no_retry()) as c:
        c.set("k", "v")
        try:
            c.shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server went away before replying, as it should
    srv.proc.wait(timeout=10)
    assert srv.proc.returncode == 0
    with pytest.raises(OSError):
        raw(srv.port).close()


def test_sigterm_exit_code_and_log(start: Start) -> None:
    srv = start()
    with connect(srv) as c:
        assert c.ping() is True
    assert srv.stop(signal.SIGTERM) == 0
    log = srv.log_path.read_text(errors="replace")
    if TARGET == "redis":
        return
    assert "Ready to accept connections tcp" in log
    assert " PID: " in log
    assert "Server initialized" in log
    assert "Received SIGTERM scheduling shutdown" in log
