"""Client-side caching: CLIENT TRACKING's tables and its invalidation messages.

Owns: which client was told about which key (the default mode: the keys read by tracking
clients' read-only commands, OPTIN / OPTOUT deciding with CLIENT CACHING), the BCAST
prefixes, and the ``invalidate`` messages: a RESP3 push on the client's own connection,
or on the REDIRECT client's (a push in RESP3; in RESP2 a ``message`` on
``__redis__:invalidate`` when that client is subscribed to anything), ``tracking-redir-
broken`` when the redirect client is gone; a null key list to every tracking client when a
database is flushed. Redis 7.2's order: a client told about a key it changed itself (no
NOLOOP) gets the message after the reply of the command that changed it.

How it reaches writes without costing them anything while nobody tracks: a remembered
key is registered in every database's WATCH map (``Database.watched``) under the marker
``TRACKER``, so the keyspace's existing "was a watched key touched?" check is the only
hook; BCAST prefixes replace the WATCH maps by ``TouchAll`` maps, which make every change
reach ``on_touched``, only while a BCAST client exists. Tracking clients take the core's
checked path (``Client.gate``), where ``after_command`` runs. Like Redis's table, keys are
names without a database: a change in any database invalidates.

Differences from Redis (docs/compat.md): BCAST messages go out per changed key at once
(Redis gathers one event-loop pass's keys per prefix); the table's limit
(``tracking-table-max-keys``) evicts the oldest keys first, not random ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..keyspace.db import TouchAll
from ..resp import encoder as enc

if TYPE_CHECKING:
    from ..commandtable import Command
    from .client import Client

CHANNEL = b"__redis__:invalidate"


class _Tracker:
    """The marker a tracked key holds in the WATCH maps."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "TRACKER"


TRACKER: Any = _Tracker()


@dataclass(slots=True)
class TrackingState:
    """One client's CLIENT TRACKING settings (present while tracking is on)."""

    redirect: int = 0
    bcast: bool = False
    optin: bool = False
    optout: bool = False
    noloop: bool = False
    caching: bool = False  # CLIENT CACHING given for the next command
    broken_redirect: bool = False
    prefixes: list[bytes] = field(default_factory=list)
    pending: list[bytes] = field(default_factory=list)  # messages after the current reply


