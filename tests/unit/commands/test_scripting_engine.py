"""Scripts and functions run through the engine: effects replication (a script's writes
as one MULTI/EXEC-wrapped transaction, a single write unwrapped, nothing for a read-only
script), redis.set_repl, scripts inside MULTI, SELECT inside a script, the -BUSY gate and
SCRIPT KILL driven through the hook's tick, FUNCTION LOAD propagating as sent."""

from __future__ import annotations

from typing import Any

import pytest

import ackdb.commands  # noqa: F401  (registers the command table)
from ackdb.commands.script_run import state
from ackdb.engine.client import NullConn
from ackdb.engine.core import Server
from ackdb.server.config import load_config
from ackdb.server.engine_host import build_engine


@pytest.fixture
def srv() -> tuple[Server, list[tuple[int, list[bytes]]]]:
    s = build_engine(load_config(None, ""))
    effects: list[tuple[int, list[bytes]]] = []
    s.add_feed(lambda db, argv: effects.append((db, argv)))
    return s, effects


def call(s: Server, c: Any, *args: str) -> bytes:
    reply = s.process(c, [a.encode() for a in args])
    assert isinstance(reply, bytes)
    return reply


def test_script_writes_replicate_as_one_transaction(srv: Any) -> None:
    s, effects = srv
    c = s.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:6379", 10)
    script = "redis.call('set', KEYS[1], '1') redis.call('incr', KEYS[1]) return redis.call('get', KEYS[1])"
    assert call(s, c, "EVAL", script, "1", "k") == b"$1\r\n2\r\n"
    assert [argv for _, argv in effects] == [
        [b"MULTI"], [b"set", b"k", b"1"], [b"incr", b"k"], [b"EXEC"]
    ]  # fmt: skip
    effects.clear()
    assert call(s, c, "EVAL", "return redis.call('set', 'one', 'x')", "0") == b"+OK\r\n"
    assert [argv for _, argv in effects] == [[b"set", b"one", b"x"]]
    effects.clear()
    call(s, c, "EVAL", "return redis.call('get', 'one')", "0")
    call(s, c, "EVAL", "return redis.call('del', 'nokey')", "0")  # no change: no effect
    assert effects == []


def test_select_inside_a_script(srv: Any) -> None:
    s, effects = srv
    c = s.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:6379", 10)
    call(
        s,
        c,
        "EVAL",
        "redis.call('set','a','0') redis.call('select', 2) redis.call('set','b','2')",
        "0",
    )
    assert [(db, argv[0]) for db, argv in effects] == [
        (0, b"MULTI"), (0, b"set"), (2, b"set"), (2, b"EXEC")
    ]  # fmt: skip
    assert c.db.index == 0  # the caller's database is its own
    assert call(s, c, "EXISTS", "b") == b":0\r\n"


def test_set_repl_none_drops_effects(srv: Any) -> None:
    s, effects = srv
    c = s.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:6379", 10)
    script = "redis.set_repl(redis.REPL_NONE) redis.call('set','x','1') redis.set_repl(redis.REPL_ALL) redis.call('set','y','1')"
    call(s, c, "EVAL", script, "0")
    assert [argv for _, argv in effects] == [[b"set", b"y", b"1"]]


def test_script_inside_multi(srv: Any) -> None:
    s, effects = srv
    c = s.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:6379", 10)
    call(s, c, "MULTI")
    assert (
        call(s, c, "EVAL", "redis.call('set','a','1') redis.call('set','b','1')", "0")
        == b"+QUEUED\r\n"
    )
    assert call(s, c, "SET", "c", "1") == b"+QUEUED\r\n"
    call(s, c, "EXEC")
    names = [argv[0].lower() for _, argv in effects]
    assert names == [b"multi", b"set", b"set", b"set", b"exec"]


def test_function_load_propagates_as_sent(srv: Any) -> None:
    s, effects = srv
    c = s.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:6379", 10)
    lib = "#!lua name=l\nredis.register_function('f', function(k) return redis.call('incr', k[1]) end)"
    assert call(s, c, "FUNCTION", "LOAD", lib) == b"$1\r\nl\r\n"
    assert effects[-1][1] == [b"FUNCTION", b"LOAD", lib.encode()]
    assert call(s, c, "FCALL", "f", "1", "n") == b":1\r\n"
    assert effects[-1][1] == [b"incr", b"n"]


def test_busy_gate_and_kill_through_tick() -> None:
    s = build_engine(load_config(None, "busy-reply-threshold 10"))
    c = s.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:6379", 10)
    other = s.new_client(NullConn(), "127.0.0.1:2", "127.0.0.1:6379", 11)
    seen: list[bytes] = []

    def pump() -> None:
        seen.append(call(s, other, "GET", "k"))
        seen.append(call(s, other, "SCRIPT", "KILL"))

    s.busy_pump = pump
    st = state(s)
    reply = call(s, c, "EVAL", "local i = 0 while true do i = i + 1 end", "0")
    assert reply.startswith(b"-ERR Script killed by user with SCRIPT KILL...")
    assert seen[0].startswith(b"-BUSY Redis is busy running a script.")
    assert seen[1] == b"+OK\r\n"
    assert s.busy is None and st.running is None
    assert call(s, other, "GET", "k") == b"$-1\r\n"
