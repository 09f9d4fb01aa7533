"""The short paths of redis.call and XREADGROUP: what they skip must not change what they
do. redis.call's command table (mixed-case names, subcommands, noscript and arity errors in
Redis's order), a script's woff while the engine only counts writes, XREADGROUP's effects
when something needs them (Redis 7.2's MULTI / XCLAIM / XGROUP SETID / EXEC), none for a
history read, one counted write while the engine only counts writes, and its short path
(one stream read with ``>``) against the general one on random work; a bulk reply of any
header length and KEYS / ARGV of any key count as the general code makes them."""

from __future__ import annotations

import random
from typing import Any

import pytest

import ackdb.commands  # noqa: F401  (registers the command table)
from ackdb.commands import streams_read
from ackdb.engine.client import NullConn
from ackdb.engine.core import Server
from ackdb.server.config import load_config
from ackdb.server.engine_host import build_engine
from ackdb.server.replication_core import CoreReplication


class Counter:
    """The engine's OffsetCounter while nothing needs the effects' bytes."""

    def __init__(self) -> None:
        self.master_repl_offset = 0


@pytest.fixture
def srv() -> tuple[Server, list[list[bytes]]]:
    s = build_engine(load_config(None, ""))
    effects: list[list[bytes]] = []
    s.add_feed(lambda db, argv: effects.append(argv))
    return s, effects


def call(s: Server, c: Any, *args: str) -> bytes:
    reply = s.process(c, [a.encode() for a in args])
    assert isinstance(reply, bytes)
    return reply


def client(s: Server) -> Any:
    return s.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:6379", 10)


# -- redis.call ------------------------------------------------------------------------


def test_redis_call_names_in_any_case_and_subcommands(srv: Any) -> None:
    s, _ = srv
    c = client(s)
    assert call(s, c, "EVAL", "return redis.call('SeT', KEYS[1], 'v')", "1", "k") == b"+OK\r\n"
    assert call(s, c, "EVAL", "return redis.call('GET', KEYS[1])", "1", "k") == b"$1\r\nv\r\n"
    reply = call(s, c, "EVAL", "return redis.call('object', 'encoding', KEYS[1])", "1", "k")
    assert reply == b"$6\r\nembstr\r\n"
    assert call(s, c, "EVAL", "return redis.call('incrby', 'n', 5)", "0") == b":5\r\n"


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("return redis.call('nosuch')", "Unknown Redis command called from script"),
        ("return redis.call('get')", "Wrong number of args calling Redis command from script"),
        ("return redis.call('subscribe')", "Wrong number of args calling Redis command"),
        ("return redis.call('subscribe', 'ch')", "This Redis command is not allowed from script"),
        ("return redis.call('get', {})", "arguments must be strings or integers"),
        ("return redis.call()", "Please specify at least one argument"),
    ],
)
def test_redis_call_errors_in_redis_order(srv: Any, script: str, error: str) -> None:
    s, _ = srv
    reply = call(s, client(s), "EVAL", script, "0")
    assert reply.startswith(b"-ERR ") and error.encode() in reply


def test_redis_pcall_returns_the_error(srv: Any) -> None:
    s, _ = srv
    script = "local r = redis.pcall('nosuch') return r.err"
    reply = call(s, client(s), "EVAL", script, "0")
    assert reply == b"$44\r\nERR Unknown Redis command called from script\r\n"


def test_read_only_script_refuses_every_write(srv: Any) -> None:
    s, effects = srv
    c = client(s)
    script = "redis.pcall('set', 'a', '1') return redis.call('set', 'b', '1')"
    reply = call(s, c, "EVAL_RO", script, "0")
    assert b"Write commands are not allowed from read-only scripts" in reply
    assert call(s, c, "EXISTS", "a", "b") == b":0\r\n" and effects == []


