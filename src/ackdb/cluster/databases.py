"""Databases as cluster metadata: what a database is, where its shards run, and what
each node must run for it. The contract between the metadata store (which creates and
places databases), the node's shard supervisor (which runs the shard processes) and the
proxy endpoints (which route clients to them, from a ``Topology``).

Owns: the ``Database`` record (its options and its shard placement), its encoding as a
metadata record body (a msgpack map with str keys, ``RecordKind.DATABASE``, named by the
database's name), the slot arithmetic of a sharded database, and the pure views the
shells need: the shard instances a node runs (``instances_on``) and a database's
``Topology`` as an endpoint sees it (hosts of the nodes, so addresses of the shards). Never does IO, reads no clock.

A database of S shards splits the 16384 slots into S contiguous ranges, rounding as
``redis-cli --cluster create`` does. Each shard has a primary instance and ``replicas`` replica instances, each on a different
node; every instance has a port of its own, unique in the cluster (so nodes sharing one
host never clash). ``epoch`` counts the shard's role changes (failover bumps it; the
supervisor and proxies act on the highest epoch they have seen).

Failover (issue 15, docs/failover.md): a shard is ``ok`` or ``failing``. ``shard.fence``
bumps the epoch and makes it ``failing`` with a ``Fence`` (who the old primary was, the
frozen instances' ``Report``s as they arrive); ``shard.promote`` makes a replica the
primary, appends a ``Fork`` (where the new primary's history left the old one) and makes
it ``ok`` again; ``shard.abort`` ends a failing one with the same primary. ``down`` is the
reason of a committed ``shard.down`` fact of the current epoch ("" for none). Bodies
written before these fields decode with their defaults (ok, no fence, no forks; a
database's guarantee ``wait:1`` when it has replicas, else 0; strict; high).

Every node serves every database on ``port`` (its proxy endpoint, on the node's host).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import msgpack

from ackdb.cluster.schema import Collection

SLOTS = 16384
DB_NAME_MAX_CHARS = 64
DEFAULT_DB_NAME = "default"
DEFAULT_DB_PORT = 12000  # the database ``ackdb cluster up`` creates
# Ports the cluster hands out: database endpoints (when --port is not given) and shard
# processes, each unique in the cluster. Both lie below Linux's ephemeral range
# (32768-60999), so no outgoing connection can hold one a shard needs (Redis Enterprise
# uses 10000-19999 and 20000-29999 the same way).
DB_PORT_RANGE = (12000, 12999)
SHARD_PORT_RANGE = (20000, 29999)


class DbType(enum.Enum):
    SHARDED = "sharded"  # primary/replica shards behind proxy endpoints
    LEADERLESS = "leaderless"  # (issue 16)


class Persistence(enum.Enum):
    NONE = "none"
    AOF_EVERYSEC = "aof-everysec"
    AOF_ALWAYS = "aof-always"
    SNAPSHOT = "snapshot"


class ShardState(enum.StrEnum):
    OK = "ok"
    FAILING = "failing"


FAILOVER_POLICIES = ("strict", "available")
LEVELS = ("ONE", "QUORUM", "ALL")  # a leaderless database's consistency levels
STRATEGIES = ("TimeBasedResolution", "DeleteOnConflict", "NoAutomatedResolution")
# A leaderless database's hint limits, per replica a coordinator keeps hints for
# (leaderless/hints.py); the age limit is also part of the tombstone grace.
HINT_BYTES_MAX_DEFAULT = 64 << 20
HINT_COUNT_MAX_DEFAULT = 100_000
# Cassandra's max_hint_window is 3 h; a replica away longer is rebuilt by anti-entropy.
HINT_AGE_MS_MAX_DEFAULT = 3 * 3600 * 1000
FAILOVER_PROFILES = ("high", "low")
FORKS_KEPT = 8  # a shard remembers its last 8 forks


class Role(enum.Enum):
    PRIMARY = "primary"
    REPLICA = "replica"


@dataclass(frozen=True, slots=True)
class Instance:
    """One shard process: which node runs it and on which port."""

    node: str
    port: int


@dataclass(frozen=True, slots=True)
class Report:
    """What a frozen instance's ACKDB.FREEZE answered: its history and offset."""

    node: str
    replid: str
    offset: int


