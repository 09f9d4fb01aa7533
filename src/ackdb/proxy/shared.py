"""The endpoint's shared connection to one shard (docs/proxy.md, shard connections).

SHELL MODULE: one socket. Plain requests of many clients are queued here during an event
loop pass and written at its end in one write; a FIFO of (client, sink) matches the
shard's replies back, in order, to the clients' sessions (``Session.mux_reply``, then
``mux_settled`` once per client and batch). The session core decides what may go here;
this module never looks inside requests or replies beyond where each reply ends.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from typing import TYPE_CHECKING, cast

from .failover import FENCED_MARK, GONE, RO_MARK, refused
from .replies import ReplyProtocolError, ReplySplitter
from .session import Sink

if TYPE_CHECKING:
    from .shell import ClientConn, Endpoint

SHARD_WRITE_HIGH_BYTES = 1024 * 1024


class SharedConn(asyncio.Protocol):
    """The endpoint's shared connection to one shard (RESP2, authenticated): requests of
    many clients, written once per loop pass; replies matched back through the FIFO."""

    def __init__(self, endpoint: Endpoint, shard: int, addr: tuple[str, int]) -> None:
        self.endpoint = endpoint
        self.shard = shard
        self.addr = addr
        self.transport: asyncio.Transport | None = None
        self.splitter = ReplySplitter()
        self.clients: collections.deque[ClientConn | None] = collections.deque()
        self.sinks: collections.deque[Sink] = collections.deque()
        self.out: list[bytes] = []
        self.scheduled = False
        self.closed = False
        self.paused = False
        self.loop = asyncio.get_running_loop()
        # AUTH goes alone, the rest after its reply: a shard parses a whole read with an
        # unauthenticated client's limits (no request of more than 10 arguments).
        self.auth = b""
        pw = endpoint.shard_password
        if pw is not None:  # its reply is swallowed
            self.auth = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw)
            self.clients.append(None)
            self.sinks.append(None)

    def send(self, client: ClientConn, data: bytes, sinks: list[Sink]) -> None:
        self.out.append(data)
        if len(sinks) == 1:
            self.clients.append(client)
            self.sinks.append(sinks[0])
        else:
            self.clients.extend(itertools.repeat(client, len(sinks)))
            self.sinks.extend(sinks)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        t = self.transport
        if t is None or self.closed or self.auth:
            return
        if not self.out:
            return
        out = self.out
        t.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=SHARD_WRITE_HIGH_BYTES)
        if self.closed:
            self.transport.close()
            return
        if self.auth:
            self.transport.write(self.auth)
            return
        self.flush()

    def data_received(self, data: bytes) -> None:
        split = self.splitter.pending_bytes()  # a reply may have begun in an earlier read
        try:
            raws = self.splitter.feed(data)
        except (ReplyProtocolError, ValueError) as e:
            self.endpoint.log.warning(f"shard {self.addr}: bad reply stream ({e}); dropping it")
            self.close()
            return
        if (split or RO_MARK in data or FENCED_MARK in data) and any(map(refused, raws)):
            self.endpoint.stale_hint(self.shard)  # a demoted (or fenced) primary refused
            self._replies_checked(raws)
            return
        clients, sinks, shard = self.clients, self.sinks, self.shard
        settled: dict[ClientConn, None] = {}
        for raw in raws:
            if not clients:  # a reply nobody asked for: the stream is not ours to trust
                self._unexpected()
                break
            c = clients.popleft()
            sink = sinks.popleft()
            if c is None:
                self._authenticated(raw)
                continue
            c.session.mux_reply(shard, sink, raw)
            settled[c] = None
        for c in settled:
            c.mux_settled()

    def _replies_checked(self, raws: list[bytes]) -> None:
        """``data_received``'s loop when some replies are refusals (``_refused``): kept
        apart so the usual loop tests nothing more per reply."""
        clients, sinks, shard = self.clients, self.sinks, self.shard
        settled: dict[ClientConn, None] = {}
        for raw in raws:
            if not clients:
                self._unexpected()
                break
            c = clients.popleft()
            sink = sinks.popleft()
            if c is None:
                self._authenticated(raw)
                continue
            if refused(raw):
                self._refused(c, sink, raw)
            else:
                c.session.mux_reply(shard, sink, raw)
            settled[c] = None
        for c in settled:
            c.mux_settled()

    def _unexpected(self) -> None:
        self.endpoint.log.warning(f"shard {self.addr}: an unexpected reply; dropping it")
        self.close()

    def _authenticated(self, raw: bytes) -> None:
        """AUTH's reply (swallowed): what waited for it goes."""
        if raw[:1] == b"-":
            self.endpoint.log.warning(f"shard {self.addr}: {raw.strip().decode()!r}")
        self.auth = b""
        self.flush()

    def _refused(self, c: ClientConn, sink: Sink, raw: bytes) -> None:
        """``c``'s request was refused as demoted or fenced: its session sends it again
        with what it has in flight behind it here, whose replies are then dropped."""
        later = [x for owner, x in zip(self.clients, self.sinks, strict=True) if owner is c]
        taken = c.session.mux_refused(self.shard, sink, raw, later)
        if taken:  # (in place: ``data_received`` holds the deque)
            ids = {id(x) for x in taken}
            items = list(self.sinks)
            self.sinks.clear()
            self.sinks.extend(
                GONE if owner is c and id(x) in ids else x
                for owner, x in zip(self.clients, items, strict=True)
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def pause_writing(self) -> None:
        self.paused = True
        self.endpoint.shared_paused(+1)

    def resume_writing(self) -> None:
        if self.paused:
            self.paused = False
            self.endpoint.shared_paused(-1)

    def close(self) -> None:
        """Close it; what it owed gets ``LOST``, or is sent again when the shard is failing
        over (``Session.mux_lost``); the next request opens a new one."""
        if self.closed:
            return
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self.endpoint.forget_shared(self)
        self.resume_writing()
        owed: dict[ClientConn, list[Sink]] = {}
        clients, sinks, shard = self.clients, self.sinks, self.shard
        while clients:
            c = clients.popleft()
            sink = sinks.popleft()
            if c is not None:
                owed.setdefault(c, []).append(sink)
        for c, lost in owed.items():
            if not c.closed:
                c.session.mux_lost(shard, lost)
                c.mux_settled()
