"""Sorted set commands through the server core: replies in RESP2 and RESP3, error texts and
their order, -0 and double formatting, dirty counts, effects, WATCH, keyspace stats, pops,
the algebra, ZRANDMEMBER and ZSCAN.

Expected bytes are redis-server 7.0.15's (run side by side while writing these tests)
except where Redis 7.2 differs, which is marked: doubles in 7.2's shortest form ("1.1"
where 7.0 printed "1.1000000000000001") and ZRANK / ZREVRANK WITHSCORE (7.2.0).
"""

from __future__ import annotations

import random

import hiredis
import pytest

from ackdb.commands import zsets
from ackdb.keyspace.numbers import parse_float
from ackdb.keyspace.zset import ZSet
from conftest import Harness

WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
NOT_INT = b"-ERR value is not an integer or out of range\r\n"
NOT_FLOAT = b"-ERR value is not a valid float\r\n"
RANGE_FLOAT = b"-ERR min or max is not a float\r\n"
RANGE_LEX = b"-ERR min or max not valid string range item\r\n"
SYNTAX = b"-ERR syntax error\r\n"
NIL2 = b"$-1\r\n"
NIL3 = b"_\r\n"
EMPTY = b"*0\r\n"


def bulks(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in items)


def pairs3(*items: tuple[bytes, bytes]) -> bytes:
    """RESP3 WITHSCORES: an array of [member, double] arrays."""
    body = b"".join(b"*2\r\n$%d\r\n%s\r\n,%s\r\n" % (len(m), m, s) for m, s in items)
    return b"*%d\r\n" % len(items) + body


def resp3(h: Harness):  # type: ignore[no-untyped-def]
    c = h.client()
    assert h.run(c, "HELLO", "3").startswith(b"%7\r\n")
    return c


def arity(name: str) -> bytes:
    return b"-ERR wrong number of arguments for '%s' command\r\n" % name.encode()


@pytest.fixture
def h() -> Harness:
    return Harness()


def zset_of(h: Harness, key: str) -> ZSet:
    z = h.server.dbs[0].data[key.encode()]
    assert isinstance(z, ZSet)
    z.check()
    return z


# -- ZADD / ZINCRBY --------------------------------------------------------------------------


