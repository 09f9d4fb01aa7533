"""The endpoint of the failover simulator: the product's endpoint core (proxy/session.py,
proxy/failover.py, proxy/router.py) run by a simulated shell on each node.

Owns, per node incarnation, what proxy/shell.py and proxy/shared.py do with sockets:
``SimEndpoint`` (``Endpoint``: the topology it routes by -- ``dbops.topology`` of its
node's applied metadata, delivered as ``ackdb proxy --meta``'s long poll gets it: when
the node applies a change of its version, and at once on a shard's stale hint; the idle
pool; the failover ticker every ``TICK_MS`` of its host's clock; a failing shard's
connections dropped past the bound), ``EpClient`` (``ClientConn``: one client connection
running the real ``Session``: requests parsed by the ``RequestReader``, ``pump`` writing
``out`` to the client and ``take`` / ``take_mux`` to the shard connections) and the shard
connections over sim/repl_world.py's links: ``Dedicated`` (``ShardConn``: a client's own,
with the pass-through and the refusal check) and ``Shared`` (``SharedConn``: the FIFO of
(client, sink), written once per event). A link a partition or a dead process breaks is a
lost shard connection; a connect to a host cut off fails after ``CONNECT_TIMEOUT_S``, to
a dead process at once. While its node is stopped (SIGSTOP) the endpoint takes no input:
what comes waits, in order. Not modelled: back-pressure (its limits are never reached
here), AUTH (the simulated shards have no password), the cluster API, INFO.

The shell logic follows proxy/shell.py's and proxy/shared.py's; a change there must be
made here. Never does IO and reads no real clock.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ackdb.cluster import dbops
from ackdb.cluster.databases import Topology
from ackdb.proxy.failover import FENCED_MARK, GONE, RO_MARK, TICK_MS, refused
from ackdb.proxy.merge import ScanCursors
from ackdb.proxy.replies import ReplyCounter, ReplyProtocolError, ReplySplitter
from ackdb.proxy.router import Router
from ackdb.proxy.session import Session, Sink
from ackdb.proxy.shell import BULK_MAX_BYTES, CONNECT_TIMEOUT_S, IDLE_PER_SHARD_MAX
from ackdb.proxy.shell import QUERY_BUFFER_MAX_BYTES
from ackdb.resp.reader import RequestReader

from .fo_shard import ShardNode
from .repl_world import Conn

if TYPE_CHECKING:
    from .failover_world import FailoverWorld
    from .replication import Node

CLIENT_LATENCY_MS = (1, 3)  # between a client and an endpoint, and node -> endpoint


class Peer:
    """What an endpoint writes to: the application's side of a client connection."""

    def on_bytes(self, conn: EpClient, data: bytes) -> None:
        raise NotImplementedError

    def on_closed(self, conn: EpClient) -> None:
        raise NotImplementedError


def _no_info() -> dict[str, list[tuple[str, Any]]]:
    return {}


