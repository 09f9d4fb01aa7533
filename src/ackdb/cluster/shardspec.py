"""What a node's shard supervisor runs, as data: the specs of its processes, the config
file of a shard process, and what a probe of one learns.

Owns: ``ShardSpec`` / ``ProxySpec`` (one process each, named by its *unit*: its
directory relative to the node's data directory, ``shards/<db uid>-<shard index>`` or
``proxies/<db uid>``), ``desired_units`` (what the metadata places on a node),
``shard_config`` (the ``ackdb server`` config file of issue 14's contract) and
``Observed`` / ``parse_replication_info`` (a shard's ``INFO replication``). Pure: never
does IO, reads no clock. The decisions over these are cluster/supervise.py's.

Failover (issue 15, docs/failover.md): a shard spec carries its ``Mode`` -- ``primary``,
``replica`` of ``primary``, ``frozen`` at ``epoch`` (an unplanned failover: freeze and
report), ``handover`` (a planned one: this primary hands over to ``target`` and reports)
or ``hold`` (a replica during a planned one: left alone) -- the shard's ``forks`` (a
replica checks them for divergent writes before it follows its primary), whether this
node's report is in the metadata, and whether the database fails over at all (``lease``:
it has replicas; the process then runs with ``ackdb-lease yes``).

Leaderless databases (issue 16): each replica of a partition is a ``leaderless`` shard
spec -- a standalone primary (no replicaof, no lease, mode PRIMARY for ever) carrying the
database's schema (version and ``LL.SCHEMA`` payload; a change of it is applied live, by
a push, never by a restart) -- and the database's endpoint is a ``ProxySpec`` with
``coordinator`` set (``ackdb coordinator`` instead of ``ackdb proxy``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ackdb.cluster.databases import (
    Database,
    DbType,
    Fork,
    LocalInstance,
    Persistence,
    Role,
    ShardState,
    instances_on,
)
from ackdb.cluster.failover import profile_of
from ackdb.cluster.schema import encode_schema


class Mode(enum.Enum):
    PRIMARY = "primary"
    REPLICA = "replica"
    FROZEN = "frozen"  # an unplanned failover is in progress: frozen at the spec's epoch
    HANDOVER = "handover"  # a planned failover: this primary hands over to the target
    HOLD = "hold"  # a replica while a planned failover runs: no role repair


def shard_unit(db_uid: int, shard: int) -> str:
    """The unit id of a shard process: ``shards/<db uid>-<shard index>``."""
    return f"shards/{db_uid}-{shard}"


@dataclass(frozen=True, slots=True)
class ShardSpec:
    db: str
    db_uid: int
    shard: int
    host: str  # this node's host: the shard binds it
    port: int
    persistence: Persistence
    primary: tuple[str, int] | None  # (host, port) to replicate from; None: a primary
    epoch: int
    mode: Mode | None = None  # None: PRIMARY when ``primary`` is None, else REPLICA
    forks: tuple[Fork, ...] = ()
    target: tuple[str, int] | None = None  # HANDOVER: (host, port) of the target
    reported: bool = False  # FROZEN / HANDOVER: this node's report is in the metadata
    lease: bool = False  # the database fails over: ``ackdb-lease yes``
    timeout_ms: int = 0  # with ``lease``: its profile's shard_timeout_ms
    # A leaderless database's replica (issue 16): standalone, never a replica of anyone;
    # the schema its agent pushes to it (LL.SCHEMA; version 0: none yet).
    leaderless: bool = False
    schema_version: int = 0
    schema: bytes = b""  # the LL.SCHEMA payload (cluster/schema.encode_schema)

    def __post_init__(self) -> None:
        if self.mode is None:
            mode = Mode.PRIMARY if self.primary is None else Mode.REPLICA
            object.__setattr__(self, "mode", mode)

    @property
    def unit(self) -> str:
        return shard_unit(self.db_uid, self.shard)

    def same_process(self, other: Spec) -> bool:
        """True when ``other`` is this process with at most another role, replication
        source or failover step (applied live); anything else needs a restart."""
        if not isinstance(other, ShardSpec):
            return False
        live = replace(
            other,
            primary=self.primary,
            epoch=self.epoch,
            mode=self.mode,
            forks=self.forks,
            target=self.target,
            reported=self.reported,
            schema_version=self.schema_version,
            schema=self.schema,
        )
        return live == self

    @property
    def follows(self) -> tuple[str, int] | None:
        """Whom the process replicates from when the spec is carried out: its primary in
        REPLICA mode, nobody otherwise (frozen, handing over and holding instances are
        left where they are)."""
        return self.primary if self.mode is Mode.REPLICA else None


@dataclass(frozen=True, slots=True)
class ProxySpec:
    """A database's endpoint on this node: ``ackdb proxy``, or for a leaderless database
    ``ackdb coordinator`` (the same options, the same unit name)."""

    db: str
    db_uid: int
    host: str
    port: int
    coordinator: bool = False

    @property
    def unit(self) -> str:
        return f"proxies/{self.db_uid}"

    def same_process(self, other: Spec) -> bool:
        return other == self


Spec = ShardSpec | ProxySpec


def desired_units(
    node: str, dbs: Iterable[Database], hosts: dict[str, str], proxies: bool
) -> dict[str, Spec]:
    """What ``node`` must run for ``dbs``, by unit id; ``hosts`` maps node ids to hosts
    (a replica's primary is reached there)."""
    dbs = list(dbs)
    me = hosts.get(node, "127.0.0.1")
    out: dict[str, Spec] = {}
    for li in instances_on(node, dbs):
        spec = _shard_spec(li, me, hosts)
        out[spec.unit] = spec
    if proxies:
        for db in dbs:
            p = ProxySpec(db.name, db.uid, me, db.port, db.type is DbType.LEADERLESS)
            out[p.unit] = p
    return out


def _leaderless_spec(li: LocalInstance, me: str) -> ShardSpec:
    """A leaderless replica: a standalone server (no replicaof, no lease, no failover)."""
    db = li.db
    return ShardSpec(
        db.name,
        db.uid,
        li.shard.index,
        me,
        li.instance.port,
        db.persistence,
        None,
        li.shard.epoch,
        leaderless=True,
        schema_version=db.schema_version,
        schema=encode_schema(db.schema_version, db.collections) if db.schema_version else b"",
    )


def _shard_spec(li: LocalInstance, me: str, hosts: dict[str, str]) -> ShardSpec:
    if li.db.type is DbType.LEADERLESS:
        return _leaderless_spec(li, me)
    shard, node = li.shard, li.instance.node
    primary = None
    if li.role is Role.REPLICA:
        primary = (hosts.get(li.primary.node, "127.0.0.1"), li.primary.port)
    mode, target, reported = None, None, False
    f = shard.fence
    if shard.state is ShardState.FAILING and f is not None:
        reported = f.report_of(node) is not None
        if not f.planned:
            mode = Mode.FROZEN
        elif li.role is Role.PRIMARY:
            mode = Mode.HANDOVER
            t = shard.instance_on(f.target)
            if t is not None:
                target = (hosts.get(t.node, "127.0.0.1"), t.port)
        else:
            mode = Mode.HOLD
    lease = bool(shard.replicas)
    return ShardSpec(
        li.db.name,
        li.db.uid,
        shard.index,
        me,
        li.instance.port,
        li.db.persistence,
        primary,
        shard.epoch,
        mode,
        shard.forks,
        target,
        reported,
        lease,
        profile_of(li.db).shard_timeout_ms if lease else 0,
    )


# Seconds a stopping shard may wait for its replicas (``shutdown-timeout``): the agent
# must stop every shard before ``ackdb cluster down`` loses patience with it.
SHARD_SHUTDOWN_TIMEOUT_S = 3


def _quote(text: str) -> str:
    """A config-file string: double-quoted, with backslashes and quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shard_config(spec: ShardSpec, unit_dir: str, password: str) -> str:
    """The ``ackdb server`` config file of a shard process (issue 14's contract).

    AOF persistence turns the snapshot rules off (the AOF is the durable copy; a fork
    per save rule would only cost); ``none`` keeps nothing on disk. Full syncs start at
    once (``repl-diskless-sync-delay 0``): a shard's replicas are few and known.

    A shard of a database that fails over runs with ``ackdb-lease yes`` (it accepts
    writes only under its agent's lease). A replica gets a ``replicaof`` line only while
    the shard has no forks: otherwise it comes up as a fenced primary, so that a returning
    old primary cannot full-sync its divergent writes away before the supervisor has
    checked them (ACKDB.DIVERGED) and made it a replica (REPLICAOF); frozen, handing-over
    and holding instances come up without one too."""
    d = unit_dir.rstrip("/")
    lines = [
        "# Written by the node's shard supervisor; rewritten on every start.",
        f"port {spec.port}",
        f"bind {spec.host}",
        # Its primary knows it by this address (not the connection's source address,
        # which on a shared host can be another one): FAILOVER TO names it so.
        f"replica-announce-ip {spec.host}",
        f"dir {_quote(d)}",
        f"pidfile {_quote(d + '/shard.pid')}",
        f"logfile {_quote(d + '/shard.log')}",
        f"requirepass {password}",
        f"masterauth {password}",
        "repl-diskless-sync-delay 0",
        f"shutdown-timeout {SHARD_SHUTDOWN_TIMEOUT_S}",
    ]
    p = spec.persistence
    if p is Persistence.NONE:
        lines += ['save ""', "appendonly no"]
    elif p is Persistence.SNAPSHOT:
        lines += ["appendonly no"]
    else:
        fsync = "always" if p is Persistence.AOF_ALWAYS else "everysec"
        lines += ['save ""', "appendonly yes", f"appendfsync {fsync}"]
    if spec.lease:
        lines.append("ackdb-lease yes")
    if spec.follows is not None and not spec.forks:
        lines.append(f"replicaof {spec.follows[0]} {spec.follows[1]}")
    return "\n".join(lines) + "\n"


# -- observations ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """What a probe learnt (a shard's ``INFO replication``; a proxy answers PING)."""

    role: str = ""  # "master" | "slave" | "" (a proxy, or unknown)
    offset: int = 0
    master_host: str = ""
    master_port: int = 0
    link_up: bool = False
    replicas: int = 0
    last_io_s: int = -1  # a replica: seconds since it last heard from its primary
    frozen: bool = False  # ackdb_frozen:1 (ACKDB.FREEZE, until the next REPLICAOF)
    epoch: int = 0  # ackdb_epoch: the highest epoch it has seen
    # A leaderless replica: the schema version ``LL.SCHEMA`` answered; -1: unknown (not
    # asked, or the replica does not have the command yet).
    ll_schema: int = -1


def parse_replication_info(text: str) -> Observed:
    """The fields of an ``INFO replication`` reply the supervisor uses."""
    f: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            f[k.strip()] = v.strip()

    def num(name: str, default: int = 0) -> int:
        try:
            return int(f.get(name, default))
        except ValueError:
            return default

    role = f.get("role", "")
    offset = num("master_repl_offset")
    if role == "slave":
        offset = num("slave_repl_offset", offset)
    return Observed(
        role=role,
        offset=offset,
        master_host=f.get("master_host", ""),
        master_port=num("master_port"),
        link_up=f.get("master_link_status") == "up",
        replicas=num("connected_slaves"),
        last_io_s=num("master_last_io_seconds_ago", -1) if role == "slave" else -1,
        frozen=f.get("ackdb_frozen") == "1",
        epoch=num("ackdb_epoch"),
    )
