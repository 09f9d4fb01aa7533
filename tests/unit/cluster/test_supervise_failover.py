"""The node's failover decisions (ackdb.cluster.shardspec modes, the supervisor's Freeze /
CheckDiverged / HandOver, held primaries, ackdb.cluster.leases): driven by the metadata
as the ops leave it (the real state machine), as the agent would see it."""

from __future__ import annotations

from typing import TypeVar

from tests.unit.cluster.test_dbops import Log, cluster

from ackdb.cluster import commands as c
from ackdb.cluster import dbops
from ackdb.cluster.commands import Op
from ackdb.cluster.databases import Fork, Persistence
from ackdb.cluster.leases import down_facts, lease_targets
from ackdb.cluster.reconcile import Submit
from ackdb.cluster.retirecheck import retire_checks
from ackdb.cluster.shardspec import (
    Mode,
    Observed,
    ShardSpec,
    desired_units,
    parse_replication_info,
    shard_config,
)
from ackdb.cluster.supervise import (
    CHECK_STARTS_MAX,
    Action,
    CheckDiverged,
    Freeze,
    HandOver,
    Phase,
    RemoveDir,
    SetReplication,
    Start,
    Stop,
    Supervisor,
)

T = TypeVar("T")
UNIT = "shards/{uid}-0"


def of(kind: type[T], actions: list[Action]) -> list[T]:
    return [a for a in actions if isinstance(a, kind)]


class Node:
    """One node's supervisor following the metadata of a 3-node cluster with database
    ``d`` (1 shard, 2 replicas: an instance on every node)."""

    def __init__(self, log: Log, node: str) -> None:
        self.log, self.node = log, node
        self.sup = Supervisor()
        self.now = 0
        self.pid = 100
        self.carry(self.sup.set_desired(self.specs(), 0))
        self.unit = next(iter(self.sup.units))
        self.sup.probed(self.unit, self.pid, Observed(role="master"), 0)

    def specs(self) -> dict[str, ShardSpec]:
        m = self.log.store
        out = desired_units(self.node, dbops.databases(m), dbops.hosts(m), proxies=False)
        return {k: v for k, v in out.items() if isinstance(v, ShardSpec)}

    def spec(self) -> ShardSpec:
        return self.specs()[self.unit]

    def carry(self, acts: list[Action]) -> list[Action]:
        for a in of(Start, acts):
            self.pid += 1
            self.sup.started(a.unit, self.pid, self.now)
        return acts

    def follow(self) -> list[Action]:
        return self.carry(self.sup.set_desired(dict(self.specs()), self.now))

    def tick(self, ms: int) -> list[Action]:
        self.now += ms
        return self.carry(self.sup.tick(self.now))


def world() -> tuple[Log, dict[str, Node]]:
    log = cluster(3)
    assert log.create("d", replicas=2) == c.OK
    return log, {n: Node(log, n) for n in ("n1", "n2", "n3")}


def shard(log: Log):  # type: ignore[no-untyped-def]
    return dbops.databases(log.store)[0].shards[0]


def test_specs_carry_the_mode_and_the_config_the_lease() -> None:
    log, nodes = world()
    s = shard(log)
    p, r = nodes[s.primary.node].spec(), nodes[s.replicas[0].node].spec()
    assert (p.mode, p.lease, p.timeout_ms) == (Mode.PRIMARY, True, 1000)
    assert r.mode is Mode.REPLICA and r.follows == ("127.0.0.1", s.primary.port)
    assert "ackdb-lease yes" in shard_config(p, "/d", "x").splitlines()
    assert f"replicaof 127.0.0.1 {s.primary.port}" in shard_config(r, "/d", "x").splitlines()
    # No replicas: no failover, no lease.
    assert log.create("solo") == c.OK
    solo = [
        v
        for n in ("n1", "n2", "n3")
        for v in desired_units(n, dbops.databases(log.store), {}, False).values()
        if isinstance(v, ShardSpec) and v.db == "solo"
    ]
    assert solo and not solo[0].lease and solo[0].timeout_ms == 0
    assert "ackdb-lease" not in shard_config(solo[0], "/d", "x")