class _Link:
    """One shard connection, the endpoint's end of a repl_world ``Conn`` (its ``name``
    is the host's, for the world's partition rules; the world calls ``on_link_*``)."""

    def __init__(self, ep: SimEndpoint, shard: int, addr: tuple[str, int]) -> None:
        self.ep = ep
        self.shard = shard
        self.addr = addr
        self.name = ep.node
        self.conn: Conn | None = None
        self.link_conn: Conn | None = None
        self.waiting: list[bytes] = []  # written before the connection opened
        self.splitter = ReplySplitter()
        self.closed = False

    def write(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            self.waiting.append(data)
        elif conn.alive:
            self.ep.w.repl.send(conn, True, data)

    def connected(self, conn: Conn) -> None:
        self.conn = self.link_conn = conn
        if self.closed:
            self.drop()
        elif self.waiting:
            self.ep.w.repl.send(conn, True, b"".join(self.waiting))
            self.waiting = []

    def drop(self) -> None:
        """Close the socket (the shard learns as from a FIN)."""
        conn = self.conn
        if conn is not None and conn.alive:
            self.ep.w.repl.break_conn(conn, by=cast("Node", self))

    def on_link_bytes(self, conn: Conn, data: bytes) -> None:
        self.ep.run_or_hold(self._bytes, conn, data)

    def on_link_lost(self, conn: Conn) -> None:
        self.ep.run_or_hold(self._lost, conn)

    def _bytes(self, conn: Conn, data: bytes) -> None:
        if conn is self.conn and not self.closed:
            self.data_received(data)

    def _lost(self, conn: Conn) -> None:
        if conn is self.conn:
            self.connection_lost()

    def data_received(self, data: bytes) -> None:
        raise NotImplementedError

    def connection_lost(self) -> None:
        raise NotImplementedError


class Dedicated(_Link):
    """proxy/shell.py's ``ShardConn``: a client's own connection to a shard's primary."""

    def __init__(self, ep: SimEndpoint, shard: int, addr: tuple[str, int]) -> None:
        super().__init__(ep, shard, addr)
        self.owner: EpClient | None = None
        self.counter = ReplyCounter()

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        split = self.splitter.pending_bytes()
        if owner is not None and not split:
            s = owner.session
            if s.can_pass(self.shard):
                n = self.counter.count(data)
                if (
                    n is not None
                    and n <= s.in_flight(self.shard)
                    and RO_MARK not in data
                    and FENCED_MARK not in data
                ):
                    s.passed(self.shard, data, n)
                    owner.pump()
                    return
        try:
            raws = self.splitter.feed(data)
        except (ReplyProtocolError, ValueError):
            self.close()
            return
        if owner is None:
            if raws:
                self.close()
            return
        if (split or RO_MARK in data or FENCED_MARK in data) and any(map(refused, raws)):
            self.ep.stale_hint(self.shard)
            owner.session.replies_checked(self.shard, raws)
        else:
            owner.session.replies(self.shard, raws)
        owner.pump()

    def connection_lost(self) -> None:
        self.closed = True
        self.ep.forget(self)
        if self.owner is not None:
            self.owner.shard_lost(self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.drop()
        if self.owner is not None:
            self.owner.shard_lost(self)


class Shared(_Link):
    """proxy/shared.py's ``SharedConn``: plain requests of every client to one shard."""

    def __init__(self, ep: SimEndpoint, shard: int, addr: tuple[str, int]) -> None:
        super().__init__(ep, shard, addr)
        self.clients: deque[EpClient] = deque()
        self.sinks: deque[Sink] = deque()
        self.out: list[bytes] = []
        self.scheduled = False

    def send(self, client: EpClient, data: bytes, sinks: list[Sink]) -> None:
        self.out.append(data)
        self.clients.extend([client] * len(sinks))
        self.sinks.extend(sinks)
        if not self.scheduled:  # the end of the loop pass
            self.scheduled = True
            self.ep.w.queue.schedule(0, self.ep.run_or_hold, self.flush)

    def flush(self) -> None:
        self.scheduled = False
        if self.conn is None or self.closed or not self.out:
            return
        self.write(b"".join(self.out))
        self.out.clear()

    def connected(self, conn: Conn) -> None:
        super().connected(conn)
        self.flush()

    def data_received(self, data: bytes) -> None:
        split = self.splitter.pending_bytes()
        try:
            raws = self.splitter.feed(data)
        except (ReplyProtocolError, ValueError):
            self.close()
            return
        check = (split or RO_MARK in data or FENCED_MARK in data) and any(map(refused, raws))
        if check:
            self.ep.stale_hint(self.shard)
        clients, sinks, shard = self.clients, self.sinks, self.shard
        settled: dict[EpClient, None] = {}
        for raw in raws:
            if not clients:  # a reply nobody asked for
                self.close()
                break
            c = clients.popleft()
            sink = sinks.popleft()
            if check and refused(raw):
                self._refused(c, sink, raw)
            else:
                c.session.mux_reply(shard, sink, raw)
            settled[c] = None
        for c in settled:
            c.mux_settled()

    def _refused(self, c: EpClient, sink: Sink, raw: bytes) -> None:
        later = [x for owner, x in zip(self.clients, self.sinks, strict=True) if owner is c]
        taken = c.session.mux_refused(self.shard, sink, raw, later)
        if taken:
            ids = {id(x) for x in taken}
            items = list(self.sinks)
            self.sinks.clear()
            self.sinks.extend(
                GONE if owner is c and id(x) in ids else x
                for owner, x in zip(self.clients, items, strict=True)
            )

    def connection_lost(self) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.drop()
        self.ep.forget_shared(self)
        owed: dict[EpClient, list[Sink]] = {}
        while self.clients:
            c = self.clients.popleft()
            owed.setdefault(c, []).append(self.sinks.popleft())
        for c, lost in owed.items():
            if not c.closed:
                c.session.mux_lost(self.shard, lost)
                c.mux_settled()


class EpClient:
    """proxy/shell.py's ``ClientConn``: one client connection and its ``Session``."""

    def __init__(self, ep: SimEndpoint, peer: Peer) -> None:
        assert ep.router is not None
        self.ep = ep
        self.peer = peer
        ep.next_id += 1
        s = Session(ep.router, ep.next_id, None, ep.rng_for(ep.next_id), _no_info, ep.cursors)
        s.acquire = self.acquire
        s.clock_ms = ep.clock
        s.mux = True
        self.session = s
        self.reader = RequestReader(BULK_MAX_BYTES, QUERY_BUFFER_MAX_BYTES, stepwise=True)
        self.reader.authenticated = s.authenticated
        self.shards: list[Dedicated | None] = [None] * ep.router.nshards
        self.closed = False
        self.last_t = 0  # the time its last bytes reach the client (in order)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        reader, s = self.reader, self.session
        boundary = reader.at_boundary()
        cmds = reader.feed(data)
        if cmds:
            raw = data if boundary and reader.at_boundary() and reader.error is None else None
            s.commands(cmds, raw)
            reader.authenticated = s.authenticated
        while reader.more and not s.closing:
            cmds = reader.feed(b"")
            if cmds:
                s.commands(cmds, None)
                reader.authenticated = s.authenticated
        self.pump()

    def connection_lost(self) -> None:
        if self.closed:
            return
        self.closed = True
        ep = self.ep
        ep.clients.pop(self, None)
        for shard, conn in enumerate(self.shards):
            if conn is None:
                continue
            conn.owner = None
            if self.session.reusable(shard) and not conn.closed and conn.conn is not None:
                ep.release(conn)
            else:
                conn.close()
        self.shards = []

    def mux_settled(self) -> None:
        if not self.closed:
            self.session.mux_settled()
            self.pump()

    def pump(self) -> None:
        s, ep = self.session, self.ep
        if s.mux_touched:
            for shard in s.take_mux_touched():
                data, sinks = s.take_mux(shard)
                sc = ep.shared[shard]
                if sc is None or sc.closed:
                    sc = ep.shared_conn(shard)
                sc.send(self, data, sinks)
        if s.touched:
            for shard in s.take_touched():
                data = s.take(shard)
                conn = self.shards[shard]
                if conn is None or conn.closed:
                    conn = self._connect(shard)
                if data:
                    conn.write(data)
        if s.out and not self.closed:
            ep.to_client(self, b"".join(s.out))
            s.out.clear()

    def acquire(self, shard: int) -> bool:
        assert self.ep.router is not None
        conn = self.ep.take_idle(self.ep.router.addrs[shard])
        if conn is None:
            return False
        conn.owner = self
        conn.shard = shard
        self.shards[shard] = conn
        return True

    def _connect(self, shard: int) -> Dedicated:
        ep = self.ep
        assert ep.router is not None
        conn = Dedicated(ep, shard, ep.router.addrs[shard])
        conn.owner = self
        self.shards[shard] = conn
        ep.connect(conn)
        return conn

    def shard_lost(self, conn: Dedicated) -> None:
        if self.closed or conn.shard >= len(self.shards) or self.shards[conn.shard] is not conn:
            return
        self.shards[conn.shard] = None
        self.session.lost(conn.shard)
        self.pump()


class SimEndpoint:
    """proxy/shell.py's ``Endpoint`` (and proxy/main.py's topology feed) on one node."""

    def __init__(self, w: FailoverWorld, node: str, db: str, rng: random.Random) -> None:
        self.w = w
        self.node = node
        self.db = db
        self.rng = rng
        self.alive = True
        self.router: Router | None = None  # listening once it has its first topology
        self.clients: dict[EpClient, None] = {}  # in the order they came
        self.cursors = ScanCursors()
        self.idle: dict[tuple[str, int], list[Dedicated]] = {}
        self.shared: list[Shared | None] = []
        self.next_id = 0
        self.seen_index = -1  # the node's applied index its feed last looked at
        self.ticking = False
        self.failing_since: dict[int, int] = {}  # shard -> host ms (-1: dropped)
        self.stale_at = -(10**9)
        self._inbox: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._draining = False

    # -- the process: its clock, its pauses, its death --

    def clock(self) -> int:
        return self.w.clock(self.node)

    @property
    def stopped(self) -> bool:
        return self.w.now < self.w.ep_paused.get(self.node, 0)

    def run_or_hold(self, fn: Callable[..., None], *args: Any) -> None:
        """An input: taken now, or (stopped, or older inputs waiting) once it resumes."""
        if not self.alive:
            return
        if not self._draining and (self.stopped or self._inbox):
            if not self._inbox:
                self.w.queue.schedule(self.w.ep_paused[self.node] - self.w.now, self._drain)
            self._inbox.append((fn, args))
            return
        fn(*args)

    def _drain(self) -> None:
        if self.stopped:
            self.w.queue.schedule(self.w.ep_paused[self.node] - self.w.now, self._drain)
            return
        inbox, self._inbox = self._inbox, []
        self._draining = True
        try:
            for fn, args in inbox:
                if self.alive:
                    fn(*args)
        finally:
            self._draining = False

    def die(self) -> None:
        """Killed with its node: every socket is closed by the kernel."""
        self.alive = False
        self._inbox.clear()
        links: list[_Link] = [c for conns in self.idle.values() for c in conns]
        links += [s for s in self.shared if s is not None]
        for c in self.clients:
            links += [x for x in c.shards if x is not None]
            self.w.queue.schedule(self._latency(), c.peer.on_closed, c)
        for link in links:
            link.drop()

    def _latency(self) -> int:
        return self.rng.randint(*CLIENT_LATENCY_MS)

    # -- clients --

    @property
    def listening(self) -> bool:
        return self.alive and self.router is not None

    def accept(self, peer: Peer) -> EpClient:
        c = EpClient(self, peer)
        self.clients[c] = None
        return c

    def from_client(self, c: EpClient, data: bytes) -> None:
        """Bytes the client sent (they arrive after a latency, in order)."""
        self.run_or_hold(c.data_received, data)

    def client_closed(self, c: EpClient) -> None:
        self.run_or_hold(c.connection_lost)

    def to_client(self, c: EpClient, data: bytes) -> None:
        t = max(self.w.now + self._latency(), c.last_t)
        c.last_t = t
        self.w.queue.schedule(t - self.w.now, self._deliver, c, data)

    def _deliver(self, c: EpClient, data: bytes) -> None:
        if self.alive and not c.closed:
            c.peer.on_bytes(c, data)

    def rng_for(self, client_id: int) -> random.Random:
        return random.Random(self.rng.getrandbits(64) ^ client_id)

    # -- shard connections --

    def connect(self, link: _Link) -> None:
        delay = self.w.repl.rng.randint(*self.w.repl.latency_ms)
        self.w.queue.schedule(delay, self.run_or_hold, self._dial, link)

    def _dial(self, link: _Link) -> None:
        w = self.w
        host, port = link.addr
        target = w.repl.find(host, port)
        if w.cut(self.node, host):  # no answer: the connect times out
            ms = w.real_ms(self.node, int(CONNECT_TIMEOUT_S * 1000))
            w.queue.schedule(ms, self.run_or_hold, self._failed, link)
        elif not isinstance(target, ShardNode) or not target.alive:
            self._failed(link)  # refused
        else:
            conn = Conn(w.repl.new_id(), cast("Node", link), target)
            w.repl.conns[conn.cid] = conn
            target.accept_endpoint(conn)
            link.connected(conn)

    def _failed(self, link: _Link) -> None:
        if isinstance(link, Shared):
            link.close()
        elif not link.closed:
            assert isinstance(link, Dedicated)
            link.closed = True
            if link.owner is not None:
                link.owner.shard_lost(link)

    def shared_conn(self, shard: int) -> Shared:
        assert self.router is not None
        conn = self.shared[shard]
        if conn is None or conn.closed:
            conn = Shared(self, shard, self.router.addrs[shard])
            self.shared[shard] = conn
            self.connect(conn)
        return conn

    def forget_shared(self, conn: Shared) -> None:
        if self.shared[conn.shard] is conn:
            self.shared[conn.shard] = None

    def take_idle(self, addr: tuple[str, int]) -> Dedicated | None:
        conns = self.idle.get(addr)
        while conns:
            conn = conns.pop()
            if not conn.closed:
                return conn
        return None

    def release(self, conn: Dedicated) -> None:
        assert self.router is not None
        conns = self.idle.setdefault(conn.addr, [])
        if len(conns) >= IDLE_PER_SHARD_MAX or conn.addr not in self.router.addrs:
            conn.close()
            return
        conn.shard = -1
        conns.append(conn)

    def forget(self, conn: Dedicated) -> None:
        conns = self.idle.get(conn.addr)
        if conns and conn in conns:
            conns.remove(conn)

    # -- topology: proxy/main.py's follow_meta --

    def member_passed(self) -> None:
        """Its node's member ran a pass: the long poll is answered when the database's
        topology version passed the one the endpoint knows."""
        meta = self.w.meta(self.node)
        if meta.applied_index == self.seen_index:
            return
        self.seen_index = meta.applied_index
        version = dbops.topology_version(meta, self.db)
        known = -1 if self.router is None else self.router.topology.version
        if version is not None and version > known:
            self._answer()

    def _answer(self) -> None:
        """DB.TOPOLOGY answered by the node now (the node process paused: once it
        resumes); the endpoint gets it a moment later."""
        w = self.w
        if w.agent_stopped(self.node):
            w.queue.schedule(w.paused[self.node] - w.now, self._answer)
            return
        topo = dbops.topology(w.meta(self.node), self.db, self.node)
        if topo is not None:
            w.queue.schedule(self._latency(), self.run_or_hold, self.topology, topo)

    def topology(self, topo: Topology) -> None:
        if self.router is None:
            self.router = Router.of(topo)
            self.shared = [None] * self.router.nshards
            self._watch_failing()
        elif topo.version > self.router.topology.version:
            self.set_router(Router.of(topo))

    def set_router(self, router: Router) -> None:
        old = self.router
        assert old is not None
        if router.nshards != old.nshards:
            return
        self.router = router
        moved = [i for i in range(router.nshards) if router.addrs[i] != old.addrs[i]]
        for addr in list(self.idle):
            if addr not in router.addrs:
                for idle in self.idle.pop(addr):
                    idle.close()
        clients = list(self.clients)
        for c in clients:
            c.session.set_router(router)
        for c in clients:
            for i in moved:
                conn = c.shards[i] if i < len(c.shards) else None
                if conn is not None:
                    conn.close()
        for i in moved:
            shared = self.shared[i]
            if shared is not None:
                shared.close()
        for c in clients:
            if not c.closed:
                c.session.resume()
                c.pump()
        self._watch_failing()

    def _watch_failing(self) -> None:
        router, now = self.router, self.clock()
        assert router is not None
        failing = [i for i in range(router.nshards) if router.failing >> i & 1]
        self.failing_since = {i: self.failing_since.get(i, now) for i in failing}
        if router.failing:
            self._start_ticker()

    def _start_ticker(self) -> None:
        if not self.ticking:
            self.ticking = True
            self.w.queue.schedule(self.w.real_ms(self.node, TICK_MS), self.run_or_hold, self._tick)

    def _tick(self) -> None:
        self.ticking = False
        router, now = self.router, self.clock()
        assert router is not None
        for i, since in list(self.failing_since.items()):
            if since >= 0 and now - since > router.wait_ms:
                self.failing_since[i] = -1  # once per failover
                self._drop_shard(i)
        waiting = False
        for c in list(self.clients):
            if c.session.parked and not c.closed:
                c.session.tick(now)
                c.pump()
                waiting = waiting or bool(c.session.parked)
        if self.router is not None and (self.router.failing or waiting):
            self._start_ticker()

    def _drop_shard(self, shard: int) -> None:
        assert self.router is not None
        shared = self.shared[shard]
        if shared is not None:
            shared.close()
        for c in list(self.clients):
            conn = c.shards[shard] if shard < len(c.shards) else None
            if conn is not None:
                conn.close()
        for idle in self.idle.pop(self.router.addrs[shard], []):
            idle.close()

    def stale_hint(self, shard: int) -> None:
        """A primary refused a write as demoted or fenced: re-read the topology now."""
        self._start_ticker()
        now = self.clock()
        if now - self.stale_at < TICK_MS:
            return
        self.stale_at = now
        self.w.queue.schedule(self._latency(), self._answer)
