"""End to end: a leaderless database of three ``ackdb server`` replicas (appendfsync
always) behind two ``ackdb coordinator`` processes started from topology files, driven
with redis-py (RESP2 and RESP3), raw sockets and redis-cli.

Checked: every level and its overrides (database default, CONSISTENCY, AT); the data
commands (SET's options, MSET/MGET, DEL/EXISTS, hashes, the EXPIRE family, SCAN/KEYS/
DBSIZE); a write through one coordinator read through the other; a SIGKILLed replica
(ALL fails saying how many applied, QUORUM succeeds, the hint is replayed when it
returns); blocking read repair and its receipt; session tokens at ONE; receipts (RESP3
attributes, RECEIPT); REQID; the schema's refusals and the TRYAGAIN wait for a replica
that lacks the schema version; internal AUTH; refused and unknown commands.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from coordinator_support import LLDb

from ackdb.cluster.schema import Collection, encode_schema, parse_properties
from ackdb.keyspace import lww
from ackdb.keyspace.lww import Version
from ackdb.leaderless.session import Token
from conftest import no_retry, wait_until

pytestmark = pytest.mark.e2e
REDIS_CLI = shutil.which("redis-cli")


@pytest.fixture
def lldb(tmp_path: Path) -> Iterator[LLDb]:
    db = LLDb(tmp_path)
    try:
        db.start_coordinator("n1")
        db.start_coordinator("n2")
        yield db
    finally:
        db.stop()


def _client(db: LLDb, node: str = "n1", **kw: Any) -> redis.Redis:
    kw.setdefault("protocol", 2)
    return redis.Redis(port=db.coord_ports[node], socket_timeout=15, **kw)


def _info(r: redis.Redis) -> dict[str, Any]:
    return r.info("leaderless")  # type: ignore[no-any-return]


def _record(db: LLDb, i: int, key: bytes) -> lww.Record | None:
    raw = db.replica(i).execute_command("LL.GET", key)
    return None if raw is None else lww.decode(raw)


def test_data_commands_levels_and_two_coordinators(lldb: LLDb) -> None:
    r = _client(lldb)
    r2 = _client(lldb, "n2")
    assert r.set("a", "1") is True
    assert r2.get("a") == b"1"  # written through n1, read through n2
    assert r.execute_command("CONSISTENCY") == [b"read", b"QUORUM", b"write", b"QUORUM"]
    for level in ("ONE", "QUORUM", "ALL"):
        assert r.execute_command("CONSISTENCY", "READ", level, "WRITE", level) == b"OK"
        assert r.set(f"k{level}", level) is True
        assert r.get(f"k{level}") == level.encode()
        assert r.execute_command("AT", level, "GET", "a") == b"1"
    r.execute_command("CONSISTENCY", "RESET")
    assert r.execute_command("CONSISTENCY") == [b"read", b"QUORUM", b"write", b"QUORUM"]
    # SET's options: NX / XX / GET / EX / KEEPTTL.
    assert r.set("a", "2", nx=True) is None and r.get("a") == b"1"
    assert r.set("new", "x", xx=True) is None and r.get("new") is None
    assert r.set("a", "3", get=True) == b"1"
    assert r.set("t", "v", ex=100) is True and 99 <= r.ttl("t") <= 100
    assert r.set("t", "w", keepttl=True) is True and r.ttl("t") > 0
    assert r.set("t", "z") is True and r.ttl("t") == -1
    assert r.mset({"m1": "a", "m2": "b"}) is True
    assert r.mget("m1", "m2", "none") == [b"a", b"b", None]
    assert r.exists("m1", "m2", "none", "m1") == 3
    assert r.delete("m1", "none") == 1 and r.get("m1") is None and r.exists("m1") == 0
    # Hashes: last-write-wins per field.
    assert r.hset("h", mapping={"f": "1", "g": "2"}) == 2
    assert r.hset("h", mapping={"f": "9", "x": "3"}) == 1
    assert r2.hgetall("h") == {b"f": b"9", b"g": b"2", b"x": b"3"}
    assert r.hget("h", "g") == b"2" and r.hmget("h", "f", "no") == [b"9", None]
    assert r.hdel("h", "g", "no") == 1 and r.hlen("h") == 2 and r.hexists("h", "g") is False
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.hget("a", "f")
    # The EXPIRE family.
    assert r.expire("a", 50) is True and 49 <= r.ttl("a") <= 50
    assert 48_000 <= r.pttl("a") <= 50_000
    assert r.expiretime("a") > time.time() and r.persist("a") is True and r.ttl("a") == -1
    assert r.expire("none", 5) is False and r.ttl("none") == -2
    assert r.pexpire("a", 1) is True
    wait_until(lambda: r.get("a") is None, 5)
    assert r.exists("a") == 0 and r.set("a", "back") is True and r.ttl("a") == -1
    # SCAN / KEYS / DBSIZE at the read level; tombstones and expired keys hidden.
    live = {b"a", b"kONE", b"kQUORUM", b"kALL", b"t", b"m2", b"h"}
    assert set(r.keys("*")) == live and r.dbsize() == len(live)
    assert set(r.scan_iter(count=7)) == live
    assert set(r.scan_iter(match="k*")) == {b"kONE", b"kQUORUM", b"kALL"}
    assert set(r.scan_iter(_type="hash")) == {b"h"}
    # Refused and unknown commands.
    with pytest.raises(redis.ResponseError, match="not supported on a leaderless database"):
        r.incr("n")
    with pytest.raises(redis.ResponseError, match="not supported on a leaderless database"):
        r.hincrby("h", "f", 1)
    with pytest.raises(redis.ResponseError, match="unknown command 'LPUSH' on a leaderless"):
        r.lpush("l", "x")
    # The process runs anti-entropy: CONVERGE answers for a key and for the database.
    assert r.execute_command("CONVERGE", "KEY", "a", "TIMEOUT", "10000") == b"OK"
    assert r.execute_command("CONVERGE", "TIMEOUT", "10000") == b"OK"
    # RESP3 through redis-py.
    r3 = _client(lldb, protocol=3)
    assert r3.hgetall("h") == {b"f": b"9", b"x": b"3"} and r3.get("none") is None
    info = _info(r)
    assert info["ll_replication_factor"] == 3 and info["ll_write_consistency"] == "QUORUM"
    for name in ("ll_hints_pending", "ll_hints_bytes", "ll_hints_dropped", "ll_repairs"):
        assert name in info


def test_a_killed_replica_hints_and_replay(lldb: LLDb) -> None:
    r = _client(lldb)
    assert r.set("k", "one") is True
    lldb.kill_replica(2)
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("AT", "ALL", "SET", "k", "two")
    text = str(e.value)
    assert "LEVEL write at ALL reached 2 of 3 replicas, 3 required" in text
    assert "not rolled back" in text
    assert r.execute_command("AT", "QUORUM", "SET", "k", "three") == b"OK"
    assert r.hset("h", "f", "1") == 1
    assert _info(r)["ll_hints_pending"] >= 2
    assert r.get("k") == b"three"
    lldb.start_replica(2)
    wait_until(lambda: _info(r)["ll_hints_pending"] == 0, 15)
    assert _info(r)["ll_hints_replayed"] >= 2
    rec = _record(lldb, 2, b"k")
    assert rec is not None and rec.view() == ("string", b"three")
    assert r.execute_command("AT", "ALL", "GET", "k") == b"three"


def test_blocking_repair_and_receipts(lldb: LLDb) -> None:
    r = _client(lldb)
    assert r.set("k", "old") is True
    # Replica 0 (n1) gets a newer write the others miss; a QUORUM read asks n1 in full
    # and n2's digest, so n2 is repaired before the reply.
    v = Version(int(time.time() * 1000) + 50, 0, 9)
    lldb.replica(0).execute_command("LL.APPLY", "k", lww.encode(lww.string_write(v, b"new")))
    # A fresh connection: ``r`` holds its write's token, whose replicas it would ask first
    # (whichever two acknowledged first).
    r = _client(lldb)
    assert r.get("k") == b"new"
    receipt = r.execute_command("RECEIPT")
    fields = dict(zip(receipt[::2], receipt[1::2], strict=True))
    assert fields[b"repaired"] == [b"n2"] and fields[b"version"] == v.to_bytes()
    assert fields[b"level"] == b"QUORUM" and set(fields[b"replicas"]) == {b"n1", b"n2"}
    assert _info(r)["ll_repairs"] >= 1
    rec = _record(lldb, 1, b"k")
    assert rec is not None and rec.view() == ("string", b"new")
    # RESP3 attributes with RECEIPTS ON (raw: redis-py hands attributes back as a reply).
    port = lldb.coord_ports["n1"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"HELLO 3\r\nRECEIPTS ON\r\nGET k\r\nPING\r\n")
        data = b""
        while not data.endswith(b"+PONG\r\n"):
            data += s.recv(65536)
    body = data[data.index(b"+OK\r\n") + 5 :]
    assert body.startswith(b"|4\r\n$8\r\nreplicas\r\n")
    assert b"$5\r\nlevel\r\n$6\r\nQUORUM\r\n$3\r\nnew\r\n+PONG\r\n" in body
    r3 = _client(lldb, protocol=3)
    assert r3.get("k") == b"new"
    assert r3.execute_command("RECEIPT")[b"level"] == b"QUORUM"
    # A version an hour ahead of the coordinator's clock is refused (its node flagged):
    # the read counts that replica as failed and asks the spare.
    future = Version(int(time.time() * 1000) + 3_600_000, 0, 77)
    lldb.replica(0).execute_command("LL.APPLY", "k", lww.encode(lww.string_write(future, b"f")))
    assert r.get("k") == b"new"
    info = _info(r)
    assert info["ll_skew_refused"] >= 1 and "77" in str(info["ll_skew_flagged_nodes"])


def test_session_tokens_at_one(lldb: LLDb) -> None:
    r = _client(lldb)
    r.execute_command("CONSISTENCY", "READ", "ONE", "WRITE", "ALL")
    assert r.set("k", "v1") is True
    token = r.execute_command("TOKEN")
    t = Token.parse(token)
    assert t.key == b"k" and set(t.replicas) == {"n1", "n2", "n3"}
    # A write only n3 holds (as if acknowledged at ONE by n3): a ONE read asks n1 first
    # and misses it; with the token naming n3, it sees it.
    v = Version(int(time.time() * 1000) + 50, 0, 9)
    lldb.replica(2).execute_command("LL.APPLY", "k", lww.encode(lww.string_write(v, b"v2")))
    other = _client(lldb, "n2")
    assert other.execute_command("AT", "ONE", "GET", "k") == b"v1"
    forged = Token(b"k", v, "k", (), ("n3",)).text()
    assert other.execute_command("AFTER", forged, "AT", "ONE", "GET", "k") == b"v2"
    # A connection reads its own writes at ONE: its write was acknowledged by n3 only.
    lldb.kill_replica(0)
    lldb.kill_replica(1)
    me = _client(lldb)
    with pytest.raises(redis.ResponseError, match="reached 1 of 3"):
        me.execute_command("AT", "ALL", "SET", "mine", "x")  # stands on n3 only
    assert me.execute_command("AT", "ONE", "SET", "mine", "y") == b"OK"
    lldb.start_replica(0)
    lldb.start_replica(1)
    assert me.execute_command("AT", "ONE", "GET", "mine") == b"y"
    with pytest.raises(redis.ResponseError, match="AFTER takes a session token"):
        me.execute_command("AFTER", "junk", "GET", "k")


def test_reqid_applies_once(lldb: LLDb) -> None:
    r = _client(lldb)
    assert r.execute_command("REQID", "abc", "SET", "k", "1") == b"OK"
    v1 = r.execute_command("RECEIPT")
    assert r.set("k", "2") is True
    # The retry carries the first attempt's version: the newer write stays.
    assert r.execute_command("REQID", "abc", "SET", "k", "1") == b"OK"
    assert r.execute_command("RECEIPT")[3] == v1[3]
    assert r.get("k") == b"2"


def test_internal_auth_and_password(tmp_path: Path) -> None:
    import hashlib

    db = LLDb(tmp_path, password_sha256=hashlib.sha256(b"pw").hexdigest())
    try:
        db.start_coordinator("n1")
        r = _client(db, retry=no_retry())
        with pytest.raises(redis.AuthenticationError):
            r.get("k")
        assert _client(db, password="pw").set("k", "v") is True
        internal = _client(db, username="ackdb-internal", password=db.shard_password)
        assert "ll_hints_pending" in _info(internal)
        with pytest.raises(redis.AuthenticationError):
            _client(db, username="ackdb-internal", password="nope", retry=no_retry()).ping()
    finally:
        db.stop()


def test_schema_refusals_and_the_tryagain_wait(lldb: LLDb) -> None:
    colls = (Collection("Person", b"person:", parse_properties(["name:string", "age:int"])),)
    lldb.schema = (1, colls)
    lldb.publish()
    r = _client(lldb)
    wait_until(lambda: _client(lldb).info("leaderless")["ll_schema_version"] == 1, 10)
    with pytest.raises(redis.ResponseError, match="SCHEMA key belongs to collection 'Person'"):
        r.set("person:1", "x")
    with pytest.raises(redis.ResponseError, match="SCHEMA property 'age' of collection"):
        r.hset("person:1", "age", "old")
    with pytest.raises(redis.ResponseError, match="has no property"):
        r.hset("person:1", "nick", "x")
    # No replica holds schema version 1 yet: a valid write waits (TRYAGAIN, asked again)
    # until they get it.
    payload = encode_schema(1, colls)

    def push() -> None:
        time.sleep(0.4)
        for i in range(3):
            lldb.replica(i).execute_command("LL.SCHEMA", 1, payload)

    t = threading.Thread(target=push)
    t.start()
    assert r.hset("person:1", mapping={"name": "Ann", "age": "41"}) == 2
    t.join()
    assert _info(r)["ll_schema_retries"] > 0
    assert lldb.replica(0).execute_command("LL.SCHEMA") == 1
    assert r.hgetall("person:1") == {b"name": b"Ann", b"age": b"41"}
    # A replica refuses a record its schema refuses, even from a coordinator.
    bad = lww.fields_write(Version(1, 0, 1), {b"age": b"x"})
    with pytest.raises(redis.ResponseError, match="SCHEMA property 'age'"):
        lldb.replica(0).execute_command("LL.APPLY", "person:2", lww.encode(bad), "SCHEMA", 1)
    with pytest.raises(redis.ResponseError, match="LL schema version 2 is not applied here yet"):
        lldb.replica(0).execute_command("LL.APPLY", "person:2", lww.encode(bad), "SCHEMA", 2)


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli not on PATH")
def test_redis_cli(lldb: LLDb) -> None:
    assert REDIS_CLI is not None
    port = str(lldb.coord_ports["n1"])
    script = "SET a 1\nAT ALL GET a\nCONSISTENCY WRITE ONE\nMSET b 2 c 3\nMGET a b c\nDBSIZE\n"
    out = subprocess.run([REDIS_CLI, "-p", port], input=script.encode(), capture_output=True)
    assert out.stdout.decode().split() == ["OK", "1", "OK", "OK", "1", "2", "3", "3"]
    proto = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\nm%d\r\n$1\r\nv\r\n" % (len(b"m%d" % i), i) for i in range(300)
    )
    out = subprocess.run([REDIS_CLI, "-p", port, "--pipe"], input=proto, capture_output=True)
    assert b"errors: 0, replies: 300" in out.stdout
    out = subprocess.run(
        [REDIS_CLI, "-p", port, "--scan", "--pattern", "m1*"], capture_output=True, timeout=60
    )
    assert len(out.stdout.split()) == 111
    # redis-cli 7.0 (its hiredis) cannot parse RESP3 attributes: RECEIPT is its way.
    for proto in ("-2", "-3"):
        out = subprocess.run(
            [REDIS_CLI, proto, "-p", port],
            input=b"SET a 2\nRECEIPT\n",
            capture_output=True,
            timeout=30,
        )
        assert b"replicas" in out.stdout and b"QUORUM" in out.stdout


def test_topology_from_the_node_by_long_poll(tmp_path: Path) -> None:
    from proxy_support import FakeMeta

    db = LLDb(tmp_path)
    meta = FakeMeta()
    try:
        meta.publish(db.topology("n1"))
        db.start_coordinator("n1", meta=f"127.0.0.1:{meta.port}")
        r = _client(db)
        assert r.set("k", "v") is True and r.get("k") == b"v"
        db.levels = ("ONE", "ALL")
        db.version += 1
        meta.publish(db.topology("n1"))
        wait_until(lambda: _info(r)["ll_write_consistency"] == "ALL", 15)
        assert r.execute_command("CONSISTENCY") == [b"read", b"ONE", b"write", b"ALL"]
        assert r.set("k", "w") is True
        assert r.execute_command("RECEIPT")[-1] == b"ALL"
    finally:
        db.stop()
        meta.close()