@dataclass(frozen=True, slots=True)
class Fence:
    """A failover in progress (the shard is ``failing``)."""

    started_index: int  # log index of the shard.fence
    old_primary: Instance
    planned: bool
    target: str  # the planned failover's target node; "" otherwise
    down_reason: str  # the shard.down fact that started it, "" if none
    reports: tuple[Report, ...] = ()

    def report_of(self, node: str) -> Report | None:
        return next((r for r in self.reports if r.node == node), None)


@dataclass(frozen=True, slots=True)
class Fork:
    """Where a promotion forked the shard's history: the new primary's report."""

    epoch: int
    replid: str
    offset: int


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # 0 .. shards-1
    first_slot: int  # inclusive
    last_slot: int  # inclusive
    epoch: int  # role changes so far (1 at creation)
    primary: Instance
    replicas: tuple[Instance, ...]
    state: ShardState = ShardState.OK
    fence: Fence | None = None  # set exactly when state is FAILING
    forks: tuple[Fork, ...] = ()  # the last FORKS_KEPT, oldest first
    note: str = ""  # the last promotion's note (e.g. an available-policy warning)
    down: str = ""  # reason of a committed shard.down of this epoch; "" for none

    def instances(self) -> tuple[Instance, ...]:
        return (self.primary, *self.replicas)

    def instance_on(self, node: str) -> Instance | None:
        return next((i for i in self.instances() if i.node == node), None)

    def role_of(self, node: str) -> Role | None:
        if self.primary.node == node:
            return Role.PRIMARY
        if any(r.node == node for r in self.replicas):
            return Role.REPLICA
        return None


