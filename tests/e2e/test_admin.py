"""End to end: server administration and introspection commands through redis-py and raw
sockets: INFO, CONFIG, DEBUG, SLOWLOG, FLUSHDB/FLUSHALL, DBSIZE, TIME, MONITOR, CLIENT,
COMMAND. Shapes and error texts follow Redis 7.2.

Check the tests themselves against redis-server:
    ACKDB_E2E_TARGET=redis python -m pytest tests/e2e/test_admin.py
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest
import redis

from conftest import REDIS_SERVER, ServerProcess, ackdb_argv, free_port, redis_argv, wait_until

pytestmark = pytest.mark.e2e

TARGET = os.environ.get("ACKDB_E2E_TARGET", "ackdb")
CLIENT_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    if TARGET == "redis":
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed")
        argv = redis_argv(port)
    else:
        argv = ackdb_argv(port, "--enable-debug-command", "yes")
    server = ServerProcess(argv, port, tmp_path_factory.mktemp("admin"), TARGET)
    yield server
    server.stop()


def connect(srv: ServerProcess, protocol: int = 2, **kw: object) -> redis.Redis:
    return redis.Redis(
        port=srv.port,
        protocol=protocol,
        socket_timeout=CLIENT_TIMEOUT_S,
        single_connection_client=True,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def r(srv: ServerProcess) -> Iterator[redis.Redis]:
    with connect(srv) as client:
        client.flushall()
        client.config_set("slowlog-log-slower-than", 10000)
        yield client


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def rp(request: pytest.FixtureRequest, srv: ServerProcess) -> Iterator[redis.Redis]:
    with connect(srv, protocol=request.param) as client:
        client.flushall()
        yield client


def raw_call(srv: ServerProcess, payload: bytes) -> bytes:
    """Send ``payload`` + PING; everything the server replied before the PONG."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(payload + b"PING\r\n")
        out = b""
        while not out.endswith(b"+PONG\r\n") and len(out) < 1 << 20:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def uncooked(client: redis.Redis, *args: object) -> object:
    """A reply as the parser gives it, without redis-py's per-command callbacks."""
    conn = client.connection
    assert conn is not None
    conn.send_command(*args)
    return conn.read_response()


def text(x: object) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


# -- INFO -------------------------------------------------------------------------------------


def test_info_sections_and_keyspace(rp: redis.Redis, srv: ServerProcess) -> None:
    rp.set("a", "1")
    rp.set("b", "2", ex=100)
    info = rp.info()
    for field in ("redis_version", "tcp_port", "connected_clients", "used_memory",
                  "total_commands_processed", "role", "uptime_in_seconds"):  # fmt: skip
        assert field in info, field
    assert info["tcp_port"] == srv.port
    assert info["role"] == "master"
    assert info["db0"]["keys"] == 2 and info["db0"]["expires"] == 1
    assert set(rp.info("server")) >= {"redis_version", "process_id", "run_id"}
    assert "connected_clients" in rp.info("clients")
    assert "db0" in rp.info("keyspace") and "redis_version" not in rp.info("keyspace")
    stats = rp.info("commandstats")
    assert stats["cmdstat_set"]["calls"] >= 2
    everything = rp.info("everything")
    assert "cmdstat_set" in everything and "db0" in everything


def test_info_is_text_and_verbatim_in_resp3(srv: ServerProcess) -> None:
    # RESP2: a bulk string; RESP3: a verbatim string of format "txt".
    reply = raw_call(srv, b"INFO server\r\n")
    assert reply.startswith(b"$") and b"\r\n# Server\r\n" in reply
    reply = raw_call(srv, b"HELLO 3\r\nINFO server\r\n")
    assert b"\r\n=" in reply and b"\r\ntxt:# Server\r\n" in reply


# -- CONFIG -----------------------------------------------------------------------------------


def test_config_get_set_and_errors(r: redis.Redis) -> None:
    assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert r.config_set("maxmemory-policy", "allkeys-lru") is True
    assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
    got = r.config_get("maxmemory*")
    assert {"maxmemory", "maxmemory-policy", "maxmemory-samples"} <= set(got)
    assert uncooked(r, "CONFIG", "SET", "hz", "20", "timeout", "0") == b"OK"
    assert r.config_get("hz") == {"hz": "20"}
    with pytest.raises(redis.ResponseError) as e:
        r.config_set("maxmemory-policy", "bogus")
    assert str(e.value).startswith(
        "CONFIG SET failed (possibly related to argument 'maxmemory-policy')"
    )
    with pytest.raises(redis.ResponseError) as e:
        r.config_set("no-such-parameter", "1")
    assert str(e.value).startswith("Unknown option or number of arguments for CONFIG SET")
    assert r.config_get("no-such-parameter") == {}
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("hz", "10")


def test_config_resetstat(r: redis.Redis) -> None:
    for _ in range(5):
        r.ping()
    assert r.config_resetstat() is True
    assert r.info("stats")["total_commands_processed"] <= 2
    assert "cmdstat_ping" not in r.info("commandstats")


# -- DEBUG, FLUSH*, DBSIZE, TIME ----------------------------------------------------------------


def test_debug(r: redis.Redis) -> None:
    assert r.execute_command("DEBUG", "DIGEST") == b"0" * 40
    r.set("k", "v")
    digest = r.execute_command("DEBUG", "DIGEST")
    assert len(digest) == 40 and digest != b"0" * 40
    assert r.execute_command("DEBUG", "DIGEST-VALUE", "k", "missing")[1] == b"0" * 40
    assert r.execute_command("DEBUG", "SLEEP", "0") is not None
    with pytest.raises(redis.ResponseError):
        r.execute_command("DEBUG", "NO-SUCH-SUBCOMMAND")


