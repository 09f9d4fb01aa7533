"""The failover controller of the simulated cluster: detection, the lease wait, the
choice of the replica to promote.

Owns: the leader-side decisions of issue 15's contract for one shard, stepped like
cluster/reconcile.py on the member's local clock: when the leader took office, when it
last saw each voter (Raft progress ``recent_active``), when it saw each fence applied;
and ``step`` -- from those and the applied ``ShardMeta`` -- the next change to propose.
Never does IO and reads no clock (``now_ms`` comes in).

Rules (the contract, items 2 and 4):
- a primary whose node was not seen for ``node_timeout_ms`` (counted from
  ``leading_since`` for a new leader), or a committed shard.down fact, is fenced;
- promotion waits until the old primary's lease is surely over: now >= min(T_fence,
  max(seen[old], leading_since)) + lease_ms * (1 + drift) + margin_ms (no wait when the
  old primary itself reported: it is frozen);
- strict: reports from at least max(1, R - n + 1) of the R replicas, the highest offset
  wins (ties: lowest node id); available: after ``report_grace_ms`` more, the best
  report heard wins and the promotion's note says writes may be lost.

``unsafe_no_lease_wait`` is a TEST ONLY variant that promotes without waiting out the
lease: it exists so a test can show the simulator's checks catch two primaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ackdb.consensus import Role, Status
from ackdb.sim.fo_meta import Profile, Report, ShardMeta


@dataclass(slots=True)
class Controller:
    node_id: str
    profile: Profile
    guarantee: int  # n of wait:n
    policy: str  # "strict" | "available"
    unsafe_no_lease_wait: bool = False
    leading_since: int | None = None
    term: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    fence_seen: dict[int, int] = field(default_factory=dict)  # epoch -> T_fence

    def step(self, st: Status, meta: ShardMeta | None, now_ms: int) -> ShardMeta | None:
        """The change to propose now (a compare-and-set against ``meta``), if any."""
        if st.role is not Role.LEADER:
            self.leading_since = None
            return None
        if self.leading_since is None or st.term != self.term:
            self.leading_since, self.term = now_ms, st.term
            self.seen = {}
            self.fence_seen = {}
        for v in st.voters:
            pr = st.progress.get(v)
            if v == self.node_id or (pr is not None and pr.recent_active):
                self.seen[v] = now_ms
        if meta is None:
            return None
        if meta.state == "ok":
            return self._detect(meta, now_ms)
        return self._promote(meta, now_ms)

    def _last_seen(self, node: str) -> int:
        assert self.leading_since is not None
        return max(self.seen.get(node, self.leading_since), self.leading_since)

    def _detect(self, meta: ShardMeta, now_ms: int) -> ShardMeta | None:
        gone = now_ms - self._last_seen(meta.primary) >= self.profile.node_timeout_ms
        if gone or meta.down_epoch == meta.epoch:
            return meta.fence(meta.epoch)
        return None

    def lease_over_at(self, meta: ShardMeta, now_ms: int) -> int:
        """When the old primary's lease is surely over, on this member's clock."""
        t_fence = self.fence_seen.setdefault(meta.epoch, now_ms)
        if self.unsafe_no_lease_wait or any(r.node == meta.old_primary for r in meta.reports):
            return t_fence
        p = self.profile
        start = min(t_fence, self._last_seen(meta.old_primary))
        return start + int(p.lease_ms * (1 + p.drift)) + 1 + p.margin_ms

    def _promote(self, meta: ShardMeta, now_ms: int) -> ShardMeta | None:
        over = self.lease_over_at(meta, now_ms)
        if now_ms < over:
            return None
        replicas = [r for r in meta.reports if r.node in meta.replicas]
        needed = max(1, len(meta.replicas) - self.guarantee + 1)
        note = ""
        if len(replicas) < needed:
            if self.policy != "available" or not replicas:
                return None
            if now_ms < over + self.profile.report_grace_ms:
                return None
            note = f"available: {len(replicas)} of {len(meta.replicas)} replicas heard"
        best = best_report(replicas)
        return meta.promote(meta.epoch, best.node, note)


def best_report(reports: list[Report]) -> Report:
    """The highest offset; ties go to the lowest node id."""
    return min(reports, key=lambda r: (-r.offset, r.node))