@dataclass(frozen=True, slots=True)
class Database:
    name: str
    uid: int  # the log index of its creation: unique for the cluster's life
    type: DbType
    port: int  # the endpoint's port on every node
    replication: bool
    replicas: int  # replicas per shard (0 when replication is off)
    persistence: Persistence
    password_sha256: str  # hex digest of the endpoint's password; "" = no password
    cluster_api: bool
    shards: tuple[Shard, ...]
    failover_guarantee: int = -1  # n of WAIT n a failover keeps; -1: 1 with replicas, else 0
    failover_policy: str = "strict"  # | "available"
    failover_profile: str = "high"  # | "low"

    # ACL users of the database's endpoints: ``<name> <rules...>`` lines as ACL LIST writes
    # them (passwords as SHA-256 only); empty: the default user alone (docs/acl.md).
    acl_users: tuple[str, ...] = ()

    # Leaderless databases (issue 16, docs/leaderless.md). ``shards`` are its partitions;
    # every instance of a partition is an equal replica (``primary`` is only the first of
    # the replica set, in replica order), ``replicas`` is the replication factor - 1, and
    # the epoch never changes (there is no failover). The defaults are a sharded
    # database's (unused) and absent from its body.
    read_consistency: str = "QUORUM"  # ONE | QUORUM | ALL
    write_consistency: str = "QUORUM"
    deletion_strategy: str = "TimeBasedResolution"  # | DeleteOnConflict | NoAutomatedResolution
    max_clock_skew_ms: int = 500
    hint_bytes_max: int = HINT_BYTES_MAX_DEFAULT
    hint_count_max: int = HINT_COUNT_MAX_DEFAULT
    hint_age_ms_max: int = HINT_AGE_MS_MAX_DEFAULT
    schema_version: int = 0  # bumped by every committed schema change (0: never changed)
    collections: tuple[Collection, ...] = ()  # cluster/schema.py

    def __post_init__(self) -> None:
        if self.failover_guarantee < 0:
            object.__setattr__(self, "failover_guarantee", min(1, self.replicas))

    @property
    def replication_factor(self) -> int:
        """A leaderless database's n (replicas per key); 1 + replicas for any database."""
        return self.replicas + 1

    def shard(self, index: int) -> Shard | None:
        return self.shards[index] if 0 <= index < len(self.shards) else None

    def shard_of_slot(self, slot: int) -> Shard:
        """The shard holding ``slot`` (shards are sorted by their slot ranges)."""
        lo, hi = 0, len(self.shards) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.shards[mid].last_slot < slot:
                lo = mid + 1
            else:
                hi = mid
        return self.shards[lo]

    # -- as a metadata record body ------------------------------------------------------

    def to_body(self) -> bytes:
        body = {
            "name": self.name,
            "uid": self.uid,
            "type": self.type.value,
            "port": self.port,
            "replication": self.replication,
            "replicas": self.replicas,
            "persistence": self.persistence.value,
            "password_sha256": self.password_sha256,
            "cluster_api": self.cluster_api,
            "shards": [_shard_body(s) for s in self.shards],
            "failover_guarantee": self.failover_guarantee,
            "failover_policy": self.failover_policy,
            "failover_profile": self.failover_profile,
        }
        if self.acl_users:  # (absent when empty: records written before ACLs read the same)
            body["acl_users"] = list(self.acl_users)
        if self.type is DbType.LEADERLESS:
            body["leaderless"] = [
                self.read_consistency,
                self.write_consistency,
                self.deletion_strategy,
                self.max_clock_skew_ms,
                self.schema_version,
                [c.to_list() for c in self.collections],
            ]
            # (a key of its own: bodies written before the hint limits were database
            # settings decode with the defaults)
            body["hint_limits"] = [self.hint_bytes_max, self.hint_count_max, self.hint_age_ms_max]
        out = msgpack.packb(body, use_bin_type=True)
        assert isinstance(out, bytes)
        return out

    @staticmethod
    def from_body(body: bytes) -> Database:
        """The database a ``to_body`` encoded. Raises ValueError on anything else."""
        try:
            v: Any = msgpack.unpackb(body, raw=False)
            shards = tuple(_shard_from(s) for s in v["shards"])
            policy = str(v.get("failover_policy", "strict"))
            profile = str(v.get("failover_profile", "high"))
            ll = v.get("leaderless") or ["QUORUM", "QUORUM", "TimeBasedResolution", 500, 0, []]
            read_cl, write_cl, strategy, skew, schema_version, colls = ll
            hint_bytes, hint_count, hint_age = (int(x) for x in v.get("hint_limits") or _HINTS)
            if min(hint_bytes, hint_count, hint_age) <= 0:
                raise ValueError("hint limits must be positive")
            if read_cl not in LEVELS or write_cl not in LEVELS or strategy not in STRATEGIES:
                raise ValueError(f"bad levels or strategy {read_cl!r:.20} {write_cl!r:.20}")
            if policy not in FAILOVER_POLICIES or profile not in FAILOVER_PROFILES:
                raise ValueError(f"bad failover policy or profile {policy!r:.20} {profile!r:.20}")
            return Database(
                name=str(v["name"]),
                uid=int(v["uid"]),
                type=DbType(v["type"]),
                port=int(v["port"]),
                replication=bool(v["replication"]),
                replicas=int(v["replicas"]),
                persistence=Persistence(v["persistence"]),
                password_sha256=str(v["password_sha256"]),
                cluster_api=bool(v["cluster_api"]),
                shards=shards,
                failover_guarantee=int(v.get("failover_guarantee", -1)),
                failover_policy=policy,
                failover_profile=profile,
                acl_users=tuple(str(u) for u in v.get("acl_users", ())),
                read_consistency=str(read_cl),
                write_consistency=str(write_cl),
                deletion_strategy=str(strategy),
                max_clock_skew_ms=int(skew),
                hint_bytes_max=hint_bytes,
                hint_count_max=hint_count,
                hint_age_ms_max=hint_age,
                schema_version=int(schema_version),
                collections=tuple(Collection.from_list(c) for c in colls),
            )
        except (KeyError, TypeError, IndexError, ValueError, msgpack.ExtraData) as e:
            raise ValueError(f"not a database record: {e}") from None
        except Exception as e:  # msgpack raises several unrelated types on garbage
            raise ValueError(f"not a database record: {e}") from None


_HINTS = (HINT_BYTES_MAX_DEFAULT, HINT_COUNT_MAX_DEFAULT, HINT_AGE_MS_MAX_DEFAULT)


def _shard_body(s: Shard) -> list[Any]:
    """A shard as a msgpack list: the five fields of the first format, then the
    failover fields (a body without them decodes with their defaults)."""
    f = s.fence
    fence = None
    if f is not None:
        fence = [
            f.started_index,
            [f.old_primary.node, f.old_primary.port],
            f.planned,
            f.target,
            f.down_reason,
            [[r.node, r.replid, r.offset] for r in f.reports],
        ]
    return [
        s.index,
        s.first_slot,
        s.last_slot,
        s.epoch,
        [[i.node, i.port] for i in s.instances()],
        s.state.value,
        fence,
        [[k.epoch, k.replid, k.offset] for k in s.forks],
        s.note,
        s.down,
    ]


