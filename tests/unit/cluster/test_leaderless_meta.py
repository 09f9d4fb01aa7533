"""Leaderless databases in the metadata (issue 16): db.create with TYPE leaderless
(placement, defaults, refusals), the schema ops through the log (schema.create / add /
drop: checked, version bumped, topology version moved, refusals change nothing), the
DB.INFO and CLUSTER.STATUS text, and that failover, leases, down facts and shard.* ops
leave leaderless databases alone."""

from __future__ import annotations

import msgpack
import pytest
from test_dbops import Log, cluster

from ackdb.cluster import commands as c
from ackdb.cluster import dbops, leases, shardops
from ackdb.cluster.commands import Op, RecordKind
from ackdb.cluster.databases import Database, DbType, Persistence
from ackdb.cluster.dbops import DbOptions
from ackdb.cluster.dbtext import info_text, parse_info
from ackdb.cluster.failover import FailoverController
from ackdb.cluster.schema import Collection, Property
from ackdb.cluster.schemaops import encode_properties
from ackdb.cluster.status import parse_status, status_text
from ackdb.consensus import Role, Status

LL = DbType.LEADERLESS


def db(log: Log, name: str) -> Database:
    r = log.store.record(RecordKind.DATABASE, name)
    assert r is not None
    return Database.from_body(r.body)


def props(*specs: str) -> bytes:
    return encode_properties(tuple(Property(*s.split(":")) for s in specs))


def test_create_places_n_replicas_on_distinct_nodes_with_the_defaults() -> None:
    log = cluster(3)
    assert log.create("ll", type=LL, replication_factor=3, partitions=2) == c.OK
    d = db(log, "ll")
    assert d.type is LL and d.replication_factor == 3 and d.replicas == 2
    assert len(d.shards) == 2 and d.shards[0].first_slot == 0 and d.shards[1].last_slot == 16383
    for s in d.shards:
        assert len({i.node for i in s.instances()}) == 3 and s.epoch == 1
    assert (d.read_consistency, d.write_consistency) == ("QUORUM", "QUORUM")
    assert (d.deletion_strategy, d.max_clock_skew_ms) == ("TimeBasedResolution", 500)
    assert d.persistence is Persistence.AOF_ALWAYS and d.schema_version == 0
    assert (d.hint_bytes_max, d.hint_count_max, d.hint_age_ms_max) == (
        64 << 20,
        100_000,
        10_800_000,
    )
    ports = [i.port for s in d.shards for i in s.instances()] + [d.port]
    assert len(set(ports)) == len(ports)


def test_create_takes_the_leaderless_options() -> None:
    log = cluster(3)
    r = log.create(
        "ll",
        type=LL,
        replication_factor=2,
        read_consistency="ONE",
        write_consistency="ALL",
        deletion_strategy="DeleteOnConflict",
        max_clock_skew_ms=250,
        persistence=Persistence.AOF_EVERYSEC,
        port=12345,
        hint_bytes_max=4096,
        hint_count_max=10,
        hint_age_ms_max=2000,
    )
    assert r == c.OK
    d = db(log, "ll")
    assert (d.read_consistency, d.write_consistency, d.deletion_strategy) == (
        "ONE",
        "ALL",
        "DeleteOnConflict",
    )
    assert (d.max_clock_skew_ms, d.persistence, d.port, len(d.shards)) == (
        250,
        Persistence.AOF_EVERYSEC,
        12345,
        1,
    )
    assert (d.hint_bytes_max, d.hint_count_max, d.hint_age_ms_max) == (4096, 10, 2000)
    t = dbops.topology(log.store, "ll", "n1")
    assert t is not None
    info = parse_info(info_text(t))
    assert (info.fields["hint_bytes_max"], info.fields["hint_count_max"]) == ("4096", "10")
    assert info.fields["hint_age_ms_max"] == "2000"


