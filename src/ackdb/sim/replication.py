"""Simulated ackdb server processes for the replication simulator: the REAL server core,
keyspace, replication engine and driver behind simulated ports.

Owns: ``Node`` (one server across crashes: its durable state, links, observed history)
and ``SimProcess`` (one incarnation: a ``Server`` core and ``CoreReplication`` -- the
very code the server runs -- whose I/O ports (``replication/ports.py``) are simulated:
``Host`` is virtual time, ``Links`` the world's connections (``repl_world.py``), ``Aof``
a model of fsync, and the snapshot ports capture / load the real snapshot format in
memory). Never touches sockets, files, clocks or global randomness.

Observation (for the checks only, never read by the product): every write carries a
unique id (``SET key v<id>``); a feed on each core records the ids whose effects the
node applied, in order (``history``); a snapshot payload's history is registered when it
is taken. AOF model: ``fsync`` makes the dataset, the history so far and the replication
history durable; a crash restarts the node from that (nothing survives without AOF).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..commands import load_all
from ..engine.client import NullConn
from ..engine.core import Server
from ..keyspace.digest import dataset_digest
from ..persistence import snapshot as snap
from ..persistence.dataset import DbTarget, write_snapshot
from ..replication.actions import Action, SnapshotBegin
from ..replication.ports import Aof, Host, Links, SnapshotReceiver, SnapshotServer
from ..replication.primary import SnapshotStart
from ..replication.state import SavedHistory
from ..server.config import load_config
from ..server.replication_core import CoreReplication
from .repl_world import Conn, World

# Simulated time a child takes to write a snapshot, and a replica to load one (ms).
SNAPSHOT_WRITE_MS = (0, 30)
SNAPSHOT_LOAD_MS = (1, 20)
# The hz timer (ms).
TICK_MS = 100


@dataclass
class Durable:
    """What an fsync made durable: the dataset, how much of the history, the stream's."""

    data: bytes
    history: list[int]
    length: int
    saved: SavedHistory


@dataclass
class Client:
    """A test client; ``core_client`` is its connection's client in the node's core."""

    cid: int
    node: Node | None = None
    core_client: Any = None
    last_write: int | None = None
    waiting: tuple[str, int, int] | None = None  # (kind, target offset, write id)

    @property
    def woff(self) -> int:
        return int(self.core_client.woff) if self.core_client is not None else 0


class _QuietLog:
    role = "C"

    def debug(self, msg: str) -> None:
        pass

    def verbose(self, msg: str) -> None:
        pass

    def notice(self, msg: str) -> None:
        pass

    def warning(self, msg: str, exc: bool = False) -> None:
        pass


class _SimClock:
    """The engine's ``Clock`` on virtual time (command durations count 0)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def now_ms(self) -> int:
        return self.world.now

    def time_s(self) -> float:
        return self.world.now / 1000

    def now_us(self) -> int:
        return self.world.now * 1000

    def perf_ns(self) -> int:
        return self.world.now * 1_000_000

    def sleep(self, seconds: float) -> None:
        pass


class _Bytes:
    """An in-memory file for the snapshot writer and loader."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)
        self.pos = 0

    def write(self, b: bytes) -> int:
        self.data += b
        return len(b)

    def read(self, n: int) -> bytes:
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += len(out)
        return out

    def tell(self) -> int:
        return self.pos


