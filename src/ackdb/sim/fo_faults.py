"""The failover simulator's fault model: what one seed chooses, and each fault.

Owns: ``FoPlan`` (the database's failover options -- guarantee, policy, profile -- the
network's quality, the load, the length of the chaos phase and how faults overlap) and
``fault_step`` (one fault per fault event during chaos, with its own healing). Faults are
those issue 15 claims to survive: one node at a time is killed (member, agent and shard
process) and restarted -- later, or (``bounce``) before the leader's node timeout --, cut off (both ways or one way), or paused (a node, its shard
process alone or its agent alone; clocks go on). With ``overlap`` a second fault may
strike before the first healed: beyond the claim, so the strict policy must wait and
the available one must say what it may have lost. Never does IO.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ackdb.cluster.commands import Op
from ackdb.cluster.failover import PROFILES
from ackdb.cluster.shardops import planned_fences

if TYPE_CHECKING:
    from ackdb.sim.failover_world import FailoverWorld

DB = "db1"  # the world's database (failover_world.DB)

KINDS = (
    "kill",
    "isolate",
    "oneway_out",
    "oneway_in",
    "pause_node",
    "pause_shard",
    "pause_agent",
    "cut_link",  # the TCP links between two hosts only (Raft still passes): a lagging replica
    "failover",  # an operator's DB.FAILOVER: a planned failover (FAILOVER TO, no wait)
    "maintenance",  # node maintenance on, then off: planned failovers off it and back
    "crash_shard",  # the shard process alone dies (its agent sees the exit)
    "bounce",  # the whole node dies and restarts within node_timeout_ms (last: see from_rng)
)


@dataclass(frozen=True, slots=True)
class FoPlan:
    profile: str
    policy: str  # "strict" | "available"
    guarantee: int  # wait:n, 1..2
    delay_max_ms: int  # Raft messages
    loss: float
    clients: int
    chaos_ms: int
    fault_ms: tuple[int, int]  # a fault lasts this long
    gap_ms: tuple[int, int]  # quiet time after a fault healed
    overlap: float  # probability that a fault strikes while another is active
    weights: tuple[int, ...]  # of KINDS
    aof: str = "always"  # the shards' appendfsync: "always" | "everysec" (forced only)

    @classmethod
    def from_rng(cls, rng: random.Random, **forced: Any) -> FoPlan:
        profile = rng.choice(("high", "high", "high", "low"))
        slow = 3 if profile == "low" else 1
        plan = cls(
            profile=profile,
            policy=rng.choice(("strict", "strict", "available")),
            guarantee=rng.choice((1, 1, 2)),
            delay_max_ms=rng.choice((2, 5, 10)),
            loss=rng.choice((0.0, 0.0, 0.01, 0.05)),
            clients=rng.randint(2, 4),
            chaos_ms=rng.randint(8000, 12000) * slow,
            fault_ms=rng.choice(((200, 1500), (500, 3000), (1000, 4000), (2000, 6000 * slow))),
            gap_ms=rng.choice(((300, 1000), (1000, 3000))),
            overlap=rng.choice((0.0, 0.0, 0.3)),
            weights=tuple(rng.choice((0, 1, 2, 3)) for _ in KINDS[:-1]) + (0,),
        )
        # "bounce" came last, with a generator of its own: the draws above, hence every
        # older seed's world, stay as they were.
        bounce = random.Random(f"bounce-{plan.weights}-{plan.chaos_ms}").choice((0, 0, 1, 2))
        plan = replace(plan, weights=plan.weights[:-1] + (bounce,))
        fields = {k: v for k, v in forced.items() if v is not None}
        if not any(plan.weights) and "weights" not in fields:
            fields["weights"] = tuple(1 for _ in KINDS)
        return cls(**{**{f: getattr(plan, f) for f in cls.__slots__}, **fields})


def fault_step(w: FailoverWorld) -> None:
    p, rng = w.plan, w.rng
    if not w.faults_on or not any(p.weights):
        return
    if w.active_faults and rng.random() >= p.overlap:
        w.queue.schedule(rng.randint(*p.gap_ms), fault_step, w)
        return
    kind = rng.choices(KINDS, weights=p.weights)[0]
    victim = rng.choice(sorted(w.agents))
    lead = w.leader()
    rec = None if lead is None else w.shard_record(lead)
    if rec is not None and rng.random() < 0.6:
        victim = rec.primary.node  # the faults that matter most strike the primary
    ms = rng.randint(*p.fault_ms)
    other = rng.choice([n for n in sorted(w.agents) if n != victim])
    strike(w, kind, victim, ms, other)
    w.queue.schedule(ms + rng.randint(*p.gap_ms), fault_step, w)


def strike(w: FailoverWorld, kind: str, victim: str, ms: int, other: str = "") -> None:
    """One fault of ``kind`` on ``victim`` (and ``other``, for cut_link) for ``ms``."""
    w.active_faults += 1
    if kind in ("kill", "bounce"):
        if kind == "bounce":  # back before the leader's node_timeout_ms
            ms = 1 + ms % (PROFILES[w.plan.profile].node_timeout_ms // 2)
            w.log(f"bounce {victim}: back in {ms}ms")
        if w.agents[victim].alive:
            w.kill_node(victim)
        w.queue.schedule(ms, _restart, w, victim)
    elif kind == "cut_link":
        pair = (min(victim, other), max(victim, other))
        w.log(f"cut the links {pair[0]} <-> {pair[1]} for {ms}ms")
        w.tcp_blocks[pair] += 1
        _break_cut_links(w)
        w.queue.schedule(ms, _uncut, w, pair)
    elif kind in ("isolate", "oneway_out", "oneway_in"):
        others = [n for n in sorted(w.agents) if n != victim]
        pairs = []
        if kind != "oneway_in":
            pairs += [(victim, o) for o in others]
        if kind != "oneway_out":
            pairs += [(o, victim) for o in others]
        w.log(f"{kind} {victim} for {ms}ms")
        _block(w, pairs, +1)
        w.queue.schedule(ms, _unblock, w, pairs)
    elif kind in ("failover", "maintenance"):
        _operator(w, kind, victim, ms)
    elif kind == "crash_shard":
        w.queue.schedule(ms, _healed, w)
        w.crash_shard(victim)
    else:
        assert kind in KINDS, kind
        until = w.now + ms
        w.log(f"{kind} {victim} for {ms}ms")
        if kind in ("pause_node", "pause_agent"):
            w.paused[victim] = max(w.paused.get(victim, 0), until)
        if kind == "pause_node":  # the endpoint's process too
            w.ep_paused[victim] = max(w.ep_paused.get(victim, 0), until)
        shard = w.shards.get(victim)
        if kind in ("pause_node", "pause_shard") and shard is not None and shard.alive:
            shard.paused_until = max(shard.paused_until, until)
        w.queue.schedule(ms, _healed, w)


def _operator(w: FailoverWorld, kind: str, victim: str, ms: int) -> None:
    """What ``ackdb db failover`` / ``ackdb node maintenance`` propose, at the leader."""
    lead = w.leader()
    w.queue.schedule(ms, _healed, w)
    if lead is None:
        return
    w.op_seq += 1
    if kind == "maintenance":
        w.log(f"maintenance on {victim} for {ms}ms")
        w.submit(lead, "operator", w.op_seq, Op.NODE_MAINTENANCE, (victim, "on"))
        w.queue.schedule(ms, _maintenance_off, w, victim)
        return
    try:
        fences = planned_fences(w.meta(lead), DB, None)
    except ValueError as e:
        w.log(f"db failover refused: {e}")
        return
    for args in fences:
        w.log(f"db failover to {args[4]} (epoch {args[2]})")
        w.submit(lead, "operator", w.op_seq, Op.SHARD_FENCE, args)


def _maintenance_off(w: FailoverWorld, node: str) -> None:
    lead = w.leader()
    if lead is not None:
        w.op_seq += 1
        w.log(f"maintenance off {node}")
        w.submit(lead, "operator", w.op_seq, Op.NODE_MAINTENANCE, (node, "off"))


def _healed(w: FailoverWorld) -> None:
    w.active_faults = max(0, w.active_faults - 1)


def _restart(w: FailoverWorld, node: str) -> None:
    _healed(w)
    if not w.agents[node].alive:
        w.log(f"restart {node}")
        w.start_node(node)


def _block(w: FailoverWorld, pairs: list[tuple[str, str]], d: int) -> None:
    for pair in pairs:
        w.blocks[pair] = max(0, w.blocks[pair] + d)
    w.raft.blocked = {pair for pair, n in w.blocks.items() if n > 0}
    _break_cut_links(w)


def _break_cut_links(w: FailoverWorld) -> None:
    for conn in list(w.repl.conns.values()):
        if w.cut(conn.client.name, conn.server.name):
            w.repl.break_conn(conn)


def _uncut(w: FailoverWorld, pair: tuple[str, str]) -> None:
    _healed(w)
    w.tcp_blocks[pair] = max(0, w.tcp_blocks[pair] - 1)


def _unblock(w: FailoverWorld, pairs: list[tuple[str, str]]) -> None:
    _healed(w)
    _block(w, pairs, -1)
    w.log(f"unblock {pairs[0]}...")
