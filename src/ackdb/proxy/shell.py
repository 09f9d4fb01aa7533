"""The endpoint's asyncio shell: the listener, client connections, shard connections and
their idle pool, back-pressure, and topology changes.

SHELL MODULE: sockets and the event loop. It only moves bytes: every decision (routing,
reply order, merges, transactions, WAIT) is the session core's (proxy/session.py). One
``ClientConn`` per client runs one ``Session``. Plain requests of all clients to a shard
go over the endpoint's one ``SharedConn`` to it: what the clients queue during a loop pass
is written once at its end, and a FIFO of (client, sink) matches the replies back. What
needs session state on the shard goes over a dedicated ``ShardConn`` the client opens the
first time it needs one (taken from the idle pool when one is free); clean ones return to
the pool when the client leaves.

Limits (each named with its unit):
- ``PENDING_REPLIES_MAX``: replies a client may be owed; reading it pauses above this.
- ``SHARD_WRITE_HIGH_BYTES``: bytes queued for a shard connection before the client
  feeding it is paused (asyncio's write-buffer high-water mark; it resumes at a quarter).
- ``CLIENT_WRITE_HIGH_BYTES``: bytes queued for a slow client before its shard connections
  stop being read (the shards then hold the replies) and the client stops being read.
- ``IDLE_PER_SHARD_MAX``: idle authenticated connections kept per shard address.
- ``CLIENTS_MAX``: client connections; more are refused with Redis's error.
- ``QUERY_BUFFER_MAX_BYTES`` / ``BULK_MAX_BYTES``: Redis's request limits (resp/reader.py).
- ``CONNECT_TIMEOUT_S``: opening a shard connection; past it the requests sent get errors.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from typing import Any, cast

from .. import REDIS_COMPAT_VERSION, __version__
from ..resp.reader import RequestReader
from .failover import TICK_MS
from .log import Log
from .merge import ScanCursors
from .replies import ReplyCounter, ReplyProtocolError, ReplySplitter
from .repoint import repoint
from .router import Router
from .session import Session
from .shared import SHARD_WRITE_HIGH_BYTES, SharedConn

PENDING_REPLIES_MAX = 1024
PENDING_REPLIES_RESUME = PENDING_REPLIES_MAX // 2
CLIENT_WRITE_HIGH_BYTES = 4 * 1024 * 1024
IDLE_PER_SHARD_MAX = 64
CLIENTS_MAX = 10000
QUERY_BUFFER_MAX_BYTES = 1024 * 1024 * 1024
BULK_MAX_BYTES = 512 * 1024 * 1024
CONNECT_TIMEOUT_S = 5.0
MAX_CLIENTS_REPLY = b"-ERR max number of clients reached\r\n"


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


class ShardConn(asyncio.Protocol):
    """One connection to a shard's primary, owned by one client (or idle in the pool)."""

    def __init__(self, endpoint: Endpoint, addr: tuple[str, int]) -> None:
        self.endpoint = endpoint
        self.addr = addr
        self.owner: ClientConn | None = None
        self.shard = -1
        self.transport: asyncio.Transport | None = None
        self.splitter = ReplySplitter()
        self.counter = ReplyCounter()
        self.waiting: list[bytes] = []  # written before the connection opened
        self.closed = False
        self.paused = False  # its write buffer is above the high-water mark

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)
        else:
            self.waiting.append(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.set_write_buffer_limits(high=SHARD_WRITE_HIGH_BYTES)
        if self.closed:
            self.transport.close()
            return
        if self.waiting:
            self.transport.write(b"".join(self.waiting))
            self.waiting = []

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        try:
            if owner is None:
                if self.splitter.feed(data):  # an idle connection must stay silent
                    self.close()
                return
            owner.session.dedicated_read(
                self.shard, self.counter, self.splitter, data, self.endpoint.stale_hint
            )
        except (ReplyProtocolError, ValueError) as e:
            self.endpoint.log.warning(f"shard {self.addr}: bad reply stream ({e}); dropping it")
            self.close()
            return
        owner.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.endpoint.forget(self)
        if self.owner is not None:
            self.owner.shard_lost(self)

    def pause_writing(self) -> None:
        if self.owner is not None and not self.paused:
            self.paused = True
            self.owner.shard_paused(+1)

    def resume_writing(self) -> None:
        if self.owner is not None and self.paused:
            self.paused = False
            self.owner.shard_paused(-1)

    def close(self) -> None:
        """Close it now; its owner learns at once (what it owed fails), so a request that
        follows opens a new connection instead of queueing behind a dead one."""
        if self.closed:
            return
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        if self.owner is not None:
            self.owner.shard_lost(self)


class ClientConn(asyncio.Protocol):
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.session: Session
        self.reader = RequestReader(BULK_MAX_BYTES, QUERY_BUFFER_MAX_BYTES, stepwise=True)
        self.shards: list[ShardConn | None] = []
        self.paused_shards = 0
        self.write_paused = False
        self.reading = True
        self.closed = False

    # -- the client's socket -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport = self.transport
        ep = self.endpoint
        if len(ep.clients) >= CLIENTS_MAX:
            ep.stat_rejected += 1
            transport.write(MAX_CLIENTS_REPLY)
            transport.close()
            self.closed = True
            return
        transport.set_write_buffer_limits(high=CLIENT_WRITE_HIGH_BYTES)
        ep.next_id += 1
        ep.stat_connections += 1
        s = Session(
            ep.router, ep.next_id, ep.shard_password, ep.rng_for(ep.next_id), ep.info, ep.cursors
        )
        s.acquire = self.acquire
        s.clock_ms = _monotonic_ms
        s.mux = True
        self.session = s
        self.reader.authenticated = s.authenticated
        self.shards = [None] * ep.router.nshards
        ep.clients.add(self)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        boundary = reader.at_boundary()
        cmds = reader.feed(data)
        s = self.session
        if cmds:
            raw = data if boundary and reader.at_boundary() and reader.error is None else None
            s.commands(cmds, raw)
            reader.authenticated = s.authenticated
        while reader.more and not s.closing:
            # Unauthenticated: one command per feed (AUTH runs before the rest is parsed).
            cmds = reader.feed(b"")
            if cmds:
                s.commands(cmds, None)
                reader.authenticated = s.authenticated
        if reader.error is not None:
            s.closing = True
            if reader.error.reply is not None:
                s._reply(b"-" + reader.error.reply.encode() + b"\r\n")
        self.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        ep = self.endpoint
        ep.clients.discard(self)
        ep.stat_commands += self.session.commands_processed if hasattr(self, "session") else 0
        for shard, conn in enumerate(self.shards):
            if conn is None:
                continue
            conn.owner = None
            if self.session.reusable(shard) and not conn.closed and conn.transport is not None:
                ep.release(conn)
            else:
                conn.close()
        self.shards = []

    def pause_writing(self) -> None:
        self.write_paused = True
        for conn in self.shards:
            if conn is not None and conn.transport is not None:
                conn.transport.pause_reading()
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        for conn in self.shards:
            if conn is not None and conn.transport is not None and not conn.closed:
                conn.transport.resume_reading()
        self._update_reading()

    # -- carrying out the session's outputs ---------------------------------------------------

    def mux_settled(self) -> None:
        if not self.closed:
            self.session.mux_settled()
            self.pump()

    def pump(self) -> None:
        s = self.session
        if s.mux_touched:
            shared = self.endpoint.shared
            for shard in s.take_mux_touched():
                data, sinks = s.take_mux(shard)
                sc = shared[shard]
                if sc is None or sc.closed:
                    sc = self.endpoint.shared_conn(shard)
                sc.send(self, data, sinks)
        if s.touched:
            for shard in s.take_touched():
                data = s.take(shard)
                conn = self.shards[shard]
                if conn is None or conn.closed:
                    conn = self._connect(shard)
                if data:
                    conn.write(data)
        t = self.transport
        if s.out and t is not None and not self.closed:
            t.write(b"".join(s.out))
            s.out.clear()
        if s.closing and not s.queue and t is not None:
            t.close()
            return
        # _update_reading's test when nothing is paused, inlined (it runs per request)
        if (
            self.reading
            and len(s.queue) < PENDING_REPLIES_MAX
            and not (s.held or self.paused_shards or self.write_paused)
            and not self.endpoint.paused_shared
        ):
            return
        self._update_reading()

    def _update_reading(self) -> None:
        t = self.transport
        if t is None or self.closed:
            return
        s = self.session
        want = (
            not self.paused_shards
            and not self.write_paused
            and not self.endpoint.paused_shared
            and len(s.queue) + len(s.held)
            < (PENDING_REPLIES_MAX if self.reading else PENDING_REPLIES_RESUME)
        )
        if want != self.reading:
            self.reading = want
            if want:
                t.resume_reading()
            else:
                t.pause_reading()

    def acquire(self, shard: int) -> bool:
        """The session opens shard ``shard``: True when an idle, already authenticated
        connection was taken from the pool (no AUTH to send)."""
        conn = self.endpoint.take_idle(self.endpoint.router.addrs[shard])
        if conn is None:
            return False
        conn.owner = self
        conn.shard = shard
        self.shards[shard] = conn
        return True

    def _connect(self, shard: int) -> ShardConn:
        ep = self.endpoint
        conn = ShardConn(ep, ep.router.addrs[shard])
        conn.owner = self
        conn.shard = shard
        self.shards[shard] = conn
        ep.open_shard_conn(conn)
        return conn

    def shard_lost(self, conn: ShardConn) -> None:
        if self.closed or conn.shard >= len(self.shards) or self.shards[conn.shard] is not conn:
            return
        self.shards[conn.shard] = None
        if conn.paused:
            conn.paused = False
            self.shard_paused(-1)
        self.session.lost(conn.shard)
        self.pump()

    def shard_paused(self, delta: int) -> None:
        self.paused_shards = max(0, self.paused_shards + delta)
        self._update_reading()


class Endpoint:
    """The listener and what its clients share: the router, the idle pool, the stats."""

    def __init__(
        self,
        router: Router,
        shard_password: bytes | None,
        log: Log,
        port: int,
        rng: random.Random | None = None,
    ) -> None:
        self.router = router
        self.shard_password = shard_password
        self.log = log
        self.port = port
        self.rng = rng or random.Random()
        self.clients: set[ClientConn] = set()
        self.cursors = ScanCursors()
        self.idle: dict[tuple[str, int], list[ShardConn]] = {}
        self.shared: list[SharedConn | None] = [None] * router.nshards
        self.paused_shared = 0  # shared connections above their write high-water mark
        self.next_id = 0
        self.started = time.monotonic()
        self.stat_connections = 0
        self.stat_rejected = 0
        self.stat_commands = 0
        self.stat_shard_connects = 0
        self.stat_shard_connect_failures = 0
        self.server: asyncio.AbstractServer | None = None
        self.on_topology: list[Callable[[Router], None]] = []
        # Failover: the timer ticking sessions while a shard fails over; the hook a shard's
        # -READONLY calls (the topology feed re-polls at once), at most once per tick.
        self.ticker: asyncio.TimerHandle | None = None
        self.failing_since: dict[int, float] = {}  # shard -> monotonic s (0: dropped)
        self.on_stale: Callable[[], None] | None = None
        self.stale_at = 0.0

    def rng_for(self, client_id: int) -> random.Random:
        return random.Random(self.rng.getrandbits(64) ^ client_id)

    async def listen(self, host: str) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: ClientConn(self), host, self.port, reuse_address=True, backlog=511
        )
        self._watch_failing()  # the first topology may have a shard failing already

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.ticker is not None:
            self.ticker.cancel()
            self.ticker = None
        for c in list(self.clients):
            if c.transport is not None:
                c.transport.close()
        for conns in self.idle.values():
            for conn in conns:
                conn.close()
        self.idle.clear()
        for shared in self.shared:
            if shared is not None:
                shared.close()

    # -- shard connections -----------------------------------------------------------------

    def open_shard_conn(self, conn: ShardConn) -> None:
        def failed() -> None:
            conn.closed = True
            if conn.owner is not None:
                conn.owner.shard_lost(conn)

        self._connect(conn, failed)

    def shared_conn(self, shard: int) -> SharedConn:
        conn = self.shared[shard]
        if conn is None or conn.closed:
            conn = SharedConn(self, shard, self.router.addrs[shard])
            self.shared[shard] = conn
            self._connect(conn, conn.close)
        return conn

    def _connect(self, conn: ShardConn | SharedConn, failed: Callable[[], None]) -> None:
        """Connect ``conn`` to its shard in the background; ``failed`` when it cannot."""
        self.stat_shard_connects += 1
        task = asyncio.get_running_loop().create_task(self._open(conn, failed))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _open(self, conn: ShardConn | SharedConn, failed: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        host, port = conn.addr
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: conn, host, port), CONNECT_TIMEOUT_S
            )
        except (TimeoutError, OSError) as e:
            self.stat_shard_connect_failures += 1
            self.log.verbose(f"cannot connect to shard {host}:{port}: {e}")
            failed()

    def forget_shared(self, conn: SharedConn) -> None:
        if self.shared[conn.shard] is conn:
            self.shared[conn.shard] = None

    def shared_paused(self, delta: int) -> None:
        self.paused_shared = max(0, self.paused_shared + delta)
        if self.paused_shared <= 1:  # it changed between paused and not
            for c in list(self.clients):
                c._update_reading()

    def take_idle(self, addr: tuple[str, int]) -> ShardConn | None:
        conns = self.idle.get(addr)
        while conns:
            conn = conns.pop()
            if not conn.closed:
                return conn
        return None

    def release(self, conn: ShardConn) -> None:
        conns = self.idle.setdefault(conn.addr, [])
        if len(conns) >= IDLE_PER_SHARD_MAX or conn.addr not in self.router.addrs:
            conn.close()
            return
        conn.shard = -1
        conns.append(conn)

    def forget(self, conn: ShardConn) -> None:
        conns = self.idle.get(conn.addr)
        if conns and conn in conns:
            conns.remove(conn)

    # -- topology ----------------------------------------------------------------------------

    def set_router(self, router: Router) -> None:
        """A new topology: shard connections to a primary that moved are dropped (what
        they owed gets errors, reads are sent again: proxy/failover.py), so the next
        request goes to the new primary; what waited for a shard that failed over goes
        to its new primary."""
        old = self.router
        moved = repoint(self, router)
        if moved is None:
            self.log.warning("the shard count changed: resharding is not supported; ignored")
            return
        for hook in self.on_topology:
            hook(router)
        if moved:
            self.log.notice(f"topology {router.topology.version}: shards {moved} moved")
        failing = [i for i in range(router.nshards) if router.failing >> i & 1]
        if failing != [i for i in range(old.nshards) if old.failing >> i & 1]:
            self.log.notice(f"topology {router.topology.version}: shards {failing} failing over")
        self._watch_failing()

    def _watch_failing(self) -> None:
        """Note since when each shard fails over; tick sessions while one does."""
        router, now = self.router, time.monotonic()
        failing = [i for i in range(router.nshards) if router.failing >> i & 1]
        self.failing_since = {i: self.failing_since.get(i, now) for i in failing}
        if router.failing and self.ticker is None:
            self.ticker = asyncio.get_running_loop().call_later(TICK_MS / 1000, self._tick)

    def _tick(self) -> None:
        """While a shard fails over: stamp and expire the requests waiting for it."""
        self.ticker = None
        now = time.monotonic()
        now_ms = int(now * 1000)
        for i, since in list(self.failing_since.items()):
            if since and now - since > self.router.wait_ms / 1000:
                self.failing_since[i] = 0.0  # once per failover
                self._drop_shard(i)
        waiting = False
        for c in list(self.clients):
            if c.session.parked and not c.closed:
                c.session.tick(now_ms)
                c.pump()
                waiting = waiting or bool(c.session.parked)
        if self.router.failing or waiting:
            self.ticker = asyncio.get_running_loop().call_later(TICK_MS / 1000, self._tick)

    def _drop_shard(self, shard: int) -> None:
        """Shard ``shard`` has failed over for longer than the bound with no new primary:
        drop the connections to its old primary, so no request in flight there (on a
        node cut off, say) waits longer than the bound (reads wait on, parked)."""
        self.log.notice(f"shard {shard}: no new primary within {self.router.wait_ms} ms")
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
        """Shard ``shard`` refused a request as demoted (-READONLY) or fenced: the
        topology is stale. Re-read it; tick the sessions, whose refused requests wait for
        it (bounded)."""
        if self.ticker is None:
            self.ticker = asyncio.get_running_loop().call_later(TICK_MS / 1000, self._tick)
        now = time.monotonic()
        if now - self.stale_at < TICK_MS / 1000:
            return
        self.stale_at = now
        self.log.notice(
            f"shard {shard} refused a write as demoted or fenced: re-reading the topology"
        )
        if self.on_stale is not None:
            self.on_stale()

    # -- INFO --------------------------------------------------------------------------------

    def info(self) -> dict[str, list[tuple[str, Any]]]:
        up = time.monotonic() - self.started
        topo = self.router.topology
        open_conns = sum(1 for c in self.clients for s in c.shards if s is not None)
        open_conns += sum(1 for s in self.shared if s is not None)
        now_ms = _monotonic_ms()
        waits = [a for c in self.clients if (a := c.session.wait_age_ms(now_ms)) is not None]
        return {
            "server": [
                ("redis_version", REDIS_COMPAT_VERSION),
                ("ackdb_version", __version__),
                ("redis_mode", "standalone" if self.router.cluster is None else "cluster"),
                ("ackdb_role", "endpoint"),
                ("database", topo.db.name),
                ("shards", topo.db and len(topo.db.shards)),
                ("topology_version", topo.version),
                ("process_id", os.getpid()),
                ("tcp_port", self.port),
                ("uptime_in_seconds", int(up)),
                ("uptime_in_days", int(up // 86400)),
            ],
            "clients": [
                ("connected_clients", len(self.clients)),
                ("maxclients", CLIENTS_MAX),
                ("shard_connections", open_conns),
                ("shard_connections_idle", sum(len(v) for v in self.idle.values())),
                # WAIT / WAITAOF sent to the shards and not answered yet, and the age of
                # the oldest (issue 14: a stalled WAIT shows here).
                ("waits_in_flight", len(waits)),
                ("wait_oldest_ms", max(waits, default=0)),
            ],
            "cluster": [("cluster_enabled", 0 if self.router.cluster is None else 1)],
            "stats": [
                ("total_connections_received", self.stat_connections),
                (
                    "total_commands_processed",
                    self.stat_commands + sum(c.session.commands_processed for c in self.clients),
                ),
                ("rejected_connections", self.stat_rejected),
                ("shard_connects", self.stat_shard_connects),
                ("shard_connect_failures", self.stat_shard_connect_failures),
            ],
        }