def test_unplanned_failover_freezes_everyone_until_reported_then_follows() -> None:
    log, nodes = world()
    s = shard(log)
    old, r1, r2 = s.primary.node, s.replicas[0].node, s.replicas[1].node
    assert log.cmd(Op.SHARD_FENCE, "d", 0, 1, 0, "") == c.OK
    for n in nodes.values():
        assert n.spec().mode is Mode.FROZEN and "replicaof" not in shard_config(n.spec(), "/", "x")
        assert of(Freeze, n.follow()) == [Freeze(n.unit, 2)]
        assert of(Freeze, n.tick(100)) == []  # not again so soon
        assert of(Freeze, n.tick(500)) == [Freeze(n.unit, 2)]  # no report yet: again
    for node, offset in ((old, 10), (r1, 12), (r2, 11)):
        assert log.cmd(Op.SHARD_REPORT, "d", 0, 2, node, "a" * 40, offset) == c.OK
    for n in nodes.values():
        assert n.spec().reported
        n.follow()
        assert of(Freeze, n.tick(1000)) == []  # reported: no more freezing
    assert log.cmd(Op.SHARD_PROMOTE, "d", 0, 2, r1, "") == c.OK
    # The winner becomes a primary; the others check their divergence, then follow it.
    acts = nodes[r1].follow()
    assert of(CheckDiverged, acts) == []
    (sr,) = of(SetReplication, acts)
    assert sr.spec.mode is Mode.PRIMARY
    fork = Fork(2, "a" * 40, 12)
    for n in (nodes[old], nodes[r2]):
        acts = n.follow()
        kinds = [type(a) for a in acts if isinstance(a, (CheckDiverged, SetReplication))]
        assert kinds == [CheckDiverged, SetReplication]
        assert of(CheckDiverged, acts)[0].forks == (fork,)
        spec = n.spec()
        assert spec.mode is Mode.REPLICA and spec.forks == (fork,)
        # Restarted, it comes up without replicaof (a fenced primary) until checked.
        assert "replicaof" not in shard_config(spec, "/", "x")
        # The probe repairs a replica still frozen (a check or REPLICAOF that failed).
        primary = shard(log).primary
        frozen = Observed("slave", 5, "127.0.0.1", primary.port, frozen=True)
        repair = n.sup.probed(n.unit, n.pid, frozen, n.now + 5000)
        assert [type(a) for a in repair if not hasattr(a, "level")] == [
            CheckDiverged,
            SetReplication,
        ]


def test_planned_failover_hands_over_once_and_holds_the_replicas() -> None:
    log, nodes = world()
    s = shard(log)
    target = s.replicas[1]
    assert log.cmd(Op.SHARD_FENCE, "d", 0, 1, 1, target.node) == c.OK
    p = nodes[s.primary.node]
    assert p.spec().mode is Mode.HANDOVER and p.spec().target == ("127.0.0.1", target.port)
    assert of(HandOver, p.follow()) == [HandOver(p.unit, "127.0.0.1", target.port, 2)]
    assert of(HandOver, p.tick(3000)) == []  # once per epoch
    # FAILOVER made the old primary a replica: no repair while the failover runs.
    seen = Observed("slave", 5, "127.0.0.1", target.port, True)
    assert of(SetReplication, p.sup.probed(p.unit, p.pid, seen, p.now)) == []
    for r in s.replicas:
        n = nodes[r.node]
        assert n.spec().mode is Mode.HOLD
        assert of(SetReplication, n.follow()) == []
        assert of(SetReplication, n.sup.probed(n.unit, n.pid, Observed("master"), 99)) == []
    assert log.cmd(Op.SHARD_REPORT, "d", 0, 2, s.primary.node, "a" * 40, 77) == c.OK
    assert log.cmd(Op.SHARD_PROMOTE, "d", 0, 2, target.node, "planned failover") == c.OK
    assert shard(log).forks == (Fork(2, "a" * 40, 77),)
    assert of(SetReplication, nodes[target.node].follow())[0].spec.mode is Mode.PRIMARY
    acts = p.follow()
    assert [type(a) for a in acts if isinstance(a, (CheckDiverged, SetReplication))] == [
        CheckDiverged,
        SetReplication,
    ]


