"""The fault model of the simulator: what one seed chooses, and each fault action.

Owns: ``FaultPlan`` (every knob a seed sets: cluster size, Raft options, network
quality, crash rates, load) and ``apply_fault`` (one random fault per fault event during
the chaos phase). Every fault stays within what Raft claims to survive: members crash and
restart from what they fsynced, messages are delayed, lost, duplicated, reordered or
truncated (never altered into another valid message -- the transport checksums that), and
partitions come and go. Never does IO.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ackdb.consensus import ConfChange, ConfChangeKind, ProposalDropped, Role

if TYPE_CHECKING:
    from ackdb.sim.world import World


@dataclass(frozen=True, slots=True)
class FaultPlan:
    profile: str
    nodes: int
    pre_vote: bool
    check_quorum: bool
    loss: float
    dup: float
    garbage: float
    delay_max_ms: int
    max_inflight: int
    max_msg_bytes: int
    compact_every: int
    crash_in_ready: float
    clients: int
    keys: int
    chaos_ms: int
    fault_every_ms: int
    membership: bool
    # Probability that a new leader crashes within ``leader_crash_ms``: short-lived
    # leaders that replicate part of their log are what Raft §5.4.2 (Figure 8) is about.
    leader_crash: float
    leader_crash_ms: int
    # Of those strikes, the share that cut the leader off instead of crashing it (it keeps
    # leading its minority and appending what clients send it).
    leader_isolate: float
    # A crashed member restarts within this (simulated ms).
    restart_max_ms: int

    @classmethod
    def from_rng(cls, rng: random.Random, profile: str | None = None) -> FaultPlan:
        """The seed's plan; ``profile`` forces "mixed" or "churn" instead of drawing it."""
        draw = rng.random()
        if profile == "churn" or (profile is None and draw < 0.25):
            return cls.churn(rng)
        return cls(
            profile="mixed",
            nodes=rng.choice((3, 5)),
            pre_vote=rng.random() < 0.7,
            check_quorum=rng.random() < 0.7,
            loss=rng.choice((0.0, 0.01, 0.05, 0.15)),
            dup=rng.choice((0.0, 0.02, 0.1)),
            garbage=rng.choice((0.0, 0.01)),
            delay_max_ms=rng.choice((3, 10, 30)),
            max_inflight=rng.choice((1, 4, 256)),
            # Small messages split the log into many appends (flow control, partial
            # replication); 1 MiB sends everything at once.
            max_msg_bytes=rng.choice((1, 100, 1 << 20)),
            compact_every=rng.choice((0, 8, 40)),
            crash_in_ready=rng.choice((0.0, 0.002, 0.01)),
            clients=rng.randint(2, 4),
            keys=rng.randint(1, 3),
            chaos_ms=rng.randint(8000, 16000),
            fault_every_ms=rng.choice((50, 150, 400)),
            membership=rng.random() < 0.3,
            leader_crash=rng.choice((0.0, 0.0, 0.2, 0.5)),
            leader_crash_ms=rng.choice((5, 20, 60)),
            leader_isolate=rng.choice((0.0, 0.5)),
            restart_max_ms=rng.choice((100, 1000)),
        )

    @classmethod
    def churn(cls, rng: random.Random) -> FaultPlan:
        """Leaders struck down (crashed or cut off) within milliseconds of winning, one
        entry per append: the partial replications of Raft Figure 8, where only §5.4.2
        keeps committed entries safe."""
        return cls(
            profile="churn",
            nodes=rng.choice((3, 3, 5)),
            # Without PreVote and CheckQuorum a cut-off leader keeps appending in its old
            # term and elections churn faster: more rival logs.
            pre_vote=False,
            check_quorum=False,
            loss=rng.choice((0.05, 0.2)),
            dup=rng.choice((0.0, 0.02)),
            garbage=0.0,
            delay_max_ms=rng.choice((3, 10)),
            max_inflight=1,
            max_msg_bytes=1,
            compact_every=rng.choice((0, 40)),
            crash_in_ready=rng.choice((0.0, 0.01)),
            clients=4,
            keys=rng.randint(1, 3),
            chaos_ms=rng.randint(8000, 16000),
            fault_every_ms=rng.choice((400, 1000)),
            membership=False,
            leader_crash=rng.choice((0.8, 1.0)),
            leader_crash_ms=rng.choice((5, 10, 20)),
            leader_isolate=0.5,
            restart_max_ms=1000,
        )


@dataclass(slots=True)
class Membership:
    """Conf changes proposed and not yet known to have committed or failed."""

    next_id: int
    removing: list[tuple[str, int, int]] = field(default_factory=list)  # node, index, term
    adding: list[tuple[str, int, int]] = field(default_factory=list)


