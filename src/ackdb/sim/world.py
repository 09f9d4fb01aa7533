"""The simulated world: one seed builds a cluster, its faults and its clients, and runs it.

Owns: the simulated processes (Raft members, sim/node.py; clients, sim/clients.py), the
network (delay, loss, duplication, reordering, truncated garbage, symmetric and one-way
partitions), the fault schedule (crashes that lose unsynced writes, restarts, leadership
transfers, membership changes), clock drift (members tick at different rates), and the
phases of a run:

1. chaos -- faults within what Raft claims to survive; every event is followed by the
   safety checks of checks.py;
2. healing -- every fault removed, every member restarted; a new write must commit within
   ``LIVENESS_BOUND_MS`` and all members must converge to one state;
3. the clients' history must be linearizable (linearizability.py).

Time and order come from one ``EventQueue`` (events.py): every event is a callback, so a
new kind of simulated process (a replication server, a proxy) is added by giving it its
own ``schedule``d callbacks and a table like ``nodes`` -- nothing here dispatches on kinds.

Never does IO and never reads a real clock; the same seed replays the same run.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ackdb.consensus import Config, DecodeError, Message, Role, decode_message, encode_message
from ackdb.sim.checks import SafetyChecker
from ackdb.sim.clients import SimClient
from ackdb.sim.events import EventQueue
from ackdb.sim.faults import FaultPlan, Membership, apply_fault, settle_membership
from ackdb.sim.kv import KvStateMachine
from ackdb.sim.linearizability import CheckResult, Op, Verdict, check_history
from ackdb.sim.node import SimNode

TICK_MS = 10
ELECTION_TICK = 10
# After healing, a new write must be answered within this (simulated ms)...
LIVENESS_BOUND_MS = 5000
# ... and every member must have applied the same log within this more.
CONVERGENCE_BOUND_MS = 5000


class SimFailure(AssertionError):
    pass


@dataclass(frozen=True, slots=True)
class SimResult:
    seed: int
    plan: FaultPlan
    events: int
    messages: int
    leaders: int
    committed: int
    operations: int
    linearizability: CheckResult
    sim_ms: int


class World:
    # The members' replicated state machine (sim/kv.py's registers; a subclass may run
    # another, as the failover world runs the cluster metadata).
    machine: type[KvStateMachine] = KvStateMachine

    def __init__(
        self,
        seed: int,
        unsafe_commit: bool = False,
        profile: str | None = None,
        unsafe_local_reads: bool = False,
    ) -> None:
        self.seed = seed
        self.forced_profile = profile
        self.unsafe_local_reads = unsafe_local_reads
        self.rng = random.Random(seed)
        self.plan = FaultPlan.from_rng(self.rng, profile)
        self.unsafe_commit = unsafe_commit
        self.queue = EventQueue()
        self.checker = SafetyChecker()
        self.nodes: dict[str, SimNode] = {}
        self.retired: set[str] = set()
        self.tick_ms: dict[str, int] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.loss = self.plan.loss
        self.dup = self.plan.dup
        self.delay_max_ms = self.plan.delay_max_ms
        self.garbage = self.plan.garbage
        self.healed = False
        self.history: list[Op] = []
        self.clients: dict[str, SimClient] = {}
        self.trace: deque[str] = deque(maxlen=60)
        self.membership = Membership(next_id=self.plan.nodes + 1)
        self.messages = 0

    @property
    def now(self) -> int:
        return self.queue.now

    @property
    def events(self) -> int:
        return self.queue.events

    # -- building --

    def config(self, node_id: str) -> Config:
        p = self.plan
        return Config(
            node_id=node_id,
            election_tick=ELECTION_TICK,
            heartbeat_tick=1,
            pre_vote=p.pre_vote,
            check_quorum=p.check_quorum,
            max_inflight_msgs=p.max_inflight,
            max_entries_bytes_per_msg=p.max_msg_bytes,
            snapshot_timeout_ticks=3 * ELECTION_TICK,
            test_only_unsafe_commit_any_term=self.unsafe_commit,
        )

    def add_node(self, node_id: str, bootstrap: tuple[str, ...] | None) -> SimNode:
        node = SimNode(
            id=node_id,
            config=self.config(node_id),
            rng=random.Random(self.rng.getrandbits(64)),
            send=self.send,
            checker=self.checker,
            compact_every=self.plan.compact_every,
            crash_in_ready=self.plan.crash_in_ready,
            unsafe_local_reads=self.unsafe_local_reads,
            machine=self.machine,
        )
        self.nodes[node_id] = node
        # Clock drift: each member's tick period differs by up to +-25%.
        self.tick_ms[node_id] = max(1, round(TICK_MS * self.rng.uniform(0.75, 1.25)))
        self.start(node_id, bootstrap)
        return node

    def start(self, node_id: str, bootstrap: tuple[str, ...] | None = None) -> None:
        node = self.nodes[node_id]
        node.start(bootstrap)
        self.log(f"start {node_id} (incarnation {node.incarnation})")
        self.schedule(
            self.rng.randint(1, self.tick_ms[node_id]), self._tick, node_id, node.incarnation
        )
        self.after(node)

    def crash(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.up:
            lost = node.disk.crash()
            node.crash()
            self.log(f"crash {node_id} (lost {lost} unsynced writes)")

    def live_ids(self) -> list[str]:
        return sorted(n for n in self.nodes if n not in self.retired)

    # -- events --

    def schedule(self, delay_ms: int, fn: Callable[..., None], *args: object) -> None:
        self.queue.schedule(delay_ms, fn, *args)

    def schedule_fault(self, delay_ms: int) -> None:
        self.schedule(delay_ms, self._fault)

    def schedule_restart(self, delay_ms: int, node_id: str) -> None:
        self.schedule(delay_ms, self._restart, node_id)

    def schedule_client(self, delay_ms: int, client_id: str, token: int) -> None:
        self.schedule(delay_ms, self._wake_client, client_id, token)

    def log(self, line: str) -> None:
        self.trace.append(f"{self.now:>7}ms {line}")

    def send(self, m: Message) -> None:
        self.messages += 1
        if (m.frm, m.to) in self.blocked or self.rng.random() < self.loss:
            return
        data = encode_message(m)
        copies = 2 if self.rng.random() < self.dup else 1
        for _ in range(copies):
            self.schedule(self.rng.randint(1, self.delay_max_ms), self._deliver, m.to, data)
        if self.garbage and self.rng.random() < self.garbage:
            cut = data[: self.rng.randrange(len(data))]
            self.schedule(self.rng.randint(1, self.delay_max_ms), self._deliver, m.to, cut)

    def after(self, node: SimNode) -> None:
        """Carry out the member's Ready work, then check what its new state claims."""
        if not node.process():
            self.log(f"crash {node.id} between write and fsync")
            self.schedule_restart(self.rng.randint(10, self.plan.restart_max_ms), node.id)
            return
        raw = node.raw
        assert raw is not None
        r = raw.raft
        if r.role == Role.LEADER:
            if self.checker.leaders.get(r.term) != node.id:
                self.log(f"{node.id} leads term {r.term} (last index {r.log.last_index()})")
                self._strike_new_leader(node.id)
            self.checker.on_leader(node.id, r.term, r.log)

    def _strike_new_leader(self, node_id: str) -> None:
        """Maybe crash or isolate a new leader before it replicates much."""
        p = self.plan
        if self.healed or self.rng.random() >= p.leader_crash:
            return
        strike = self._isolate if self.rng.random() < p.leader_isolate else self._strike_crash
        self.schedule(self.rng.randint(1, p.leader_crash_ms), strike, node_id)

    def _isolate(self, node_id: str) -> None:
        if self.healed:
            return
        pairs = {(node_id, o) for o in self.nodes if o != node_id}
        pairs |= {(o, node_id) for o in self.nodes if o != node_id}
        self.blocked |= pairs
        self.log(f"isolate {node_id}")
        self.schedule(self.rng.randint(20, self.plan.restart_max_ms), self._unisolate, node_id)

    def _unisolate(self, node_id: str) -> None:
        if self.healed:
            return
        self.blocked = {(a, b) for a, b in self.blocked if node_id not in (a, b)}
        self.log(f"reconnect {node_id}")

    def step_event(self) -> None:
        fn, args = self.queue.pop()
        if self.membership.removing or self.membership.adding:
            settle_membership(self)
        fn(*args)

    def _tick(self, node_id: str, incarnation: int) -> None:
        node = self.nodes[node_id]
        if node.raw is None or incarnation != node.incarnation:
            return
        node.tick()
        self.after(node)
        self.schedule(self.tick_ms[node.id], self._tick, node.id, node.incarnation)

    def _wake_client(self, client_id: str, token: int) -> None:
        client = self.clients[client_id]
        client.wake(self.now, token, {i: self.nodes[i] for i in self.live_ids()})
        for i in self.live_ids():
            if self.nodes[i].up:
                self.after(self.nodes[i])

    def _fault(self) -> None:
        if not self.healed:
            apply_fault(self)

    def _strike_crash(self, node_id: str) -> None:
        if not self.healed:
            self.crash(node_id)
            self.schedule_restart(self.rng.randint(10, self.plan.restart_max_ms), node_id)

    def _restart(self, node_id: str) -> None:
        if node_id not in self.retired and not self.nodes[node_id].up:
            self.start(node_id)

    def _deliver(self, to: str, data: bytes) -> None:
        node = self.nodes[to]
        if node.raw is None:
            return
        try:
            m = decode_message(data)
        except DecodeError:
            return  # garbage is dropped; the core never sees it
        if (m.frm, m.to) in self.blocked:
            return
        node.raw.step(m)
        self.after(node)

    def run_until(self, pred: Callable[[], bool], until_ms: int) -> bool:
        while self.queue and self.now <= until_ms:
            if pred():
                return True
            self.step_event()
        return pred()

    # -- phases --

    def run(self) -> SimResult:
        try:
            return self._run()
        except AssertionError as exc:
            raise SimFailure(self.failure_text(exc)) from exc

    def _run(self) -> SimResult:
        p = self.plan
        ids = tuple(f"n{i}" for i in range(1, p.nodes + 1))
        for nid in ids:
            self.add_node(nid, bootstrap=ids)
        for i in range(p.clients):
            cid = f"c{i + 1}"
            self.clients[cid] = SimClient(
                id=cid,
                rng=random.Random(self.rng.getrandbits(64)),
                keys=tuple(f"k{j}" for j in range(p.keys)),
                history=self.history,
                schedule=self.schedule_client,
                clock=lambda: self.now,
            )
            self.schedule_client(self.rng.randint(50, 300), cid, 0)
        self.schedule_fault(self.rng.randint(100, 300))
        self.run_until(lambda: False, p.chaos_ms)
        self.heal()
        self.check_liveness()
        self.check_convergence()
        verdict = check_history(self.history)
        if verdict.verdict == Verdict.VIOLATION:
            raise AssertionError(f"history not linearizable on key {verdict.key!r}")
        return SimResult(
            seed=self.seed,
            plan=p,
            events=self.events,
            messages=self.messages,
            leaders=len(self.checker.leaders),
            committed=self.checker.max_committed,
            operations=len(self.history),
            linearizability=verdict,
            sim_ms=self.now,
        )

    def heal(self) -> None:
        self.log("heal: all faults removed")
        self.healed = True
        self.blocked.clear()
        self.loss = 0.0
        self.dup = 0.0
        self.delay_max_ms = 5
        self.garbage = 0.0
        for node in self.nodes.values():
            node.crash_in_ready = 0.0
        for nid in self.live_ids():
            if not self.nodes[nid].up:
                self.start(nid)

    def check_liveness(self) -> None:
        """A fresh client's write must be answered within the bound after healing."""
        for c in self.clients.values():
            c.active = False
        probe = SimClient(
            id="probe",
            rng=random.Random(self.rng.getrandbits(64)),
            keys=("probe",),
            history=self.history,
            schedule=self.schedule_client,
            clock=lambda: self.now,
            writes_only=True,
        )
        self.clients["probe"] = probe
        self.schedule_client(0, "probe", 0)
        deadline = self.now + LIVENESS_BOUND_MS
        if not self.run_until(lambda: probe.completed > 0, deadline):
            raise AssertionError(f"liveness: no write committed within {LIVENESS_BOUND_MS}ms")
        probe.active = False
        self.log("liveness: probe write answered")

    def check_convergence(self) -> None:
        def converged() -> bool:
            live = [self.nodes[i] for i in self.live_ids()]
            voters = [n for n in live if n.raw is not None and n.id in n.raw.raft.voters()]
            if any(c.op is not None for c in self.clients.values()):
                return False
            digests = {n.sm.digest() for n in voters if n.sm is not None}
            return len(digests) == 1 and len(voters) >= 1

        deadline = self.now + CONVERGENCE_BOUND_MS
        if not self.run_until(converged, deadline):
            raise AssertionError(f"convergence: members differ after {CONVERGENCE_BOUND_MS}ms")

    def replay_command(self) -> str:
        env = [f"ACKDB_SIM_SEED={self.seed}"]
        if self.forced_profile is not None:
            env.append(f"ACKDB_SIM_PROFILE={self.forced_profile}")
        if self.unsafe_commit:
            env.append("ACKDB_SIM_UNSAFE_COMMIT=1")
        if self.unsafe_local_reads:
            env.append("ACKDB_SIM_UNSAFE_READS=1")
        return " ".join(env) + " python3 -m pytest tests/sim/test_raft_sim.py -k replay"

    def failure_text(self, exc: BaseException) -> str:
        trace = "\n".join(self.trace)
        return (
            f"seed {self.seed} failed at {self.now}ms: {exc}\n"
            f"plan: {self.plan}\n"
            f"last events:\n{trace}\n"
            f"replay: {self.replay_command()}"
        )


def run_seed(
    seed: int,
    unsafe_commit: bool = False,
    profile: str | None = None,
    unsafe_local_reads: bool = False,
) -> SimResult:
    """Run one seed; raises SimFailure (with the replay command) on any violation."""
    world = World(
        seed, unsafe_commit=unsafe_commit, profile=profile, unsafe_local_reads=unsafe_local_reads
    )
    return world.run()
