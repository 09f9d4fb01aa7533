"""A deterministic world for simulating replication: nodes running the real cores over
simulated links, with a toy keyspace, a model of AOF fsync and of crashes.

Owns: virtual time (an event heap), links that deliver bytes in order after random delays
and in random pieces (a broken link drops what is in flight and both ends learn it, like
TCP), nodes that carry out the engine's actions exactly as the server shell must, and the
bookkeeping the safety checks read (who ever held / durably held each write). Never
touches sockets, clocks or global randomness: one ``random.Random`` drives everything, so
a seed replays exactly. Used by tests/sim/test_replication_sim.py; the fault schedule and
the checks live there.

Toy keyspace: ``SET key v<id>`` and ``DEL key <id>`` (every write carries a unique id) in
databases 0..1; a node's ``history`` lists the ids it applied in order; a snapshot carries
data and history. AOF model: ``fsync`` copies (data, history length, replid, offset) to
``durable``; a crash restarts the node from ``durable`` (nothing survives without AOF).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from . import actions as A
from .engine import EngineConfig, Replication
from .state import SavedHistory
from .wire import LinkReader

Event = Callable[[], None]


@dataclass
class Durable:
    data: dict[tuple[int, bytes], bytes]
    history: list[int]
    length: int
    saved: SavedHistory


@dataclass
class Conn:
    cid: int
    client: Node  # the replica side
    server: Node  # the side that accepted
    epoch: int = 0  # the client node's crash count when the link was made
    alive: bool = True
    last_t: list[int] = field(default_factory=lambda: [0, 0])
    reader: LinkReader = field(default_factory=LinkReader)  # server side's command parser


@dataclass
class Client:
    cid: int
    node: Node | None = None
    last_write: int | None = None
    woff: int = 0
    waiting: tuple[str, int, int] | None = None  # (kind, target, write id)


class World:
    """Nodes, links, clients and virtual time for one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = 0
        self._events: list[tuple[int, int, Event]] = []
        self._seq = 0
        self.nodes: dict[str, Node] = {}
        self.conns: dict[int, Conn] = {}
        self._next_id = 1
        self.next_write = 1
        self.ever_had: dict[int, set[str]] = {}
        self.ever_durable: dict[int, set[str]] = {}
        self.lost: set[int] = set()
        self.violations: list[str] = []
        self.on_reply: Callable[[Client, Node, bytes], None] = lambda c, n, r: None
        self.on_promoted: Callable[[Node], None] = lambda n: None
        self.latency_ms = (1, 15)

    # -- time -------------------------------------------------------------------------

    def at(self, t: int, fn: Event) -> None:
        self._seq += 1
        heapq.heappush(self._events, (max(t, self.now), self._seq, fn))

    def after(self, delay_ms: int, fn: Event) -> None:
        self.at(self.now + delay_ms, fn)

    def run_until(self, t_end: int, stop: Callable[[], bool] | None = None) -> bool:
        while self._events and self._events[0][0] <= t_end:
            t, _, fn = heapq.heappop(self._events)
            self.now = t
            fn()
            if stop is not None and stop():
                return True
        self.now = max(self.now, t_end)
        return False

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- topology ---------------------------------------------------------------------

    def add_node(self, name: str, port: int, aof: str, replica_of: Node | None = None) -> Node:
        node = Node(self, name, port, aof)
        self.nodes[name] = node
        node.boot(replica_of)
        return node

    def primaries(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.alive and n.engine.is_primary]

    def find(self, host: str, port: int) -> Node | None:
        n = self.nodes.get(host)
        return n if n is not None and n.port == port else None

    # -- links ------------------------------------------------------------------------

    def connect(self, node: Node, host: str, port: int, token: int) -> None:
        def done() -> None:
            if not node.alive or node.connect_token != token:
                return
            if node.engine.link.state != "connecting":
                return
            target = self.find(host, port)
            if target is None or not target.alive or target.isolated or node.isolated:
                node.run(node.engine.on_link_failed(self.now))
                return
            conn = Conn(self.new_id(), node, target, epoch=node.crashes)
            self.conns[conn.cid] = conn
            node.link_conn = conn
            node.db, node.multi = 0, None  # a new primary client
            target.server_conns[conn.cid] = conn
            node.run(node.engine.on_link_established(self.now))

        self.after(self.rng.randint(*self.latency_ms), done)

    def send(self, conn: Conn, to_server: bool, data: bytes) -> None:
        """Deliver in order, in 1-3 pieces, each after a latency."""
        if not conn.alive or not data:
            return
        d = 0 if to_server else 1
        t = max(self.now + self.rng.randint(*self.latency_ms), conn.last_t[d])
        cuts = sorted(
            self.rng.sample(range(1, len(data)), min(len(data) - 1, self.rng.randint(0, 2)))
        )
        pieces = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        for piece in pieces:
            t += self.rng.randint(0, 3)
            self.at(t, self._delivery(conn, to_server, piece))
        conn.last_t[d] = t

    def _delivery(self, conn: Conn, to_server: bool, data: bytes) -> Event:
        return lambda: self._deliver(conn, to_server, data)

    def _deliver(self, conn: Conn, to_server: bool, data: bytes) -> None:
        if not conn.alive:
            return
        if to_server:
            conn.server.on_server_bytes(conn, data)
        elif conn.client.link_conn is conn:
            conn.client.run(conn.client.engine.receive_data(data, self.now))

    def break_conn(self, conn: Conn, by: Node | None = None) -> None:
        """The link dies (RST): in-flight bytes are lost; each end not ``by`` learns it."""
        if not conn.alive:
            return
        conn.alive = False
        self.conns.pop(conn.cid, None)
        if conn.server is by:
            conn.server.server_conns.pop(conn.cid, None)
        else:
            self.after(self.rng.randint(*self.latency_ms), lambda: conn.server.on_conn_lost(conn))
        if conn.client is by:
            if conn.client.link_conn is conn:
                conn.client.link_conn = None
        else:
            self.after(self.rng.randint(*self.latency_ms), lambda: conn.client.on_link_lost(conn))

    # -- writes -----------------------------------------------------------------------

    def mark_had(self, node: Node, ids: list[int]) -> None:
        for w in ids:
            self.ever_had.setdefault(w, set()).add(node.name)

    def mark_durable(self, node: Node, ids: list[int]) -> None:
        for w in ids:
            self.ever_durable.setdefault(w, set()).add(node.name)


