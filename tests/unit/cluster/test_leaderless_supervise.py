"""A node's units for a leaderless database (issue 16): standalone replicas (no
replicaof, no lease, aof-always by default), the coordinator endpoint, the schema push
decision (cluster/schemapush.py) and the supervisor acting on it -- after the first probe
answered, when the schema changes (live, never a restart), again after a retry interval
while the replica is behind or cannot say."""

from __future__ import annotations

from dataclasses import replace

from test_supervise import HOSTS, actions_of
from test_supervise import db as sharded_db

from ackdb.cluster.databases import Database, DbType, Instance, Persistence, Shard, slot_ranges
from ackdb.cluster.schema import Collection, Property, decode_schema
from ackdb.cluster.schemapush import SCHEMA_PUSH_RETRY_MS, push_due
from ackdb.cluster.shardspec import Observed, ProxySpec, ShardSpec, desired_units, shard_config
from ackdb.cluster.status import instance_line, parse_status
from ackdb.cluster.supervise import Phase, PushSchema, Start, Stop, Supervisor

USERS = Collection("users", b"user:", (Property("name", "string"),))


def ll_db(uid: int = 9, partitions: int = 2, version: int = 0) -> Database:
    """n = 3 on n1, n2, n3: partition i's replicas in the order n(i+1), n(i+2), n(i+3)."""
    nodes = ["n1", "n2", "n3"]
    shards = []
    for i, (first, last) in enumerate(slot_ranges(partitions)):
        insts = [Instance(nodes[(i + k) % 3], 31000 + 3 * i + k) for k in range(3)]
        shards.append(Shard(i, first, last, 1, insts[0], tuple(insts[1:])))
    return Database(
        "ll",
        uid,
        DbType.LEADERLESS,
        12001,
        True,
        2,
        Persistence.AOF_ALWAYS,
        "",
        False,
        tuple(shards),
        failover_guarantee=0,
        schema_version=version,
        collections=(USERS,) if version else (),
    )


def test_replicas_are_standalone_and_the_endpoint_is_a_coordinator() -> None:
    want = desired_units("n2", [ll_db(), sharded_db()], HOSTS, proxies=True)
    for unit in ("shards/9-0", "shards/9-1"):
        spec = want[unit]
        assert isinstance(spec, ShardSpec) and spec.leaderless
        assert spec.primary is None and spec.follows is None and not spec.lease
        assert spec.persistence is Persistence.AOF_ALWAYS and spec.schema == b""
        lines = shard_config(spec, "/d", "pw").splitlines()
        assert "appendonly yes" in lines and "appendfsync always" in lines
        assert not any(x.startswith(("replicaof", "ackdb-lease")) for x in lines)
    assert want["proxies/9"] == ProxySpec("ll", 9, "127.0.0.2", 12001, coordinator=True)
    p = want["proxies/7"]
    assert isinstance(p, ProxySpec) and not p.coordinator  # the sharded one's: a proxy
    s = want["shards/7-0"]
    assert isinstance(s, ShardSpec) and not s.leaderless


def test_the_spec_carries_the_schema_payload() -> None:
    spec = desired_units("n1", [ll_db(version=3)], HOSTS, proxies=False)["shards/9-0"]
    assert isinstance(spec, ShardSpec) and spec.schema_version == 3
    assert decode_schema(spec.schema) == (3, (USERS,))


def test_push_due() -> None:
    spec = desired_units("n1", [ll_db(version=2)], HOSTS, proxies=False)["shards/9-0"]
    assert isinstance(spec, ShardSpec)
    assert push_due(spec, -1, None, 0)  # cannot say (unknown command): push
    assert push_due(spec, 1, None, 0)  # behind
    assert not push_due(spec, 2, None, 0) and not push_due(spec, 5, None, 0)
    assert not push_due(spec, 1, 1000, 1000 + SCHEMA_PUSH_RETRY_MS - 1)  # just pushed
    assert push_due(spec, 1, 1000, 1000 + SCHEMA_PUSH_RETRY_MS)
    none = replace(spec, schema_version=0, schema=b"")
    assert not push_due(none, -1, None, 0)  # no schema yet: nothing to push
    sharded = desired_units("n1", [sharded_db()], HOSTS, proxies=False)["shards/7-0"]
    assert isinstance(sharded, ShardSpec) and not push_due(sharded, -1, None, 0)


def _running(version: int) -> tuple[Supervisor, int]:
    s = Supervisor()
    acts = s.set_desired(
        desired_units("n1", [ll_db(partitions=1, version=version)], HOSTS, False), 0
    )
    (start,) = actions_of(Start, acts)
    s.started(start.unit, 100, 0)
    return s, 100


def test_supervisor_pushes_after_the_first_answer_and_retries_until_applied() -> None:
    s, pid = _running(version=1)
    unit = "shards/9-0"
    acts = s.probed(unit, pid, Observed(role="master", ll_schema=-1), 10)
    assert s.units[unit].phase is Phase.RUNNING
    (push,) = actions_of(PushSchema, acts)
    assert (push.unit, push.pid, push.version) == (unit, pid, 1)
    assert decode_schema(push.payload) == (1, (USERS,))
    # Still not applied (the command is unknown there): again, but not before the retry.
    assert actions_of(PushSchema, s.probed(unit, pid, Observed("master", ll_schema=-1), 20)) == []
    later = 10 + SCHEMA_PUSH_RETRY_MS
    assert actions_of(PushSchema, s.probed(unit, pid, Observed("master", ll_schema=0), later))
    # Applied: no more pushes.
    done = s.probed(unit, pid, Observed("master", ll_schema=1), later + SCHEMA_PUSH_RETRY_MS)
    assert actions_of(PushSchema, done) == []


def test_a_schema_change_is_pushed_live_never_a_restart() -> None:
    s, pid = _running(version=0)
    unit = "shards/9-0"
    assert actions_of(PushSchema, s.probed(unit, pid, Observed("master", ll_schema=0), 10)) == []
    new = desired_units("n1", [ll_db(partitions=1, version=1)], HOSTS, False)
    acts = s.set_desired(new, 20)
    assert actions_of(Stop, acts) == [] and actions_of(Start, acts) == []
    (push,) = actions_of(PushSchema, acts)
    assert push.version == 1
    assert s.units[unit].spec == new[unit]


def test_a_leaderless_instance_line() -> None:
    s, pid = _running(version=0)
    unit = "shards/9-0"
    s.probed(unit, pid, Observed("master", ll_schema=0), 10)
    (v,) = parse_status(instance_line("n1", s.units[unit]) + "\r\n").instances
    assert (v.name, v.fields["role"], v.fields["seen"]) == ("ll/0", "leaderless", "standalone")