@pytest.mark.parametrize("inline", [True, False])
def test_bulk_replies_of_every_header_length_reach_lua_whole(inline: bool) -> None:
    s = build_engine(load_config(None, ""))
    if inline:  # the engine only counts writes: redis.call's inline path
        s.count_only = Counter()  # type: ignore[assignment]
    s.add_feed(lambda db, argv: None)
    c = client(s)
    for n in (0, 1, 9, 10, 11, 99, 100, 12345):
        value = "".join(chr(97 + i % 26) for i in range(n))
        call(s, c, "SET", "k", value)
        reply = call(s, c, "EVAL", "return redis.call('get', KEYS[1])", "1", "k")
        assert reply == call(s, c, "GET", "k") == b"$%d\r\n%s\r\n" % (n, value.encode())


@pytest.mark.parametrize("fcall", [False, True])
def test_keys_and_argv_split_for_every_key_count(srv: Any, fcall: bool) -> None:
    s, _ = srv
    c = client(s)
    body = "return {#KEYS, #ARGV, table.concat(KEYS, ','), table.concat(ARGV, ',')}"
    lib = f"#!lua name=split\nredis.register_function('f', function(KEYS, ARGV) {body} end)"
    call(s, c, "FUNCTION", "LOAD", lib)
    for nkeys in range(5):
        for nargs in range(3):
            keys = [f"k{i}" for i in range(nkeys)]
            args = [f"a{i}" for i in range(nargs)]
            head = ("FCALL", "f") if fcall else ("EVAL", body)
            reply = call(s, c, *head, str(nkeys), *keys, *args)
            k, a = ",".join(keys).encode(), ",".join(args).encode()
            assert reply == b"*4\r\n:%d\r\n:%d\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                nkeys, nargs, len(k), k, len(a), a
            )  # fmt: skip


def test_script_woff_while_the_engine_only_counts_writes() -> None:
    cfg = load_config(None, "")
    s = build_engine(cfg)
    # A primary without replicas, backlog or AOF: the engine only counts writes.
    repl = CoreReplication(s, cfg, None, None, aof_enabled=False, served=None, received=None)  # type: ignore[arg-type]
    repl.engine_changed()
    assert s.count_only is not None
    c = client(s)
    start = s.master_repl_offset
    call(s, c, "EVAL", "redis.call('set', 'a', '1') return redis.call('incr', 'n')", "0")
    assert s.master_repl_offset == start + 2 == c.woff
    other = client(s)
    call(s, other, "SET", "x", "1")
    call(s, c, "EVAL", "return redis.call('get', 'a')", "0")  # a read moves nothing
    assert s.master_repl_offset == start + 3 and c.woff == start + 2


_SCRIPTS = [
    ("return redis.call('set', KEYS[1], 'v')", "1", "k"),
    ("return redis.call('incr', KEYS[1])", "1", "k"),  # not an integer
    ("return redis.pcall('incr', KEYS[1])", "1", "k"),
    ("redis.call('lpush', 'l', 'a') return redis.call('incr', 'l')", "0"),
    ("return redis.pcall('ping', 'a', 'b')", "0"),
    ("return redis.call('blpop', 'nolist', 0)", "0"),
    ("return redis.call('blmove', 'nolist', 'x', 'left', 'left', 0)", "0"),
    ("return {redis.call('incrby', 'n', 5), redis.call('get', 'n'), redis.call('ping')}", "0"),
    ("return redis.call('xadd', 's', '1-1', 'f', 'v')", "0"),
    ("return redis.call('del', 'nokey')", "0"),
    ("return redis.call('xread', 'block', 0, 'streams', 'nostream', '$')", "0"),  # no block
]


def _script_stats(inline: bool) -> tuple[list[bytes], list[str], bytes]:
    """Replies, commandstats (calls, failures) and errorstats of ``_SCRIPTS``, the inner
    commands run inline (the engine only counts writes) or through ``Server.call`` (a
    feed needs the effects)."""
    s = build_engine(load_config(None, ""))
    if inline:
        s.count_only = Counter()  # type: ignore[assignment]
        s.add_feed(lambda db, argv: None)
    else:
        s.add_feed(lambda db, argv: None)
    c = client(s)
    replies = [call(s, c, "EVAL", *script) for script in _SCRIPTS]
    stats = [
        line.split(",usec=")[0] + "," + line.split(",", 3)[-1]
        for line in call(s, c, "INFO", "commandstats").decode().splitlines()
        if line.startswith("cmdstat_") and "usec=" in line
    ]
    return replies, stats, call(s, c, "INFO", "errorstats")


