"""Every write yields the exact effects a replica or an AOF must run to reproduce it.

Redis propagates effects, not commands: relative expiries become absolute (Redis 7
``SET ... PXAT``, ``PEXPIREAT``), INCRBYFLOAT becomes ``SET ... KEEPTTL``, expired keys
become DEL before the command that found them, and EXEC wraps several effects in
MULTI/EXEC (a one-write transaction goes bare).
"""

from __future__ import annotations

from conftest import Harness

NOW = 1_700_000_000_000


def fixed_clock(h: Harness, now: int = NOW) -> list[int]:
    clock = [now]
    h.server.now_ms = lambda: clock[0]  # type: ignore[method-assign]
    return clock


def test_plain_writes_propagate_as_sent(harness: Harness) -> None:
    c = harness.client()
    harness.run(c, "SET", "k", "v")
    harness.run(c, "INCR", "n")
    harness.run(c, "HSET", "h", "f", "v")
    assert harness.effects == [
        (0, [b"SET", b"k", b"v"]),
        (0, [b"INCR", b"n"]),
        (0, [b"HSET", b"h", b"f", b"v"]),
    ]


def test_reads_and_no_op_writes_propagate_nothing(harness: Harness) -> None:
    c = harness.client()
    harness.run(c, "GET", "k")
    harness.run(c, "DEL", "missing")
    harness.run(c, "EXPIRE", "missing", "10")
    harness.run(c, "SET", "k", "v", "XX")
    harness.run(c, "PERSIST", "missing")
    assert harness.effects == []


