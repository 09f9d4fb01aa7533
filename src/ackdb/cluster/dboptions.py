"""A database's options as ``db.create`` carries them in the log: ``DbOptions`` (a
msgpack map with str keys; missing keys take their defaults) and their validation
(cluster/dbops.py applies the create; node/dbserver.py parses ``DB.CREATE`` into them).
Pure: never does IO.

Defaults: 1 shard, replication no (so a request works on a cluster of any size),
1 replica with replication yes, 0 without; persistence none (what Redis Software gives
a new database unless asked); no password; cluster API no; the lowest free port;
failover guarantee ``wait:1`` with replicas (``wait:0`` without), policy strict, profile
high (docs/failover.md).

A leaderless database (``type`` leaderless, issue 16, docs/leaderless-ops.md) needs its
``replication_factor`` n and takes none of the sharded options (shards, replication,
replicas, cluster API, failover); its ``partitions`` default to 1, its levels to QUORUM,
its deletion strategy to TimeBasedResolution, its max clock skew to 500 ms, its hint
limits (per replica a coordinator keeps hints for) to 64 MiB, 100 000 hints and 3 h,
its persistence to aof-always. A sharded database takes none of the leaderless options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgpack

from ackdb.cluster.databases import (
    FAILOVER_POLICIES,
    FAILOVER_PROFILES,
    LEVELS,
    STRATEGIES,
    DbType,
    Persistence,
)

DB_SHARDS_MAX = 128
DB_REPLICAS_MAX = 8
DEFAULT_PERSISTENCE = Persistence.NONE
# A leaderless replica acknowledges a write only once it is on its disk (docs/leaderless.md).
LEADERLESS_PERSISTENCE = Persistence.AOF_ALWAYS
CLOCK_SKEW_MAX_MS = 3_600_000  # a leaderless database's max-clock-skew-ms, at most an hour
# The largest hint limits a leaderless database takes (the age limit is part of the
# tombstone grace: a month of it keeps every tombstone a month).
HINT_LIMITS_MAX = {
    "hint_bytes_max": 1 << 40,  # 1 TiB
    "hint_count_max": 1_000_000_000,
    "hint_age_ms_max": 30 * 24 * 3600 * 1000,  # 30 days
}
_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True, slots=True)
class DbOptions:
    shards: int = 1
    replication: bool | None = None  # None: yes when replicas > 0
    replicas: int | None = None  # None: 1 with replication, 0 without
    port: int = 0  # 0: the lowest free one
    persistence: Persistence | None = None  # None: the type's default (resolved at once)
    password_sha256: str = ""
    cluster_api: bool = False
    failover_guarantee: int | None = None  # n of WAIT n; None: 1 with replicas, else 0
    failover_policy: str = "strict"
    failover_profile: str = "high"
    # ACL user lines (``name rules...``, hashed passwords), checked by the node first.
    acl_users: tuple[str, ...] = ()
    # A leaderless database's (issue 16; None: not given). ``replication_factor`` is
    # required for one and refused for a sharded one, as are the others.
    type: DbType = DbType.SHARDED
    replication_factor: int | None = None
    partitions: int | None = None  # None: 1
    read_consistency: str | None = None  # None: QUORUM
    write_consistency: str | None = None
    deletion_strategy: str | None = None  # None: TimeBasedResolution
    max_clock_skew_ms: int | None = None  # None: 500
    hint_bytes_max: int | None = None  # None: the defaults of cluster/databases.py
    hint_count_max: int | None = None
    hint_age_ms_max: int | None = None

    def __post_init__(self) -> None:
        if self.persistence is None:
            default = LEADERLESS_PERSISTENCE if self.type is DbType.LEADERLESS else None
            object.__setattr__(self, "persistence", default or DEFAULT_PERSISTENCE)

    @property
    def leaderless(self) -> bool:
        return self.type is DbType.LEADERLESS

    def to_bytes(self) -> bytes:
        assert self.persistence is not None
        v: dict[str, Any] = {
            "shards": self.shards,
            "port": self.port,
            "persistence": self.persistence.value,
            "password_sha256": self.password_sha256,
            "cluster_api": self.cluster_api,
        }
        if self.acl_users:
            v["acl_users"] = list(self.acl_users)
        if self.replication is not None:
            v["replication"] = self.replication
        if self.replicas is not None:
            v["replicas"] = self.replicas
        if self.failover_guarantee is not None:
            v["failover_guarantee"] = self.failover_guarantee
        if self.failover_policy != "strict":
            v["failover_policy"] = self.failover_policy
        if self.failover_profile != "high":
            v["failover_profile"] = self.failover_profile
        if self.type is not DbType.SHARDED:
            v["type"] = self.type.value
        for k in _LEADERLESS_KEYS:
            if getattr(self, k) is not None:
                v[k] = getattr(self, k)
        out = msgpack.packb(v, use_bin_type=True)
        assert isinstance(out, bytes)
        return out

    def resolved(self) -> tuple[bool, int]:
        """(replication, replicas) after the defaults; raises ValueError if they clash.
        A leaderless database's: (True, replication factor - 1)."""
        if self.leaderless:
            return True, (self.replication_factor or 1) - 1
        replication = self.replication
        if replication is None:
            replication = bool(self.replicas)
        replicas = self.replicas if self.replicas is not None else int(replication)
        if not replication and replicas:
            raise ValueError("ERR replicas need replication: use REPLICATION yes")
        if replication and not replicas:
            raise ValueError("ERR replication yes needs at least 1 replica")
        return replication, replicas

    def check(self) -> None:
        """Raises ValueError (its message a client error) unless the options are valid."""
        if not 1 <= self.shards <= DB_SHARDS_MAX:
            raise ValueError(f"ERR shards must be between 1 and {DB_SHARDS_MAX}")
        if self.replicas is not None and not 0 <= self.replicas <= DB_REPLICAS_MAX:
            raise ValueError(f"ERR replicas must be between 0 and {DB_REPLICAS_MAX}")
        if not 0 <= self.port <= 65535:
            raise ValueError("ERR port must be between 1 and 65535")
        if self.password_sha256 and not _SHA256_RE.match(self.password_sha256):
            raise ValueError("ERR password_sha256 must be 64 lowercase hex digits")
        if self.leaderless:
            self._check_leaderless()
            return
        given = [_OPTION_NAMES[k] for k in _LEADERLESS_KEYS if getattr(self, k) is not None]
        if given:
            raise ValueError(f"ERR {given[0]} is for leaderless databases (TYPE leaderless)")
        _, replicas = self.resolved()
        n = self.failover_guarantee
        if n is not None and not 0 <= n <= replicas:
            raise ValueError(f"ERR failover guarantee must be wait:0 to wait:{replicas}")
        if self.failover_policy not in FAILOVER_POLICIES:
            raise ValueError("ERR failover policy must be strict|available")
        if self.failover_profile not in FAILOVER_PROFILES:
            raise ValueError("ERR failover profile must be high|low")

    def _check_leaderless(self) -> None:
        sharded = [
            ("SHARDS", self.shards != 1),
            ("REPLICATION", self.replication is not None),
            ("REPLICAS", self.replicas is not None),
            ("CLUSTER-API", self.cluster_api),
            ("FAILOVER-GUARANTEE", self.failover_guarantee is not None),
            ("FAILOVER-POLICY", self.failover_policy != "strict"),
            ("FAILOVER-PROFILE", self.failover_profile != "high"),
        ]
        for name, given in sharded:
            if given:
                raise ValueError(
                    f"ERR {name} is for sharded databases: a leaderless database has"
                    " REPLICATION-FACTOR and PARTITIONS"
                )
        n = self.replication_factor
        if n is None:
            raise ValueError("ERR a leaderless database needs REPLICATION-FACTOR n")
        if not 1 <= n <= DB_REPLICAS_MAX + 1:
            raise ValueError(f"ERR replication factor must be between 1 and {DB_REPLICAS_MAX + 1}")
        if self.partitions is not None and not 1 <= self.partitions <= DB_SHARDS_MAX:
            raise ValueError(f"ERR partitions must be between 1 and {DB_SHARDS_MAX}")
        for what, level in (("read", self.read_consistency), ("write", self.write_consistency)):
            if level is not None and level not in LEVELS:
                raise ValueError(f"ERR {what} consistency must be {'|'.join(LEVELS)}")
        if self.deletion_strategy is not None and self.deletion_strategy not in STRATEGIES:
            raise ValueError(f"ERR deletion strategy must be {'|'.join(STRATEGIES)}")
        skew = self.max_clock_skew_ms
        if skew is not None and not 1 <= skew <= CLOCK_SKEW_MAX_MS:
            raise ValueError(f"ERR max clock skew must be between 1 and {CLOCK_SKEW_MAX_MS} ms")
        for k, most in HINT_LIMITS_MAX.items():
            value = getattr(self, k)
            if value is not None and not 1 <= value <= most:
                raise ValueError(f"ERR {_OPTION_NAMES[k]} must be between 1 and {most}")

    @staticmethod
    def from_bytes(data: bytes) -> DbOptions:
        """The options ``to_bytes`` encoded; ValueError (a client error) otherwise."""
        try:
            v = msgpack.unpackb(data, raw=False, strict_map_key=True, max_ext_len=0)
        except Exception:  # msgpack raises several unrelated types on garbage
            raise ValueError("ERR database options are not a msgpack map") from None
        if type(v) is not dict:
            raise ValueError("ERR database options are not a msgpack map")
        for k, val in v.items():
            if k not in _OPTION_TYPES:
                raise ValueError(f"ERR unknown database option '{k!s:.40}'")
            if type(val) is not _OPTION_TYPES[k]:
                raise ValueError(f"ERR bad value for database option '{k}'")
        try:
            db_type = DbType(v.get("type", DbType.SHARDED.value))
        except ValueError:
            raise ValueError("ERR type must be sharded|leaderless") from None
        try:
            p = v.get("persistence")
            persistence = None if p is None else Persistence(p)
        except ValueError:
            raise ValueError(
                "ERR persistence must be none|aof-everysec|aof-always|snapshot"
            ) from None
        opts = DbOptions(
            shards=v.get("shards", 1),
            replication=v.get("replication"),
            replicas=v.get("replicas"),
            port=v.get("port", 0),
            persistence=persistence,
            password_sha256=v.get("password_sha256", ""),
            cluster_api=v.get("cluster_api", False),
            failover_guarantee=v.get("failover_guarantee"),
            failover_policy=v.get("failover_policy", "strict"),
            failover_profile=v.get("failover_profile", "high"),
            acl_users=tuple(str(u) for u in v.get("acl_users", ())),
            type=db_type,
            **{k: v.get(k) for k in _LEADERLESS_KEYS},
        )
        opts.check()
        return opts


_LEADERLESS_KEYS = (
    "replication_factor",
    "partitions",
    "read_consistency",
    "write_consistency",
    "deletion_strategy",
    "max_clock_skew_ms",
    "hint_bytes_max",
    "hint_count_max",
    "hint_age_ms_max",
)
# How DB.CREATE spells each leaderless option (for the refusals).
_OPTION_NAMES = {k: k.upper().replace("_", "-") for k in _LEADERLESS_KEYS}
_OPTION_TYPES: dict[str, type] = {
    "shards": int,
    "replication": bool,
    "replicas": int,
    "port": int,
    "persistence": str,
    "password_sha256": str,
    "cluster_api": bool,
    "failover_guarantee": int,
    "failover_policy": str,
    "failover_profile": str,
    "acl_users": list,
    "type": str,
    "replication_factor": int,
    "partitions": int,
    "read_consistency": str,
    "write_consistency": str,
    "deletion_strategy": str,
    "max_clock_skew_ms": int,
    "hint_bytes_max": int,
    "hint_count_max": int,
    "hint_age_ms_max": int,
}
