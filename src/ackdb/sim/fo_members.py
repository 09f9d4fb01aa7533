"""The Raft side of the failover simulator: members applying the cluster metadata, their
deciders, and how commands reach the leader.

Owns: ``MetaRaft`` (sim/world.py's members and network, each member applying the real
``MetadataStore`` (sim/meta_sm.py), ticking at the agent's Raft timing on its host's
clock, deaf while its node is paused) and ``MemberSide`` (one member incarnation's
deciders, stepped like node/member.py's tick: the ``Reconciler`` -- registration, health,
the ``seen`` map and ``leading_since`` -- then, on the leader, the ``FailoverController``
of cluster/failover.py; their ``Submit`` actions are proposed through ``submit``). A
command proposed at a follower is forwarded to the leader it knows, over the simulated
network (node/member.py's Forward frames); nobody waits on a result: the deciders look
at the metadata they applied and propose again. Never does IO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ackdb.cluster.commands import Command, Op, encode_command
from ackdb.cluster.failover import FailoverController
from ackdb.cluster.reconcile import Reconciler, Submit
from ackdb.consensus import Config, ProposalDropped

from .meta_sm import MetaStateMachine
from .node import SimNode
from .world import World as RaftWorld

if TYPE_CHECKING:
    from .failover_world import FailoverWorld

RAFT_TICK_MS = 50
ELECTION_TICKS = 10
STEP_MS = 50  # the deciders' period (local ms)


class MetaRaft(RaftWorld):
    machine = MetaStateMachine

    def __init__(self, seed: int, fo: FailoverWorld) -> None:
        super().__init__(seed)
        self.fo = fo

    def config(self, node_id: str) -> Config:
        return Config(node_id=node_id, election_tick=ELECTION_TICKS, heartbeat_tick=1)

    def after(self, node: SimNode) -> None:
        super().after(node)
        self.fo.member_passed(node.id)  # DB.TOPOLOGY's long poll answers after a pass

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


def submit(
    w: FailoverWorld, node: str, client: str, seq: int, op: Op, args: tuple[bytes | str | int, ...]
) -> None:
    """Propose a command at ``node``'s member; a follower forwards it to its leader."""
    data = encode_command(Command(client, seq, op, args))
    member = w.raft.nodes[node]
    if member.raw is None:
        return
    try:
        member.raw.propose(data)
    except ProposalDropped as exc:
        lead = exc.leader
        if lead is not None and lead != node and (node, lead) not in w.raft.blocked:
            w.queue.schedule(w.rng.randint(1, w.plan.delay_max_ms), _forwarded, w, lead, data)
        return
    w.raft.after(member)


def _forwarded(w: FailoverWorld, node: str, data: bytes) -> None:
    if w.agent_stopped(node):
        w.queue.schedule(w.paused[node] - w.now, _forwarded, w, node, data)
        return
    member = w.raft.nodes[node]
    if member.raw is None:
        return
    try:
        member.raw.propose(data)
    except ProposalDropped:
        return  # not the leader (any more): the sender proposes again
    w.raft.after(member)


class MemberSide:
    """The deciders of one member incarnation (node/member.py's tick)."""

    def __init__(self, w: FailoverWorld, node: str, incarnation: int) -> None:
        self.w = w
        self.node = node
        self.client_id = f"member-{node}.{incarnation}"
        self.seq = 0
        self.alive = True
        self.reconciler = Reconciler(node, f"{node}:9000", f"{node}:9100", settle_ms=1000)
        self.controller = FailoverController()

    def start(self) -> None:
        self.w.queue.schedule(self.w.rng.randint(1, STEP_MS), self.step)

    def step(self) -> None:
        w = self.w
        if not self.alive:
            return
        if w.agent_stopped(self.node):
            w.queue.schedule(w.paused[self.node] - w.now, self.step)
            return
        w.queue.schedule(w.real_ms(self.node, STEP_MS), self.step)
        member = w.raft.nodes[self.node]
        if member.raw is None:
            return
        st, meta, now = member.raw.status(), w.meta(self.node), w.clock(self.node)
        rec = w.shard_record(self.node)
        if rec is not None and rec.note:
            w.notes.add((rec.epoch, rec.note))
        out: list[Submit] = [
            a for a in self.reconciler.step(st, meta, now) if isinstance(a, Submit)
        ]
        r = self.reconciler
        out += self.controller.step(st, meta, now, r.seen, r.leading_since)
        for line in self.controller.drain_log():
            w.log(f"{self.node}: {line}")
        for sub in out:
            self.seq += 1
            submit(w, self.node, self.client_id, self.seq, sub.op, sub.args)