def _shard_from(v: Any) -> Shard:
    index, first, last, epoch, insts = v[:5]
    state, fence, forks, note, down = [*v[5:10], *[None] * (10 - len(v))][:5]
    f = None
    if fence is not None:
        started, (node, port), planned, target, reason, reports = fence
        f = Fence(
            int(started),
            Instance(str(node), int(port)),
            bool(planned),
            str(target),
            str(reason),
            tuple(Report(str(n), str(r), int(o)) for n, r, o in reports),
        )
    st = ShardState(state if state is not None else ShardState.OK.value)
    if (st is ShardState.FAILING) != (f is not None):
        raise ValueError("a failing shard has a fence, an ok one none")
    return Shard(
        int(index),
        int(first),
        int(last),
        int(epoch),
        Instance(str(insts[0][0]), int(insts[0][1])),
        tuple(Instance(str(n), int(p)) for n, p in insts[1:]),
        st,
        f,
        tuple(Fork(int(e), str(r), int(o)) for e, r, o in forks or ()),
        str(note or ""),
        str(down or ""),
    )


def slot_ranges(shards: int) -> list[tuple[int, int]]:
    """The inclusive slot range of each of ``shards`` shards: contiguous, split as
    ``redis-cli --cluster create`` splits them (3 shards: 0-5460, 5461-10922,
    10923-16383)."""
    if not 1 <= shards <= SLOTS:
        raise ValueError(f"shards must be between 1 and {SLOTS}")
    per = SLOTS / shards
    out: list[tuple[int, int]] = []
    first, cursor = 0, 0.0
    for i in range(shards):
        last = int(cursor + per - 1 + 0.5)  # lround: the values are positive
        if last > SLOTS - 1 or i == shards - 1:
            last = SLOTS - 1
        last = max(last, first)
        out.append((first, last))
        first = last + 1
        cursor += per
    return out


@dataclass(frozen=True, slots=True)
class LocalInstance:
    """A shard process a node runs: everything its supervisor needs to start it."""

    db: Database
    shard: Shard
    instance: Instance
    role: Role
    primary: Instance  # whom a replica replicates from (itself for the primary)

    @property
    def key(self) -> str:
        """A stable name for its directory and pid file: ``<db uid>-<shard index>``."""
        return f"{self.db.uid}-{self.shard.index}"


def instances_on(node: str, dbs: list[Database]) -> list[LocalInstance]:
    """Every shard process ``node`` must run for ``dbs``, in a stable order."""
    out: list[LocalInstance] = []
    for db in sorted(dbs, key=lambda d: d.uid):
        for s in db.shards:
            for inst in s.instances():
                if inst.node == node:
                    role = Role.PRIMARY if inst == s.primary else Role.REPLICA
                    out.append(LocalInstance(db, s, inst, role, s.primary))
    return out


@dataclass(frozen=True, slots=True)
class Topology:
    """A database as one node's endpoint routes it: the record, the host of every node
    (from the members' client addresses), and which node the endpoint runs on.
    ``version`` is a log index that grows with every change of the topology and stays
    put otherwise (cluster/dbops.py defines it): a later topology of the same database
    has a higher one, an unchanged one the same."""

    version: int
    db: Database
    hosts: dict[str, str]  # node id -> host its shards and endpoints listen on
    node: str

    def addr(self, inst: Instance) -> tuple[str, int]:
        return self.hosts.get(inst.node, "127.0.0.1"), inst.port

    def endpoints(self) -> list[tuple[str, str, int]]:
        """(node id, host, port) of the database's endpoint on every node, sorted."""
        return [(n, h, self.db.port) for n, h in sorted(self.hosts.items())]

    def to_bytes(self) -> bytes:
        out = msgpack.packb(
            [self.version, self.db.to_body(), self.hosts, self.node], use_bin_type=True
        )
        assert isinstance(out, bytes)
        return out

    @staticmethod
    def from_bytes(data: bytes) -> Topology:
        try:
            version, body, hosts, node = msgpack.unpackb(data, raw=False)
            return Topology(
                int(version),
                Database.from_body(body),
                {str(k): str(v) for k, v in hosts.items()},
                str(node),
            )
        except ValueError:
            raise
        except Exception as e:
            raise ValueError(f"not a topology: {e}") from None