@pytest.mark.parametrize(
    ("opts", "error"),
    [
        ({"type": LL}, "needs REPLICATION-FACTOR"),
        ({"type": LL, "replication_factor": 4}, "replication factor 4"),
        ({"type": LL, "replication_factor": 0}, "replication factor must be"),
        ({"type": LL, "replication_factor": 3, "shards": 2}, "SHARDS is for sharded"),
        ({"type": LL, "replication_factor": 3, "replicas": 1}, "REPLICAS is for sharded"),
        ({"type": LL, "replication_factor": 3, "failover_policy": "available"}, "FAILOVER-POLICY"),
        ({"type": LL, "replication_factor": 3, "cluster_api": True}, "CLUSTER-API"),
        ({"type": LL, "replication_factor": 3, "read_consistency": "TWO"}, "ONE|QUORUM|ALL"),
        ({"type": LL, "replication_factor": 3, "deletion_strategy": "x"}, "deletion strategy"),
        ({"type": LL, "replication_factor": 3, "partitions": 0}, "partitions must be"),
        ({"type": LL, "replication_factor": 3, "max_clock_skew_ms": 0}, "clock skew"),
        ({"type": LL, "replication_factor": 3, "hint_bytes_max": 0}, "HINT-BYTES-MAX must be"),
        ({"type": LL, "replication_factor": 3, "hint_count_max": -1}, "HINT-COUNT-MAX must be"),
        ({"type": LL, "replication_factor": 3, "hint_age_ms_max": 1 << 50}, "HINT-AGE-MS-MAX"),
        ({"hint_age_ms_max": 1000}, "HINT-AGE-MS-MAX is for leaderless"),
        ({"replication_factor": 3}, "REPLICATION-FACTOR is for leaderless"),
        ({"replicas": 1, "partitions": 2}, "PARTITIONS is for leaderless"),
        ({"read_consistency": "ONE"}, "READ-CONSISTENCY is for leaderless"),
    ],
)
def test_refusals_change_nothing(opts: dict[str, object], error: str) -> None:
    log = cluster(3)
    before = dict(log.store.records)
    r = log.create("ll", **opts)
    assert not r.ok and error in r.error, r.error
    assert log.store.records == before


def test_options_round_trip_and_sharded_bytes_are_unchanged() -> None:
    o = DbOptions(type=LL, replication_factor=3, partitions=4, write_consistency="ALL")
    assert DbOptions.from_bytes(o.to_bytes()) == o and o.persistence is Persistence.AOF_ALWAYS
    assert DbOptions().persistence is Persistence.NONE
    assert b"type" not in DbOptions(shards=2).to_bytes()
    h = DbOptions(type=LL, replication_factor=3, hint_bytes_max=1, hint_count_max=2,
                  hint_age_ms_max=3)  # fmt: skip
    assert DbOptions.from_bytes(h.to_bytes()) == h


def test_hint_limits_in_the_record_and_records_written_before_them() -> None:
    log = cluster(3)
    assert log.create("ll", type=LL, replication_factor=3, hint_count_max=5) == c.OK
    d = db(log, "ll")
    assert Database.from_body(d.to_body()) == d and d.hint_count_max == 5
    # A record written before the hint limits were settings: the defaults.
    old = msgpack.unpackb(d.to_body(), raw=False)
    del old["hint_limits"]
    d2 = Database.from_body(msgpack.packb(old, use_bin_type=True))
    assert (d2.hint_bytes_max, d2.hint_count_max, d2.hint_age_ms_max) == (
        64 << 20,
        100_000,
        3 * 3600 * 1000,
    )
    old["hint_limits"] = [1, 0, 1]
    with pytest.raises(ValueError, match="hint limits must be positive"):
        Database.from_body(msgpack.packb(old, use_bin_type=True))
    # A sharded database's body carries none.
    assert log.create("sh") == c.OK
    assert "hint_limits" not in msgpack.unpackb(db(log, "sh").to_body(), raw=False)


def _ll(log: Log) -> None:
    assert log.create("ll", type=LL, replication_factor=3) == c.OK


def test_schema_ops_bump_the_version_and_the_topology_version() -> None:
    log = cluster(3)
    _ll(log)
    v0 = dbops.topology_version(log.store, "ll")
    r = log.cmd(Op.SCHEMA_CREATE, "ll", "users", b"user:", props("name:string", "age:int"))
    assert r.ok and r.value == 1
    d = db(log, "ll")
    assert d.schema_version == 1
    assert d.collections == (
        Collection("users", b"user:", (Property("name", "string"), Property("age", "int"))),
    )
    v1 = dbops.topology_version(log.store, "ll")
    assert v0 is not None and v1 is not None and v1 > v0
    r = log.cmd(Op.SCHEMA_ADD, "ll", "users", props("score:float"))
    assert r.ok and r.value == 2
    assert [p.name for p in db(log, "ll").collections[0].properties] == ["name", "age", "score"]
    assert log.cmd(Op.SCHEMA_CREATE, "ll", "items", b"item:", props()).value == 3
    r = log.cmd(Op.SCHEMA_DROP, "ll", "users")
    assert r.ok and r.value == 4
    assert [col.name for col in db(log, "ll").collections] == ["items"]
    v2 = dbops.topology_version(log.store, "ll")
    assert v2 is not None and v2 > v1


