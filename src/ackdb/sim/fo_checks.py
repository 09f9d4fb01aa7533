"""The failover simulator's checks: issue 15's safety claims, checked as the world runs.

Owns: what the clients were told -- the replies their endpoints wrote: every acknowledged
write, with the primary and lease epoch that acknowledged it (observed on the shard
process), every WAIT count -- and the checks against it:

- after every event: at most one shard process acknowledges writes -- a primary, running,
  whose lease is valid on its host's clock at that instant;
- on every acknowledgement a primary sends: the primaries did so in disjoint
  real-time intervals (once another primary acknowledged, an earlier one never does
  again; a primary is a (node, epoch) pair);
- at the end, on the final primary: every write acknowledged by ``WAIT n`` with n at
  least the declared guarantee is in its history (strict); with the available policy a
  missing one is allowed only if a promotion recorded that it may have lost writes;
  every other acknowledged write is either there or saved as divergent by an old
  primary (no silent loss) -- or, with ``appendfsync everysec``, was never fsynced by
  any instance (a crash may take such a write with it: only WAIT covers it).

Also the end state the liveness phase waits for (``converged``) and the state a failure
prints (``describe``). Never does IO; a violation raises ``FailoverViolation``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ackdb.cluster.databases import ShardState
from ackdb.sim.fo_shard import ShardNode

if TYPE_CHECKING:
    from ackdb.sim.failover_world import FailoverWorld


class FailoverViolation(AssertionError):
    pass


@dataclass(slots=True)
class Outcome:
    acked: int = 0
    covered: int = 0
    refused: int = 0  # writes answered -TRYAGAIN (fenced, or the shard failing over)
    reported_loss: int = 0  # covered writes lost with a recorded available-policy note
    diverged_saved: int = 0  # acknowledged writes only an old primary's saved file holds
    unsynced_lost: int = 0  # acknowledged, never fsynced anywhere, lost with crashes


@dataclass(slots=True)
class FailoverChecker:
    guarantee: int
    policy: str
    acked: dict[int, tuple[int, str, int]] = field(default_factory=dict)  # wid -> t, node, ep
    by_primary: dict[int, tuple[int, str, int]] = field(default_factory=dict)  # the same
    covered: set[int] = field(default_factory=set)
    acker: tuple[str, int] | None = None  # the primary that acknowledged last
    retired: set[tuple[str, int]] = field(default_factory=set)
    outcome: Outcome = field(default_factory=Outcome)

    def after_event(self, now: int, shards: Iterable[ShardNode]) -> None:
        ackers = [s for s in shards if not s.stopped and s.acknowledges_writes()]
        if len(ackers) > 1:
            desc = ", ".join(
                f"{s.name}(epoch {s.epoch}, lease to {s.engine.fencing.deadline_ms}, clock {s.clock()})"
                for s in ackers
            )
            raise FailoverViolation(f"two primaries hold a valid lease at {now}ms: {desc}")

    def on_primary_ack(self, now: int, node: str, epoch: int, wid: int) -> None:
        """A primary answered ``+OK`` to write ``wid`` (whether or not the reply reaches
        the client)."""
        who = (node, epoch)
        if who != self.acker:
            if who in self.retired:
                raise FailoverViolation(
                    f"{node} (epoch {epoch}) acknowledged write {wid} at {now}ms after "
                    f"{self.acker} had acknowledged writes: overlapping primaries"
                )
            if self.acker is not None:
                self.retired.add(self.acker)
            self.acker = who
        self.by_primary[wid] = (now, node, epoch)

    def on_ack(self, wid: int) -> None:
        """The client read ``+OK`` for write ``wid`` from its endpoint."""
        ack = self.by_primary.get(wid)
        if ack is None:
            raise FailoverViolation(f"the endpoint acknowledged write {wid}: no primary did")
        self.acked[wid] = ack
        self.outcome.acked += 1

    def on_wait(self, wid: int, count: int) -> None:
        if self.guarantee >= 1 and count >= self.guarantee:
            self.covered.add(wid)
            self.outcome.covered += 1

    def final(
        self,
        primary: ShardNode,
        noted: bool,
        saved: set[int],
        unsynced: frozenset[int] = frozenset(),
    ) -> Outcome:
        """``unsynced``: writes no instance ever fsynced (``appendfsync everysec``: a
        crash may lose them with every copy; only WAIT covers them, and WAIT is checked)."""
        have = primary.history_set
        missing = sorted(self.covered - have)
        if missing:
            if self.policy != "available" or not noted:
                raise FailoverViolation(
                    f"{len(missing)} writes acknowledged by WAIT {self.guarantee} are not on "
                    f"the final primary {primary.name}: {missing[:10]} "
                    f"(acked {[self.acked[w] for w in missing[:3]]})"
                )
            self.outcome.reported_loss = len(missing)
        gone = [w for w in self.acked if w not in have and w not in saved]
        lost = sorted(w for w in gone if w not in unsynced)
        self.outcome.unsynced_lost = len(gone) - len(lost)
        if lost:
            if self.policy != "available" or not noted:
                raise FailoverViolation(
                    f"{len(lost)} acknowledged writes silently lost (neither on {primary.name} "
                    f"nor saved as divergent): {lost[:10]} (acked {[self.acked[w] for w in lost[:3]]})"
                )
        self.outcome.diverged_saved = sum(1 for w in self.acked if w not in have and w in saved)
        return self.outcome


def converged(w: FailoverWorld) -> bool:
    """Every instance holds the primary's history (and the shard takes writes)."""
    lead = w.leader()
    if any(c.busy_since is not None for c in w.clients) or lead is None:
        return False
    rec = w.shard_record(lead)
    if rec is None or rec.state is not ShardState.OK:
        return False
    p = w.shards[rec.primary.node]
    if not p.acknowledges_writes():
        return False
    ps = p.engine.state
    for inst in rec.replicas:
        s = w.shards[inst.node]
        if not s.alive or s.engine.is_primary or s.engine.link.state != "connected":
            return False
        st = s.engine.state
        if st.master_repl_offset != ps.master_repl_offset or st.replid != ps.replid:
            return False
        if s.history != p.history or s.digest() != p.digest():
            return False
    return True


def describe(w: FailoverWorld) -> str:
    parts = []
    for n, s in sorted(w.shards.items()):
        if not s.alive:
            parts.append(f"{n}(down)")
            continue
        e = s.engine
        parts.append(
            f"{n}({'P' if e.is_primary else e.link.state}->{e.link.host} "
            f"id={e.state.replid[:6]} off={e.state.master_repl_offset} epoch={s.epoch} "
            f"acks={s.acknowledges_writes()} frozen={e.fencing.frozen})"
        )
    for n, ep in sorted(w.endpoints.items()):
        r = ep.router
        if not ep.alive or r is None:
            parts.append(f"endpoint {n}({'down' if not ep.alive else 'no topology'})")
            continue
        parked = sum(len(q) for c in ep.clients for q in c.session.parked.values())
        parts.append(
            f"endpoint {n}(topology {r.topology.version} -> {r.addrs[0][0]} "
            f"failing={r.failing} clients={len(ep.clients)} parked={parked})"
        )
    lead = w.leader()
    rec = None if lead is None else w.shard_record(lead)
    return f"leader={lead} shard={rec} " + " ".join(parts)
