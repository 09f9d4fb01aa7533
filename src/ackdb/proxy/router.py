"""How the endpoint handles each command, decided once per command name, and where a
request's keys send it.

Owns: ``Route`` (one command's kind -- forwarded by key, keyless, split per slot, fanned out
to every shard, answered by the proxy, a transaction verb, or refused -- with what its path
needs precomputed: the single key's index, the write flag, the merge), ``ROUTES`` (built
once from the shared command table's flags, key specs and tips), ``REFUSED`` (the commands
that make no sense through an endpoint, with the reason each gets), ``slot_of`` and
``Router`` (a topology's slot -> shard table). Never does IO; the session core asks it.

The tips decide the cross-slot rules (Redis command tips): ``request_policy:multi_shard``
commands among MGET, MSET, DEL, UNLINK, EXISTS, TOUCH are split per slot and merged as
their ``response_policy`` says; ``all_shards`` commands fan out; every other command with
keys in more than one slot gets CROSSSLOT.
"""

from __future__ import annotations

import binascii
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from ..acl import Acl, database_acl
from ..cluster.databases import ShardState, Topology
from ..cluster.keyslot import SLOTS
from ..commandtable import TABLE, Command
from .clusterapi import ClusterApi

CROSSSLOT = b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
# How long requests for a failing shard wait for its new primary, by the database's
# failover profile (cluster/failover.py's detection and lease times fit well inside).
FAILOVER_WAIT_MS = {"high": 2000, "low": 8000}


class Kind(enum.IntEnum):
    KEYED = 0  # forwarded to the shard of its keys' slot (keyless: to shard 0)
    SPLIT = 1  # multi_shard: split per slot, merged
    FANOUT = 2  # all_shards / all_nodes: sent to every shard, merged
    LOCAL = 3  # answered by the proxy (a handler in proxy/local.py)
    SCAN = 4
    WAIT = 5  # WAIT and WAITAOF: the shards written since the last WAIT
    INFO = 6
    MULTI = 7
    EXEC = 8
    DISCARD = 9
    WATCH = 10
    UNWATCH = 11
    REFUSED = 12
    CONTAINER = 13  # routed by its subcommand
    PUBSUB = 14  # proxy/pubsub.py
    CLUSTER = 15  # CLUSTER, READONLY, READWRITE, ASKING: proxy/clusterapi.py


class Merge(enum.IntEnum):
    FIRST = 0  # one reply (or the first error)
    SUM = 1  # agg_sum
    MIN = 2  # agg_min (integers; element-wise for arrays: WAITAOF)
    ALL_OK = 3  # all_succeeded: the first error, else the first reply
    CONCAT = 4  # arrays joined (KEYS, SLOWLOG GET)
    ORDERED = 5  # MGET: elements back in request order
    RANDOM = 6  # RANDOMKEY: one non-null reply


@dataclass(frozen=True, slots=True)
class Route:
    kind: Kind
    name: str  # the command's full name (lower case), for error texts
    cmd: Command | None
    write: bool = False  # marks the shard written (WAIT) and is a write for MULTI
    key_at: int = 0  # the one key's index when the command has exactly one key there
    merge: Merge = Merge.FIRST
    step: int = 1  # SPLIT: arguments per key (MSET 2)
    refusal: bytes = b""
    no_auth: bool = False
    subs: dict[bytes, Route] = field(default_factory=dict)
    # May it share a shard connection with other clients' requests? Not a blocking
    # command: it would hold the shared connection (docs/proxy.md, shard connections).
    shared: bool = True


def _refusal(name: str, why: str) -> bytes:
    return f"-ERR '{name}' is not available through a database endpoint: {why}\r\n".encode()


