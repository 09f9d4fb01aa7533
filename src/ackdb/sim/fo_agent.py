"""The node agent of the failover simulator: the node-side decisions of issue 15, carried
out against a simulated shard process.

Owns, per incarnation of a node's agent: the shard ``Supervisor`` (cluster/supervise.py,
the real decider: adopt the units an earlier incarnation left, start in the role the
metadata gives, probes, Freeze until reported,
CheckDiverged before following, SetReplication) fed with ``desired_units`` of the applied
metadata; the carrying out of its actions on the node's ``ShardNode`` with the commands
the node shell sends (INFO replication, REPLICAOF, ACKDB.FREEZE, ACKDB.DIVERGED) and the
Raft proposals that follow (shard.report); the lease renewals (a ReadIndex read through
the node's member started at local time ``a``, then ``ACKDB.LEASE <epoch> <a +
lease_ms>`` to each of ``lease_targets``); and ``down_facts`` proposed as they come. Its
clock is its host's (the shard shares it).

Everything goes through the world's ports (member, shard, clock, local calls that a
pause holds); never does IO and reads no real clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ackdb.cluster import dbops
from ackdb.cluster.commands import Op
from ackdb.cluster.failover import HANDOVER_TIMEOUT_MS, profile_of
from ackdb.cluster.leases import down_facts, lease_targets
from ackdb.cluster.shardspec import ShardSpec, desired_units, parse_replication_info, shard_config
from ackdb.cluster.supervise import (
    Action,
    CheckDiverged,
    Freeze,
    HandOver,
    Kill,
    Note,
    Probe,
    SetReplication,
    Start,
    Stop,
    Supervisor,
)
from ackdb.consensus import ProposalDropped
from ackdb.resp.replies import ReplyError, ReplyReader
from ackdb.sim.fo_shard import ShardNode

if TYPE_CHECKING:
    from ackdb.sim.failover_world import FailoverWorld

TICK_MS = 100  # the supervisor's tick (local ms), as node/shards.py's
RETRY_MS = 200  # a shard.down is proposed again at most this often (local ms)
HANDOVER_POLL_MS = 50  # INFO polls while FAILOVER runs (local ms), and for how long
HANDOVER_WAIT_MS = HANDOVER_TIMEOUT_MS + 5000


def _replication_info(s: ShardNode) -> str:
    fields = s.engine.info_fields(s.w.now, mono_ms=s.clock())
    return "".join(f"{k}:{v}\r\n" for k, v in fields)


def _field(info: str, name: str) -> str:
    for line in info.splitlines():
        k, sep, v = line.partition(":")
        if sep and k == name:
            return v.strip()
    return ""


def parse_reply(data: bytes) -> Any:
    r = ReplyReader()
    r.feed(data)
    return r.get()


class Agent:
    def __init__(self, w: FailoverWorld, node_id: str, incarnation: int) -> None:
        self.w = w
        self.id = node_id
        self.incarnation = incarnation
        self.client_id = f"agent-{node_id}.{incarnation}"
        self.seq = 0
        self.alive = True
        self.sup = Supervisor()
        self.desired: dict[str, Any] | None = None
        self.unit_pid: dict[str, int] = {}
        self.skip_follow: set[str] = set()  # units whose CheckDiverged failed
        self._down_last: dict[str, int] = {}

    def start(self) -> None:
        """Adopt the units an earlier agent of this node left on disk (their processes
        died with the node), then tick and renew leases."""
        for unit in sorted(self.w.unit_dirs.get(self.id, ())):
            self.sup.adopt(unit, None, self.now())
        self.w.every(self, TICK_MS, self.tick)
        self.w.every(self, self.w.lease_renew_ms, self.renew)

    def now(self) -> int:
        return self.w.clock(self.id)

    def submit(self, op: Op, args: tuple[bytes | str | int, ...]) -> None:
        self.seq += 1
        self.w.submit(self.id, self.client_id, self.seq, op, args)

    # -- the supervisor --

    def tick(self) -> None:
        if not self.w.caught_up(self.id):
            return  # act on the metadata only once caught up (docs/shards.md)
        meta = self.w.meta(self.id)
        dbs = self.w.databases(self.id)
        desired = desired_units(self.id, dbs, dbops.hosts(meta), proxies=False)
        now = self.now()
        if desired != self.desired:
            self.desired = desired
            self.run(self.sup.set_desired(desired, now))
        self.run(self.sup.tick(now))
        for sub in down_facts(meta, self.id, self.sup.units, now):
            key = repr(sub.args[:3])
            last = self._down_last.get(key)
            if last is None or now - last >= RETRY_MS:
                self._down_last[key] = now
                self.w.log(f"{self.id}: shard.down epoch {sub.args[2]}: {sub.args[4]}")
                self.submit(sub.op, sub.args)

    def run(self, actions: list[Action]) -> None:
        for a in actions:
            self._carry_out(a)

    def _carry_out(self, a: Action) -> None:
        if isinstance(a, Start):
            assert isinstance(a.spec, ShardSpec)
            self._start(a.unit, a.spec)
        elif isinstance(a, (Kill, Stop)):
            shard = self.w.shard_of(self.id)
            if shard.alive:
                shard.crash()
            self.run(self.sup.exited(a.unit, a.pid, "killed", self.now()))
        elif isinstance(a, Probe):
            # INFO replication (the server shell's INFO, from the engine's fields).
            self._ask(_replication_info, self._probed, a.unit, a.pid)
        elif isinstance(a, SetReplication):
            self._set_replication(a)
        elif isinstance(a, Freeze):
            self._call(a.unit, [b"ACKDB.FREEZE", b"%d" % a.epoch], self._frozen, a.unit, a.epoch)
        elif isinstance(a, CheckDiverged):
            self.skip_follow.discard(a.unit)
            for f in a.forks:
                argv = [b"ACKDB.DIVERGED", f.replid.encode(), b"%d" % f.offset, b"%d" % f.epoch]
                self._call(a.unit, argv, self._checked, a.unit, f.epoch)
        elif isinstance(a, HandOver):
            self._ask(_replication_info, self._hand_over, a)
        elif isinstance(a, Note):
            if a.level != "verbose":
                self.w.log(f"{self.id}: {a.text}")
        # RemoveDir does not occur in these worlds (no database is deleted).

    def _start(self, unit: str, spec: ShardSpec) -> None:
        """Start the process from the config file the node would write."""
        config = shard_config(spec, f"/sim/{self.id}/{unit}", "pw")
        replica_of: ShardNode | None = None
        extra = []
        for line in config.splitlines():
            if line.startswith("replicaof "):
                _, host, port = line.split()
                replica_of = self.w.shard_of(host, int(port))
            elif line.startswith("ackdb-lease "):
                extra.append(line)
        shard = self.w.shard_of(self.id, spec.port)
        shard.extra_config = "".join(x + "\n" for x in extra)
        self.w.log(
            f"{self.id}: start {unit} ({'replica of ' + replica_of.name if replica_of else 'primary'})"
        )
        shard.boot(replica_of=replica_of)
        pid = self.unit_pid[unit] = shard.crashes + 1
        self.w.unit_dirs.setdefault(self.id, set()).add(unit)
        self.sup.started(unit, pid, self.now())

    def reaped(self, pid: int) -> None:
        """The shard process ``pid`` exited (killed by the simulator)."""
        for unit, p in self.unit_pid.items():
            if p == pid:
                self.run(self.sup.exited(unit, pid, "killed by SIGKILL", self.now()))

    def _set_replication(self, a: SetReplication) -> None:
        if a.unit in self.skip_follow:
            return  # a divergence check failed: the probes will repair the role later
        p = a.spec.primary
        argv = (
            [b"REPLICAOF", b"NO", b"ONE"]
            if p is None
            else [b"REPLICAOF", p[0].encode(), b"%d" % p[1]]
        )
        self._call(a.unit, argv, lambda reply: None)

    # -- answers --

    def _call(self, unit: str, argv: list[bytes], then: Any, *args: Any) -> None:
        """One command on the agent's connection to the shard; the answer goes to
        ``then(reply, *args)`` (held while the agent is paused)."""
        self._ask(lambda s: parse_reply(s.admin(argv)), then, *args)

    def _ask(self, question: Callable[[ShardNode], Any], then: Any, *args: Any) -> None:
        def run(s: ShardNode) -> None:
            self.w.local_agent(self, then, question(s), *args)

        self.w.local_shard(self.id, run)

    def _probed(self, info: str, unit: str, pid: int) -> None:
        self.run(self.sup.probed(unit, pid, parse_replication_info(info), self.now()))

    def _frozen(self, reply: Any, unit: str, epoch: int) -> None:
        if not isinstance(reply, list):
            return  # refused (stale, loading): the supervisor sends it again
        spec = self.sup.units[unit].spec if unit in self.sup.units else None
        if not isinstance(spec, ShardSpec):
            return
        replid, offset = reply[0].decode(), int(reply[1])
        self.submit(Op.SHARD_REPORT, (spec.db, spec.shard, epoch, self.id, replid, offset))

    def _checked(self, reply: Any, unit: str, epoch: int) -> None:
        if isinstance(reply, ReplyError):
            self.skip_follow.add(unit)
            self.w.log(f"{self.id}: ACKDB.DIVERGED (epoch {epoch}) failed: {reply}")
        elif isinstance(reply, list) and int(reply[0]) != 0:
            self.w.log(
                f"{self.id}: diverged writes saved (epoch {epoch}): {int(reply[0])} commands"
            )

    # -- a planned failover (node/shardfailover.py's hand_over) --

    def _hand_over(self, info: str, a: HandOver) -> None:
        """FAILOVER TO the target, then watch INFO for the outcome: shard.report of this
        node at the offset the target took over at, or shard.abort."""
        replid = _field(info, "master_replid")
        argv = [b"FAILOVER", b"TO", a.host.encode(), b"%d" % a.port]
        argv += [b"TIMEOUT", b"%d" % HANDOVER_TIMEOUT_MS]
        self._call(a.unit, argv, self._handing_over, a, replid, self.now() + HANDOVER_WAIT_MS)

    def _handing_over(self, reply: Any, a: HandOver, replid: str, deadline: int) -> None:
        if isinstance(reply, ReplyError):
            self._handover_done(a, replid, f"FAILOVER failed: {reply}")
            return
        self.w.local_agent_later(self, HANDOVER_POLL_MS, self._handover_poll, a, replid, deadline)

    def _handover_poll(self, a: HandOver, replid: str, deadline: int) -> None:
        self._ask(_replication_info, self._handover_seen, a, replid, deadline)

    def _handover_seen(self, info: str, a: HandOver, replid: str, deadline: int) -> None:
        if _field(info, "master_failover_state") != "no-failover":
            if self.now() < deadline:
                self.w.local_agent_later(
                    self, HANDOVER_POLL_MS, self._handover_poll, a, replid, deadline
                )
            else:
                self._handover_done(a, replid, "no outcome in time")
            return
        seen = parse_replication_info(info)
        if seen.role == "slave" and (seen.master_host, seen.master_port) == (a.host, a.port):
            second = _field(info, "second_repl_offset")
            offset = int(second) - 1 if second.isdigit() and int(second) > 0 else seen.offset
            self._handover_done(a, replid, offset)
        else:
            self._handover_done(a, replid, "the shard stayed primary (FAILOVER aborted)")

    def _handover_done(self, a: HandOver, replid: str, outcome: int | str) -> None:
        spec = self.sup.units[a.unit].spec if a.unit in self.sup.units else None
        if not isinstance(spec, ShardSpec):
            return
        if isinstance(outcome, int):
            self.w.log(f"{self.id}: handed over to {a.host} at offset {outcome}")
            self.submit(Op.SHARD_REPORT, (spec.db, spec.shard, a.epoch, self.id, replid, outcome))
        else:
            self.w.log(f"{self.id}: planned failover failed: {outcome}")
            self.submit(Op.SHARD_ABORT, (spec.db, spec.shard, a.epoch, outcome[:200]))

    # -- leases --

    def renew(self) -> None:
        member = self.w.raft.nodes[self.id]
        a = self.now()
        self.seq += 1
        ctx = f"{self.client_id}/{self.seq}".encode()
        try:
            member.read(ctx, "", lambda value: self.w.local_agent(self, self._renewed, a))
        except ProposalDropped:
            return
        self.w.raft.after(member)

    def _renewed(self, a: int) -> None:
        meta = self.w.meta(self.id)  # the current applied metadata
        dbs = {db.uid: db for db in self.w.databases(self.id)}
        for unit, epoch in lease_targets(meta, self.id):
            uid = int(unit.split("/")[1].split("-")[0])
            deadline = a + profile_of(dbs[uid]).lease_ms
            argv = [b"ACKDB.LEASE", b"%d" % epoch, b"%d" % deadline]
            self._call(unit, argv, self._leased, unit)

    def _leased(self, reply: Any, unit: str) -> None:
        pid = self.unit_pid.get(unit)
        if pid is not None and not isinstance(reply, ReplyError):
            self.sup.answered(unit, pid, self.now())