def test_redis_call_inline_counts_as_the_engines_call() -> None:
    """redis.call runs Server.call's body inline while the engine only counts writes: the
    same replies, command statistics (calls, failed calls) and error statistics."""
    assert _script_stats(True) == _script_stats(False)


def test_redis_call_inline_slowlog_and_monitor(srv: Any) -> None:
    s, _ = srv
    s.count_only = Counter()  # the inline path
    c = client(s)
    call(s, c, "CONFIG", "SET", "slowlog-log-slower-than", "0")
    call(s, c, "SLOWLOG", "RESET")
    call(s, c, "EVAL", "redis.call('set', 'k', 'v') return redis.call('get', 'k')", "0")
    log = call(s, c, "SLOWLOG", "GET")
    assert b"*2\r\n$3\r\nget\r\n$1\r\nk\r\n" in log
    assert b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n" in log


def test_status_tables_are_fresh(srv: Any) -> None:
    """+OK's tables are made ahead in batches: each is still a table of its own."""
    s, _ = srv
    c = client(s)
    script = (
        "local a = redis.call('set', KEYS[1], 'v') a.ok = 'X' "
        "local b = redis.call('set', KEYS[1], 'v') "
        "return {a.ok, b.ok, tostring(rawequal(a, b)), type(b)}"
    )
    for _ in range(40):  # past a batch
        reply = call(s, c, "EVAL", script, "1", "k")
        assert reply == b"*4\r\n$1\r\nX\r\n$2\r\nOK\r\n$5\r\nfalse\r\n$5\r\ntable\r\n"
    assert call(s, c, "EVAL", "return redis.call('ping')", "0") == b"+PONG\r\n"


# -- XREADGROUP ------------------------------------------------------------------------


def _stream(s: Server, c: Any) -> None:
    call(s, c, "XADD", "st", "1-1", "f", "v1")
    call(s, c, "XADD", "st", "1-2", "f", "v2")
    call(s, c, "XGROUP", "CREATE", "st", "g", "0")


