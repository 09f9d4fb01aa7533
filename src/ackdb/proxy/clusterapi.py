"""The cluster API of a database endpoint: the endpoint as one node of a Redis Cluster, for
cluster-aware clients (redis-py ``RedisCluster``, ``redis-cli -c``, ``redis-benchmark
--cluster``), as Redis Enterprise's OSS Cluster API presents it.

Owns: ``ClusterApi``, built from a ``Topology``: which node's endpoint owns each slot,
the stable node id of every endpoint, the ``-MOVED`` redirection of a slot this endpoint
does not own, the ``-CROSSSLOT`` of a request over several slots, and the replies of
CLUSTER SLOTS / SHARDS / NODES / INFO / MYID / KEYSLOT / LINKS / REPLICAS / HELP,
READONLY / READWRITE / ASKING, with Redis 7.0's shapes in RESP2 and RESP3. CLUSTER
COUNTKEYSINSLOT / GETKEYSINSLOT need the shard's keys: their reply is a ``ScanSlot``
action the shell carries out with ``proxy/slotscan.py``. Also what a database *without*
the cluster API answers to those commands (a standalone Redis's "cluster support
disabled"). Never does IO; never reads a clock.

The cluster it describes: every node of the database's cluster has one endpoint (the
node's host, the database's port); the endpoint of a node running primaries is a master
owning the slots of those shards. An endpoint that owns no slot but whose node runs a
replica of a shard is that shard's replica: CLUSTER SLOTS lists it after the master of
the shard's slots, CLUSTER SHARDS under that master, CLUSTER NODES as a replica of it
(when all the shards it replicates have one master); after READONLY it serves reads of
those slots (forwarded to the primary, which is never staler than a replica), as a Redis
Cluster replica does. An endpoint that owns slots is never listed as a replica: a Redis
Cluster node has one role, and clients (redis-py) keep one role per address. After a
failover the topology names the new primary and every reply (MOVED too) follows it.
Every endpoint builds the same description from the same
topology, so all of them report the same cluster; only "myself" differs. Node ids are
SHA-1 of the database uid and the node id (40 hex digits, stable for the database's
life). Config epochs are the endpoints' 1-based positions in node-id order (unique, as
Redis requires); there is no cluster bus, so the bus port shown is 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..cluster.databases import Shard, Topology
from ..cluster.keyslot import SLOTS, key_slot
from ..resp import encoder as enc

CROSSSLOT = b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
DISABLED = b"-ERR This instance has cluster support disabled\r\n"
GETKEYSINSLOT_MAX = 1 << 20  # keys one GETKEYSINSLOT may return (a bound on the reply)

# CLUSTER subcommands and their arity (Redis 7.0's command table; negative: at least).
_ARITY = {
    b"slots": 2,
    b"shards": 2,
    b"nodes": 2,
    b"info": 2,
    b"myid": 2,
    b"keyslot": 3,
    b"countkeysinslot": 3,
    b"getkeysinslot": 4,
    b"links": 2,
    b"replicas": 3,
    b"slaves": 3,
    b"count-failure-reports": 3,
    b"help": 2,
}
# Subcommands that change a Redis Cluster's configuration: ackdb's metadata owns it.
_MANAGED = frozenset(
    b"addslots addslotsrange delslots delslotsrange flushslots meet forget replicate "
    b"reset failover setslot set-config-epoch bumpepoch saveconfig".split()
)
_HELP = [
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "HELP",
    "    Prints this help.",
]


@dataclass(frozen=True, slots=True)
class ScanSlot:
    """Count (``limit`` None) or list (at most ``limit``) the keys of ``slot``, held by
    shard ``shard``: the shell runs ``SlotScan(slot, limit)`` against that shard."""

    slot: int
    shard: int
    limit: int | None


@dataclass(frozen=True, slots=True)
class Endpoint:
    node: str
    host: str
    port: int
    id: bytes  # 40 hex digits
    epoch: int
    ranges: tuple[tuple[int, int], ...]  # owned slots, inclusive, ascending


def node_id(db_uid: int, node: str) -> bytes:
    """The endpoint's 40-hex cluster node id: stable per database and node."""
    return hashlib.sha1(f"ackdb-endpoint:{db_uid}:{node}".encode()).hexdigest().encode()


def _error(text: str) -> bytes:
    return enc.error(text)


def _arity_error(name: str) -> bytes:
    return _error(f"ERR wrong number of arguments for '{name}' command")


