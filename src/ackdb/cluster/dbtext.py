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
``replicas=`` when there are none). Never does IO.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ackdb.cluster.databases import Database, Instance, Shard, Topology


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


def status_lines(dbs: list[tuple[Database, int]]) -> list[str]:
    """The ``CLUSTER.STATUS`` lines of ``dbs`` (each with its topology version)."""
    lines = []
    for db, version in dbs:
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
        if key == "shard":
            index, *pairs = value.split(" ")
            info.shards.append(ShardInfo(int(index), dict(p.split("=", 1) for p in pairs)))
        else:
            info.fields[key] = value
    return info