def test_zadd_counts_added_members_and_ch_counts_changes(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c") == b":3\r\n"
    assert h.run(c, "ZADD", "z", "1", "a", "5", "b", "4", "d") == b":1\r\n"
    assert h.run(c, "ZADD", "z", "CH", "1", "a", "6", "b", "4", "e") == b":2\r\n"
    assert h.run(c, "ZADD", "z", "1", "x", "2", "x") == b":1\r\n"  # the last score wins
    assert h.run(c, "ZSCORE", "z", "x") == b"$1\r\n2\r\n"
    assert h.run(c, "ZCARD", "z") == b":6\r\n"


def test_zadd_nx_xx_gt_lt(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "ZADD", "z", "XX", "1", "a") == b":0\r\n"
    assert h.run(c, "EXISTS", "z") == b":0\r\n"  # XX never creates the key
    assert h.run(c, "ZADD", "z", "NX", "1", "a") == b":1\r\n"
    assert h.run(c, "ZADD", "z", "NX", "CH", "2", "a", "3", "b") == b":1\r\n"
    assert h.run(c, "ZADD", "z", "XX", "CH", "5", "a", "6", "c") == b":1\r\n"
    assert h.run(c, "ZADD", "z", "GT", "1", "a", "7", "d") == b":1\r\n"  # new members go in
    assert h.run(c, "ZADD", "z", "LT", "CH", "9", "a", "0", "b") == b":1\r\n"
    assert h.run(c, "ZRANGE", "z", "0", "-1", "WITHSCORES") == bulks(
        b"b", b"0", b"a", b"5", b"d", b"7"
    )


def test_zadd_incr(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "ZADD", "z", "INCR", "1.5", "a") == b"$3\r\n1.5\r\n"
    assert h.run(c, "ZADD", "z", "INCR", "1", "a") == b"$3\r\n2.5\r\n"
    assert h.run(c, "ZADD", "z", "NX", "INCR", "1", "a") == NIL2
    assert h.run(c, "ZADD", "z", "XX", "INCR", "1", "nope") == NIL2
    assert h.run(c, "ZADD", "z", "GT", "INCR", "-1", "a") == NIL2
    assert h.run(c, "ZADD", "z", "LT", "INCR", "-1", "a") == b"$3\r\n1.5\r\n"
    assert h.run(c, "ZADD", "z", "INCR", "0", "a") == b"$3\r\n1.5\r\n"  # unchanged, still a reply
    assert h.run(c, "ZADD", "missing", "XX", "INCR", "1", "a") == NIL2
    c3 = resp3(h)
    assert h.run(c3, "ZADD", "z", "INCR", "1", "a") == b",2.5\r\n"
    assert h.run(c3, "ZADD", "z", "NX", "INCR", "1", "a") == NIL3


def test_zadd_errors_in_redis_order(h: Harness) -> None:
    c = h.client()
    h.run(c, "SET", "s", "v")
    nx_xx = b"-ERR XX and NX options at the same time are not compatible\r\n"
    gt_lt = b"-ERR GT, LT, and/or NX options at the same time are not compatible\r\n"
    incr = b"-ERR INCR option supports a single increment-element pair\r\n"
    assert h.run(c, "ZADD", "z", "1") == arity("zadd")
    assert h.run(c, "ZADD", "z", "CH", "1") == SYNTAX  # odd number of score/member args
    assert h.run(c, "ZADD", "z", "NX", "XX") == SYNTAX
    assert h.run(c, "ZADD", "z", "1", "a", "2") == SYNTAX
    assert h.run(c, "ZADD", "z", "foo", "1", "a") == SYNTAX
    assert h.run(c, "ZADD", "s", "XX", "NX", "abc", "a") == nx_xx
    assert h.run(c, "ZADD", "z", "INCR", "XX", "NX", "1", "a", "2", "b") == nx_xx
    for flags in (("GT", "LT"), ("GT", "NX"), ("NX", "LT")):
        assert h.run(c, "ZADD", "s", *flags, "1", "a") == gt_lt
    assert h.run(c, "ZADD", "s", "INCR", "1", "a", "2", "b") == incr
    assert h.run(c, "ZADD", "s", "1", "a", "abc", "b") == NOT_FLOAT  # scores before the type
    assert h.run(c, "ZADD", "s", "1", "a") == WRONGTYPE
    assert h.run(c, "EXISTS", "z") == b":0\r\n"
    for bad in ("abc", "", "nan", "1e400", " 1", "1 ", "-nan", "1.2.3"):
        assert h.run(c, "ZADD", "z", bad, "a") == NOT_FLOAT
    assert h.run(c, "EXISTS", "z") == b":0\r\n"


def test_zadd_accepts_strtod_forms(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "0x1p3", "a", ".5", "b", "5.", "c", "1E2", "d", "+inf", "e")
    assert h.run(c, "ZRANGE", "z", "0", "-1", "WITHSCORES") == bulks(
        b"b", b"0.5", b"c", b"5", b"a", b"8", b"d", b"100", b"e", b"inf"
    )


def test_nan_results_are_refused(h: Harness) -> None:
    c = h.client()
    nan = b"-ERR resulting score is not a number (NaN)\r\n"
    h.run(c, "ZADD", "z", "inf", "a")
    assert h.run(c, "ZADD", "z", "INCR", "-inf", "a") == nan
    assert h.run(c, "ZINCRBY", "z", "-inf", "a") == nan
    assert h.run(c, "ZSCORE", "z", "a") == b"$3\r\ninf\r\n"
    h.run(c, "ZADD", "z", "1e308", "b")
    assert h.run(c, "ZINCRBY", "z", "1e308", "b") == b"$3\r\ninf\r\n"  # overflow is fine


def test_zincrby(h: Harness) -> None:
    c = h.client()
    h.run(c, "SET", "s", "v")
    assert h.run(c, "ZINCRBY", "z", "1.5", "m") == b"$3\r\n1.5\r\n"
    assert h.run(c, "ZINCRBY", "z", "-2", "m") == b"$4\r\n-0.5\r\n"
    assert h.run(c, "ZINCRBY", "s", "a", "m") == NOT_FLOAT  # before WRONGTYPE
    assert h.run(c, "ZINCRBY", "s", "1", "m") == WRONGTYPE
    assert h.run(c, "ZINCRBY", "z", "1") == arity("zincrby")


def test_doubles_are_redis_72_text(h: Harness) -> None:
    # Redis 7.2 d2string; 7.0 printed 1.1000000000000001, 3.3000000000000003 (the same
    # here), 9.9999999999999995e-08, 1e+20, 4.9406564584124654e-324.
    c = h.client()
    assert h.run(c, "ZINCRBY", "z", "1.1", "a") == b"$3\r\n1.1\r\n"
    assert h.run(c, "ZINCRBY", "z", "2.2", "a") == b"$18\r\n3.3000000000000003\r\n"
    h.run(c, "ZADD", "z", "1e-7", "b", "1e20", "c", "5e-324", "d", "-inf", "e", "123.456", "f")
    assert h.run(c, "ZRANGE", "z", "0", "-1", "WITHSCORES") == bulks(
        *(b"e", b"-inf", b"d", b"5e-324", b"b", b"1e-7", b"a", b"3.3000000000000003"),
        *(b"f", b"123.456", b"c", b"1e+20"),
    )
    assert zsets.score_text(2.0**63) == b"9223372036854776000"
    assert zsets.score_text(-0.0) == b"-0" and zsets.score_text(0.0) == b"0"


def test_score_cache_stays_right_and_bounded_past_its_size() -> None:
    n = zsets.SCORE_TEXT_CACHE_MAX
    for _ in range(2):  # the second pass finds the old generation, then drops it
        for i in range(3 * n):
            x = i + 0.5
            assert zsets.score_text(x) == b"%.1f" % x
            assert zsets.score_bulk(x) == b"$%d\r\n%.1f\r\n" % (len(b"%.1f" % x), x)
        assert zsets.score_text(-0.0) == b"-0" and zsets.score_bulk(0.0) == b"$1\r\n0\r\n"
    for cache in (zsets._SCORE_TEXT, zsets._SCORE_BULK):
        assert len(cache.young) <= n and len(cache.old) <= n
        assert 0.0 not in cache.young and 0.0 not in cache.old


def test_negative_zero(h: Harness) -> None:
    # Redis 7.0.15 (listpack): ZADD z -0 a; ZSCORE z a -> "0"; ZINCRBY z -0 b -> "-0" but
    # ZSCORE z b -> "0". ackdb never stores -0 (a Redis skiplist would keep "-0").
    c = h.client()
    h.run(c, "ZADD", "z", "-0", "a")
    assert h.run(c, "ZSCORE", "z", "a") == b"$1\r\n0\r\n"
    assert h.run(c, "ZINCRBY", "z", "-0", "b") == b"$2\r\n-0\r\n"
    assert h.run(c, "ZADD", "z", "INCR", "-0", "c") == b"$2\r\n-0\r\n"
    assert h.run(c, "ZSCORE", "z", "b") == b"$1\r\n0\r\n"
    assert h.run(c, "ZSCORE", "z", "c") == b"$1\r\n0\r\n"
    h.run(c, "ZADD", "m", "1", "a", "2", "b")
    # ZUNION replies from its result as computed (Redis 7.0.15: "-0"); stored, it is 0.
    assert h.run(c, "ZUNION", "1", "m", "WEIGHTS", "-0", "WITHSCORES") == bulks(
        b"a", b"-0", b"b", b"-0"
    )
    assert h.run(c, "ZUNIONSTORE", "d", "1", "m", "WEIGHTS", "-0") == b":2\r\n"
    assert h.run(c, "ZSCORE", "d", "a") == b"$1\r\n0\r\n"
    zset_of(h, "d")


# -- point reads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("ZCARD", "s"),
        ("ZSCORE", "s", "a"),
        ("ZMSCORE", "s", "a"),
        ("ZRANK", "s", "a"),
        ("ZREVRANK", "s", "a", "WITHSCORE"),
        ("ZCOUNT", "s", "0", "1"),
        ("ZLEXCOUNT", "s", "-", "+"),
        ("ZRANGE", "s", "0", "1"),
        ("ZRANGE", "s", "0", "1", "BYSCORE"),
        ("ZRANGEBYLEX", "s", "-", "+"),
        ("ZREVRANGE", "s", "0", "1"),
        ("ZRANGESTORE", "d", "s", "0", "1"),
        ("ZREM", "s", "a"),
        ("ZREMRANGEBYRANK", "s", "0", "1"),
        ("ZREMRANGEBYSCORE", "s", "0", "1"),
        ("ZREMRANGEBYLEX", "s", "-", "+"),
        ("ZPOPMIN", "s"),
        ("ZPOPMAX", "s", "0"),  # a count of 0 still checks the type
        ("ZMPOP", "2", "missing", "s", "MIN"),
        ("ZUNION", "2", "z", "s"),
        ("ZINTERSTORE", "d", "2", "s", "missing"),
        ("ZDIFF", "2", "missing", "s"),
        ("ZINTERCARD", "2", "missing", "s"),
        ("ZRANDMEMBER", "s"),
        ("ZRANDMEMBER", "s", "-2"),
        ("ZSCAN", "s", "0"),
    ],
)
def test_wrongtype(h: Harness, args: tuple[str, ...]) -> None:
    c = h.client()
    h.run(c, "SET", "s", "v")
    h.run(c, "ZADD", "z", "1", "a")
    assert h.run(c, *args) == WRONGTYPE


def test_point_reads_resp2_and_resp3(h: Harness) -> None:
    c, c3 = h.client(), resp3(h)
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3.5", "c")
    assert h.run(c, "ZSCORE", "z", "c") == b"$3\r\n3.5\r\n"
    assert h.run(c, "ZSCORE", "z", "nope") == NIL2
    assert h.run(c, "ZSCORE", "nokey", "a") == NIL2
    assert h.run(c, "ZMSCORE", "z", "a", "nope", "c") == b"*3\r\n$1\r\n1\r\n$-1\r\n$3\r\n3.5\r\n"
    assert h.run(c, "ZMSCORE", "nokey", "a", "b") == b"*2\r\n$-1\r\n$-1\r\n"
    assert h.run(c, "ZCARD", "z") == b":3\r\n"
    assert h.run(c, "ZCARD", "nokey") == b":0\r\n"
    assert h.run(c3, "ZSCORE", "z", "c") == b",3.5\r\n"
    assert h.run(c3, "ZSCORE", "z", "nope") == NIL3
    assert h.run(c3, "ZMSCORE", "z", "a", "nope") == b"*2\r\n,1\r\n_\r\n"


