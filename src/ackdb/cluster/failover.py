"""The failover controller: on the Raft leader, decides when a shard fails over and which
replica it promotes (issue 15; the protocol and the proof are in docs/failover.md).

Owns: the sensitivity ``PROFILES``; the promotion rule (``reports_needed``,
``best_report``); ``FailoverController``, stepped on the leader each tick like
cluster/reconcile.py's Reconciler, whose ``seen`` map and ``leading_since`` it reads (it
keeps no copy); the text of a failover's status lines. Never does IO, reads no clock
(``now_ms`` comes in): ``step`` returns ``Submit`` actions for the Raft member to propose,
each kind rate-limited by ``retry_ms``; the ops it proposes (cluster/shardops.py) check
the shard's epoch, so a late or repeated proposal changes nothing.

A shard, as the controller sees it:

    OK, primary's node unseen for node_timeout_ms or a shard.down fact --> shard.fence
    FAILING (unplanned): waits for the old primary's lease to be surely over and for
        reports_needed(R, n) replica reports (strict), or report_grace_ms longer for any
        report (available) --> shard.promote of best_report
    FAILING (planned): the old primary's report (its hand-over done) --> shard.promote of
        the target; no report within HANDOVER_WAIT_MS, or the old primary's node
        unseen for node_timeout_ms --> shard.abort
    OK, primary on a node in maintenance --> planned shard.fence to a replica elsewhere;
        maintenance off --> back (one planned failover at a time in the cluster)
    OK, a replica's node unseen for replica_ha_ms --> shard.move to another node

Leaderless databases (issue 16) are not looked at: their replicas are all equal and never
fail over (their instances still count as load for replica moves).

Times are the leader's (``now_ms``); ``T_fence`` is when this leader first saw a fence
applied (a new leader takes its first look), which is never before the fence committed.
The lease wait is the contract's ``min(T_fence, max(seen, leading_since)) + lease_ms *
(1 + drift) + margin_ms`` with one departure, never shorter: ``seen`` is taken plus
``seen_slack_ms`` (see SEEN_SLACK_MS), because the seen map is a sample, not the time the
node last spoke.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ackdb.cluster import dbops
from ackdb.cluster.commands import Op
from ackdb.cluster.databases import Database, Report, Shard, ShardState
from ackdb.cluster.metadata import MetadataStore
from ackdb.cluster.reconcile import Submit
from ackdb.consensus import Role, Status


@dataclass(frozen=True, slots=True)
class Profile:
    """Failure-detection sensitivity of a database (docs/failover.md, "Profiles")."""

    name: str
    node_timeout_ms: int  # the leader has not seen the primary's node for this long
    shard_timeout_ms: int  # the agent's probes of its primary unanswered this long
    lease_ms: int  # a primary's lease, from the start of the read that granted it
    lease_renew_ms: int  # how often the agent renews leases
    drift: float  # the clock-rate difference the lease wait allows for
    margin_ms: int  # added to the lease wait
    report_grace_ms: int  # available policy: how long to wait for more reports
    replica_ha_ms: int  # a node down this long loses its replicas to other nodes

    @property
    def lease_wait_ms(self) -> int:
        """From the last moment a lease may have been granted to when it surely ended."""
        return math.ceil(self.lease_ms * (1 + self.drift)) + self.margin_ms


PROFILES: dict[str, Profile] = {
    "high": Profile("high", 1000, 1000, 500, 150, 0.05, 50, 300, 30_000),
    "low": Profile("low", 5000, 5000, 2500, 700, 0.05, 200, 1500, 120_000),
}
# The old primary's agent runs FAILOVER TO <target> TIMEOUT HANDOVER_TIMEOUT_MS; with no
# report HANDOVER_WAIT_MS after the fence, the controller aborts the planned failover.
HANDOVER_TIMEOUT_MS = 5000
HANDOVER_WAIT_MS = HANDOVER_TIMEOUT_MS + 3000
RETRY_MS = 500  # a proposal not yet applied is proposed again after this long
# How much later than the Reconciler's ``seen`` time a node may still have started the
# read that granted its last lease: ``seen`` samples the Raft progress's recent_active
# flag once a tick, and the flag is cleared at every quorum check (an election timeout),
# so the last message a node sent can be up to about an election timeout plus a tick
# after the last sample that saw it. The default covers the node's defaults (8 ticks of
# 100 ms, and a tick); the shell passes its own election timeout plus two ticks.
SEEN_SLACK_MS = 1000
LOG_MAX_LINES = 1000  # notices kept for the shell before the oldest are dropped


def profile_of(db: Database) -> Profile:
    return PROFILES.get(db.failover_profile, PROFILES["high"])


def reports_needed(replicas: int, guarantee: int) -> int:
    """Replica reports the strict policy needs: a write acknowledged by WAIT n is on at
    least n of the R replicas, so any R - n + 1 of them include one that has it. At
    least 1, at most R (wait:0 covers no write: hearing every replica is the best)."""
    return min(replicas, max(1, replicas - guarantee + 1))


def best_report(reports: Iterable[Report], prefer: str = "") -> Report | None:
    """The report to promote: offsets only compare on one history, so first the history
    (replid) most reports share -- every instance that followed the old primary reports
    its replid; one that restarted empty has a fresh replid of its own -- ties to the
    history with the highest offset; then in it the highest offset. Exact ties go to
    ``prefer`` (the old primary: after a restart of every node nobody's offset tells
    anything, and keeping its role keeps its data), then to the lowest node id."""
    reports = list(reports)
    if not reports:
        return None
    groups: dict[str, list[Report]] = {}
    for r in reports:
        groups.setdefault(r.replid, []).append(r)

    def rank(r: Report) -> tuple[int, int, bool]:
        group = groups[r.replid]
        return len(group), max(g.offset for g in group), r.node == prefer

    top = max(rank(r)[:2] for r in reports)
    best = [r for r in reports if rank(r)[:2] == top]
    return min(best, key=lambda r: (-r.offset, r.node != prefer, r.node))


def maintenance_note(node: str) -> str:
    return f"maintenance: moved off {node}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What a failing shard waits for, and the proposal that ends the wait (if any)."""

    waiting: str  # "lease" | "reports" | "grace" | "handover" | "promotion" | "abort"
    heard: int  # replica reports
    needed: int
    submit: Submit | None = None
    log: str = ""


