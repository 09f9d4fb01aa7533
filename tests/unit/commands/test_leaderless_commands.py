"""The replica side of leaderless databases: the LL.* commands through the server core,
their effects (what reaches the AOF), and their records in snapshots and RESP bases."""

from __future__ import annotations

import io

import pytest

from ackdb.keyspace import lww
from ackdb.keyspace.db import Database
from ackdb.keyspace.lww import Record, Version
from ackdb.persistence import dataset
from ackdb.persistence import snapshot as snap
from conftest import Harness

V1, V2, V3 = b"100.0.1", b"200.0.2", b"300.0.1"


@pytest.fixture
def h() -> Harness:
    return Harness()


def _record(h: Harness, key: bytes) -> Record:
    v = h.server.dbs[0].data[key]
    assert isinstance(v, Record)
    return v


def test_set_applies_only_if_newer_and_is_idempotent(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "LL.SET", "k", V2, "new") == b":1\r\n"
    assert h.run(c, "LL.SET", "k", V2, "new") == b":0\r\n"  # a retry: applied once
    assert h.run(c, "LL.SET", "k", V1, "old") == b":0\r\n"  # an older write: ignored
    assert _record(h, b"k").view() == ("string", b"new")
    assert [argv[0] for _, argv in h.effects] == [b"LL.SET"]  # only the change is logged


def test_del_leaves_a_tombstone_and_type_says_leaderless(h: Harness) -> None:
    c = h.client()
    h.run(c, "LL.SET", "k", V1, "x")
    assert h.run(c, "LL.DEL", "k", V2) == b":1\r\n"
    assert _record(h, b"k").view() == ("deleted", Version(200, 0, 2))
    assert h.run(c, "LL.SET", "k", V1, "x") == b":0\r\n"  # no resurrection by an old write
    assert h.run(c, "TYPE", "k") == b"+leaderless\r\n"


def test_hash_fields_are_last_write_wins_each(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "LL.HSET", "h", V2, "a", "A2", "b", "B2") == b":1\r\n"
    assert h.run(c, "LL.HSET", "h", V1, "a", "A1", "c", "C1") == b":1\r\n"  # c is new
    assert h.run(c, "LL.HDEL", "h", V3, "b") == b":1\r\n"
    assert _record(h, b"h").view() == ("hash", {b"a": b"A2", b"c": b"C1"})
    assert h.run(c, "LL.HSET", "h", V1, "a") == (
        b"-ERR wrong number of arguments for 'll.hset' command\r\n"
    )


def test_apply_get_digest_and_repair_never_clobbers(h: Harness) -> None:
    c = h.client()
    newer = lww.string_write(Version(300, 0, 1), b"newer")
    h.run(c, "LL.APPLY", "k", lww.encode(newer))
    stale_repair = lww.string_write(Version(200, 0, 2), b"repair")
    assert h.run(c, "LL.APPLY", "k", lww.encode(stale_repair)) == b":0\r\n"
    enc = lww.encode(newer)
    assert h.run(c, "LL.GET", "k") == b"$%d\r\n%s\r\n" % (len(enc), enc)
    assert h.run(c, "LL.GET", "nope") == b"$-1\r\n"
    d = lww.digest(newer)
    assert h.run(c, "LL.DIGEST", "k") == b"$8\r\n" + d + b"\r\n"
    assert h.run(c, "LL.DIGEST", "nope") == b"$0\r\n\r\n"


def test_bad_input_gets_clear_errors(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "LL.SET", "k", "1.2", "x").startswith(b"-ERR LL invalid version")
    assert h.run(c, "LL.APPLY", "k", "garbage") == b"-ERR LL invalid record\r\n"
    assert h.run(c, "LL.TREE", "17").startswith(b"-ERR LL depth")
    h.run(c, "SET", "plain", "x")
    assert h.run(c, "LL.SET", "plain", V1, "x").startswith(b"-WRONGTYPE")
    assert h.run(c, "LL.SET", "k", V1, "x", "MAXSKEW") == b"-ERR syntax error\r\n"


def test_maxskew_refuses_versions_from_the_future(h: Harness) -> None:
    c = h.client()
    now = h.server.now_ms()
    ahead = b"%d.0.9" % (now + 60_000)
    assert h.run(c, "LL.SET", "k", ahead, "x", "MAXSKEW", "500").startswith(b"-ERR LLSKEW")
    assert h.run(c, "LL.SET", "k", b"%d.0.9" % now, "x", "MAXSKEW", "500") == b":1\r\n"


def test_purge_drops_only_that_exact_tombstone(h: Harness) -> None:
    c = h.client()
    h.run(c, "LL.DEL", "k", V2)
    assert h.run(c, "LL.PURGE", "k", V1) == b":0\r\n"
    assert h.run(c, "LL.PURGE", "k", V2) == b":1\r\n"
    assert b"k" not in h.server.dbs[0].data
    h.run(c, "LL.SET", "s", V1, "x")
    assert h.run(c, "LL.PURGE", "s", V1) == b":0\r\n"