def _int(arg: bytes) -> int | None:
    """Redis's string2ll: an optional '-', digits, no leading zeros or '+'."""
    body = arg[1:] if arg[:1] == b"-" else arg
    if not body.isdigit() or len(arg) > 20 or (len(body) > 1 and body[:1] == b"0"):
        return None
    n = int(arg)
    return n if -(1 << 63) <= n < (1 << 63) else None


_NOT_INT = _error("ERR value is not an integer or out of range")


class ClusterApi:
    """One endpoint's view of the database as a Redis Cluster."""

    def __init__(self, topology: Topology) -> None:
        db = topology.db
        self.topology = topology
        nodes = sorted(set(topology.hosts) | {s.primary.node for s in db.shards})
        ranges: dict[str, list[tuple[int, int]]] = {n: [] for n in nodes}
        for s in sorted(db.shards, key=lambda s: s.first_slot):
            own = ranges[s.primary.node]
            if own and own[-1][1] + 1 == s.first_slot:
                own[-1] = (own[-1][0], s.last_slot)
            else:
                own.append((s.first_slot, s.last_slot))
        self.endpoints = [
            Endpoint(
                n,
                topology.hosts.get(n, "127.0.0.1"),
                db.port,
                node_id(db.uid, n),
                i + 1,
                tuple(ranges[n]),
            )
            for i, n in enumerate(nodes)
        ]
        index = {e.node: i for i, e in enumerate(self.endpoints)}
        slotless = {e.node for e in self.endpoints if not e.ranges}
        self.rows, self.replicas = _rows(db.shards, index, slotless)
        masters: dict[int, set[int]] = {}  # replica endpoint -> its masters
        for m, reps in self.replicas.items():
            for i in reps:
                masters.setdefault(i, set()).add(m)
        self.master_of = {i: next(iter(m)) for i, m in masters.items() if len(m) == 1}
        self.listed = set(masters)  # replica endpoints: not a shard of their own
        self.me = next(e for e in self.endpoints if e.node == topology.node)
        # slot -> index in self.endpoints of its owner
        owner = bytearray(SLOTS)
        for i, e in enumerate(self.endpoints):
            for first, last in e.ranges:
                owner[first : last + 1] = bytes([i]) * (last - first + 1)
        self.owner = bytes(owner)
        self.my_index = self.endpoints.index(self.me)
        # slots whose reads this endpoint serves after READONLY (it is their replica)
        readable = bytearray(SLOTS)
        for first, last, _, r in self.rows:
            if self.my_index in r:
                readable[first : last + 1] = b"\x01" * (last - first + 1)
        self.readable = bytes(readable)
        self._addr = [f"{e.host}:{e.port}".encode() for e in self.endpoints]

    # -- the data path's checks -------------------------------------------------------

    def owns(self, slot: int) -> bool:
        return self.owner[slot] == self.my_index

    def redirect(self, slot: int) -> bytes | None:
        """``-MOVED slot host:port`` when another endpoint owns ``slot``, else None."""
        i = self.owner[slot]
        if i == self.my_index:
            return None
        return b"-MOVED %d %s\r\n" % (slot, self._addr[i])

    def reads(self, slot: int) -> bool:
        """Does this endpoint serve reads of ``slot`` after READONLY (it is listed as a
        replica of the slot's master)?"""
        return bool(self.readable[slot])

    def check_slots(self, slots: set[int]) -> bytes | None:
        """What a cluster node answers instead of running a request over ``slots``:
        CROSSSLOT for several, MOVED for one it does not own, None to run it."""
        if len(slots) > 1:
            return CROSSSLOT
        for slot in slots:
            return self.redirect(slot)
        return None

    def shard_of(self, slot: int) -> int:
        return self.topology.db.shard_of_slot(slot).index

    # -- commands ---------------------------------------------------------------------

    def command(self, argv: list[bytes], p: enc.Resp2) -> bytes | ScanSlot:
        """The reply to CLUSTER ..., READONLY, READWRITE or ASKING."""
        name = argv[0].lower()
        if name in (b"readonly", b"readwrite", b"asking"):
            if len(argv) != 1:
                return _arity_error(name.decode())
            return enc.OK  # no replicas to read from, no migrations to ask about
        assert name == b"cluster", name
        if len(argv) < 2:
            return _arity_error("cluster")
        sub = argv[1].lower()
        arity = _ARITY.get(sub)
        if arity is None:
            if sub in _MANAGED:
                return _error(
                    f"ERR CLUSTER {sub.decode().upper()} is not available through a "
                    "database endpoint: ackdb's cluster metadata owns the topology"
                )
            text = argv[1].decode("utf-8", "replace")
            return _error(f"ERR unknown subcommand '{text}'. Try CLUSTER HELP.")
        if len(argv) != arity:
            return _arity_error(f"cluster|{sub.decode()}")
        return self._sub(sub, argv, p)

    def _sub(self, sub: bytes, argv: list[bytes], p: enc.Resp2) -> bytes | ScanSlot:
        if sub == b"slots":
            return self.slots_reply(p)
        if sub == b"shards":
            return self.shards_reply(p)
        if sub == b"nodes":
            return p.verbatim(self.nodes_text().encode())
        if sub == b"info":
            return p.verbatim(self.info_text().encode())
        if sub == b"myid":
            return enc.bulk(self.me.id)
        if sub == b"keyslot":
            return enc.integer(key_slot(argv[2]))
        if sub == b"countkeysinslot":
            return self._countkeysinslot(argv[2])
        if sub == b"getkeysinslot":
            return self._getkeysinslot(argv[2], argv[3])
        if sub == b"links":
            return enc.EMPTY_ARRAY  # no cluster bus, no links
        if sub in (b"replicas", b"slaves"):
            found = [i for i, e in enumerate(self.endpoints) if e.id == argv[2]]
            if not found:
                return _error(f"ERR Unknown node {argv[2].decode('utf-8', 'replace')}")
            lines = [self._node_line(i).encode() for i in sorted(self.replicas.get(found[0], ()))]
            return enc.array([enc.bulk(line) for line in lines])
        if sub == b"count-failure-reports":
            if not any(e.id == argv[2] for e in self.endpoints):
                return _error(f"ERR Unknown node {argv[2].decode('utf-8', 'replace')}")
            return enc.ZERO
        assert sub == b"help", sub
        return enc.array([enc.simple(line) for line in _HELP])

    def _countkeysinslot(self, arg: bytes) -> bytes | ScanSlot:
        slot = _int(arg)
        if slot is None:
            return _NOT_INT
        if not 0 <= slot < SLOTS:
            return _error("ERR Invalid slot")
        if not self.owns(slot):
            return enc.ZERO  # a node counts its own keys only
        return ScanSlot(slot, self.shard_of(slot), None)

    def _getkeysinslot(self, arg: bytes, count: bytes) -> bytes | ScanSlot:
        slot, limit = _int(arg), _int(count)
        if slot is None or limit is None:
            return _NOT_INT
        if not 0 <= slot < SLOTS or limit < 0:
            return _error("ERR Invalid slot or number of keys")
        if limit == 0 or not self.owns(slot):
            return enc.EMPTY_ARRAY
        return ScanSlot(slot, self.shard_of(slot), min(limit, GETKEYSINSLOT_MAX))

    # -- the topology replies ---------------------------------------------------------

    def slots_reply(self, p: enc.Resp2) -> bytes:
        """CLUSTER SLOTS: [first, last, master, replica...] per range, by slot; each node
        is [host, port, id, {}]."""
        parts = []
        for first, last, m, reps in self.rows:
            nodes = [self._slots_node(self.endpoints[i], p) for i in (m, *reps)]
            head = b"*%d\r\n" % (2 + len(nodes)) + enc.integer(first) + enc.integer(last)
            parts.append(head + b"".join(nodes))
        return b"*%d\r\n" % len(parts) + b"".join(parts)

    @staticmethod
    def _slots_node(e: Endpoint, p: enc.Resp2) -> bytes:
        return (
            b"*4\r\n"
            + enc.bulk(e.host.encode())
            + enc.integer(e.port)
            + enc.bulk(e.id)
            + p.map_header(0)
        )

    def shards_reply(self, p: enc.Resp2) -> bytes:
        """CLUSTER SHARDS: one shard per endpoint, slots as a flat list of pairs."""
        masters = [i for i in range(len(self.endpoints)) if i not in self.listed]
        out = [b"*%d\r\n" % len(masters)]
        for i in masters:
            e = self.endpoints[i]
            slots = [enc.integer(x) for r in e.ranges for x in r]
            nodes = [self._shards_node(e, b"master", p)] + [
                self._shards_node(self.endpoints[r], b"replica", p)
                for r in sorted(self.replicas.get(i, ()))
            ]
            out.append(
                p.map_encoded(
                    [
                        (enc.bulk(b"slots"), enc.array(slots)),
                        (enc.bulk(b"nodes"), enc.array(nodes)),
                    ]
                )
            )
        return b"".join(out)

    @staticmethod
    def _shards_node(e: Endpoint, role: bytes, p: enc.Resp2) -> bytes:
        host = enc.bulk(e.host.encode())
        return p.map_encoded(
            [
                (enc.bulk(b"id"), enc.bulk(e.id)),
                (enc.bulk(b"port"), enc.integer(e.port)),
                (enc.bulk(b"ip"), host),
                (enc.bulk(b"endpoint"), host),
                (enc.bulk(b"role"), enc.bulk(role)),
                (enc.bulk(b"replication-offset"), enc.ZERO),
                (enc.bulk(b"health"), enc.bulk(b"online")),
            ]
        )

    def nodes_text(self) -> str:
        """CLUSTER NODES: one line per endpoint, each ending in a newline."""
        return "".join(self._node_line(i) + "\n" for i in range(len(self.endpoints)))

    def _node_line(self, i: int) -> str:
        e = self.endpoints[i]
        m = self.master_of.get(i)
        role = "master" if m is None else "slave"
        flags = f"myself,{role}" if e is self.me else role
        master = "-" if m is None else self.endpoints[m].id.decode()
        ranges = "".join(f" {a}-{b}" if a != b else f" {a}" for a, b in e.ranges)
        return (
            f"{e.id.decode()} {e.host}:{e.port}@0 {flags} {master} 0 0 {e.epoch} connected{ranges}"
        )

    def info_text(self) -> str:
        """CLUSTER INFO, Redis 7.0's fields (no bus: no messages sent or received)."""
        fields = [
            ("cluster_state", "ok"),
            ("cluster_slots_assigned", SLOTS),
            ("cluster_slots_ok", SLOTS),
            ("cluster_slots_pfail", 0),
            ("cluster_slots_fail", 0),
            ("cluster_known_nodes", len(self.endpoints)),
            ("cluster_size", sum(1 for e in self.endpoints if e.ranges)),
            ("cluster_current_epoch", len(self.endpoints)),
            ("cluster_my_epoch", self.me.epoch),
            ("cluster_stats_messages_sent", 0),
            ("cluster_stats_messages_received", 0),
            ("total_cluster_links_buffer_limit_exceeded", 0),
        ]
        return "".join(f"{k}:{v}\r\n" for k, v in fields)