@pytest.mark.parametrize(
    ("op", "args", "error"),
    [
        (Op.SCHEMA_CREATE, ("ll", "users", b"u2:", props()), "collection 'users' exists"),
        (Op.SCHEMA_CREATE, ("ll", "other", b"user:", props()), "prefix 'user:'"),
        (Op.SCHEMA_CREATE, ("ll", "bad name", b"x:", props()), "invalid collection name"),
        (Op.SCHEMA_CREATE, ("ll", "x", b"x:", props("a:date")), "unknown type"),
        (Op.SCHEMA_CREATE, ("ll", "x", b"", props()), "a prefix is 1 to"),
        (Op.SCHEMA_CREATE, ("ll", "x", b"x:", b"\xc1garbage"), "malformed properties"),
        (Op.SCHEMA_ADD, ("ll", "users", props("name:int")), "declared twice"),
        (Op.SCHEMA_ADD, ("ll", "users", props()), "no properties to add"),
        (Op.SCHEMA_ADD, ("ll", "nope", props("a:int")), "has no collection 'nope'"),
        (Op.SCHEMA_DROP, ("ll", "nope"), "has no collection 'nope'"),
        (Op.SCHEMA_DROP, ("sh", "users"), "only leaderless databases have schemas"),
        (Op.SCHEMA_DROP, ("missing", "users"), "no such database 'missing'"),
    ],
)
def test_schema_refusals_change_nothing(
    op: Op, args: tuple[bytes | str | int, ...], error: str
) -> None:
    log = cluster(3)
    _ll(log)
    assert log.create("sh") == c.OK
    assert log.cmd(Op.SCHEMA_CREATE, "ll", "users", b"user:", props("name:string")).ok
    before = dict(log.store.records)
    r = log.cmd(op, *args)
    assert not r.ok and error in r.error, r.error
    assert log.store.records == before


def test_info_and_status_text() -> None:
    log = cluster(3)
    assert log.create("ll", type=LL, replication_factor=3, partitions=2) == c.OK
    log.cmd(Op.SCHEMA_CREATE, "ll", "users", b"user:", props("name:string", "age:int"))
    t = dbops.topology(log.store, "ll", "n1")
    assert t is not None
    info = parse_info(info_text(t))
    f = info.fields
    assert (f["type"], f["replication_factor"], f["partitions"]) == ("leaderless", "3", "2")
    assert (f["read_consistency"], f["write_consistency"]) == ("QUORUM", "QUORUM")
    assert (f["deletion_strategy"], f["schema_version"], f["collections"]) == (
        "TimeBasedResolution",
        "1",
        "1",
    )
    assert f["persistence"] == "aof-always" and not info.shards
    assert [len(p.fields["replicas"].split(",")) for p in info.partitions] == [3, 3]
    assert info.collections == [("users", {"prefix": "user:", "properties": "name:string,age:int"})]
    st = Status("n1", Role.LEADER, 1, "n1", 5, 5, log.store.voters, {}, 5, None)
    v = parse_status(status_text(st, log.store, "127.0.0.1:7001", 0))
    (d,) = v.databases
    assert (d.fields["type"], d.fields["n"], d.fields["schema"]) == ("leaderless", "3", "1")
    assert [p.id for p in v.partitions] == ["ll/0", "ll/1"] and not v.shards


def test_failover_leases_and_shard_ops_leave_leaderless_databases_alone() -> None:
    log = cluster(3)
    _ll(log)
    d = db(log, "ll")
    first = d.shards[0].primary.node
    assert leases.lease_targets(log.store, first) == []
    assert leases.down_facts(log.store, first, {}, 10**9) == []
    r = log.cmd(Op.SHARD_DOWN, "ll", 0, 1, first, "down")
    assert not r.ok and "leaderless" in r.error
    r = log.cmd(Op.SHARD_FENCE, "ll", 0, 1, 0, "")
    assert not r.ok and "leaderless" in r.error
    with pytest.raises(ValueError, match="leaderless"):
        shardops.planned_fences(log.store, "ll", None)
    st = Status("n1", Role.LEADER, 1, "n1", 5, 5, log.store.voters, {}, 5, None)
    assert log.create("sh", replicas=1) == c.OK
    fc = FailoverController()
    # Every node long unseen: the sharded database's shard is fenced, nothing else.
    subs = fc.step(st, log.store, 10**9, {}, 0)
    assert subs and {s.args[0] for s in subs} == {"sh"}
    assert all(line.startswith("failover:sh/") for line in fc.status_lines(log.store, 10**9))


def test_delete_works_for_leaderless_databases() -> None:
    log = cluster(3)
    _ll(log)
    assert log.cmd(Op.DB_DELETE, "ll") == c.OK
    assert log.store.record(RecordKind.DATABASE, "ll") is None
