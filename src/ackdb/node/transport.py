"""Peer links of the node agent: one outbound TCP connection per peer, and a listener.

Owns: dialling peers, queueing frames for them, reconnecting with back-off, and reading
the frames peers send us. It never interprets a frame beyond peerframes' checks: every
frame goes to the agent's ``on_frame(peer_id, frame)``.

Every connection opens with peerauth.py's handshake: both ends prove they hold the
cluster secret before any frame is accepted (inbound) or sent (outbound); a refused
handshake closes the connection, is counted (``auth_refused`` inbound, ``auth_failed``
outbound) and logged -- at most ``REFUSAL_LOG_MAX_LINES`` lines per
``REFUSAL_LOG_WINDOW_MS`` (a scanner cannot flood the log). After the handshake frames
cost what they did before it.

Per outbound link (``PeerLink``), states:
    IDLE -> CONNECTING -> HANDSHAKE -> CONNECTED -> (lost) BACKOFF -> CONNECTING ...
    CLOSED at the end
- a link dials on its first frame and stays up; a failed dial, a failed handshake or a
  lost connection waits ``BACKOFF_MIN_MS`` doubling up to ``BACKOFF_MAX_MS`` (with
  jitter), then dials again; only an authenticated link counts as up (for the back-off's
  reset after ``LINK_STABLE_MS`` and for ``connected``), and frames queue until then;
- frames wait in a bounded queue (``PEER_QUEUE_MAX_FRAMES`` frames and
  ``PEER_QUEUE_MAX_BYTES`` bytes). When it is full the OLDEST frames are dropped: Raft
  tolerates loss and its newest messages supersede older ones (a later heartbeat, a later
  append); drops are counted;
- back-pressure: while the socket's write buffer is above ``WRITE_HIGH_WATER_BYTES`` the
  queue is not drained (it fills and drops instead of growing memory).

Inbound connections are inbound.py's ``InboundConnection``; ``Transport`` holds them and
the listener.
"""

from __future__ import annotations

import asyncio
import enum
import random
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ackdb.node import peerauth
from ackdb.node.inbound import InboundConnection
from ackdb.node.peerauth import (
    NONCE_BYTES,
    Authenticated,
    Dialer,
    LogBudget,
    Nonces,
    Send,
    State,
)
from ackdb.node.peerframes import Frame, parse_addr
from ackdb.server.log import Log

# Frames waiting for one peer (count) and their size (bytes); the oldest go first.
PEER_QUEUE_MAX_FRAMES = 8192
PEER_QUEUE_MAX_BYTES = 64 * 1024 * 1024
# Socket write buffer above which a link stops draining its queue (bytes).
WRITE_HIGH_WATER_BYTES = 1024 * 1024
WRITE_LOW_WATER_BYTES = 256 * 1024
# Bytes joined into one socket write.
WRITE_BATCH_BYTES = 1024 * 1024
# Reconnect back-off (ms): doubles from min to max; the wait is scaled by 0.5..1.0.
BACKOFF_MIN_MS = 50
BACKOFF_MAX_MS = 2000
# A connection that lived this long was healthy: its loss restarts the back-off (ms).
# One that dies sooner (a peer or proxy that accepts and closes) keeps backing off.
LINK_STABLE_MS = 500
CONNECT_TIMEOUT_MS = 1000
# Refused handshakes logged per window (lines, ms); the rest are counted in the next line.
REFUSAL_LOG_MAX_LINES = 10
REFUSAL_LOG_WINDOW_MS = 60_000

OnFrame = Callable[[str, Frame], None]
OnUnreachable = Callable[[str], None]


class LinkState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    HANDSHAKE = "handshake"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    CLOSED = "closed"


