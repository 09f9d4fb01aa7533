"""Databases in the metadata state machine: ``db.create`` and ``db.delete`` as they apply,
and the views of the databases the client port serves (``Topology``).

Owns: the nodes eligible for new shards, applying a create (validate the options --
``DbOptions``, cluster/dboptions.py's, re-exported here -- place with
cluster/placement.py, store the ``RecordKind.DATABASE`` record) or a delete, the hosts
map, and the topology version.
Never does IO, reads no clock, draws no random number: it runs inside the state machine.

A leaderless database's partitions (issue 16) are placed as shards with n - 1 replicas,
so its n replicas are on n distinct nodes; it never fails over (``sharded`` filters them
out for the failover controller and the leases).

Topology version: ``max(record's last write index, hosts_index)``, where a record's last
write index is the log index of the command that last wrote it (its create, or a later
put such as a failover's), and ``hosts_index`` is the log index of the last command or
configuration entry that changed the hosts map (a member added, removed, activated or
moved to another host; members still joining are not in it). Both are log indexes,
so the version grows with every change to the topology -- a delete and re-create
included -- and stays put otherwise (health changes and port-only address changes leave
it alone).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from ackdb.cluster.commands import OK, Health, RecordKind, Result, fail
from ackdb.cluster.databases import (
    DB_NAME_MAX_CHARS,
    HINT_AGE_MS_MAX_DEFAULT,
    HINT_BYTES_MAX_DEFAULT,
    HINT_COUNT_MAX_DEFAULT,
    Database,
    DbType,
    Persistence,
    Topology,
)
from ackdb.cluster.dboptions import DB_REPLICAS_MAX, DB_SHARDS_MAX, DbOptions
from ackdb.cluster.placement import PlacementError, place

if TYPE_CHECKING:
    from ackdb.cluster.metadata import MetadataStore

# (re-exported: older callers and tests find them here)
__all__ = ["DB_REPLICAS_MAX", "DB_SHARDS_MAX", "DbOptions", "DbType", "Persistence"]

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")


def valid_db_name(name: str) -> bool:
    return 0 < len(name) <= DB_NAME_MAX_CHARS and _NAME_RE.match(name) is not None


# -- the state machine's side -----------------------------------------------------------


def databases(store: MetadataStore) -> list[Database]:
    """Every database whose record decodes, by name (a malformed record is skipped, the
    same way on every member)."""
    out = []
    for r in store.record_list(RecordKind.DATABASE):
        try:
            out.append(Database.from_body(r.body))
        except ValueError:
            continue
    return out


def sharded(dbs: list[Database]) -> list[Database]:
    """The databases that fail over (leaderless ones never do: no primary, no lease)."""
    return [db for db in dbs if db.type is DbType.SHARDED]


def eligible_nodes(store: MetadataStore) -> list[str]:
    """Nodes that may take new shards: active voters with a client address, not down,
    not in maintenance."""
    from ackdb.cluster.metadata import MemberState

    return sorted(
        m.id
        for m in store.members.values()
        if m.state is MemberState.ACTIVE
        and m.id in store.voters
        and m.client_addr
        and m.health is not Health.DOWN
        and not m.maintenance
    )


def _port_of(addr: str) -> int | None:
    _, sep, port = addr.rpartition(":")
    return int(port) if sep and port.isdigit() else None


def member_ports(store: MetadataStore) -> dict[int, str]:
    out: dict[int, str] = {}
    for m in store.member_list():
        for what, addr in (("client", m.client_addr), ("cluster", m.cluster_addr)):
            port = _port_of(addr)
            if port is not None:
                out[port] = f"node {m.id}'s {what} port"
    return out


def apply_create(store: MetadataStore, name: str, options: bytes, index: int) -> Result:
    """``db.create``: the database record, placed, or an error having changed nothing."""
    if not valid_db_name(name):
        return fail(
            f"ERR invalid database name: 1-{DB_NAME_MAX_CHARS} letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    if store.record(RecordKind.DATABASE, name) is not None:
        return fail(f"ERR database '{name}' already exists")
    try:
        opts = DbOptions.from_bytes(options)
        replication, replicas = opts.resolved()
        placed = place(
            eligible_nodes(store),
            databases(store),
            (opts.partitions or 1) if opts.leaderless else opts.shards,
            replicas,
            opts.port,
            member_ports(store),
            replication_factor=opts.leaderless,
        )
    except PlacementError as e:
        return fail(str(e) + _registering_hint(store))
    except ValueError as e:
        return fail(str(e))
    assert opts.persistence is not None
    db = Database(
        name=name,
        uid=index,
        type=opts.type,
        port=placed.port,
        replication=replication,
        replicas=replicas,
        persistence=opts.persistence,
        password_sha256=opts.password_sha256,
        cluster_api=opts.cluster_api,
        shards=placed.shards,
        failover_guarantee=min(1, replicas)
        if opts.failover_guarantee is None
        else opts.failover_guarantee,
        failover_policy=opts.failover_policy,
        failover_profile=opts.failover_profile,
        acl_users=opts.acl_users,
    )
    if opts.leaderless:
        db = replace(
            db,
            failover_guarantee=0,
            read_consistency=opts.read_consistency or "QUORUM",
            write_consistency=opts.write_consistency or "QUORUM",
            deletion_strategy=opts.deletion_strategy or "TimeBasedResolution",
            max_clock_skew_ms=opts.max_clock_skew_ms or 500,
            hint_bytes_max=opts.hint_bytes_max or HINT_BYTES_MAX_DEFAULT,
            hint_count_max=opts.hint_count_max or HINT_COUNT_MAX_DEFAULT,
            hint_age_ms_max=opts.hint_age_ms_max or HINT_AGE_MS_MAX_DEFAULT,
        )
    store.put_record(RecordKind.DATABASE, name, db.to_body(), index)
    return OK


def _registering_hint(store: MetadataStore) -> str:
    """Voters that have not registered their client address yet (just after a cluster
    starts) take no shards: say so, as the refusal will not last."""
    n = sum(1 for v in store.voters if not (m := store.members.get(v)) or not m.client_addr)
    return f" ({n} more not registered yet: try again shortly)" if n else ""


def apply_delete(store: MetadataStore, name: str) -> Result:
    if not store.del_record(RecordKind.DATABASE, name):
        return fail(f"ERR no such database '{name}'")
    return OK


# -- hosts and topologies ---------------------------------------------------------------


def host_of(addr: str) -> str:
    host = addr.rpartition(":")[0]
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def hosts(store: MetadataStore) -> dict[str, str]:
    """node id -> host of every member with a client address, but those still joining
    (a member being removed may still run shards until they move)."""
    from ackdb.cluster.metadata import MemberState

    return {
        m.id: host_of(m.client_addr)
        for m in store.member_list()
        if m.client_addr and m.state is not MemberState.JOINING
    }


def topology_version(store: MetadataStore, name: str) -> int | None:
    """The version ``topology`` would give, cheaply; None if there is no such record."""
    r = store.record(RecordKind.DATABASE, name)
    return None if r is None else max(r.modified, store.hosts_index)


def load(store: MetadataStore, name: str) -> Database | str:
    """Database ``name``, or the client's error text when there is none or its record is
    malformed (shard and schema operations name it in their commands)."""
    r = store.record(RecordKind.DATABASE, name)
    if r is None:
        return f"ERR no such database '{name}'"
    try:
        return Database.from_body(r.body)
    except ValueError as e:
        return f"ERR {e}"


def topology(store: MetadataStore, name: str, node: str) -> Topology | None:
    """Database ``name`` as the endpoint on ``node`` routes it; None if there is no such
    database. Raises ValueError if its record is malformed."""
    r = store.record(RecordKind.DATABASE, name)
    if r is None:
        return None
    db = Database.from_body(r.body)
    return Topology(max(r.modified, store.hosts_index), db, hosts(store), node)
