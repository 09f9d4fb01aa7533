"""Which shard directories a node must check for divergent writes before removing them
(issue 15, docs/failover.md, "A unit that leaves its node").

Owns: ``retire_checks`` -- for each unit a node holds that the metadata no longer places
on it, whether its data may hold writes nobody else has, and the spec of the process
that checks it. Pure: never does IO, reads no clock; cluster/supervise.py decides what
to do with the answer, node/shards.py finds the units and their ports on disk.

A unit leaves a node when its database is deleted (nothing to keep: the operator deleted
the data) or when replica high availability moves the replica it held to another node
while the node was down. That replica may be a failed primary that the failover put
among the replicas: it can hold writes the new primary never received. A shard whose
history never forked (no failover since its creation) has no such writes: every
instance's data is a prefix of the one primary's stream, so its directory goes at once.
Otherwise the unit is started on its old port as a fenced primary (``Mode.FROZEN``,
reported, no ``replicaof``, no lease) and sent ``ACKDB.DIVERGED`` for each fork, as a
returning old primary is before it follows; its files of divergent writes are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ackdb.cluster.databases import Database, DbType
from ackdb.cluster.failover import profile_of
from ackdb.cluster.shardspec import Mode, ShardSpec, shard_unit


def parse_shard_unit(unit: str) -> tuple[int, int] | None:
    """(database uid, shard index) of a ``shards/<uid>-<index>`` unit id, else None."""
    kind, _, name = unit.partition("/")
    uid, sep, index = name.partition("-")
    if kind != "shards" or not sep or not uid.isdigit() or not index.isdigit():
        return None
    return int(uid), int(index)


def retire_checks(
    leaving: Iterable[str], dbs: Iterable[Database], host: str, ports: Mapping[str, int]
) -> dict[str, ShardSpec]:
    """The check spec of each unit in ``leaving`` (units not desired any more) that must
    be checked before its directory goes: a shard of a sharded database that still
    exists and whose history forked, with a known port (``ports``: its last spec's, or
    its config file's)."""
    by_uid = {db.uid: db for db in dbs if db.type is DbType.SHARDED}
    out: dict[str, ShardSpec] = {}
    for unit in leaving:
        parsed = parse_shard_unit(unit)
        port = ports.get(unit)
        if parsed is None or port is None or parsed[0] not in by_uid:
            continue
        db = by_uid[parsed[0]]
        shard = db.shard(parsed[1])
        if shard is None or not shard.forks or shard_unit(db.uid, shard.index) != unit:
            continue
        out[unit] = ShardSpec(
            db.name,
            db.uid,
            shard.index,
            host,
            port,
            db.persistence,
            None,
            shard.epoch,
            Mode.FROZEN,
            shard.forks,
            None,
            True,  # "reported": nothing to report, it is no instance of the shard
            True,  # with a lease setting: a fenced primary, never taking a write
            profile_of(db).shard_timeout_ms,
        )
    return out
