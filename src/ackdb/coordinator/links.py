"""One pipelined connection from the coordinator to one replica.

SHELL MODULE (asyncio). Owns: connecting (AUTH with the shards' password first, alone:
a server parses an unauthenticated client's input with tight limits), sending commands
and matching replies in order (a FIFO of futures), reconnecting with backoff, and failing
every request in flight when the connection fails or closes (the runner turns that into
``on_failure``). Requests sent while it connects wait in a buffer; while it is down
between attempts, requests fail at once. A connection made after the link was closed
(or superseded by a newer attempt) is closed at once, never kept or left unclosed. A
caller that stops waiting (its deadline) leaves its future cancelled: its reply, when it
comes, is dropped in its turn, so later replies still match.

Limits: ``BACKOFF_MS_MIN`` .. ``BACKOFF_MS_MAX`` between connection attempts (doubling);
``CONNECT_TIMEOUT_S``; ``IN_FLIGHT_MAX`` requests without a reply (a replica that stopped
answering, e.g. SIGSTOPped, whose callers gave up at their deadlines): past it the
connection is dropped, failing them all, and made again. ``STALL_S``: a connection
with requests in flight that received nothing for that long is dropped at the next call
and made again -- after a partition heals, a fresh connection answers at once, while the
old one waits for TCP's retransmission backoff (seconds after a cut of a few seconds).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, cast

from ..resp.replies import NEED_DATA, ReplyError, ReplyReader
from ..resp.request import Arg, pack

BACKOFF_MS_MIN = 100
BACKOFF_MS_MAX = 2000
CONNECT_TIMEOUT_S = 2.0
IN_FLIGHT_MAX = 100_000
STALL_S = 3.0


class LinkDown(ConnectionError):
    pass


class _Conn(asyncio.Protocol):
    """One TCP connection of a ``Link``: passes its events on only while it is the
    link's current connection (a dropped one's late ``connection_lost`` must not take
    down the connection made after it)."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.link.transport = self.transport

    def data_received(self, data: bytes) -> None:
        if self.link.transport is self.transport:
            self.link.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.link.transport is self.transport:
            self.link.connection_lost(exc)


class Link:
    def __init__(self, addr: tuple[str, int], password: bytes | None) -> None:
        self.addr = addr
        self.password = password
        self.transport: asyncio.Transport | None = None
        self.ready = False  # connected and authenticated
        self.connecting = False
        self.buffer: list[bytes] = []
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.reader = ReplyReader()
        self.retry_at = 0.0
        self.backoff_ms = BACKOFF_MS_MIN
        self.closed = False
        self._auth: asyncio.Future[Any] | None = None
        self.progress_at = 0.0  # last reply received, or the first request of an idle link

    def call(self, *args: Arg) -> asyncio.Future[Any]:
        """The reply's future (a ``ReplyError`` value for an error reply); fails with
        ``LinkDown`` when the replica cannot be reached."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        now = time.monotonic()
        if len(self.waiting) >= IN_FLIGHT_MAX:
            self._down(ConnectionError(f"{IN_FLIGHT_MAX} requests without a reply"))
        elif self.ready and self.waiting and now - self.progress_at > STALL_S:
            self._down(ConnectionError(f"no reply for {STALL_S:g} s"))
        if not self.waiting:
            self.progress_at = now
        if self.ready and self.transport is not None:
            self.transport.write(pack(*args))
            self.waiting.append(fut)
            return fut
        if not self.connecting:
            if time.monotonic() < self.retry_at or self.closed:
                fut.set_exception(LinkDown(f"replica {self.addr[0]}:{self.addr[1]} is down"))
                return fut
            self._connect()
        self.buffer.append(pack(*args))
        self.waiting.append(fut)
        return fut

    def _connect(self) -> None:
        self.connecting = True
        task = asyncio.get_running_loop().create_task(self._open())
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: _Conn(self), *self.addr), CONNECT_TIMEOUT_S
            )
            if self.closed or self.transport is not transport:
                # Closed (or dropped and connecting again) while this attempt connected:
                # the connection is no one's; close it rather than leave it open.
                transport.close()
                if self.transport is transport:
                    self.transport = None
                return
            if self.password is not None:
                self._auth = loop.create_future()
                assert self.transport is not None
                self.transport.write(pack("AUTH", self.password))
                reply = await asyncio.wait_for(self._auth, CONNECT_TIMEOUT_S)
                if isinstance(reply, ReplyError):
                    raise ConnectionError(f"AUTH refused: {reply}")
        except (OSError, TimeoutError, ConnectionError) as e:
            self._down(e)
            return
        self.connecting = False
        self.ready = True
        self.backoff_ms = BACKOFF_MS_MIN
        if self.buffer and self.transport is not None:
            self.transport.write(b"".join(self.buffer))
        self.buffer = []

    def _down(self, exc: BaseException | None) -> None:
        """Fail everything in flight; the next attempt after the backoff."""
        was_ready = self.ready
        self.ready = self.connecting = False
        t, self.transport = self.transport, None
        if t is not None:
            t.close()
        self.buffer = []
        self.reader = ReplyReader()
        if self._auth is not None and not self._auth.done():
            self._auth.set_exception(ConnectionError("connection closed"))
        self._auth = None
        err = LinkDown(f"replica {self.addr[0]}:{self.addr[1]}: {exc or 'connection closed'}")
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(err)
        if not was_ready:
            self.retry_at = time.monotonic() + self.backoff_ms / 1000
            self.backoff_ms = min(BACKOFF_MS_MAX, self.backoff_ms * 2)

    # -- the current connection's events (from _Conn) ---------------------------------

    def data_received(self, data: bytes) -> None:
        self.progress_at = time.monotonic()
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.get()
            except Exception as e:  # a malformed stream: drop the connection
                self._down(e)
                return
            if reply is NEED_DATA:
                return
            if self._auth is not None and not self._auth.done():
                self._auth.set_result(reply)
                continue
            if not self.waiting:
                self._down(ConnectionError("unexpected reply"))
                return
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None or self.connecting or self.ready:
            self._down(exc)

    def close(self) -> None:
        self.closed = True
        self._down(None)