Row = tuple[int, int, int, tuple[int, ...]]  # first, last, master, replicas (indexes)


def _rows(
    shards: tuple[Shard, ...], index: dict[str, int], slotless: set[str]
) -> tuple[list[Row], dict[int, set[int]]]:
    """CLUSTER SLOTS's rows (adjacent shards of one master with the same replicas merged)
    and each master's replica endpoints: those of nodes that own no slot and run a
    replica of one of its shards."""
    rows: list[Row] = []
    replicas: dict[int, set[int]] = {}
    for s in sorted(shards, key=lambda s: s.first_slot):
        m = index[s.primary.node]
        reps = tuple(sorted({index[r.node] for r in s.replicas if r.node in slotless}))
        replicas.setdefault(m, set()).update(reps)
        prev = rows[-1] if rows else None
        if prev is not None and prev[2:] == (m, reps) and prev[1] + 1 == s.first_slot:
            rows[-1] = (prev[0], s.last_slot, m, reps)
        else:
            rows.append((s.first_slot, s.last_slot, m, reps))
    return rows, replicas


def info_section() -> bytes:
    """INFO's Cluster section of an endpoint with the cluster API."""
    return b"# Cluster\r\ncluster_enabled:1\r\n"


def disabled_reply(argv: list[bytes]) -> bytes:
    """CLUSTER ..., READONLY, READWRITE, ASKING on an endpoint without the cluster API:
    a standalone redis-server's answers (HELP and unknown subcommands still work)."""
    name = argv[0].lower()
    if name != b"cluster":
        if len(argv) != 1:
            return _arity_error(name.decode())
        return DISABLED
    if len(argv) < 2:
        return _arity_error("cluster")
    sub = argv[1].lower()
    if sub == b"help" and len(argv) == 2:
        return enc.array([enc.simple(line) for line in _HELP])
    if sub not in _ARITY and sub not in _MANAGED:
        text = argv[1].decode("utf-8", "replace")
        return _error(f"ERR unknown subcommand '{text}'. Try CLUSTER HELP.")
    return DISABLED