def apply_fault(w: World) -> None:
    if w.now < w.plan.chaos_ms:
        w.schedule_fault(w.rng.randint(w.plan.fault_every_ms // 2, w.plan.fault_every_ms * 2))
    rng = w.rng
    ids = w.live_ids()
    action = rng.choices(
        ("crash", "partition", "oneway", "heal", "network", "transfer", "membership", "none"),
        weights=(3, 2, 2, 3, 2, 1, 2 if w.plan.membership else 0, 2),
    )[0]
    if action == "crash":
        up = [i for i in ids if w.nodes[i].up]
        if up:
            victim = rng.choice(up)
            w.crash(victim)
            w.schedule_restart(rng.randint(10, w.plan.restart_max_ms), victim)
    elif action == "partition":
        shuffled = list(ids)
        rng.shuffle(shuffled)
        cut = rng.randint(1, len(shuffled) - 1)
        a, b = shuffled[:cut], shuffled[cut:]
        w.blocked = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
        w.log(f"partition {a} | {b}")
    elif action == "oneway":
        for _ in range(rng.randint(1, 3)):
            x, y = rng.sample(ids, 2)
            w.blocked.add((x, y))
            w.log(f"one-way block {x} -> {y}")
    elif action == "heal":
        w.blocked.clear()
        w.log("partitions healed")
    elif action == "network":
        w.loss = rng.choice((0.0, 0.05, 0.2, 0.5))
        w.dup = rng.choice((0.0, 0.05, 0.2))
        w.delay_max_ms = rng.choice((2, 10, 50, 150))
        w.log(f"network loss={w.loss} dup={w.dup} delay<={w.delay_max_ms}ms")
    elif action == "transfer":
        _transfer(w)
    elif action == "membership":
        _reconfigure(w)


def _leader(w: World) -> str | None:
    """The member leading the highest term, if any."""
    leaders: list[tuple[int, str]] = []
    for i in w.live_ids():
        raw = w.nodes[i].raw
        if raw is not None and raw.raft.role == Role.LEADER:
            leaders.append((raw.raft.term, i))
    return max(leaders)[1] if leaders else None


def _transfer(w: World) -> None:
    lid = _leader(w)
    if lid is None:
        return
    raw = w.nodes[lid].raw
    assert raw is not None
    others = [v for v in raw.raft.voters() if v != lid]
    if not others:
        return
    to = w.rng.choice(others)
    try:
        raw.transfer_leadership(to)
    except ProposalDropped:
        return
    w.log(f"transfer leadership {lid} -> {to}")
    w.after(w.nodes[lid])


def _reconfigure(w: World) -> None:
    """One server at a time: add a fresh member or remove one (never re-adding an id)."""
    lid = _leader(w)
    if lid is None or w.membership.removing or w.membership.adding:
        return
    leader = w.nodes[lid]
    raw = leader.raw
    assert raw is not None
    voters = raw.raft.voters()
    if len(voters) <= 3 or (len(voters) < 5 and w.rng.random() < 0.5):
        nid = f"n{w.membership.next_id}"
        w.membership.next_id += 1
        w.add_node(nid, bootstrap=None)
        cc = ConfChange(kind=ConfChangeKind.ADD_NODE, node_id=nid)
        pending = w.membership.adding
    else:
        nid = w.rng.choice(sorted(voters))
        cc = ConfChange(kind=ConfChangeKind.REMOVE_NODE, node_id=nid)
        pending = w.membership.removing
    try:
        index = raw.propose_conf_change(cc)
    except ProposalDropped as exc:
        w.log(f"conf change {cc.kind.name} {nid} refused: {exc.reason}")
        if cc.kind == ConfChangeKind.ADD_NODE:
            _retire(w, nid)
        return
    pending.append((nid, index, raw.raft.term))
    w.log(f"conf change {cc.kind.name} {nid} proposed at {index}")
    w.after(leader)


def settle_membership(w: World) -> None:
    """A removed member is shut down once its removal commits (as an operator would); a
    member whose addition was overwritten never joined and is shut down too."""
    m = w.membership
    for pending, removal in ((m.removing, True), (m.adding, False)):
        for item in list(pending):
            nid, index, term = item
            got = w.checker.committed.get(index)
            if got is None:
                continue
            pending.remove(item)
            if (got[0] == term) == removal:
                _retire(w, nid)


def _retire(w: World, nid: str) -> None:
    w.crash(nid)
    w.retired.add(nid)
    w.log(f"retire {nid}")
