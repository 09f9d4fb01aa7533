"""The node agent of the failover simulator: the node-side decisions of issue 15.

Owns, per incarnation of a node's agent: the lease renewals (a ReadIndex read through
the node's Raft member started at local time ``a``; when it completes and the current
applied metadata says this node's instance is the primary of a shard in state OK, the
shard gets ``LEASE <epoch> <a + lease_ms>``), the probes of its shard process (no answer
for ``shard_timeout_ms`` while it is the primary: a shard.down fact), and following the
metadata: starting the shard in the role the contract gives it, freezing it and
reporting its position when its shard is fenced, ``REPLICAOF NO ONE`` on the promoted
instance, and on every other instance ``DIVERGED`` for each fork and then ``REPLICAOF``
the new primary. Its clock is its host's (the shard shares it).

Everything goes through the world's ports (member, shard, clock, local calls that a
pause holds); never does IO and reads no real clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ackdb.consensus import ProposalDropped
from ackdb.replication.state import NULL_REPLID
from ackdb.sim.fo_meta import SHARD_KEY, Profile, Report, ShardMeta
from ackdb.sim.fo_shard import Frozen

if TYPE_CHECKING:
    from ackdb.sim.failover_world import FailoverWorld

TICK_MS = 50  # the agent's reconcile period (local ms)
PROBE_MS = 100  # shard probe period (local ms)
RETRY_MS = 200  # a decision is re-proposed at most this often (local ms)


class Agent:
    def __init__(self, w: FailoverWorld, node_id: str, profile: Profile, incarnation: int) -> None:
        self.w = w
        self.id = node_id
        self.profile = profile
        self.incarnation = incarnation
        self.client_id = f"agent-{node_id}.{incarnation}"
        self.seq = 0
        self.alive = True
        self.last_answer = w.clock(node_id)
        self.frozen_epoch = 0
        self.report: Report | None = None
        self.booted = False
        self._last: dict[str, int] = {}

    # -- life --

    def start(self) -> None:
        self.w.every(self, TICK_MS, self.reconcile)
        self.w.every(self, PROBE_MS, self.probe)
        self.w.every(self, self.profile.lease_renew_ms, self.renew)

    def now(self) -> int:
        return self.w.clock(self.id)

    def meta(self) -> ShardMeta | None:
        return self.w.applied_meta(self.id)

    def _due(self, what: str) -> bool:
        last = self._last.get(what)
        if last is not None and self.now() - last < RETRY_MS:
            return False
        self._last[what] = self.now()
        return True

    def propose(self, old: ShardMeta, new: ShardMeta) -> None:
        self.seq += 1
        self.w.submit(self.id, self.client_id, self.seq, old.encode(), new.encode())

    # -- leases --

    def renew(self) -> None:
        member = self.w.raft.nodes[self.id]
        meta = self.meta()
        if meta is None or meta.primary != self.id or meta.state != "ok":
            return
        a = self.now()
        ctx = f"{self.client_id}/{a}/{self.seq}".encode()
        self.seq += 1
        try:
            member.read(ctx, SHARD_KEY, lambda value: self.w.local_agent(self, self._renewed, a))
        except ProposalDropped:
            return
        self.w.raft.after(member)

    def _renewed(self, a: int) -> None:
        meta = self.meta()  # the current applied metadata, not the read's
        if meta is not None and meta.state == "ok" and meta.primary == self.id:
            epoch, deadline = meta.epoch, a + self.profile.lease_ms
            self.w.local_shard(self.id, lambda shard: shard.lease(epoch, deadline))

    # -- probes --

    def probe(self) -> None:
        self.w.local_shard(self.id, lambda shard: self._answered())
        meta = self.meta()
        silent = self.now() - self.last_answer >= self.profile.shard_timeout_ms
        if meta is not None and meta.primary == self.id and silent and self.booted:
            down = meta.down(meta.epoch)
            if down is not None and self._due("down"):
                self.w.log(f"{self.id}: shard.down (no answer for {self.now() - self.last_answer}ms)")
                self.propose(meta, down)

    def _answered(self) -> None:
        self.w.local_agent(self, self._mark_answered)

    def _mark_answered(self) -> None:
        self.last_answer = self.now()

    # -- following the metadata --

    def reconcile(self) -> None:
        meta = self.meta()
        if meta is None or self.id not in meta.nodes() or not self.w.caught_up(self.id):
            return
        shard = self.w.shards[self.id]
        if not shard.alive:
            self._boot(meta)
            return
        if meta.state == "failing":
            self._failing(meta)
        elif meta.primary == self.id:
            if not shard.engine.is_primary and self._due("promote"):
                self.w.local_shard(self.id, lambda s: s.replicaof(None))
        elif (shard.frozen or shard.following != meta.primary) and self._due("follow"):
            self.w.local_shard(self.id, lambda s: self._follow(meta))

    def _boot(self, meta: ShardMeta) -> None:
        """The shard's role at start: a replica only when it was already following the
        current primary (or no failover ever happened); else a fenced primary."""
        shard = self.w.shards[self.id]
        target = None
        if meta.state == "ok" and meta.primary != self.id:
            if not meta.forks or shard.following == meta.primary:
                target = self.w.shards[meta.primary]
        elif meta.state == "failing" and shard.following not in ("", self.id):
            target = self.w.shards[shard.following]
        self.w.log(f"{self.id}: start shard ({'replica of ' + target.name if target else 'primary'})")
        shard.boot(replica_of=target)
        self.booted = True
        self.last_answer = self.now()

    def _failing(self, meta: ShardMeta) -> None:
        if self.frozen_epoch != meta.epoch:
            if self._due("freeze"):
                epoch = meta.epoch
                self.w.local_shard(self.id, lambda s: self._frozen(epoch, s.freeze(epoch)))
            return
        if self.report is None or any(r.node == self.id for r in meta.reports):
            return
        new = meta.report(meta.epoch, self.report)
        if new is not None and self._due("report"):
            self.propose(meta, new)

    def _frozen(self, epoch: int, answer: Frozen | bytes) -> None:
        if not isinstance(answer, Frozen):
            return
        replid = answer.replid
        if answer.replid2 != NULL_REPLID and answer.offset == answer.second_offset - 1:
            replid = answer.replid2  # a restarted primary: its bytes are all on the old id
        self.frozen_epoch, self.report = epoch, Report(self.id, replid, answer.offset)

    def _follow(self, meta: ShardMeta) -> None:
        shard = self.w.shards[self.id]
        for fork in meta.forks:
            d = shard.diverged(fork.replid, fork.offset, str(fork.epoch))
            if d.count:
                self.w.on_diverged(self.id, d)
        shard.replicaof(self.w.shards[meta.primary])
