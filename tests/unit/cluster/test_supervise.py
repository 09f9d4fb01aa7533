"""The shard supervisor's decider (cluster/supervise.py): desired units from the metadata,
crash -> restart with back-off, role change -> REPLICAOF (never a restart), deletion ->
stop and removal, adoption after an agent restart, and the shard config file."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from ackdb.cluster.databases import Database, DbType, Instance, Persistence, Shard, slot_ranges
from ackdb.cluster.shardspec import (
    Observed,
    ProxySpec,
    ShardSpec,
    desired_units,
    parse_replication_info,
    shard_config,
)
from ackdb.cluster.status import instance_line, parse_status
from ackdb.cluster.supervise import (
    Action,
    Kill,
    Note,
    Phase,
    Probe,
    RemoveDir,
    SetReplication,
    Start,
    Stop,
    Supervisor,
    Timing,
)

T = TypeVar("T")
HOSTS = {"n1": "127.0.0.1", "n2": "127.0.0.2", "n3": "127.0.0.3"}


def db(
    name: str = "default", uid: int = 7, shards: int = 2, epoch: int = 1, replicated: bool = True
) -> Database:
    """Shard i's primary on n(i+1), its replica (when ``replicated``) on the next node."""
    nodes = ["n1", "n2", "n3"]
    out = []
    for i, (first, last) in enumerate(slot_ranges(shards)):
        p, r = nodes[i % 3], nodes[(i + 1) % 3]
        replicas = (Instance(r, 30001 + 2 * i),) if replicated else ()
        out.append(Shard(i, first, last, epoch, Instance(p, 30000 + 2 * i), replicas))
    return Database(
        name,
        uid,
        DbType.SHARDED,
        12000,
        replicated,
        int(replicated),
        Persistence.AOF_EVERYSEC,
        "",
        False,
        tuple(out),
    )


def actions_of(kind: type[T], actions: list[Action]) -> list[T]:
    return [a for a in actions if isinstance(a, kind)]


def test_desired_units_place_each_instance_on_its_node() -> None:
    want = desired_units("n2", [db()], HOSTS, proxies=True)
    assert sorted(want) == ["proxies/7", "shards/7-0", "shards/7-1"]
    r = want["shards/7-0"]
    assert isinstance(r, ShardSpec)
    assert (r.host, r.port, r.primary) == ("127.0.0.2", 30001, ("127.0.0.1", 30000))
    p = want["shards/7-1"]
    assert isinstance(p, ShardSpec) and p.primary is None and p.port == 30002
    assert want["proxies/7"] == ProxySpec("default", 7, "127.0.0.2", 12000)
    assert "proxies/7" not in desired_units("n2", [db()], HOSTS, proxies=False)


def started(
    s: Supervisor, now: int = 0, node: str = "n1", dbs: list[Database] | None = None
) -> dict[str, int]:
    """Everything desired on ``node`` started, pids 100, 101, ..."""
    acts = s.set_desired(desired_units(node, dbs or [db()], HOSTS, proxies=False), now)
    pids = {}
    for i, a in enumerate(actions_of(Start, acts)):
        assert isinstance(a, Start)
        s.started(a.unit, 100 + i, now)
        pids[a.unit] = 100 + i
    return pids


def test_new_units_start_and_run_once_probed() -> None:
    s = Supervisor()
    pids = started(s, dbs=[db(replicated=False)])  # (a failing-over primary: faster)
    assert sorted(pids) == ["shards/7-0"]  # n1: shard 0's primary (shard 1 is n2's and n3's)
    unit = "shards/7-0"
    assert s.units[unit].phase is Phase.STARTING
    probes = actions_of(Probe, s.tick(1000))
    assert [a.unit for a in probes if isinstance(a, Probe)] == sorted(pids)
    s.probed(unit, pids[unit], Observed(role="master"), 1001)
    assert s.units[unit].phase is Phase.RUNNING
    assert actions_of(Probe, s.tick(1500)) == []  # one in flight per unit, once a second


def test_crash_restarts_with_doubling_backoff_reset_after_staying_up() -> None:
    t = Timing()
    s = Supervisor(t)
    # (a primary of a database that fails over is held instead: test_supervise_failover)
    unit, pid = next(iter(started(s, dbs=[db(replicated=False)]).items()))
    now = 0
    delays = []
    for _ in range(8):
        s.exited(unit, pid, "killed by SIGKILL", now)
        u = s.units[unit]
        assert u.phase is Phase.RESTARTING
        delays.append(u.restart_at_ms - now)
        assert actions_of(Start, s.tick(u.restart_at_ms - 1)) == []
        now = u.restart_at_ms
        assert [a.unit for a in actions_of(Start, s.tick(now))] == [unit]
        pid += 10
        s.started(unit, pid, now)
    assert delays == [100, 200, 400, 800, 1600, 3200, 5000, 5000]
    now += t.stable_ms  # up long enough: the next crash starts from the first delay
    s.exited(unit, pid, "exit code 1", now)
    assert s.units[unit].restart_at_ms - now == 100
    assert s.units[unit].restarts == 9