def test_relative_expiry_made_absolute() -> None:
    h = Harness()
    fixed_clock(h)
    c = h.client()
    h.run(c, "SET", "a", "1", "EX", "10")
    h.run(c, "SET", "b", "1", "PX", "500", "NX")
    h.run(c, "SETEX", "c", "5", "x")
    h.run(c, "PSETEX", "d", "7", "x")
    h.run(c, "EXPIRE", "a", "100")
    h.run(c, "PEXPIRE", "a", "100", "LT")
    h.run(c, "EXPIREAT", "a", str(NOW // 1000 + 50))
    h.run(c, "GETEX", "a", "EX", "3")
    h.run(c, "GETEX", "a", "PERSIST")
    h.run(c, "SET", "a", "2", "KEEPTTL")
    assert h.effects == [
        (0, [b"SET", b"a", b"1", b"PXAT", b"%d" % (NOW + 10_000)]),
        (0, [b"SET", b"b", b"1", b"PXAT", b"%d" % (NOW + 500)]),
        (0, [b"SET", b"c", b"x", b"PXAT", b"%d" % (NOW + 5000)]),
        (0, [b"SET", b"d", b"x", b"PXAT", b"%d" % (NOW + 7)]),
        (0, [b"PEXPIREAT", b"a", b"%d" % (NOW + 100_000)]),
        (0, [b"PEXPIREAT", b"a", b"%d" % (NOW + 100)]),
        (0, [b"PEXPIREAT", b"a", b"%d" % (NOW + 50_000)]),
        (0, [b"PEXPIREAT", b"a", b"%d" % (NOW + 3000)]),
        (0, [b"PERSIST", b"a"]),
        (0, [b"SET", b"a", b"2", b"KEEPTTL"]),
    ]


def test_expiry_in_the_past_is_a_del() -> None:
    h = Harness()
    fixed_clock(h)
    c = h.client()
    h.run(c, "SET", "a", "1")
    h.run(c, "SET", "b", "1")
    assert h.run(c, "EXPIREAT", "a", "1") == b":1\r\n"
    assert h.run(c, "GETEX", "b", "PXAT", "5") == b"$1\r\n1\r\n"
    assert h.effects[2:] == [(0, [b"DEL", b"a"]), (0, [b"DEL", b"b"])]
    assert h.run(c, "EXISTS", "a", "b") == b":0\r\n"


def test_float_math_propagates_its_result() -> None:
    h = Harness()
    c = h.client()
    h.run(c, "SET", "f", "0.1")
    h.run(c, "INCRBYFLOAT", "f", "0.2")
    h.run(c, "HINCRBYFLOAT", "h", "x", "1.5")
    assert h.effects[1:] == [
        (0, [b"SET", b"f", b"0.3", b"KEEPTTL"]),
        (0, [b"HSET", b"h", b"x", b"1.5"]),
    ]


def test_getdel_and_getset() -> None:
    h = Harness()
    c = h.client()
    h.run(c, "SET", "k", "v")
    h.run(c, "GETDEL", "k")
    h.run(c, "GETSET", "k", "w")
    assert h.effects[1:] == [(0, [b"DEL", b"k"]), (0, [b"SET", b"k", b"w"])]


def test_lazily_expired_key_goes_out_as_del_before_the_command() -> None:
    h = Harness()
    clock = fixed_clock(h)
    c = h.client()
    h.run(c, "SET", "k", "v", "PX", "100")
    clock[0] += 200
    h.run(c, "SET", "k", "new", "NX")
    assert h.effects[1:] == [(0, [b"DEL", b"k"]), (0, [b"SET", b"k", b"new"])]


def test_active_expiry_propagates_del_and_is_bounded() -> None:
    h = Harness()
    clock = fixed_clock(h)
    c = h.client()
    for i in range(5000):
        h.run(c, "SET", f"k{i}", "v", "PX", "10")
    h.effects.clear()
    clock[0] += 100
    db = h.server.dbs[0]
    assert db.expire_cycle(clock[0], 1000) == 1000  # bounded per call
    assert len(db) == 4000
    while db.has_expired_pending(clock[0]):
        db.expire_cycle(clock[0], 1000)
    assert len(db) == 0
    assert len(h.effects) == 5000
    assert all(argv[0] == b"DEL" for _, argv in h.effects)
    assert h.server.stat_expired_keys == 5000


def test_select_is_carried_as_db_index(harness: Harness) -> None:
    c = harness.client()
    harness.run(c, "SELECT", "3")
    harness.run(c, "SET", "k", "v")
    assert harness.effects == [(3, [b"SET", b"k", b"v"])]


def test_exec_wraps_several_effects_and_sends_one_bare(harness: Harness) -> None:
    c = harness.client()
    for cmd in (("MULTI",), ("SET", "a", "1"), ("GET", "a"), ("INCR", "n"), ("EXEC",)):
        harness.run(c, *cmd)
    assert harness.effects == [
        (0, [b"MULTI"]),
        (0, [b"SET", b"a", b"1"]),
        (0, [b"INCR", b"n"]),
        (0, [b"EXEC"]),
    ]
    harness.effects.clear()
    for cmd in (("MULTI",), ("SET", "a", "2"), ("GET", "a"), ("EXEC",)):
        harness.run(c, *cmd)
    assert harness.effects == [(0, [b"SET", b"a", b"2"])]


def test_aborted_transaction_propagates_nothing(harness: Harness) -> None:
    c = harness.client()
    harness.run(c, "MULTI")
    harness.run(c, "SET", "a", "1")
    assert harness.run(c, "GET").startswith(b"-ERR wrong number of arguments")
    assert harness.run(c, "EXEC").startswith(b"-EXECABORT")
    assert harness.effects == []


def test_watch_sees_modification_expiry_and_flush() -> None:
    h = Harness()
    clock = fixed_clock(h)
    a, b = h.client(), h.client()
    # Modified by another client.
    h.run(a, "WATCH", "k")
    h.run(b, "SET", "k", "x")
    h.run(a, "MULTI")
    h.run(a, "SET", "k", "y")
    assert h.run(a, "EXEC") == b"*-1\r\n"
    # Expired meanwhile (nobody touched it).
    h.run(b, "SET", "t", "v", "PX", "50")
    h.run(a, "WATCH", "t")
    clock[0] += 100
    h.run(a, "MULTI")
    h.run(a, "GET", "x")
    assert h.run(a, "EXEC") == b"*-1\r\n"
    # Flushed.
    h.run(b, "SET", "f", "v")
    h.run(a, "WATCH", "f")
    h.run(b, "FLUSHALL")
    h.run(a, "MULTI")
    h.run(a, "GET", "x")
    assert h.run(a, "EXEC") == b"*-1\r\n"
    # Untouched: runs.
    h.run(a, "WATCH", "quiet")
    h.run(a, "MULTI")
    h.run(a, "GET", "quiet")
    assert h.run(a, "EXEC") == b"*1\r\n$-1\r\n"
