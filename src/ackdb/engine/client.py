"""One connected client's session state.

Owns: what Redis keeps per client — id, name, selected database, protocol version,
authentication, MULTI queue and WATCHed keys, the request reader, flags for CLIENT LIST,
and the pending commands of a client held by CLIENT PAUSE. Never writes to a socket
itself: ``conn`` is the shell's handle (``write``, ``close``, ``buffer_size``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..keyspace.db import Database
from ..resp.encoder import RESP2, Resp2
from ..resp.reader import RequestReader
from .conn import Conn as Conn
from .conn import NullConn as NullConn

# CLIENT REPLY modes (Client.reply_mode).
REPLY_ON, REPLY_OFF, REPLY_SKIP, REPLY_SKIP_NEXT = range(4)

if TYPE_CHECKING:
    from ..acl import User
    from .blocking import BlockedState
    from .core import Server
    from .dispatch import Entry
    from .tracking import TrackingState


class Client:
    __slots__ = (
        "id",
        "server",
        "conn",
        "db",
        "p",
        "resp",
        "name",
        "lib_name",
        "lib_ver",
        "authenticated",
        "user",
        "acl_limited",
        "addr",
        "laddr",
        "fd",
        "created_ms",
        "last_ms",
        "kind",
        "reader",
        "_multi",
        "gate",
        "multi_error",
        "watched",
        "dirty_cas",
        "close_after_reply",
        "closed",
        "prop",
        "last_cmd",
        "pending",
        "blocked_since_ms",
        "blocked",
        "block_deadline_ms",
        "monitor",
        "subscriptions",
        "channels",
        "patterns",
        "shard_channels",
        "out_soft_since_ms",
        "no_evict",
        "no_touch",
        "woff",
        "reply_mode",
        "tracking",
        "__weakref__",
    )

    def __init__(self, client_id: int, server: Server, conn: Conn, addr: str, laddr: str, fd: int):
        self.id = client_id
        self.server = server
        self.conn = conn
        self.db: Database = server.dbs[0]
        self.p: Resp2 = RESP2
        self.resp = 2
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        acl = server.acl
        self.authenticated = acl.default_open()
        # The ACL user (None: an internal client, which may run anything), and whether
        # its commands must be checked (``engine.access``: decided per login, not per
        # command).
        self.user: User | None = acl.default
        self.acl_limited = not acl.default.unrestricted
        self.addr = addr
        self.laddr = laddr
        self.fd = fd
        now = server.now_ms()
        self.created_ms = now
        self.last_ms = now
        self.kind = "normal"  # normal | replica | pubsub | master (CLIENT KILL TYPE)
        cfg = server.config
        self.reader = RequestReader(
            cfg.get("proto-max-bulk-len"),
            cfg.get("client-query-buffer-limit"),
            self.authenticated,
            stepwise=True,
        )
        self._multi: list[tuple[Entry, list[bytes]]] | None = None
        # True when a command of this client must take the core's checked path: not
        # authenticated, inside MULTI, in RESP2 subscribed mode, or limited by its ACL user.
        self.gate = not self.authenticated or self.acl_limited
        self.multi_error = False
        # (db index, key) -> whether the key was already logically expired when watched
        self.watched: dict[tuple[int, bytes], bool] = {}
        self.dirty_cas = False
        self.close_after_reply = False
        self.closed = False
        self.prop: list[list[bytes]] | None = None  # effects to propagate instead of argv
        self.last_cmd = "NULL"
        self.pending: list[list[bytes]] = []  # commands held by CLIENT PAUSE
        self.blocked_since_ms = 0
        self.blocked: BlockedState | None = None  # while waiting on keys (BLPOP...)
        self.block_deadline_ms = 0  # kept across re-blocks of one command
        self.monitor = False
        # channels + patterns + shard channels: nonzero puts the client in Pub/Sub mode
        # (Redis's CLIENT_PUBSUB). The (un)subscribe replies count the classic channels and
        # patterns, or the shard channels, separately (as Redis 7.0 does).
        self.subscriptions = 0
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard_channels: dict[bytes, None] = {}
        self.out_soft_since_ms = 0
        self.no_evict = False
        self.no_touch = False
        # The write offset after this client's last write (master_repl_offset numbering):
        # what WAIT / WAITAOF wait for, and what appendfsync always must fsync first.
        self.woff = 0
        # CLIENT REPLY: REPLY_ON, or OFF / SKIP / SKIP_NEXT (the gated path mutes replies).
        self.reply_mode = REPLY_ON
        self.tracking: TrackingState | None = None  # CLIENT TRACKING settings while on

    @property
    def multi(self) -> list[tuple[Entry, list[bytes]]] | None:
        """The queued commands of an open MULTI, or None."""
        return self._multi

    @multi.setter
    def multi(self, queued: list[tuple[Entry, list[bytes]]] | None) -> None:
        self._multi = queued
        self.refresh_gate()

    def refresh_gate(self) -> None:
        self.subscriptions = len(self.channels) + len(self.patterns) + len(self.shard_channels)
        if self.kind in ("normal", "pubsub"):
            self.kind = "pubsub" if self.subscriptions else "normal"
        self.gate = (
            self._multi is not None
            or not self.authenticated
            or self.acl_limited
            or (self.subscriptions > 0 and self.resp == 2)
            or self.reply_mode != REPLY_ON
            or self.tracking is not None
        )

    def set_authenticated(self, ok: bool) -> None:
        self.authenticated = ok
        self.reader.authenticated = ok
        self.refresh_gate()

    def flags(self) -> str:
        f = ""
        if self.kind == "replica":
            f += "S"
        if self.kind == "master":
            f += "M"
        if self.monitor:
            f += "O"
        if self.subscriptions:
            f += "P"
        if self.multi is not None:
            f += "x"
        if self.dirty_cas:
            f += "d"
        if self.close_after_reply:
            f += "c"
        if self.pending or self.blocked_since_ms or self.blocked is not None:
            f += "b"
        if self.tracking is not None:  # Redis: t, R, B after b
            f += "t" + "R" * self.tracking.broken_redirect + "B" * self.tracking.bcast
        if self.no_evict:
            f += "e"
        if self.no_touch:
            f += "T"
        return f or "N"