class _ReplicaConn(NullConn):
    """The accepting side of a replica's link, as the core's client sees it."""

    def __init__(self, node: Node, conn: Conn) -> None:
        self.node = node
        self.conn = conn

    def write(self, data: bytes) -> None:
        self.node.w.send(self.conn, False, data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        node, conn, proc = self.node, self.conn, self.node.proc
        node.w.break_conn(conn, by=node)

        def gone() -> None:  # the server hears its socket closed a moment later
            c = proc.core.clients.get(conn.server_client)
            if c is not None and proc.live:
                proc.core.client_gone(c)
                node.end_pass()

        node.w.after(0, gone)


class _UserConn(NullConn):
    """A test client's connection: answers of blocked commands go to the scenario."""

    def __init__(self, node: Node, client: Client) -> None:
        self.node = node
        self.client = client

    def resume_commands(self, skip_first_with: bytes | None = None) -> None:
        if skip_first_with is not None:
            self.node.w.on_reply(self.client, self.node, skip_first_with)

    def close(self) -> None:
        c = self.client
        if c.node is self.node:
            self.node.clients.pop(c.cid, None)
            c.node, c.core_client, c.waiting = None, None, None


class SimProcess(CoreReplication):
    """One incarnation of a node's server: the real core and replication, sim ports."""

    def __init__(self, node: Node, data: bytes | None, saved: SavedHistory | None) -> None:
        self.node = node
        self.w = node.w
        self.incarnation = node.crashes
        config = load_config(
            None,
            f"port {node.port}\nreplica-announce-ip {node.name}\nrepl-timeout 3\n"
            "repl-ping-replica-period 1\nrepl-backlog-size 16kb\n",
        )
        load_all()
        core = Server(
            config, _QuietLog(), random.Random(self.w.rng.random()), clock=_SimClock(self.w)
        )
        if data is not None:
            _load(core, data)
        self.aof_on = node.aof != "no"
        self._pass_queued = False
        self._wake_ms: int | None = None
        super().__init__(
            core,
            config,
            core.log,
            saved,
            aof_enabled=self.aof_on,
            served=_SimSnapshots(self),
            received=_SimReceived(self),
        )
        core.feeds.append(node.observe)
        self.fsynced = self.engine.state.master_repl_offset if self.aof_on else -1

    @property
    def live(self) -> bool:
        return self.node.alive and self.node.proc is self

    # -- Host -------------------------------------------------------------------------

    def now_ms(self) -> int:
        return self.w.now

    def request_pass(self) -> None:
        if not self._pass_queued:
            self._pass_queued = True
            self.w.after(0, self._pass)

    def _pass(self) -> None:
        self._pass_queued = False
        if self.live:
            self.node.end_pass()

    def wake_at(self, deadline_ms: int) -> None:
        if self._wake_ms is not None and self._wake_ms <= deadline_ms:
            return
        self._wake_ms = deadline_ms

        def wake() -> None:
            if self._wake_ms == deadline_ms:
                self._wake_ms = None
            if self.live:
                self.node.end_pass()

        self.w.at(deadline_ms, wake)

    def log_line(self, level: str, message: str) -> None:
        pass

    def role_changed(self, host: str | None, port: int) -> None:
        super().role_changed(host, port)
        if host is None:
            self.w.on_promoted(self.node)

    # -- Aof --------------------------------------------------------------------------

    def active(self) -> bool:
        return self.aof_on

    def fsynced_mark(self, offset: int) -> int | None:
        return self.fsynced if self.aof_on else None

    # -- Links ------------------------------------------------------------------------

    def replica_buffer_limit_bytes(self) -> int:
        return 256 * 1024 * 1024  # Redis's default hard limit of the replica class

    def connect_primary(self, host: str, port: int) -> None:
        node = self.node
        node.connect_token += 1
        self.close_primary("reconnecting")
        self.w.connect(node, host, port, node.connect_token)

    def send_to_primary(self, data: bytes) -> None:
        if self.node.link_conn is not None:
            self.w.send(self.node.link_conn, True, data)

    def close_primary(self, reason: str) -> None:
        node = self.node
        node.connect_token += 1
        link, node.link_conn = node.link_conn, None
        if link is not None:
            self.w.break_conn(link, by=node)

    def drop_link(self) -> None:
        node = self.node
        link, node.link_conn = node.link_conn, None
        if link is None:
            return
        self.w.break_conn(link, by=node)
        self.driver.link_lost()


class _SimSnapshots:
    """Full syncs served: the dataset captured at once (the fork), sent a while later."""

    def __init__(self, proc: SimProcess) -> None:
        self.proc = proc

    def serve(self, start: SnapshotStart) -> bool:
        proc, w = self.proc, self.proc.w
        meta = {"replid": start.replid, "repl_offset": start.offset, "stream_db": start.stream_db}
        payload = _dump(proc.core, meta)
        w.snapshot_history[payload] = list(proc.node.history)
        eof_mark = None
        if w.rng.random() < 0.5:
            eof_mark = bytes(w.rng.choice(b"abcdef0123456789") for _ in range(40))

        def written() -> None:
            if proc.live:
                proc.driver.snapshot_written(start.conns, payload, eof_mark)
                proc.node.end_pass()

        w.after(w.rng.randint(*SNAPSHOT_WRITE_MS), written)
        return True


class _SimReceived:
    """Full syncs received: the payload in memory, loaded into the real keyspace."""

    def __init__(self, proc: SimProcess) -> None:
        self.proc = proc
        self._buf: bytearray | None = None
        self._aof_wanted = False

    def begin(self, a: SnapshotBegin) -> None:
        self._buf = bytearray()

    def chunk(self, data: bytes) -> None:
        if self._buf is not None:
            self._buf += data

    def abort(self, reason: str) -> None:
        self._buf = None

    def load(self) -> None:
        proc, w = self.proc, self.proc.w
        assert self._buf is not None
        payload, self._buf = bytes(self._buf), None
        proc.drop_primary_client()
        self._aof_wanted = proc.aof_on
        if proc.aof_on:  # the AOF is rebuilt from the new dataset (as the server does)
            proc.aof_on = False
            proc.driver.aof_changed(False)
        core = proc.core
        for db in core.dbs:
            db.clear()
        for c in core.clients.values():
            c.woff = 0
        core.loading = True

        def loaded() -> None:
            if not proc.live:
                return
            meta = _load(core, payload)
            core.loading = False
            node = proc.node
            node.data_cache = None  # the dataset changed without moving ``dirty``
            node.history = list(w.snapshot_history[payload])
            node.history_set = set(node.history)
            w.mark_had(node, node.history)
            proc.driver.snapshot_loaded(int(meta.get("stream_db", 0)))
            node.end_pass()

        w.after(w.rng.randint(*SNAPSHOT_LOAD_MS), loaded)

    def loaded(self) -> None:
        if self._aof_wanted:
            self._aof_wanted = False
            self.proc.aof_on = True
            self.proc.node.fsync()  # the rewritten AOF's base is on disk
            self.proc.driver.aof_changed(True)


def _dump(core: Server, meta: dict[str, Any]) -> bytes:
    out = _Bytes()
    write_snapshot(out, core.dbs, meta, core.now_ms())  # type: ignore[arg-type]
    return bytes(out.data)


def _load(core: Server, data: bytes) -> dict[str, Any]:
    target = DbTarget(core.dbs, core.now_ms())
    loader = snap.Loader(_Bytes(data), target)  # type: ignore[arg-type]
    for _ in loader.steps():
        pass
    target.finish()
    return loader.meta


class Node:
    """One ackdb server across its crashes and restarts."""

    def __init__(self, world: World, name: str, port: int, aof: str) -> None:
        self.w = world
        self.name = name
        self.port = port
        self.aof = aof  # "always" | "everysec" | "no" (AOF off)
        self.alive = False
        self.isolated = False
        self.crashes = 0
        self.durable: Durable | None = None
        self.server_conns: dict[int, Conn] = {}  # by the core's client id
        self.link_conn: Conn | None = None
        self.connect_token = 0
        self.clients: dict[int, Client] = {}
        self.history: list[int] = []
        self.history_set: set[int] = set()
        self.proc: SimProcess
        self.data_cache: tuple[int, bytes] | None = None  # (core.dirty, its dump)

    @property
    def engine(self) -> Any:
        return self.proc.engine

    @property
    def paused(self) -> bool:
        return bool(self.proc.core.pause_until_ms)

    # -- life -------------------------------------------------------------------------

    def boot(self, replica_of: Node | None) -> None:
        d = self.durable
        self.history = d.history[: d.length] if d else []
        self.history_set = set(self.history)
        if d is not None:
            self.durable = Durable(d.data, self.history, len(self.history), d.saved)
        self.alive = True
        self.proc = SimProcess(self, d.data if d else None, d.saved if d else None)
        self.data_cache = None
        if replica_of is not None:
            self.proc.config.values["replicaof"] = (replica_of.name, replica_of.port)
        self.proc.driver.start(self.proc.config.get("replicaof"))
        self._schedule_tick(self.proc)
        self.end_pass()

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
            c.node, c.core_client, c.waiting = None, None, None
        self.clients.clear()
        self.crashes += 1

    def _schedule_tick(self, proc: SimProcess) -> None:
        def tick() -> None:
            if not proc.live:
                return
            if self.aof == "everysec" and self.w.now % 1000 < TICK_MS:
                self.fsync()
            proc.core.cron(self.w.now)
            proc.driver.cron(self.w.now)
            self.end_pass()
            self._schedule_tick(proc)

        self.w.after(TICK_MS, tick)

    # -- the event loop ---------------------------------------------------------------

    def end_pass(self) -> None:
        """The end of an event-loop pass: the AOF (fsync under always), then the driver."""
        if not self.alive:
            return
        if self.aof == "always":
            self.fsync()  # appendfsync always: before any reply leaves (notes)
        self.proc.driver.before_sleep()

    def run(self, actions: list[Action]) -> None:
        """Carry out engine actions (a test's direct call), then end the pass."""
        self.proc.driver.execute(actions)
        self.end_pass()

    def fsync(self) -> None:
        proc = self.proc
        if not proc.aof_on:
            return  # no AOF, or being rebuilt after a full sync
        d = self.durable
        if d is not None and d.history is self.history:
            self.w.mark_durable(self, self.history[d.length :])
        else:
            self.w.mark_durable(self, self.history)
        core = proc.core
        if self.data_cache is None or self.data_cache[0] != core.dirty:
            self.data_cache = (core.dirty, _dump(core, {}))
        saved = proc.engine.saved_history()
        self.durable = Durable(self.data_cache[1], self.history, len(self.history), saved)
        proc.fsynced = saved.offset

    def observe(self, db: int, argv: list[bytes]) -> None:
        """A core feed: the ids of the writes whose effects this node applied."""
        if len(argv) == 3 and argv[0] in (b"SET", b"set") and argv[2][:1] == b"v":
            wid = int(argv[2][1:])
            self.history.append(wid)
            self.history_set.add(wid)
            self.w.mark_had(self, [wid])

    def digest(self) -> str:
        """DEBUG DIGEST of the real keyspace."""
        dbs = self.proc.core.dbs
        return dataset_digest(
            [(db.index, ((k, v, k in db.expires) for k, v in db.data.items())) for db in dbs]
        )

    # -- clients ----------------------------------------------------------------------

    def attach(self, client: Client) -> None:
        """``client`` opens a connection to this node."""
        client.node = self
        conn = _UserConn(self, client)
        client.core_client = self.proc.core.new_client(conn, f"client{client.cid}:1", "", -1)
        self.clients[client.cid] = client

    def command(self, client: Client, argv: list[bytes]) -> bytes | None:
        """Run ``argv`` for ``client`` through the core: its reply, None when parked."""
        reply = self.proc.core.process(client.core_client, argv)
        return reply if isinstance(reply, bytes) else None

    def admin(self, argv: list[bytes]) -> bytes:
        """An operator's command (REPLICAOF, FAILOVER...) on a fresh connection."""
        c = self.proc.core.new_client(NullConn(), "operator:1", "", -1)
        reply = self.proc.core.process(c, argv)
        self.proc.core.client_gone(c)
        assert isinstance(reply, bytes), argv
        self.end_pass()
        return reply

    def promote(self) -> None:
        """The failover controller chose this node."""
        self.proc.driver.promote()
        self.end_pass()

    # -- links ------------------------------------------------------------------------

    def link_established(self, conn: Conn) -> None:
        self.link_conn = conn
        self.proc.driver.link_established()
        self.end_pass()

    def link_failed(self, why: str) -> None:
        self.proc.driver.link_failed(why)
        self.end_pass()

    def on_link_bytes(self, conn: Conn, data: bytes) -> None:
        if self.alive and self.link_conn is conn:
            self.proc.driver.link_data(data)
            self.end_pass()

    def on_link_lost(self, conn: Conn) -> None:
        if self.alive and self.link_conn is conn:
            self.link_conn = None
            self.proc.driver.link_lost()
            self.end_pass()

    def accept(self, conn: Conn) -> None:
        c = self.proc.core.new_client(_ReplicaConn(self, conn), f"{conn.client.name}:1", "", -1)
        conn.server_client = c.id
        self.server_conns[c.id] = conn

    def on_server_bytes(self, conn: Conn, data: bytes) -> None:
        if not self.alive or self.server_conns.get(conn.server_client) is not conn:
            return
        core = self.proc.core
        c = core.clients.get(conn.server_client)
        if c is None:
            return
        conn.reader.feed(data)
        cmds = []
        while (argv := conn.reader.next_command()) is not None:
            conn.reader.take_until(conn.reader.command_end)
            cmds.append(argv)
        out: list[bytes] = []
        core.process_batch(c, cmds, out)
        self.w.send(conn, False, b"".join(out))
        self.end_pass()

    def on_conn_lost(self, conn: Conn) -> None:
        if self.alive and self.server_conns.pop(conn.server_client, None) is not None:
            c = self.proc.core.clients.get(conn.server_client)
            if c is not None:
                self.proc.core.client_gone(c)
            self.end_pass()


if TYPE_CHECKING:

    def _implements_the_ports(
        p: SimProcess, s: _SimSnapshots, r: _SimReceived
    ) -> tuple[Host, Links, Aof, SnapshotServer, SnapshotReceiver]:
        return p, p, p, s, r
