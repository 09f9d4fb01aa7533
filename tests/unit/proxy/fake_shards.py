"""A session core wired to in-memory fake shards: enough of a Redis to check the proxy's
routing, ordering, merging and transaction rules without sockets."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from ackdb.cluster.databases import (
    Database,
    DbType,
    Fence,
    Instance,
    Persistence,
    Shard,
    ShardState,
    Topology,
    slot_ranges,
)
from ackdb.cluster.keyslot import key_slot
from ackdb.proxy import failover
from ackdb.proxy.replies import ReplySplitter
from ackdb.proxy.router import Router
from ackdb.proxy.session import Session, Sink
from ackdb.resp.reader import RequestReader
from ackdb.resp.replies import NEED_DATA, ReplyReader


def topology(
    shards: int,
    password: str = "",
    version: int = 1,
    ports: dict[int, int] | None = None,
    epochs: dict[int, int] | None = None,
    failing: frozenset[int] = frozenset(),
) -> Topology:
    """``ports``: a shard's primary port when not 30000 + its index (a failover moved it);
    ``failing``: shards in state FAILING."""
    digest = hashlib.sha256(password.encode()).hexdigest() if password else ""
    ports = ports or {}
    epochs = epochs or {}
    db = Database(
        "d",
        1,
        DbType.SHARDED,
        12000,
        False,
        0,
        Persistence.NONE,
        digest,
        False,
        tuple(
            Shard(
                i,
                a,
                b,
                epochs.get(i, 1),
                Instance("n1", ports.get(i, 30000 + i)),
                (),
                state=ShardState.FAILING if i in failing else ShardState.OK,
                fence=Fence(version, Instance("n1", 30000 + i), False, "", "")
                if i in failing
                else None,
            )
            for i, (a, b) in enumerate(slot_ranges(shards))
        ),
    )
    return Topology(version, db, {"n1": "127.0.0.1"}, "n1")


def bulk(v: bytes | None) -> bytes:
    return b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v)


class FakeShard:
    """Holds keys; answers the commands the tests send; records every request."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.data: dict[bytes, bytes] = {}
        self.requests: list[list[bytes]] = []
        self.multi: list[list[bytes]] | None = None
        self.wait_reply = 1  # what WAIT answers
        self.hold = False  # keep replies back (a slow shard)
        self.held: list[bytes] = []
        # A demoted (or fenced) primary: what every write gets (a refusal), as Redis
        # answers on a read-only replica (queued writes too: EXEC then aborts).
        self.refuse: bytes | None = None
        self.multi_refused = False

    def handle(self, argv: list[bytes]) -> bytes:
        self.requests.append(argv)
        name = argv[0].upper()
        if self.refuse is not None and name in WRITES:
            if self.multi is not None:
                self.multi_refused = True
            return self.refuse
        if self.multi is not None and name not in (b"EXEC", b"DISCARD"):
            self.multi.append(argv)
            return b"+QUEUED\r\n"
        if name == b"MULTI":
            self.multi = []
            self.multi_refused = False
            return b"+OK\r\n"
        if name == b"EXEC":
            queued, self.multi = self.multi or [], None
            if self.multi_refused:
                return b"-EXECABORT Transaction discarded because of previous errors.\r\n"
            return b"*%d\r\n" % len(queued) + b"".join(self.run(q[0].upper(), q) for q in queued)
        if name == b"WAIT" and self.refuse == READONLY:  # (a fenced primary answers it)
            return b"-ERR WAIT cannot be used with replica instances.\r\n"
        return self.run(name, argv)

    def run(self, name: bytes, argv: list[bytes]) -> bytes:  # noqa: C901 - a fake's switch
        d = self.data
        if name in (b"AUTH", b"UNWATCH", b"WATCH", b"FLUSHALL", b"FLUSHDB"):
            if name.startswith(b"FLUSH"):
                d.clear()
            return b"+OK\r\n"
        if name == b"HELLO":
            return b"%1\r\n$5\r\nproto\r\n:" + argv[1] + b"\r\n"
        if name == b"SET":
            d[argv[1]] = argv[2]
            return b"+OK\r\n"
        if name == b"MSET":
            for i in range(1, len(argv), 2):
                d[argv[i]] = argv[i + 1]
            return b"+OK\r\n"
        if name == b"GET":
            return bulk(d.get(argv[1]))
        if name == b"MGET":
            return b"*%d\r\n" % (len(argv) - 1) + b"".join(bulk(d.get(k)) for k in argv[1:])
        if name in (b"DEL", b"EXISTS", b"UNLINK", b"TOUCH"):
            n = sum(1 for k in argv[1:] if k in d)
            if name in (b"DEL", b"UNLINK"):
                for k in argv[1:]:
                    d.pop(k, None)
            return b":%d\r\n" % n
        if name == b"DBSIZE":
            return b":%d\r\n" % len(d)
        if name == b"KEYS":
            return b"*%d\r\n" % len(d) + b"".join(bulk(k) for k in sorted(d))
        if name == b"WAIT":
            return b":%d\r\n" % self.wait_reply
        if name == b"WAITAOF":
            return b"*2\r\n:1\r\n:%d\r\n" % self.wait_reply
        if name == b"SCAN":  # pages of 2 keys; the cursor is the position
            keys = sorted(d)
            pos = int(argv[1])
            page = keys[pos : pos + 2]
            nxt = pos + 2 if pos + 2 < len(keys) else 0
            cur = b"%d" % nxt
            return b"*2\r\n" + bulk(cur) + b"*%d\r\n" % len(page) + b"".join(bulk(k) for k in page)
        if name == b"INFO":
            text = b"# Keyspace\r\ndb0:keys=%d,expires=0,avg_ttl=0\r\n" % len(d)
            return bulk(text)
        if name == b"PING":
            return b"+PONG\r\n"
        if name == b"ACKDB.SYNCWOFF":
            return b"+OK\r\n"
        if name == b"BLPOP":
            v = d.pop(argv[1], None)
            return b"*-1\r\n" if v is None else b"*2\r\n" + bulk(argv[1]) + bulk(v)
        return b"-ERR fake shard: unknown '%s'\r\n" % name