class Tracking:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.table: dict[bytes, set[int]] = {}  # key -> ids of clients told about it
        self.prefixes: dict[bytes, set[Client]] = {}  # BCAST prefix -> clients
        self.clients = 0  # clients with tracking on
        self.items = 0  # (key, client) pairs in the table
        self.current: Client | None = None  # the tracking client whose command runs

    # -- settings -------------------------------------------------------------------------

    def enable(self, c: Client, redirect: int, opts: set[bytes], prefixes: list[bytes]) -> None:
        old = c.tracking
        if old is None:
            self.clients += 1
        # Redis enableTracking: the flags start again, BCAST prefixes accumulate.
        c.tracking = st = TrackingState(redirect, prefixes=[] if old is None else old.prefixes)
        st.optin, st.optout, st.noloop = b"optin" in opts, b"optout" in opts, b"noloop" in opts
        if b"bcast" in opts:
            st.bcast = True
            for p in prefixes or [b""]:
                if p not in st.prefixes:
                    st.prefixes.append(p)
                self.prefixes.setdefault(p, set()).add(c)
            self._bcast_maps()
        c.refresh_gate()

    def disable(self, c: Client) -> None:
        st = c.tracking
        if st is None:
            return
        for p in st.prefixes:
            members = self.prefixes.get(p)
            if members is not None:
                members.discard(c)
                if not members:
                    del self.prefixes[p]
        self._bcast_maps()
        self.clients -= 1
        c.tracking = None
        c.refresh_gate()

    def _bcast_maps(self) -> None:
        """WATCH maps that pass every change on while a BCAST prefix exists."""
        want = TouchAll if self.prefixes else dict
        for db in self.server.dbs:
            if db.watched.__class__ is not want:
                db.watched = want(db.watched)

    # -- the default mode -------------------------------------------------------------------

    def remember(self, c: Client, cmd: Command, argv: list[bytes]) -> None:
        """After a read-only command of a tracking client: remember the keys it read."""
        st = c.tracking
        assert st is not None
        if st.bcast or (st.optin and not st.caching) or (st.optout and st.caching):
            return
        table = self.table
        for key in (argv[i] for i in cmd.key_positions(argv)):
            ids = table.get(key)
            if ids is None:
                ids = table[key] = set()
                for db in self.server.dbs:
                    db.watched.setdefault(key, set()).add(TRACKER)
            if c.id not in ids:
                ids.add(c.id)
                self.items += 1
        limit = int(self.server.config.get("tracking-table-max-keys"))
        while limit and len(table) > limit:
            self.invalidate(next(iter(table)), None)

    def _forget(self, key: bytes) -> set[int]:
        ids = self.table.pop(key, set())
        self.items -= len(ids)
        for db in self.server.dbs:
            watchers = db.watched.get(key)
            if watchers is not None:
                watchers.discard(TRACKER)
                if not watchers:
                    del db.watched[key]
        return ids

    def invalidate(self, key: bytes, by: Client | None) -> None:
        """``key`` changed (``by`` the client whose command changed it, if one)."""
        if self.prefixes:
            self._broadcast(key, by)
        if key not in self.table:
            return
        clients = self.server.clients
        for cid in self._forget(key):
            target = clients.get(cid)
            st = None if target is None else target.tracking
            if target is None or st is None or st.bcast or (st.noloop and target is by):
                continue
            self.send(target, [key])

    def _broadcast(self, key: bytes, by: Client | None) -> None:
        for prefix, members in self.prefixes.items():
            if key.startswith(prefix):
                for target in list(members):
                    st = target.tracking
                    if st is not None and not (st.noloop and target is by):
                        self.send(target, [key])

    def flush(self) -> None:
        """FLUSHDB / FLUSHALL: every tracking client is told to drop everything."""
        for key in list(self.table):
            self._forget(key)
        for c in list(self.server.clients.values()):
            if c.tracking is not None:
                self.send(c, None)

    def client_gone(self, c: Client) -> None:
        self.disable(c)

    # -- messages -------------------------------------------------------------------------

    def send(self, c: Client, keys: list[bytes] | None) -> None:
        """One invalidation message about ``keys`` (None: everything) for tracking client
        ``c``, on its own connection or its redirect's (sendTrackingMessage)."""
        st = c.tracking
        assert st is not None
        target = c
        if st.redirect:
            redir = self.server.clients.get(st.redirect)
            if redir is None:
                st.broken_redirect = True
                if c.resp > 2:
                    frame = c.p.push_header(2) + enc.bulk(b"tracking-redir-broken")
                    self._deliver(c, frame + enc.integer(st.redirect))
                return
            target = redir
        body = c.p.null if keys is None else enc.bulk_array(keys)
        if target.resp > 2:
            frame = target.p.push_header(2) + enc.bulk(b"invalidate") + body
        elif st.redirect and target.subscriptions:
            frame = b"*3\r\n$7\r\nmessage\r\n" + enc.bulk(CHANNEL) + body
        else:
            return  # RESP2 without a subscribed redirect: nowhere to say it
        self._deliver(target, frame)

    def _deliver(self, target: Client, frame: bytes) -> None:
        st = target.tracking
        if target is self.current and st is not None:
            st.pending.append(frame)  # after the reply of its running command
        else:
            target.conn.write(frame)

    def after_command(self, c: Client, argv: list[bytes], reply: bytes) -> bytes:
        """The reply of a tracking client's command with the messages it caused for itself
        after it; CLIENT CACHING's flag lasts for one command (CLIENT itself and MULTI's
        queue keep it, as in Redis)."""
        st = c.tracking
        self.current = None
        if st is None:
            return reply
        if st.caching and c.multi is None and argv[0].lower() != b"client":
            st.caching = False
        if st.pending:
            reply += b"".join(st.pending)
            st.pending.clear()
        return reply
