"""The failover simulator: one seed builds a three-node cluster -- Raft members applying
the cluster metadata, the failover controller, node agents, the REAL replication engines
of one shard (a primary and two replicas, with ``ackdb-lease yes``), the real endpoint
core on every node and clients writing through it -- on one event queue and one network,
faults it, and checks issue 15's claims.

Owns: the world (nodes n1..n3, each one host with its own monotonic clock running at a
rate within the profile's drift: its Raft member and deciders (sim/fo_members.py), its
agent (sim/fo_agent.py), its shard process (sim/fo_shard.py on sim/repl_world.py's
links) and its endpoint (sim/fo_endpoint.py)), the network rules shared by all of them
(a directed block stops Raft messages that way; a TCP link between two hosts blocked
either way breaks and cannot be made), the ports the agents, endpoints and clients use,
and the phases of a run:

1. chaos -- the database is created through Raft, clients write and WAIT through the
   endpoints, and fo_faults.py kills, cuts off and pauses nodes; every event is followed
   by the checks of fo_checks.py (and Raft's own, sim/checks.py);
2. healing -- every fault removed; the shard must take writes acknowledged by WAIT again,
   and every instance converge to the primary's history, within ``LIVENESS_MS``;
3. the final checks of fo_checks.py on the final primary.

Never does IO and never reads a real clock; the same seed replays the same run.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from ackdb.cluster import dbops
from ackdb.cluster.commands import Op
from ackdb.cluster.databases import Database, Persistence, Shard
from ackdb.cluster.dbops import DbOptions
from ackdb.cluster.failover import PROFILES
from ackdb.cluster.metadata import MetadataStore
from ackdb.consensus import Role

from .fo_agent import Agent
from .fo_checks import FailoverChecker, Outcome, converged, describe
from .fo_clients import FoClient
from .fo_endpoint import SimEndpoint
from .fo_faults import FoPlan, fault_step
from .fo_members import RAFT_TICK_MS, MemberSide, MetaRaft, submit
from .fo_shard import ShardNode
from .meta_sm import MetaStateMachine
from .repl_world import World as LinkWorld
from .world import SimFailure

NODES = ("n1", "n2", "n3")
DB = "db1"
LIVENESS_MS = 20_000
AOF = {"always": Persistence.AOF_ALWAYS, "everysec": Persistence.AOF_EVERYSEC}
TRACE_LINES = 200


@dataclass(frozen=True, slots=True)
class FoResult:
    seed: int
    plan: FoPlan
    events: int
    epoch: int  # the shard's final epoch: 1 + fences + aborts
    outcome: Outcome
    sim_ms: int


class FailoverWorld:
    def __init__(self, seed: int, **forced: Any) -> None:
        self.seed = seed
        self.forced = forced
        self.rng = random.Random(seed)
        self.plan = FoPlan.from_rng(self.rng, **forced)
        profile = PROFILES[self.plan.profile]
        self.lease_renew_ms = profile.lease_renew_ms
        self.raft = MetaRaft(self.rng.getrandbits(64), self)
        self.queue = self.raft.queue
        self.raft.trace = deque(maxlen=TRACE_LINES)
        self.raft.healed = True  # its own faults (strikes on new leaders) stay off: ours run
        self.raft.loss, self.raft.dup, self.raft.garbage = self.plan.loss, 0.0, 0.0
        self.raft.delay_max_ms = self.plan.delay_max_ms
        self.repl = LinkWorld(self.rng.getrandbits(64), queue=self.queue)
        self.repl.refuse = lambda c, s: self.cut(c.name, s.name)
        self.checker = FailoverChecker(self.plan.guarantee, self.plan.policy)
        self.replicas = len(NODES) - 1
        self.rates = {n: self.rng.uniform(-1, 1) * profile.drift / 2.2 + 1 for n in NODES}
        self.offsets = {n: self.rng.randrange(10**9) for n in NODES}
        self.paused: dict[str, int] = {}  # node -> its member and agent take no input until
        self.ep_paused: dict[str, int] = {}  # node -> its endpoint takes no input until
        self.blocks: Counter[tuple[str, str]] = Counter()  # directed: every message
        self.tcp_blocks: Counter[tuple[str, str]] = Counter()  # (a, b), a < b: TCP only
        self.shards: dict[str, ShardNode] = {}
        self.agents: dict[str, Agent] = {}
        self.members: dict[str, MemberSide] = {}
        self.incarnations: Counter[str] = Counter()
        # node -> the unit directories its agents started: a new agent adopts them (with
        # no process: a node restarts with its shard dead), as node/shards.py does.
        self.unit_dirs: dict[str, set[str]] = {}
        self.endpoints: dict[str, SimEndpoint] = {}
        self.clients: list[FoClient] = []
        self.notes: set[tuple[int, str]] = set()
        self.faults_on = True
        self.active_faults = 0
        self._next_cid = 100
        self._seq = 0
        self.op_seq = 0  # the operator's commands
        self._dbs: dict[str, tuple[tuple[int, int], list[Database]]] = {}

    @property
    def now(self) -> int:
        return self.queue.now

    def log(self, line: str) -> None:
        self.raft.log(line)

    # -- ports for the agents, deciders and clients --

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
        blocked = self.raft.blocked
        if (a, b) in blocked or (b, a) in blocked:
            return True
        return self.tcp_blocks[(min(a, b), max(a, b))] > 0

    def meta(self, node: str) -> MetadataStore:
        """The metadata ``node``'s member applied (empty while it is down)."""
        sm = self.raft.nodes[node].sm
        return MetadataStore() if sm is None else cast(MetaStateMachine, sm).meta

    def databases(self, node: str) -> list[Database]:
        """``dbops.databases`` of ``node``'s applied metadata (decoded once per change)."""
        meta = self.meta(node)
        key = (id(meta), meta.applied_index)
        cached = self._dbs.get(node)
        if cached is None or cached[0] != key:
            cached = self._dbs[node] = (key, dbops.databases(meta))
        return cached[1]

    def shard_record(self, node: str) -> Shard | None:
        dbs = self.databases(node)
        return dbs[0].shards[0] if dbs else None

    def caught_up(self, node: str) -> bool:
        m = self.raft.nodes[node]
        if m.raw is None or m.sm is None:
            return False
        return m.raw.raft.lead is not None and m.sm.applied >= m.raw.raft.log.committed

    def shard_of(self, node: str, port: int = 0) -> ShardNode:
        shard = self.shards.get(node)
        if shard is None:
            assert port, "a shard process starts with its port"
            shard = ShardNode(self.repl, node, port, self.plan.aof, lambda: self.clock(node))
            shard.on_ack = self._primary_ack
            self.shards[node] = shard
            self.repl.nodes[node] = shard
        return shard

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
        shard = self.shards.get(node)
        if shard is None:
            return  # not started yet: nothing listens
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

    def local_agent_later(
        self, agent: Agent, local_ms: int, fn: Callable[..., None], *args: object
    ) -> None:
        """``fn(*args)`` on the agent after ``local_ms`` of its clock (a timer)."""
        delay = self.real_ms(agent.id, local_ms)
        self.queue.schedule(delay, self.local_agent, agent, fn, *args)

    def submit(
        self, node: str, client: str, seq: int, op: Op, args: tuple[bytes | str | int, ...]
    ) -> None:
        submit(self, node, client, seq, op, args)

    def _primary_ack(self, shard: ShardNode, wid: int) -> None:
        self.checker.on_primary_ack(self.now, shard.name, shard.epoch, wid)

    def member_passed(self, node: str) -> None:
        """``node``'s member ran a Raft pass: its endpoint's topology feed looks."""
        ep = self.endpoints.get(node)
        if ep is not None and ep.alive:
            ep.member_passed()

    def never_synced(self) -> frozenset[int]:
        """Acknowledged writes no instance ever fsynced (none under appendfsync always)."""
        durable = self.repl.ever_durable
        return frozenset(w for w in self.checker.acked if w not in durable)

    def saved_ids(self) -> set[int]:
        return {w for s in self.shards.values() for _, _, ids in s.diverged for w in ids}

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
        self.agents[node] = Agent(self, node, inc)
        self.agents[node].start()
        self.members[node] = MemberSide(self, node, inc)
        self.members[node].start()
        rng = random.Random(self.rng.getrandbits(64))
        self.endpoints[node] = SimEndpoint(self, node, DB, rng)

    def kill_node(self, node: str) -> None:
        self.log(f"kill {node}")
        self.raft.crash(node)
        self.agents[node].alive = False
        self.members[node].alive = False
        self.endpoints[node].die()
        self.paused.pop(node, None)
        self.ep_paused.pop(node, None)
        shard = self.shards.get(node)
        if shard is not None and shard.alive:
            shard.crash()

    def crash_shard(self, node: str) -> None:
        """The shard process alone dies (SIGKILL); its agent reaps the exit a moment later
        (node/shards.py reaps every 100 ms)."""
        shard = self.shards.get(node)
        agent = self.agents[node]
        if shard is None or not shard.alive or not agent.alive:
            return
        self.log(f"crash the shard process of {node}")
        shard.crash()
        pid = shard.crashes  # the incarnation that died (the agent's pid for it)
        delay = self.real_ms(node, self.rng.randint(1, 100))
        self.queue.schedule(delay, self.local_agent, agent, agent.reaped, pid)

    # -- running --

    def run_until(self, t_end: int, done: Callable[[], bool] | None = None) -> bool:
        """Run events (each followed by the checks) up to ``t_end`` or until ``done()``."""
        q = self.queue
        shards = self.shards
        while len(q) and q.now <= t_end:
            if done is not None and done():
                return True
            fn, args = q.pop()
            fn(*args)
            self.checker.after_event(q.now, shards.values())
        return done is not None and done()

    def run(self) -> FoResult:
        try:
            return self._run()
        except AssertionError as exc:
            raise SimFailure(self.failure_text(exc)) from exc

    def _run(self) -> FoResult:
        p = self.plan
        for node in NODES:
            self.start_node(node, bootstrap=NODES)
        self.queue.schedule(1, self._create_db)
        for _ in range(p.clients):
            self._next_cid += 1
            c = FoClient(self, self._next_cid, random.Random(self.rng.getrandbits(64)))
            self.clients.append(c)
            self.queue.schedule(self.rng.randint(500, 1500), c.step)
        self.queue.schedule(self.rng.randint(2500, 4000), fault_step, self)
        self.run_until(p.chaos_ms)
        self.faults_on = False
        self.heal()
        self.check_liveness()
        final = self.final_shard()
        primary = self.shards[final.primary.node]
        outcome = self.checker.final(
            primary, bool(self.notes), self.saved_ids(), self.never_synced()
        )
        return FoResult(self.seed, p, self.queue.events, final.epoch, outcome, self.now)

    def _create_db(self) -> None:
        """``ackdb db create`` through the leader, once every member registered."""
        lead = self.leader()
        if lead is not None and self.shard_record(lead) is not None:
            return
        self.queue.schedule(200, self._create_db)
        if lead is None or len(self.meta(lead).members) < len(NODES):
            return
        p = self.plan
        opts = DbOptions(
            replicas=len(NODES) - 1,
            persistence=AOF[self.plan.aof],
            failover_guarantee=p.guarantee,
            failover_policy=p.policy,
            failover_profile=p.profile,
        )
        self._seq += 1
        self.submit(lead, "setup", self._seq, Op.DB_CREATE, (DB, opts.to_bytes()))

    def leader(self) -> str | None:
        leaders = [
            (m.raw.raft.term, n)
            for n, m in self.raft.nodes.items()
            if m.raw is not None and m.raw.raft.role is Role.LEADER
        ]
        return max(leaders)[1] if leaders else None

    def final_shard(self) -> Shard:
        lead = self.leader()
        shard = None if lead is None else self.shard_record(lead)
        assert shard is not None, "no leader with the database at the end"
        return shard

    def heal(self) -> None:
        self.log("heal: faults stop, partitions heal, nodes restart")
        self.blocks.clear()
        self.tcp_blocks.clear()
        self.raft.blocked.clear()
        for node in NODES:
            if not self.agents[node].alive:
                self.start_node(node)

    def check_liveness(self) -> None:
        """Writable again: a write acknowledged by WAIT after healing; then every instance
        holds the primary's history."""
        since = {id(c): c.completed for c in self.clients}
        deadline = self.now + LIVENESS_MS
        if not self.run_until(deadline, lambda: self._written_since(since)):
            raise AssertionError(f"liveness: no write acknowledged within {LIVENESS_MS}ms")
        for c in self.clients:
            c.active = False
        if not self.run_until(deadline, self.converged):
            raise AssertionError("convergence: the instances differ")

    def _written_since(self, since: dict[int, int]) -> bool:
        return any(c.completed > since[id(c)] for c in self.clients)

    def converged(self) -> bool:
        return converged(self)

    def describe(self) -> str:
        return describe(self)

    def replay_command(self) -> str:
        env = f"ACKDB_SIM_SEED={self.seed}"
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


def run_seed(seed: int, **forced: Any) -> FoResult:
    """Run one seed; raises SimFailure (with the replay command) on any violation."""
    return FailoverWorld(seed, **forced).run()
