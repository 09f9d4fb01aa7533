"""The asyncio shell of the ordered-pipeline front end (resp.frontend).

SHELL MODULE: this and resp.client are the only modules of resp/ that touch asyncio.

Owns: the transport: each read goes to the front end and what it has ready leaves in
one write; replies completed later leave at the end of the event-loop pass
(``schedule_flush``, which a host may override to batch its connections); reading pauses
while more than ``pending_replies_max()`` replies are unsent or requests unstarted, or
while the socket's write buffer is above its high-water mark. Also the event loop every
ackdb process runs on (``new_event_loop``: uvloop where it is installed) and the cyclic
GC's settings of the processes that serve clients (``settle_gc``).
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from .frontend import FrontEnd, Pending

# Unsent replies plus unstarted requests of one connection above which reading pauses.
PENDING_REPLIES_MAX = 10_000
# Allocations between young-generation collections of the cyclic GC (Python: 700).
GC_GEN0_THRESHOLD = 20_000


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop, set as the current one: uvloop's, else asyncio's."""
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def settle_gc() -> None:
    """Once a serving process is up (``ackdb server``, an endpoint): everything allocated
    so far lives as long as the process, so the cyclic GC stops walking it again and
    again (``gc.freeze``), and young collections run less often, since the request path
    allocates many short-lived lists and objects. Before this, the endpoint spent 14% of
    its CPU in the GC at ``-P 16`` (docs/performance.md, fifth pass)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)


class FrontEndProtocol(asyncio.Protocol):
    """Subclasses give the handler; see the module docstring."""

    def __init__(self, frontend: FrontEnd) -> None:
        self.frontend = frontend
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self._flush_scheduled = False

    # -- policy hooks -------------------------------------------------------------------

    def pending_replies_max(self) -> int:
        return PENDING_REPLIES_MAX

    def schedule_flush(self) -> None:
        """Flush at the end of this event-loop pass."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        fe = self.frontend
        if fe.closing:
            return
        fe.receive_data(data)
        self.flush()

    def pause_writing(self) -> None:
        self._pause(True)

    def resume_writing(self) -> None:
        self._pause(False)

    # -- replies ------------------------------------------------------------------------

    def complete(self, pending: Pending, reply: bytes) -> None:
        """A handler's later reply: it leaves with the next flush if its turn came."""
        if self.frontend.complete(pending, reply):
            self.schedule_flush()

    def flush(self) -> None:
        """Write every leading ready reply in one write; close after QUIT or an error."""
        self._flush_scheduled = False
        fe = self.frontend
        data = fe.data_to_send()
        t = self.transport
        if data and t is not None and not t.is_closing():
            t.write(data)
        if fe.should_close and t is not None:
            t.close()
        self._pause(fe.pending_count() > self.pending_replies_max())

    def _pause(self, paused: bool) -> None:
        t = self.transport
        if t is None or paused == self.paused:
            return
        self.paused = paused
        if paused:
            t.pause_reading()
        elif not t.is_closing():
            t.resume_reading()
