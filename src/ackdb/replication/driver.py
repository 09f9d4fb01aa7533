"""The replication driver: carries out the engine's actions, in order, through ports.

Owns: everything between the engine (``engine.Replication``) and the environment that is
not a port's mechanics -- routing commands and link events to the engine and its actions
to the ports (``ports.py``), batching runs of ``Apply``, holding the stream of replicas
whose snapshot is being written (and dropping one whose held stream passes its buffer
limit), framing a written snapshot for its replicas, holding the primary's bytes while a
received snapshot loads, reporting AOF fsyncs, and the end-of-pass / timer work. The
server and the simulator run this same code; only the ports differ.

Never touches sockets, files, clocks, tasks or processes: time comes from ``Host.now_ms``.

States of a received full sync: idle -> transferring (``SnapshotBegin``) -> loading
(``SnapshotEnd``; link bytes and a link loss wait) -> idle (``snapshot_loaded`` /
``snapshot_unusable``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never

from . import actions as act
from .engine import Replication
from .ports import Aof, Dataset, Host, Links, SnapshotReceiver, SnapshotServer

# Actions that only move data: carrying them out changes no role and no command gate.
_DATA_ACTIONS: frozenset[type] = frozenset(
    {act.Apply, act.SendToReplica, act.SendToPrimary, act.ReplyToClient}
)


@dataclass(slots=True)
class _Held:
    """The stream held for a replica while its snapshot is being written."""

    parts: list[bytes] = field(default_factory=list)
    size: int = 0


class ReplicationDriver:
    """One node's replication: the engine and the ports it acts through."""

    def __init__(
        self,
        engine: Replication,
        *,
        host: Host,
        links: Links,
        dataset: Dataset,
        aof: Aof,
        served: SnapshotServer,
        received: SnapshotReceiver,
    ) -> None:
        self.engine = engine
        self.host = host
        self.links = links
        self.dataset = dataset
        self.aof = aof
        self.served = served
        self.received = received
        self.loading_snapshot = False
        self._link_lost_while_loading = False
        self._link_pending: list[bytes] = []  # bytes from the primary while loading
        self._held: dict[int, _Held] = {}  # replica conn -> stream held for it
        self._reported_fsync = -1

    def start(self, replicaof: tuple[str, int] | None) -> None:
        """Right after construction: follow ``replicaof`` when configured."""
        if replicaof is not None:
            host, port = replicaof
            self.execute(self.engine.start_replica(host, port, self.host.now_ms()))
        else:
            self.dataset.engine_changed()

    # -- commands ---------------------------------------------------------------------

    def replconf(self, conn: int, argv: list[bytes], peer_addr: str) -> bytes | None:
        e = self.engine
        failover = e.failover.active
        reply, actions = e.replconf(conn, argv, self.host.now_ms(), peer_addr)
        if actions or failover:
            # An ACK changes no role nor gate: without a failover running, the command
            # gate need not be recomputed (most ACKs carry no action at all).
            self.execute(actions, data_only=not failover)
        if actions or failover or len(e.waiters):
            # An ACK matters at the end of the pass only to someone waiting; otherwise
            # (most ACKs: replicas acknowledge every read) no extra pass is needed.
            self.host.request_pass()
        return reply

    def psync(self, conn: int, argv: list[bytes], peer_addr: str) -> bytes | None:
        reply, actions = self.engine.psync(conn, argv, self.host.now_ms(), peer_addr)
        if conn in self.engine.table.replicas:
            self.links.replica_attached(conn)
        self.execute(actions)
        self.host.request_pass()
        return reply

    def wait(
        self, client: int, argv: list[bytes], *, aof: bool, target_offset: int, can_block: bool
    ) -> bytes | None:
        """WAIT / WAITAOF: the reply, or None when the client is parked."""
        fn = self.engine.waitaof if aof else self.engine.wait
        reply = fn(
            client,
            argv,
            target_offset=target_offset,
            now_ms=self.host.now_ms(),
            can_block=can_block,
        )
        if reply is None:
            self.host.request_pass()
        return reply

    def failover(self, argv: list[bytes]) -> bytes:
        reply, actions = self.engine.failover_command(argv, self.host.now_ms())
        self.execute(actions)
        self.host.request_pass()
        return reply

    def replicaof(self, conn: int, argv: list[bytes]) -> bytes:
        e = self.engine
        reply, actions = e.replicaof(
            argv, self.host.now_ms(), from_replica=conn in e.table.replicas
        )
        self.execute(actions)
        self.host.request_pass()
        return reply

    def lease(self, argv: list[bytes]) -> bytes:
        """ACKDB.LEASE: may lift a freeze, so the command gate follows."""
        reply = self.engine.lease(argv)
        self.dataset.engine_changed()
        return reply

    def freeze(self, argv: list[bytes]) -> bytes:
        """ACKDB.FREEZE."""
        reply, actions = self.engine.freeze(argv, self.host.now_ms())
        self.execute(actions)
        self.host.request_pass()
        return reply

    def promote(self) -> None:
        """A failover controller chose this node."""
        self.execute(self.engine.promote(self.host.now_ms()))
        self.host.request_pass()

    def client_gone(self, conn: int) -> None:
        e = self.engine
        e.on_client_disconnect(conn)
        e.on_replica_disconnect(conn)  # also a replica still in its handshake
        self._held.pop(conn, None)

    # -- the end of an event-loop pass, and the timer -------------------------------

    def before_sleep(self) -> None:
        """After the AOF was written (and fsynced under always), before replies leave.
        Runs on every pass of the event loop: with nothing to do it returns at once."""
        e = self.engine
        now = 0
        if self.aof.active():
            now = self.host.now_ms()
            self._report_fsync(now)
        failover = e.failover.active
        if not (e.table.has_queued or len(e.waiters) or failover or e.snapshot_needed):
            return
        now = now or self.host.now_ms()
        # Without a failover running, the end of a pass only sends the stream, GETACKs
        # and WAIT answers: no role or gate changes.
        self.execute(
            e.before_sleep(now, writes_paused=self.dataset.writes_paused()),
            data_only=not failover,
        )
        if e.snapshot_needed and not self.loading_snapshot:
            self._serve_snapshot()
        if len(e.waiters):
            d = e.waiters.next_deadline_ms()
            if d is not None:
                self.host.wake_at(d)

    def cron(self, now_ms: int) -> None:
        self._report_fsync(now_ms)
        self.execute(self.engine.cron(now_ms, writes_paused=self.dataset.writes_paused()))
        if self.engine.snapshot_needed and not self.loading_snapshot:
            self._serve_snapshot()

    def _report_fsync(self, now_ms: int) -> None:
        mark = self.aof.fsynced_mark(self.engine.state.master_repl_offset)
        if mark is not None and mark != self._reported_fsync:
            self._reported_fsync = mark
            self.execute(self.engine.on_fsynced(mark, now_ms))

    def aof_changed(self, enabled: bool) -> None:
        """The AOF was switched on or off (start-up, CONFIG SET appendonly)."""
        self.engine.set_aof_enabled(enabled, self.host.now_ms())
        self._reported_fsync = -1
        self.dataset.engine_changed()

    # -- actions ----------------------------------------------------------------------

    def execute(self, actions: list[act.Action], *, data_only: bool = False) -> None:
        """Carry out ``actions`` in order, then let the dataset follow the engine's role
        and gate -- unless the caller knows the engine call that made them changes
        neither (``data_only``) and they only move data: the stream, applied commands
        and replies (the per-write paths: two Python calls per pass less)."""
        applied: list[list[bytes]] = []  # a run of Apply: one pass through the dataset
        changed = not data_only
        for a in actions:
            if type(a) is act.Apply:
                if applied:
                    applied = applied + a.argvs  # never extend an action's own list
                else:
                    applied = a.argvs
                continue
            if applied:
                self.dataset.apply(applied, self.engine.link.stream_db)
                applied = []
            if type(a) is act.SendToReplica and not self._held:
                self.links.send_to_replica(a.conn, a.data)
                continue
            if type(a) is act.SendToPrimary:
                self.links.send_to_primary(a.data)
                continue
            if type(a) not in _DATA_ACTIONS:
                changed = True
            self._execute_one(a)
        if applied:
            self.dataset.apply(applied, self.engine.link.stream_db)
        if changed:
            self.dataset.engine_changed()

    def _execute_one(self, a: act.Action) -> None:  # noqa: C901 - one branch per action
        match a:
            case act.SendToReplica(conn, data):
                self._send_to_replica(conn, data)
            case act.SendToPrimary(data):
                self.links.send_to_primary(data)
            case act.ReplyToClient(client, data, close):
                self.dataset.reply_to_client(client, data, close)
            case act.CloseReplica(conn, reason):
                self._held.pop(conn, None)
                self.links.close_replica(conn, reason)
            case act.SnapshotNeeded():
                self.host.request_pass()
            case act.ConnectPrimary(host, port):
                self.dataset.drop_primary_client()
                self.links.connect_primary(host, port)
            case act.ClosePrimaryLink(reason):
                self._link_pending = []  # bytes of a link now closed
                self.links.close_primary(reason)
                self.received.abort(reason)
            case act.DiscardTransaction():
                self.dataset.discard_transaction()
            case act.SnapshotBegin():
                self.received.abort("a new transfer starts")
                self.received.begin(a)
            case act.SnapshotChunk(data):
                self.received.chunk(data)
            case act.SnapshotEnd():
                self.loading_snapshot = True
                self._link_lost_while_loading = False
                self.received.load()
            case act.SnapshotAbort(reason):
                self.received.abort(reason)
            case act.PauseWrites():
                self.dataset.pause_writes()
            case act.UnpauseWrites():
                self.dataset.unpause_writes()
            case act.RoleChanged(host, port):
                self.dataset.role_changed(host, port)
            case act.Log(level, message):
                self.host.log_line(level, message)
            case act.Apply():
                raise AssertionError("Apply runs in batches")
            case _:
                assert_never(a)

    def _send_to_replica(self, conn: int, data: bytes) -> None:
        held = self._held.get(conn)
        if held is None:
            self.links.send_to_replica(conn, data)
            return
        held.parts.append(data)
        held.size += len(data)
        # The held stream counts against the replica class's output buffer limit (Redis
        # counts it in the same buffer): past the hard limit the replica is dropped (it
        # will resync).
        hard = self.links.replica_buffer_limit_bytes()
        if hard and held.size >= hard:
            self.host.log_line(
                "warning",
                f"Client id={conn} scheduled to be closed ASAP for overcoming of output "
                f"buffer limits (held stream {held.size} bytes during its full sync).",
            )
            self._drop_replica(conn, "output buffer limit")

    def _drop_replica(self, conn: int, reason: str) -> None:
        """A replica whose full sync cannot go on: closed, and forgotten by the engine."""
        self._held.pop(conn, None)
        self.engine.on_replica_disconnect(conn)
        self.links.close_replica(conn, reason)

    # -- the link to our primary ------------------------------------------------------

    def link_established(self) -> None:
        self.host.log_line("notice", "PRIMARY <-> REPLICA sync started")
        self.dataset.new_primary_client(0)
        self.execute(self.engine.on_link_established(self.host.now_ms()))
        self.host.request_pass()

    def link_failed(self, why: str) -> None:
        self.host.log_line("warning", f"Error condition on socket for SYNC: {why}")
        self.execute(self.engine.on_link_failed(self.host.now_ms()))
        self.host.request_pass()

    def link_data(self, data: bytes) -> None:
        if self.loading_snapshot:
            self._link_pending.append(data)
            return
        e = self.engine
        # A replica's link never makes it a primary (REPLICAOF NO ONE, PSYNC FAILOVER and
        # promotion do), so while it streams the gate stays as it is.
        self.execute(e.receive_data(data, self.host.now_ms()), data_only=not e.is_primary)
        if self.aof.active() or e.table.has_queued or e.snapshot_needed:
            # The AOF to write (and FACK), the stream to pass on to sub-replicas. With
            # neither, the end-of-pass work has nothing to do: one pass less per read.
            self.host.request_pass()

    def link_lost(self) -> None:
        """The link closed by itself (or its primary client was killed)."""
        if self.loading_snapshot:
            self._link_lost_while_loading = True
            return
        self.received.abort("link lost")
        self.execute(self.engine.on_link_lost(self.host.now_ms()))
        self.host.request_pass()

    # -- full syncs received ----------------------------------------------------------

    def snapshot_loaded(self, stream_db: int) -> None:
        """The dataset was replaced by the received snapshot: the engine continues the
        stream, then the bytes that arrived meanwhile are processed."""
        self.loading_snapshot = False
        self.dataset.new_primary_client(stream_db)
        self.execute(self.engine.snapshot_loaded(stream_db, self.host.now_ms()))
        self.received.loaded()
        pending, self._link_pending = self._link_pending, []
        if self._link_lost_while_loading:
            self._link_lost_while_loading = False
            self.execute(self.engine.on_link_lost(self.host.now_ms()))
        else:
            for data in pending:
                self.execute(self.engine.receive_data(data, self.host.now_ms()))
        self.host.request_pass()

    def snapshot_unusable(self) -> None:
        """The received snapshot could not be loaded (the dataset is empty): drop the
        link; the engine reconnects and syncs again."""
        self.loading_snapshot = False
        self._link_pending = []
        self._link_lost_while_loading = False
        self.links.close_primary("the received snapshot is unusable")
        self.execute(self.engine.on_link_lost(self.host.now_ms()))
        self.received.loaded()

    # -- full syncs served ------------------------------------------------------------

    def _serve_snapshot(self) -> None:
        start = self.engine.begin_snapshot()
        self.execute(start.actions)
        if not start.conns:
            return
        for conn in start.conns:
            self._held[conn] = _Held()
        self.host.log_line(
            "notice",
            f"Starting a full sync for {len(start.conns)} replica(s) at offset {start.offset}",
        )
        if not self.served.serve(start):
            for conn in start.conns:
                self._drop_replica(conn, "fork failed")

    def snapshot_written(
        self, conns: tuple[int, ...], payload: bytes | None, eof_mark: bytes | None = None
    ) -> None:
        """The snapshot for ``conns`` is written (``payload`` None: it failed). Each
        replica still there gets it -- ``$<len>`` framed, or EOF-marked when ``eof_mark``
        is given -- then the stream held for it, and is online."""
        if payload is None:
            self.host.log_line(
                "warning", "Full sync snapshot failed: closing the replicas waiting for it"
            )
        elif eof_mark is not None:
            frame = b"$EOF:" + eof_mark + b"\r\n" + payload + eof_mark
        else:
            frame = b"$%d\r\n" % len(payload) + payload
        now = self.host.now_ms()
        for conn in conns:
            held = self._held.pop(conn, None)
            if held is None or conn not in self.engine.table.replicas:
                continue
            if payload is None:
                self._drop_replica(conn, "snapshot failed")
                continue
            self.links.send_to_replica(conn, frame)
            for data in held.parts:
                self.links.send_to_replica(conn, data)
            self.engine.on_bulk_sent(conn, now)
            r = self.engine.table.replicas[conn]
            self.host.log_line(
                "notice",
                f"Synchronization with replica {r.ip}:{r.listening_port} succeeded "
                f"({len(payload)} bytes of snapshot)",
            )
        self.host.request_pass()
        self.dataset.engine_changed()