WRITES = frozenset({b"SET", b"MSET", b"DEL", b"UNLINK", b"INCR", b"FLUSHALL", b"BLPOP"})
READONLY = b"-READONLY You can't write against a read only replica.\r\n"


class Harness:
    """One client session and its fake shards; ``call`` runs requests end to end."""

    def __init__(
        self, shards: int = 3, password: str = "", auto: bool = True, mux: bool = False
    ) -> None:
        self.router = Router.of(topology(shards, password))
        self.session = Session(
            self.router, 7, b"shardpw", info=lambda: {"server": [("redis_version", "7.2.4")]}
        )
        self.shards = [FakeShard(i) for i in range(shards)]
        self.readers = [RequestReader() for _ in range(shards)]
        self.splitters = [ReplySplitter() for _ in range(shards)]
        self.replies = ReplyReader()
        self.auto = auto  # answer shard requests at once
        # The shared connections (``mux``): what went over them, and held replies.
        self.session.mux = mux
        self.shared: list[list[list[bytes]]] = [[] for _ in range(shards)]
        self.shared_readers = [RequestReader() for _ in range(shards)]
        self.shared_hold = [False] * shards
        self.shared_held: list[list[tuple[Sink, bytes]]] = [[] for _ in range(shards)]
        self.old_shards: list[FakeShard] = []  # primaries a failover replaced
        self.new_refuse: bytes | None = None  # what new primaries (``switch``) refuse with

    def send(self, *cmds: list[bytes] | str, raw: bytes | None = None) -> None:
        argvs = [c.encode().split() if isinstance(c, str) else c for c in cmds]
        self.session.commands(argvs, raw)
        if self.auto:
            self.pump()

    def pump(self) -> None:
        """Deliver what the session wrote to each shard and the shards' replies."""
        s = self.session
        for _ in range(10):
            self._pump_shared()
            touched = s.take_touched()
            if not touched:
                if not s.mux_touched:
                    return
                continue
            for i in touched:
                data = s.take(i)
                out = b"".join(self.shards[i].handle(a) for a in self.readers[i].feed(data))
                if self.shards[i].hold:
                    self.shards[i].held.append(out)
                    continue
                self._replies(i, self.splitters[i].feed(out))

    def _replies(self, shard: int, raws: list[bytes]) -> None:
        """As the shell: the refusal-checking path when a reply is a refusal."""
        if any(map(failover.refused, raws)):
            self.session.replies_checked(shard, raws)
        else:
            self.session.replies(shard, raws)

    def _pump_shared(self) -> None:
        s = self.session
        for i in s.take_mux_touched():
            data, sinks = s.take_mux(i)
            argvs = self.shared_readers[i].feed(data)
            self.shared[i].extend(argvs)
            splitter = ReplySplitter()
            raws = splitter.feed(b"".join(self.shards[i].handle(a) for a in argvs))
            assert len(raws) == len(sinks)
            self.shared_held[i].extend(zip(sinks, raws, strict=True))
            if not self.shared_hold[i]:
                self.release_shared(i)

    def release_shared(self, shard: int, lost: bytes | None = None) -> None:
        """The shared connection's replies held so far (each ``lost`` when given)."""
        self.shared_hold[shard] = False
        held, self.shared_held[shard] = self.shared_held[shard], []
        for i, (sink, raw) in enumerate(held):
            if lost is None and failover.refused(raw):  # as SharedConn._refused
                later = [x for x, _ in held[i + 1 :]]
                taken = {id(x) for x in self.session.mux_refused(shard, sink, raw, later)}
                for j in range(i + 1, len(held)):
                    if id(held[j][0]) in taken:
                        held[j] = (failover.GONE, held[j][1])
                continue
            self.session.mux_reply(shard, sink, raw if lost is None else lost)
        self.session.mux_settled()

    def switch(self, topo: Topology) -> None:
        """A new topology, as the shell applies it (``Endpoint.set_router``): the session
        learns it, the connections to primaries that moved are dropped (shared and
        dedicated: a new ``FakeShard`` with the same data stands for the new primary, and
        the old one's held replies are lost), then what waited is resumed."""
        s = self.session
        router = Router.of(topo)
        moved = [i for i in range(router.nshards) if router.addrs[i] != self.router.addrs[i]]
        self.router = router
        s.set_router(router)
        for i in moved:
            old = self.shards[i]
            self.shards[i] = FakeShard(i)
            self.shards[i].data = old.data
            self.shards[i].refuse = self.new_refuse
            self.old_shards.append(old)
            self.readers[i] = RequestReader()
            self.splitters[i] = ReplySplitter()
            s.lost(i)
            held, self.shared_held[i] = self.shared_held[i], []
            self.shared_hold[i] = False
            if held:
                s.mux_lost(i, [sink for sink, _ in held])
                s.mux_settled()
        s.resume()
        if self.auto:
            self.pump()

    def release(self, shard: int) -> None:
        fs = self.shards[shard]
        fs.hold = False
        out = b"".join(fs.held)
        fs.held = []
        self._replies(shard, self.splitters[shard].feed(out))
        self.pump()  # what waited for a new connection's AUTH reply

    def out(self) -> list[object]:
        """The replies the client got so far, decoded."""
        data = b"".join(self.session.out)
        self.session.out.clear()
        self.replies.feed(data)
        got = []
        while (r := self.replies.get()) is not NEED_DATA:
            got.append(r)
        return got

    def call(self, *cmds: list[bytes] | str) -> list[object]:
        self.send(*cmds)
        return self.out()

    def shard_of(self, key: bytes) -> int:
        return self.router.shard_of[key_slot(key)]

    def keys_on(self, shard: int, n: int = 1, prefix: bytes = b"k") -> list[bytes]:
        out, i = [], 0
        while len(out) < n:
            k = b"%s%d" % (prefix, i)
            if self.shard_of(k) == shard:
                out.append(k)
            i += 1
        return out


Check = Callable[[Harness], None]