def test_an_exited_primary_is_held_and_reported_down_at_once() -> None:
    log, nodes = world()
    s = shard(log)
    p = nodes[s.primary.node]
    assert lease_targets(log.store, p.node) == [(p.unit, 1)]
    assert lease_targets(log.store, s.replicas[0].node) == []
    assert down_facts(log.store, p.node, p.sup.units, p.now) == []
    p.sup.exited(p.unit, p.pid, "killed by SIGKILL", 10)
    u = p.sup.units[p.unit]
    assert u.phase is Phase.RESTARTING and u.held
    assert of(Start, p.tick(60_000)) == []  # never restarted as the primary
    (down,) = down_facts(log.store, p.node, p.sup.units, p.now)
    assert down == Submit(Op.SHARD_DOWN, ("d", 0, 1, p.node, "its process exited"))
    assert log.cmd(down.op, *down.args) == c.OK
    assert lease_targets(log.store, p.node) == []  # a shard reported down gets no lease
    assert down_facts(log.store, p.node, p.sup.units, p.now) == []
    # The fence moves the failover on: the process starts again, frozen.
    assert log.cmd(Op.SHARD_FENCE, "d", 0, 1, 0, "") == c.OK
    p.follow()
    (start,) = of(Start, p.tick(10))
    assert isinstance(start.spec, ShardSpec) and start.spec.mode is Mode.FROZEN


def test_a_silent_primary_is_reported_down_after_its_timeout() -> None:
    log, nodes = world()
    p = nodes[shard(log).primary.node]
    p.sup.probed(p.unit, p.pid, Observed("master"), 0)
    assert down_facts(log.store, p.node, p.sup.units, 999) == []
    p.sup.answered(p.unit, p.pid, 500)  # a lease renewal's reply counts
    assert down_facts(log.store, p.node, p.sup.units, 1499) == []
    (down,) = down_facts(log.store, p.node, p.sup.units, 1500)
    assert down.args[4] == "no answer for 1000 ms"
    # Failing-over primaries are probed every quarter of their timeout.
    probes = [a for a in p.tick(2000) if type(a).__name__ == "Probe"]
    assert len(probes) == 1 and p.sup.units[p.unit].next_probe_ms == p.now + 250


def test_a_first_start_is_not_judged() -> None:
    log = cluster(3)
    assert log.create("d", replicas=1) == c.OK
    s = shard(log)
    sup = Supervisor()
    sup.set_desired(desired_units(s.primary.node, dbops.databases(log.store), {}, False), 0)
    assert down_facts(log.store, s.primary.node, sup.units, 50_000) == []


def test_parse_the_fencing_fields() -> None:
    o = parse_replication_info("role:master\r\nackdb_frozen:1\r\nackdb_epoch:4\r\n")
    assert (o.frozen, o.epoch) == (True, 4)
    assert not parse_replication_info("role:master\r\n").frozen


def test_a_primary_that_never_answered_restarts_as_before() -> None:
    # (a port still taken, a bad config: it served nothing, so nothing is at stake)
    log = cluster(3)
    assert log.create("d", replicas=1) == c.OK
    s = shard(log)
    sup = Supervisor()
    acts = sup.set_desired(desired_units(s.primary.node, dbops.databases(log.store), {}, False), 0)
    (start,) = of(Start, acts)
    sup.started(start.unit, 100, 0)
    sup.exited(start.unit, 100, "exit code 1", 50)
    assert not sup.units[start.unit].held
    assert of(Start, sup.tick(1000)) != []
    assert down_facts(log.store, s.primary.node, sup.units, 1000) == []


def _adopted(
    log: Log, node: str, pid: int | None, clean_stop: tuple[str, int] | None = None
) -> tuple[Supervisor, str, list[Action]]:
    """A new agent on ``node`` that found the shard's unit on disk (its process ``pid``;
    ``clean_stop``: its clean-stop mark)."""
    specs = desired_units(node, dbops.databases(log.store), {}, False)
    (unit,) = specs
    sup = Supervisor()
    sup.adopt(unit, pid, 0, clean_stop)
    return sup, unit, sup.set_desired(specs, 0)


def test_a_primary_found_gone_at_start_up_is_held_and_reported_down() -> None:
    # The node came back faster than node_timeout_ms (docs/failover.md): its primary is
    # not started again as a primary, which may have lost its last writes, but held
    # until the failover compares it with its replicas.
    log = cluster(3)
    assert log.create("d", replicas=2) == c.OK
    s = shard(log)
    sup, unit, acts = _adopted(log, s.primary.node, None)
    assert of(Start, acts) == [] and sup.units[unit].held
    assert of(Start, sup.tick(60_000)) == []
    (down,) = down_facts(log.store, s.primary.node, sup.units, 60_000)
    assert down == Submit(
        Op.SHARD_DOWN, ("d", 0, 1, s.primary.node, "its process was gone at start-up")
    )
    assert log.cmd(down.op, *down.args) == c.OK
    assert log.cmd(Op.SHARD_FENCE, "d", 0, 1, 0, "") == c.OK
    specs = desired_units(s.primary.node, dbops.databases(log.store), {}, False)
    sup.set_desired(specs, 60_010)
    (start,) = of(Start, sup.tick(60_020))
    assert isinstance(start.spec, ShardSpec) and start.spec.mode is Mode.FROZEN
    assert "replicaof" not in shard_config(start.spec, "/d", "x")
    sup.started(unit, 200, 60_020)
    # Once it answers, it is frozen and reports its offset from disk, as the replicas do.
    assert of(Freeze, sup.probed(unit, 200, Observed("master"), 60_030)) == [Freeze(unit, 2)]


