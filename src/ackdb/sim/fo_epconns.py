"""The failover simulator's endpoint connections (sim/fo_endpoint.py runs them): what
proxy/shell.py's ``ClientConn`` and ``ShardConn`` and proxy/shared.py's ``SharedConn`` do
with sockets, over the simulated network.

Owns: ``EpClient`` (one client connection running the real ``Session``: requests parsed
by the ``RequestReader``, ``pump`` writing ``out`` to the client and ``take`` /
``take_mux`` to the shard connections), ``Dedicated`` (a client's own shard connection,
with the pass-through and the refusal check) and ``Shared`` (the endpoint's one
connection per shard for plain requests: the FIFO of (client, sink), written once per
event), both the endpoint's end of a sim/repl_world.py link (in order, in pieces, broken
by a partition or a dead process: a lost shard connection). Everything they receive goes
through their endpoint's ``run_or_hold`` (a stopped process takes no input).

The logic follows proxy/shell.py's and proxy/shared.py's; a change there must be made
here. Never does IO and reads no real clock.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, cast

from ackdb.proxy.failover import FENCED_MARK, GONE, RO_MARK, refused
from ackdb.proxy.replies import ReplyCounter, ReplyProtocolError, ReplySplitter
from ackdb.proxy.session import Session, Sink
from ackdb.proxy.shell import BULK_MAX_BYTES, QUERY_BUFFER_MAX_BYTES
from ackdb.resp.reader import RequestReader

if TYPE_CHECKING:
    from .fo_endpoint import SimEndpoint
    from .repl_world import Conn
    from .replication import Node


class Peer:
    """What an endpoint writes to: the application's side of a client connection."""

    def on_bytes(self, conn: EpClient, data: bytes) -> None:
        raise NotImplementedError

    def on_closed(self, conn: EpClient) -> None:
        raise NotImplementedError


def _no_info() -> dict[str, list[tuple[str, Any]]]:
    return {}


class Link:
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


class Dedicated(Link):
    """proxy/shell.py's ``ShardConn``: a client's own connection to a shard's primary."""

    def __init__(self, ep: SimEndpoint, shard: int, addr: tuple[str, int]) -> None:
        super().__init__(ep, shard, addr)
        self.owner: EpClient | None = None
        self.counter = ReplyCounter()

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        try:
            if owner is None:
                if self.splitter.feed(data):
                    self.close()
                return
            owner.session.dedicated_read(
                self.shard, self.counter, self.splitter, data, self.ep.stale_hint
            )
        except (ReplyProtocolError, ValueError):
            self.close()
            return
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


class Shared(Link):
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
