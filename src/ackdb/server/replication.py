"""Replication in a running server: the asyncio shell around ``replication.Replication``.

Owns: building the engine from the configuration (and from the history saved with the
dataset), feeding it every effect, carrying out its actions (``replication/actions.py``)
in order — writes to replica connections, the link to our primary, the primary's client
that applies the stream, snapshots served to and received from other nodes, blocked
WAIT / WAITAOF clients, role changes — and the end-of-iteration work (``before_sleep``).
Every decision is the engine's; this module only does what it is told.

Full syncs served: right after ``begin_snapshot`` a child is forked; it sees the dataset
exactly at the snapshot's offset and writes it to a temporary file. Stream bytes for
those replicas are held meanwhile; once the child is done the payload goes out as
``$<len>``, followed by the held bytes, and the replica is online.

Full syncs received: the payload goes to a temporary file; at its end the dataset is
replaced by loading it in steps (clients get -LOADING meanwhile, bytes from the primary
wait), then the engine continues with the stream; with the AOF on, the AOF is rebuilt
from the new dataset (Redis does the same).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from typing import Any

from ..engine.client import Client, NullConn
from ..persistence.child import Child, Progress, fork
from ..replication import actions as act
from ..replication.engine import EngineConfig, Replication
from ..replication.state import SavedHistory
from ..replication.stream import GETACK
from ..resp import encoder as enc
from .loading import Loader

# How often a full sync in progress is logged (ms).
SYNC_LOG_INTERVAL_MS = 2000
# Longest wait for the TCP connection to a primary (s).
CONNECT_TIMEOUT_S = 5.0
UNBLOCKED_ROLE = (
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"
)


def _now_ms() -> int:
    return int(time.time() * 1000)


def saved_history_from(meta: dict[str, Any]) -> SavedHistory | None:
    """The replication history stored in a snapshot's metadata, if any."""
    replid, offset = meta.get("replid"), meta.get("repl_offset")
    if not isinstance(replid, str) or len(replid) != 40 or not isinstance(offset, int):
        return None
    db = meta.get("stream_db", 0)
    return SavedHistory(replid, offset, db if isinstance(db, int) else 0)


class _PrimaryClientConn(NullConn):
    """The connection handle of the primary's client: the stream it sends is applied
    without replies; killing that client (CLIENT KILL TYPE master) drops the link."""

    def __init__(self, shell: ReplicationShell | None) -> None:
        self.shell = shell

    def close(self) -> None:
        if self.shell is not None:
            self.shell.primary_client_killed()


class _LinkProtocol(asyncio.Protocol):
    """The TCP connection to our primary."""

    def __init__(self, shell: ReplicationShell, seq: int) -> None:
        self.shell = shell
        self.seq = seq
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.shell.link_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.shell.link_closed(self)


@dataclasses.dataclass(slots=True)
class _Held:
    """The stream held for a replica while its snapshot is being written."""

    parts: list[bytes] = dataclasses.field(default_factory=list)
    size: int = 0


@dataclasses.dataclass
class _ServedSync:
    """A snapshot being written by a child for replicas in a full sync."""

    child: Child
    path: str
    conns: tuple[int, ...]
    offset: int
    logged_ms: int