def test_xreadgroup_effects_as_redis_propagates_them(srv: Any) -> None:
    s, effects = srv
    c = client(s)
    _stream(s, c)
    effects.clear()
    s.now_ms = lambda: 5000  # type: ignore[method-assign]
    reply = call(s, c, "XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "st", ">")
    assert (
        reply == b"*1\r\n*2\r\n$2\r\nst\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$2\r\nv1\r\n"
    )
    assert effects == [
        [b"MULTI"],
        [b"XCLAIM", b"st", b"g", b"alice", b"0", b"1-1", b"TIME", b"5000", b"RETRYCOUNT",
         b"1", b"FORCE", b"JUSTID", b"LASTID", b"1-1"],
        [b"XGROUP", b"SETID", b"st", b"g", b"1-1", b"ENTRIESREAD", b"1"],
        [b"EXEC"],
    ]  # fmt: skip
    effects.clear()
    # Reading the consumer's own history propagates nothing (not the command either).
    reply = call(s, c, "XREADGROUP", "GROUP", "g", "alice", "STREAMS", "st", "0")
    assert b"v1" in reply and effects == []
    # NOACK by a new consumer: its creation goes out, no XCLAIM.
    call(s, c, "XREADGROUP", "GROUP", "g", "bob", "NOACK", "STREAMS", "st", ">")
    assert effects == [
        [b"MULTI"],
        [b"XGROUP", b"CREATECONSUMER", b"st", b"g", b"bob"],
        [b"XGROUP", b"SETID", b"st", b"g", b"1-2", b"ENTRIESREAD", b"2"],
        [b"EXEC"],
    ]


def test_xreadgroup_counted_once_while_the_engine_only_counts_writes(srv: Any) -> None:
    s, effects = srv
    c = client(s)
    _stream(s, c)
    counter = Counter()
    s.count_only = counter
    effects.clear()
    reply = call(s, c, "XREADGROUP", "GROUP", "g", "alice", "STREAMS", "st", ">")
    assert reply.count(b"*2\r\n$1\r\nf\r\n") == 2
    assert counter.master_repl_offset == 1 and c.woff == 1 and c.prop is None
    assert effects == []
    pending = call(s, c, "XPENDING", "st", "g")
    assert pending.startswith(b"*4\r\n:2\r\n$3\r\n1-1\r\n$3\r\n1-2\r\n")
    assert call(s, c, "XACK", "st", "g", "1-1", "1-2", "00001-0002") == b":2\r\n"


def _xreadgroup_ops(rng: random.Random) -> list[list[bytes]]:
    """Random stream work around XREADGROUP in every shape (the short path's and others)."""
    ops: list[list[bytes]] = []
    for i in range(200):
        r = rng.random()
        key = rng.choice([b"s1", b"s2", b"str"])
        g, con = rng.choice([b"g", b"h", b"nog"]), rng.choice([b"a", b"b", b"c"])
        if r < 0.3:
            ops.append([b"XADD", key, b"*", b"f", b"v%d" % i])
        elif r < 0.35:
            ops.append([b"XGROUP", b"CREATE", key, g, rng.choice([b"0", b"$"]), b"MKSTREAM"])
        elif r < 0.4:
            ops.append([b"XDEL", key, rng.choice([b"0-1", b"%d-0" % (1000 + i - 3)])])
        elif r < 0.45:
            ops.append([b"XACK", key, b"g", b"%d-0" % (1000 + i - 2)])
        elif r < 0.48:
            ops.append([b"SET", b"str", b"x"])
        elif r < 0.5:
            ops.append([b"XTRIM", key, b"MAXLEN", b"3"])
        elif r < 0.55:
            ops.append([b"HELLO", rng.choice([b"2", b"3"])])
        else:
            head = [b"XREADGROUP", b"GROUP", g, con]
            count = [b"COUNT", rng.choice([b"1", b"2", b"0", b"-1", b"x"])]
            ops.append(
                rng.choice(
                    [
                        [*head, *count, b"STREAMS", key, b">"],
                        [*head, b"STREAMS", key, b">"],
                        [*head, b"STREAMS", key, b"0"],
                        [*head, *count, b"NOACK", b"STREAMS", key, b">"],
                        [b"XREADGROUP", b"group", g, con, b"count", b"1", b"streams", key, b">"],
                    ]
                )
            )
    return ops


def _run_ops(ops: list[list[bytes]], short: bool, feed: bool) -> tuple[Any, ...]:
    """Replies, effects, counters and group state after ``ops``, XREADGROUP served by its
    handler (``short``) or by the general path."""
    s = build_engine(load_config(None, ""))
    effects: list[list[bytes]] = []
    if feed:
        s.add_feed(lambda db, argv: effects.append(list(argv)))
    now = [1_000_000]
    s.now_ms = lambda: now[0]  # type: ignore[method-assign]
    entry = s.dispatch.get(b"xreadgroup")
    assert entry is not None
    general = lambda c, argv: streams_read._xread(c, argv, True)  # noqa: E731
    entry.handler = streams_read.xreadgroup if short else general
    c = client(s)
    out = []
    try:
        for op in ops:
            now[0] += 1
            out.append(s.process(c, list(op)))
        for key in (b"s1", b"s2"):
            for g in (b"g", b"h"):
                out.append(s.process(c, [b"XPENDING", key, g, b"-", b"+", b"100"]))
                out.append(s.process(c, [b"XINFO", b"CONSUMERS", key, g]))
            out.append(s.process(c, [b"XINFO", b"GROUPS", key]))
    finally:
        entry.handler = streams_read.xreadgroup
    return out, effects, s.stat_keyspace_hits, s.stat_keyspace_misses, s.dirty


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("feed", [False, True])
def test_xreadgroup_short_path_matches_the_general_one(seed: int, feed: bool) -> None:
    """``XREADGROUP GROUP g c [COUNT n] STREAMS key >`` skips the general parser: the same
    replies, effects, counters and group state as the general path, in both protocols."""
    ops = _xreadgroup_ops(random.Random(seed))
    assert _run_ops(ops, True, feed) == _run_ops(ops, False, feed)
