"""The user commands of a leaderless endpoint as sans-IO plans (leaderless/usercmds.py,
hashcmds.py, expirycmds.py, scancmds.py), driven against an in-memory record store; the
connection commands and prefixes (conncmds.py); session tokens (session.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ackdb.cluster.schema import Collection, parse_properties
from ackdb.keyspace import lww
from ackdb.keyspace.lww import Record, Version
from ackdb.leaderless.actions import Done, LevelError, Receipt
from ackdb.leaderless.conncmds import Access, DataCmd, ShellCmd, classify
from ackdb.leaderless.levels import Level
from ackdb.leaderless.ops import Ctx, Outcome, Read, ScanPage, Write
from ackdb.leaderless.scancmds import DEPTH
from ackdb.leaderless.session import Session, Token
from ackdb.leaderless.usercmds import run_plan_sync
from ackdb.resp import encoder as enc

NOW = 1_000_000


class Store:
    """One replica set that always answers: records per key, versions from a counter."""

    def __init__(self, fail_writes: bool = False) -> None:
        self.data: dict[bytes, Record] = {}
        self.clock = 0
        self.fail_writes = fail_writes
        self.ops: list[Any] = []

    def outcome(self, op: Read | Write | ScanPage) -> Outcome:
        self.ops.append(op)
        if isinstance(op, Read):
            return Outcome(Done(Receipt((0,), lww.ZERO), record=self.data.get(op.key)))
        if isinstance(op, Write):
            if self.fail_writes:
                err = LevelError("write", op.level, 2, 1, 3)
                return Outcome(Done(Receipt((0,), lww.ZERO), error=err))
            self.clock += 1
            rec = op.make(Version(NOW, self.clock, 1))
            self.data[op.key] = lww.merge(self.data.get(op.key, Record()), rec)
            return Outcome(Done(Receipt((0, 1), rec.newest())))
        items = {k: r for k, r in self.data.items() if op.lo <= lww.leaf_of(k, DEPTH) < op.hi}
        return Outcome(Done(Receipt((0,), lww.ZERO)), items)

    def run(self, *argv: bytes | str, p: Any = enc.RESP2, now: int = NOW, **kw: Any) -> bytes:
        args = [a if isinstance(a, bytes) else a.encode() for a in argv]
        ctx = Ctx(p, Level.QUORUM, Level.QUORUM, now, **kw)
        plan = run_plan_sync(ctx, args)
        if isinstance(plan, bytes):
            return plan
        try:
            ops = plan.send(None)  # type: ignore[arg-type]
            while True:
                ops = plan.send([self.outcome(op) for op in ops])
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def test_strings_and_set_options() -> None:
    s = Store()
    assert s.run("SET", "a", "1") == b"+OK\r\n"
    assert s.run("GET", "a") == b"$1\r\n1\r\n"
    assert s.run("SET", "a", "2", "NX") == b"$-1\r\n"
    assert s.run("SET", "b", "2", "XX") == b"$-1\r\n" and s.run("GET", "b") == b"$-1\r\n"
    assert s.run("SET", "a", "3", "GET") == b"$1\r\n1\r\n"
    assert s.run("SET", "a", "4", "NX", "GET") == b"$1\r\n3\r\n"
    assert s.run("SET", "a", "x", "EX", "0").startswith(b"-ERR invalid expire time")
    assert s.run("SET", "a", "x", "EX", "1", "KEEPTTL") == b"-ERR syntax error\r\n"
    assert (
        s.run("SET", "a", "x", "EX", "nope") == b"-ERR value is not an integer or out of range\r\n"
    )
    assert s.run("MSET", "a", "1", "b").startswith(b"-ERR wrong number of arguments")
    assert s.run("MSET", "a", "1", "b", "2") == b"+OK\r\n"
    assert s.run("MGET", "a", "b", "c") == b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"
    assert s.run("MGET", "a", "c", p=enc.RESP3) == b"*2\r\n$1\r\n1\r\n_\r\n"
    assert s.run("EXISTS", "a", "b", "c", "a") == b":3\r\n"
    assert s.run("DEL", "a", "c", "a") == b":1\r\n"
    assert s.data[b"c"].view()[0] == "deleted"  # a tombstone for every key named
    assert s.run("TYPE", "b") == b"+string\r\n" and s.run("TYPE", "a") == b"+none\r\n"


def test_errors_levels_and_refusals() -> None:
    s = Store(fail_writes=True)
    assert s.run("SET", "a", "1").startswith(b"-LEVEL write at QUORUM reached 1 of 3")
    assert s.run("INCR", "a").startswith(b"-ERR INCR is not supported on a leaderless")
    assert s.run("LPUSH", "l", "x").startswith(b"-ERR unknown command 'LPUSH' on a leaderless")
    assert s.run("GET").startswith(b"-ERR wrong number of arguments for 'get'")
    assert s.ops == [Write(b"a", s.ops[0].make, Level.QUORUM)]


def test_hashes() -> None:
    s = Store()
    assert s.run("HSET", "h", "f", "1", "g", "2") == b":2\r\n"
    assert s.run("HSET", "h", "f", "9", "x", "3") == b":1\r\n"
    assert s.run("HGET", "h", "f") == b"$1\r\n9\r\n"
    assert s.run("HMGET", "h", "g", "no") == b"*2\r\n$1\r\n2\r\n$-1\r\n"
    assert s.run("HGETALL", "h", p=enc.RESP3).startswith(b"%3\r\n")
    assert s.run("HDEL", "h", "g", "no") == b":1\r\n" and s.run("HLEN", "h") == b":2\r\n"
    assert s.run("HEXISTS", "h", "g") == b":0\r\n" and s.run("HEXISTS", "h", "f") == b":1\r\n"
    assert s.run("HMSET", "h", "a", "1") == b"+OK\r\n"
    s.run("SET", "str", "v")
    assert s.run("HSET", "str", "f", "1").startswith(b"-WRONGTYPE")
    assert s.run("HGET", "str", "f").startswith(b"-WRONGTYPE")
    assert s.run("HSET", "h", "f").startswith(b"-ERR wrong number of arguments")


def test_schema_checks_before_anything_is_sent() -> None:
    s = Store()
    colls = (Collection("P", b"p:", parse_properties(["age:int"])),)
    assert s.run("SET", "p:1", "x", collections=colls).startswith(b"-ERR SCHEMA key belongs")
    assert s.run("HSET", "p:1", "age", "x", collections=colls).startswith(b"-ERR SCHEMA property")
    assert s.run("MSET", "a", "1", "p:2", "x", collections=colls).startswith(b"-ERR SCHEMA")
    assert s.ops == []
    assert s.run("HSET", "p:1", "age", "41", collections=colls) == b":1\r\n"


def test_expiry_family() -> None:
    s = Store()
    s.run("SET", "k", "v")
    assert s.run("TTL", "k") == b":-1\r\n" and s.run("TTL", "none") == b":-2\r\n"
    assert s.run("EXPIRE", "k", "10") == b":1\r\n"
    assert s.run("TTL", "k") == b":10\r\n" and s.run("PTTL", "k") == b":10000\r\n"
    assert s.run("PEXPIRETIME", "k") == b":%d\r\n" % (NOW + 10_000)
    assert s.run("EXPIRE", "k", "5", "GT") == b":0\r\n"
    assert s.run("EXPIRE", "k", "50", "GT") == b":1\r\n"
    assert s.run("EXPIRE", "k", "5", "NX") == b":0\r\n"
    assert s.run("EXPIRE", "k", "5", "NX", "XX").startswith(b"-ERR NX and XX")
    assert s.run("PERSIST", "k") == b":1\r\n" and s.run("PERSIST", "k") == b":0\r\n"
    assert s.run("EXPIRE", "none", "5") == b":0\r\n"
    assert s.run("SET", "e", "v", "PX", "100") == b"+OK\r\n"
    assert s.run("GET", "e", now=NOW + 99) == b"$1\r\nv\r\n"
    assert s.run("GET", "e", now=NOW + 100) == b"$-1\r\n"  # expired: reads as absent
    assert s.run("EXISTS", "e", now=NOW + 100) == b":0\r\n"
    assert s.run("SET", "e", "w", "KEEPTTL") == b"+OK\r\n"
    assert s.run("PTTL", "e") == b":100\r\n"


def test_scans_keys_and_dbsize() -> None:
    s = Store()
    for i in range(40):
        s.run("SET", f"k{i}", "v")
    s.run("HSET", "h", "f", "1")
    s.run("DEL", "k0")
    assert s.run("DBSIZE") == b":40\r\n"
    keys = s.run("KEYS", "k1*")
    assert keys.startswith(b"*11\r\n")
    found: set[bytes] = set()
    cursor = b"0"
    for _ in range(1000):
        reply = s.run("SCAN", cursor, "COUNT", "16")
        head, _, rest = reply.partition(b"\r\n$")
        size, _, rest = rest.partition(b"\r\n")
        cursor = rest[: int(size)]
        body = rest[int(size) + 2 :]
        found |= set(body.split(b"\r\n")[2::2])
        if cursor == b"0":
            break
    assert found - {b""} == {b"k%d" % i for i in range(1, 40)} | {b"h"}
    assert s.run("SCAN", "0", "TYPE", "hash", "COUNT", "256").endswith(b"$1\r\nh\r\n")
    assert s.run("SCAN", "99999") == b"-ERR invalid cursor\r\n"
    assert all(isinstance(op, (Read, Write, ScanPage)) for op in s.ops)


def test_tokens_round_trip_and_cover() -> None:
    v = Version(10, 2, 3)
    rec = lww.fields_write(v, {b"f": b"1", b"g": None})
    t = Token.of_write(b"k\x00", rec, ("n1", "node:2"))
    assert Token.parse(t.text()) == t and t.kind == "f" and t.fields == (b"f", b"g")
    assert t.covered_by(rec) and not t.covered_by(None) and not t.covered_by(Record())
    older = lww.fields_write(Version(9, 0, 1), {b"f": b"1", b"g": b"2"})
    assert not t.covered_by(older)
    assert t.covered_by(lww.string_write(Version(11, 0, 1), b"x"))  # superseded
    whole = Token.of_write(b"k", lww.string_write(v, b"x"), ())
    assert whole.kind == "k" and not whole.covered_by(
        lww.fields_write(Version(99, 0, 1), {b"f": b"1"})
    )
    exp = Token.of_write(b"k", lww.expiry_write(v, 5), ())
    assert exp.kind == "e" and exp.covered_by(lww.expiry_write(v, 5))
    with pytest.raises(ValueError):
        Token.parse(b"junk")


def test_classify_prefixes_auth_and_consistency() -> None:
    acc = Access("", b"internal-pw")
    s = Session(1, Level.QUORUM, Level.QUORUM)
    s.authenticated = True
    c = classify(s, acc, [b"AT", b"one", b"REQID", b"r1", b"SET", b"k", b"v"])
    assert isinstance(c, DataCmd) and c.argv == [b"SET", b"k", b"v"]
    assert c.read is Level.ONE and c.write is Level.ONE and c.reqid == b"r1" and c.level == "ONE"
    assert classify(s, acc, [b"AT", b"most", b"GET", b"k"]).startswith(b"-ERR AT takes")  # type: ignore[union-attr]
    assert classify(s, acc, [b"AT", b"ONE"]).startswith(b"-ERR a prefix")  # type: ignore[union-attr]
    assert isinstance(classify(s, acc, [b"INFO"]), ShellCmd)
    assert classify(s, acc, [b"CONSISTENCY", b"READ", b"ONE"]) == b"+OK\r\n"
    assert s.levels() == (Level.ONE, Level.QUORUM)
    assert classify(s, acc, [b"CONSISTENCY", b"WRITE", b"x"]).startswith(b"-ERR a consistency")  # type: ignore[union-attr]
    assert classify(s, acc, [b"CONSISTENCY", b"RESET"]) == b"+OK\r\n"
    assert s.levels() == (Level.QUORUM, Level.QUORUM)
    # The database's password and the internal one.
    locked = Access("5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", b"ipw")
    s2 = Session(2, Level.ONE, Level.ONE)
    assert classify(s2, locked, [b"GET", b"k"]) == b"-NOAUTH Authentication required.\r\n"
    assert classify(s2, locked, [b"AUTH", b"nope"]).startswith(b"-WRONGPASS")  # type: ignore[union-attr]
    assert classify(s2, locked, [b"AUTH", b"ackdb-internal", b"ipw"]) == b"+OK\r\n"
    assert s2.internal and s2.authenticated
    s3 = Session(3, Level.ONE, Level.ONE)
    assert classify(s3, locked, [b"AUTH", b"password"]) == b"+OK\r\n" and not s3.internal
    assert classify(s3, locked, [b"RECEIPT"]) == b"$-1\r\n"
    assert classify(s3, locked, [b"RECEIPTS", b"ON"]) == b"+OK\r\n" and s3.receipts