def test_tree_and_range_answer_leaves(h: Harness) -> None:
    c = h.client()
    for i in range(20):
        h.run(c, "LL.SET", b"k%d" % i, V1, "x")
    h.run(c, "SET", "plain", "x")  # other types are not part of the tree
    reply = h.run(c, "LL.TREE", "3")
    assert reply.startswith(b"$64\r\n")
    items = [(k, v) for k, v in h.server.dbs[0].data.items() if isinstance(v, Record)]
    leaves = lww.tree_leaves(items, 3)
    assert reply[5:69] == b"".join(x.to_bytes(8, "big") for x in leaves)
    whole = h.run(c, "LL.RANGE", "3", "0", "8")
    assert whole.startswith(b"*40\r\n")
    assert h.run(c, "LL.RANGE", "3", "0", "0") == b"*0\r\n"


def _db_with_records() -> list[Database]:
    h = Harness()
    c = h.client()
    h.run(c, "LL.SET", "s", V1, "x")
    h.run(c, "LL.DEL", "d", V2)
    h.run(c, "LL.HSET", "h", V1, "a", "1")
    h.run(c, "LL.HDEL", "h", V3, "b")
    return h.server.dbs


def test_records_survive_snapshot_and_resp_base() -> None:
    dbs = _db_with_records()
    want = {k: v for k, v in dbs[0].data.items()}
    out = io.BytesIO()
    dataset.write_snapshot(out, dbs, {"replid": "a" * 40}, now_ms=1)
    h = Harness()
    target = dataset.DbTarget(h.server.dbs, now_ms=1)
    snap.load(io.BytesIO(out.getvalue()), target)
    target.finish()
    assert dict(h.server.dbs[0].data) == want
    # aof-use-rdb-preamble no: the base is LL.APPLY commands, which replay to the same.
    base = io.BytesIO()
    dataset.write_resp(base, dbs, now_ms=1)
    assert base.getvalue().count(b"LL.APPLY") == 3
    h2 = Harness()
    c = h2.client()
    for k, v in want.items():
        assert h2.run(c, "LL.APPLY", k, lww.encode(v)) == b":1\r\n"
    assert dict(h2.server.dbs[0].data) == want


def test_debug_digest_covers_records(h: Harness) -> None:
    c = h.client()
    h.run(c, "LL.SET", "k", V1, "x")
    one = h.run(c, "DEBUG", "DIGEST")
    h.run(c, "LL.SET", "k", V2, "y")
    assert h.run(c, "DEBUG", "DIGEST") != one


def test_effects_leave_maxskew_out(h: Harness) -> None:
    c = h.client()
    now = h.server.now_ms()
    v = b"%d.0.9" % now
    assert h.run(c, "LL.SET", "k", v, "x", "MAXSKEW", "500") == b":1\r\n"
    rec = lww.encode(lww.string_write(Version(now + 1, 0, 9), b"y"))
    assert h.run(c, "LL.APPLY", "k", rec, "MAXSKEW", "500") == b":1\r\n"
    assert [argv for _, argv in h.effects] == [[b"LL.SET", b"k", v, b"x"], [b"LL.APPLY", b"k", rec]]


def test_ll_schema_sets_newer_versions_only_and_gates_writes(h: Harness) -> None:
    from ackdb.cluster.schema import Collection, encode_schema, parse_properties

    c = h.client()
    colls = (Collection("P", b"p:", parse_properties(["age:int"])),)
    assert h.run(c, "LL.SCHEMA") == b":0\r\n"
    rec = lww.encode(lww.fields_write(Version(5, 0, 1), {b"age": b"7"}))
    reply = h.run(c, "LL.APPLY", "p:1", rec, "SCHEMA", "1")
    assert reply.startswith(b"-TRYAGAIN LL schema version 1 is not applied here yet (have 0)")
    assert h.run(c, "LL.SCHEMA", "1", encode_schema(1, colls)) == b":1\r\n"
    assert h.run(c, "LL.SCHEMA", "1", encode_schema(1, ())) == b":0\r\n"  # not newer
    assert h.run(c, "LL.SCHEMA", "2", encode_schema(1, ())).startswith(b"-ERR LL the schema")
    assert h.run(c, "LL.SCHEMA") == b":1\r\n"
    assert h.run(c, "LL.APPLY", "p:1", rec, "MAXSKEW", "-1", "SCHEMA", "1") == b":1\r\n"
    bad = lww.encode(lww.fields_write(Version(6, 0, 1), {b"age": b"old"}))
    assert h.run(c, "LL.APPLY", "p:1", bad, "SCHEMA", "1").startswith(b"-ERR SCHEMA property")
    string = lww.encode(lww.string_write(Version(6, 0, 1), b"x"))
    assert h.run(c, "LL.APPLY", "p:1", string, "SCHEMA", "1").startswith(b"-ERR SCHEMA key")
    # Without SCHEMA (repairs, hints, anti-entropy) nothing is checked; options are
    # never logged.
    assert h.run(c, "LL.APPLY", "p:2", bad) == b":1\r\n"
    logged = [argv for _, argv in h.effects]
    assert logged[-1] == [b"LL.APPLY", b"p:2", bad]
    assert [b"LL.APPLY", b"p:1", rec] in logged and logged[0][0] == b"LL.SCHEMA"
    # The schema is an ordinary value: it survives a RESP base (AOF rewrite).
    base = io.BytesIO()
    dataset.write_resp(base, h.server.dbs, now_ms=1)
    assert b"ackdb-ll-schema" in base.getvalue()
