"""Databases as text: the reply of ``DB.INFO`` (and ``DB.CREATE``), the database and
shard lines of ``CLUSTER.STATUS``, and the parser the command-line tools use to read
``DB.INFO`` back.

Owns: the formats. ``DB.INFO``: ``field:value`` lines (name, uid, type, port, endpoints,
shards, replication, replicas, persistence, password yes|no, cluster_api,
failover_guarantee ``wait:<n>``, failover_policy, failover_profile, topology_version),
then one line per shard::

    shard:<index> slots=<first>-<last> epoch=<e> primary=<node>:<host>:<port> replicas=<node>:<host>:<port>,... state=ok|failing forks=<count>

``CLUSTER.STATUS``: one ``database:<name> uid=.. port=.. shards=.. replicas=..
persistence=.. cluster_api=.. failover=wait:<n>/<policy>/<profile> version=..`` line per
database and one ``shard:<name>/<index> slots=.. epoch=.. primary=<node>:<port>
replicas=<node>:<port>,... state=ok|failing forks=<count>`` line per shard (an empty
``replicas=`` when there are none).

A leaderless database (issue 16): ``DB.INFO`` has ``replication_factor``, ``partitions``,
``read_consistency``, ``write_consistency``, ``deletion_strategy``, ``max_clock_skew_ms``,
``hint_bytes_max``, ``hint_count_max``, ``hint_age_ms_max``,
``persistence``, ``password``, ``schema_version``, ``collections`` (a count) and
``topology_version`` instead of the sharded fields, then one ``partition:<index>
slots=<first>-<last> replicas=<node>:<host>:<port>,...`` line per partition (its n
replicas in replica order) and one ``collection:<name> prefix=<prefix>
properties=<name>:<type>,...`` line per collection; in ``CLUSTER.STATUS`` its database line
adds ``type=leaderless n= read= write= strategy= schema=`` and its partitions are
``partition:<name>/<index> slots=.. replicas=<node>:<port>,...`` lines. Never does IO.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ackdb.cluster.databases import Database, DbType, Instance, Shard, Topology


def _yes(v: bool) -> str:
    return "yes" if v else "no"


def _inst(t: Topology, inst: Instance) -> str:
    host, port = t.addr(inst)
    return f"{inst.node}:{host}:{port}"


def _shard_line(s: Shard, inst: str, replicas: str) -> str:
    return (
        f"slots={s.first_slot}-{s.last_slot} epoch={s.epoch} primary={inst} replicas={replicas}"
        f" state={s.state.value} forks={len(s.forks)}"
    )


def info_text(t: Topology) -> str:
    """``DB.INFO``: the database of ``t`` with the addresses of its endpoints and shards."""
    db = t.db
    endpoints: list[str] = []
    for _, host, port in t.endpoints():
        if f"{host}:{port}" not in endpoints:
            endpoints.append(f"{host}:{port}")
    if db.type is DbType.LEADERLESS:
        return _leaderless_info(t, ",".join(endpoints))
    lines = [
        f"name:{db.name}",
        f"uid:{db.uid}",
        f"type:{db.type.value}",
        f"port:{db.port}",
        f"endpoints:{','.join(endpoints)}",
        f"shards:{len(db.shards)}",
        f"replication:{_yes(db.replication)}",
        f"replicas:{db.replicas}",
        f"persistence:{db.persistence.value}",
        f"password:{_yes(bool(db.password_sha256))}",
        f"cluster_api:{_yes(db.cluster_api)}",
        f"failover_guarantee:wait:{db.failover_guarantee}",
        f"failover_policy:{db.failover_policy}",
        f"failover_profile:{db.failover_profile}",
        f"topology_version:{t.version}",
    ]
    for s in db.shards:
        replicas = ",".join(_inst(t, r) for r in s.replicas)
        lines.append(f"shard:{s.index} " + _shard_line(s, _inst(t, s.primary), replicas))
    return "\r\n".join(lines) + "\r\n"


def _leaderless_info(t: Topology, endpoints: str) -> str:
    db = t.db
    lines = [
        f"name:{db.name}",
        f"uid:{db.uid}",
        f"type:{db.type.value}",
        f"port:{db.port}",
        f"endpoints:{endpoints}",
        f"replication_factor:{db.replication_factor}",
        f"partitions:{len(db.shards)}",
        f"read_consistency:{db.read_consistency}",
        f"write_consistency:{db.write_consistency}",
        f"deletion_strategy:{db.deletion_strategy}",
        f"max_clock_skew_ms:{db.max_clock_skew_ms}",
        f"hint_bytes_max:{db.hint_bytes_max}",
        f"hint_count_max:{db.hint_count_max}",
        f"hint_age_ms_max:{db.hint_age_ms_max}",
        f"persistence:{db.persistence.value}",
        f"password:{_yes(bool(db.password_sha256))}",
        f"schema_version:{db.schema_version}",
        f"collections:{len(db.collections)}",
        f"topology_version:{t.version}",
    ]
    for s in db.shards:
        replicas = ",".join(_inst(t, r) for r in s.instances())
        lines.append(f"partition:{s.index} slots={s.first_slot}-{s.last_slot} replicas={replicas}")
    for c in db.collections:
        props = ",".join(f"{p.name}:{p.type}" for p in c.properties)
        lines.append(f"collection:{c.name} prefix={show_prefix(c.prefix)} properties={props}")
    return "\r\n".join(lines) + "\r\n"


def show_prefix(prefix: bytes) -> str:
    """A collection's key prefix as one word of text: printable ASCII as it is, any other
    byte (and the backslash) as ``\\xNN``."""
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b != 0x5C else f"\\x{b:02x}" for b in prefix)


def status_lines(dbs: list[tuple[Database, int]]) -> list[str]:
    """The ``CLUSTER.STATUS`` lines of ``dbs`` (each with its topology version)."""
    lines = []
    for db, version in dbs:
        if db.type is DbType.LEADERLESS:
            lines += _leaderless_status(db, version)
            continue
        lines.append(
            f"database:{db.name} uid={db.uid} port={db.port} shards={len(db.shards)}"
            f" replicas={db.replicas} persistence={db.persistence.value}"
            f" cluster_api={_yes(db.cluster_api)} failover=wait:{db.failover_guarantee}"
            f"/{db.failover_policy}/{db.failover_profile} version={version}"
        )
        for s in db.shards:
            replicas = ",".join(f"{r.node}:{r.port}" for r in s.replicas)
            primary = f"{s.primary.node}:{s.primary.port}"
            lines.append(f"shard:{db.name}/{s.index} " + _shard_line(s, primary, replicas))
    return lines


def _leaderless_status(db: Database, version: int) -> list[str]:
    lines = [
        f"database:{db.name} uid={db.uid} port={db.port} shards={len(db.shards)}"
        f" replicas={db.replicas} persistence={db.persistence.value} type=leaderless"
        f" n={db.replication_factor} read={db.read_consistency} write={db.write_consistency}"
        f" strategy={db.deletion_strategy} schema={db.schema_version} version={version}"
    ]
    for s in db.shards:
        replicas = ",".join(f"{r.node}:{r.port}" for r in s.instances())
        lines.append(
            f"partition:{db.name}/{s.index} slots={s.first_slot}-{s.last_slot} replicas={replicas}"
        )
    return lines


@dataclass
class ShardInfo:
    index: int
    fields: dict[str, str]

    @property
    def primary(self) -> str:
        return self.fields.get("primary", "")

    @property
    def replicas(self) -> list[str]:
        r = self.fields.get("replicas", "")
        return r.split(",") if r else []


@dataclass
class DbInfo:
    fields: dict[str, str] = field(default_factory=dict)
    shards: list[ShardInfo] = field(default_factory=list)
    partitions: list[ShardInfo] = field(default_factory=list)  # a leaderless database's
    collections: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.fields.get("name", "")

    @property
    def port(self) -> int:
        return int(self.fields.get("port", "0") or 0)


def parse_info(text: str) -> DbInfo:
    """``DB.INFO`` text back into fields."""
    info = DbInfo()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if key in ("shard", "partition"):
            index, *pairs = value.split(" ")
            into = info.shards if key == "shard" else info.partitions
            into.append(ShardInfo(int(index), dict(p.split("=", 1) for p in pairs)))
        elif key == "collection":
            name, *pairs = value.split(" ")
            info.collections.append((name, dict(p.split("=", 1) for p in pairs)))
        else:
            info.fields[key] = value
    return info
