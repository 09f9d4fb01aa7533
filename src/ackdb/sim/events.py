"""The simulator's virtual clock and event queue.

Owns: simulated time (``now``, in ms) and the events scheduled for later, each a callback
with its arguments. Events run in time order; events at the same time run in the order
they were scheduled, so a run is a function of its seed alone. Any kind of simulated
process (a Raft member, a client, a fault, a replication server) schedules its own
callbacks here: the queue knows nothing about them. Never reads a real clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any


class EventQueue:
    def __init__(self) -> None:
        self.now = 0
        self.events = 0  # events run so far
        self._q: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._q)

    def schedule(self, delay_ms: int, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` ``delay_ms`` from now."""
        assert delay_ms >= 0, delay_ms
        self._seq += 1
        heapq.heappush(self._q, (self.now + delay_ms, self._seq, fn, args))

    def pop(self) -> tuple[Callable[..., None], tuple[Any, ...]]:
        """Advance the clock to the next event and hand it out (the caller runs it)."""
        t, _, fn, args = heapq.heappop(self._q)
        self.now = t
        self.events += 1
        return fn, args
