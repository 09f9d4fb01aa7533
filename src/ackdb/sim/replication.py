"""Simulated ackdb servers for the replication simulator: the REAL server core, keyspace,
replication engine and driver behind simulated ports.

Owns: ``Node`` (one server across crashes: its durable state, links, test clients and
observed history; each incarnation is a ``repl_process.SimProcess`` -- the very code the
server runs, with simulated I/O ports) and ``Client`` (a test client's connection).
Never touches sockets, files, clocks or global randomness.

Observation (for the checks only, never read by the product): every write carries a
unique id (``SET key v<id>``); a feed on each core records the ids whose effects the
node applied, in order (``history``); a snapshot payload's history is registered when it
is taken. AOF model: ``fsync`` makes the dataset, the history so far and the replication
history durable; a crash restarts the node from that (nothing survives without AOF).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine.client import NullConn
from ..keyspace.digest import dataset_digest
from ..replication.actions import Action
from ..replication.fencing import NOT_COUNTED, DivergedRange
from ..replication.state import SavedHistory
from ..replication.wire import LinkReader
from .repl_process import ReplicaConn, SimProcess, UserConn, dump_dataset
from .repl_world import Conn, World

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
        self.extra_config = ""  # config lines after the simulator's own
        # ACKDB.DIVERGED saves: (tag, commands or -1 for the dataset, the write ids held)
        self.diverged: list[tuple[str, int, frozenset[int]]] = []

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
        self.w.after(TICK_MS, lambda: self._tick(proc))

    def _tick(self, proc: SimProcess) -> None:
        """The hz timer of one incarnation (a subclass may hold it, as for a pause)."""
        if not proc.live:
            return
        if self.aof == "everysec" and self.w.now % 1000 < TICK_MS:
            self.fsync()
        proc.core.cron(self.w.now)
        proc.driver.cron(self.w.now)
        self.end_pass()
        self._schedule_tick(proc)

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
            self.data_cache = (core.dirty, dump_dataset(core, {}))
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

    def mono_ms(self) -> int:
        """The host's CLOCK_MONOTONIC (ms): the ACKDB.LEASE deadlines' clock."""
        return self.w.now

    def save_diverged(self, tag: str, rng: DivergedRange) -> tuple[int, str]:
        """ACKDB.DIVERGED's file, kept in memory: the write ids of the diverged commands,
        or of the whole dataset when the backlog no longer holds them."""
        if rng.data is None:
            self.diverged.append((tag, -1, frozenset(self.history_set)))
            return -1, f"diverged-{tag}.rdb"
        reader = LinkReader()
        reader.feed(rng.data)
        ids: set[int] = set()
        count = 0
        while (argv := reader.next_command()) is not None:
            reader.take_until(reader.command_end)
            if argv[0].lower() not in NOT_COUNTED:
                count += 1
            if len(argv) == 3 and argv[0].lower() == b"set" and argv[2][:1] == b"v":
                ids.add(int(argv[2][1:]))
        self.diverged.append((tag, count, frozenset(ids)))
        return count, f"diverged-{tag}.aof"

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
        conn = UserConn(self, client)
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
        c = self.proc.core.new_client(ReplicaConn(self, conn), f"{conn.client.name}:1", "", -1)
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