def test_what_start_up_does_not_hold() -> None:
    log = cluster(3)
    assert log.create("d", replicas=1) == c.OK
    assert log.create("solo") == c.OK
    s = shard(log)
    # A running primary is adopted as it is (only the agent restarted).
    sup, unit, acts = _adopted(log, s.primary.node, 555)
    assert not sup.units[unit].held and sup.units[unit].pid == 555
    # A replica found gone restarts as a replica.
    sup, unit, acts = _adopted(log, s.replicas[0].node, None)
    assert not sup.units[unit].held
    (start,) = of(Start, sup.tick(1))
    assert isinstance(start.spec, ShardSpec) and start.spec.mode is Mode.REPLICA
    # A database without replicas never fails over: its primary restarts as before.
    solo = dbops.databases(log.store)[1].shards[0]
    specs = {
        k: v
        for k, v in desired_units(solo.primary.node, dbops.databases(log.store), {}, False).items()
        if isinstance(v, ShardSpec) and v.db == "solo"
    }
    (unit,) = specs
    sup = Supervisor()
    sup.adopt(unit, None, 0)
    sup.set_desired(specs, 0)
    assert not sup.units[unit].held
    assert of(Start, sup.tick(1)) != []
    # Under aof-always it holds every write it acknowledged: it restarts as the primary.
    log3 = cluster(3)
    assert log3.create("a", replicas=1, persistence=Persistence.AOF_ALWAYS) == c.OK
    sup, unit, acts = _adopted(log3, shard(log3).primary.node, None)
    assert not sup.units[unit].held
    (start,) = of(Start, sup.tick(1))
    assert isinstance(start.spec, ShardSpec) and start.spec.mode is Mode.PRIMARY
    for p in (Persistence.AOF_EVERYSEC, Persistence.SNAPSHOT):
        log3 = cluster(3)
        assert log3.create("a", replicas=1, persistence=p) == c.OK
        sup, unit, _ = _adopted(log3, shard(log3).primary.node, None)
        assert sup.units[unit].held
    # A new database's primary (no directory yet: nothing adopted) starts at once.
    sup = Supervisor()
    fresh = desired_units(s.primary.node, dbops.databases(log.store), {}, False)
    assert of(Start, sup.set_desired(fresh, 0)) != []


def test_a_primary_that_stopped_cleanly_starts_again_as_the_primary() -> None:
    # `ackdb cluster down` then `up`: each primary exited with status 0 at its agent's
    # stop (its AOF fsynced, or its final snapshot saved), so it holds every write it
    # acknowledged and starts again as it was -- no failover on every restart.
    for p in (Persistence.AOF_EVERYSEC, Persistence.SNAPSHOT):
        log = cluster(3)
        assert log.create("d", replicas=1, persistence=p) == c.OK
        s = shard(log)
        sup, unit, acts = _adopted(log, s.primary.node, None, ("primary", s.epoch))
        assert not sup.units[unit].held
        (start,) = of(Start, sup.tick(1))
        assert isinstance(start.spec, ShardSpec) and start.spec.mode is Mode.PRIMARY
        # A mark of another role or epoch says nothing about this primary: held.
        for mark in (("replica", s.epoch), ("primary", s.epoch + 1), ("frozen", s.epoch)):
            sup, unit, _ = _adopted(log, s.primary.node, None, mark)
            assert sup.units[unit].held, mark
    # Persistence none keeps nothing, clean stop or not: held.
    log = cluster(3)
    assert log.create("d", replicas=1, persistence=Persistence.NONE) == c.OK
    s = shard(log)
    sup, unit, _ = _adopted(log, s.primary.node, None, ("primary", s.epoch))
    assert sup.units[unit].held


