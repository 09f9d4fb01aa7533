"""Failover in the metadata state machine (ackdb.cluster.shardops): the shard.* and
node.maintenance ops as they apply, stale ops that change nothing, the records' encoding
(old bodies and snapshots still read), and random op sequences keeping the invariants."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.cluster.test_dbops import Log, cluster, db

from ackdb.cluster import commands as c
from ackdb.cluster import dbops
from ackdb.cluster.commands import Op, RecordKind
from ackdb.cluster.databases import (
    FORKS_KEPT,
    Database,
    Fence,
    Fork,
    Instance,
    Report,
    Shard,
    ShardState,
)
from ackdb.cluster.dbops import DbOptions
from ackdb.cluster.metadata import MetadataStore


def shard0(log: Log, name: str = "d") -> Shard:
    return db(log, name).shards[0]


def failing(log: Log) -> Shard:
    """A shard of ``d`` (1 shard, 2 replicas on n1..n3) fenced at epoch 2."""
    assert log.create("d", replicas=2) == c.OK
    assert log.cmd(Op.SHARD_FENCE, "d", 0, 1, 0, "") == c.OK
    return shard0(log)


def test_old_database_bodies_decode_with_defaults() -> None:
    old = {
        "name": "d",
        "uid": 7,
        "type": "sharded",
        "port": 12000,
        "replication": True,
        "replicas": 1,
        "persistence": "none",
        "password_sha256": "",
        "cluster_api": False,
        "shards": [[0, 0, 16383, 3, [["n1", 20000], ["n2", 20001]]]],
    }
    d = Database.from_body(msgpack.packb(old))
    assert (d.failover_guarantee, d.failover_policy, d.failover_profile) == (1, "strict", "high")
    s = d.shards[0]
    assert (s.epoch, s.state, s.fence, s.forks, s.note, s.down) == (
        3,
        ShardState.OK,
        None,
        (),
        "",
        "",
    )
    assert Database.from_body(d.to_body()) == d
    no_replicas = dict(old, replicas=0, replication=False)
    assert Database.from_body(msgpack.packb(no_replicas)).failover_guarantee == 0


names = st.sampled_from(["n1", "n2", "n3"])
reports = st.builds(Report, names, st.text(max_size=40), st.integers(0, 1 << 62))
fences = st.builds(
    Fence,
    st.integers(0, 1 << 40),
    st.builds(Instance, names, st.integers(1, 65535)),
    st.booleans(),
    names,
    st.text(max_size=20),
    st.lists(reports, max_size=3).map(tuple),
)
forks = st.lists(st.builds(Fork, st.integers(1, 99), st.text(max_size=40), st.integers(0, 99)))


@given(fence=st.none() | fences, forks=forks.map(tuple), note=st.text(), down=st.text())
@settings(max_examples=100, deadline=None)
def test_failover_fields_round_trip(
    fence: Fence | None, forks: tuple[Fork, ...], note: str, down: str
) -> None:
    state = ShardState.OK if fence is None else ShardState.FAILING
    primary, replicas = Instance("n1", 1), (Instance("n2", 2),)
    s = Shard(0, 0, 16383, 2, primary, replicas, state, fence, forks, note, down)
    d = Database("d", 1, dbops.DbType.SHARDED, 1, True, 1, dbops.Persistence.NONE, "", False, (s,))
    assert Database.from_body(d.to_body()) == d


def test_a_failover_from_down_to_promote() -> None:
    log = cluster(3)
    assert log.create("d", replicas=2) == c.OK
    s = shard0(log)
    old_primary, (r1, r2) = s.primary, s.replicas
    v0 = dbops.topology_version(log.store, "d")
    # shard.down: a fact, only from the primary's own agent, at the current epoch.
    assert not log.cmd(Op.SHARD_DOWN, "d", 0, 1, r1.node, "ping timeout").ok
    assert log.cmd(Op.SHARD_DOWN, "d", 0, 1, old_primary.node, "ping timeout") == c.OK
    assert shard0(log).down == "ping timeout"
    v1 = dbops.topology_version(log.store, "d")
    assert v0 is not None and v1 is not None and v1 > v0
    # shard.fence: epoch 2, failing, the down reason moves into the fence.
    assert log.cmd(Op.SHARD_FENCE, "d", 0, 1, 0, "") == c.OK
    s = shard0(log)
    assert (s.epoch, s.state, s.down) == (2, ShardState.FAILING, "")
    assert s.fence is not None
    assert (s.fence.old_primary, s.fence.planned, s.fence.down_reason) == (
        old_primary,
        False,
        "ping timeout",
    )
    assert s.fence.started_index == log.store.applied_index
    # Reports at the new epoch only; a retried one changes nothing.
    assert not log.cmd(Op.SHARD_REPORT, "d", 0, 1, r1.node, "a" * 40, 100).ok
    assert log.cmd(Op.SHARD_REPORT, "d", 0, 2, r1.node, "a" * 40, 100) == c.OK
    before = log.store.record(RecordKind.DATABASE, "d")
    assert log.cmd(Op.SHARD_REPORT, "d", 0, 2, r1.node, "a" * 40, 100) == c.OK
    assert log.store.record(RecordKind.DATABASE, "d") == before
    assert log.cmd(Op.SHARD_REPORT, "d", 0, 2, r2.node, "a" * 40, 90) == c.OK
    assert not log.cmd(Op.SHARD_REPORT, "d", 0, 2, "n9", "a" * 40, 90).ok
    # Promote needs a report from the winner.
    assert not log.cmd(Op.SHARD_PROMOTE, "d", 0, 2, old_primary.node, "").ok
    assert log.cmd(Op.SHARD_PROMOTE, "d", 0, 2, r1.node, "") == c.OK
    s = shard0(log)
    assert (s.epoch, s.state, s.fence, s.primary) == (2, ShardState.OK, None, r1)
    assert s.replicas == (old_primary, r2)  # the old primary took the winner's place
    assert s.forks == (Fork(2, "a" * 40, 100),)
    # Everything late is stale now.
    for op, args in [
        (Op.SHARD_PROMOTE, ("d", 0, 2, r2.node, "")),
        (Op.SHARD_REPORT, ("d", 0, 2, r2.node, "b", 1)),
        (Op.SHARD_ABORT, ("d", 0, 2, "late")),
        (Op.SHARD_FENCE, ("d", 0, 1, 0, "")),
        (Op.SHARD_DOWN, ("d", 0, 1, old_primary.node, "late")),
    ]:
        before = log.store.record(RecordKind.DATABASE, "d")
        r = log.cmd(op, *args)
        assert not r.ok and r.error.startswith("STALE"), (op, r)
        assert log.store.record(RecordKind.DATABASE, "d") == before


def test_planned_fence_needs_a_replica_target_and_abort_keeps_the_primary() -> None:
    log = cluster(3)
    assert log.create("d", replicas=1) == c.OK
    s = shard0(log)
    assert not log.cmd(Op.SHARD_FENCE, "d", 0, 1, 1, s.primary.node).ok
    assert not log.cmd(Op.SHARD_FENCE, "d", 0, 1, 1, "").ok
    assert log.cmd(Op.SHARD_FENCE, "d", 0, 1, 1, s.replicas[0].node) == c.OK
    f = shard0(log).fence
    assert f is not None and f.planned and f.target == s.replicas[0].node
    assert log.cmd(Op.SHARD_ABORT, "d", 0, 2, "FAILOVER timed out") == c.OK
    after = shard0(log)
    assert (after.epoch, after.state, after.primary, after.replicas) == (
        3,
        ShardState.OK,
        s.primary,
        s.replicas,
    )
    assert "FAILOVER timed out" in after.note and after.forks == ()


def test_unknown_databases_and_shards_fail() -> None:
    log = cluster(3)
    assert log.create("d", replicas=1) == c.OK
    assert log.cmd(Op.SHARD_FENCE, "x", 0, 1, 0, "").error.startswith("ERR no such database")
    assert "no shard 5" in log.cmd(Op.SHARD_FENCE, "d", 5, 1, 0, "").error


def test_forks_keep_the_last_eight() -> None:
    log = cluster(2)
    assert log.create("d", replicas=1) == c.OK
    for _ in range(FORKS_KEPT + 3):
        s = shard0(log)
        assert log.cmd(Op.SHARD_FENCE, "d", 0, s.epoch, 0, "") == c.OK
        winner = s.replicas[0].node
        assert log.cmd(Op.SHARD_REPORT, "d", 0, s.epoch + 1, winner, "r", s.epoch) == c.OK
        assert log.cmd(Op.SHARD_PROMOTE, "d", 0, s.epoch + 1, winner, "n") == c.OK
    s = shard0(log)
    assert len(s.forks) == FORKS_KEPT
    assert [f.epoch for f in s.forks] == list(range(s.epoch - FORKS_KEPT + 1, s.epoch + 1))


def test_move_allocates_a_port_and_checks_the_nodes() -> None:
    log = cluster(4)
    assert log.create("d", replicas=1) == c.OK
    s = shard0(log)
    used = {i.port for i in s.instances()}
    free = next(n for n in ("n1", "n2", "n3", "n4") if s.instance_on(n) is None)
    assert not log.cmd(Op.SHARD_MOVE, "d", 0, s.primary.node, free).ok  # not a replica
    assert not log.cmd(Op.SHARD_MOVE, "d", 0, s.replicas[0].node, s.primary.node).ok
    assert not log.cmd(Op.SHARD_MOVE, "d", 0, s.replicas[0].node, "n9").ok
    assert log.cmd(Op.SHARD_MOVE, "d", 0, s.replicas[0].node, free) == c.OK
    moved = shard0(log)
    assert moved.primary == s.primary and moved.epoch == s.epoch
    assert moved.replicas[0].node == free and moved.replicas[0].port not in used
    # A node in maintenance takes no new instance.
    other = next(n for n in ("n1", "n2", "n3", "n4") if moved.instance_on(n) is None)
    assert log.cmd(Op.NODE_MAINTENANCE, other, "on") == c.OK
    assert "cannot take shards" in log.cmd(Op.SHARD_MOVE, "d", 0, free, other).error


def test_maintenance_flag_and_snapshots() -> None:
    log = cluster(3)
    assert log.cmd(Op.NODE_MAINTENANCE, "n2", "on") == c.OK
    assert log.store.members["n2"].maintenance
    assert not log.cmd(Op.NODE_MAINTENANCE, "n2", "maybe").ok
    assert not log.cmd(Op.NODE_MAINTENANCE, "n9", "on").ok
    assert "n2" not in dbops.eligible_nodes(log.store)
    # member.put keeps the flag.
    assert log.cmd(Op.MEMBER_PUT, "n2", "127.0.0.1:7777", "127.0.0.1:7877") == c.OK
    assert log.store.members["n2"].maintenance
    restored = MetadataStore.restore(log.store.snapshot())
    assert restored.snapshot() == log.store.snapshot()
    assert log.cmd(Op.NODE_MAINTENANCE, "n2", "off") == c.OK
    assert not log.store.members["n2"].maintenance


def test_a_version_2_snapshot_restores() -> None:
    log = cluster(3)
    v = msgpack.unpackb(log.store.snapshot(), raw=False, strict_map_key=False)
    v[0] = 2
    v[4] = [m[:5] for m in v[4]]
    restored = MetadataStore.restore(msgpack.packb(v, use_bin_type=True))
    assert not any(m.maintenance for m in restored.members.values())
    assert restored.snapshot() == log.store.snapshot()


def test_db_options_failover_fields() -> None:
    log = cluster(3)
    assert (
        log.create(
            "d",
            replicas=2,
            failover_guarantee=2,
            failover_policy="available",
            failover_profile="low",
        )
        == c.OK
    )
    d = db(log, "d")
    assert (d.failover_guarantee, d.failover_policy, d.failover_profile) == (2, "available", "low")
    assert log.create("e") == c.OK and db(log, "e").failover_guarantee == 0
    assert log.create("f", replicas=1) == c.OK and db(log, "f").failover_guarantee == 1
    with pytest.raises(ValueError, match="wait:0 to wait:1"):
        DbOptions(replicas=1, failover_guarantee=2).check()
    with pytest.raises(ValueError, match="policy"):
        DbOptions(failover_policy="yolo").check()
    with pytest.raises(ValueError, match="profile"):
        DbOptions(failover_profile="medium").check()
    assert DbOptions.from_bytes(DbOptions().to_bytes()) == DbOptions()
    o = DbOptions(replicas=2, failover_guarantee=0, failover_policy="available")
    assert DbOptions.from_bytes(o.to_bytes()) == o


# -- random sequences ------------------------------------------------------------------

NODES = ["n1", "n2", "n3", "n4"]
op_st = st.one_of(
    st.tuples(st.just(Op.SHARD_DOWN), st.integers(1, 6), st.sampled_from(NODES)),
    st.tuples(st.just(Op.SHARD_FENCE), st.integers(1, 6), st.sampled_from(["", *NODES])),
    st.tuples(
        st.just(Op.SHARD_REPORT),
        st.integers(1, 6),
        st.sampled_from(NODES),
        st.sampled_from(["a", "b"]),
        st.integers(0, 5),
    ),
    st.tuples(st.just(Op.SHARD_PROMOTE), st.integers(1, 6), st.sampled_from(NODES)),
    st.tuples(st.just(Op.SHARD_ABORT), st.integers(1, 6)),
    st.tuples(st.just(Op.SHARD_MOVE), st.sampled_from(NODES), st.sampled_from(NODES)),
    st.tuples(st.just(Op.NODE_MAINTENANCE), st.sampled_from(NODES), st.sampled_from(["on", "off"])),
)


def _run(log: Log, o: tuple) -> c.Result:  # type: ignore[type-arg]
    op = o[0]
    if op is Op.SHARD_DOWN:
        return log.cmd(op, "d", 0, o[1], o[2], "why")
    if op is Op.SHARD_FENCE:
        return log.cmd(op, "d", 0, o[1], int(bool(o[2])), o[2])
    if op is Op.SHARD_REPORT:
        return log.cmd(op, "d", 0, o[1], o[2], o[3], o[4])
    if op is Op.SHARD_PROMOTE:
        return log.cmd(op, "d", 0, o[1], o[2], "")
    if op is Op.SHARD_ABORT:
        return log.cmd(op, "d", 0, o[1], "why")
    if op is Op.SHARD_MOVE:
        return log.cmd(op, "d", 0, o[1], o[2])
    return log.cmd(op, o[1], o[2])


@given(ops=st.lists(op_st, max_size=40), cut=st.integers(0, 40))
@settings(max_examples=150, deadline=None)
def test_random_ops_keep_the_invariants(ops: list[tuple], cut: int) -> None:  # type: ignore[type-arg]
    log = cluster(4)
    assert log.create("d", replicas=2) == c.OK
    prev = shard0(log)
    snap = log.store.snapshot()
    for i, o in enumerate(ops):
        before = log.store.record(RecordKind.DATABASE, "d")
        r = _run(log, o)
        s = shard0(log)
        if not r.ok:
            assert log.store.record(RecordKind.DATABASE, "d") == before
        assert s.epoch >= prev.epoch
        assert (s.state is ShardState.FAILING) == (s.fence is not None)
        nodes = [inst.node for inst in s.instances()]
        assert len(set(nodes)) == len(nodes) == 3
        if s.primary != prev.primary:  # only a promotion changes the primary
            assert o[0] is Op.SHARD_PROMOTE and s.forks[-1].epoch == s.epoch
        prev = s
        if i == cut:
            snap = log.store.snapshot()
    # A member restored from a snapshot part-way applies the rest to the same state.
    twin = MetadataStore.restore(snap)
    for e in log.entries[twin.applied_index :]:
        twin.apply_entry(e)
    assert twin.snapshot() == log.store.snapshot()
