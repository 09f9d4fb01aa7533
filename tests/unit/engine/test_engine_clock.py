"""The engine reads time only through its Clock port (engine/ports.py): a manual clock
drives expiry, TIME, SLOWLOG, DEBUG SLEEP and the expiry cycle's budget, and two engines in
one process keep their own clocks."""

from __future__ import annotations

import pytest
from tests.conftest import FakeConn

from ackdb.engine.core import Server
from ackdb.server.config import load_config


class ManualClock:
    def __init__(self, now_ms: int) -> None:
        self.ms = now_ms
        self.perf = 0
        self.slept: list[float] = []

    def now_ms(self) -> int:
        return self.ms

    def now_us(self) -> int:
        return self.ms * 1000 + 7

    def time_s(self) -> float:
        return self.ms / 1000

    def perf_ns(self) -> int:
        self.perf += 10_000  # every reading moves 10 us on
        return self.perf

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.ms += int(seconds * 1000)


def engine(clock: ManualClock, *directives: str) -> Server:
    return Server(load_config(None, "\n".join(directives)), clock=clock, pid=4242)


def run(srv: Server, *args: str) -> bytes:
    c = srv.clients.get(1) or srv.new_client(FakeConn(), "127.0.0.1:40000", "127.0.0.1:6379", 7)
    reply = srv.process(c, [a.encode() for a in args])
    assert isinstance(reply, bytes)
    return reply


def test_expiry_follows_the_injected_clock() -> None:
    clock = ManualClock(1_000_000)
    srv = engine(clock)
    assert run(srv, "SET", "k", "v", "PX", "100") == b"+OK\r\n"
    clock.ms += 99
    assert run(srv, "GET", "k") == b"$1\r\nv\r\n"
    clock.ms += 1
    assert run(srv, "GET", "k") == b"$-1\r\n"


def test_time_and_debug_sleep_use_the_clock() -> None:
    clock = ManualClock(1_700_000_000_123)
    srv = engine(clock, "enable-debug-command yes")
    assert run(srv, "TIME") == b"*2\r\n$10\r\n1700000000\r\n$6\r\n123007\r\n"
    assert run(srv, "DEBUG", "SLEEP", "2.5") == b"+OK\r\n"
    assert clock.slept == [2.5]
    assert srv.pid == 4242 and srv.start_time_s == 1_700_000_000.123


def test_slowlog_durations_and_times_come_from_the_clock() -> None:
    clock = ManualClock(5_000_000)
    srv = engine(clock, "slowlog-log-slower-than 0")
    run(srv, "SET", "a", "1")
    reply = run(srv, "SLOWLOG", "GET", "1")
    # id 0, time 5000 s, 10 us (one perf reading to the next), the arguments.
    assert b":0\r\n:5000\r\n:10\r\n" in reply


def test_two_engines_keep_their_own_clocks() -> None:
    a, b = ManualClock(1_000), ManualClock(9_000)
    ea, eb = engine(a), engine(b)
    run(ea, "SET", "k", "v", "PX", "500")
    run(eb, "SET", "k", "v", "PX", "500")
    a.ms += 600
    assert run(ea, "GET", "k") == b"$-1\r\n"
    assert run(eb, "GET", "k") == b"$1\r\nv\r\n"


def test_info_without_a_source_is_an_error_not_zeros() -> None:
    srv = engine(ManualClock(0))
    assert run(srv, "INFO").startswith(b"-ERR INFO is not available")


def test_an_engine_needs_its_handlers_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from ackdb.commands.table import TABLE

    monkeypatch.setattr(TABLE, "loaded", False)
    with pytest.raises(RuntimeError, match="load_all"):
        engine(ManualClock(0))


class JumpingClock(ManualClock):
    """Every monotonic reading is 30 ms after the last: the expiry cycle's cap (25 ms)
    is reached after its first batch."""

    def perf_ns(self) -> int:
        self.perf += 30_000_000
        return self.perf


def test_expiry_cycle_counts_reaching_its_time_cap() -> None:
    clock = JumpingClock(1_000_000)
    srv = engine(clock)
    for i in range(600):
        run(srv, "SET", f"k{i}", "v", "PX", "10")
    clock.ms += 20
    srv.cron(clock.ms)
    assert srv.stat_expired_time_cap_reached == 1  # 200 of 600 expired keys reclaimed
    for _ in range(5):
        srv.cron(clock.ms)
    # The second cycle also stops at the cap with keys left; the third takes the last
    # 200 and, with nothing left expired, is not counted (Redis counts a cycle that
    # stopped with work left).
    assert srv.stat_expired_time_cap_reached == 2
    assert run(srv, "DBSIZE") == b":0\r\n"


def test_failed_auth_is_counted() -> None:
    srv = engine(ManualClock(0), "requirepass secret")
    assert run(srv, "AUTH", "wrong").startswith(b"-WRONGPASS")
    assert run(srv, "HELLO", "3", "AUTH", "default", "nope").startswith(b"-WRONGPASS")
    assert run(srv, "AUTH", "secret") == b"+OK\r\n"
    assert srv.stat_auth_denied == 2
