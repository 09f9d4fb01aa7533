"""The replica side: the link to our primary, from TCP connect to the applied stream.

Owns: the link state (ROLE names), the handshake, the PSYNC request and the reading of
its reply, the snapshot transfer (``$<len>`` and ``$EOF:<mark>`` forms), the stream after
it -- byte-exact processed offset, ``Apply`` per command, ``REPLCONF ACK``/``FACK`` every
second and on ``GETACK`` -- repl-timeout and reconnection with back-off. It counts the
processed bytes into the shared ``ReplicationState`` (offset and backlog) and hands them
to the engine to pass on to sub-replicas byte for byte.

Never touches sockets, clocks or the keyspace: the shell connects, sends, applies and
loads snapshots as told, and reports link events and ``now_ms``.

States (Redis repl_state, as ROLE names them):
  none        not a replica.
  connect     must connect (after ``replicaof`` or a lost link, once the back-off passed).
  connecting  TCP connect in progress (``ConnectPrimary`` issued).
  handshake   PING, [AUTH], REPLCONF listening-port / [ip-address] / capa, PSYNC and
              their replies.
  sync        receiving the snapshot of a full resync.
  connected   applying the stream.
Every failure goes back to ``connect``; the history (replid, offset) survives it, so the
next PSYNC can continue partially, except after a +FULLRESYNC (Redis discards the cached
primary then) until that full sync completes.

``frozen`` (ackdb, ACKDB.FREEZE): the link is dropped and stays in ``connect`` without
ever connecting, keeping the history for a PSYNC to the next primary; the next
``replicaof`` / ``unset`` ends it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .actions import (
    Action,
    Apply,
    ClosePrimaryLink,
    ConnectPrimary,
    DiscardTransaction,
    Log,
    SendToPrimary,
    SnapshotAbort,
)
from .handshake import (
    PING,
    ContinueReply,
    FullResyncReply,
    PsyncRefused,
    ReplicaConfig,
    handshake_commands,
    parse_psync_reply,
    ping_reply_ok,
    psync_command,
)
from .state import ReplicationState
from .transfer import PrimaryAborted, SnapshotTransfer
from .util import encode_command, parse_ll
from .wire import LinkProtocolError, LinkReader

NONE, CONNECT, CONNECTING, HANDSHAKE, SYNC, CONNECTED = (
    "none",
    "connect",
    "connecting",
    "handshake",
    "sync",
    "connected",
)


@dataclass(frozen=True, slots=True)
class Forward:
    """Processed stream bytes for the sub-replicas (engine-internal)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class DisconnectReplicas:
    """Sub-replicas must reconnect to learn a new history (engine-internal)."""

    reason: str


@dataclass(frozen=True, slots=True)
class PsyncReplied:
    """The primary answered PSYNC; ``accepted`` for +CONTINUE / +FULLRESYNC."""

    accepted: bool


LinkAction = Action | Forward | DisconnectReplicas | PsyncReplied


# After a GETACK (a client WAITs on the primary), how long every read is acknowledged (ms).
EAGER_ACK_MS = 2000
# Stream commands _stream handles itself; every other one is simply applied.
_STREAM_SPECIAL = frozenset({b"replconf", b"select", b"multi", b"exec", b"discard"})