class PeerLink:
    """The outbound link to one peer; see the module docstring."""

    def __init__(self, owner: Transport, peer_id: str, addr: str) -> None:
        self.owner = owner
        self.peer_id = peer_id
        self.addr = addr
        self.state = LinkState.IDLE
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.sent_frames = 0
        self.dropped_frames = 0
        self.connects = 0  # TCP connections made (authenticated or not)
        self.failures = 0  # consecutive failed dials or short-lived connections
        self._connected_at = 0.0
        self._reported_up = False
        self._transport: asyncio.Transport | None = None
        self._auth: Dialer | None = None  # during the handshake
        self._paused = False
        self._flush_scheduled = False
        self._task: asyncio.Task[None] | None = None

    # -- sending --

    def send(self, frame: bytes) -> None:
        if self.state is LinkState.CLOSED:
            return
        self.queue.append(frame)
        self.queued_bytes += len(frame)
        while len(self.queue) > 1 and (
            len(self.queue) > PEER_QUEUE_MAX_FRAMES or self.queued_bytes > PEER_QUEUE_MAX_BYTES
        ):
            old = self.queue.popleft()
            self.queued_bytes -= len(old)
            self.dropped_frames += 1
        if self.state is LinkState.CONNECTED:
            self._schedule_flush()
        elif self.state is LinkState.IDLE:
            self._dial_later(0.0)

    def _schedule_flush(self) -> None:
        # Frames of one event-loop pass leave in one write.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.owner.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        t = self._transport
        if t is None or self._paused or self.state is not LinkState.CONNECTED or t.is_closing():
            return  # (never a frame before the handshake: CONNECTED means authenticated)
        q = self.queue
        while q and not self._paused:
            batch: list[bytes] = []
            size = 0
            while q and size < WRITE_BATCH_BYTES:
                f = q.popleft()
                batch.append(f)
                size += len(f)
            self.queued_bytes -= size
            self.sent_frames += len(batch)
            t.write(batch[0] if len(batch) == 1 else b"".join(batch))  # may pause us

    # -- connection life --

    def _dial_later(self, delay_s: float) -> None:
        self.state = LinkState.CONNECTING if delay_s <= 0 else LinkState.BACKOFF
        self._task = self.owner.loop.create_task(self._dial(delay_s))

    async def _dial(self, delay_s: float) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        if self.state is LinkState.CLOSED:
            return
        self.state = LinkState.CONNECTING
        try:
            host, port = parse_addr(self.addr)
            await asyncio.wait_for(
                self.owner.loop.create_connection(lambda: _OutboundProtocol(self), host, port),
                CONNECT_TIMEOUT_MS / 1000,
            )
        except (OSError, TimeoutError, ValueError) as e:
            if self.failures == 0:
                self.owner.log.verbose(f"Peer {self.peer_id} at {self.addr} unreachable: {e}")
            self._lost()

    def on_connected(self, transport: asyncio.Transport) -> None:
        if self.state is LinkState.CLOSED:
            transport.close()
            return
        self._transport = transport
        self._paused = False
        transport.set_write_buffer_limits(WRITE_HIGH_WATER_BYTES, WRITE_LOW_WATER_BYTES)
        self.state = LinkState.HANDSHAKE
        self.connects += 1
        o = self.owner
        auth = self._auth = Dialer(o.node_id, o.advertise_addr, self.peer_id, o.key, o.nonces)
        transport.write(auth.start())
        o.loop.call_later(peerauth.HANDSHAKE_TIMEOUT_MS / 1000, self._handshake_deadline, auth)

    def _handshake_deadline(self, auth: Dialer) -> None:
        if self._auth is not auth:
            return
        silent = auth.state is State.CHALLENGE_WAIT
        refused = auth.expire()
        if refused is None:
            return
        if silent:  # nothing came back: a lost network more likely than a stranger
            self._auth = None
            if self.failures == 0:
                self.owner.log.verbose(f"Peer {self.peer_id} at {self.addr}: {refused.reason}")
            if self._transport is not None:
                self._transport.abort()
        else:
            self._refused(refused.reason)

    def on_data(self, data: bytes) -> None:
        auth = self._auth
        if auth is None:
            # Peers never write on a connection we dialled once it is authenticated.
            self.garbage(f"unexpected {len(data)} bytes on an outbound link")
            return
        for action in auth.receive_data(data):
            if isinstance(action, Send):
                if self._transport is not None:
                    self._transport.write(action.data)
            elif isinstance(action, Authenticated):
                self._authenticated()
            else:
                self._refused(action.reason)

    def _authenticated(self) -> None:
        self._auth = None
        self.state = LinkState.CONNECTED
        self._connected_at = self.owner.loop.time()
        if self.failures and not self._reported_up:
            self.owner.log.notice(f"Peer {self.peer_id} at {self.addr} connected")
            self._reported_up = True
        self._schedule_flush()

    def _refused(self, reason: str) -> None:
        self._auth = None
        self.owner.auth_failed += 1
        self.owner.log_refusal(f"Cannot link to peer {self.peer_id} at {self.addr}: {reason}")
        if self._transport is not None:
            self._transport.abort()

    def on_pause(self, paused: bool) -> None:
        self._paused = paused
        if not paused:
            self._schedule_flush()

    def on_lost(self) -> None:
        self._transport = None
        auth, self._auth = self._auth, None
        if auth is not None:
            if auth.state is State.PROOF_WAIT:  # it heard our proof and hung up
                self._refused(auth.lost_reason())
            elif self.failures == 0:  # a peer going away, a proxy refusing: a lost link
                self.owner.log.verbose(f"Peer {self.peer_id} at {self.addr}: {auth.lost_reason()}")
        self._lost()

    def _lost(self) -> None:
        if self.state is LinkState.CLOSED:
            return
        now = self.owner.loop.time()
        if self._connected_at and now - self._connected_at >= LINK_STABLE_MS / 1000:
            self.failures = 0
            self._reported_up = False
        self._connected_at = 0.0
        self.failures += 1
        self.owner.on_unreachable(self.peer_id)
        backoff_ms = min(BACKOFF_MAX_MS, BACKOFF_MIN_MS << min(self.failures - 1, 16))
        self._dial_later(backoff_ms * self.owner.rng.uniform(0.5, 1.0) / 1000)

    def garbage(self, what: str) -> None:
        self.owner.log.warning(f"Closing link to peer {self.peer_id} ({self.addr}): {what}")
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        self.state = LinkState.CLOSED
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._task is not None:
            self._task.cancel()
        self.queue.clear()
        self.queued_bytes = 0