class Node:
    """One ackdb process: an engine, a toy keyspace, an AOF model, its links."""

    def __init__(self, world: World, name: str, port: int, aof: str) -> None:
        self.w = world
        self.name = name
        self.port = port
        self.aof = aof  # "always" | "everysec" | "no" (AOF off)
        self.alive = False
        self.isolated = False
        self.crashes = 0
        self.durable: Durable | None = None
        self.server_conns: dict[int, Conn] = {}
        self.link_conn: Conn | None = None
        self.connect_token = 0
        self.paused = False
        self.clients: dict[int, Client] = {}
        self.config = EngineConfig(
            listening_port=port,
            announce_ip=name,
            repl_timeout_ms=3000,
            ping_period_ms=1000,
            backlog_bytes_max=16 * 1024,
            reconnect_min_ms=50,
            reconnect_max_ms=800,
        )

    # -- life -------------------------------------------------------------------------

    def boot(self, replica_of: Node | None) -> None:
        d = self.durable
        saved = d.saved if d is not None else None
        self.engine = Replication(
            self.config,
            random.Random(self.w.rng.random()),
            aof_enabled=self.aof != "no",
            saved=saved,
        )
        self.data: dict[tuple[int, bytes], bytes] = dict(d.data) if d else {}
        self.history: list[int] = d.history[: d.length] if d else []
        self.history_set = set(self.history)
        if d is not None:
            self.durable = Durable(dict(d.data), self.history, len(self.history), d.saved)
        self.alive, self.paused = True, False
        # The primary client's state on a replica: selected db, queued transaction.
        self.db = 0
        self.multi: list[tuple[int, list[bytes]]] | None = None
        self._snapshot: bytearray | None = None
        self._tick_token = self.w.new_id()
        self._schedule_tick(self._tick_token)
        if replica_of is not None:
            self.run(self.engine.start_replica(replica_of.name, replica_of.port, self.w.now))

    def crash(self) -> None:
        self.alive = False
        conns = list(self.server_conns.values())
        if self.link_conn is not None:
            conns.append(self.link_conn)
        for conn in conns:
            self.w.break_conn(conn, by=self)
        self.server_conns.clear()
        self.link_conn = None
        for c in self.clients.values():
            c.node, c.waiting = None, None
        self.clients.clear()
        self.crashes += 1

    def _schedule_tick(self, token: int) -> None:
        def tick() -> None:
            if not self.alive or token != self._tick_token:
                return
            if self.aof == "everysec" and self.w.now % 1000 < 100:
                self.fsync()
            self.run(self.engine.cron(self.w.now, writes_paused=self.paused))
            self._schedule_tick(token)

        self.w.after(100, tick)

    # -- the shell's duties -----------------------------------------------------------

    def run(self, actions: list[A.Action]) -> None:
        """Carry out actions, then end the loop iteration (fsync, before_sleep)."""
        self.execute(actions)
        self.end_iteration()

    def end_iteration(self) -> None:
        if not self.alive:
            return
        if self.aof == "always":
            self.fsync()  # appendfsync always: before any reply leaves (notes)
        self.execute(self.engine.before_sleep(self.w.now, writes_paused=self.paused))
        if self.engine.snapshot_needed:
            self.serve_snapshot()

    def fsync(self) -> None:
        d = self.durable
        if d is not None and d.history is self.history:
            self.w.mark_durable(self, self.history[d.length :])
        else:
            self.w.mark_durable(self, self.history)
        saved = self.engine.saved_history()
        self.durable = Durable(dict(self.data), self.history, len(self.history), saved)
        self.execute(self.engine.on_fsynced(saved.offset, self.w.now))

    def execute(self, actions: list[A.Action]) -> None:
        for a in actions:
            if not self.alive:
                return
            self._execute_one(a)

    def _execute_one(self, a: A.Action) -> None:  # noqa: C901 - one branch per action
        w = self.w
        if isinstance(a, A.SendToReplica):
            conn = self.server_conns.get(a.conn)
            if conn is not None:
                w.send(conn, False, a.data)
        elif isinstance(a, A.CloseReplica):
            conn = self.server_conns.pop(a.conn, None)
            self.engine.on_replica_disconnect(a.conn)
            if conn is not None:
                w.break_conn(conn, by=self)
        elif isinstance(a, A.ConnectPrimary):
            self.connect_token += 1
            w.connect(self, a.host, a.port, self.connect_token)
        elif isinstance(a, A.SendToPrimary):
            if self.link_conn is not None:
                w.send(self.link_conn, True, a.data)
        elif isinstance(a, A.ClosePrimaryLink):
            self.connect_token += 1
            if self.link_conn is not None:
                w.break_conn(self.link_conn, by=self)
            self.link_conn = None
        elif isinstance(a, A.Apply):
            self.apply(a.argv)
        elif isinstance(a, A.DiscardTransaction):
            self.multi = None
        elif isinstance(a, A.SnapshotBegin):
            self._snapshot = bytearray()
        elif isinstance(a, A.SnapshotChunk):
            assert self._snapshot is not None
            self._snapshot += a.data
        elif isinstance(a, A.SnapshotEnd):
            assert self._snapshot is not None
            stream_db = self.load_snapshot(bytes(self._snapshot))
            self._snapshot = None
            self.execute(self.engine.snapshot_loaded(stream_db, w.now))
        elif isinstance(a, A.SnapshotAbort):
            self._snapshot = None
        elif isinstance(a, A.ReplyToClient):
            c = self.clients.get(a.client)
            if c is not None:
                if a.close:
                    del self.clients[a.client]
                w.on_reply(c, self, a.data)
                if a.close:
                    c.node, c.waiting = None, None
        elif isinstance(a, A.PauseWrites):
            self.paused = True
        elif isinstance(a, A.UnpauseWrites):
            self.paused = False
        elif isinstance(a, A.RoleChanged):
            if a.host is None:
                w.on_promoted(self)
        elif isinstance(a, A.SnapshotNeeded | A.Log):
            pass
        else:
            raise AssertionError(f"unhandled action {a!r}")

    def serve_snapshot(self) -> None:
        start = self.engine.begin_snapshot()
        self.execute(start.actions)
        payload = self.dump(start.stream_db)
        for cid in start.conns:
            conn = self.server_conns.get(cid)
            if conn is None:
                continue
            if self.w.rng.random() < 0.5:
                mark = bytes(self.w.rng.choice(b"abcdef0123456789") for _ in range(40))
                frame = b"$EOF:" + mark + b"\r\n" + payload + mark
            else:
                frame = b"$%d\r\n" % len(payload) + payload
            self.w.send(conn, False, frame)
            self.engine.on_bulk_sent(cid, self.w.now)

    # -- server side of links ---------------------------------------------------------

    def on_server_bytes(self, conn: Conn, data: bytes) -> None:
        if not self.alive or conn.cid not in self.server_conns:
            return
        conn.reader.feed(data)
        acts: list[A.Action] = []
        while (argv := conn.reader.next_command()) is not None:
            conn.reader.take_until(conn.reader.command_end)
            name = argv[0].lower()
            if name == b"ping":
                self.w.send(conn, False, b"+PONG\r\n")
            elif name == b"auth":
                self.w.send(conn, False, b"+OK\r\n")
            elif name == b"replconf":
                reply, more = self.engine.replconf(conn.cid, argv, self.w.now, conn.client.name)
                acts += more
                if reply is not None:
                    self.w.send(conn, False, reply)
            elif name == b"psync":
                reply, more = self.engine.psync(conn.cid, argv, self.w.now, conn.client.name)
                acts += more
                if reply is not None:
                    self.w.send(conn, False, reply)
            else:
                raise AssertionError(f"unexpected command from a replica: {argv!r}")
        self.run(acts)

    def on_conn_lost(self, conn: Conn) -> None:
        if self.alive and self.server_conns.pop(conn.cid, None) is not None:
            self.engine.on_replica_disconnect(conn.cid)
            self.end_iteration()

    def on_link_lost(self, conn: Conn) -> None:
        if self.alive and self.link_conn is conn:
            self.link_conn = None
            self.run(self.engine.on_link_lost(self.w.now))

    # -- toy keyspace -----------------------------------------------------------------

    def apply(self, argv: list[bytes]) -> None:
        """Execute a command of the replication stream as the primary client does."""
        name = argv[0].lower()
        if name == b"select":
            self.db = int(argv[1])
        elif name == b"multi":
            self.multi = []
        elif name == b"exec":
            ops, self.multi = self.multi or [], None
            for db, op in ops:
                self.write(db, op)
        elif name in (b"set", b"del"):
            if self.multi is not None:
                self.multi.append((self.db, argv))
            else:
                self.write(self.db, argv)
        else:
            assert name == b"ping", argv

    def write(self, db: int, argv: list[bytes]) -> int:
        key = argv[1]
        if argv[0].lower() == b"set":
            self.data[(db, key)] = argv[2]
            wid = int(argv[2][1:])
        else:
            self.data.pop((db, key), None)
            wid = int(argv[2])
        self.history.append(wid)
        self.history_set.add(wid)
        self.w.mark_had(self, [wid])
        return wid

    def dump(self, stream_db: int) -> bytes:
        items = sorted((db, k.decode(), v.decode()) for (db, k), v in self.data.items())
        obj = {"data": items, "history": self.history, "stream_db": stream_db}
        return json.dumps(obj).encode()

    def load_snapshot(self, payload: bytes) -> int:
        obj = json.loads(payload)
        self.data = {(db, k.encode()): v.encode() for db, k, v in obj["data"]}
        self.history = list(obj["history"])
        self.history_set = set(self.history)
        self.db, self.multi = obj["stream_db"], None
        self.w.mark_had(self, self.history)
        return int(obj["stream_db"])

    def digest(self) -> str:
        return hashlib.sha1(repr(sorted(self.data.items())).encode()).hexdigest()