class ReplicaLink:
    """The link to our primary (one per node; idle in state ``none``)."""

    def __init__(self, state: ReplicationState, config: ReplicaConfig) -> None:
        self.repl = state
        self.config = config
        self.state = NONE
        self.host: str | None = None
        self.port = 0
        # Redis keeps a "cached master" while it can continue a history partially.
        self.can_psync = False
        self.failover_psync = False
        self.frozen = False  # ACKDB.FREEZE: never reconnect until the next replicaof
        self.fsynced_offset: int | None = None  # None: AOF off, no FACK
        self._reader = LinkReader()
        self._expect: deque[str] = deque()
        self._failures = 0
        self._next_connect_ms = 0
        self._last_io_ms = 0
        self._last_ack_ms = 0
        self._fack_sent = -1
        self._ack_sent = -1  # the processed offset our last ACK reported
        self._getack_last = False  # the last unit processed was a GETACK we answered
        self._getacks = 0  # GETACKs answered on this link
        self._eager_until_ms = 0  # acknowledge every read until then (clients WAIT)
        self._in_multi = False
        # The db the processed stream has selected (Redis persists it as repl-stream-db):
        # a new link's primary client starts at db 0, so a partial resync re-selects it.
        self.stream_db = 0
        self._unit_db = 0
        self.link_down_since_ms: int | None = None
        # Full sync in progress: the snapshot arriving, then loaded by the shell.
        self.transfer: SnapshotTransfer | None = None
        self.loading = False  # SnapshotEnd sent, waiting for snapshot_loaded

    # -- commands from the engine -----------------------------------------------------

    def replicaof(self, host: str, port: int, now_ms: int) -> list[LinkAction]:
        """Follow host:port (REPLICAOF, FAILOVER's demotion, a restart as a replica)."""
        actions = self._drop_link("primary changed", now_ms) if self._linked() else []
        self.host, self.port = host, port
        self._failures = 0
        self.frozen = False
        self.state = CONNECT
        self.link_down_since_ms = self.link_down_since_ms or now_ms
        return actions + self._connect(now_ms)

    def unset(self, now_ms: int) -> list[LinkAction]:
        """REPLICAOF NO ONE: stop following."""
        actions = self._drop_link("no longer a replica", now_ms) if self._linked() else []
        self.state, self.host, self.port = NONE, None, 0
        self.link_down_since_ms = None
        self.failover_psync = False
        self.frozen = False
        return actions

    def freeze(self, now_ms: int) -> list[LinkAction]:
        """ACKDB.FREEZE on a replica: drop the link and never reconnect (the history,
        and ``can_psync``, stay for a PSYNC to the next primary)."""
        assert self.state != NONE, "a primary has no link to freeze"
        actions = self._drop_link("frozen by a failover", now_ms) if self._linked() else []
        self.frozen = True
        return actions

    # -- link events from the shell ---------------------------------------------------

    def on_link_established(self, now_ms: int) -> list[LinkAction]:
        assert self.state == CONNECTING, self.state
        self.state = HANDSHAKE
        self._reader = LinkReader()
        self._last_io_ms = now_ms
        self._expect = deque(["ping"])
        return [SendToPrimary(PING)]

    def on_link_failed(self, now_ms: int) -> list[LinkAction]:
        """The TCP connect failed (or the established link broke)."""
        if not self._linked():
            return []
        return [Log("warning", "Connection with primary lost.")] + self._lost(now_ms)

    def on_link_lost(self, now_ms: int) -> list[LinkAction]:
        """The established link broke: the same as a failed connect."""
        return self.on_link_failed(now_ms)

    def _linked(self) -> bool:
        return self.state in (CONNECTING, HANDSHAKE, SYNC, CONNECTED)

    def _drop_link(self, reason: str, now_ms: int) -> list[LinkAction]:
        return [ClosePrimaryLink(reason)] + self._lost(now_ms)

    def _lost(self, now_ms: int) -> list[LinkAction]:
        actions: list[LinkAction] = []
        if self.state == SYNC and self.transfer is not None and self.transfer.started:
            actions.append(SnapshotAbort("link lost during the transfer"))
        self.loading = False
        self.transfer = None
        if self.state == CONNECTED and self._in_multi:
            actions.append(DiscardTransaction())
        self._in_multi = False
        self._unit_db = self.stream_db
        if self.state == CONNECTED:
            self._failures = 0
            self.link_down_since_ms = now_ms
        self._failures += 1
        delay = self.config.reconnect_min_ms << min(self._failures - 1, 16)
        self._next_connect_ms = now_ms + min(delay, self.config.reconnect_max_ms)
        self.state = CONNECT
        self._expect.clear()
        self._reader = LinkReader()
        return actions

    def _connect(self, now_ms: int) -> list[LinkAction]:
        assert self.host is not None
        self.state = CONNECTING
        self._last_io_ms = now_ms
        return [
            Log("notice", f"Connecting to PRIMARY {self.host}:{self.port}"),
            ConnectPrimary(self.host, self.port),
        ]

    # -- bytes from the primary -------------------------------------------------------

    def receive_data(self, data: bytes, now_ms: int) -> list[LinkAction]:
        if not self._linked() or self.state == CONNECTING:
            return []
        self._last_io_ms = now_ms
        self._reader.feed(data)
        actions: list[LinkAction] = []
        try:
            while True:
                before = (self.state, self._reader.buffered, len(actions))
                if self.state == HANDSHAKE:
                    self._handshake_step(actions, now_ms)
                elif self.state == SYNC and not self.loading:
                    self._sync_step(actions, now_ms)
                elif self.state == CONNECTED:
                    getacks = self._getacks
                    self._stream(actions)
                    if self._getacks != getacks:
                        self._eager_until_ms = now_ms + EAGER_ACK_MS
                    if (
                        self.repl.master_repl_offset > self._ack_sent
                        and not self._getack_last
                        and now_ms < self._eager_until_ms
                    ):
                        # ackdb: while the primary's clients WAIT (it sent a GETACK in the
                        # last EAGER_ACK_MS), acknowledge what each read made us process at
                        # once, not only every second or on GETACK: the next WAIT is then
                        # often satisfied when it arrives (one round trip less). Not when
                        # the read ended with a GETACK just answered: only its own 37 bytes
                        # would be new, and no client waits for those. Without WAITs no
                        # extra ACK is sent (it would cost both sides a system call a read).
                        self._last_ack_ms = now_ms
                        actions.append(SendToPrimary(self._ack_command()))
                    break
                else:
                    break
                if (self.state, self._reader.buffered, len(actions)) == before:
                    break
        except LinkProtocolError as e:
            actions.append(Log("warning", f"Protocol error from primary: {e}"))
            actions += self._drop_link("protocol error", now_ms)
        return actions

    def _handshake_step(self, actions: list[LinkAction], now_ms: int) -> None:
        line = self._reader.read_line()
        if not line:
            return  # nothing yet, or a bare "\n" keep-alive (notes: skip empty lines)
        step = self._expect.popleft()
        if step == "ping":
            if not ping_reply_ok(line):
                actions.append(Log("warning", f"Error reply to PING from primary: '{line!r}'"))
                actions += self._drop_link("PING refused", now_ms)
                return
            cmds, expect = handshake_commands(self.config)
            self._expect.extend(expect)
            actions.append(SendToPrimary(cmds))
        elif step == "auth":
            if line.startswith(b"-"):
                actions.append(Log("warning", f"Unable to AUTH to PRIMARY: {line!r}"))
                actions += self._drop_link("AUTH refused", now_ms)
        elif step in ("port", "ip", "capa"):
            if line.startswith(b"-"):
                msg = f"(Non critical) Primary does not understand REPLCONF {step}: {line!r}"
                actions.append(Log("notice", msg))
            if not self._expect:
                self._expect.append("psync")
                replid = self.repl.replid if self.can_psync else None
                psync = psync_command(replid, self.repl.master_repl_offset, self.failover_psync)
                actions.append(SendToPrimary(psync))
        else:
            assert step == "psync"
            self._on_psync_reply(parse_psync_reply(line), actions, now_ms)

    def _on_psync_reply(
        self,
        reply: FullResyncReply | ContinueReply | PsyncRefused,
        actions: list[LinkAction],
        now_ms: int,
    ) -> None:
        if isinstance(reply, FullResyncReply):
            actions.append(PsyncReplied(True))
            # Redis discards the cached primary here: until this sync completes, a new
            # attempt can only ask for a full resync.
            self.can_psync = False
            self.transfer = SnapshotTransfer(reply.replid, reply.offset)
            self.state = SYNC
            actions.append(
                Log("notice", f"Full resync from primary: {reply.replid}:{reply.offset}")
            )
        elif isinstance(reply, ContinueReply):
            actions.append(PsyncReplied(True))
            self._on_continue(reply.replid, actions, now_ms)
        else:
            actions.append(PsyncReplied(False))
            actions.append(Log("notice", f"Primary cannot PSYNC now: {reply.line!r}"))
            actions += self._drop_link("PSYNC refused", now_ms)

    def _on_continue(self, new_id: str | None, actions: list[LinkAction], now_ms: int) -> None:
        if new_id is not None and new_id != self.repl.replid:
            # notes: a replica receiving +CONTINUE with a new id shifts like a promotion,
            # and disconnects its sub-replicas so they learn the new id.
            self.repl.shift_replid(new_id)
            actions.append(DisconnectReplicas("primary replication id changed"))
        self.repl.history_known = True  # the primary recognised our history
        self.repl.ensure_backlog(new_history=False)
        if self.stream_db:
            actions.append(Apply([[b"SELECT", b"%d" % self.stream_db]]))
        self._become_connected(actions, now_ms)
        msg = "PRIMARY <-> REPLICA sync: Primary accepted a Partial Resynchronization."
        actions.append(Log("notice", msg))

    def _become_connected(self, actions: list[LinkAction], now_ms: int) -> None:
        self.state = CONNECTED
        self.can_psync = True
        self._failures = 0
        self.link_down_since_ms = None
        self._in_multi = False
        # Acknowledge at once: the primary sees our offset without waiting a second.
        actions.append(SendToPrimary(self._ack_command()))
        self._last_ack_ms = now_ms

    # -- snapshot ---------------------------------------------------------------------

    def _sync_step(self, actions: list[LinkAction], now_ms: int) -> None:
        t = self.transfer
        assert t is not None
        try:
            actions += t.step(self._reader)
        except PrimaryAborted as e:
            actions.append(Log("warning", f"PRIMARY aborted replication with an error: {e}"))
            actions += self._drop_link("primary error", now_ms)
            return
        if t.done:
            # The bytes after the payload wait in the buffer until the shell has loaded
            # it and calls ``snapshot_loaded``.
            self.loading = True

    def snapshot_loaded(self, stream_db: int, now_ms: int) -> list[LinkAction]:
        """The shell replaced its dataset with the snapshot; ``stream_db`` is the db the
        primary's stream had selected at the snapshot (saved in it, as Redis saves
        repl-stream-db): the shell's new primary client starts there."""
        t = self.transfer
        assert self.state == SYNC and self.loading and t is not None, (self.state, self.loading)
        self.loading, self.transfer = False, None
        # Redis replicationAttachToNewMaster: sub-replicas resync with us, our old backlog
        # is meaningless; then we take the primary's id and offset.
        actions: list[LinkAction] = [DisconnectReplicas("full sync with our primary")]
        self.repl.adopt_primary_history(t.replid, t.offset)
        self.stream_db = self._unit_db = stream_db
        self._become_connected(actions, now_ms)
        actions.append(Log("notice", "PRIMARY <-> REPLICA sync: Finished with success"))
        self._stream(actions)
        return actions

    # -- stream -----------------------------------------------------------------------

    def _stream(self, actions: list[LinkAction]) -> None:
        reader = self._reader
        next_command = reader.next_command
        unit_end = -1
        # Consecutive commands travel as one Apply (one object per read, not per command).
        run: list[list[bytes]] | None = None
        while True:
            argv = next_command()
            if argv is None:
                break
            name = argv[0].lower()
            if name not in _STREAM_SPECIAL:
                # The common case (an effect outside MULTI, or queued in one), inlined:
                # about a third of a replica's time per command goes through here.
                self._getack_last = False
                if run is None:
                    run = [argv]
                    actions.append(Apply(run))
                else:
                    run.append(argv)
                if not self._in_multi:
                    unit_end = reader.command_end
                continue
            if name == b"replconf":
                if len(argv) > 1 and argv[1].lower() == b"getack":
                    # notes: the ACK answering a GETACK does not count the GETACK itself.
                    if unit_end >= 0:
                        self._count_processed(actions, unit_end)
                        unit_end = -1
                    actions.append(SendToPrimary(self._ack_command()))
                    run = None  # commands after the ACK are a new run, after it
                    self._getack_last = True
                    self._getacks += 1
            else:
                self._getack_last = False
                if run is None:
                    run = [argv]
                    actions.append(Apply(run))
                else:
                    run.append(argv)
                if name == b"select" and len(argv) == 2:
                    db = parse_ll(argv[1])
                    self._unit_db = self._unit_db if db is None else db
            if name == b"multi":
                self._in_multi = True
            elif name in (b"exec", b"discard"):
                self._in_multi = False
            if not self._in_multi:
                # Redis advances the processed offset after each command, but never inside
                # MULTI: a transaction is acknowledged, kept and passed on whole.
                unit_end = reader.command_end
                self.stream_db = self._unit_db
        if unit_end >= 0:
            self._count_processed(actions, unit_end)

    def _count_processed(self, actions: list[LinkAction], end_abs: int) -> None:
        raw = self._reader.take_until(end_abs)
        if raw:
            self.repl.append(raw)
            actions.append(Forward(raw))

    def _ack_command(self) -> bytes:
        """notes: REPLCONF ACK <offset> [FACK <aof_fsynced_offset>] (FACK when AOF is on)."""
        offset = self.repl.master_repl_offset
        self._ack_sent = offset
        argv = [b"REPLCONF", b"ACK", b"%d" % offset]
        if self.fsynced_offset is not None:
            fack = max(0, min(self.fsynced_offset, offset))
            argv += [b"FACK", b"%d" % fack]
            self._fack_sent = fack
        return encode_command(argv)

    # -- timers and durability --------------------------------------------------------

    def tick(self, now_ms: int) -> list[LinkAction]:
        """Reconnect, repl-timeout, and the ACK every ``ack_period_ms``."""
        if self.state == CONNECT:
            if self.frozen:
                return []
            return self._connect(now_ms) if now_ms >= self._next_connect_ms else []
        if self.state in (CONNECTING, HANDSHAKE, SYNC, CONNECTED):
            if now_ms - self._last_io_ms > self.config.repl_timeout_ms:
                what = {
                    CONNECTING: "Timeout connecting to the PRIMARY...",
                    HANDSHAKE: "Timeout connecting to the PRIMARY...",
                    SYNC: "Timeout receiving bulk data from PRIMARY...",
                    CONNECTED: "PRIMARY timeout: no data nor PING received...",
                }[self.state]
                return [Log("warning", what)] + self._drop_link("timeout", now_ms)
        if self.state == CONNECTED and now_ms - self._last_ack_ms >= self.config.ack_period_ms:
            self._last_ack_ms = now_ms
            return [SendToPrimary(self._ack_command())]
        return []

    def on_fsynced(self, offset: int | None, now_ms: int) -> list[LinkAction]:
        """The shell fsynced the AOF up to ``offset`` (None: AOF switched off).

        When the last FACK we sent is behind the new fsynced offset while the processed
        offset is ahead of that FACK, acknowledge at once: a WAITAOF on the primary is
        likely waiting for exactly this (Redis answers GETACK before its fsync, so the
        GETACK's FACK is stale under appendfsync always).
        """
        self.fsynced_offset = offset
        if offset is None or self.state != CONNECTED:
            return []
        if self._fack_sent < min(offset, self.repl.master_repl_offset):
            self._last_ack_ms = now_ms
            return [SendToPrimary(self._ack_command())]
        return []

    def ack_now(self, now_ms: int) -> list[LinkAction]:
        """Send an ACK at once (a client's REPLCONF GETACK on this replica)."""
        if self.state != CONNECTED:
            return []
        self._last_ack_ms = now_ms
        return [SendToPrimary(self._ack_command())]

    # -- introspection ----------------------------------------------------------------

    @property
    def role_state(self) -> str:
        return self.state

    def role_offset(self) -> int:
        """ROLE's offset: the processed offset while linked, -1 otherwise (Redis)."""
        return self.repl.master_repl_offset if self.state == CONNECTED else -1

    @property
    def last_io_ms(self) -> int:
        return self._last_io_ms

    @property
    def read_offset(self) -> int:
        """Stream bytes received: processed plus those waiting in the buffer."""
        return self.repl.master_repl_offset + self._reader.buffered