class _OutboundProtocol(asyncio.Protocol):
    def __init__(self, link: PeerLink) -> None:
        self.link = link

    def connection_made(self, transport: Any) -> None:
        self.link.on_connected(transport)

    def data_received(self, data: bytes) -> None:
        self.link.on_data(data)

    def pause_writing(self) -> None:
        self.link.on_pause(True)

    def resume_writing(self) -> None:
        self.link.on_pause(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.on_lost()


class Transport:
    """All peer links of one member, its listener and its address book."""

    def __init__(
        self,
        node_id: str,
        advertise_addr: str,
        log: Log,
        on_frame: OnFrame,
        on_unreachable: OnUnreachable,
        rng: random.Random,
        key: bytes,
        nonces: Nonces = lambda: secrets.token_bytes(NONCE_BYTES),
    ) -> None:
        """``key``: peerauth.peer_key of the cluster secret; ``nonces``: the handshakes'
        random nonces (injected for tests)."""
        self.node_id = node_id
        self.advertise_addr = advertise_addr
        self.log = log
        self.on_frame_cb = on_frame
        self.on_unreachable = on_unreachable
        self.rng = rng
        self.key = key
        self.nonces = nonces
        self.loop = asyncio.get_running_loop()  # built inside the agent's loop
        self.links: dict[str, PeerLink] = {}
        # peer id -> (address, pinned): pinned addresses (given on the command line) are
        # not replaced by ones learnt from HELLO or the metadata.
        self.addresses: dict[str, tuple[str, bool]] = {}
        self.inbound: set[InboundConnection] = set()
        self.garbage_closes = 0
        self.auth_refused = 0  # inbound connections refused by the handshake
        self.auth_failed = 0  # outbound handshakes that failed
        self.refusal_log = LogBudget(REFUSAL_LOG_MAX_LINES, REFUSAL_LOG_WINDOW_MS)
        self.unroutable_frames = 0
        self.closed = False
        self._server: asyncio.AbstractServer | None = None

    async def listen(self, host: str, port: int) -> None:
        self._server = await self.loop.create_server(lambda: InboundConnection(self), host, port)

    def set_address(self, peer_id: str, addr: str, pinned: bool = False) -> None:
        if peer_id == self.node_id:
            return
        old = self.addresses.get(peer_id)
        if old is not None and old[1] and not pinned:
            return
        if old is not None and old[0] == addr:
            return
        self.addresses[peer_id] = (addr, pinned)
        link = self.links.pop(peer_id, None)
        if link is not None:
            self.log.notice(f"Peer {peer_id} moved from {link.addr} to {addr}")
            link.close()

    def forget(self, peer_id: str) -> None:
        self.addresses.pop(peer_id, None)
        link = self.links.pop(peer_id, None)
        if link is not None:
            link.close()

    def send(self, peer_id: str, frame: bytes) -> bool:
        """Queue ``frame`` for ``peer_id``; False if no address is known for it."""
        link = self.links.get(peer_id)
        if link is None:
            entry = self.addresses.get(peer_id)
            if entry is None:
                self.unroutable_frames += 1
                return False
            link = self.links[peer_id] = PeerLink(self, peer_id, entry[0])
        link.send(frame)
        return True

    def connected(self, peer_id: str) -> bool:
        link = self.links.get(peer_id)
        return link is not None and link.state is LinkState.CONNECTED

    def on_frame(self, peer_id: str, frame: Frame) -> None:
        self.on_frame_cb(peer_id, frame)

    def log_refusal(self, line: str) -> None:
        ok, skipped = self.refusal_log.allow(int(time.monotonic() * 1000))
        if ok:
            more = f" ({skipped} more refusals not logged)" if skipped else ""
            self.log.warning(line + more)

    def close(self) -> None:
        self.closed = True
        if self._server is not None:
            self._server.close()
        for link in self.links.values():
            link.close()
        self.links.clear()
        for conn in list(self.inbound):
            if conn.transport is not None:
                conn.transport.close()

    async def aclose(self) -> None:
        """``close`` and let the loop finish closing the sockets."""
        self.close()
        if self._server is not None:
            await self._server.wait_closed()
        for _ in range(3):
            await asyncio.sleep(0)
        for conn in list(self.inbound):  # accepted while closing
            if conn.transport is not None:
                conn.transport.close()
        await asyncio.sleep(0)
