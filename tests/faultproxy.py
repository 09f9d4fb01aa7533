"""A fault-injecting TCP proxy for tests: put it between two processes, then cut, slow or
blackhole the link while they run.

Owns: one listening socket on 127.0.0.1 and, per accepted connection, one connection to the
target; bytes are copied both ways by an asyncio loop in a background thread, so a test
drives it with plain method calls. It never parses what it carries: any TCP protocol works
(Raft peer links, Redis replication, client traffic).

Directions: ``"up"`` is client -> target (what the connecting side sends), ``"down"`` is
target -> client (the replies).

Faults (all can be combined, all are undone by ``heal()``):
- ``blackhole(direction)``: bytes in that direction (``"up"``, ``"down"`` or ``"both"``)
  are read and discarded; the connections stay open, as on a network that silently loses
  packets (the sender only notices through its own timeouts).
- ``drop_all()``: ``blackhole("both")`` plus closing every open connection and refusing
  new ones (accepted, then closed at once): a partition the peers notice quickly.
- ``refuse()``: new connections are closed at once; open ones continue.
- ``delay(ms)``: every chunk is held for ``ms`` milliseconds before it is forwarded, in
  order.
- ``close_connections()``: closes the open connections once (the peers reconnect).

Limits: each direction buffers at most ``BUFFER_MAX_BYTES`` of delayed data per
connection; beyond it reading pauses (back-pressure), so a delayed link never grows
without bound. ``stop()`` closes everything and joins the thread (bounded by
``STOP_TIMEOUT_S``), including a connection still connecting to the target: nothing
is left for the garbage collector to find unclosed (a ResourceWarning, an error under
pytest, in whichever later test the collection happens).

Example::

    proxy = FaultProxy(("127.0.0.1", target_port))
    proxy.start()               # proxy.port now forwards to target_port
    proxy.blackhole("up")       # the target hears nothing more
    proxy.heal()
    proxy.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field

Direction = str  # "up" | "down" | "both"
DIRECTIONS = ("up", "down", "both")
# Per connection and direction: delayed bytes held before reading pauses (bytes).
BUFFER_MAX_BYTES = 4 * 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 2.0
STOP_TIMEOUT_S = 5.0


@dataclass
class ProxyStats:
    accepted: int = 0
    refused: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    dropped_up: int = 0
    dropped_down: int = 0
    open_connections: int = 0
    connecting: int = 0  # accepted, the connection to the target not made yet


@dataclass(eq=False)  # identity-hashed: kept in a set
class _Pair:
    client_w: asyncio.StreamWriter
    target_w: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    """A TCP proxy from ``127.0.0.1:port`` (``listen_port``, 0 = any free port) to
    ``target``; see the module docstring for the faults it injects."""

    def __init__(self, target: tuple[str, int], listen_port: int = 0) -> None:
        self.target = target
        self.listen_port = listen_port
        self.port = 0
        self.stats = ProxyStats()
        self._blackhole_up = False
        self._blackhole_down = False
        self._refuse = False
        self._delay_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._pairs: set[_Pair] = set()
        # Every accepted client connection until it is closed, a pair's or not yet one's.
        self._clients: set[asyncio.StreamWriter] = set()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    # -- life ------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name=f"faultproxy-{self.target}")
        self._thread.daemon = True
        self._thread.start()
        if not self._started.wait(STOP_TIMEOUT_S):
            raise RuntimeError("fault proxy did not start")
        if self._error is not None:
            raise RuntimeError(f"fault proxy failed to start: {self._error}")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(STOP_TIMEOUT_S)
        self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------

    def blackhole(self, direction: Direction = "both") -> None:
        assert direction in DIRECTIONS, direction
        if direction in ("up", "both"):
            self._blackhole_up = True
        if direction in ("down", "both"):
            self._blackhole_down = True

    def refuse(self) -> None:
        self._refuse = True

    def drop_all(self) -> None:
        self.blackhole("both")
        self.refuse()
        self.close_connections()

    def delay(self, ms: float) -> None:
        assert ms >= 0
        self._delay_s = ms / 1000.0

    def close_connections(self) -> None:
        loop = self._loop
        if loop is not None:
            done = threading.Event()

            def close_all() -> None:
                for pair in list(self._pairs):
                    self._close_pair(pair)
                done.set()

            loop.call_soon_threadsafe(close_all)
            done.wait(STOP_TIMEOUT_S)

    def heal(self) -> None:
        """Undo every fault: traffic flows again (closed connections stay closed; the
        peers reconnect)."""
        self._blackhole_up = self._blackhole_down = self._refuse = False
        self._delay_s = 0.0

    # -- the loop thread --------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._on_connect, "127.0.0.1", self.listen_port)
            )
            self.port = int(self._server.sockets[0].getsockname()[1])
        except OSError as e:
            self._error = e
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for pair in list(self._pairs):
                self._close_pair(pair)
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            # A connection whose _accept task was cancelled before it ran (or while it
            # connected to the target): abort it, and let the loop run the callbacks
            # that close the sockets before it closes.
            for w in list(self._clients):
                w.transport.abort()
            self._clients.clear()
            loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

    def _on_connect(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> Coroutine[None, None, None]:
        # Not a coroutine function: the connection is registered as it is accepted, before
        # the task that runs _accept (stop() may cancel that task before it starts).
        self._clients.add(client_w)
        return self._accept(client_r, client_w)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._refuse:
            self.stats.refused += 1
            self._clients.discard(client_w)
            client_w.close()
            return
        self.stats.connecting += 1
        target: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            target = await asyncio.wait_for(
                asyncio.open_connection(*self.target), CONNECT_TIMEOUT_S
            )
        except (TimeoutError, OSError):
            pass
        finally:  # also when stop() cancels this task
            self.stats.connecting -= 1
            if target is None:
                self._clients.discard(client_w)
                client_w.close()
        if target is None:
            return
        target_r, target_w = target
        self.stats.accepted += 1
        pair = _Pair(client_w, target_w)
        self._pairs.add(pair)
        self.stats.open_connections = len(self._pairs)
        pair.tasks = [
            asyncio.ensure_future(self._pump(client_r, target_w, pair, up=True)),
            asyncio.ensure_future(self._pump(target_r, client_w, pair, up=False)),
        ]

    def _close_pair(self, pair: _Pair) -> None:
        if pair not in self._pairs:
            return
        self._pairs.discard(pair)
        self.stats.open_connections = len(self._pairs)
        self._clients.discard(pair.client_w)
        for w in (pair.client_w, pair.target_w):
            with contextlib.suppress(Exception):
                w.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Pair, up: bool
    ) -> None:
        """Copy one direction: read, apply the faults, hand chunks to the writer task
        (which holds each until its due time, so a delay adds latency, not a rate cap)."""
        held: deque[tuple[float, bytes]] = deque()  # (due time, chunk), oldest first
        wake = asyncio.Event()
        room = asyncio.Event()
        room.set()
        flushed = asyncio.Event()
        sizes = [0]  # held bytes

        async def write_held() -> None:
            try:
                while True:
                    await wake.wait()
                    wake.clear()
                    while held:
                        due, chunk = held[0]
                        pause = due - time.monotonic()
                        if pause > 0:
                            await asyncio.sleep(pause)
                        held.popleft()
                        sizes[0] -= len(chunk)
                        writer.write(chunk)
                        if sizes[0] <= BUFFER_MAX_BYTES:
                            room.set()
                        await writer.drain()
                    flushed.set()
            except OSError:
                self._close_pair(pair)

        writer_task = asyncio.ensure_future(write_held())
        try:
            while True:
                await room.wait()
                data = await reader.read(READ_CHUNK_BYTES)
                if not data:
                    # Half-close: deliver what is held (bounded), then close both sides.
                    if held:
                        flushed.clear()
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(flushed.wait(), STOP_TIMEOUT_S)
                    break
                if self._blackhole_up if up else self._blackhole_down:
                    if up:
                        self.stats.dropped_up += len(data)
                    else:
                        self.stats.dropped_down += len(data)
                    continue
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
                held.append((time.monotonic() + self._delay_s, data))
                sizes[0] += len(data)
                if sizes[0] > BUFFER_MAX_BYTES:
                    room.clear()  # back-pressure: stop reading until the writer drains
                wake.set()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer_task.cancel()
            self._close_pair(pair)