def test_a_start_that_fails_is_retried_like_a_crash() -> None:
    s = Supervisor()
    acts = s.set_desired(desired_units("n1", [db()], HOSTS, False), 0)
    unit = actions_of(Start, acts)[0].unit
    out = s.exited(unit, None, "could not start: no such file", 0)
    assert s.units[unit].phase is Phase.RESTARTING
    assert any(isinstance(a, Note) and "could not start" in a.text for a in out)


def test_role_change_reconfigures_live_never_restarts() -> None:
    s = Supervisor()
    d = db()
    pids = started(s, node="n2")
    unit = "shards/7-0"  # n2 is its replica
    assert isinstance(s.units[unit].spec, ShardSpec)
    s.probed(
        unit, pids[unit], Observed(role="slave", master_host="127.0.0.1", master_port=30000), 1
    )
    # failover: n2's instance becomes the primary, n1's its replica, under epoch 2
    sh = d.shards[0]
    promoted = replace(sh, epoch=2, primary=sh.replicas[0], replicas=(sh.primary,))
    d2 = replace(d, shards=(promoted, *d.shards[1:]))
    acts = s.set_desired(desired_units("n2", [d2], HOSTS, False), 10)
    assert actions_of(Stop, acts) == [] and actions_of(Start, acts) == []
    (rc,) = actions_of(SetReplication, acts)
    assert isinstance(rc, SetReplication) and rc.pid == pids[unit] and rc.spec.primary is None
    # the probe still sees the old role (the command is in flight): no resend yet
    old = Observed(role="slave", master_host="127.0.0.1", master_port=30000)
    assert actions_of(SetReplication, s.probed(unit, pids[unit], old, 500)) == []
    # still wrong after the retry interval: sent again
    again = s.probed(unit, pids[unit], old, 10 + Timing().reconf_retry_ms)
    assert len(actions_of(SetReplication, again)) == 1
    assert s.probed(unit, pids[unit], Observed(role="master"), 5000) == []


def test_probe_finds_a_wrong_role_and_repairs_it() -> None:
    s = Supervisor()
    pids = started(s, node="n2")
    unit = "shards/7-0"
    out = s.probed(unit, pids[unit], Observed(role="master"), 1)  # should be a replica
    (rc,) = actions_of(SetReplication, out)
    assert isinstance(rc, SetReplication) and rc.spec.primary == ("127.0.0.1", 30000)


def test_change_beyond_replication_restarts() -> None:
    s = Supervisor()
    pids = started(s)
    unit = "shards/7-0"
    d2 = replace(db(), persistence=Persistence.NONE)
    acts = s.set_desired(desired_units("n1", [d2], HOSTS, False), 5)
    assert actions_of(Stop, acts) == [Stop(unit, pids[unit])]
    out = s.exited(unit, pids[unit], "exit code 0", 50)
    (st,) = actions_of(Start, out)
    assert isinstance(st, Start) and isinstance(st.spec, ShardSpec)
    assert st.spec.persistence is Persistence.NONE


def test_deleted_database_is_stopped_then_removed() -> None:
    s = Supervisor()
    pids = started(s)
    acts = s.set_desired({}, 10)
    assert sorted(actions_of(Stop, acts), key=str) == sorted(
        (Stop(u, p) for u, p in pids.items()), key=str
    )
    for u, p in pids.items():
        assert s.units[u].phase is Phase.STOPPING
        assert actions_of(Probe, s.tick(5000)) == []
        out = s.exited(u, p, "exit code 0", 20)
        assert RemoveDir(u) in out
    assert s.units == {}


def test_hung_process_is_killed_then_restarted() -> None:
    t = Timing()
    s = Supervisor(t)
    unit, pid = next(iter(started(s).items()))
    s.probed(unit, pid, Observed(role="master"), 100)
    now = 100
    while True:
        now += 100
        acts = s.tick(now)
        if actions_of(Probe, acts):
            s.probed(unit, pid, None, now)  # no answer
        kills = actions_of(Kill, acts)
        if kills:
            break
    assert now - 100 >= t.hang_ms
    assert kills == [Kill(unit, pid, f"no answer for {now - 100} ms")]
    s.exited(unit, pid, "killed by SIGKILL", now + 5)
    assert s.units[unit].phase is Phase.RESTARTING


