"""What a node's agent decides for failover from the metadata and its supervisor's units:
which of its shard processes get a lease, and when it reports its primary down
(issue 15, docs/failover.md).

Owns: ``lease_targets`` (the agent's lease loop sends ``ACKDB.LEASE <epoch> <deadline>``
to these units after each linearizable read) and ``down_facts`` (the ``shard.down``
proposals for its primaries that stopped answering, or that it found gone when it started). Leaderless databases have neither
(no primary, no failover). Pure: never does IO, reads no clock;
the shell (node/) renews, proposes and rate-limits (a repeated shard.down changes
nothing once committed, but each is a Raft round).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ackdb.cluster import dbops
from ackdb.cluster.commands import Op
from ackdb.cluster.databases import (
    Database,
    LocalInstance,
    Role,
    Shard,
    ShardState,
    instances_on,
)
from ackdb.cluster.failover import profile_of
from ackdb.cluster.metadata import MetadataStore
from ackdb.cluster.reconcile import Submit
from ackdb.cluster.shardspec import shard_unit
from ackdb.cluster.supervise import Phase, Unit


def _leased(node: str, dbs: Iterable[Database]) -> list[LocalInstance]:
    """The primaries on ``node`` of shards that fail over (they have replicas), in state
    OK, with no shard.down fact: the ones that must hold a lease to take writes."""
    return [
        li
        for li in instances_on(node, dbops.sharded(list(dbs)))
        if li.role is Role.PRIMARY
        and li.shard.replicas
        and li.shard.state is ShardState.OK
        and not li.shard.down
    ]


def _handed_over_to(node: str, dbs: Iterable[Database]) -> list[tuple[Database, Shard]]:
    """Shards failing over by plan to ``node`` whose old primary has reported its
    hand-over: FAILOVER made it a replica of ``node``'s instance, which is the only
    primary left (its own lease stopped at the fence)."""
    out = []
    for db in dbops.sharded(list(dbs)):
        for s in db.shards:
            f = s.fence
            if (
                s.state is ShardState.FAILING
                and f is not None
                and f.planned
                and f.target == node
                and s.instance_on(node) is not None
                and f.report_of(f.old_primary.node) is not None
            ):
                out.append((db, s))
    return out


def lease_targets(meta: MetadataStore, node: str) -> list[tuple[str, int]]:
    """(unit, epoch) of every local shard process the applied metadata says is the
    primary of a shard in state OK (contract 1): the agent leases exactly these, at that
    epoch. A shard with a shard.down fact gets none (its failover is coming), nor one
    without replicas (it never fails over and runs without ``ackdb-lease``). Also the
    target of a planned failover once the old primary reported its hand-over: it is the
    primary already (FAILOVER promoted it), so leasing it before the promotion commits
    lets the endpoints, which follow the promotion at once, find it taking writes
    (no -TRYAGAIN after a planned failover's pause)."""
    dbs = dbops.databases(meta)
    return [
        (shard_unit(li.db.uid, li.shard.index), li.shard.epoch) for li in _leased(node, dbs)
    ] + [(shard_unit(db.uid, s.index), s.epoch) for db, s in _handed_over_to(node, dbs)]


def down_facts(
    meta: MetadataStore, node: str, units: Mapping[str, Unit], now_ms: int
) -> list[Submit]:
    """``shard.down`` proposals for the primaries on ``node`` that are down: the process
    exited (the supervisor holds it, so at once), or a process that has answered before
    has not answered for its profile's ``shard_timeout_ms``. A first start still
    starting is not judged (a new database's shards may take a while)."""
    out = []
    for li in _leased(node, dbops.databases(meta)):
        u = units.get(shard_unit(li.db.uid, li.shard.index))
        if u is None or u.spec is None:
            continue
        silent = now_ms - u.last_ok_ms
        timeout = profile_of(li.db).shard_timeout_ms
        if u.held:
            why = "its process exited" if u.restarts else "its process was gone at start-up"
        elif u.phase is Phase.RESTARTING:
            continue  # not a held primary (the spec lags the metadata): judged once it is
        elif u.phase is Phase.STARTING and not (u.restarts or u.adopted):
            continue
        elif u.phase is not Phase.STOPPING and silent >= timeout:
            why = f"no answer for {silent} ms"
        else:
            continue
        out.append(Submit(Op.SHARD_DOWN, (li.db.name, li.shard.index, li.shard.epoch, node, why)))
    return out