# Commands that make no sense through an endpoint (docs/proxy.md lists them), by full name.
_ONE_DB = "an endpoint has one database (0)"
_ADMIN = "the cluster runs its shards' replication and persistence"
REFUSED: dict[str, str] = {
    "move": _ONE_DB,
    "swapdb": _ONE_DB,
    "replicaof": _ADMIN,
    "slaveof": _ADMIN,
    "sync": _ADMIN,
    "psync": _ADMIN,
    "replconf": _ADMIN,
    "failover": _ADMIN,
    "role": "roles belong to shards; see ackdb cluster status",
    "save": _ADMIN,
    "bgsave": _ADMIN,
    "bgrewriteaof": _ADMIN,
    "shutdown": "shards are stopped by the cluster",
    "config|set": "shards are configured by the cluster",
    "config|rewrite": "shards are configured by the cluster",
    "config|resetstat": "shards are configured by the cluster",
    "client|pause": "it would pause only this endpoint's shard connections",
    "client|unpause": "it would pause only this endpoint's shard connections",
    "client|kill": "shard connections are the endpoint's own",
    "client|list": "shard connections are the endpoint's own",
    "client|unblock": "shard connections are the endpoint's own",
    "client|tracking": "client-side caching is not proxied",
    "client|caching": "client-side caching is not proxied",
    "client|getredir": "client-side caching is not proxied",
    "client|trackinginfo": "client-side caching is not proxied",
    "client|reply": "replies are the endpoint's to order",
    "client|no-evict": "shard connections are the endpoint's own",
    "client|no-touch": "shard connections are the endpoint's own",
    "ackdb.syncwoff": "it is internal to the endpoint",
    "ackdb.lease": "shard leases are the node agent's",
    "ackdb.freeze": "shard leases are the node agent's",
    "ackdb.diverged": "shard leases are the node agent's",
    "debug": "DEBUG acts on one shard process",
    "monitor": "MONITOR would watch one shard",
    "slowlog|reset": "slow logs belong to shards",
    "latency": "latency monitors belong to shards",
    **{
        f"acl|{sub}": "a database's users are defined with the database (docs/acl.md)"
        for sub in "setuser deluser getuser list users load save log dryrun".split()
    },
}
# Answered by the proxy (handlers in proxy/local.py), by full name.
LOCAL = frozenset(
    {
        "ping",
        "echo",
        "auth",
        "hello",
        "select",
        "quit",
        "reset",
        "client|setname",
        "client|getname",
        "client|id",
        "client|setinfo",
        "client|info",
        "client|help",
        "acl|whoami",
    }
)
_SPECIAL: dict[str, Kind] = {
    "scan": Kind.SCAN,
    "wait": Kind.WAIT,
    "waitaof": Kind.WAIT,
    "info": Kind.INFO,
    "multi": Kind.MULTI,
    "exec": Kind.EXEC,
    "discard": Kind.DISCARD,
    "watch": Kind.WATCH,
    "unwatch": Kind.UNWATCH,
    # SPUBLISH is keyed (its shard channel's key spec) and PUBSUB HELP goes to any shard.
    **{
        name: Kind.PUBSUB
        for name in (
            "subscribe unsubscribe psubscribe punsubscribe ssubscribe sunsubscribe publish "
            "pubsub|channels pubsub|numsub pubsub|numpat pubsub|shardchannels "
            "pubsub|shardnumsub"
        ).split()
    },
}
# multi_shard commands the endpoint splits (the brief of issue 14: MSETNX is not split,
# its all-or-nothing promise spans the keys; it gets CROSSSLOT across slots).
_SPLIT = {
    "mget": (Merge.ORDERED, 1),
    "mset": (Merge.ALL_OK, 2),
    "del": (Merge.SUM, 1),
    "unlink": (Merge.SUM, 1),
    "exists": (Merge.SUM, 1),
    "touch": (Merge.SUM, 1),
}
_RESPONSE_POLICY = {
    "agg_sum": Merge.SUM,
    "agg_min": Merge.MIN,
    "all_succeeded": Merge.ALL_OK,
}
_FANOUT_MERGE = {"keys": Merge.CONCAT, "randomkey": Merge.RANDOM, "slowlog|get": Merge.CONCAT}


def _single_key_at(cmd: Command) -> int:
    """The index of the command's only key when it is fixed (GET k, HSET k f v...), else 0."""
    if len(cmd.key_specs) != 1:
        return 0
    (ks,) = cmd.key_specs
    begin, find = ks.begin, ks.find
    if getattr(begin, "index", None) is None or getattr(find, "lastkey", None) != 0:
        return 0
    return int(begin.index)  # type: ignore[union-attr]


# Scripts and functions that may write: not flagged write in the table (a script decides
# at run time), but a WAIT after one must cover its shard.
_SCRIPT_WRITES = frozenset({"eval", "evalsha", "fcall"})


def route_of(cmd: Command) -> Route:
    name = cmd.name
    write = cmd.write or "may_replicate" in cmd.flags or name in _SCRIPT_WRITES
    base = {"name": name, "cmd": cmd, "write": write, "no_auth": cmd.no_auth}
    base["shared"] = "blocking" not in cmd.flags
    if name in REFUSED:
        return Route(Kind.REFUSED, refusal=_refusal(name, REFUSED[name]), **base)  # type: ignore[arg-type]
    if name in LOCAL:
        return Route(Kind.LOCAL, **base)  # type: ignore[arg-type]
    if name in _SPECIAL:
        return Route(_SPECIAL[name], **base)  # type: ignore[arg-type]
    if cmd.subcommands:
        subs = {}
        for sub, sc in cmd.subcommands.items():
            r = route_of(sc)
            subs[sub] = subs[sub.upper()] = r
        return Route(Kind.CONTAINER, subs=subs, **base)  # type: ignore[arg-type]
    if name in _SPLIT:
        merge, step = _SPLIT[name]
        return Route(Kind.SPLIT, merge=merge, step=step, **base)  # type: ignore[arg-type]
    tips = set(cmd.tips)
    if "request_policy:all_shards" in tips or "request_policy:all_nodes" in tips:
        merge = _FANOUT_MERGE.get(name, Merge.FIRST)
        for t in tips:
            if t.startswith("response_policy:"):
                merge = _RESPONSE_POLICY.get(t.split(":", 1)[1], merge)
        return Route(Kind.FANOUT, merge=merge, **base)  # type: ignore[arg-type]
    return Route(Kind.KEYED, key_at=_single_key_at(cmd), **base)  # type: ignore[arg-type]


