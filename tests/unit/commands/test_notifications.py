"""Keyspace notifications of every write command through the server core: event names,
classes, channels and order, as redis-server 7.0.15 publishes them (run side by side with
``--notify-keyspace-events KEAn`` and a ``PSUBSCRIBE *`` listener while writing these
tests; Redis 7.2 publishes the same events for these commands).

Zset events belong to the sorted-set module and are not tested here.
"""

from __future__ import annotations

from typing import Any

import hiredis
import pytest

from conftest import Harness

Event = tuple[str, str] | tuple[str, str, int]  # (event, key) or (event, key, db)


class Listener:
    """A client subscribed to every channel; ``take`` returns what it got since the last
    call as (channel, message) pairs."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.c = h.client()
        h.run(self.c, "PSUBSCRIBE", "*")
        self.seen = len(self.c.conn.written)

    def take(self) -> list[tuple[bytes, bytes]]:
        reader = hiredis.Reader()
        for frame in self.c.conn.written[self.seen :]:
            reader.feed(frame)
        self.seen = len(self.c.conn.written)
        out = []
        while (msg := reader.gets()) is not False:
            assert msg[0] == b"pmessage", msg
            out.append((msg[2], msg[3]))
        return out


def both(*events: Event) -> list[tuple[bytes, bytes]]:
    """What K and E publish for ``events``: per event, the keyspace message first."""
    out = []
    for ev in events:
        name, key = ev[0].encode(), ev[1].encode()
        db = ev[2] if len(ev) == 3 else 0
        out.append((b"__keyspace@%d__:%s" % (db, key), name))
        out.append((b"__keyevent@%d__:%s" % (db, name), key))
    return out


@pytest.fixture
def h() -> Harness:
    return Harness("notify-keyspace-events KEAn")


def run_case(h: Harness, setup: list[str], cmd: str) -> list[tuple[bytes, bytes]]:
    c = h.client()
    listener = Listener(h)
    for line in setup:
        h.run(c, *line.split())
    listener.take()
    reply = h.run(c, *cmd.split())
    assert not reply.startswith(b"-"), (cmd, reply)
    return listener.take()


# (setup, command, events), each checked against redis-server 7.0.15.
CASES: list[tuple[list[str], str, list[Event]]] = [
    # -- strings
    ([], "SET a 1", [("new", "a"), ("set", "a")]),
    (["SET a 0"], "SET a 1", [("set", "a")]),
    (["SET a 0"], "SET a 1 NX", []),
    ([], "SET a 1 XX", []),
    (["SET a 0"], "SET a 1 EX 100", [("set", "a"), ("expire", "a")]),
    (["SET a 0"], "SET a 1 PX 100000 GET", [("set", "a"), ("expire", "a")]),
    (["SET a 0 EX 100"], "SET a 1 KEEPTTL", [("set", "a")]),
    ([], "SET a 1 EXAT 1", [("new", "a"), ("set", "a"), ("expire", "a")]),
    ([], "SETNX a 1", [("new", "a"), ("set", "a")]),
    (["SET a 0"], "SETNX a 1", []),
    ([], "SETEX a 100 v", [("new", "a"), ("set", "a"), ("expire", "a")]),
    (["SET a 0"], "PSETEX a 100000 v", [("set", "a"), ("expire", "a")]),
    ([], "GETSET a 1", [("new", "a"), ("set", "a")]),
    (["SET a 0"], "GETDEL a", [("del", "a")]),
    ([], "GETDEL a", []),
    (["SET a 0"], "GETEX a", []),
    (["SET a 0"], "GETEX a EX 100", [("expire", "a")]),
    (["SET a 0"], "GETEX a EXAT 1", [("del", "a")]),
    (["SET a 0 EX 100"], "GETEX a PERSIST", [("persist", "a")]),
    (["SET a 0"], "GETEX a PERSIST", []),
    (
        [],
        "MSET a 1 b 2 a 3",
        [("new", "a"), ("set", "a"), ("new", "b"), ("set", "b"), ("set", "a")],
    ),
    ([], "MSETNX a 1 b 2", [("new", "a"), ("set", "a"), ("new", "b"), ("set", "b")]),
    (["SET b 0"], "MSETNX a 1 b 2", []),
    ([], "INCR n", [("new", "n"), ("incrby", "n")]),
    (["SET n 1"], "INCR n", [("incrby", "n")]),
    (["SET n 1"], "DECR n", [("incrby", "n")]),
    (["SET n 1"], "INCRBY n 5", [("incrby", "n")]),
    (["SET n 1"], "DECRBY n 5", [("incrby", "n")]),
    ([], "INCRBYFLOAT n 1.5", [("new", "n"), ("incrbyfloat", "n")]),
    (["SET n 1"], "INCRBYFLOAT n 1.5", [("incrbyfloat", "n")]),
    ([], "APPEND s x", [("new", "s"), ("append", "s")]),
    (["SET s a"], "APPEND s x", [("append", "s")]),
    ([], "SETRANGE s 2 ab", [("new", "s"), ("setrange", "s")]),
    (["SET s abcd"], "SETRANGE s 1 x", [("setrange", "s")]),
    # -- generic
    (["SET a 1", "SET b 2"], "DEL a b c a", [("del", "a"), ("del", "b")]),
    (["SET a 1"], "UNLINK a", [("del", "a")]),
    (
        ["SET a 1 EX 100", "SET b 2"],
        "RENAME a b",
        [("new", "b"), ("rename_from", "a"), ("rename_to", "b")],
    ),
    (["SET a 1"], "RENAME a a", []),
    (["SET a 1"], "RENAMENX a b", [("new", "b"), ("rename_from", "a"), ("rename_to", "b")]),
    (["SET a 1", "SET b 2"], "RENAMENX a b", []),
    (["SET a 1"], "COPY a b", [("new", "b"), ("copy_to", "b")]),
    (["SET a 1", "SET b 2"], "COPY a b", []),
    (["SET a 1", "SET b 2"], "COPY a b REPLACE", [("new", "b"), ("copy_to", "b")]),
    (["SET a 1"], "COPY a b DB 2", [("new", "b", 2), ("copy_to", "b", 2)]),
    (
        ["HSET a f v"],
        "MOVE a 3",
        [("new", "a", 3), ("move_from", "a", 0), ("move_to", "a", 3)],
    ),
    (["SET a 1"], "EXPIRE a 100", [("expire", "a")]),
    (["SET a 1"], "PEXPIRE a 100000", [("expire", "a")]),
    (["SET a 1"], "EXPIREAT a 4000000000", [("expire", "a")]),
    (["SET a 1"], "PEXPIREAT a 4000000000000", [("expire", "a")]),
    (["SET a 1"], "EXPIRE a 100 XX", []),
    (["SET a 1"], "EXPIRE a 0", [("del", "a")]),
    (["SET a 1"], "PEXPIREAT a 1", [("del", "a")]),
    (["SET a 1 EX 100"], "PERSIST a", [("persist", "a")]),
    (["SET a 1"], "PERSIST a", []),
    (["SET a 1"], "SWAPDB 0 1", []),
    (["SET a 1", "SELECT 1", "SET b 1"], "FLUSHALL", []),
    (["SET a 1"], "FLUSHDB", []),
    # -- hashes
    ([], "HSET h a 1 b 2", [("new", "h"), ("hset", "h")]),
    (["HSET h a 1"], "HSET h a 1", [("hset", "h")]),  # even when nothing changes
    (["HSET h a 1"], "HMSET h a 2 b 3", [("hset", "h")]),
    ([], "HSETNX h a 1", [("new", "h"), ("hset", "h")]),
    (["HSET h a 1"], "HSETNX h a 2", []),
    (["HSET h a 1 b 2"], "HDEL h a x", [("hdel", "h")]),
    (["HSET h a 1 b 2"], "HDEL h a b", [("hdel", "h"), ("del", "h")]),
    (["HSET h a 1"], "HDEL h x", []),
    ([], "HINCRBY h a 5", [("new", "h"), ("hincrby", "h")]),
    (["HSET h a 1"], "HINCRBYFLOAT h a 1.5", [("hincrbyfloat", "h")]),
    # -- lists
    ([], "LPUSH l a b", [("new", "l"), ("lpush", "l")]),
    (["RPUSH l a"], "LPUSH l b", [("lpush", "l")]),
    (["RPUSH l a"], "RPUSH l b c", [("rpush", "l")]),
    (["RPUSH l a"], "RPUSH l b", [("rpush", "l")]),
    (["RPUSH l a"], "LPUSHX l b", [("lpush", "l")]),
    (["RPUSH l a"], "RPUSHX l b", [("rpush", "l")]),
    ([], "RPUSHX l b", []),
    (["RPUSH l a b"], "LPOP l", [("lpop", "l")]),
    (["RPUSH l a"], "LPOP l", [("lpop", "l"), ("del", "l")]),
    (["RPUSH l a b"], "RPOP l", [("rpop", "l")]),
    (["RPUSH l a"], "RPOP l", [("rpop", "l"), ("del", "l")]),
    (["RPUSH l a b c"], "LPOP l 2", [("lpop", "l")]),
    (["RPUSH l a b c"], "RPOP l 5", [("rpop", "l"), ("del", "l")]),
    (["RPUSH l a"], "LPOP l 0", []),
    (["RPUSH l a b c"], "LMPOP 2 x l RIGHT COUNT 2", [("rpop", "l")]),
    (["RPUSH l a b c"], "LMPOP 1 l LEFT COUNT 3", [("lpop", "l"), ("del", "l")]),
    (["RPUSH l a b"], "BLPOP x l 0", [("lpop", "l")]),
    (["RPUSH l a"], "BRPOP l 0", [("rpop", "l"), ("del", "l")]),
    (["RPUSH l a b"], "BLMPOP 0 1 l LEFT COUNT 9", [("lpop", "l"), ("del", "l")]),
    (["RPUSH l a b"], "LSET l 0 z", [("lset", "l")]),
    (["RPUSH l a b"], "LINSERT l BEFORE b y", [("linsert", "l")]),
    (["RPUSH l a b"], "LINSERT l BEFORE x y", []),
    (["RPUSH l a b a"], "LREM l 0 a", [("lrem", "l")]),
    (["RPUSH l a a"], "LREM l 0 a", [("lrem", "l"), ("del", "l")]),
    (["RPUSH l a b"], "LREM l 0 x", []),
    (["RPUSH l a b"], "LTRIM l 0 -1", [("ltrim", "l")]),  # even when nothing is trimmed
    (["RPUSH l a b"], "LTRIM l 1 -1", [("ltrim", "l")]),
    (["RPUSH l a b"], "LTRIM l 5 10", [("ltrim", "l"), ("del", "l")]),
    (
        ["RPUSH l a b"],
        "LMOVE l m LEFT RIGHT",
        [("new", "m"), ("rpush", "m"), ("lpop", "l")],
    ),
    (
        ["RPUSH l a", "RPUSH m b"],
        "RPOPLPUSH l m",
        [("lpush", "m"), ("rpop", "l"), ("del", "l")],
    ),
    (["RPUSH l a b"], "LMOVE l l LEFT RIGHT", [("rpush", "l"), ("lpop", "l")]),
    (
        ["RPUSH l a"],
        "BLMOVE l m RIGHT LEFT 0",
        [("new", "m"), ("lpush", "m"), ("rpop", "l"), ("del", "l")],
    ),
    (["RPUSH l a b"], "BRPOPLPUSH l m 0", [("new", "m"), ("lpush", "m"), ("rpop", "l")]),
    ([], "LMOVE l m LEFT RIGHT", []),
    # -- sets
    ([], "SADD s a b", [("new", "s"), ("sadd", "s")]),
    (["SADD s a"], "SADD s a b", [("sadd", "s")]),
    (["SADD s a"], "SADD s a", []),
    (["SADD s a b"], "SREM s a x", [("srem", "s")]),
    (["SADD s a b"], "SREM s a b", [("srem", "s"), ("del", "s")]),
    (["SADD s a"], "SREM s x", []),
    (["SADD s a b"], "SMOVE s t a", [("srem", "s"), ("new", "t"), ("sadd", "t")]),
    (["SADD s a", "SADD t b"], "SMOVE s t a", [("srem", "s"), ("del", "s"), ("sadd", "t")]),
    (["SADD s a b", "SADD t a"], "SMOVE s t a", [("srem", "s")]),
    (["SADD s a b"], "SMOVE s s a", []),
    (["SADD s a b"], "SMOVE s t x", []),
    (["SADD s a b"], "SPOP s", [("spop", "s")]),
    (["SADD s a"], "SPOP s", [("spop", "s"), ("del", "s")]),
    (["SADD s a b c"], "SPOP s 2", [("spop", "s")]),
    (["SADD s a b c"], "SPOP s 9", [("spop", "s"), ("del", "s")]),
    (["SADD s a b"], "SPOP s 0", []),
    (["SADD s a b", "SADD t b"], "SINTERSTORE d s t", [("new", "d"), ("sinterstore", "d")]),
    (["SADD s a b", "SET d x"], "SUNIONSTORE d s t", [("sunionstore", "d")]),
    (["SADD s a b", "SADD t b"], "SDIFFSTORE d s t", [("new", "d"), ("sdiffstore", "d")]),
    (["SADD s a", "SET d x"], "SINTERSTORE d s t", [("del", "d")]),
    (["SADD s a"], "SDIFFSTORE d s s", []),
]


@pytest.mark.parametrize(("setup", "cmd", "events"), CASES, ids=[c[1] for c in CASES])
def test_events_of_each_write(h: Harness, setup: list[str], cmd: str, events: list[Event]) -> None:
    assert run_case(h, setup, cmd) == both(*events)


def test_events_are_published_in_the_selected_database(h: Harness) -> None:
    assert run_case(h, ["SELECT 5"], "LPUSH l a") == both(("new", "l", 5), ("lpush", "l", 5))


def test_expired_key_is_announced_before_it_is_created_again(h: Harness) -> None:
    c = h.client()
    h.run(c, "SET", "a", "1", "PXAT", "1")  # already expired, not yet reclaimed
    listener = Listener(h)
    h.run(c, "SETNX", "a", "2")
    assert listener.take() == both(("expired", "a"), ("new", "a"), ("set", "a"))


def test_rename_onto_an_expired_destination_expires_it_first(h: Harness) -> None:
    c = h.client()
    h.run(c, "SET", "b", "1", "PXAT", "1")
    h.run(c, "SET", "a", "2")
    listener = Listener(h)
    h.run(c, "RENAME", "a", "b")
    assert listener.take() == both(
        ("expired", "b"), ("new", "b"), ("rename_from", "a"), ("rename_to", "b")
    )


def test_transaction_publishes_in_execution_order(h: Harness) -> None:
    c = h.client()
    listener = Listener(h)
    h.run(c, "MULTI")
    h.run(c, "SET", "a", "1")
    h.run(c, "RPUSH", "l", "x")
    assert listener.take() == []
    h.run(c, "EXEC")
    assert listener.take() == both(("new", "a"), ("set", "a"), ("new", "l"), ("rpush", "l"))


def test_debug_reload_announces_nothing_and_populate_announces_new_keys(h: Harness) -> None:
    c = h.client()
    h.run(c, "SET", "a", "1")
    listener = Listener(h)
    assert h.run(c, "DEBUG", "RELOAD") == b"+OK\r\n"
    assert listener.take() == []
    h.run(c, "DEBUG", "POPULATE", "2", "p")
    assert listener.take() == both(("new", "p:0"), ("new", "p:1"))
    h.run(c, "SET", "a", "2")  # the reload kept the key: no `new`
    assert listener.take() == both(("set", "a"))


# -- which classes and channels are on ---------------------------------------------------


def events_with(flags: str, *cmds: str) -> list[tuple[bytes, bytes]]:
    h = Harness(f"notify-keyspace-events {flags}")
    c = h.client()
    listener = Listener(h)
    for cmd in cmds:
        h.run(c, *cmd.split())
    return listener.take()


def test_nothing_is_published_by_default() -> None:
    h = Harness()
    c = h.client()
    listener = Listener(h)
    for cmd in ("SET a 1", "INCR n", "LPUSH l a", "LPOP l", "HSET h a 1", "SADD s a", "DEL a"):
        h.run(c, *cmd.split())
    assert listener.take() == []
    assert not any(db.notify_created for db in h.server.dbs)


def test_keyspace_or_keyevent_channel_alone() -> None:
    assert events_with("K$", "SET a 1") == [(b"__keyspace@0__:a", b"set")]
    assert events_with("E$", "SET a 1") == [(b"__keyevent@0__:set", b"a")]
    assert events_with("$", "SET a 1") == []  # neither K nor E: nothing


def test_classes_filter_events() -> None:
    cmds = ("SET a 1 EX 100", "RPUSH l x", "LPOP l", "HSET h f v", "SADD s m", "INCR n")
    assert events_with("Kg", *cmds) == [
        (b"__keyspace@0__:a", b"expire"),
        (b"__keyspace@0__:l", b"del"),
    ]
    assert events_with("Kl", *cmds) == [
        (b"__keyspace@0__:l", b"rpush"),
        (b"__keyspace@0__:l", b"lpop"),
    ]
    assert events_with("Kh", *cmds) == [(b"__keyspace@0__:h", b"hset")]
    assert events_with("Ks", *cmds) == [(b"__keyspace@0__:s", b"sadd")]
    assert events_with("K$", *cmds) == [
        (b"__keyspace@0__:a", b"set"),
        (b"__keyspace@0__:n", b"incrby"),
    ]


def test_new_is_not_part_of_a() -> None:
    assert events_with("KA", "SET a 1") == [(b"__keyspace@0__:a", b"set")]
    assert events_with("Kn", "SET a 1", "SET a 2", "MSET a 1 b 2") == [
        (b"__keyspace@0__:a", b"new"),
        (b"__keyspace@0__:b", b"new"),
    ]


def test_config_set_turns_events_on_and_off_and_reads_back_like_redis(h: Harness) -> None:
    c = h.client()
    listener = Listener(h)

    def config_get() -> bytes:
        reply = h.run(c, "CONFIG", "GET", "notify-keyspace-events")
        return reply.split(b"\r\n")[-2]

    h.run(c, "CONFIG", "SET", "notify-keyspace-events", "")
    assert config_get() == b""
    h.run(c, "SET", "a", "1")
    assert listener.take() == []
    assert h.run(c, "CONFIG", "SET", "notify-keyspace-events", "KEA") == b"+OK\r\n"
    assert config_get() == b"AKE"
    h.run(c, "SET", "b", "1")
    assert listener.take() == both(("set", "b"))  # no `new`: not part of A
    h.run(c, "CONFIG", "SET", "notify-keyspace-events", "Kn")
    assert config_get() == b"nK"
    h.run(c, "SET", "d", "1")
    assert listener.take() == [(b"__keyspace@0__:d", b"new")]
    h.run(c, "CONFIG", "SET", "notify-keyspace-events", "AKEnm")
    assert config_get() == b"AKEm"  # Redis prints no 'n' beside 'A', yet it is on
    h.run(c, "SET", "e", "1")
    assert listener.take() == both(("new", "e"), ("set", "e"))
    h.run(c, "CONFIG", "SET", "notify-keyspace-events", "g$lshzxetdKE")
    assert config_get() == b"AKE"


def test_notifications_off_keeps_the_keyspace_hook_off(h: Harness) -> None:
    c = h.client()
    assert all(db.notify_created for db in h.server.dbs)
    h.run(c, "CONFIG", "SET", "notify-keyspace-events", "KEA")
    assert not any(db.notify_created for db in h.server.dbs)


def test_effects_and_replies_do_not_change_with_notifications(h: Harness) -> None:
    quiet = Harness()
    script = [
        "SET a 1 PXAT 4000000000000",  # absolute: the two servers run at different ms
        "MSET b 1 c 2",
        "INCRBYFLOAT n 1.5",
        "RPUSH l a b c",
        "LMOVE l m LEFT RIGHT",
        "HSET h a 1",
        "HDEL h a",
        "SADD s a b",
        "SPOP s 2",
        "RENAME a z",
        "GETEX z PERSIST",
    ]
    loud: Any = h.client()
    calm: Any = quiet.client()
    Listener(h)
    for line in script:
        assert h.run(loud, *line.split()) == quiet.run(calm, *line.split()), line
    assert [e for e in h.effects if e[1][0] != b"SREM"] == [
        e for e in quiet.effects if e[1][0] != b"SREM"
    ]


def test_keymiss_is_published_by_read_misses_only_when_enabled() -> None:
    h = Harness("notify-keyspace-events KEm")
    listener = Listener(h)
    c = h.client()
    h.run(c, "GET", "nokey")
    h.run(c, "HGET", "nohash", "f")
    h.run(c, "SET", "present", "v")
    h.run(c, "GET", "present")
    assert listener.take() == both(("keymiss", "nokey"), ("keymiss", "nohash"))
    assert h.server.stat_keyspace_misses == 2
    quiet = Harness("notify-keyspace-events KEA")  # A does not include m (Redis)
    listener = Listener(quiet)
    c = quiet.client()
    quiet.run(c, "GET", "nokey")
    assert listener.take() == []


# Commands whose lookups are reads in Redis 7 (lookupKeyRead): a missing key publishes
# keymiss and counts a miss, a present one counts a hit (redis-server 7.0.15, probed with
# INFO stats around each command). Keys: "x" is missing, "s" a string, "z" a sorted set.
READ_LOOKUPS = [
    ("STRLEN x", ["x"], 0),
    ("GETRANGE x 0 1", ["x"], 0),
    ("SUBSTR x 0 1", ["x"], 0),
    ("MGET x s x", ["x", "x"], 1),
    ("EXISTS x s", ["x"], 1),
    ("TOUCH s x", ["x"], 1),
    ("TYPE x", ["x"], 0),
    ("TTL x", ["x"], 0),
    ("PTTL s", [], 1),
    ("EXPIRETIME x", ["x"], 0),
    ("PEXPIRETIME x", ["x"], 0),
    ("COPY x d", ["x"], 0),
    ("COPY s x", [], 1),
    ("GETEX x", ["x"], 0),
    ("GETDEL x", ["x"], 0),
    ("GETSET x v", ["x"], 0),
    ("SET x v GET", ["x"], 0),
    ("SET s v GET", [], 1),
    ("ZUNIONSTORE d 2 x z", ["x"], 1),
    ("ZINTERSTORE d 2 z x", ["x"], 1),
    ("ZDIFFSTORE d 2 z x", ["x"], 1),
]


@pytest.mark.parametrize(("cmd", "missed", "hits"), READ_LOOKUPS)
def test_read_lookups_publish_keymiss_and_count_hits_and_misses(
    cmd: str, missed: list[str], hits: int
) -> None:
    h = Harness("notify-keyspace-events Km")
    c = h.client()
    h.run(c, "SET", "s", "v")
    h.run(c, "ZADD", "z", "1", "a")
    listener = Listener(h)
    srv = h.server
    hits0, misses0 = srv.stat_keyspace_hits, srv.stat_keyspace_misses
    h.run(c, *cmd.split())
    assert listener.take() == [(b"__keyspace@0__:" + k.encode(), b"keymiss") for k in missed]
    assert srv.stat_keyspace_misses - misses0 == len(missed)
    assert srv.stat_keyspace_hits - hits0 == hits


def test_object_counts_hits_and_misses_without_keymiss() -> None:
    """OBJECT looks its key up with LOOKUP_NONOTIFY: counted, never announced."""
    h = Harness("notify-keyspace-events KEm")
    c = h.client()
    h.run(c, "SET", "s", "v")
    listener = Listener(h)
    h.run(c, "OBJECT", "ENCODING", "x")
    h.run(c, "OBJECT", "ENCODING", "s")
    assert listener.take() == []
    assert (h.server.stat_keyspace_hits, h.server.stat_keyspace_misses) == (1, 1)


def test_write_lookups_publish_no_keymiss() -> None:
    """MOVE, RENAME, SMOVE, LMOVE, APPEND, INCR and SETNX look keys up for writing: no
    keymiss, no miss counted (7.0.15)."""
    h = Harness("notify-keyspace-events Km")
    c = h.client()
    h.run(c, "SET", "s", "v")
    listener = Listener(h)
    for line in ("MOVE x 1", "RENAME x y", "SMOVE x y m", "LMOVE x y LEFT LEFT", "APPEND y v"):
        h.run(c, *line.split())
    for line in ("INCR n", "SETNX w v"):
        h.run(c, *line.split())
    assert listener.take() == []
    assert h.server.stat_keyspace_misses == 0