def test_adoption_after_an_agent_restart() -> None:
    s = Supervisor()
    s.adopt("shards/7-0", 555, 0)  # still running
    s.adopt("shards/7-2", None, 0)  # its process is gone
    s.adopt("shards/3-0", 777, 0)  # a database deleted while the agent was down
    acts = s.set_desired(desired_units("n1", [db(shards=3)], HOSTS, False), 10)
    assert actions_of(Start, acts) == []  # the dead one waits for the next tick
    assert actions_of(Stop, acts) == [Stop("shards/3-0", 777)]
    assert s.units["shards/7-0"].pid == 555  # adopted: the same process
    probes = s.tick(20)
    assert [a.unit for a in actions_of(Start, probes)] == ["shards/7-2"]
    assert Probe("shards/7-0", 555, s.units["shards/7-0"].spec) in probes
    out = s.probed("shards/7-0", 555, Observed(role="master"), 30)
    assert any(isinstance(a, Note) and "adopted" in a.text for a in out)
    assert s.units["shards/7-0"].phase is Phase.RUNNING


def test_stop_all_stops_everything_and_starts_nothing_again() -> None:
    s = Supervisor()
    pids = started(s)
    acts = s.stop_all()
    assert sorted(a.pid for a in actions_of(Stop, acts)) == sorted(pids.values())
    for u, p in pids.items():
        assert actions_of(Start, s.exited(u, p, "exit code 0", 10)) == []
    assert s.units == {}
    assert s.tick(10_000) == []


def test_parse_replication_info() -> None:
    primary = parse_replication_info(
        "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n"
        "slave0:ip=127.0.0.2,port=30001,state=online,offset=42,lag=0\r\nmaster_repl_offset:42\r\n"
    )
    assert (primary.role, primary.replicas, primary.offset) == ("master", 1, 42)
    replica = parse_replication_info(
        "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:30000\r\nmaster_link_status:up\r\n"
        "master_last_io_seconds_ago:1\r\nslave_repl_offset:40\r\nmaster_repl_offset:40\r\n"
    )
    assert replica == Observed("slave", 40, "127.0.0.1", 30000, True, 0, 1)


def test_shard_config() -> None:
    spec = desired_units("n2", [db()], HOSTS, False)["shards/7-0"]
    assert isinstance(spec, ShardSpec)
    text = shard_config(spec, "/d/shards/7-0/", "ab" * 32)
    lines = text.splitlines()
    for want in (
        "port 30001",
        "bind 127.0.0.2",
        'dir "/d/shards/7-0"',
        'pidfile "/d/shards/7-0/shard.pid"',
        f"requirepass {'ab' * 32}",
        f"masterauth {'ab' * 32}",
        "appendonly yes",
        "appendfsync everysec",
        "replicaof 127.0.0.1 30000",
    ):
        assert want in lines
    none = shard_config(replace(spec, persistence=Persistence.NONE, primary=None), "/d", "x")
    assert 'save ""' in none.splitlines() and "appendonly no" in none.splitlines()
    assert "replicaof" not in none
    assert 'dir "/a \\"b\\\\c"' in shard_config(spec, '/a "b\\c', "x")


def test_instance_lines_parse_back() -> None:
    s = Supervisor()
    pids = started(s, node="n2")
    unit = "shards/7-0"
    seen = Observed("slave", 40, "127.0.0.1", 30000, True, 0, 1)
    s.probed(unit, pids[unit], seen, 1)
    text = instance_line("n2", s.units[unit]) + "\r\n"
    (v,) = parse_status(text).instances
    assert (v.kind, v.name) == ("instance", "default/0")
    assert v.fields["role"] == "replica" and v.fields["seen"] == "replica"
    assert v.fields["offset"] == "40" and v.fields["link"] == "up" and v.fields["last_io"] == "1"
    assert v.fields["state"] == "running" and v.fields["pid"] == str(pids[unit])


def test_an_adopted_unit_waits_for_the_metadata_before_being_judged() -> None:
    t = Timing()
    s = Supervisor(t)
    s.adopt("shards/7-0", 555, 0)
    assert s.tick(t.start_timeout_ms * 2) == []  # no spec yet: no probe, no kill
    s.set_desired(desired_units("n1", [db()], HOSTS, False), t.start_timeout_ms * 2)
    assert actions_of(Kill, s.tick(t.start_timeout_ms * 2 + 1)) == []
