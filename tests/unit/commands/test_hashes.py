"""Hash commands through the server core: replies in RESP2 and RESP3, error texts and their
order, dirty counts, keyspace hit/miss stats, WATCH, effects, HRANDFIELD and HSCAN.

Expected bytes are redis-server 7.0.15's (run side by side while writing these tests; 7.0
and 7.2 agree on the hash family) and the Redis 7.2 reply schemas (HRANDFIELD WITHVALUES in
RESP3 is an array of [field, value] arrays).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ackdb.commands import hashes
from ackdb.commands.base import CommandError
from ackdb.commands.hashes import parse_scan_cursor
from ackdb.keyspace import scanpage
from conftest import Harness

WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
NOT_INT = b"-ERR value is not an integer or out of range\r\n"
SYNTAX = b"-ERR syntax error\r\n"
NIL2 = b"$-1\r\n"
NIL3 = b"_\r\n"


def bulks(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in items)


def resp3(h: Harness):  # type: ignore[no-untyped-def]
    c = h.client()
    assert h.run(c, "HELLO", "3").startswith(b"%7\r\n")
    return c


@pytest.fixture
def h() -> Harness:
    return Harness()


# -- HSET / HMSET / HSETNX ------------------------------------------------------------------


def test_hset_counts_new_fields_and_last_value_wins(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "HSET", "h", "a", "1", "b", "2") == b":2\r\n"
    assert h.run(c, "HSET", "h", "a", "3", "c", "4") == b":1\r\n"
    assert h.run(c, "HSET", "h", "z", "1", "z", "2") == b":1\r\n"
    assert h.server.dbs[0].data[b"h"] == {b"a": b"3", b"b": b"2", b"c": b"4", b"z": b"2"}


def test_hset_and_hmset_arity(h: Harness) -> None:
    c = h.client()
    for name in ("HSET", "HMSET"):
        err = b"-ERR wrong number of arguments for '%s' command\r\n" % name.lower().encode()
        assert h.run(c, name, "h", "a") == err  # arity -4
        assert h.run(c, name, "h", "a", "1", "b") == err  # odd pairs
    assert h.run(c, "EXISTS", "h") == b":0\r\n"


def test_hmset_replies_ok(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "HMSET", "h", "x", "1", "y", "2") == b"+OK\r\n"
    assert h.run(c, "HGETALL", "h") == bulks(b"x", b"1", b"y", b"2")


def test_hsetnx(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "HSETNX", "h", "a", "1") == b":1\r\n"
    assert h.run(c, "HSETNX", "h", "a", "2") == b":0\r\n"
    assert h.run(c, "HSETNX", "h", "e", "") == b":1\r\n"
    assert h.run(c, "HGET", "h", "a") == b"$1\r\n1\r\n"
    assert h.run(c, "HGET", "h", "e") == b"$0\r\n\r\n"


@pytest.mark.parametrize(
    "args",
    [
        ("HSET", "s", "a", "1"),
        ("HMSET", "s", "a", "1"),
        ("HSETNX", "s", "a", "1"),
        ("HGET", "s", "a"),
        ("HMGET", "s", "a"),
        ("HDEL", "s", "a"),
        ("HEXISTS", "s", "a"),
        ("HLEN", "s"),
        ("HSTRLEN", "s", "a"),
        ("HGETALL", "s"),
        ("HKEYS", "s"),
        ("HVALS", "s"),
        ("HINCRBY", "s", "a", "1"),
        ("HINCRBYFLOAT", "s", "a", "1"),
        ("HRANDFIELD", "s"),
        ("HRANDFIELD", "s", "0"),
        ("HRANDFIELD", "s", "-1", "WITHVALUES"),
        ("HSCAN", "s", "0"),
        ("HSCAN", "s", "0", "foo"),  # WRONGTYPE before option errors
    ],
)
def test_wrongtype(h: Harness, args: tuple[str, ...]) -> None:
    c = h.client()
    h.run(c, "SET", "s", "x")
    assert h.run(c, *args) == WRONGTYPE
    assert h.run(c, "GET", "s") == b"$1\r\nx\r\n"


# -- reads ---------------------------------------------------------------------------------


def test_reads_resp2(h: Harness) -> None:
    c = h.client()
    h.run(c, "HSET", "h", "a", "1", "b", "22")
    assert h.run(c, "HGET", "h", "a") == b"$1\r\n1\r\n"
    assert h.run(c, "HGET", "h", "nope") == NIL2
    assert h.run(c, "HGET", "nokey", "a") == NIL2
    assert h.run(c, "HMGET", "h", "a", "nope", "b") == b"*3\r\n$1\r\n1\r\n$-1\r\n$2\r\n22\r\n"
    assert h.run(c, "HMGET", "nokey", "a", "b") == b"*2\r\n$-1\r\n$-1\r\n"
    assert h.run(c, "HEXISTS", "h", "a") == b":1\r\n"
    assert h.run(c, "HEXISTS", "h", "nope") == b":0\r\n"
    assert h.run(c, "HEXISTS", "nokey", "a") == b":0\r\n"
    assert h.run(c, "HLEN", "h") == b":2\r\n"
    assert h.run(c, "HLEN", "nokey") == b":0\r\n"
    assert h.run(c, "HSTRLEN", "h", "b") == b":2\r\n"
    assert h.run(c, "HSTRLEN", "h", "nope") == b":0\r\n"
    assert h.run(c, "HSTRLEN", "nokey", "a") == b":0\r\n"
    assert h.run(c, "HGETALL", "h") == bulks(b"a", b"1", b"b", b"22")
    assert h.run(c, "HGETALL", "nokey") == b"*0\r\n"
    assert h.run(c, "HKEYS", "h") == bulks(b"a", b"b")
    assert h.run(c, "HKEYS", "nokey") == b"*0\r\n"
    assert h.run(c, "HVALS", "h") == bulks(b"1", b"22")
    assert h.run(c, "HVALS", "nokey") == b"*0\r\n"


def test_reads_resp3(h: Harness) -> None:
    c = resp3(h)
    h.run(c, "HSET", "h", "a", "1", "b", "2")
    assert h.run(c, "HGETALL", "h") == b"%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    assert h.run(c, "HGETALL", "nokey") == b"%0\r\n"
    assert h.run(c, "HGET", "h", "nope") == NIL3
    assert h.run(c, "HMGET", "h", "a", "nope") == b"*2\r\n$1\r\n1\r\n_\r\n"
    assert h.run(c, "HKEYS", "h") == bulks(b"a", b"b")
    assert h.run(c, "HVALS", "nokey") == b"*0\r\n"


def test_read_commands_count_keyspace_hits_and_misses_by_key(h: Harness) -> None:
    # Redis lookupKeyRead: a found key is a hit (even a missing field, even WRONGTYPE).
    c = h.client()
    h.run(c, "HSET", "h", "a", "1")
    h.run(c, "SET", "s", "x")
    srv = h.server
    srv.stat_keyspace_hits = srv.stat_keyspace_misses = 0
    for args in [("HGET", "h", "a"), ("HGET", "h", "nope"), ("HEXISTS", "h", "a"),
                 ("HSTRLEN", "h", "a"), ("HGET", "s", "a")]:  # fmt: skip
        h.run(c, *args)
    for args in [("HGET", "nokey", "a"), ("HMGET", "nokey", "a"), ("HLEN", "nokey"),
                 ("HRANDFIELD", "nokey"), ("HSCAN", "nokey", "0")]:  # fmt: skip
        h.run(c, *args)
    assert (srv.stat_keyspace_hits, srv.stat_keyspace_misses) == (5, 5)
    h.run(c, "HSET", "nokey2", "a", "1")  # writes do not count
    h.run(c, "HDEL", "nokey3", "a")
    assert (srv.stat_keyspace_hits, srv.stat_keyspace_misses) == (5, 5)


# -- HDEL ----------------------------------------------------------------------------------


def test_hdel_counts_and_deletes_an_emptied_hash(h: Harness) -> None:
    c = h.client()
    h.run(c, "HSET", "h", "a", "1", "b", "2", "c", "3")
    assert h.run(c, "HDEL", "h", "nope") == b":0\r\n"
    assert h.run(c, "HDEL", "h", "a", "a", "nope") == b":1\r\n"
    assert h.run(c, "HDEL", "nokey", "a") == b":0\r\n"
    assert h.run(c, "HDEL", "h", "b", "c", "d") == b":2\r\n"
    assert b"h" not in h.server.dbs[0].data
    assert h.run(c, "EXISTS", "h") == b":0\r\n"
    assert h.run(c, "TYPE", "h") == b"+none\r\n"


def test_hdel_of_a_volatile_hash_clears_its_ttl(h: Harness) -> None:
    c = h.client()
    h.run(c, "HSET", "h", "a", "1")
    h.run(c, "EXPIRE", "h", "100")
    h.run(c, "HDEL", "h", "a")
    h.run(c, "HSET", "h", "a", "1")
    assert h.run(c, "TTL", "h") == b":-1\r\n"


# -- HINCRBY / HINCRBYFLOAT ----------------------------------------------------------------


def test_hincrby(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "HINCRBY", "h", "n", "10") == b":10\r\n"
    assert h.run(c, "HINCRBY", "h", "n", "-15") == b":-5\r\n"
    assert h.run(c, "HGET", "h", "n") == b"$2\r\n-5\r\n"
    for bad in ("x", "1.5", "", " 1", "9223372036854775808", "+1", "01"):
        assert h.run(c, "HINCRBY", "h", "n", bad) == NOT_INT
    for stored in ("abc", " 1", "010", "", "1.0"):
        h.run(c, "HSET", "h", "v", stored)
        assert h.run(c, "HINCRBY", "h", "v", "1") == b"-ERR hash value is not an integer\r\n"


def test_hincrby_overflow(h: Harness) -> None:
    c = h.client()
    overflow = b"-ERR increment or decrement would overflow\r\n"
    h.run(c, "HSET", "h", "big", "9223372036854775807")
    assert h.run(c, "HINCRBY", "h", "big", "1") == overflow
    assert h.run(c, "HINCRBY", "h", "big", "-1") == b":9223372036854775806\r\n"
    assert h.run(c, "HINCRBY", "h", "low", "-9223372036854775808") == b":-9223372036854775808\r\n"
    assert h.run(c, "HINCRBY", "h", "low", "-1") == overflow
    assert h.run(c, "HGET", "h", "low") == b"$20\r\n-9223372036854775808\r\n"


def test_hincrby_checks_the_increment_before_the_type(h: Harness) -> None:
    c = h.client()
    h.run(c, "SET", "s", "x")
    assert h.run(c, "HINCRBY", "s", "a", "abc") == NOT_INT
    assert h.run(c, "HINCRBY", "s", "a", "1") == WRONGTYPE


def test_hincrbyfloat(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "HINCRBYFLOAT", "h", "f", "0.1") == b"$3\r\n0.1\r\n"
    assert h.run(c, "HINCRBYFLOAT", "h", "f", "0.2") == b"$3\r\n0.3\r\n"  # long double math
    assert h.run(c, "HINCRBYFLOAT", "h", "g", "1.0e1") == b"$2\r\n10\r\n"
    assert h.run(c, "HINCRBYFLOAT", "h", "g", "-10") == b"$1\r\n0\r\n"
    assert h.run(c, "HINCRBYFLOAT", "h", "k", "0x10") == b"$2\r\n16\r\n"
    h.run(c, "HSET", "h", "i", "5")
    assert h.run(c, "HINCRBYFLOAT", "h", "i", "1.5") == b"$3\r\n6.5\r\n"
    assert h.run(c, "HGET", "h", "i") == b"$3\r\n6.5\r\n"


def test_hincrbyfloat_errors_in_redis_order(h: Harness) -> None:
    c = h.client()
    not_float = b"-ERR value is not a valid float\r\n"
    nan_inf = b"-ERR value is NaN or Infinity\r\n"
    h.run(c, "SET", "s", "x")
    h.run(c, "HSET", "h", "sp", " 1", "e", "")
    assert h.run(c, "HINCRBYFLOAT", "h", "f", "abc") == not_float
    assert h.run(c, "HINCRBYFLOAT", "h", "f", "nan") == not_float
    assert h.run(c, "HINCRBYFLOAT", "h", "f", "1e5000") == not_float
    assert h.run(c, "HINCRBYFLOAT", "h", "f", " 1") == not_float
    assert h.run(c, "HINCRBYFLOAT", "h", "f", "inf") == nan_inf
    assert h.run(c, "HINCRBYFLOAT", "h", "f", "-inf") == nan_inf
    # The increment is checked before the key's type.
    assert h.run(c, "HINCRBYFLOAT", "s", "f", "abc") == not_float
    assert h.run(c, "HINCRBYFLOAT", "s", "f", "inf") == nan_inf
    assert h.run(c, "HINCRBYFLOAT", "s", "f", "1") == WRONGTYPE
    for field in ("sp", "e"):
        assert h.run(c, "HINCRBYFLOAT", "h", field, "1") == b"-ERR hash value is not a float\r\n"
    assert h.run(c, "HEXISTS", "h", "f") == b":0\r\n"


def test_hincrbyfloat_on_a_missing_key_creates_nothing_on_error(h: Harness) -> None:
    c = h.client()
    h.run(c, "HINCRBYFLOAT", "h", "f", "abc")
    h.run(c, "HINCRBY", "h", "f", "abc")
    assert h.run(c, "EXISTS", "h") == b":0\r\n"


# -- dirty, effects, WATCH -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "dirty"),
    [
        (("HSET", "h", "a", "1", "a", "2"), 2),  # every pair written, as Redis
        (("HSET", "h", "a", "1"), 1),  # even an unchanged value
        (("HMSET", "h", "a", "1", "b", "2", "c", "3"), 3),
        (("HSETNX", "h", "a", "1"), 0),
        (("HSETNX", "h", "z", "1"), 1),
        (("HDEL", "h", "a", "nope"), 1),
        (("HDEL", "h", "nope"), 0),
        (("HDEL", "h", "a", "b"), 2),
        (("HINCRBY", "h", "n", "1"), 1),
        (("HINCRBYFLOAT", "h", "f", "1.5"), 1),
        (("HINCRBYFLOAT", "h", "f", "abc"), 0),
        (("HINCRBY", "h", "b", "1"), 0),  # hash value is not an integer
        (("HSET", "s", "a", "1"), 0),
        (("HGETALL", "h"), 0),
    ],
)
def test_dirty(h: Harness, args: tuple[str, ...], dirty: int) -> None:
    c = h.client()
    h.run(c, "HSET", "h", "a", "1", "b", "x")
    h.run(c, "SET", "s", "x")
    before = h.server.dirty
    h.run(c, *args)
    assert h.server.dirty - before == dirty


def test_effects(h: Harness) -> None:
    c = h.client()
    h.run(c, "HSET", "h", "a", "1")
    h.run(c, "HSETNX", "h", "a", "2")  # no change: nothing
    h.run(c, "HDEL", "h", "nope")  # no change: nothing
    h.run(c, "HINCRBY", "h", "n", "5")
    h.run(c, "HINCRBYFLOAT", "h", "f", "0.1")
    h.run(c, "HINCRBYFLOAT", "h", "f", "0.2")
    h.run(c, "HINCRBYFLOAT", "h", "f", "abc")
    h.run(c, "HDEL", "h", "a", "n", "f")
    assert h.effects == [
        (0, [b"HSET", b"h", b"a", b"1"]),
        (0, [b"HINCRBY", b"h", b"n", b"5"]),
        (0, [b"HSET", b"h", b"f", b"0.1"]),
        (0, [b"HSET", b"h", b"f", b"0.3"]),
        (0, [b"HDEL", b"h", b"a", b"n", b"f"]),
    ]


@pytest.mark.parametrize(
    ("args", "aborted"),
    [
        (("HSET", "h", "a", "1"), True),  # same value: still a modification
        (("HSET", "new", "a", "1"), True),
        (("HSETNX", "h", "a", "9"), False),
        (("HSETNX", "h", "z", "9"), True),
        (("HDEL", "h", "nope"), False),
        (("HDEL", "h", "a"), True),
        (("HDEL", "h", "a", "b"), True),  # emptied and deleted
        (("HINCRBY", "h", "n", "1"), True),
        (("HINCRBYFLOAT", "h", "n", "1"), True),
        (("HINCRBY", "h", "b", "1"), False),  # error
        (("HGET", "h", "a"), False),
    ],
)
def test_watch(h: Harness, args: tuple[str, ...], aborted: bool) -> None:
    watcher, other = h.client(), h.client()
    h.run(other, "HSET", "h", "a", "1", "b", "x")
    h.run(watcher, "WATCH", "h", "new")
    h.run(other, *args)
    h.run(watcher, "MULTI")
    h.run(watcher, "PING")
    assert h.run(watcher, "EXEC") == (b"*-1\r\n" if aborted else b"*1\r\n+PONG\r\n")


# -- HRANDFIELD ----------------------------------------------------------------------------


def seeded(h: Harness, seed: int = 7) -> None:
    h.server.rng = random.Random(seed)


def test_hrandfield_without_count(h: Harness) -> None:
    c = h.client()
    seeded(h)
    assert h.run(c, "HRANDFIELD", "nokey") == NIL2
    h.run(c, "HSET", "h", "a", "1", "b", "2", "c", "3")
    seen = Counter(h.run(c, "HRANDFIELD", "h") for _ in range(300))
    assert set(seen) == {b"$1\r\na\r\n", b"$1\r\nb\r\n", b"$1\r\nc\r\n"}
    c3 = resp3(h)
    assert h.run(c3, "HRANDFIELD", "nokey") == NIL3


def test_hrandfield_count_zero_missing_key_and_whole_hash(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "HRANDFIELD", "nokey", "3") == b"*0\r\n"
    assert h.run(c, "HRANDFIELD", "nokey", "-3", "WITHVALUES") == b"*0\r\n"
    h.run(c, "HSET", "h", "a", "1", "b", "2", "c", "3")
    assert h.run(c, "HRANDFIELD", "h", "0") == b"*0\r\n"
    assert h.run(c, "HRANDFIELD", "h", "0", "withvalues") == b"*0\r\n"
    # A count >= the size returns the whole hash in its order.
    assert h.run(c, "HRANDFIELD", "h", "3") == bulks(b"a", b"b", b"c")
    whole = bulks(b"a", b"1", b"b", b"2", b"c", b"3")
    assert h.run(c, "HRANDFIELD", "h", "9223372036854775807") == bulks(b"a", b"b", b"c")
    assert h.run(c, "HRANDFIELD", "h", "5", "WITHVALUES") == whole
    c3 = resp3(h)
    assert h.run(c3, "HRANDFIELD", "h", "5", "WITHVALUES") == (
        b"*3\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n"
    )


def test_hrandfield_positive_count_is_distinct(h: Harness) -> None:
    c = h.client()
    seeded(h)
    fields = [f"f{i}".encode() for i in range(10)]
    h.run(c, "HSET", "h", *[x for f in fields for x in (f, b"v" + f)])
    hits: Counter[bytes] = Counter()
    for _ in range(200):
        reply = h.run(c, "HRANDFIELD", "h", "4", "WITHVALUES")
        assert reply.startswith(b"*8\r\n")
        items = reply.split(b"\r\n")[2:-1:2]
        got = dict(zip(items[::2], items[1::2], strict=True))
        assert len(got) == 4 and all(got[f] == b"v" + f for f in got)
        hits.update(got.keys())
    assert set(hits) == set(fields)


def test_hrandfield_negative_count_repeats(h: Harness) -> None:
    c = h.client()
    seeded(h)
    h.run(c, "HSET", "h", "a", "1", "b", "2")
    reply = h.run(c, "HRANDFIELD", "h", "-50")
    assert reply.startswith(b"*50\r\n")
    assert set(reply.split(b"\r\n")[2:-1:2]) == {b"a", b"b"}
    reply = h.run(c, "HRANDFIELD", "h", "-5", "WITHVALUES")
    assert reply.startswith(b"*10\r\n")
    items = reply.split(b"\r\n")[2:-1:2]
    assert all(
        {b"a": b"1", b"b": b"2"}[f] == v for f, v in zip(items[::2], items[1::2], strict=True)
    )
    c3 = resp3(h)
    reply = h.run(c3, "HRANDFIELD", "h", "-3", "WITHVALUES")
    assert reply.startswith(b"*3\r\n*2\r\n") and reply.count(b"*2\r\n") == 3


def test_hrandfield_is_deterministic_under_a_seeded_rng() -> None:
    replies = []
    for _ in range(2):
        h = Harness()
        seeded(h, 42)
        c = h.client()
        h.run(c, "HSET", "h", *[f"f{i}" for i in range(40)])
        replies.append([h.run(c, "HRANDFIELD", "h", n) for n in ("-7", "5", "1")])
        replies[-1].append(h.run(c, "HRANDFIELD", "h"))
    assert replies[0] == replies[1]


def test_hrandfield_argument_errors(h: Harness) -> None:
    c = h.client()
    h.run(c, "HSET", "h", "a", "1")
    h.run(c, "SET", "s", "x")
    llong_min = (
        b"-ERR value is out of range, value must between -9223372036854775807 and "
        b"9223372036854775807\r\n"
    )
    out_of_range = b"-ERR value is out of range\r\n"
    cases = [
        (("h", "withvalues"), NOT_INT),
        (("h", "-0"), NOT_INT),
        (("h", "+1"), NOT_INT),
        (("h", "9223372036854775808"), NOT_INT),
        (("h", "-9223372036854775808"), llong_min),
        (("nokey", "-9223372036854775808"), llong_min),
        (("h", "-9223372036854775808", "withvalues"), llong_min),
        (("h", "-4611686018427387904", "withvalues"), out_of_range),
        (("h", "4611686018427387904", "withvalues"), out_of_range),
        (("nokey", "9223372036854775807", "withvalues"), out_of_range),
        (("h", "2", "foo"), SYNTAX),
        (("nokey", "1", "foo"), SYNTAX),
        (("h", "1", "withvalues", "withvalues"), SYNTAX),
        (("s", "abc"), NOT_INT),  # the count before the type
        (("s", "1", "foo"), SYNTAX),
    ]
    for args, err in cases:
        assert h.run(c, "HRANDFIELD", *args) == err, args
    assert h.run(c, "HRANDFIELD", "h", "4611686018427387903", "withvalues") == bulks(b"a", b"1")


def test_hrandfield_refuses_too_many_picks(h: Harness) -> None:
    c = h.client()
    h.run(c, "HSET", "h", "a", "1")
    n = hashes.RANDFIELD_PICKS_MAX
    assert h.run(c, "HRANDFIELD", "h", str(-n - 1)).startswith(b"-ERR value is out of range")
    assert h.run(c, "HRANDFIELD", "nokey", str(-n - 1)) == b"*0\r\n"


# -- HSCAN ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "cursor"),
    [
        (b"0", 0),
        (b"", 0),  # strtoul converts nothing and stops at the end
        (b"+5", 5),
        (b"-0", 0),
        (b"007", 7),
        (b"-1", 2**64 - 1),
        (b"-18446744073709551615", 1),
        (b"18446744073709551615", 2**64 - 1),
    ],
)
def test_scan_cursor_is_strtoul(arg: bytes, cursor: int) -> None:
    assert parse_scan_cursor(arg) == cursor


@pytest.mark.parametrize(
    "arg",
    [b"-", b"+", b" 1", b"1 ", b"0x1", b"18446744073709551616", b"-18446744073709551616", b"1.0"],
)
def test_scan_cursor_invalid(arg: bytes) -> None:
    with pytest.raises(CommandError, match="^ERR invalid cursor$"):
        parse_scan_cursor(arg)


def test_hscan_small_hash_is_returned_whole(h: Harness) -> None:
    c = h.client()
    h.run(c, "HSET", "h", "a", "1", "b", "2", "c", "3")
    whole = b"*2\r\n$1\r\n0\r\n" + bulks(b"a", b"1", b"b", b"2", b"c", b"3")
    for cursor in ("0", "5", "-1", "18446744073709551615", ""):
        assert h.run(c, "HSCAN", "h", cursor) == whole
    assert h.run(c, "HSCAN", "h", "0", "COUNT", "1") == whole
    assert h.run(c, "HSCAN", "h", "0", "match", "[ab]", "count", "1") == (
        b"*2\r\n$1\r\n0\r\n" + bulks(b"a", b"1", b"b", b"2")
    )
    assert h.run(c, "HSCAN", "h", "0", "MATCH", "*") == whole
    c3 = resp3(h)
    assert h.run(c3, "HSCAN", "h", "0") == whole


def test_hscan_errors_in_redis_order(h: Harness) -> None:
    c = h.client()
    h.run(c, "HSET", "h", "a", "1")
    h.run(c, "SET", "s", "x")
    empty = b"*2\r\n$1\r\n0\r\n*0\r\n"
    assert h.run(c, "HSCAN", "h", "abc") == b"-ERR invalid cursor\r\n"
    assert h.run(c, "HSCAN", "s", "abc") == b"-ERR invalid cursor\r\n"
    assert h.run(c, "HSCAN", "nokey", "abc") == b"-ERR invalid cursor\r\n"
    assert h.run(c, "HSCAN", "nokey", "0", "count", "0") == empty  # options unchecked
    assert h.run(c, "HSCAN", "s", "0", "count", "0") == WRONGTYPE
    for opts in (("count", "0"), ("count", "-1"), ("match",), ("foo", "bar"), ("novalues",),
                 ("count", "1", "match")):  # fmt: skip
        assert h.run(c, "HSCAN", "h", "0", *opts) == SYNTAX, opts
    assert h.run(c, "HSCAN", "h", "0", "count", "abc") == NOT_INT


def scan_all(h: Harness, c, key: str, *opts: str, between=None) -> tuple[list[bytes], int]:  # type: ignore[no-untyped-def]
    """Every field an HSCAN iteration returns (duplicates kept) and the number of calls."""
    out: list[bytes] = []
    cursor = b"0"
    calls = 0
    while True:
        reply = h.run(c, "HSCAN", key, cursor, *opts)
        calls += 1
        parts = reply.split(b"\r\n")
        cursor = parts[2]
        out += parts[5:-1:4]
        if cursor == b"0":
            return out, calls
        if between is not None:
            between(calls)


def big(n: int = 100) -> tuple[Harness, object]:
    h = Harness("hash-max-listpack-entries 8")
    c = h.client()
    h.run(c, "HSET", "h", *[x for i in range(n) for x in (f"f{i:03}", f"v{i}")])
    return h, c


def test_hscan_large_hash_pages_through_every_field_once() -> None:
    h, c = big()
    fields, calls = scan_all(h, c, "h", "COUNT", "7")
    assert fields == [f"f{i:03}".encode() for i in range(100)]
    assert calls == 15
    assert not h.server.scan_snapshots._entries  # a finished scan drops its snapshot
    fields, _ = scan_all(h, c, "h", "MATCH", "f0[0-4]?", "COUNT", "30")
    assert fields == [f"f{i:03}".encode() for i in range(50)]
    reply = h.run(c, "HSCAN", "h", "0", "COUNT", "2")
    assert reply.split(b"\r\n")[4:-1] == [
        b"$4",
        b"f000",
        b"$2",
        b"v0",
        b"$4",
        b"f001",
        b"$2",
        b"v1",
    ]


def test_hscan_survives_changes_during_the_iteration() -> None:
    # Redis SCAN guarantee: a field present for the whole iteration is returned.
    h, c = big()
    other = h.client()

    def churn(call: int) -> None:
        h.run(other, "HDEL", "h", f"f{call * 3:03}")  # behind and ahead of the cursor
        h.run(other, "HDEL", "h", f"f{99 - call:03}")
        h.run(other, "HSET", "h", f"new{call}", "x")
        h.run(other, "HSET", "h", "f050", f"changed{call}")

    fields, _ = scan_all(h, c, "h", "COUNT", "5", between=churn)
    assert len(fields) == len(set(fields))
    present = set(h.server.dbs[0].data[b"h"])
    kept = {f"f{i:03}".encode() for i in range(100)} & present
    assert kept <= set(fields)
    assert set(fields) <= {f"f{i:03}".encode() for i in range(100)} | {
        b"new%d" % i for i in range(30)
    }


def test_hscan_returns_current_values_and_skips_deleted_fields() -> None:
    h, c = big(20)
    reply = h.run(c, "HSCAN", "h", "0", "COUNT", "5")
    cursor = reply.split(b"\r\n")[2]
    h.run(c, "HDEL", "h", "f005", "f006")
    h.run(c, "HSET", "h", "f007", "NEW")
    reply = h.run(c, "HSCAN", "h", cursor, "COUNT", "5")
    assert reply.split(b"\r\n")[5:-1:2] == [b"f007", b"NEW", b"f008", b"v8", b"f009", b"v9"]


def test_hscan_falls_back_to_insertion_order_without_its_snapshot() -> None:
    h, c = big(30)
    reply = h.run(c, "HSCAN", "h", "0", "COUNT", "10")
    cursor = int(reply.split(b"\r\n")[2])
    pos = cursor & 0xFFFFFFFF
    assert pos == 10
    h.server.scan_snapshots._entries.clear()
    fields, _ = scan_all(h, c, "h", "COUNT", "10")  # a fresh scan still works
    assert len(fields) == 30
    reply = h.run(c, "HSCAN", "h", str(cursor), "COUNT", "100")
    assert reply.split(b"\r\n")[5:-1:4] == [f"f{i:03}".encode() for i in range(10, 30)]
    assert reply.split(b"\r\n")[2] == b"0"
    # A plain position (as a client might send) is read the same way.
    reply = h.run(c, "HSCAN", "h", "25")
    assert reply.split(b"\r\n")[5:-1:4] == [f"f{i:03}".encode() for i in range(25, 30)]
    assert h.run(c, "HSCAN", "h", "30") == b"*2\r\n$1\r\n0\r\n*0\r\n"


def test_hscan_snapshot_of_a_replaced_hash_is_not_reused() -> None:
    h, c = big(30)
    cursor = h.run(c, "HSCAN", "h", "0", "COUNT", "10").split(b"\r\n")[2]
    h.run(c, "DEL", "h")
    h.run(c, "HSET", "h", *[x for i in range(30) for x in (f"g{i:03}", "v")])
    reply = h.run(c, "HSCAN", "h", cursor, "COUNT", "5")
    assert reply.split(b"\r\n")[5:-1:4] == [f"g{i:03}".encode() for i in range(10, 15)]


def test_hscan_snapshots_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanpage, "SNAPSHOTS_MAX", 3)
    monkeypatch.setattr(scanpage, "SNAPSHOT_ITEMS_MAX", 50)
    h, c = big(20)
    for _ in range(5):
        h.run(c, "HSCAN", "h", "0", "COUNT", "1")
    store = h.server.scan_snapshots
    assert len(store._entries) <= 3 and store._items <= 50
    h.run(c, "HSET", "h2", *[x for i in range(60) for x in (f"f{i:03}", "v")])
    fields, calls = scan_all(h, c, "h2", "COUNT", "25")  # too large: positional
    assert fields == [f"f{i:03}".encode() for i in range(60)] and calls == 3
    assert store._items <= 50


def test_hscan_continues_a_hash_that_shrank_to_listpack_size() -> None:
    h, c = big(20)
    cursor = h.run(c, "HSCAN", "h", "0", "COUNT", "5").split(b"\r\n")[2]
    h.run(c, "HDEL", "h", *[f"f{i:03}" for i in range(15)])
    reply = h.run(c, "HSCAN", "h", cursor, "COUNT", "100")
    assert reply.split(b"\r\n")[2] == b"0"
    assert reply.split(b"\r\n")[5:-1:4] == [f"f{i:03}".encode() for i in range(15, 20)]