@dataclass(frozen=True, slots=True)
class _View:
    now_ms: int
    seen: Mapping[str, int]
    leading_since: int
    maintenance: frozenset[str] = frozenset()

    def down_for(self, node: str) -> int:
        return self.now_ms - max(self.seen.get(node, self.leading_since), self.leading_since)

    def lease_from(self, node: str, slack_ms: int) -> int:
        """A time no lease of ``node``'s agent was granted after (see ``seen_slack_ms``):
        the leader saw it up to ``slack_ms`` before it last sent anything; a node not seen
        since this leader took office last read through an earlier leader."""
        seen = self.seen.get(node)
        return self.leading_since if seen is None else max(seen, self.leading_since) + slack_ms


class FailoverController:
    """See the module docstring. ``log`` collects notices for the shell to log."""

    def __init__(self, retry_ms: int = RETRY_MS, seen_slack_ms: int = SEEN_SLACK_MS) -> None:
        self.retry_ms = retry_ms
        self.seen_slack_ms = seen_slack_ms
        self.log: list[str] = []
        self._last: dict[tuple[str | int, ...], int] = {}  # what -> when last proposed
        self._fenced_at: dict[tuple[str, int, int], int] = {}  # (db, shard, epoch) -> T_fence
        self._term = 0
        self._view: _View | None = None  # the last step's, for status_lines

    def drain_log(self) -> list[str]:
        out, self.log = self.log, []
        return out

    def _note(self, text: str) -> None:
        self.log.append(text)
        del self.log[:-LOG_MAX_LINES]

    def _due(self, key: tuple[str | int, ...], now_ms: int) -> bool:
        last = self._last.get(key)
        if last is not None and now_ms - last < self.retry_ms:
            return False
        self._last[key] = now_ms
        return True

    def step(
        self,
        st: Status,
        meta: MetadataStore,
        now_ms: int,
        seen: Mapping[str, int],
        leading_since: int | None,
    ) -> list[Submit]:
        if st.role is not Role.LEADER or leading_since is None:
            self._last, self._fenced_at, self._term, self._view = {}, {}, 0, None
            return []
        if st.term != self._term:
            self._last, self._fenced_at, self._term = {}, {}, st.term
        off = frozenset(m.id for m in meta.members.values() if m.maintenance)
        v = self._view = _View(now_ms, seen, leading_since, off)
        dbs = dbops.sharded(dbops.databases(meta))  # leaderless databases never fail over
        self._forget_done(dbs)
        out: list[Submit] = []
        for db in dbs:
            for shard in db.shards:
                if shard.state is ShardState.FAILING:
                    d = self.decide(db, shard, v)
                    if d.submit is not None and self._due(_key(d.submit), now_ms):
                        out.append(d.submit)
                        self._note(d.log)
                else:
                    out += self._detect(db, shard, v)
        out += self._maintenance(meta, dbs, v)
        out += self._replica_ha(meta, dbs, v)
        return out

    def _forget_done(self, dbs: list[Database]) -> None:
        live = {
            (db.name, s.index, s.epoch)
            for db in dbs
            for s in db.shards
            if s.state is ShardState.FAILING
        }
        for k in [k for k in self._fenced_at if k not in live]:
            del self._fenced_at[k]

    # -- detection ------------------------------------------------------------------------

    def _detect(self, db: Database, shard: Shard, v: _View) -> list[Submit]:
        if not shard.replicas:
            return []  # nothing to promote
        p, node = profile_of(db), shard.primary.node
        if shard.down:
            why = f"its agent reports it down ({shard.down})"
        elif v.down_for(node) >= p.node_timeout_ms:
            why = f"node {node} not seen for {v.down_for(node)} ms"
        else:
            return []
        s = Submit(Op.SHARD_FENCE, (db.name, shard.index, shard.epoch, 0, ""))
        if not self._due(_key(s), v.now_ms):
            return []
        self._note(f"Failover of {db.name}/{shard.index}: fencing epoch {shard.epoch}: {why}")
        return [s]

    # -- a failing shard --------------------------------------------------------------

    def decide(self, db: Database, shard: Shard, v: _View) -> Decision:
        """What the failing ``shard`` waits for, and what ends the wait, at ``v.now_ms``."""
        f = shard.fence
        assert f is not None
        t_fence = self._fenced_at.setdefault((db.name, shard.index, shard.epoch), v.now_ms)
        name, replicas = f"{db.name}/{shard.index}", {r.node for r in shard.replicas}
        heard = sum(1 for r in f.reports if r.node in replicas)
        needed = reports_needed(len(shard.replicas), db.failover_guarantee)
        p = profile_of(db)
        if f.planned:
            old = f.report_of(f.old_primary.node)
            if old is not None:
                note = "planned failover"
                if f.old_primary.node in v.maintenance:
                    note = maintenance_note(f.old_primary.node)
                s = Submit(Op.SHARD_PROMOTE, (db.name, shard.index, shard.epoch, f.target, note))
                msg = f"Failover of {name}: {f.target} takes over at offset {old.offset} ({note})"
                return Decision("promotion", heard, needed, s, msg)
            late = v.now_ms - t_fence >= HANDOVER_WAIT_MS
            gone = v.down_for(f.old_primary.node) >= p.node_timeout_ms
            if late or gone:
                why = "no hand-over in time" if late else f"node {f.old_primary.node} not seen"
                s = Submit(Op.SHARD_ABORT, (db.name, shard.index, shard.epoch, why))
                return Decision("abort", heard, needed, s, f"Failover of {name} aborted: {why}")
            return Decision("handover", heard, needed)
        if f.report_of(f.old_primary.node) is not None:
            lease_end = t_fence  # the old primary is frozen itself: no lease to wait out
        else:
            lease_from = v.lease_from(f.old_primary.node, self.seen_slack_ms)
            lease_end = min(t_fence, lease_from) + p.lease_wait_ms
        if v.now_ms < lease_end:
            return Decision("lease", heard, needed)
        best = best_report(f.reports, f.old_primary.node)
        note = ""
        if best is None:
            return Decision("reports", heard, needed)
        if heard < needed:
            if db.failover_policy != "available":
                return Decision("reports", heard, needed)
            if v.now_ms < lease_end + p.report_grace_ms:
                return Decision("grace", heard, needed)
            note = (
                f"available: {heard} of {len(replicas)} replicas heard ({needed} needed);"
                f" writes acknowledged by WAIT {db.failover_guarantee} may be lost"
            )
        s = Submit(Op.SHARD_PROMOTE, (db.name, shard.index, shard.epoch, best.node, note))
        msg = (
            f"Failover of {name}: promoting {best.node} at offset {best.offset}"
            f" ({heard} of {len(replicas)} replicas heard){': ' + note if note else ''}"
        )
        return Decision("promotion", heard, needed, s, msg)

    # -- maintenance and replica HA -------------------------------------------------------

    def _maintenance(self, meta: MetadataStore, dbs: list[Database], v: _View) -> list[Submit]:
        """One planned failover at a time: off nodes in maintenance, then back."""
        if any(s.fence is not None and s.fence.planned for db in dbs for s in db.shards):
            return []
        off = v.maintenance
        for db in dbs:
            p = profile_of(db)
            for s in db.shards:
                if s.state is not ShardState.OK:
                    continue
                up = [
                    r.node
                    for r in s.replicas
                    if r.node not in off and v.down_for(r.node) < p.node_timeout_ms
                ]
                target = ""
                if s.primary.node in off and up:
                    target = up[0]
                elif s.primary.node not in off:
                    target = next((n for n in up if s.note == maintenance_note(n)), "")
                if not target:
                    continue
                sub = Submit(Op.SHARD_FENCE, (db.name, s.index, s.epoch, 1, target))
                if self._due(_key(sub), v.now_ms):
                    why = "maintenance" if s.primary.node in off else "maintenance over"
                    self._note(f"Planned failover of {db.name}/{s.index} to {target} ({why})")
                    return [sub]
                return []
        return []

    def _replica_ha(self, meta: MetadataStore, dbs: list[Database], v: _View) -> list[Submit]:
        out: list[Submit] = []
        eligible = dbops.eligible_nodes(meta)
        load = {n: 0 for n in eligible}
        for db in dbops.databases(meta):  # (every database's instances are load)
            for s in db.shards:
                for inst in s.instances():
                    if inst.node in load:
                        load[inst.node] += 1
        for db in dbs:
            p = profile_of(db)
            for s in db.shards:
                if s.state is not ShardState.OK:
                    continue
                for r in s.replicas:
                    if v.down_for(r.node) < p.replica_ha_ms:
                        continue
                    free = [
                        n
                        for n in eligible
                        if s.instance_on(n) is None and v.down_for(n) < p.node_timeout_ms
                    ]
                    if not free:
                        continue
                    new = min(free, key=lambda n: (load[n], n))
                    sub = Submit(Op.SHARD_MOVE, (db.name, s.index, r.node, new))
                    if self._due(_key(sub), v.now_ms):
                        load[new] += 1
                        self._note(
                            f"Replica of {db.name}/{s.index} moves from {r.node} to {new}"
                            f" ({r.node} not seen for {v.down_for(r.node)} ms)"
                        )
                        out.append(sub)
                    break  # one move per shard at a time
        return out

    # -- status ---------------------------------------------------------------------------

    def status_lines(self, meta: MetadataStore, now_ms: int) -> list[str]:
        """One ``failover:<db>/<shard>`` line per shard not OK or with a note::

            failover:<db>/<i> epoch=<e> state=failing since_ms=<ms>|? planned=yes|no
                old=<node> waiting=<what> reports=<heard>/<needed>/<R> note=<text>

        (``since_ms`` and ``waiting`` need this leader's memory of the fence: ``?``
        elsewhere; ``note`` runs to the end of the line; an OK shard's line has epoch,
        state and note only)."""
        lines = []
        view = None if self._view is None else replace(self._view, now_ms=now_ms)
        for db in dbops.sharded(dbops.databases(meta)):
            for s in db.shards:
                head = f"failover:{db.name}/{s.index} epoch={s.epoch} state={s.state.value}"
                f = s.fence
                if f is None:
                    if s.note:
                        lines.append(f"{head} note={s.note}")
                    continue
                t = self._fenced_at.get((db.name, s.index, s.epoch))
                waiting, since = "?", "?"
                if t is not None and view is not None:
                    d = self.decide(db, s, view)
                    waiting, since = d.waiting, str(now_ms - t)
                replicas = {r.node for r in s.replicas}
                heard = sum(1 for r in f.reports if r.node in replicas)
                needed = reports_needed(len(replicas), db.failover_guarantee)
                lines.append(
                    f"{head} since_ms={since} planned={'yes' if f.planned else 'no'}"
                    f" old={f.old_primary.node} waiting={waiting}"
                    f" reports={heard}/{needed}/{len(replicas)}"
                    f" note={f.down_reason or ('planned' if f.planned else 'node down')}"
                )
        return lines


def _key(s: Submit) -> tuple[str | int, ...]:
    return (s.op.value, *s.args)