def test_flush_and_dbsize(r: redis.Redis, srv: ServerProcess) -> None:
    with connect(srv, db=1) as db1:
        r.mset({"a": "1", "b": "2"})
        db1.set("c", "3")
        assert r.dbsize() == 2 and db1.dbsize() == 1
        assert r.flushdb() is True
        assert r.dbsize() == 0 and db1.dbsize() == 1
        r.set("a", "1")
        assert r.flushall(asynchronous=True) is True
        assert r.dbsize() == 0 and db1.dbsize() == 0
        assert r.execute_command("FLUSHDB", "SYNC")
        with pytest.raises(redis.ResponseError, match="^syntax error$"):
            r.execute_command("FLUSHALL", "LATER")


def test_time(r: redis.Redis) -> None:
    seconds, micros = r.time()
    assert abs(seconds + micros / 1e6 - time.time()) < 5
    assert 0 <= micros < 1_000_000


# -- SLOWLOG, MONITOR -------------------------------------------------------------------------


def test_slowlog(r: redis.Redis) -> None:
    r.slowlog_reset()
    r.config_set("slowlog-log-slower-than", 0)  # log everything
    try:
        r.set("slow-key", "slow-value")
        entries = r.slowlog_get(10)
        assert r.slowlog_len() >= 1
        commands = [e["command"] for e in entries]
        assert b"SET slow-key slow-value" in commands or b"set slow-key slow-value" in commands
        entry = entries[commands.index(next(c for c in commands if c.lower().startswith(b"set")))]
        assert entry["duration"] >= 0 and entry["start_time"] > 0
        assert r.slowlog_reset() is True
    finally:
        r.config_set("slowlog-log-slower-than", 10000)
    assert r.slowlog_len() <= 1  # only the CONFIG SET that restored the threshold


def test_monitor_sees_other_clients(r: redis.Redis, srv: ServerProcess) -> None:
    with r.monitor() as m, connect(srv, db=3) as other:
        other.set("watched-key", "v")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            event = m.next_command()
            if event["command"].lower().startswith("set watched-key"):
                assert event["db"] == 3
                break
        else:
            pytest.fail("MONITOR did not report the SET")


# -- CLIENT -----------------------------------------------------------------------------------


def test_client_identity(r: redis.Redis) -> None:
    assert r.client_setname("admin-test") is True
    assert text(r.client_getname()) == "admin-test"
    info = r.client_info()
    assert info["name"] == "admin-test" and int(info["id"]) == r.client_id()
    with pytest.raises(redis.ResponseError, match="Client names cannot contain spaces"):
        r.client_setname("bad name")
    listed = r.client_list(_type="normal")
    assert any(c["name"] == "admin-test" for c in listed)
    with pytest.raises(redis.ResponseError):
        r.execute_command("CLIENT", "NO-SUCH-SUBCOMMAND")


def test_client_kill_by_addr_and_skipme(r: redis.Redis, srv: ServerProcess) -> None:
    no_retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
    with (
        connect(srv, client_name="a", retry=no_retry) as a,
        connect(srv, client_name="b", retry=no_retry) as b,
    ):
        a.ping()
        b.ping()
        addr = next(c["addr"] for c in r.client_list() if c["name"] == "a")
        assert r.client_kill(addr) is True
        wait_until(lambda: all(c["name"] != "a" for c in r.client_list()), 5)
        with pytest.raises(redis.ConnectionError):
            a.ping()
        # skipme: the caller survives, everyone else of type normal goes
        assert r.client_kill_filter(_type="normal", skipme=True) >= 1
        assert r.ping() is True
        with pytest.raises(redis.ConnectionError):
            b.ping()


def test_client_kill_unknown_id(r: redis.Redis) -> None:
    assert r.client_kill_filter(_id="999999") == 0
    with pytest.raises(redis.ResponseError, match="^No such client$"):
        r.client_kill("1.2.3.4:5")


# -- COMMAND ----------------------------------------------------------------------------------


def test_command_introspection(r: redis.Redis) -> None:
    everything = r.command()  # parsed by redis-py into {name: info}
    assert r.command_count() == len(everything) > 50
    assert "set" in everything and everything["set"]["arity"] == -3
    get = uncooked(r, "COMMAND", "INFO", "get")[0]  # type: ignore[index]
    assert get[0] == b"get" and get[1] == 2
    assert b"readonly" in get[2] and b"fast" in get[2]
    assert get[3:6] == [1, 1, 1]
    assert uncooked(r, "COMMAND", "INFO", "no-such-command") == [None]
    assert uncooked(r, "COMMAND", "GETKEYS", "SET", "a", "b") == [b"a"]
    assert uncooked(r, "COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == [b"a", b"b"]
    with pytest.raises(redis.ResponseError, match="Invalid command specified"):
        uncooked(r, "COMMAND", "GETKEYS", "NO-SUCH-COMMAND", "x")
    names = [text(n) for n in r.command_list()]
    assert "get" in names and "client|list" in names  # subcommands are listed too
    docs = uncooked(r, "COMMAND", "DOCS", "get")
    assert isinstance(docs, list) and docs[0] == b"get"


def test_command_docs_resp3_is_a_map(srv: ServerProcess) -> None:
    with connect(srv, protocol=3) as c:
        docs = uncooked(c, "COMMAND", "DOCS", "get")
        assert isinstance(docs, dict)
        entry = docs[b"get"]
        assert entry[b"summary"] and entry[b"since"] == b"1.0.0" and entry[b"group"] == b"string"