class ReplicationShell:
    def __init__(self, node: Any, saved: SavedHistory | None) -> None:
        self.node = node
        self.core = core = node.core
        self.config = cfg = node.config
        self.log = node.log
        self.persist = node.persist
        self.engine = Replication(
            self._engine_config(),
            rng=core.rng,
            aof_enabled=self.persist.aof is not None,
            saved=saved,
        )
        core.repl = self
        core.feeds.insert(0, self._feed)
        self.link: _LinkProtocol | None = None
        self._link_seq = 0
        self._link_pending: list[bytes] = []  # bytes from the primary while loading
        self.primary_client: Client | None = None
        self._incoming: Any = None  # the snapshot file being received
        self._incoming_path = ""
        self._incoming_bytes = 0
        self._incoming_size = -1
        self._incoming_logged_ms = 0
        self.loading_snapshot = False
        self._link_lost_while_loading = False
        self._serving: list[_ServedSync] = []
        self._held: dict[int, _Held] = {}  # replica conn -> stream held for it
        self._reported_fsync = -1
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0
        self._register_config_hooks()
        if self.persist.aof is not None:
            self.persist.aof_marks_follow(self.core.master_repl_offset)
        self.refresh_gate()
        self.refresh_counting()
        replicaof = cfg.get("replicaof")
        if replicaof is not None:
            host, port = replicaof
            self.execute(self.engine.start_replica(host, port, _now_ms()))

    # -- configuration -----------------------------------------------------------------

    def _engine_config(self) -> EngineConfig:
        cfg = self.config
        return EngineConfig(
            listening_port=cfg.get("replica-announce-port") or cfg.get("port"),
            announce_ip=cfg.get("replica-announce-ip") or None,
            masteruser=cfg.get("masteruser") or None,
            masterauth=cfg.get("masterauth") or None,
            repl_timeout_ms=cfg.get("repl-timeout") * 1000,
            ping_period_ms=cfg.get("repl-ping-replica-period") * 1000,
            backlog_bytes_max=cfg.get("repl-backlog-size"),
            backlog_ttl_ms=cfg.get("repl-backlog-ttl") * 1000,
            min_replicas_to_write=cfg.get("min-replicas-to-write"),
            min_replicas_max_lag_s=cfg.get("min-replicas-max-lag"),
        )

    def _register_config_hooks(self) -> None:
        cfg = self.config

        def engine_config(name: str, old: Any, new: Any) -> None:
            self.engine.reconfigure(self._engine_config())
            self.refresh_gate()

        for name in (
            "repl-timeout",
            "repl-ping-replica-period",
            "repl-backlog-size",
            "repl-backlog-ttl",
            "min-replicas-to-write",
            "min-replicas-max-lag",
            "masterauth",
            "masteruser",
            "replica-announce-ip",
            "replica-announce-port",
            "port",
        ):
            cfg.on_change(name, engine_config)
        cfg.on_change("replica-read-only", lambda *a: self.refresh_gate())
        cfg.on_change("replica-serve-stale-data", lambda *a: self.refresh_gate())

    # -- effects and offsets -------------------------------------------------------------

    def _feed(self, db: int, argv: list[bytes]) -> None:
        # The engine numbers the stream; the AOF feed after this one stamps its buffer
        # with the offset this leaves in core.master_repl_offset.
        self.engine.propagate(db, argv)

    def aof_changed(self, enabled: bool) -> None:
        """The AOF was switched on or off (start-up, CONFIG SET appendonly)."""
        self.engine.set_aof_enabled(enabled, _now_ms())
        self._reported_fsync = -1
        self.refresh_counting()

    def _report_fsync(self, now_ms: int) -> None:
        p = self.persist
        aof = p.aof
        if aof is None or p.aof_state != "on":
            # While the AOF is being created its base is not on disk: nothing counts.
            return
        mark = aof.fsynced_mark
        if aof.policy != "no" and mark >= aof.mark and not aof.pending:
            # Everything appended is on disk: offsets that moved without data (pings,
            # GETACK) count as fsynced too (notes: "the fsynced offset follows it").
            mark = max(mark, self.engine.state.master_repl_offset)
        if mark != self._reported_fsync:
            self._reported_fsync = mark
            self.execute(self.engine.on_fsynced(mark, now_ms))

    # -- command gate ----------------------------------------------------------------------

    def refresh_gate(self) -> None:
        e = self.engine
        self.core.set_repl_gated(
            not e.is_primary or e.table.min_replicas_to_write > 0 or e.failover.active
        )

    # -- the engine's Replication port (engine/ports.py) --------------------------------------

    @property
    def master_repl_offset(self) -> int:
        return int(self.engine.state.master_repl_offset)

    def propagate(self, db_index: int, argv: list[bytes]) -> None:
        self.engine.propagate(db_index, argv)

    def role_reply(self) -> bytes:
        return bytes(self.engine.role_reply())

    def unblock_waiter(self, client_id: int, now_ms: int, error: bool) -> bytes | None:
        reply: bytes | None = self.engine.unblock_waiter(client_id, now_ms, error=error)
        return reply

    def refusal(self, c: Client, cmd: Any) -> str | None:
        """Why ``cmd`` may not run here now (Redis's processCommand order), or None."""
        e = self.engine
        writes = cmd.write or (cmd.name == "exec" and any(q.write for q, _ in c.multi or ()))
        if e.is_primary:
            if writes:
                r = e.write_refusal(_now_ms())
                if r is not None:
                    return r[1:-2].decode()
            return None
        if writes and self.config.get("replica-read-only"):
            return "READONLY You can't write against a read only replica."
        if not cmd.stale_ok:
            r = e.stale_refusal(self.config.get("replica-serve-stale-data"))
            if r is not None:
                return r[1:-2].decode()
        return None

    # -- commands ----------------------------------------------------------------------------

    def replconf(self, c: Client, argv: list[bytes]) -> bytes:
        e = self.engine
        reply, actions = e.replconf(c.id, argv, _now_ms(), _ip_of(c.addr))
        self.execute(actions)
        if actions or len(e.waiters) or e.failover.active:
            # An ACK matters at the end of the pass only to someone waiting; otherwise
            # (most ACKs: replicas acknowledge every read) no extra pass is needed.
            self.node.request_before_sleep()
        return reply if reply is not None else b""

    def psync(self, c: Client, argv: list[bytes]) -> bytes:
        reply, actions = self.engine.psync(c.id, argv, _now_ms(), _ip_of(c.addr))
        if c.id in self.engine.table.replicas:
            c.kind = "replica"
        self.execute(actions)
        self.node.request_before_sleep()
        return reply if reply is not None else b""

    def wait(self, c: Client, argv: list[bytes], aof: bool) -> bytes | None:
        """WAIT / WAITAOF: the reply, or None when the client is parked."""
        fn = self.engine.waitaof if aof else self.engine.wait
        reply = fn(
            c.id, argv, target_offset=c.woff, now_ms=_now_ms(), can_block=not self.core.in_exec
        )
        if reply is None:
            self.node.request_before_sleep()
        return reply

    def failover(self, argv: list[bytes]) -> bytes:
        reply, actions = self.engine.failover_command(argv, _now_ms())
        self.execute(actions)
        self.refresh_gate()
        self.node.request_before_sleep()
        return reply

    def replicaof(self, c: Client, argv: list[bytes]) -> bytes:
        reply, actions = self.engine.replicaof(
            argv, _now_ms(), from_replica=c.id in self.engine.table.replicas
        )
        self.execute(actions)
        self.node.request_before_sleep()
        return reply

    def client_gone(self, c: Client) -> None:
        e = self.engine
        e.on_client_disconnect(c.id)
        e.on_replica_disconnect(c.id)  # also a replica still in its handshake
        self._held.pop(c.id, None)

    # -- the end of an event-loop iteration --------------------------------------------

    def before_sleep(self) -> None:
        """After the AOF was written (and fsynced under always), before replies leave.
        Runs on every pass of the event loop: with nothing to do it returns at once."""
        e = self.engine
        now = 0
        if self.persist.aof is not None:
            now = _now_ms()
            self._report_fsync(now)
        if not (e.table.has_queued or len(e.waiters) or e.failover.active or e.snapshot_needed):
            return
        now = now or _now_ms()
        self.execute(e.before_sleep(now, writes_paused=self._writes_paused()))
        if e.snapshot_needed and not self.loading_snapshot:
            self._serve_snapshot()
        if len(e.waiters):
            self._arm_timer(now)

    def has_queued(self) -> bool:
        """Stream bytes wait to be sent to replicas (written after ``before_sleep``)."""
        return self.engine.table.has_queued

    def cron(self, now_ms: int) -> None:
        if self._serving:
            self._watch_served(now_ms)
        self._report_fsync(now_ms)
        self.execute(self.engine.cron(now_ms, writes_paused=self._writes_paused()))
        if self.engine.snapshot_needed and not self.loading_snapshot:
            self._serve_snapshot()
        self.refresh_gate()

    def _writes_paused(self) -> bool:
        return bool(self.core.pause_until_ms)

    def _arm_timer(self, now_ms: int) -> None:
        """Wake up when the next WAIT times out (WAIT 1 50 answers after 50 ms, not at
        the next cron tick)."""
        d = self.engine.waiters.next_deadline_ms()
        loop = self.node.loop
        if d is None or loop is None:
            return
        if self._timer is not None and self._timer_at <= d:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = d
        self._timer = loop.call_later(max(0, d - now_ms) / 1000 + 0.001, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = 0
        self.node.request_before_sleep()

    # -- actions -------------------------------------------------------------------------------

    def execute(self, actions: list[Any]) -> None:
        applied: list[list[bytes]] = []  # a run of Apply: one pass through the core
        for a in actions:
            t = type(a)
            if t is act.Apply:
                applied.append(a.argv)
                continue
            if applied:
                self._apply(applied)
                applied = []
            if t is act.SendToReplica:
                held = self._held.get(a.conn)
                if held is not None:
                    held.parts.append(a.data)
                    held.size += len(a.data)
                    self._check_held(a.conn, held.size)
                else:
                    c = self.core.clients.get(a.conn)
                    if c is not None:
                        # Out at once, ahead of this pass's client replies: the replica
                        # starts applying (and acknowledging) sooner, which a WAIT waits for.
                        c.conn.write(a.data)
                        c.conn.flush()
            elif t is act.SendToPrimary:
                if self.link is not None and self.link.transport is not None:
                    self.link.transport.write(a.data)
            elif t is act.ReplyToClient:
                self._reply_to_client(a)
            elif t is act.CloseReplica:
                self._held.pop(a.conn, None)
                c = self.core.clients.get(a.conn)
                if c is not None:
                    self.log.notice(f"Connection with replica {c.addr} lost: {a.reason}")
                    c.conn.close()
            elif t is act.SnapshotNeeded:
                self.node.request_before_sleep()
            elif t is act.ConnectPrimary:
                self._connect(a.host, a.port)
            elif t is act.ClosePrimaryLink:
                self._close_link(a.reason)
            elif t is act.DiscardTransaction:
                if self.primary_client is not None:
                    self.primary_client.multi = None
                    self.core.unwatch_all(self.primary_client)
            elif t is act.SnapshotBegin:
                self._snapshot_begin(a)
            elif t is act.SnapshotChunk:
                self._snapshot_chunk(a.data)
            elif t is act.SnapshotEnd:
                self._snapshot_end()
            elif t is act.SnapshotAbort:
                self._snapshot_abort(a.reason)
            elif t is act.PauseWrites:
                self.core.pause(1 << 62, everything=False)
            elif t is act.UnpauseWrites:
                self.core.unpause()
            elif t is act.RoleChanged:
                self._role_changed(a.host, a.port)
            elif t is act.Log:
                getattr(self.log, a.level, self.log.notice)(a.message)
        if applied:
            self._apply(applied)
        self.refresh_counting()

    def refresh_counting(self) -> None:
        """While nothing needs the stream's bytes -- a primary without replicas, backlog
        or AOF, and no other feed -- the core only counts writes (0.3 µs a write less);
        re-checked after every change the engine reports."""
        e = self.engine
        idle = (
            e.is_primary
            and e.state.backlog is None
            and not e.table.replicas
            and not e.aof_enabled
            and self.core.feeds == [self._feed]
        )
        self.core.count_only = e.state if idle else None

    def _check_held(self, conn: int, size: int) -> None:
        """The stream held for a replica whose snapshot is being written counts against
        the replica class's output buffer limit (Redis counts it in the same buffer):
        past the hard limit, the replica is dropped (it will resync)."""
        hard = self.node.output_limits.get("replica", (0, 0, 0))[0]
        if hard and size >= hard:
            c = self.core.clients.get(conn)
            self.log.warning(
                f"Client id={conn} addr={c.addr if c else '?'} scheduled to be closed ASAP "
                f"for overcoming of output buffer limits (held stream {size} bytes "
                "during its full sync)."
            )
            self._held.pop(conn, None)
            self.engine.on_replica_disconnect(conn)
            if c is not None:
                c.conn.close()

    def _reply_to_client(self, a: act.ReplyToClient) -> None:
        c = self.core.clients.get(a.client)
        if c is None or c.closed:
            return
        self.core.blocking.answer(c, a.data)
        if a.close:
            c.close_after_reply = True
            self.core.kill_client(c)

    # -- roles ---------------------------------------------------------------------------------

    def _role_changed(self, host: str | None, port: int) -> None:
        core = self.core
        # A replica streams nothing of its own (its primary's bytes are passed on as
        # they are): its feed would only cost every applied command a call.
        if host is None and self._feed not in core.feeds:
            core.feeds.insert(0, self._feed)
        elif host is not None and self._feed in core.feeds:
            core.feeds.remove(self._feed)
        if host is None:
            core.role_replica = False
            self.log.role = "M"
            self.config.values["replicaof"] = None
            self._drop_primary_client()
        else:
            core.role_replica = True
            self.log.role = "S"
            self.config.values["replicaof"] = (host, port)
            err = enc.error(UNBLOCKED_ROLE)
            for c in list(core.blocking.blocked):
                if c.blocked is not None and c.blocked.keys:
                    core.blocking.answer(c, err)
                    core.kill_client(c)
        self.refresh_gate()

    def _new_primary_client(self, db: int) -> Client:
        self._drop_primary_client()
        host, port = self.engine.link.host, self.engine.link.port
        c: Client = self.core.new_client(_PrimaryClientConn(self), f"{host}:{port}", "", -1)
        c.kind = "master"
        c.set_authenticated(True)
        c.db = self.core.dbs[db] if 0 <= db < len(self.core.dbs) else self.core.dbs[0]
        self.primary_client = c
        return c

    def _drop_primary_client(self) -> None:
        c = self.primary_client
        if c is not None:
            self.primary_client = None
            conn = c.conn
            if isinstance(conn, _PrimaryClientConn):
                conn.shell = None  # closing it must not drop the (new) link
            self.core.client_gone(c)

    def primary_client_killed(self) -> None:
        """CLIENT KILL TYPE master: drop the link; the engine reconnects (and continues
        partially, Redis's way to test PSYNC)."""
        self.primary_client = None  # the core is closing it
        if self.link is None:
            return
        self._drop_link_transport()
        self.execute(self.engine.on_link_lost(_now_ms()))

    # -- applying the stream -------------------------------------------------------------

    def _apply(self, cmds: list[list[bytes]]) -> None:
        c = self.primary_client
        if c is None:
            c = self._new_primary_client(self.engine.link.stream_db)
        core = self.core
        core.applying = True
        try:
            held = core.process_batch(c, cmds, [])
        finally:
            core.applying = False
        if held is not None:  # never: the primary's client is not paused nor blocked
            self.log.warning(f"Stream command not applied: {cmds[held][0]!r}")

    # -- the link to our primary ---------------------------------------------------------

    def _connect(self, host: str, port: int) -> None:
        self._drop_link_transport()
        self._link_seq += 1
        seq = self._link_seq
        self._drop_primary_client()
        loop = self.node.loop
        if loop is None:
            return
        loop.create_task(self._open_link(host, port, seq))

    async def _open_link(self, host: str, port: int, seq: int) -> None:
        loop = self.node.loop
        assert loop is not None
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: _LinkProtocol(self, seq), host, port),
                CONNECT_TIMEOUT_S,
            )
        except (TimeoutError, OSError) as e:
            if seq == self._link_seq:
                self.log.warning(f"Error condition on socket for SYNC: {e}")
                self.execute(self.engine.on_link_failed(_now_ms()))
                self.node.request_before_sleep()
            return
        if seq != self._link_seq:
            proto.transport.close()
            return
        self.link = proto
        self.log.notice("PRIMARY <-> REPLICA sync started")
        self._new_primary_client(0)
        self.execute(self.engine.on_link_established(_now_ms()))
        self.node.request_before_sleep()

    def link_data(self, proto: _LinkProtocol, data: bytes) -> None:
        if proto is not self.link:
            return
        if self.loading_snapshot:
            self._link_pending.append(data)
            return
        e = self.engine
        self.execute(e.receive_data(data, _now_ms()))
        if self.persist.aof is not None or e.table.has_queued or e.snapshot_needed:
            # The AOF to write (and FACK), the stream to pass on to sub-replicas. With
            # neither, the end-of-pass work has nothing to do: one pass less per read.
            self.node.request_before_sleep()

    def link_closed(self, proto: _LinkProtocol) -> None:
        if proto is not self.link:
            return  # closed on the engine's request, or an older attempt
        self.link = None
        if self.loading_snapshot:
            self._link_lost_while_loading = True
            return
        self._snapshot_abort("link lost")
        self.execute(self.engine.on_link_lost(_now_ms()))
        self.node.request_before_sleep()

    def _close_link(self, reason: str) -> None:
        if self.link is not None:
            self.log.notice(f"Closing the link with the primary: {reason}")
        self._drop_link_transport()
        self._link_seq += 1
        self._snapshot_abort(reason)

    def _drop_link_transport(self) -> None:
        link, self.link = self.link, None
        if link is not None and link.transport is not None:
            link.transport.close()

    # -- full syncs received ---------------------------------------------------------------

    def _snapshot_begin(self, a: act.SnapshotBegin) -> None:
        self._snapshot_abort("a new transfer starts")
        self._incoming_path = os.path.join(self.persist.dir, f"temp-{os.getpid()}-sync-in.ackdb")
        self._incoming = open(self._incoming_path, "wb")
        self._incoming_bytes = 0
        self._incoming_size = a.size_bytes
        self._incoming_logged_ms = _now_ms()
        size = "unknown size" if a.size_bytes < 0 else f"{a.size_bytes} bytes"
        self.log.notice(
            f"PRIMARY <-> REPLICA sync: receiving the snapshot of {a.replid}:{a.offset} ({size})"
        )

    def _snapshot_chunk(self, data: bytes) -> None:
        f = self._incoming
        if f is None:
            return
        f.write(data)
        self._incoming_bytes += len(data)
        now = _now_ms()
        if now - self._incoming_logged_ms >= SYNC_LOG_INTERVAL_MS:
            self._incoming_logged_ms = now
            total = f" of {self._incoming_size}" if self._incoming_size >= 0 else ""
            self.log.notice(
                f"PRIMARY <-> REPLICA sync: received {self._incoming_bytes}{total} bytes"
            )

    def _snapshot_abort(self, reason: str) -> None:
        f, self._incoming = self._incoming, None
        if f is None:
            return
        f.close()
        try:
            os.unlink(self._incoming_path)
        except OSError:
            pass
        self.log.warning(f"PRIMARY <-> REPLICA sync: transfer aborted ({reason})")

    def _snapshot_end(self) -> None:
        """Replace the dataset with the received snapshot. The load runs in steps (clients
        get -LOADING); the engine hears ``snapshot_loaded`` when it is done, and the bytes
        that arrive meanwhile wait."""
        f, self._incoming = self._incoming, None
        assert f is not None
        f.flush()
        f.close()
        self.log.notice(
            f"PRIMARY <-> REPLICA sync: received {self._incoming_bytes} bytes; "
            "flushing the old data and loading the snapshot"
        )
        self.loading_snapshot = True
        self._link_lost_while_loading = False
        loop = self.node.loop
        assert loop is not None
        loop.create_task(self._load_received(self._incoming_path))

    async def _load_received(self, path: str) -> None:
        core = self.core
        p = self.persist
        self._drop_primary_client()
        if p.aof is not None:
            p.stop_aof()  # rebuilt from the new dataset below (Redis restarts it too)
            aof_wanted = True
        else:
            aof_wanted = False
        for db in core.dbs:
            db.clear()
        for c in core.clients.values():
            c.woff = 0
        loader = Loader(p)
        core.loader = loader
        core.loading = True
        ok = True
        t0 = time.monotonic()
        try:
            for _ in loader.load_snapshot(path):
                await asyncio.sleep(0)
        except Exception as e:  # noqa: BLE001 - a bad payload must not take the node down
            self.log.warning(f"PRIMARY <-> REPLICA sync: the received snapshot is unusable: {e}")
            ok = False
            for db in core.dbs:
                db.clear()
        finally:
            core.loading = False
            core.loader = None
            try:
                os.unlink(path)
            except OSError:
                pass
        self.loading_snapshot = False
        now = _now_ms()
        if not ok:
            self._drop_link_transport()
            self._link_seq += 1
            self.execute(self.engine.on_link_lost(now))
            if aof_wanted:
                self._restart_aof()
            return
        self.log.notice(
            f"PRIMARY <-> REPLICA sync: snapshot loaded in {time.monotonic() - t0:.3f} s"
        )
        meta = p.loaded_meta
        stream_db = meta.get("stream_db", 0) if isinstance(meta.get("stream_db"), int) else 0
        self._new_primary_client(stream_db)
        self.execute(self.engine.snapshot_loaded(stream_db, now))
        if aof_wanted:
            self._restart_aof()
        pending, self._link_pending = self._link_pending, []
        if self.link is not None:
            for data in pending:
                self.execute(self.engine.receive_data(data, _now_ms()))
        elif self._link_lost_while_loading:
            self.execute(self.engine.on_link_lost(_now_ms()))
        self.node.request_before_sleep()

    def _restart_aof(self) -> None:
        try:
            self.persist.create_aof()
        except OSError as e:
            self.log.warning(f"Failed to restart the AOF after a full sync: {e.strerror or e}")

    # -- full syncs served -----------------------------------------------------------------

    def _serve_snapshot(self) -> None:
        start = self.engine.begin_snapshot()
        self.execute(start.actions)
        if not start.conns:
            return
        for conn in start.conns:
            self._held[conn] = _Held()
        p = self.persist
        path = os.path.join(p.dir, f"temp-{os.getpid()}-sync-{start.offset}.ackdb")
        meta = {"replid": start.replid, "repl_offset": start.offset, "stream_db": start.stream_db}

        def work(progress: Progress) -> None:
            p.write_snapshot_to(path, progress, meta)
            progress.report(1, 1, force=True)

        now = _now_ms()
        try:
            child = fork("replsync", work, now)
        except OSError as e:
            self.log.warning(f"Can't fork for the replicas' full sync: {e.strerror}")
            for conn in start.conns:
                self._drop_replica(conn, "fork failed")
            return
        self.core.count_fork(child.fork_usec)
        self.log.notice(
            f"Starting a full sync for {len(start.conns)} replica(s) at offset {start.offset}: "
            f"snapshot written by pid {child.pid}"
        )
        job = _ServedSync(child, path, start.conns, start.offset, now)
        self._serving.append(job)
        loop = self.node.loop
        if loop is not None:
            # The child's end closes its progress pipe: deliver at once, not at the next
            # cron tick.
            loop.add_reader(child.read_fd, self._child_readable, job)

    def _drop_replica(self, conn: int, reason: str) -> None:
        """A replica whose full sync cannot go on: closed, and forgotten by the engine."""
        self.execute([act.CloseReplica(conn, reason)])
        self.engine.on_replica_disconnect(conn)

    def _child_readable(self, job: _ServedSync) -> None:
        if job in self._serving:
            job.child.poll_progress()
            self._try_finish(job)

    def _try_finish(self, job: _ServedSync) -> None:
        loop = self.node.loop
        if loop is not None:
            loop.remove_reader(job.child.read_fd)  # before reap() closes it
        code = job.child.reap()
        if code is None:
            if loop is not None:
                loop.add_reader(job.child.read_fd, self._child_readable, job)
            return
        self._serving.remove(job)
        self._deliver(job, code == 0, _now_ms())

    def _watch_served(self, now_ms: int) -> None:
        for job in list(self._serving):
            child = job.child
            child.poll_progress()
            if child.total and now_ms - job.logged_ms >= SYNC_LOG_INTERVAL_MS:
                job.logged_ms = now_ms
                self.log.notice(
                    f"Full sync snapshot: {child.done} of {child.total} keys "
                    f"({100 * child.done // max(child.total, 1)}%)"
                )
            self._try_finish(job)

    def _deliver(self, job: _ServedSync, ok: bool, now_ms: int) -> None:
        payload = b""
        if ok:
            try:
                with open(job.path, "rb") as f:
                    payload = f.read()
            except OSError as e:
                self.log.warning(f"Full sync snapshot unreadable: {e.strerror}")
                ok = False
        try:
            os.unlink(job.path)
        except OSError:
            pass
        if not ok:
            self.log.warning("Full sync snapshot failed: closing the replicas waiting for it")
        header = b"$%d\r\n" % len(payload)
        for conn in job.conns:
            held = self._held.pop(conn, None)
            c = self.core.clients.get(conn)
            if c is None or held is None or conn not in self.engine.table.replicas:
                continue
            if not ok:
                self._drop_replica(conn, "snapshot failed")
                continue
            c.conn.write(header)
            c.conn.write(payload)
            for data in held.parts:
                c.conn.write(data)
            self.engine.on_bulk_sent(conn, now_ms)
            self.log.notice(
                f"Synchronization with replica {c.addr} succeeded "
                f"({len(payload)} bytes of snapshot)"
            )
        self.node.request_before_sleep()

    # -- saving and stopping ---------------------------------------------------------------

    def lagging_replicas(self, target: int | None = None) -> list[str]:
        """Online replicas whose acknowledged offset is below ``target`` (default: the
        current offset), as ip:port."""
        e = self.engine
        if target is None:
            target = e.state.master_repl_offset
        if not e.is_primary:
            return []
        return [f"{r.ip}:{r.listening_port}" for r in e.table.online() if r.ack_offset < target]

    def request_acks(self) -> int:
        """Ask every replica for its offset now (REPLCONF GETACK); returns the offset
        they must reach (the GETACK itself is not acknowledged at once)."""
        target = self.engine.state.master_repl_offset
        if self.engine.is_primary and self.engine.table.replicas:
            self.engine.table.feed(GETACK)
        self.node.request_before_sleep()
        return target

    def saved_meta(self) -> dict[str, Any]:
        """What a snapshot of the dataset stores so a restart continues this history."""
        h = self.engine.saved_history()
        return {"replid": h.replid, "repl_offset": h.offset, "stream_db": h.stream_db}

    def info_fields(self) -> list[tuple[str, Any]]:
        cfg = self.config
        fields = self.engine.info_fields(
            _now_ms(),
            replica_priority=cfg.get("replica-priority"),
            read_only=cfg.get("replica-read-only"),
            announced=cfg.get("replica-announced"),
        )
        return list(fields)

    def stop(self) -> None:
        for job in self._serving:
            if self.node.loop is not None:
                self.node.loop.remove_reader(job.child.read_fd)
            job.child.kill()
            try:
                os.unlink(job.path)
            except OSError:
                pass
        self._serving = []
        self._snapshot_abort("shutdown")
        self._drop_link_transport()
        self._link_seq += 1
        if self._timer is not None:
            self._timer.cancel()


def _ip_of(addr: str) -> str:
    if addr.startswith("/"):
        return "127.0.0.1"
    return addr.rsplit(":", 1)[0]
