"""Failover in the metadata state machine: the ``shard.*`` and ``node.maintenance`` ops as
they apply (issue 15, docs/failover.md).

Owns: the checks and the transitions of a shard's failover record. Never does IO, reads
no clock, draws no random number: it runs inside the state machine, so the same log gives
the same shards on every member. Which op to propose, and when, is the leader's
controller's (cluster/failover.py) -- but for ``planned_fences``, the fences of an
operator's ``DB.FAILOVER``; what a node does about the result is its supervisor's.

A shard's states (``E`` its epoch)::

    OK(E) --shard.down [E, primary's node]--> OK(E) with ``down`` set (a fact, no change
                                              of roles)
    OK(E) --shard.fence [E]--> FAILING(E+1), fence = (old primary, planned, target, ...)
    FAILING(E) --shard.report [E, node]--> FAILING(E), the node's report kept (latest)
    FAILING(E) --shard.promote [E, node]--> OK(E): node is the primary, the old primary a
                                            replica, a fork appended (from node's report;
                                            a planned target's: the old primary's)
    FAILING(E) --shard.abort [E]--> OK(E+1), same primary
    OK(E) --shard.move [old, new]--> OK(E): the replica on ``old`` now on ``new``

Every op whose epoch is not the shard's current one, or whose state does not fit, fails
with an error Result and changes nothing, so retries and late copies are harmless. Each
op that changes the shard rewrites the database record, so the topology version
(cluster/dbops.py) grows; a retry of what is already recorded (a report, a down fact)
succeeds and changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ackdb.cluster import dbops
from ackdb.cluster.commands import OK, Health, Op, RecordKind, Result, fail
from ackdb.cluster.databases import (
    FORKS_KEPT,
    SHARD_PORT_RANGE,
    Database,
    DbType,
    Fence,
    Fork,
    Instance,
    Report,
    Shard,
    ShardState,
)
from ackdb.cluster.placement import lowest_free, used_ports

if TYPE_CHECKING:
    from ackdb.cluster.metadata import MetadataStore

NOTE_MAX_CHARS = 200  # a promotion's note as the record keeps it


def _load(store: MetadataStore, name: str, index: int) -> tuple[Database, Shard] | Result:
    db = dbops.load(store, name)
    if isinstance(db, str):
        return fail(db)
    if db.type is not DbType.SHARDED:
        return fail(f"ERR database '{name}' is leaderless: its partitions never fail over")
    shard = db.shard(index)
    if shard is None:
        return fail(f"ERR database '{name}' has no shard {index}")
    return db, shard


def _save(store: MetadataStore, db: Database, shard: Shard, index: int) -> Result:
    shards = tuple(shard if s.index == shard.index else s for s in db.shards)
    store.put_record(RecordKind.DATABASE, db.name, replace(db, shards=shards).to_body(), index)
    return OK


def _stale(shard: Shard, epoch: int, state: ShardState) -> Result | None:
    if epoch != shard.epoch:
        return fail(f"STALE epoch {epoch} (shard {shard.index} is at epoch {shard.epoch})")
    if shard.state is not state:
        return fail(f"STALE shard {shard.index} is {shard.state.value}, not {state.value}")
    return None


def apply(store: MetadataStore, op: Op, a: tuple[Any, ...], index: int) -> Result:
    """Apply one ``shard.*`` op at log index ``index``."""
    if op is Op.NODE_MAINTENANCE:
        return apply_maintenance(store, a[0], a[1])
    loaded = _load(store, a[0], a[1])
    if isinstance(loaded, Result):
        return loaded
    db, shard = loaded
    if op is Op.SHARD_MOVE:
        return _move(store, db, shard, a[2], a[3], index)
    if op is Op.SHARD_DOWN:
        out = _down(shard, a[2], a[3], a[4])
    elif op is Op.SHARD_FENCE:
        out = _fence(shard, a[2], bool(a[3]), a[4], index)
    elif op is Op.SHARD_REPORT:
        out = _report(shard, a[2], Report(a[3], a[4], a[5]))
    elif op is Op.SHARD_PROMOTE:
        out = _promote(shard, a[2], a[3], a[4])
    else:
        assert op is Op.SHARD_ABORT, op
        out = _abort(shard, a[2], a[3])
    if isinstance(out, Result):
        return out
    if out == shard:
        return OK  # a retry of what is already recorded: nothing changes
    return _save(store, db, out, index)


def _down(shard: Shard, epoch: int, node: str, reason: str) -> Shard | Result:
    if (err := _stale(shard, epoch, ShardState.OK)) is not None:
        return err
    if node != shard.primary.node:
        return fail(f"STALE {node} does not hold the primary of shard {shard.index}")
    return shard if shard.down else replace(shard, down=reason or "down")


def _fence(shard: Shard, epoch: int, planned: bool, target: str, index: int) -> Shard | Result:
    if (err := _stale(shard, epoch, ShardState.OK)) is not None:
        return err
    if planned and target not in {r.node for r in shard.replicas}:
        return fail(f"ERR planned failover target '{target}' holds no replica of the shard")
    if not planned:
        target = ""
    fence = Fence(index, shard.primary, planned, target, shard.down)
    return replace(shard, epoch=epoch + 1, state=ShardState.FAILING, fence=fence, down="")


def _report(shard: Shard, epoch: int, report: Report) -> Shard | Result:
    if (err := _stale(shard, epoch, ShardState.FAILING)) is not None:
        return err
    assert shard.fence is not None
    if shard.instance_on(report.node) is None:
        return fail(f"ERR {report.node} holds no instance of shard {shard.index}")
    if report.offset < 0:
        return fail("ERR a report's offset is never negative")
    if shard.fence.report_of(report.node) == report:
        return shard
    reports = tuple(r for r in shard.fence.reports if r.node != report.node)
    fence = replace(shard.fence, reports=(*reports, report))
    return replace(shard, fence=fence)


def _promote(shard: Shard, epoch: int, node: str, note: str) -> Shard | Result:
    if (err := _stale(shard, epoch, ShardState.FAILING)) is not None:
        return err
    assert shard.fence is not None
    f = shard.fence
    winner = shard.instance_on(node)
    report = f.report_of(node)
    if f.planned and node == f.target:
        # The old primary handed over (FAILOVER TO the target) and reported where: the
        # target holds exactly its history, so the fork is the old primary's report.
        report = f.report_of(f.old_primary.node)
    if winner is None:
        return fail(f"ERR {node} holds no instance of shard {shard.index}")
    if report is None:
        return fail(f"ERR no report from {node}: only a frozen instance is promoted")
    # The old primary takes the winner's place among the replicas (nothing if it wins).
    replicas = tuple(shard.primary if r == winner else r for r in shard.replicas)
    forks = (*shard.forks, Fork(epoch, report.replid, report.offset))[-FORKS_KEPT:]
    return replace(
        shard,
        primary=winner,
        replicas=replicas,
        state=ShardState.OK,
        fence=None,
        forks=forks,
        note=note[:NOTE_MAX_CHARS],
    )


def _abort(shard: Shard, epoch: int, reason: str) -> Shard | Result:
    if (err := _stale(shard, epoch, ShardState.FAILING)) is not None:
        return err
    note = f"failover aborted: {reason}"[:NOTE_MAX_CHARS]
    return replace(shard, epoch=epoch + 1, state=ShardState.OK, fence=None, note=note)


def _move(
    store: MetadataStore, db: Database, shard: Shard, old: str, new: str, index: int
) -> Result:
    if shard.state is not ShardState.OK:
        return fail(f"STALE shard {shard.index} is {shard.state.value}")
    moving = next((r for r in shard.replicas if r.node == old), None)
    if moving is None:
        return fail(f"STALE {old} holds no replica of shard {shard.index}")
    if shard.instance_on(new) is not None:
        return fail(f"ERR {new} already holds an instance of shard {shard.index}")
    if new not in dbops.eligible_nodes(store):
        return fail(f"ERR {new} cannot take shards (not an active node, or down)")
    used = used_ports(dbops.databases(store), dbops.member_ports(store))
    ports = lowest_free(*SHARD_PORT_RANGE, used, 1)
    if not ports:
        lo, hi = SHARD_PORT_RANGE
        return fail(f"ERR not enough free shard ports in {lo}-{hi}")
    inst = Instance(new, ports[0])
    replicas = tuple(inst if r == moving else r for r in shard.replicas)
    return _save(store, db, replace(shard, replicas=replicas), index)


def apply_maintenance(store: MetadataStore, node: str, on_off: str) -> Result:
    m = store.members.get(node)
    if m is None:
        return fail(f"NOTFOUND no member '{node}'")
    if on_off not in ("on", "off"):
        return fail("ERR maintenance is 'on' or 'off'")
    store.members[node] = replace(m, maintenance=on_off == "on")
    return OK


def planned_fences(
    meta: MetadataStore, name: str, shard: int | None
) -> list[tuple[str, int, int, int, str]]:
    """The ``shard.fence`` arguments of ``DB.FAILOVER name [shard]`` (every shard when
    ``shard`` is None): planned, to the first replica on a node that is not down nor in
    maintenance (the metadata knows no offsets; FAILOVER waits for the target to catch
    up). ValueError with the client's error when a shard cannot fail over now."""
    try:
        db = next(d for d in dbops.databases(meta) if d.name == name)
    except StopIteration:
        raise ValueError(f"ERR no such database '{name}'") from None
    if db.type is not DbType.SHARDED:
        raise ValueError(f"ERR database '{name}' is leaderless: its partitions never fail over")
    if shard is not None and db.shard(shard) is None:
        raise ValueError(f"ERR database '{name}' has no shard {shard}")
    off = {m.id for m in meta.members.values() if m.maintenance or m.health is Health.DOWN}
    out = []
    for s in db.shards if shard is None else (db.shards[shard],):
        if s.state is not ShardState.OK:
            raise ValueError(f"ERR shard {s.index} is failing over already (epoch {s.epoch})")
        target = next((r.node for r in s.replicas if r.node not in off), None)
        if target is None:
            raise ValueError(f"ERR shard {s.index} has no replica to fail over to")
        out.append((db.name, s.index, s.epoch, 1, target))
    return out
