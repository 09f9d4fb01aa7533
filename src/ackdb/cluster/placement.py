"""Where a new database's shards run and which ports they get: pure functions of the
nodes that may take work and the databases that exist.

Owns: the placement rules and the port allocation of ``DB.CREATE`` (docs/cluster.md,
"Databases"), and the messages of the requests they refuse. Never does IO, reads no
clock, draws no random number: the metadata state machine calls it while applying the
log, so the same inputs must give the same placement on every member.

Rules:
- the instances of one shard (its primary and its replicas) are on distinct nodes, so a
  request for R replicas needs R+1 nodes (a leaderless database's partitions are placed
  as shards with n-1 replicas: replication factor n needs n nodes);
- primaries go, one at a time, to the node with the fewest primaries (of every database,
  this one included so far), then the fewest instances, then the lowest node id: starting
  from balanced nodes they stay balanced within one;
- all primaries are placed first; then each shard's replicas go to the other nodes with
  the fewest instances, ties broken by the distance from the shard's primary in the
  sorted ring of nodes (so the replicas of a balanced database spread as a ring), then
  by node id;
- ports: the database's endpoint port is the one asked for or the lowest free one of
  ``DB_PORT_RANGE``; every shard instance gets the lowest free port of
  ``SHARD_PORT_RANGE``. A port is free when no database endpoint, shard instance, or
  member's client or cluster port uses it (nodes may share a host, so ports are unique in
  the whole cluster, not per node).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ackdb.cluster.databases import (
    DB_PORT_RANGE,
    SHARD_PORT_RANGE,
    Database,
    Instance,
    Shard,
    slot_ranges,
)

PORT_MAX = 65535


class PlacementError(ValueError):
    """A request the cluster cannot satisfy; the message is the client's error reply."""


@dataclass(frozen=True, slots=True)
class Placement:
    port: int
    shards: tuple[Shard, ...]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def used_ports(dbs: Iterable[Database], member_ports: dict[int, str]) -> dict[int, str]:
    """Every port the cluster hands out or its members listen on -> who uses it."""
    used = dict(member_ports)
    for db in dbs:
        used[db.port] = f"database '{db.name}'"
        for s in db.shards:
            for inst in s.instances():
                used[inst.port] = f"a shard of database '{db.name}'"
    return used


def lowest_free(first: int, last: int, used: dict[int, str] | set[int], count: int) -> list[int]:
    """The ``count`` lowest ports of ``first..last`` not in ``used``; [] if too few."""
    out: list[int] = []
    port = first
    while len(out) < count and port <= last:
        if port not in used:
            out.append(port)
        port += 1
    return out if len(out) == count else []


def choose_port(requested: int, used: dict[int, str]) -> int:
    """The endpoint port: ``requested`` if free (0 = the lowest free of DB_PORT_RANGE)."""
    if requested:
        if not 1 <= requested <= PORT_MAX:
            raise PlacementError(f"ERR port {requested} is out of range (1-{PORT_MAX})")
        if requested in used:
            raise PlacementError(f"ERR port {requested} is already used by {used[requested]}")
        return requested
    free = lowest_free(*DB_PORT_RANGE, used, 1)
    if not free:
        raise PlacementError(f"ERR no free database port in {DB_PORT_RANGE[0]}-{DB_PORT_RANGE[1]}")
    return free[0]


def place(
    nodes: Sequence[str],
    dbs: Sequence[Database],
    shards: int,
    replicas: int,
    port: int,
    member_ports: dict[int, str],
    replication_factor: bool = False,
) -> Placement:
    """Place a database of ``shards`` shards with ``replicas`` replicas each on ``nodes``
    (the eligible node ids), next to ``dbs``. Raises PlacementError, having changed
    nothing, when the request cannot be satisfied. ``replication_factor``: a leaderless
    database (its partitions are the shards, ``replicas`` is its replication factor - 1,
    and a refusal says so in those words)."""
    nodes = sorted(set(nodes))
    if not nodes:
        raise PlacementError("ERR cannot place a database: the cluster has no active node")
    if replicas + 1 > len(nodes) and replication_factor:
        raise PlacementError(
            f"ERR cannot place replication factor {replicas + 1}: its replicas need "
            f"{_plural(replicas + 1, 'node')}, the cluster has {_plural(len(nodes), 'active node')}"
        )
    if replicas + 1 > len(nodes):
        raise PlacementError(
            f"ERR cannot place {_plural(replicas, 'replica')} per shard: needs "
            f"{_plural(replicas + 1, 'node')}, the cluster has {_plural(len(nodes), 'active node')}"
        )
    used = used_ports(dbs, member_ports)
    db_port = choose_port(port, used)
    used[db_port] = "this database"
    ports = lowest_free(*SHARD_PORT_RANGE, used, shards * (replicas + 1))
    if not ports:
        lo, hi = SHARD_PORT_RANGE
        raise PlacementError(f"ERR not enough free shard ports in {lo}-{hi}")
    primaries = {n: 0 for n in nodes}
    load = {n: 0 for n in nodes}
    for db in dbs:
        for s in db.shards:
            if s.primary.node in primaries:
                primaries[s.primary.node] += 1
            for inst in s.instances():
                if inst.node in load:
                    load[inst.node] += 1
    chosen: list[str] = []
    for _ in range(shards):
        p = min(nodes, key=lambda n: (primaries[n], load[n], n))
        primaries[p] += 1
        load[p] += 1
        chosen.append(p)
    ring = {n: i for i, n in enumerate(nodes)}
    out: list[Shard] = []
    it = iter(ports)
    for index, ((first, last), p) in enumerate(zip(slot_ranges(shards), chosen, strict=True)):
        taken = [p]
        for _ in range(replicas):
            r = min(
                (n for n in nodes if n not in taken),
                key=lambda n: (load[n], (ring[n] - ring[p]) % len(nodes), n),
            )
            load[r] += 1
            taken.append(r)
        insts = [Instance(n, next(it)) for n in taken]
        out.append(Shard(index, first, last, 1, insts[0], tuple(insts[1:])))
    return Placement(db_port, tuple(out))
