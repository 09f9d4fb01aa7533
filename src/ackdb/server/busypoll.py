"""Busy polling at the end of an event-loop pass: when the next request is likely to come
within a few tens of microseconds, the node keeps its CPU and polls the sockets it just
served instead of sleeping in the event loop (docs/performance.md, fifth pass).

Why: a process that sleeps gives its CPU back to the kernel, and on a virtual machine
whose idle vCPUs halt (no guest halt-polling), waking it again costs tens of
microseconds, several times what a request costs. A client that sends its next command as
soon as it has the reply (SET then WAIT, a transaction's steps, a script of requests)
then pays that price on every round trip. Polling for a bounded window catches those
requests without the wake-up. Seastar (ScyllaDB) polls the same way before it sleeps.

When: the window is ``ackdb-busy-poll-us`` (0 turns it off). ``BusyPoll`` decides from
the times between passes:
- a pass that began within ``BUSY_GAP_NS`` of the last one's end means requests are
  arriving faster than the loop turns: the next is already there, no poll is needed (and
  the poll's system call would only cost);
- a poll that ran out its window without an event turns polling off, and it comes back
  after ``strikes`` passes in a row began within two windows of the previous end; each
  miss doubles ``strikes`` (up to ``STRIKES_MAX``), each catch resets it, so a server
  whose requests come just too rarely polls only now and then, and an idle one never.

The poll itself (``poll_sockets``) yields the CPU on every turn (``sched_yield``): a
process that shares the CPU (the client, a replica) runs first. It is never longer than
the window, so a timer, a new connection or another socket's request waits at most that
long. Nothing of what clients see changes; INFO's ``eventloop_busy_poll_sum`` (us spent
polling) and ``eventloop_busy_poll_hits`` (polls that caught a request) show what it
costs and gives.

SHELL MODULE: ``poll_sockets`` makes system calls; ``BusyPoll`` is plain arithmetic.
"""

from __future__ import annotations

import os
import select
import time

# A pass that began this soon after the previous one's end: the loop is busy (no poll).
BUSY_GAP_NS = 5_000
# Passes in a row that began soon enough, needed to poll again after a miss: at most.
STRIKES_MAX = 64


class BusyPoll:
    """Whether to poll at the end of a pass, and for how long (see the module doc)."""

    def __init__(self, window_us: int) -> None:
        self.window_ns = window_us * 1000
        self.on = True
        self.strikes = 1
        self.short = 0
        self.last_end_ns = 0
        self.last_gap_ns = 1 << 62
        self.hits = 0
        self.spent_ns = 0

    def set_window_us(self, window_us: int) -> None:
        self.window_ns = window_us * 1000
        self.on, self.strikes, self.short = True, 1, 0

    def pass_started(self, now_ns: int) -> None:
        gap = now_ns - self.last_end_ns
        self.last_gap_ns = gap
        if self.on or not self.window_ns:
            return
        if gap < 2 * self.window_ns:
            self.short += 1
            if self.short >= self.strikes:
                self.on = True
        else:
            self.short = 0

    def window(self) -> int:
        """How long to poll at the end of this pass, in ns (0: not at all)."""
        if not self.on or self.last_gap_ns < BUSY_GAP_NS:
            return 0
        return self.window_ns

    def polled(self, caught: bool, spent_ns: int) -> None:
        self.spent_ns += spent_ns
        if caught:
            self.hits += 1
            self.strikes = 1
        else:
            self.on = False
            self.short = 0
            self.strikes = min(self.strikes * 2, STRIKES_MAX)

    def pass_ended(self, now_ns: int) -> None:
        """The pass's work ended (before any poll: a request the poll catches after 20 us
        makes a gap of 20 us, not a busy loop's)."""
        self.last_end_ns = now_ns


def poll_sockets(fds: list[int], window_ns: int) -> tuple[bool, int]:
    """Poll ``fds`` for input until one has some or ``window_ns`` passed, yielding the CPU
    between tries; returns (whether one had input, ns spent)."""
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN)
    perf_ns = time.perf_counter_ns
    start = perf_ns()
    deadline = start + window_ns
    while True:
        if p.poll(0):
            return True, perf_ns() - start
        now = perf_ns()
        if now >= deadline:
            return False, now - start
        os.sched_yield()