def test_zrank_and_withscore(h: Harness) -> None:
    # ZRANK / ZREVRANK WITHSCORE is Redis 7.2: [rank, score], or a null array.
    c, c3 = h.client(), resp3(h)
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3.5", "c")
    assert h.run(c, "ZRANK", "z", "c") == b":2\r\n"
    assert h.run(c, "ZREVRANK", "z", "c") == b":0\r\n"
    assert h.run(c, "ZRANK", "z", "nope") == NIL2
    assert h.run(c, "ZRANK", "nokey", "a") == NIL2
    assert h.run(c, "ZRANK", "z", "c", "WITHSCORE") == b"*2\r\n:2\r\n$3\r\n3.5\r\n"
    assert h.run(c, "ZREVRANK", "z", "a", "withscore") == b"*2\r\n:2\r\n$1\r\n1\r\n"
    assert h.run(c, "ZRANK", "z", "nope", "WITHSCORE") == b"*-1\r\n"
    assert h.run(c, "ZRANK", "nokey", "a", "WITHSCORE") == b"*-1\r\n"
    assert h.run(c3, "ZRANK", "z", "c", "WITHSCORE") == b"*2\r\n:2\r\n,3.5\r\n"
    assert h.run(c3, "ZRANK", "z", "nope", "WITHSCORE") == NIL3
    assert h.run(c3, "ZRANK", "z", "nope") == NIL3
    assert h.run(c, "ZRANK", "z", "a", "WITHSCORES") == SYNTAX
    assert h.run(c, "ZRANK", "z", "a", "WITHSCORE", "x") == arity("zrank")
    assert h.run(c, "ZREVRANK", "z") == arity("zrevrank")