def _moved_old_primary() -> tuple[Log, str, str]:
    """Database d (1 shard, 1 replica) failed over, then the old primary's slot moved to
    the third node (replica high availability): (log, the old primary's node, the unit)."""
    log = cluster(3)
    assert log.create("d", replicas=1) == c.OK
    s = shard(log)
    old, new = s.primary.node, s.replicas[0].node
    assert log.cmd(Op.SHARD_FENCE, "d", 0, 1, 0, "") == c.OK
    assert log.cmd(Op.SHARD_REPORT, "d", 0, 2, new, "a" * 40, 50) == c.OK
    assert log.cmd(Op.SHARD_PROMOTE, "d", 0, 2, new, "") == c.OK
    third = next(n for n in ("n1", "n2", "n3") if n not in (old, new))
    assert log.cmd(Op.SHARD_MOVE, "d", 0, old, third) == c.OK
    return log, old, UNIT.format(uid=dbops.databases(log.store)[0].uid)


def test_a_unit_that_left_its_node_is_checked_before_its_directory_goes() -> None:
    log, old, unit = _moved_old_primary()
    dbs = dbops.databases(log.store)
    assert desired_units(old, dbs, {}, False) == {}
    checks = retire_checks([unit], dbs, "127.0.0.1", {unit: 20000})
    spec = checks[unit]
    assert (spec.mode, spec.forks, spec.primary, spec.port) == (
        Mode.FROZEN,
        (Fork(2, "a" * 40, 50),),
        None,
        20000,
    )
    assert "replicaof" not in shard_config(spec, "/d", "x")
    sup = Supervisor()
    sup.adopt(unit, None, 0)
    acts = sup.set_desired({}, 0, checks)
    (start,) = of(Start, acts)
    assert start.spec == spec and of(RemoveDir, acts) == []
    sup.started(unit, 300, 0)
    sup.probed(unit, 300, Observed("master"), 10)
    assert of(CheckDiverged, sup.tick(20)) == [CheckDiverged(unit, spec.forks)]
    assert of(CheckDiverged, sup.tick(1000)) == []  # in flight: not again so soon
    assert sup.checked(unit, False, 1500) == []  # failed: checked again later
    assert of(CheckDiverged, sup.tick(5020)) == [CheckDiverged(unit, spec.forks)]
    assert sup.set_desired({}, 5030, checks) == []  # (a later pass changes nothing)
    (stop,) = of(Stop, sup.checked(unit, True, 5040))
    assert stop == Stop(unit, 300)
    assert of(RemoveDir, sup.exited(unit, 300, "exit code 0", 5100)) == [
        RemoveDir(unit, keep_diverged=True)
    ]
    assert unit not in sup.units


def test_what_leaves_without_a_check() -> None:
    log, old, unit = _moved_old_primary()
    dbs = dbops.databases(log.store)
    # No port known (no config file): nothing to start it on.
    assert retire_checks([unit], dbs, "h", {}) == {}
    # A shard whose history never forked holds nothing another instance lacks.
    log2 = cluster(3)
    assert log2.create("e", replicas=1) == c.OK
    e = dbops.databases(log2.store)[0]
    assert retire_checks([UNIT.format(uid=e.uid)], [e], "h", {UNIT.format(uid=e.uid): 1}) == {}
    sup = Supervisor()
    sup.adopt(unit, None, 0)
    assert of(RemoveDir, sup.set_desired({}, 0, {})) == [RemoveDir(unit)]
    # A database deleted while its unit was being checked: nothing is kept.
    sup = Supervisor()
    sup.adopt(unit, None, 0)
    sup.set_desired({}, 0, retire_checks([unit], dbs, "h", {unit: 20000}))
    sup.started(unit, 300, 0)
    (stop,) = of(Stop, sup.set_desired({}, 10, {}))
    assert of(RemoveDir, sup.exited(unit, 300, "exit code 0", 20)) == [RemoveDir(unit)]


def test_a_check_that_never_starts_leaves_the_directory() -> None:
    log, old, unit = _moved_old_primary()
    checks = retire_checks([unit], dbops.databases(log.store), "h", {unit: 20000})
    sup = Supervisor()
    sup.adopt(unit, None, 0)
    sup.set_desired({}, 0, checks)
    now, pid = 0, 300
    for _ in range(10):
        sup.started(unit, pid, now)
        acts = sup.exited(unit, pid, "exit code 1", now + 1)
        assert of(RemoveDir, acts) == []
        if unit not in sup.units:
            break
        now, pid = now + 10_000, pid + 1
        sup.tick(now)
    assert unit not in sup.units  # given up after CHECK_STARTS_MAX: the directory stays
    assert pid - 300 + 1 == CHECK_STARTS_MAX
