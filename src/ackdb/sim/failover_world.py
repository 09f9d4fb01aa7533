"""The failover simulator: one seed builds a three-node cluster -- Raft members, node
agents, a failover controller, the REAL replication engines of one shard (a primary and
two replicas) and proxied clients -- on one event queue and one network, faults it, and
checks issue 15's claims.

Owns: the world (nodes n1..n3, each one host with its own monotonic clock running at a
rate within the profile's drift: its Raft member (sim/node.py, run by sim/world.py's
network), its agent (sim/fo_agent.py), its controller (sim/fo_control.py, acting while
its member leads) and its shard process (sim/fo_shard.py on sim/repl_world.py's links),
the network rules shared by all of them (a directed block stops Raft messages that way;
a TCP link between two hosts blocked either way breaks and cannot be made), the fault
schedule, and the phases of a run:

1. chaos -- node kills and restarts, partitions (one-way too), pauses of a node, of a
   shard process or of an agent (its clock goes on), under client load; every event is
   followed by the checks of fo_checks.py (and Raft's own, sim/checks.py);
2. healing -- every fault removed; the shard must be writable again, WAIT-acknowledged,
   and every instance converge to the primary's history within ``LIVENESS_MS``;
3. the final checks of fo_checks.py on the final primary.

Never does IO and never reads a real clock; the same seed replays the same run.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ackdb.consensus import Config, ProposalDropped, Role
from ackdb.sim.fo_agent import Agent
from ackdb.sim.fo_checks import FailoverChecker, Outcome
from ackdb.sim.fo_clients import FoClient
from ackdb.sim.fo_control import Controller
from ackdb.sim.fo_faults import FoPlan, fault_step
from ackdb.sim.fo_meta import PROFILES, SHARD_KEY, ShardMeta
from ackdb.sim.fo_shard import Diverged, ShardNode
from ackdb.sim.kv import encode_command
from ackdb.sim.repl_world import World as LinkWorld
from ackdb.sim.replication import Client, Node
from ackdb.sim.world import SimFailure
from ackdb.sim.world import World as RaftWorld

NODES = ("n1", "n2", "n3")
RAFT_TICK_MS = 50
ELECTION_TICKS = 10
CONTROL_MS = 50  # the controller's step period (local ms)
LIVENESS_MS = 20_000
TRACE_LINES = 150


@dataclass(frozen=True, slots=True)
class FoResult:
    seed: int
    plan: FoPlan
    events: int
    epoch: int  # the shard's final epoch: 1 + fences
    outcome: Outcome
    sim_ms: int


class MetaRaft(RaftWorld):
    """sim/world.py's members and network, with the agent's Raft timing and pauses."""

    def __init__(self, seed: int, fo: FailoverWorld) -> None:
        super().__init__(seed)
        self.fo = fo

    def config(self, node_id: str) -> Config:
        return Config(node_id=node_id, election_tick=ELECTION_TICKS, heartbeat_tick=1)

    def _tick(self, node_id: str, incarnation: int) -> None:
        until = self.fo.paused.get(node_id, 0)
        if self.now < until:
            self.schedule(until - self.now, self._tick, node_id, incarnation)
        else:
            super()._tick(node_id, incarnation)

    def _deliver(self, to: str, data: bytes) -> None:
        until = self.fo.paused.get(to, 0)
        if self.now < until:
            self.schedule(until - self.now, self._deliver, to, data)
        else:
            super()._deliver(to, data)


class FailoverWorld:
    def __init__(self, seed: int, *, unsafe_no_lease_wait: bool = False, **forced: Any) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.plan = FoPlan.from_rng(self.rng, **forced)
        self.profile = PROFILES[self.plan.profile]
        self.unsafe_no_lease_wait = unsafe_no_lease_wait
        self.raft = MetaRaft(self.rng.getrandbits(64), self)
        self.queue = self.raft.queue
        self.raft.trace = deque(maxlen=TRACE_LINES)
        self.raft.healed = True  # its own faults (strikes on new leaders) stay off: ours run
        self.raft.loss, self.raft.dup, self.raft.garbage = self.plan.loss, 0.0, 0.0
        self.raft.delay_max_ms = self.plan.delay_max_ms
        self.repl = LinkWorld(self.rng.getrandbits(64), queue=self.queue)
        self.repl.refuse = lambda c, s: self.cut(c.name, s.name) or getattr(c, "frozen", False)
        self.repl.on_reply = self._on_reply
        self.checker = FailoverChecker(self.plan.guarantee, self.plan.policy)
        self.replicas = len(NODES) - 1
        self.rates = {n: self.rng.uniform(-1, 1) * self.profile.drift / 2.2 + 1 for n in NODES}
        self.offsets = {n: self.rng.randrange(10**9) for n in NODES}
        self.paused: dict[str, int] = {}  # node -> its member and agent take no input until
        self.blocks: Counter[tuple[str, str]] = Counter()
        self.shards: dict[str, ShardNode] = {}
        self.agents: dict[str, Agent] = {}
        self.controllers: dict[str, Controller] = {}
        self.incarnations: Counter[str] = Counter()
        self.conns: dict[int, FoClient] = {}
        self.clients: list[FoClient] = []
        self.saved_ids: set[int] = set()
        self.notes: set[tuple[int, str]] = set()
        self.faults_on = True
        self.active_faults = 0
        self._meta_cache: dict[bytes, ShardMeta] = {}
        self._next_cid = 100
        self._control_last: dict[tuple[str, bytes], int] = {}
        self._seq = 0

    @property
    def now(self) -> int:
        return self.queue.now

    def log(self, line: str) -> None:
        self.raft.log(line)

    # -- ports for the agents, controllers and clients --

    def clock(self, node: str) -> int:
        """The host's CLOCK_MONOTONIC (ms): its own origin, its own rate."""
        return self.offsets[node] + int(self.now * self.rates[node])

    def real_ms(self, node: str, local_ms: int) -> int:
        return max(1, round(local_ms / self.rates[node]))

    def agent_stopped(self, node: str) -> bool:
        return self.now < self.paused.get(node, 0)

    def node_up(self, node: str) -> bool:
        a = self.agents.get(node)
        return a is not None and a.alive and not self.agent_stopped(node)

    def cut(self, a: str, b: str) -> bool:
        """A TCP link between hosts a and b cannot work."""
        return (a, b) in self.raft.blocked or (b, a) in self.raft.blocked

    def applied_meta(self, node: str) -> ShardMeta | None:
        sm = self.raft.nodes[node].sm
        raw = None if sm is None else sm.get(SHARD_KEY)
        if raw is None:
            return None
        meta = self._meta_cache.get(raw)
        if meta is None:
            meta = self._meta_cache[raw] = ShardMeta.decode(raw)
        return meta

    def caught_up(self, node: str) -> bool:
        m = self.raft.nodes[node]
        if m.raw is None or m.sm is None:
            return False
        return m.raw.raft.lead is not None and m.sm.applied >= m.raw.raft.log.committed

    def every(self, agent: Agent, local_ms: int, fn: Callable[[], None]) -> None:
        """Run ``fn`` every ``local_ms`` of the agent's clock while that agent lives."""

        def fire() -> None:
            if self.agents.get(agent.id) is not agent or not agent.alive:
                return
            if self.agent_stopped(agent.id):
                self.queue.schedule(self.paused[agent.id] - self.now, fire)
                return
            fn()
            self.queue.schedule(self.real_ms(agent.id, local_ms), fire)

        self.queue.schedule(self.rng.randint(1, self.real_ms(agent.id, local_ms)), fire)

    def local_shard(self, node: str, fn: Callable[[ShardNode], object]) -> None:
        """A command from the agent to its shard (same host; a pause holds it)."""
        shard = self.shards[node]
        incarnation = shard.crashes

        def run() -> None:
            if shard.alive and shard.crashes == incarnation:
                fn(shard)
                shard.end_pass()

        def deliver() -> None:
            if shard.alive and shard.crashes == incarnation:  # else it died with the process
                shard.run_or_hold(run)

        self.queue.schedule(1, deliver)

    def local_agent(self, agent: Agent, fn: Callable[..., None], *args: object) -> None:
        """An answer back to the agent (held while it is paused)."""

        def deliver() -> None:
            if self.agents.get(agent.id) is not agent or not agent.alive:
                return
            if self.agent_stopped(agent.id):
                self.queue.schedule(self.paused[agent.id] - self.now, deliver)
                return
            fn(*args)

        self.queue.schedule(0, deliver)

    def on_diverged(self, node: str, d: Diverged) -> None:
        if not d.ids <= self.saved_ids:
            self.log(f"{node}: saved {d.count} divergent commands ({len(d.ids)} writes)")
        self.saved_ids |= d.ids

    def new_conn(self, fc: FoClient) -> Client:
        self._next_cid += 1
        self.conns[self._next_cid] = fc
        return Client(self._next_cid)

    def _on_reply(self, client: Client, node: Node, data: bytes) -> None:
        fc = self.conns.get(client.cid)
        if fc is not None and fc.conn is client and isinstance(node, ShardNode):
            fc.on_wait_reply(node, data)

    # -- nodes --

    def start_node(self, node: str, bootstrap: tuple[str, ...] | None = None) -> None:
        if bootstrap is not None:
            self.raft.add_node(node, bootstrap)
            self.raft.nodes[node].crash_in_ready = 0.0
            self.raft.tick_ms[node] = self.real_ms(node, RAFT_TICK_MS)
        else:
            self.raft.start(node)
        self.incarnations[node] += 1
        inc = self.incarnations[node]
        agent = self.agents[node] = Agent(self, node, self.profile, inc)
        agent.start()
        ctl = self.controllers[node] = Controller(
            node, self.profile, self.plan.guarantee, self.plan.policy, self.unsafe_no_lease_wait
        )
        self._schedule_control(node, ctl)

    def kill_node(self, node: str) -> None:
        self.log(f"kill {node}")
        self.raft.crash(node)
        self.agents[node].alive = False
        self.paused.pop(node, None)
        shard = self.shards[node]
        if shard.alive:
            shard.crash()
        shard.paused_until = 0

    def _schedule_control(self, node: str, ctl: Controller, first: bool = True) -> None:
        delay = self.rng.randint(1, 50) if first else self.real_ms(node, CONTROL_MS)
        self.queue.schedule(delay, self._control, node, ctl)

    def _control(self, node: str, ctl: Controller) -> None:
        if self.controllers.get(node) is not ctl or not self.agents[node].alive:
            return
        if self.agent_stopped(node):
            self.queue.schedule(self.paused[node] - self.now, self._control, node, ctl)
            return
        self._schedule_control(node, ctl, first=False)
        member = self.raft.nodes[node]
        if member.raw is None:
            return
        meta = self.applied_meta(node)
        if meta is not None and meta.note:
            self.notes.add((meta.epoch, meta.note))
        new = ctl.step(member.raw.status(), meta, self.clock(node))
        if new is None or meta is None or not self._due_control(node, new):
            return
        what = "fence" if new.state == "failing" and meta.state == "ok" else "promote"
        if new.state == "ok":
            self.log(f"{node}: promote {new.primary} (epoch {new.epoch}) {new.note}")
        elif what == "fence":
            self.log(f"{node}: fence {meta.primary} (epoch {new.epoch})")
        self._propose(node, f"ctl-{node}", meta.encode(), new.encode())

    def _due_control(self, node: str, new: ShardMeta) -> bool:
        key = (node, new.encode())
        last = self._control_last.get(key)
        if last is not None and self.now - last < 200:
            return False
        self._control_last[key] = self.now
        return True

    def _propose(self, node: str, client: str, old: bytes | None, new: bytes) -> None:
        self._seq += 1
        self.submit(node, f"{client}.{self.incarnations[node]}", self._seq, old, new)

    def submit(self, node: str, client: str, seq: int, old: bytes | None, new: bytes) -> None:
        """A compare-and-set of the shard record, proposed at ``node``'s member; a follower
        forwards it to the leader it knows over the network (node/member.py's Forward)."""
        data = encode_command(client, seq, "cas", SHARD_KEY, old, new)
        member = self.raft.nodes[node]
        if member.raw is None:
            return
        try:
            member.raw.propose(data)
        except ProposalDropped as exc:
            lead = exc.leader
            if lead is not None and lead != node and (node, lead) not in self.raft.blocked:
                delay = self.rng.randint(1, self.plan.delay_max_ms)
                self.queue.schedule(delay, self._forwarded, lead, data)
            return
        self.raft.after(member)

    def _forwarded(self, node: str, data: bytes) -> None:
        if self.agent_stopped(node):
            self.queue.schedule(self.paused[node] - self.now, self._forwarded, node, data)
            return
        member = self.raft.nodes[node]
        if member.raw is None:
            return
        try:
            member.raw.propose(data)
        except ProposalDropped:
            return  # not the leader (any more): the sender retries
        self.raft.after(member)

    # -- running --

    def run_until(self, t_end: int, done: Callable[[], bool] | None = None) -> bool:
        """Run events (each followed by the checks) up to ``t_end`` or until ``done()``."""
        q = self.queue
        shards = list(self.shards.values())
        while len(q) and q.now <= t_end:
            if done is not None and done():
                return True
            fn, args = q.pop()
            fn(*args)
            self.checker.after_event(q.now, shards)
        return done is not None and done()

    def run(self) -> FoResult:
        try:
            return self._run()
        except AssertionError as exc:
            raise SimFailure(self.failure_text(exc)) from exc

    def _run(self) -> FoResult:
        p = self.plan
        for i, node in enumerate(NODES):
            self.shards[node] = ShardNode(
                self.repl, node, 7001 + i, "always", lambda n=node: self.clock(n)
            )
            self.repl.nodes[node] = self.shards[node]
        for node in NODES:
            self.start_node(node, bootstrap=NODES)
        self.queue.schedule(1, self._setup)
        for _ in range(p.clients):
            self._next_cid += 1
            c = FoClient(self, self._next_cid, random.Random(self.rng.getrandbits(64)))
            self.clients.append(c)
            self.queue.schedule(self.rng.randint(500, 1500), c.step)
        self.queue.schedule(self.rng.randint(1500, 3000), fault_step, self)
        self.run_until(p.chaos_ms)
        self.faults_on = False
        self.heal()
        self.check_liveness()
        primary = self.shards[self.final_meta().primary]
        outcome = self.checker.final(primary, bool(self.notes), self.saved_ids)
        return FoResult(self.seed, p, self.queue.events, self.final_meta().epoch, outcome, self.now)

    def _setup(self) -> None:
        """The database's creation: epoch 1, n1 primary, n2 and n3 its replicas."""
        if any(self.applied_meta(n) is not None for n in NODES if self.raft.nodes[n].up):
            return
        first = ShardMeta(epoch=1, state="ok", primary=NODES[0], replicas=NODES[1:])
        for n in NODES:
            m = self.raft.nodes[n]
            if m.raw is not None and m.raw.raft.role is Role.LEADER:
                self._propose(n, "setup", None, first.encode())
        self.queue.schedule(100, self._setup)

    def leader(self) -> str | None:
        leaders = [
            (m.raw.raft.term, n)
            for n, m in self.raft.nodes.items()
            if m.raw is not None and m.raw.raft.role is Role.LEADER
        ]
        return max(leaders)[1] if leaders else None

    def final_meta(self) -> ShardMeta:
        lead = self.leader()
        meta = None if lead is None else self.applied_meta(lead)
        assert meta is not None, "no leader with metadata at the end"
        return meta

    def heal(self) -> None:
        self.log("heal: faults stop, partitions heal, nodes restart")
        self.blocks.clear()
        self.raft.blocked.clear()
        for node in NODES:
            if not self.agents[node].alive:
                self.start_node(node)

    def check_liveness(self) -> None:
        """Writable again: a write acknowledged by every replica after healing; then every
        instance holds the primary's history."""
        since = {id(c): c.completed for c in self.clients}
        deadline = self.now + LIVENESS_MS
        if not self.run_until(deadline, lambda: self._written_since(since)):
            raise AssertionError(f"liveness: no write acknowledged within {LIVENESS_MS}ms")
        for c in self.clients:
            c.active = False
        if not self.run_until(deadline, self.converged):
            raise AssertionError(f"convergence: {self.describe()}")

    def _written_since(self, since: dict[int, int]) -> bool:
        return any(c.completed > since[id(c)] for c in self.clients)

    def converged(self) -> bool:
        if any(c.busy_since is not None for c in self.clients) or self.leader() is None:
            return False
        meta = self.applied_meta(self.leader() or "")
        if meta is None or meta.state != "ok":
            return False
        p = self.shards[meta.primary]
        if not p.acknowledges_writes():
            return False
        ps = p.engine.state
        for n in meta.replicas:
            s = self.shards[n]
            if not s.alive or s.frozen or s.engine.is_primary:
                return False
            st = s.engine.state
            if s.engine.link.state != "connected" or st.master_repl_offset != ps.master_repl_offset:
                return False
            if st.replid != ps.replid or s.history != p.history or s.digest() != p.digest():
                return False
        return True

    def describe(self) -> str:
        parts = []
        for n, s in self.shards.items():
            if not s.alive:
                parts.append(f"{n}(down)")
                continue
            e = s.engine
            parts.append(
                f"{n}({'P' if e.is_primary else e.link.state}->{e.link.host} "
                f"id={e.state.replid[:6]} off={e.state.master_repl_offset} epoch={s.epoch} "
                f"lease={s.lease_valid()} frozen={s.frozen})"
            )
        lead = self.leader()
        meta = None if lead is None else self.applied_meta(lead)
        return f"leader={lead} meta={meta} " + " ".join(parts)

    def replay_command(self) -> str:
        env = f"ACKDB_SIM_SEED={self.seed}"
        if self.unsafe_no_lease_wait:
            env += " ACKDB_SIM_UNSAFE_NO_LEASE_WAIT=1"
        return f"{env} python3 -m pytest tests/sim/test_failover_sim.py -k replay"

    def failure_text(self, exc: BaseException) -> str:
        trace = "\n".join(self.raft.trace)
        return (
            f"seed {self.seed} failed at {self.now}ms: {exc}\n"
            f"plan: {self.plan}\n"
            f"state: {self.describe()}\n"
            f"last events:\n{trace}\n"
            f"replay: {self.replay_command()}"
        )


def run_seed(seed: int, *, unsafe_no_lease_wait: bool = False, **forced: Any) -> FoResult:
    """Run one seed; raises SimFailure (with the replay command) on any violation."""
    return FailoverWorld(seed, unsafe_no_lease_wait=unsafe_no_lease_wait, **forced).run()
