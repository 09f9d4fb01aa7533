"""The endpoint of the failover simulator: the product's endpoint core (proxy/session.py,
proxy/failover.py, proxy/router.py) run by a simulated shell on each node.

Owns, per node incarnation, ``SimEndpoint`` -- what proxy/shell.py's ``Endpoint`` and
proxy/main.py's topology feed do: the topology it routes by (``dbops.topology`` of its
node's applied metadata, delivered as ``ackdb proxy --meta``'s long poll gets it: when
the node applies a change of its version, and at once on a shard's stale hint), its
client connections and shard connections (sim/fo_epconns.py), the idle pool, opening
shard connections over the simulated network (a connect to a host cut off fails after
``CONNECT_TIMEOUT_S``, to a dead process at once), the failover ticker every
``TICK_MS`` of its host's clock, a failing shard's connections dropped past the bound,
and its process: stopped with its node (SIGSTOP: what comes waits, in order), killed
with it. Not modelled: back-pressure (its limits are never reached here), AUTH (the
simulated shards have no password), the cluster API, INFO.

The logic follows proxy/shell.py's; a change there must be made here. Never does IO and
reads no real clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ackdb.cluster import dbops
from ackdb.cluster.databases import Topology
from ackdb.proxy.failover import TICK_MS
from ackdb.proxy.merge import ScanCursors
from ackdb.proxy.repoint import repoint
from ackdb.proxy.router import Router
from ackdb.proxy.shell import CONNECT_TIMEOUT_S, IDLE_PER_SHARD_MAX

from .fo_epconns import Dedicated, EpClient, Link, Peer, Shared
from .fo_shard import ShardNode
from .repl_world import Conn

if TYPE_CHECKING:
    from .failover_world import FailoverWorld
    from .replication import Node

CLIENT_LATENCY_MS = (1, 3)  # between a client and an endpoint, and node -> endpoint


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
        links: list[Link] = [c for conns in self.idle.values() for c in conns]
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

    def connect(self, link: Link) -> None:
        delay = self.w.repl.rng.randint(*self.w.repl.latency_ms)
        self.w.queue.schedule(delay, self.run_or_hold, self._dial, link)

    def _dial(self, link: Link) -> None:
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

    def _failed(self, link: Link) -> None:
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
        assert self.router is not None
        if repoint(self, router) is None:  # the asyncio shell's own steps (proxy/repoint.py)
            return
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