def test_read_commands_count_keyspace_hits_and_misses(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a")
    srv = h.server
    srv.stat_keyspace_hits = srv.stat_keyspace_misses = 0
    for key in ("z", "nokey"):
        for args in (("ZSCORE", key, "a"), ("ZRANGE", key, "0", "-1"), ("ZCOUNT", key, "0", "1"),
                     ("ZRANK", key, "a"), ("ZRANDMEMBER", key), ("ZSCAN", key, "0")):  # fmt: skip
            h.run(c, *args)
    assert (srv.stat_keyspace_hits, srv.stat_keyspace_misses) == (6, 6)
    h.run(c, "ZADD", "nokey2", "1", "a")  # writes do not count
    h.run(c, "ZREM", "nokey3", "a")
    assert (srv.stat_keyspace_hits, srv.stat_keyspace_misses) == (6, 6)


# -- counts and ranges -------------------------------------------------------------------------


def test_zcount_and_zlexcount(h: Harness) -> None:
    c = h.client()
    h.run(c, "SET", "s", "v")
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
    assert h.run(c, "ZCOUNT", "z", "2", "4") == b":3\r\n"
    assert h.run(c, "ZCOUNT", "z", "(2", "(4") == b":1\r\n"
    assert h.run(c, "ZCOUNT", "z", "-inf", "+inf") == b":5\r\n"
    assert h.run(c, "ZCOUNT", "z", "4", "2") == b":0\r\n"
    assert h.run(c, "ZCOUNT", "s", "a", "1") == RANGE_FLOAT  # range before the type
    assert h.run(c, "ZCOUNT", "nokey", "0", "1") == b":0\r\n"
    assert h.run(c, "ZLEXCOUNT", "z", "-", "+") == b":5\r\n"
    assert h.run(c, "ZLEXCOUNT", "z", "[b", "(d") == b":2\r\n"
    assert h.run(c, "ZLEXCOUNT", "s", "b", "d") == RANGE_LEX
    assert h.run(c, "ZLEXCOUNT", "nokey", "-", "+") == b":0\r\n"


def test_zrange_by_rank(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
    assert h.run(c, "ZRANGE", "z", "0", "-1") == bulks(b"a", b"b", b"c", b"d", b"e")
    assert h.run(c, "ZRANGE", "z", "-2", "100", "WITHSCORES") == bulks(b"d", b"4", b"e", b"5")
    assert h.run(c, "ZRANGE", "z", "3", "1") == EMPTY
    assert h.run(c, "ZRANGE", "z", "0", "1", "REV") == bulks(b"e", b"d")
    assert h.run(c, "ZREVRANGE", "z", "0", "1", "WITHSCORES") == bulks(b"e", b"5", b"d", b"4")
    assert h.run(c, "ZRANGE", "z", "-9223372036854775808", "9223372036854775807") == bulks(
        b"a", b"b", b"c", b"d", b"e"
    )
    assert h.run(c, "ZRANGE", "nokey", "0", "-1") == EMPTY
    assert h.run(c, "ZRANGE", "nokey", "a", "b") == NOT_INT


def test_zrange_by_score_and_lex(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
    assert h.run(c, "ZRANGE", "z", "(1", "3", "BYSCORE") == bulks(b"b", b"c")
    assert h.run(c, "ZRANGE", "z", "3", "(1", "BYSCORE", "REV") == bulks(b"c", b"b")
    assert h.run(c, "ZRANGE", "z", "1", "3", "BYSCORE", "LIMIT", "1", "1") == bulks(b"b")
    assert h.run(c, "ZRANGE", "z", "1", "3", "BYSCORE", "LIMIT", "1", "-1") == bulks(b"b", b"c")
    assert h.run(c, "ZRANGE", "z", "1", "3", "BYSCORE", "LIMIT", "-1", "2") == EMPTY
    assert h.run(c, "ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2") == (
        bulks(b"d", b"c")
    )
    assert h.run(c, "ZRANGE", "z", "", "2", "BYSCORE") == bulks(b"a", b"b")  # "" is 0
    assert h.run(c, "ZRANGE", "z", "[a", "(c", "BYLEX") == bulks(b"a", b"b")
    assert h.run(c, "ZRANGE", "z", "-", "+", "BYLEX", "LIMIT", "1", "2") == bulks(b"b", b"c")
    assert h.run(c, "ZRANGE", "z", "+", "-", "BYLEX", "REV", "LIMIT", "0", "2") == bulks(b"e", b"d")
    assert h.run(c, "ZRANGEBYSCORE", "z", "1", "3", "WITHSCORES", "LIMIT", "0", "2") == bulks(
        b"a", b"1", b"b", b"2"
    )
    assert h.run(c, "ZREVRANGEBYSCORE", "z", "3", "1") == bulks(b"c", b"b", b"a")
    assert h.run(c, "ZREVRANGEBYSCORE", "z", "1", "3") == EMPTY
    assert h.run(c, "ZRANGEBYLEX", "z", "-", "+", "LIMIT", "1", "1") == bulks(b"b")
    assert h.run(c, "ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", "1", "1") == bulks(b"d")


def test_zrange_resp3_withscores_are_pairs(h: Harness) -> None:
    c3 = resp3(h)
    h.run(c3, "ZADD", "z", "1", "a", "2.5", "b")
    assert h.run(c3, "ZRANGE", "z", "0", "-1", "WITHSCORES") == pairs3((b"a", b"1"), (b"b", b"2.5"))
    assert h.run(c3, "ZRANGEBYSCORE", "z", "2", "3", "WITHSCORES") == pairs3((b"b", b"2.5"))
    assert h.run(c3, "ZRANGE", "z", "0", "-1") == bulks(b"a", b"b")


def test_zrange_option_errors(h: Harness) -> None:
    c = h.client()
    limit_err = (
        b"-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        b"\r\n"
    )
    lex_err = b"-ERR syntax error, WITHSCORES not supported in combination with BYLEX\r\n"
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    assert h.run(c, "ZRANGE", "z", "0", "-1", "LIMIT", "0", "1") == limit_err
    # Redis checks the count only: LIMIT <anything> -1 is accepted (and ignored) by rank.
    assert h.run(c, "ZRANGE", "z", "0", "-1", "LIMIT", "2", "-1") == bulks(b"a", b"b", b"c")
    assert h.run(c, "ZREVRANGE", "z", "0", "0", "LIMIT", "5", "-1") == bulks(b"c")
    assert h.run(c, "ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES") == lex_err
    assert h.run(c, "ZRANGEBYLEX", "z", "-", "+", "WITHSCORES") == lex_err
    assert h.run(c, "ZRANGE", "z", "0", "-1", "FOO") == SYNTAX
    assert h.run(c, "ZRANGE", "z", "0", "-1", "REV", "REV") == SYNTAX
    assert h.run(c, "ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX") == SYNTAX
    assert h.run(c, "ZRANGE", "z", "0", "-1", "LIMIT", "1") == SYNTAX
    assert h.run(c, "ZRANGE", "z", "0", "-1", "LIMIT", "a", "1") == NOT_INT  # before LIMIT's check
    assert h.run(c, "ZRANGE", "z", "0", "-1", "WITHSCORES", "WITHSCORES") == bulks(
        b"a", b"1", b"b", b"2", b"c", b"3"
    )
    assert h.run(c, "ZRANGEBYSCORE", "z", "1", "3", "REV") == SYNTAX
    assert h.run(c, "ZRANGEBYSCORE", "z", "1", "3", "BYSCORE") == SYNTAX
    assert h.run(c, "ZREVRANGE", "z", "0", "1", "REV") == SYNTAX
    assert h.run(c, "ZRANGE", "z", "a", "c", "BYLEX") == RANGE_LEX
    assert h.run(c, "ZRANGE", "z", "abc", "2", "BYSCORE") == RANGE_FLOAT
    assert h.run(c, "ZRANGE", "z", "1", "2 ", "BYSCORE") == RANGE_FLOAT
    assert h.run(c, "ZRANGE", "z", "1") == arity("zrange")


def test_zrangestore(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d")
    h.run(c, "SET", "s", "v", "EX", "100")
    assert h.run(c, "ZRANGESTORE", "dst", "z", "0", "1") == b":2\r\n"
    assert h.run(c, "ZRANGE", "dst", "0", "-1", "WITHSCORES") == bulks(b"a", b"1", b"b", b"2")
    assert h.run(c, "ZRANGESTORE", "dst", "z", "+", "-", "BYLEX", "REV", "LIMIT", "0", "2") == (
        b":2\r\n"
    )
    assert h.run(c, "ZRANGE", "dst", "0", "-1") == bulks(b"c", b"d")
    assert h.run(c, "ZRANGESTORE", "s", "z", "(1", "3", "BYSCORE") == b":2\r\n"
    assert h.run(c, "TYPE", "s") == b"+zset\r\n"
    assert h.run(c, "TTL", "s") == b":-1\r\n"  # replaced, TTL dropped
    assert h.run(c, "ZRANGESTORE", "dst", "z", "1", "0") == b":0\r\n"
    assert h.run(c, "EXISTS", "dst") == b":0\r\n"
    assert h.run(c, "ZRANGESTORE", "s", "nokey", "0", "-1") == b":0\r\n"
    assert h.run(c, "EXISTS", "s") == b":0\r\n"
    assert h.run(c, "ZRANGESTORE", "z", "z", "0", "0") == b":1\r\n"  # source is destination
    assert h.run(c, "ZRANGE", "z", "0", "-1") == bulks(b"a")
    assert h.run(c, "ZRANGESTORE", "dst", "z", "0", "-1", "WITHSCORES") == SYNTAX
    assert h.run(c, "ZRANGESTORE", "dst", "z", "0") == arity("zrangestore")


def test_zremrangeby(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
    assert h.run(c, "ZREMRANGEBYRANK", "z", "0", "0") == b":1\r\n"
    assert h.run(c, "ZREMRANGEBYRANK", "z", "5", "10") == b":0\r\n"
    assert h.run(c, "ZREMRANGEBYSCORE", "z", "(2", "3") == b":1\r\n"
    assert h.run(c, "ZREMRANGEBYLEX", "z", "[d", "[d") == b":1\r\n"
    assert h.run(c, "ZRANGE", "z", "0", "-1") == bulks(b"b", b"e")
    assert h.run(c, "ZREMRANGEBYRANK", "z", "a", "0") == NOT_INT
    assert h.run(c, "ZREMRANGEBYSCORE", "z", "a", "0") == RANGE_FLOAT
    assert h.run(c, "ZREMRANGEBYLEX", "z", "a", "b") == RANGE_LEX
    assert h.run(c, "ZREMRANGEBYRANK", "nokey", "0", "-1") == b":0\r\n"
    assert h.run(c, "ZREMRANGEBYRANK", "z", "0", "-1") == b":2\r\n"
    assert h.run(c, "EXISTS", "z") == b":0\r\n"


def test_zrem_deletes_an_emptied_zset(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a", "2", "b")
    h.run(c, "EXPIRE", "z", "100")
    assert h.run(c, "ZREM", "z", "nope") == b":0\r\n"
    assert h.run(c, "ZREM", "z", "a", "a", "nope") == b":1\r\n"
    assert h.run(c, "ZREM", "z", "b", "c") == b":1\r\n"
    assert h.run(c, "EXISTS", "z") == b":0\r\n"
    h.run(c, "ZADD", "z", "1", "a")
    assert h.run(c, "TTL", "z") == b":-1\r\n"
    assert h.run(c, "ZREM", "nokey", "a") == b":0\r\n"
    assert h.run(c, "ZREM", "z") == arity("zrem")


# -- pops ----------------------------------------------------------------------------------------


def test_zpopmin_zpopmax(h: Harness) -> None:
    c, c3 = h.client(), resp3(h)
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
    assert h.run(c, "ZPOPMIN", "z") == bulks(b"a", b"1")
    assert h.run(c, "ZPOPMIN", "z", "2") == bulks(b"b", b"2", b"c", b"3")
    assert h.run(c3, "ZPOPMAX", "z") == b"*2\r\n$1\r\ne\r\n,5\r\n"  # flat without a count
    assert h.run(c3, "ZPOPMAX", "z", "1") == pairs3((b"d", b"4"))  # pairs with a count
    assert h.run(c, "EXISTS", "z") == b":0\r\n"
    assert h.run(c, "ZPOPMIN", "z") == EMPTY
    assert h.run(c3, "ZPOPMIN", "z", "3") == EMPTY
    h.run(c, "ZADD", "z", "1", "a")
    assert h.run(c, "ZPOPMIN", "z", "0") == EMPTY
    for bad in ("-1", "a", "1.5"):
        assert h.run(c, "ZPOPMIN", "z", bad) == b"-ERR value is out of range, must be positive\r\n"
    assert h.run(c, "ZPOPMIN", "z", "1", "2") == SYNTAX
    assert h.run(c, "ZPOPMAX", "z", "10") == bulks(b"a", b"1")


def test_zmpop(h: Harness) -> None:
    c, c3 = h.client(), resp3(h)
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    h.run(c, "SET", "s", "v")
    nested = b"*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    assert h.run(c, "ZMPOP", "2", "nokey", "z", "MIN", "COUNT", "2") == nested
    assert h.run(c3, "ZMPOP", "1", "z", "max") == b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nc\r\n,3\r\n"
    assert h.run(c, "ZMPOP", "1", "z", "MIN") == b"*-1\r\n"
    assert h.run(c3, "ZMPOP", "1", "z", "MIN") == NIL3
    h.run(c, "ZADD", "z", "1", "a")
    assert h.run(c, "ZMPOP", "2", "z", "s", "MIN")[:5] == b"*2\r\n$"  # s after z: not checked
    assert h.run(c, "ZMPOP", "2", "s", "z", "MIN") == WRONGTYPE
    numkeys = b"-ERR numkeys should be greater than 0\r\n"
    count = b"-ERR count should be greater than 0\r\n"
    for bad, err in [
        (("0", "z", "MIN"), numkeys),
        (("a", "z", "MIN"), numkeys),
        (("-1", "z", "MIN"), numkeys),
        (("2", "z", "MIN"), SYNTAX),
        (("9223372036854775807", "z", "MIN"), SYNTAX),
        (("1", "z", "FOO"), SYNTAX),
        (("1", "z", "MIN", "COUNT", "0"), count),
        (("1", "z", "MIN", "COUNT", "a"), count),
        (("1", "z", "MIN", "COUNT", "1", "COUNT", "2"), SYNTAX),
        (("1", "z", "MIN", "COUNT"), SYNTAX),
        (("1", "z"), arity("zmpop")),
    ]:
        assert h.run(c, "ZMPOP", *bad) == err, bad


def test_pop_helpers_serve_blocking_variants(h: Harness) -> None:
    """What BZPOPMIN / BZMPOP will call: pop, pop_effect, mpop_reply, first_zset."""
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a", "2", "b")
    db = h.server.dbs[0]
    found = zsets.first_zset(db, [b"nokey", b"z"])
    assert found is not None
    key, z = found
    dirty = h.server.dirty
    taken = zsets.pop(c, key, z, 5, True)
    assert [e[:2] for e in taken] == [(2.0, b"b"), (1.0, b"a")]
    assert b"z" not in db.data and h.server.dirty == dirty + 2
    assert zsets.pop_effect(b"z", True, 2) == [b"ZPOPMAX", b"z", b"2"]
    assert (
        zsets.mpop_reply(c, b"z", taken[:1])
        == b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    )
    keys, maximum, count = zsets.parse_mpop([b"BZMPOP", b"0", b"1", b"z", b"MAX"], 2)
    assert (keys, maximum, count) == ([b"z"], True, 1)


# -- the algebra ------------------------------------------------------------------------------


def test_zunion_zinter_zdiff(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z1", "1", "a", "2", "b", "3", "c")
    h.run(c, "ZADD", "z2", "10", "b", "20", "c", "30", "d")
    h.run(c, "SADD", "st", "a", "d", "e")
    assert h.run(c, "ZUNION", "2", "z1", "z2", "WITHSCORES") == bulks(
        b"a", b"1", b"b", b"12", b"c", b"23", b"d", b"30"
    )
    assert h.run(c, "ZUNION", "2", "z1", "z2", "WEIGHTS", "2", "3") == bulks(b"a", b"b", b"c", b"d")
    assert h.run(c, "ZUNION", "2", "z1", "z2", "AGGREGATE", "MIN", "WITHSCORES") == bulks(
        b"a", b"1", b"b", b"2", b"c", b"3", b"d", b"30"
    )
    assert h.run(c, "ZINTER", "2", "z1", "z2", "AGGREGATE", "max", "WITHSCORES") == bulks(
        b"b", b"10", b"c", b"20"
    )
    assert h.run(c, "ZUNION", "3", "z1", "z2", "st", "WITHSCORES") == bulks(
        b"e", b"1", b"a", b"2", b"b", b"12", b"c", b"23", b"d", b"31"
    )
    assert h.run(c, "ZINTER", "3", "z1", "z2", "st") == EMPTY
    assert h.run(c, "ZDIFF", "2", "z1", "z2", "WITHSCORES") == bulks(b"a", b"1")
    assert h.run(c, "ZDIFF", "2", "st", "z1", "WITHSCORES") == bulks(b"d", b"1", b"e", b"1")
    assert h.run(c, "ZDIFF", "2", "nokey", "z1") == EMPTY
    assert h.run(c, "ZUNION", "1", "nokey") == EMPTY
    c3 = resp3(h)
    assert h.run(c3, "ZINTER", "2", "z1", "z2", "WITHSCORES") == pairs3(
        (b"b", b"12"), (b"c", b"23")
    )


def test_algebra_nan_and_infinities(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z1", "1", "a", "2", "b")
    h.run(c, "ZADD", "inf", "inf", "a")
    h.run(c, "ZADD", "ninf", "-inf", "a")
    # inf * 0 and inf + -inf are NaN in C; Redis makes them 0.
    assert h.run(c, "ZUNION", "2", "z1", "z1", "WEIGHTS", "inf", "-inf", "WITHSCORES") == bulks(
        b"a", b"0", b"b", b"0"
    )
    assert h.run(c, "ZUNION", "2", "inf", "ninf", "WITHSCORES") == bulks(b"a", b"0")
    assert h.run(c, "ZUNION", "1", "inf", "WEIGHTS", "0", "WITHSCORES") == bulks(b"a", b"0")
    # MIN/MAX with a NaN product keep the current score (every comparison with NaN fails).
    assert h.run(
        c, "ZINTER", "2", "z1", "z1", "AGGREGATE", "MIN", "WEIGHTS", "1", "inf", "WITHSCORES"
    ) == bulks(b"a", b"1", b"b", b"2")


def test_algebra_sums_smallest_input_first(h: Harness) -> None:
    # Redis orders the inputs by size (stable): (0.1 + 0.2) + 0.3 whatever the order given.
    c = h.client()
    h.run(c, "ZADD", "A", "0.1", "x")
    h.run(c, "ZADD", "B", "0.2", "x", "1", "y")
    h.run(c, "ZADD", "C", "0.3", "x", "1", "y", "1", "z")
    for order in (("C", "B", "A"), ("A", "B", "C"), ("B", "C", "A")):
        assert h.run(c, "ZINTER", "3", *order, "WITHSCORES") == bulks(b"x", b"0.6000000000000001")
        assert h.run(c, "ZUNION", "3", *order, "WITHSCORES").startswith(
            b"*6\r\n$1\r\nx\r\n$18\r\n0.6000000000000001\r\n"
        )


def test_algebra_errors_in_redis_order(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z1", "1", "a")
    h.run(c, "SET", "s", "v")
    for name in ("zunion", "zinter", "zdiff", "zintercard"):
        need = b"-ERR at least 1 input key is needed for '%s' command\r\n" % name.encode()
        assert h.run(c, name.upper(), "0", "z1") == need
        assert h.run(c, name.upper(), "-1", "z1") == need
        assert h.run(c, name.upper(), "a", "z1") == NOT_INT
        assert h.run(c, name.upper(), "3", "z1", "z1") == SYNTAX
        assert h.run(c, name.upper(), "2", "z1", "s", "FOO") == WRONGTYPE  # types first
    assert h.run(c, "ZUNIONSTORE", "d", "0", "z1") == (
        b"-ERR at least 1 input key is needed for 'zunionstore' command\r\n"
    )
    weight = b"-ERR weight value is not a float\r\n"
    for bad in ("a", "nan", "1e400", " 2"):
        assert h.run(c, "ZUNION", "1", "z1", "WEIGHTS", bad) == weight
    assert h.run(c, "ZUNION", "1", "z1", "WEIGHTS") == SYNTAX
    assert h.run(c, "ZUNION", "1", "z1", "WEIGHTS", "1", "2") == SYNTAX
    assert h.run(c, "ZUNION", "1", "z1", "AGGREGATE") == SYNTAX
    assert h.run(c, "ZUNION", "1", "z1", "AGGREGATE", "AVG") == SYNTAX
    assert h.run(c, "ZDIFF", "1", "z1", "WEIGHTS", "1") == SYNTAX
    assert h.run(c, "ZDIFF", "1", "z1", "AGGREGATE", "SUM") == SYNTAX
    assert h.run(c, "ZUNIONSTORE", "d", "1", "z1", "WITHSCORES") == SYNTAX
    assert h.run(c, "ZUNION", "1", "z1", "WITHSCORES", "WITHSCORES") == bulks(b"a", b"1")
    limit = b"-ERR LIMIT can't be negative\r\n"
    for bad in ("-1", "a", "9223372036854775808"):
        assert h.run(c, "ZINTERCARD", "1", "z1", "LIMIT", bad) == limit
    assert h.run(c, "ZINTERCARD", "1", "z1", "WITHSCORES") == SYNTAX


def test_store_forms(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z1", "1", "a", "2", "b", "3", "c")
    h.run(c, "ZADD", "z2", "10", "b", "20", "c", "30", "d")
    h.run(c, "SET", "d", "v", "EX", "100")
    assert h.run(c, "ZUNIONSTORE", "d", "2", "z1", "z2", "WEIGHTS", "1", "2") == b":4\r\n"
    assert h.run(c, "ZRANGE", "d", "0", "-1", "WITHSCORES") == bulks(
        b"a", b"1", b"b", b"22", b"c", b"43", b"d", b"60"
    )
    assert h.run(c, "TTL", "d") == b":-1\r\n"
    assert h.run(c, "ZINTERSTORE", "d", "2", "z1", "z2", "AGGREGATE", "MAX") == b":2\r\n"
    assert h.run(c, "ZDIFFSTORE", "d", "2", "z1", "z2") == b":1\r\n"
    assert h.run(c, "ZRANGE", "d", "0", "-1", "WITHSCORES") == bulks(b"a", b"1")
    assert h.run(c, "ZUNIONSTORE", "z1", "2", "z1", "z1") == b":3\r\n"  # a source is the target
    assert h.run(c, "ZSCORE", "z1", "c") == b"$1\r\n6\r\n"
    assert h.run(c, "ZINTERSTORE", "d", "2", "nokey", "z1") == b":0\r\n"
    assert h.run(c, "EXISTS", "d") == b":0\r\n"
    zset_of(h, "z1")


def test_zintercard(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z1", "1", "a", "2", "b", "3", "c")
    h.run(c, "ZADD", "z2", "10", "b", "20", "c", "30", "d")
    h.run(c, "SADD", "st", "a", "c")
    assert h.run(c, "ZINTERCARD", "2", "z1", "z2") == b":2\r\n"
    assert h.run(c, "ZINTERCARD", "2", "z1", "z2", "LIMIT", "1") == b":1\r\n"
    assert h.run(c, "ZINTERCARD", "2", "z1", "z2", "LIMIT", "0") == b":2\r\n"
    assert h.run(c, "ZINTERCARD", "2", "z1", "st") == b":2\r\n"
    assert h.run(c, "ZINTERCARD", "2", "z1", "nokey") == b":0\r\n"


# -- ZRANDMEMBER -------------------------------------------------------------------------------


def test_zrandmember(h: Harness) -> None:
    c, c3 = h.client(), resp3(h)
    h.server.rng = random.Random(3)
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    assert h.run(c, "ZRANDMEMBER", "z") in (bulks(b"a")[4:], bulks(b"b")[4:], bulks(b"c")[4:])
    assert h.run(c, "ZRANDMEMBER", "nokey") == NIL2
    assert h.run(c3, "ZRANDMEMBER", "nokey") == NIL3
    assert h.run(c, "ZRANDMEMBER", "nokey", "3") == EMPTY
    assert h.run(c, "ZRANDMEMBER", "z", "0") == EMPTY
    assert h.run(c, "ZRANDMEMBER", "z", "5", "WITHSCORES") == bulks(
        b"a", b"1", b"b", b"2", b"c", b"3"
    )
    assert h.run(c3, "ZRANDMEMBER", "z", "3", "WITHSCORES") == pairs3(
        (b"a", b"1"), (b"b", b"2"), (b"c", b"3")
    )
    for _ in range(20):
        two = h.run(c, "ZRANDMEMBER", "z", "2").split(b"\r\n")[2:-1:2]
        assert len(set(two)) == 2 and set(two) <= {b"a", b"b", b"c"}
        many = h.run(c, "ZRANDMEMBER", "z", "-7", "WITHSCORES").split(b"\r\n")[2:-1:2]
        assert len(many) == 14 and set(many[0::2]) <= {b"a", b"b", b"c"}
        assert all(
            int(s) == ord(m) - ord("a") + 1 for m, s in zip(many[0::2], many[1::2], strict=True)
        )


def test_zrandmember_argument_errors(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a")
    h.run(c, "SET", "s", "v")
    assert h.run(c, "ZRANDMEMBER", "s", "a") == NOT_INT  # before the type
    assert h.run(c, "ZRANDMEMBER", "z", "1", "FOO") == SYNTAX
    assert h.run(c, "ZRANDMEMBER", "nokey", "1", "FOO") == SYNTAX
    assert h.run(c, "ZRANDMEMBER", "z", "1", "WITHSCORES", "3") == SYNTAX
    assert h.run(c, "ZRANDMEMBER", "z", "-9223372036854775808") == (
        b"-ERR value is out of range, value must between -9223372036854775807 and "
        b"9223372036854775807\r\n"
    )
    for n in ("-4611686018427387904", "4611686018427387904"):
        assert h.run(c, "ZRANDMEMBER", "z", n, "WITHSCORES") == b"-ERR value is out of range\r\n"
    assert h.run(c, "ZRANDMEMBER", "z", str(-zsets.RANDMEMBER_PICKS_MAX - 1)).startswith(
        b"-ERR value is out of range, a negative count"
    )


# -- ZSCAN --------------------------------------------------------------------------------------


def big(n: int = 200) -> tuple[Harness, object]:
    h = Harness()
    c = h.client()
    h.run(c, "ZADD", "z", *(x for i in range(n) for x in (str(i % 7), f"m{i:03}")))
    return h, c


def scan_all(h: Harness, c: object, *opts: str, between: object = None) -> tuple[dict, int]:  # type: ignore[type-arg]
    found: dict[bytes, bytes] = {}
    cursor, calls = b"0", 0
    while True:
        reply = h.run(c, "ZSCAN", "z", cursor, *opts)
        parts = reply.split(b"\r\n")
        cursor = parts[2]
        items = parts[5:-1:2]
        for m, s in zip(items[0::2], items[1::2], strict=True):
            assert m not in found, m
            found[m] = s
        calls += 1
        if cursor == b"0":
            return found, calls
        if callable(between):
            between(calls)


def test_zscan_small_zset_is_returned_whole_in_order(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "2", "b", "1", "a", "1.5", "c")
    assert h.run(c, "ZSCAN", "z", "0") == b"*2\r\n$1\r\n0\r\n" + bulks(
        b"a", b"1", b"c", b"1.5", b"b", b"2"
    )
    assert h.run(c, "ZSCAN", "z", "99", "MATCH", "[ab]") == b"*2\r\n$1\r\n0\r\n" + bulks(
        b"a", b"1", b"b", b"2"
    )
    c3 = resp3(h)
    assert h.run(c3, "ZSCAN", "z", "0", "MATCH", "a") == b"*2\r\n$1\r\n0\r\n" + bulks(b"a", b"1")


def test_zscan_errors_in_redis_order(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a")
    h.run(c, "SET", "s", "v")
    assert h.run(c, "ZSCAN", "s", "abc") == b"-ERR invalid cursor\r\n"
    assert h.run(c, "ZSCAN", "s", "0") == WRONGTYPE
    assert h.run(c, "ZSCAN", "nokey", "0", "FOO") == b"*2\r\n$1\r\n0\r\n*0\r\n"
    for opts in (("COUNT", "0"), ("FOO", "1"), ("COUNT",), ("NOVALUES",)):
        assert h.run(c, "ZSCAN", "z", "0", *opts) == SYNTAX
    assert h.run(c, "ZSCAN", "z", "0", "COUNT", "x") == NOT_INT


def test_zscan_large_zset_pages_through_every_member_once() -> None:
    h, c = big()
    found, calls = scan_all(h, c, "COUNT", "7")
    assert found == {f"m{i:03}".encode(): b"%d" % (i % 7) for i in range(200)}
    assert calls == 29
    snapshots = h.server.scan_snapshots
    assert not snapshots._entries  # a finished scan drops its snapshot
    found, _ = scan_all(h, c, "MATCH", "m0[0-4]?", "COUNT", "30")
    assert set(found) == {f"m{i:03}".encode() for i in range(50)}


def test_zscan_survives_changes_during_the_iteration() -> None:
    # Redis SCAN guarantee: a member present for the whole iteration is returned.
    h, c = big()
    other = h.client()

    def churn(call: int) -> None:
        h.run(other, "ZREM", "z", f"m{call * 3:03}", f"m{199 - call:03}")
        h.run(other, "ZADD", "z", "-5", f"new{call}", "100", "m100")  # moves m100 to the end

    found, _ = scan_all(h, c, "COUNT", "5", between=churn)
    present = set(zset_of(h, "z").member_names())
    originals = {f"m{i:03}".encode() for i in range(200)}
    assert originals & present <= set(found)
    assert set(found) <= originals | {b"new%d" % i for i in range(60)}
    assert found[b"m100"] in (b"2", b"100")


def test_zscan_without_its_snapshot_continues_by_position() -> None:
    h, c = big(150)
    reply = h.run(c, "ZSCAN", "z", "0", "COUNT", "10")
    cursor = int(reply.split(b"\r\n")[2])
    h.server.scan_snapshots._entries.clear()
    reply = h.run(c, "ZSCAN", "z", str(cursor), "COUNT", "10")
    assert reply.split(b"\r\n")[2] != b"0"


# -- dirty, effects, WATCH, keyspace -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "dirty"),
    [
        (("ZADD", "z", "1", "a"), 0),  # same score: no change
        (("ZADD", "z", "5", "a", "2", "b", "3", "n"), 2),  # b unchanged
        (("ZADD", "z", "NX", "5", "a"), 0),
        (("ZADD", "z", "INCR", "0", "a"), 0),
        (("ZINCRBY", "z", "1", "a"), 1),
        (("ZREM", "z", "a", "b", "nope"), 2),
        (("ZREM", "z", "nope"), 0),
        (("ZPOPMIN", "z", "5"), 2),
        (("ZMPOP", "1", "z", "MAX"), 1),
        (("ZREMRANGEBYSCORE", "z", "-inf", "+inf"), 2),
        (("ZUNIONSTORE", "d", "1", "z"), 1),
        (("ZUNIONSTORE", "d", "1", "nokey"), 0),  # nothing to delete
        (("ZRANGESTORE", "z", "nokey", "0", "-1"), 1),  # deletes z
        (("ZRANGE", "z", "0", "-1"), 0),
    ],
)
def test_dirty(h: Harness, args: tuple[str, ...], dirty: int) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a", "2", "b")
    before = h.server.dirty
    h.run(c, *args)
    assert h.server.dirty - before == dirty


def test_effects(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d")
    h.run(c, "ZADD", "z", "1", "a")  # no change: nothing
    h.run(c, "ZREM", "z", "nope")  # no change: nothing
    h.run(c, "ZADD", "z", "INCR", "1.5", "a")  # plain double arithmetic: as sent
    h.run(c, "ZINCRBY", "z", "0.1", "a")
    h.run(c, "ZPOPMIN", "z", "1")
    h.run(c, "ZMPOP", "2", "nokey", "z", "MAX", "COUNT", "10")  # popped 3: ZPOPMAX z 3
    h.run(c, "ZMPOP", "1", "z", "MIN")  # nothing left: nothing
    h.run(c, "ZADD", "z", "1", "a")
    h.run(c, "ZRANDMEMBER", "z", "2")
    assert h.effects == [
        (0, [b"ZADD", b"z", b"1", b"a", b"2", b"b", b"3", b"c", b"4", b"d"]),
        (0, [b"ZADD", b"z", b"INCR", b"1.5", b"a"]),
        (0, [b"ZINCRBY", b"z", b"0.1", b"a"]),
        (0, [b"ZPOPMIN", b"z", b"1"]),
        (0, [b"ZPOPMAX", b"z", b"3"]),
        (0, [b"ZADD", b"z", b"1", b"a"]),
    ]


@pytest.mark.parametrize(
    ("args", "aborted"),
    [
        (("ZADD", "z", "1", "a"), False),  # same score: no modification
        (("ZADD", "z", "9", "a"), True),
        (("ZADD", "new", "1", "a"), True),
        (("ZADD", "z", "NX", "9", "a"), False),
        (("ZINCRBY", "z", "1", "a"), True),
        (("ZREM", "z", "nope"), False),
        (("ZREM", "z", "a"), True),
        (("ZREM", "z", "a", "b"), True),  # emptied and deleted
        (("ZPOPMIN", "z"), True),
        (("ZPOPMIN", "z", "0"), False),
        (("ZREMRANGEBYRANK", "z", "5", "9"), False),
        (("ZREMRANGEBYLEX", "z", "-", "+"), True),
        (("ZUNIONSTORE", "new", "1", "z"), True),
        (("ZRANGESTORE", "new", "nokey", "0", "1"), False),
        (("ZSCORE", "z", "a"), False),
    ],
)
def test_watch(h: Harness, args: tuple[str, ...], aborted: bool) -> None:
    watcher, other = h.client(), h.client()
    h.run(other, "ZADD", "z", "1", "a", "2", "b")
    h.run(watcher, "WATCH", "z", "new")
    h.run(other, *args)
    h.run(watcher, "MULTI")
    h.run(watcher, "PING")
    assert h.run(watcher, "EXEC") == (b"*-1\r\n" if aborted else b"*1\r\n+PONG\r\n")


def test_type_encoding_copy_scan_and_digest(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "3", "a", "6", "b", "10.5", "c")
    h.run(c, "SET", "s", "v")
    assert h.run(c, "TYPE", "z") == b"+zset\r\n"
    assert h.run(c, "OBJECT", "ENCODING", "z") == b"$8\r\nlistpack\r\n"
    assert h.run(c, "SCAN", "0", "TYPE", "zset") == b"*2\r\n$1\r\n0\r\n" + bulks(b"z")
    # Redis 7.0.15: DEBUG DIGEST-VALUE of ZADD d 3 a 6 b 10.5 c
    digest = b"a5cb48a78bc5ec3a9d6379257af7d82cc0b31662"
    assert h.run(c, "DEBUG", "DIGEST-VALUE", "z") == b"*1\r\n+" + digest + b"\r\n"
    assert h.run(c, "COPY", "z", "z2") == b":1\r\n"
    h.run(c, "ZADD", "z2", "1", "new")
    assert h.run(c, "ZCARD", "z") == b":3\r\n"
    assert h.run(c, "ZCARD", "z2") == b":4\r\n"
    h.run(c, "ZADD", "z", "1", "x" * 65)
    assert h.run(c, "OBJECT", "ENCODING", "z") == b"$8\r\nskiplist\r\n"
    h.run(c, "CONFIG", "SET", "zset-max-listpack-value", "100")
    assert h.run(c, "OBJECT", "ENCODING", "z") == b"$8\r\nlistpack\r\n"  # follows the contents


def test_expired_zset_is_gone(h: Harness) -> None:
    c = h.client()
    h.run(c, "ZADD", "z", "1", "a")
    h.run(c, "PEXPIREAT", "z", "1")
    assert h.run(c, "ZCARD", "z") == b":0\r\n"
    assert h.run(c, "ZADD", "z", "XX", "1", "a") == b":0\r\n"
    assert h.run(c, "ZADD", "z", "2", "b") == b":1\r\n"
    assert h.run(c, "ZRANGE", "z", "0", "-1") == bulks(b"b")


# -- keyspace events ----------------------------------------------------------------------------


def keyevents(setup: list[str], cmd: str) -> list[tuple[bytes, bytes]]:
    """(event, key) pairs that ``cmd`` publishes on __keyevent@0__ (KEAn)."""
    h = Harness("notify-keyspace-events KEAn")
    c, listener = h.client(), h.client()
    for line in setup:
        h.run(c, *line.split())
    h.run(listener, "PSUBSCRIBE", "__keyevent@0__:*")
    seen = len(listener.conn.written)
    assert not h.run(c, *cmd.split()).startswith(b"-")
    reader = hiredis.Reader()
    for frame in listener.conn.written[seen:]:
        reader.feed(frame)
    out = []
    while (msg := reader.gets()) is not False:
        out.append((msg[2].split(b":", 1)[1], msg[3]))
    return out


Z3 = "ZADD z 1 a 2 b 3 c"


@pytest.mark.parametrize(
    ("setup", "cmd", "events"),
    [  # each checked against redis-server 7.0.15 (KEA, plus "new" where a key is created)
        ([], Z3, [(b"new", b"z"), (b"zadd", b"z")]),
        ([Z3], "ZADD z 1 a", []),
        ([Z3], "ZADD z 9 a 9 b", [(b"zadd", b"z")]),
        ([Z3], "ZADD z INCR 1 a", [(b"zincr", b"z")]),
        ([Z3], "ZADD z NX 1 a", []),
        ([Z3], "ZINCRBY z 1 a", [(b"zincr", b"z")]),
        ([Z3], "ZINCRBY z 0 a", []),
        ([Z3], "ZREM z nope", []),
        ([Z3], "ZREM z a", [(b"zrem", b"z")]),
        ([Z3], "ZREM z a b c", [(b"zrem", b"z"), (b"del", b"z")]),
        ([Z3], "ZREMRANGEBYRANK z 5 9", []),
        ([Z3], "ZREMRANGEBYRANK z 0 0", [(b"zremrangebyrank", b"z")]),
        ([Z3], "ZREMRANGEBYSCORE z -inf +inf", [(b"zremrangebyscore", b"z"), (b"del", b"z")]),
        ([Z3], "ZREMRANGEBYLEX z [a [a", [(b"zremrangebylex", b"z")]),
        ([Z3], "ZPOPMIN z", [(b"zpopmin", b"z")]),
        ([Z3], "ZPOPMAX z 0", []),
        ([Z3], "ZPOPMAX z 5", [(b"zpopmax", b"z"), (b"del", b"z")]),
        ([Z3], "ZMPOP 1 z MAX", [(b"zpopmax", b"z")]),
        ([Z3], "ZMPOP 1 z MIN COUNT 5", [(b"zpopmin", b"z"), (b"del", b"z")]),
        ([Z3], "ZRANGESTORE d z 0 1", [(b"new", b"d"), (b"zrangestore", b"d")]),
        ([Z3, "ZADD d 1 x"], "ZRANGESTORE d z 5 9", [(b"del", b"d")]),
        ([Z3], "ZRANGESTORE d nokey 0 1", []),
        ([Z3, "ZADD d 1 x"], "ZUNIONSTORE d 1 z", [(b"zunionstore", b"d")]),
        ([Z3, "ZADD d 1 x"], "ZINTERSTORE d 2 z nokey", [(b"del", b"d")]),
        ([Z3, "ZADD d 1 x"], "ZDIFFSTORE d 1 z", [(b"zdiffstore", b"d")]),
        ([Z3, "SET s v"], "ZUNIONSTORE s 1 z", [(b"zunionstore", b"s")]),
        ([Z3], "ZRANGE z 0 -1", []),
    ],
)
def test_keyspace_events(setup: list[str], cmd: str, events: list[tuple[bytes, bytes]]) -> None:
    assert keyevents(setup, cmd) == events


@pytest.mark.parametrize(
    "arg", [b"0", b"-0", b"007", b"-", b"123456789012345", b"-12", b"1.5", b"", b"--1", b"-0012"]
)
def test_score_fast_path_agrees_with_string2d(arg: bytes) -> None:
    fast, slow = zsets._score_arg(arg), parse_float(arg)
    assert fast == slow and (fast is None or str(fast) == str(slow))  # -0.0 stays -0.0