def _build() -> dict[bytes, Route]:
    out: dict[bytes, Route] = {}
    for cmd in TABLE.all():
        r = route_of(cmd)
        out[cmd.name.encode()] = out[cmd.name.upper().encode()] = r
    # The cluster API's commands are not in a standalone server's table: the endpoint
    # answers them (proxy/clusterapi.py).
    for name in ("cluster", "readonly", "readwrite", "asking"):
        route = Route(Kind.CLUSTER, name, None, no_auth=False)
        out[name.encode()] = out[name.upper().encode()] = route
    return out


ROUTES: dict[bytes, Route] = _build()


def find_route(argv: list[bytes]) -> Route | None:
    """The route of a request, through its subcommand for containers; None: unknown."""
    r = ROUTES.get(argv[0])
    if r is None:
        r = ROUTES.get(argv[0].lower())
        if r is None:
            return None
    if r.kind is Kind.CONTAINER and len(argv) >= 2:
        sub = r.subs.get(argv[1]) or r.subs.get(argv[1].lower())
        return sub  # None: unknown subcommand (the shard words the error)
    return r


_crc = binascii.crc_hqx  # CRC-16/XMODEM (polynomial 0x1021, init 0): Redis's CRC16


def slot_of(key: bytes) -> int:
    """``cluster.keyslot.key_slot``, with CRC16 from the C library (the hot path)."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end != -1 and end != start + 1:
            key = key[start + 1 : end]
    return _crc(key, 0) & (SLOTS - 1)


def keys_of(route: Route, argv: list[bytes]) -> list[bytes]:
    cmd = route.cmd
    if cmd is None:
        return []
    return [argv[i] for i in cmd.key_positions(argv)]


@dataclass(slots=True)
class Router:
    """One topology as the data path uses it: the shard of every slot, the shards'
    addresses (primaries), the database's password digest, and the shards failing over. With the cluster API,
    ``cluster`` is the endpoint as a cluster node and ``keyspace_shards`` the shards whose
    slots it owns (what DBSIZE, KEYS, SCAN, FLUSHALL... cover, as on a Redis Cluster
    node); without, every shard."""

    topology: Topology
    shard_of: bytes  # slot -> shard index (one byte each; at most 256 shards)
    addrs: list[tuple[str, int]]
    nshards: int
    password_sha256: str
    cluster: ClusterApi | None = None
    keyspace_shards: list[int] = field(default_factory=list)
    failing: int = 0  # bit i: shard i is failing over (its requests wait: proxy/failover.py)
    wait_ms: int = FAILOVER_WAIT_MS["high"]  # the bound on that wait
    epochs: tuple[int, ...] = ()  # each shard's epoch
    # The database's ACL users (proxy/access.py); None: the default user alone.
    acl: Acl | None = None

    @staticmethod
    def of(topology: Topology) -> Router:
        db = topology.db
        assert 1 <= len(db.shards) <= 256, "shards per database are limited to 256"
        table = bytearray(SLOTS)
        for i, s in enumerate(db.shards):
            table[s.first_slot : s.last_slot + 1] = bytes([i]) * (s.last_slot - s.first_slot + 1)
        api = ClusterApi(topology) if db.cluster_api else None
        return Router(
            topology,
            bytes(table),
            [topology.addr(s.primary) for s in db.shards],
            len(db.shards),
            db.password_sha256,
            api,
            [i for i, s in enumerate(db.shards) if api is None or s.primary.node == topology.node],
            sum(1 << i for i, s in enumerate(db.shards) if s.state is ShardState.FAILING),
            FAILOVER_WAIT_MS.get(db.failover_profile, FAILOVER_WAIT_MS["high"]),
            tuple(s.epoch for s in db.shards),
            database_acl(db.acl_users, db.password_sha256) if db.acl_users else None,
        )

    def slot_set(self, keys: list[bytes]) -> set[int]:
        return {slot_of(k) for k in keys}


# A hook the cluster API plugs in: (slot) -> a redirection reply (``-MOVED ...``) or None.
Redirect = Callable[[int], bytes | None]
