"""What a node's shard supervisor runs, as data: the specs of its processes, the config
file of a shard process, and what a probe of one learns.

Owns: ``ShardSpec`` / ``ProxySpec`` (one process each, named by its *unit*: its
directory relative to the node's data directory, ``shards/<db uid>-<shard index>`` or
``proxies/<db uid>``), ``desired_units`` (what the metadata places on a node),
``shard_config`` (the ``ackdb server`` config file of issue 14's contract) and
``Observed`` / ``parse_replication_info`` (a shard's ``INFO replication``). Pure: never
does IO, reads no clock. The decisions over these are cluster/supervise.py's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from ackdb.cluster.databases import Database, Persistence, instances_on


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

    @property
    def unit(self) -> str:
        return f"shards/{self.db_uid}-{self.shard}"

    def same_process(self, other: Spec) -> bool:
        """True when ``other`` is this process with at most another replication source
        (applied live); anything else needs a restart."""
        if not isinstance(other, ShardSpec):
            return False
        return replace(other, primary=self.primary, epoch=self.epoch) == self


@dataclass(frozen=True, slots=True)
class ProxySpec:
    db: str
    db_uid: int
    host: str
    port: int

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
        primary = None
        if li.primary != li.instance:
            primary = (hosts.get(li.primary.node, "127.0.0.1"), li.primary.port)
        spec = ShardSpec(
            li.db.name,
            li.db.uid,
            li.shard.index,
            me,
            li.instance.port,
            li.db.persistence,
            primary,
            li.shard.epoch,
        )
        out[spec.unit] = spec
    if proxies:
        for db in dbs:
            p = ProxySpec(db.name, db.uid, me, db.port)
            out[p.unit] = p
    return out


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
    once (``repl-diskless-sync-delay 0``): a shard's replicas are few and known."""
    d = unit_dir.rstrip("/")
    lines = [
        "# Written by the node's shard supervisor; rewritten on every start.",
        f"port {spec.port}",
        f"bind {spec.host}",
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
    if spec.primary is not None:
        lines.append(f"replicaof {spec.primary[0]} {spec.primary[1]}")
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
    )
