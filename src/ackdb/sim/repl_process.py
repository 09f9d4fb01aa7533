"""One simulated server process: the real server core and ``CoreReplication`` behind
simulated I/O ports.

Owns: ``SimProcess`` -- the very code the server runs (``server/replication_core.py``:
the engine, the ``ReplicationDriver``, the ``Dataset`` port over a real ``Server`` core)
with ``Host`` on virtual time, ``Links`` on the world's connections (``repl_world.py``),
``Aof`` on the node's fsync model, and snapshot ports that capture and load the real
snapshot format in memory (the fork is the moment of capture; writing and loading take
simulated time); the connection handles the core's clients write to. Never touches
sockets, files, clocks or global randomness.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from ..commands import load_all
from ..engine.client import NullConn
from ..engine.core import Server
from ..persistence import snapshot as snap
from ..persistence.dataset import DbTarget, write_snapshot
from ..replication.actions import SnapshotBegin
from ..replication.fencing import DivergedRange
from ..replication.ports import Aof, Host, Links, SnapshotReceiver, SnapshotServer
from ..replication.primary import SnapshotStart
from ..replication.state import SavedHistory
from ..server.config import load_config
from ..server.replication_core import CoreReplication
from .repl_world import Conn, World

if TYPE_CHECKING:
    from .replication import Client, Node

# Simulated time a child takes to write a snapshot, and a replica to load one (ms).
SNAPSHOT_WRITE_MS = (0, 30)
SNAPSHOT_LOAD_MS = (1, 20)


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


class ReplicaConn(NullConn):
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


class UserConn(NullConn):
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
            "repl-ping-replica-period 1\nrepl-backlog-size 16kb\n" + node.extra_config,
        )
        load_all()
        core = Server(
            config, _QuietLog(), random.Random(self.w.rng.random()), clock=_SimClock(self.w)
        )
        if data is not None:
            load_dataset(core, data, keep_expired=False)  # a restart, as a primary
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

    def mono_ms(self) -> int:
        return self.node.mono_ms()

    def save_diverged(self, tag: str, rng: DivergedRange) -> tuple[int, str]:
        return self.node.save_diverged(tag, rng)

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
        payload = dump_dataset(proc.core, meta)
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
            meta = load_dataset(core, payload, keep_expired=True)  # a replica's full sync
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


def dump_dataset(core: Server, meta: dict[str, Any]) -> bytes:
    out = _Bytes()
    write_snapshot(out, core.dbs, meta, core.now_ms())  # type: ignore[arg-type]
    return bytes(out.data)


def load_dataset(core: Server, data: bytes, *, keep_expired: bool) -> dict[str, Any]:
    target = DbTarget(core.dbs, core.now_ms(), keep_expired=keep_expired)
    loader = snap.Loader(_Bytes(data), target)  # type: ignore[arg-type]
    for _ in loader.steps():
        pass
    target.finish()
    return loader.meta


if TYPE_CHECKING:

    def _implements_the_ports(
        p: SimProcess, s: _SimSnapshots, r: _SimReceived
    ) -> tuple[Host, Links, Aof, SnapshotServer, SnapshotReceiver]:
        return p, p, p, s, r
