"""server/busypoll.py: when the end of a pass polls, and the poll itself."""

from __future__ import annotations

import socket
import time

from ackdb.server.busypoll import BUSY_GAP_NS, STRIKES_MAX, BusyPoll, poll_sockets

US = 1000


def gap(bp: BusyPoll, gap_ns: int) -> None:
    """A pass that began ``gap_ns`` after the previous one ended (its work, then its end)."""
    start = bp.last_end_ns + gap_ns
    bp.pass_started(start)
    bp.pass_ended(start + 10 * US)


def test_polls_after_a_pause_but_not_in_a_busy_loop() -> None:
    bp = BusyPoll(50)
    gap(bp, 30 * US)
    assert bp.window() == 50 * US
    gap(bp, BUSY_GAP_NS - 1)  # requests come faster than the loop turns: no poll
    assert bp.window() == 0
    gap(bp, 30 * US)
    assert bp.window() == 50 * US


def test_a_miss_turns_it_off_until_enough_short_gaps_and_misses_back_off() -> None:
    bp = BusyPoll(50)
    gap(bp, 30 * US)
    bp.polled(False, 50 * US)  # ran out its window
    assert bp.window() == 0 and bp.strikes == 2
    gap(bp, 300 * US)  # longer than two windows: does not count
    assert bp.window() == 0
    gap(bp, 80 * US)
    assert bp.window() == 0  # one short gap of the two needed
    gap(bp, 80 * US)
    assert bp.window() == 50 * US
    bp.polled(False, 50 * US)
    assert bp.strikes == 4
    for _ in range(10):
        bp.polled(False, 50 * US)
    assert bp.strikes == STRIKES_MAX
    for _ in range(STRIKES_MAX - 1):
        gap(bp, 80 * US)
        assert bp.window() == 0
    gap(bp, 80 * US)
    assert bp.window() == 50 * US
    bp.polled(True, 20 * US)  # a catch: back to one strike
    assert bp.strikes == 1 and bp.hits == 1
    assert bp.spent_ns == 12 * 50 * US + 20 * US


def test_an_idle_server_never_polls_again() -> None:
    bp = BusyPoll(50)
    gap(bp, 30 * US)
    bp.polled(False, 50 * US)
    for _ in range(1000):
        gap(bp, 5_000 * US)  # a request every 5 ms
        assert bp.window() == 0


def test_window_zero_never_polls_and_setting_it_restarts() -> None:
    bp = BusyPoll(0)
    for _ in range(5):
        gap(bp, 30 * US)
        assert bp.window() == 0
    bp.set_window_us(20)
    gap(bp, 10 * US)
    assert bp.window() == 20 * US


def test_poll_sockets_returns_on_input_or_after_its_window() -> None:
    a, b = socket.socketpair()
    try:
        t0 = time.perf_counter_ns()
        caught, spent = poll_sockets([a.fileno()], 2_000 * US)
        assert not caught and spent >= 2_000 * US
        assert time.perf_counter_ns() - t0 >= 2_000 * US
        b.send(b"x")
        caught, spent = poll_sockets([a.fileno()], 1_000_000 * US)  # at once, not in 1 s
        assert caught and spent < 500_000 * US
    finally:
        a.close()
        b.close()
