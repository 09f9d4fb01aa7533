"""The failover simulator's view of one shard's metadata, and its transitions.

Owns: ``ShardMeta`` -- what the cluster metadata says of the simulated shard (epoch,
state, primary, replicas, the fence in progress with its reports, the forks, the last
promotion's note) -- its encoding as a value of the simulated Raft members' register map
(sim/kv.py: every change is a compare-and-set of the whole record, so a change decided
on a stale view applies only if nothing changed meanwhile, as the contract's "applies
only if its epoch equals the shard's current epoch" asks), the pure transitions
(``down``, ``fence``, ``report``, ``promote``) and the failover ``Profile`` numbers
(docs: the contract of issue 15). Never does IO and reads no clock.

This is the simulator's stand-in for the records of cluster/databases.py and the ops of
cluster/commands.py that branch ``focore`` adds; the decisions that read it
(sim/fo_control.py) follow the contract rule by rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import msgpack

SHARD_KEY = "db1/0"
FORKS_KEPT = 8  # the contract: keep the last 8 forks


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    node_timeout_ms: int
    shard_timeout_ms: int
    lease_ms: int
    lease_renew_ms: int
    drift: float
    margin_ms: int
    report_grace_ms: int


PROFILES = {
    "high": Profile("high", 1000, 1000, 500, 150, 0.05, 50, 300),
    "low": Profile("low", 5000, 5000, 2500, 700, 0.05, 200, 1500),
    # Simulator only: a lease that outlives detection, so that nothing but the
    # controller's lease wait keeps a cut-off primary from overlapping its successor.
    "long-lease": Profile("long-lease", 1000, 1000, 2500, 300, 0.05, 50, 300),
}


@dataclass(frozen=True, slots=True)
class Report:
    node: str
    replid: str
    offset: int


@dataclass(frozen=True, slots=True)
class Fork:
    epoch: int
    replid: str
    offset: int


@dataclass(frozen=True, slots=True)
class ShardMeta:
    epoch: int
    state: str  # "ok" | "failing"
    primary: str
    replicas: tuple[str, ...]
    old_primary: str = ""  # the fenced primary while failing
    reports: tuple[Report, ...] = ()
    forks: tuple[Fork, ...] = ()
    note: str = ""
    down_epoch: int = 0  # a shard.down fact was committed for this epoch

    def nodes(self) -> tuple[str, ...]:
        return (self.primary, *self.replicas)

    def encode(self) -> bytes:
        out = msgpack.packb(
            [
                self.epoch,
                self.state,
                self.primary,
                list(self.replicas),
                self.old_primary,
                [[r.node, r.replid, r.offset] for r in self.reports],
                [[f.epoch, f.replid, f.offset] for f in self.forks],
                self.note,
                self.down_epoch,
            ],
            use_bin_type=True,
        )
        assert isinstance(out, bytes)
        return out

    @staticmethod
    def decode(data: bytes) -> ShardMeta:
        v: Any = msgpack.unpackb(data, raw=False)
        epoch, state, primary, replicas, old, reports, forks, note, down = v
        return ShardMeta(
            epoch=epoch,
            state=state,
            primary=primary,
            replicas=tuple(replicas),
            old_primary=old,
            reports=tuple(Report(n, r, o) for n, r, o in reports),
            forks=tuple(Fork(e, r, o) for e, r, o in forks),
            note=note,
            down_epoch=down,
        )

    # -- transitions (each None when it does not apply to this state) --

    def down(self, epoch: int) -> ShardMeta | None:
        """shard.down: the primary's agent says its process stopped answering."""
        if epoch != self.epoch or self.state != "ok" or self.down_epoch == epoch:
            return None
        return replace(self, down_epoch=epoch)

    def fence(self, epoch: int) -> ShardMeta | None:
        """shard.fence: epoch+1, FAILING; the primary so far is fenced."""
        if epoch != self.epoch or self.state != "ok":
            return None
        return replace(
            self, epoch=epoch + 1, state="failing", old_primary=self.primary, reports=()
        )

    def report(self, epoch: int, r: Report) -> ShardMeta | None:
        """shard.report: a frozen instance's position (one per node)."""
        if epoch != self.epoch or self.state != "failing":
            return None
        if r.node not in self.nodes() or any(x.node == r.node for x in self.reports):
            return None
        return replace(self, reports=(*self.reports, r))

    def promote(self, epoch: int, node: str, note: str) -> ShardMeta | None:
        """shard.promote: ``node`` becomes primary; the old one stays as a replica; the
        winner's report is the fork point every other instance checks for divergence."""
        if epoch != self.epoch or self.state != "failing":
            return None
        won = [r for r in self.reports if r.node == node]
        if not won:
            return None
        fork = Fork(epoch, won[0].replid, won[0].offset)
        replicas = tuple(sorted(n for n in self.nodes() if n != node))
        return replace(
            self,
            state="ok",
            primary=node,
            replicas=replicas,
            old_primary="",
            reports=(),
            forks=(*self.forks, fork)[-FORKS_KEPT:],
            note=note,
        )
