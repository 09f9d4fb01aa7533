"""List commands through the server core: replies in RESP2 and RESP3, error texts and their
order, dirty counts, effects, WATCH, keyspace hit/miss stats, OBJECT ENCODING, digests, and
the helpers the blocking variants will share (pop_from, move, mpop, parse_mpop).

Expected bytes are redis-server 7.0.15's (run side by side while writing these tests),
except where Redis 7.2 differs, which is marked: OBJECT ENCODING ``listpack`` and LPOS RANK
-9223372036854775808 (redis/redis#12167). Effects and dirty counts follow Redis 7.2's
t_list.c (LMPOP propagates as LPOP/RPOP key count; everything else as sent).
"""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ackdb.commands.base import CommandError
from ackdb.commands.lists import (
    End,
    _range,
    holds_list,
    list_encoding,
    listpack_entry_bytes,
    move,
    mpop,
    parse_end,
    parse_mpop,
    pop_from,
)
from ackdb.keyspace.digest import ValueKind, kind_of
from conftest import Harness

WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
NOT_INT = b"-ERR value is not an integer or out of range\r\n"
SYNTAX = b"-ERR syntax error\r\n"
POSITIVE = b"-ERR value is out of range, must be positive\r\n"
NIL2 = b"$-1\r\n"
NIL_ARRAY2 = b"*-1\r\n"
NIL3 = b"_\r\n"
OK = b"+OK\r\n"
EMPTY = b"*0\r\n"


def bulks(*items: bytes | str) -> bytes:
    raw = [i.encode() if isinstance(i, str) else i for i in items]
    return b"*%d\r\n" % len(raw) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in raw)


def ints(*items: int) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(b":%d\r\n" % i for i in items)


def resp3(h: Harness):  # type: ignore[no-untyped-def]
    c = h.client()
    assert h.run(c, "HELLO", "3").startswith(b"%7\r\n")
    return c


def contents(h: Harness, key: str, db: int = 0) -> list[bytes] | None:
    v = h.server.dbs[db].data.get(key.encode())
    return None if v is None else list(v)


@pytest.fixture
def h() -> Harness:
    return Harness()


# -- pushes ------------------------------------------------------------------------------


def test_push_order_and_lengths(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "RPUSH", "l", "a", "b") == b":2\r\n"
    assert h.run(c, "LPUSH", "l", "x", "y") == b":4\r\n"
    assert h.run(c, "RPUSH", "l", "z") == b":5\r\n"
    assert h.run(c, "LPUSH", "l", "w") == b":6\r\n"
    assert contents(h, "l") == [b"w", b"y", b"x", b"a", b"b", b"z"]
    assert h.run(c, "LPUSH", "new", "1", "2", "3") == b":3\r\n"
    assert contents(h, "new") == [b"3", b"2", b"1"]
    assert h.run(c, "TYPE", "l") == b"+list\r\n"
    assert isinstance(h.server.dbs[0].data[b"l"], deque)


def test_pushx_only_on_existing_lists(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "LPUSHX", "l", "a") == b":0\r\n"
    assert h.run(c, "RPUSHX", "l", "a", "b") == b":0\r\n"
    assert h.run(c, "EXISTS", "l") == b":0\r\n"
    h.run(c, "RPUSH", "l", "m")
    assert h.run(c, "LPUSHX", "l", "a", "b") == b":3\r\n"
    assert h.run(c, "RPUSHX", "l", "z") == b":4\r\n"
    assert contents(h, "l") == [b"b", b"a", b"m", b"z"]


def test_push_onto_an_expired_list_starts_a_new_one(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "old")
    h.run(c, "PEXPIREAT", "l", "1")
    assert h.run(c, "LPUSHX", "l", "x") == b":0\r\n"
    h.run(c, "RPUSH", "l", "old")
    h.run(c, "PEXPIREAT", "l", "1")
    assert h.run(c, "RPUSH", "l", "new") == b":1\r\n"
    assert h.run(c, "TTL", "l") == b":-1\r\n"


# -- wrong type and argument errors ------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("LPUSH", "s", "a"),
        ("RPUSHX", "s", "a"),
        ("LPOP", "s"),
        ("RPOP", "s", "2"),
        ("LPOP", "s", "0"),  # the type is checked before count 0 answers
        ("LRANGE", "s", "0", "-1"),
        ("LINDEX", "s", "x"),  # the type before the index
        ("LSET", "s", "x", "v"),
        ("LINSERT", "s", "BEFORE", "a", "b"),
        ("LREM", "s", "0", "a"),
        ("LTRIM", "s", "0", "1"),
        ("LLEN", "h"),
        ("LPOS", "h", "a"),
        ("LMOVE", "s", "l", "LEFT", "LEFT"),
        ("LMOVE", "l", "s", "LEFT", "LEFT"),
        ("RPOPLPUSH", "l", "h"),
        ("LMPOP", "2", "missing", "s", "LEFT"),
    ],
)
def test_wrongtype(h: Harness, args: tuple[str, ...]) -> None:
    c = h.client()
    h.run(c, "SET", "s", "v")
    h.run(c, "HSET", "h", "f", "v")
    h.run(c, "RPUSH", "l", "a")
    assert h.run(c, *args) == WRONGTYPE
    assert contents(h, "l") == [b"a"]  # nothing moved before the error


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        # Argument errors Redis finds before the lookup: they win over WRONGTYPE.
        (("LPOP", "s", "-1"), POSITIVE),
        (("LPOP", "s", "x"), POSITIVE),
        (("RPOP", "s", "9223372036854775808"), POSITIVE),
        (("LPOP", "s", "1", "2"), b"-ERR wrong number of arguments for 'lpop' command\r\n"),
        (("RPOP", "l", "1", "2"), b"-ERR wrong number of arguments for 'rpop' command\r\n"),
        (("LRANGE", "s", "x", "1"), NOT_INT),
        (("LRANGE", "nokey", "0", "1.5"), NOT_INT),
        (("LTRIM", "s", "0", "x"), NOT_INT),
        (("LREM", "s", "x", "a"), NOT_INT),
        (("LINSERT", "s", "middle", "a", "b"), SYNTAX),
        (("LMOVE", "s", "l", "up", "left"), SYNTAX),
        (("LMOVE", "s", "l", "left", "down"), SYNTAX),
        (("LPOS", "s", "a", "RANK", "0"), b"-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list\r\n"),
        (("LPOS", "s", "a", "RANK", "x"), NOT_INT),
        # Redis 7.2 (redis/redis#12167); 7.0 overflowed to -1.
        (("LPOS", "l", "a", "RANK", "-9223372036854775808"), b"-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"),
        (("LPOS", "s", "a", "COUNT", "-1"), b"-ERR COUNT can't be negative\r\n"),
        (("LPOS", "s", "a", "count", "x"), b"-ERR COUNT can't be negative\r\n"),
        (("LPOS", "s", "a", "MAXLEN", "-1"), b"-ERR MAXLEN can't be negative\r\n"),
        (("LPOS", "s", "a", "maxlen", "x"), b"-ERR MAXLEN can't be negative\r\n"),
        (("LPOS", "s", "a", "FOO", "1"), SYNTAX),
        (("LPOS", "s", "a", "RANK"), SYNTAX),
        (("LMPOP", "0", "s", "LEFT"), b"-ERR numkeys should be greater than 0\r\n"),
        (("LMPOP", "x", "s", "LEFT"), b"-ERR numkeys should be greater than 0\r\n"),
        (("LMPOP", "2", "s", "LEFT"), SYNTAX),
        (("LMPOP", "9223372036854775807", "s", "LEFT"), SYNTAX),
        (("LMPOP", "1", "s", "UP"), SYNTAX),
        (("LMPOP", "1", "s", "LEFT", "COUNT", "0"), b"-ERR count should be greater than 0\r\n"),
        (("LMPOP", "1", "s", "LEFT", "COUNT", "x"), b"-ERR count should be greater than 0\r\n"),
        (("LMPOP", "1", "s", "LEFT", "COUNT", "1", "COUNT", "2"), SYNTAX),
        (("LMPOP", "1", "s", "LEFT", "COUNT"), SYNTAX),
        (("LMPOP", "1", "s", "LEFT", "FOO"), SYNTAX),
        # The key first: a missing key answers before its argument is looked at.
        (("LINDEX", "nokey", "x"), NIL2),
        (("LINDEX", "l", "x"), NOT_INT),
        (("LSET", "nokey", "x", "v"), b"-ERR no such key\r\n"),
        (("LSET", "l", "x", "v"), NOT_INT),
        (("LSET", "l", "1", "v"), b"-ERR index out of range\r\n"),
        (("LSET", "l", "-2", "v"), b"-ERR index out of range\r\n"),
    ],
)  # fmt: skip
def test_errors_in_redis_order(h: Harness, args: tuple[str, ...], reply: bytes) -> None:
    c = h.client()
    h.run(c, "SET", "s", "v")
    h.run(c, "RPUSH", "l", "a")
    assert h.run(c, *args) == reply


@pytest.mark.parametrize(
    ("name", "arity"),
    [("LPUSH", -3), ("RPUSHX", -3), ("LPOP", -2), ("LRANGE", 4), ("LINDEX", 3), ("LSET", 4),
     ("LINSERT", 5), ("LREM", 4), ("LTRIM", 4), ("LLEN", 2), ("LPOS", -3), ("LMOVE", 5),
     ("RPOPLPUSH", 3), ("LMPOP", -4)],
)  # fmt: skip
def test_arity(h: Harness, name: str, arity: int) -> None:
    c = h.client()
    n = abs(arity) - 1 if arity < 0 else arity
    args = ["x"] * (n - 2)  # one argument short
    err = b"-ERR wrong number of arguments for '%s' command\r\n" % name.lower().encode()
    assert h.run(c, name, *args) == err


# -- pops --------------------------------------------------------------------------------


def test_pop_single_and_count(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a", "b", "c", "d", "e")
    assert h.run(c, "LPOP", "l") == b"$1\r\na\r\n"
    assert h.run(c, "RPOP", "l") == b"$1\r\ne\r\n"
    assert h.run(c, "LPOP", "l", "2") == bulks("b", "c")
    assert h.run(c, "LPOP", "l", "0") == EMPTY  # existing list, count 0: empty array
    assert h.run(c, "RPOP", "l", "10") == bulks("d")
    assert h.run(c, "EXISTS", "l") == b":0\r\n"  # emptied: deleted


def test_pop_missing_key_resp2_and_resp3(h: Harness) -> None:
    c2, c3 = h.client(), resp3(h)
    for c, nil, nil_array in ((c2, NIL2, NIL_ARRAY2), (c3, NIL3, NIL3)):
        assert h.run(c, "LPOP", "nokey") == nil
        assert h.run(c, "RPOP", "nokey", "3") == nil_array
        assert h.run(c, "LPOP", "nokey", "0") == nil_array  # missing wins over count 0
        assert h.run(c, "LMPOP", "2", "a", "b", "RIGHT") == nil_array
        assert h.run(c, "LMOVE", "a", "b", "LEFT", "LEFT") == nil
        assert h.run(c, "RPOPLPUSH", "a", "b") == nil
        assert h.run(c, "LINDEX", "a", "0") == nil
        assert h.run(c, "LPOS", "a", "x") == nil
        assert h.run(c, "LPOS", "a", "x", "COUNT", "1") == EMPTY
        assert h.run(c, "LRANGE", "a", "0", "-1") == EMPTY
    assert h.effects == []


def test_lmpop(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "b", "1", "2", "3")
    h.run(c, "RPUSH", "c", "x")
    assert h.run(c, "LMPOP", "3", "a", "b", "c", "LEFT") == b"*2\r\n$1\r\nb\r\n" + bulks("1")
    assert h.run(c, "LMPOP", "2", "b", "c", "right", "COUNT", "5") == (
        b"*2\r\n$1\r\nb\r\n" + bulks("3", "2")
    )
    assert h.run(c, "EXISTS", "b") == b":0\r\n"
    c3 = resp3(h)
    assert h.run(c3, "LMPOP", "1", "c", "LEFT", "count", "1") == b"*2\r\n$1\r\nc\r\n" + bulks("x")


def test_lmpop_stops_at_the_first_list_before_a_wrong_type(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a")
    h.run(c, "SET", "s", "v")
    assert h.run(c, "LMPOP", "2", "l", "s", "LEFT") == b"*2\r\n$1\r\nl\r\n" + bulks("a")
    assert h.run(c, "LMPOP", "2", "l", "s", "LEFT") == WRONGTYPE


# -- LMOVE / RPOPLPUSH -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wherefrom", "whereto", "src", "dst"),
    [
        ("LEFT", "LEFT", ["b", "c"], ["a", "x", "y"]),
        ("LEFT", "RIGHT", ["b", "c"], ["x", "y", "a"]),
        ("RIGHT", "LEFT", ["a", "b"], ["c", "x", "y"]),
        ("right", "right", ["a", "b"], ["x", "y", "c"]),
    ],
)
def test_lmove_directions(
    h: Harness, wherefrom: str, whereto: str, src: list[str], dst: list[str]
) -> None:
    c = h.client()
    h.run(c, "RPUSH", "s", "a", "b", "c")
    h.run(c, "RPUSH", "d", "x", "y")
    moved = h.run(c, "LMOVE", "s", "d", wherefrom, whereto)
    assert moved == bulks(dst[0] if whereto.upper() == "LEFT" else dst[-1])[4:]
    assert contents(h, "s") == [e.encode() for e in src]
    assert contents(h, "d") == [e.encode() for e in dst]


def test_lmove_creates_the_destination_and_deletes_an_emptied_source(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "s", "a")
    assert h.run(c, "RPOPLPUSH", "s", "d") == b"$1\r\na\r\n"
    assert contents(h, "s") is None
    assert contents(h, "d") == [b"a"]


def test_lmove_onto_itself_rotates(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a", "b", "c")
    assert h.run(c, "RPOPLPUSH", "l", "l") == b"$1\r\nc\r\n"
    assert contents(h, "l") == [b"c", b"a", b"b"]
    assert h.run(c, "LMOVE", "l", "l", "LEFT", "RIGHT") == b"$1\r\nc\r\n"
    assert contents(h, "l") == [b"a", b"b", b"c"]
    h.run(c, "DEL", "l")
    h.run(c, "RPUSH", "l", "only")
    assert h.run(c, "LMOVE", "l", "l", "LEFT", "LEFT") == b"$4\r\nonly\r\n"
    assert contents(h, "l") == [b"only"]  # never seen empty, never deleted


def test_lmove_missing_source_does_not_check_the_destination(h: Harness) -> None:
    c = h.client()
    h.run(c, "SET", "s", "v")
    assert h.run(c, "LMOVE", "nokey", "s", "LEFT", "LEFT") == NIL2


# -- reads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expect"),
    [
        (0, -1, "abcde"), (1, 3, "bcd"), (-2, -1, "de"), (-100, 1, "ab"), (3, 100, "de"),
        (4, 4, "e"), (5, 10, ""), (3, 1, ""), (-1, -2, ""), (0, 0, "a"), (-5, -5, "a"),
        (-9223372036854775808, 9223372036854775807, "abcde"), (2, -9223372036854775808, ""),
    ],
)  # fmt: skip
def test_lrange(h: Harness, start: int, end: int, expect: str) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", *"abcde")
    assert h.run(c, "LRANGE", "l", str(start), str(end)) == bulks(*expect)


@given(
    st.lists(st.integers(0, 3), max_size=40),
    st.integers(-50, 50),
    st.integers(-50, 50),
)
def test_range_matches_a_naive_reference(items: list[int], start: int, end: int) -> None:
    lst = deque(b"%d" % i for i in items)
    n = len(lst)
    s = max(start + n if start < 0 else start, 0)
    e = end + n if end < 0 else end
    expected = list(lst)[s : e + 1] if s <= e else []
    assert _range(lst, start, end) == expected


def test_lindex(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a", "b", "c")
    assert h.run(c, "LINDEX", "l", "0") == b"$1\r\na\r\n"
    assert h.run(c, "LINDEX", "l", "-1") == b"$1\r\nc\r\n"
    assert h.run(c, "LINDEX", "l", "3") == NIL2
    assert h.run(c, "LINDEX", "l", "-4") == NIL2
    assert h.run(resp3(h), "LINDEX", "l", "9") == NIL3


def test_llen(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "LLEN", "l") == b":0\r\n"
    h.run(c, "RPUSH", "l", "a", "b")
    assert h.run(c, "LLEN", "l") == b":2\r\n"


def test_read_commands_count_keyspace_hits_and_misses(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a")
    srv = h.server
    srv.stat_keyspace_hits = srv.stat_keyspace_misses = 0
    for key in ("l", "nokey"):
        h.run(c, "LLEN", key)
        h.run(c, "LRANGE", key, "0", "-1")
        h.run(c, "LINDEX", key, "0")
        h.run(c, "LPOS", key, "a")
    assert (srv.stat_keyspace_hits, srv.stat_keyspace_misses) == (4, 4)
    h.run(c, "LPUSH", "l", "x")  # writes count nothing
    h.run(c, "LPOP", "nokey")
    assert (srv.stat_keyspace_hits, srv.stat_keyspace_misses) == (4, 4)


# -- LPOS --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "reply"),
    [
        ((), b":0\r\n"),
        (("RANK", "2"), b":3\r\n"),
        (("RANK", "-1"), b":5\r\n"),
        (("RANK", "-3"), b":0\r\n"),
        (("RANK", "4"), NIL2),
        (("RANK", "-9223372036854775807"), NIL2),
        (("COUNT", "0"), ints(0, 3, 5)),
        (("COUNT", "2"), ints(0, 3)),
        (("COUNT", "0", "RANK", "-1"), ints(5, 3, 0)),
        (("COUNT", "2", "RANK", "2"), ints(3, 5)),
        (("COUNT", "9223372036854775807", "RANK", "3"), ints(5)),
        (("MAXLEN", "3"), b":0\r\n"),
        (("MAXLEN", "3", "RANK", "2"), NIL2),
        (("MAXLEN", "1", "RANK", "-1", "COUNT", "0"), ints(5)),
        (("MAXLEN", "2", "RANK", "2", "COUNT", "0"), EMPTY),
        (("MAXLEN", "2", "RANK", "-1", "COUNT", "0"), ints(5)),
        (("MAXLEN", "0", "COUNT", "0"), ints(0, 3, 5)),  # 0: the whole list
        (("RANK", "5", "RANK", "1"), b":0\r\n"),  # the last one wins
    ],
)
def test_lpos(h: Harness, options: tuple[str, ...], reply: bytes) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a", "b", "c", "a", "b", "a")
    assert h.run(c, "LPOS", "l", "a", *options) == reply


def test_lpos_no_match(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a")
    assert h.run(c, "LPOS", "l", "z") == NIL2
    assert h.run(c, "LPOS", "l", "z", "COUNT", "0") == EMPTY
    assert h.run(resp3(h), "LPOS", "l", "z") == NIL3


# -- in-place writes ---------------------------------------------------------------------


def test_lset(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a", "b", "c")
    assert h.run(c, "LSET", "l", "0", "x") == OK
    assert h.run(c, "LSET", "l", "-1", "z") == OK
    assert contents(h, "l") == [b"x", b"b", b"z"]


def test_linsert(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "LINSERT", "l", "BEFORE", "a", "x") == b":0\r\n"
    assert h.run(c, "EXISTS", "l") == b":0\r\n"
    h.run(c, "RPUSH", "l", "a", "b", "a")
    assert h.run(c, "LINSERT", "l", "before", "a", "x") == b":4\r\n"
    assert h.run(c, "LINSERT", "l", "AFTER", "a", "y") == b":5\r\n"
    assert h.run(c, "LINSERT", "l", "After", "b", "z") == b":6\r\n"
    assert h.run(c, "LINSERT", "l", "AFTER", "nope", "z") == b":-1\r\n"
    assert contents(h, "l") == [b"x", b"a", b"y", b"b", b"z", b"a"]


@pytest.mark.parametrize(
    ("count", "removed", "left"),
    [
        (0, 3, "bcd"),
        (1, 1, "bacad"),
        (2, 2, "bcad"),
        (-1, 1, "abacd"),
        (-2, 2, "abcd"),
        (5, 3, "bcd"),
        (-9223372036854775808, 3, "bcd"),
    ],
)
def test_lrem(h: Harness, count: int, removed: int, left: str) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", *"abacad")
    assert h.run(c, "LREM", "l", str(count), "a") == b":%d\r\n" % removed
    assert contents(h, "l") == [e.encode() for e in left]


def test_lrem_edge_cases(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "LREM", "nokey", "0", "a") == b":0\r\n"
    h.run(c, "RPUSH", "l", "a", "a")
    assert h.run(c, "LREM", "l", "0", "zz") == b":0\r\n"
    assert h.run(c, "LREM", "l", "-5", "a") == b":2\r\n"
    assert h.run(c, "EXISTS", "l") == b":0\r\n"


@given(st.lists(st.sampled_from([b"a", b"b"]), max_size=20), st.integers(-6, 6))
def test_lrem_matches_a_naive_reference(items: list[bytes], count: int) -> None:
    h = Harness()
    c = h.client()
    if items:
        h.run(c, "RPUSH", "l", *items)
    expected = list(items)
    limit = abs(count) or len(items)
    order = range(len(expected) - 1, -1, -1) if count < 0 else range(len(expected))
    drop = [i for i in order if expected[i] == b"a"][:limit]
    expected = [x for i, x in enumerate(expected) if i not in drop]
    assert h.run(c, "LREM", "l", str(count), "a") == b":%d\r\n" % len(drop)
    assert (contents(h, "l") or []) == expected


@pytest.mark.parametrize(
    ("start", "end", "left"),
    [
        (0, -1, "abcdef"), (1, -2, "bcde"), (0, 0, "a"), (-1, -1, "f"), (2, 100, "cdef"),
        (-100, 1, "ab"), (4, 1, ""), (6, 10, ""), (0, -7, ""), (1, 4, "bcde"), (3, 3, "d"),
    ],
)  # fmt: skip
def test_ltrim(h: Harness, start: int, end: int, left: str) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", *"abcdef")
    assert h.run(c, "LTRIM", "l", str(start), str(end)) == OK
    assert (contents(h, "l") or []) == [e.encode() for e in left]
    assert h.run(c, "EXISTS", "l") == (b":1\r\n" if left else b":0\r\n")


def test_ltrim_missing_key(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "LTRIM", "l", "0", "1") == OK
    assert h.run(c, "EXISTS", "l") == b":0\r\n"


# -- dirty, effects, WATCH ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "dirty"),
    [
        (("RPUSH", "l", "x", "y", "z"), 3),
        (("LPUSHX", "nokey", "x"), 0),
        (("LPOP", "l"), 1),
        (("RPOP", "l", "2"), 2),
        (("RPOP", "l", "10"), 4),
        (("LPOP", "l", "0"), 0),
        (("LPOP", "nokey", "3"), 0),
        (("LSET", "l", "0", "a"), 1),  # even the same value
        (("LINSERT", "l", "BEFORE", "b", "x"), 1),
        (("LINSERT", "l", "BEFORE", "zz", "x"), 0),
        (("LREM", "l", "0", "a"), 2),
        (("LREM", "l", "0", "zz"), 0),
        (("LTRIM", "l", "1", "-2"), 2),
        (("LTRIM", "l", "0", "-1"), 0),
        (("LTRIM", "l", "5", "9"), 4),
        (("LMOVE", "l", "m", "LEFT", "RIGHT"), 1),
        (("RPOPLPUSH", "nokey", "m"), 0),
        (("LMPOP", "2", "nokey", "l", "LEFT", "COUNT", "3"), 3),
        (("LMPOP", "1", "nokey", "LEFT"), 0),
        (("LRANGE", "l", "0", "-1"), 0),
    ],
)
def test_dirty(h: Harness, args: tuple[str, ...], dirty: int) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a", "b", "c", "a")
    before = h.server.dirty
    h.run(c, *args)
    assert h.server.dirty - before == dirty


def test_effects(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a", "b", "c", "d", "e")
    h.run(c, "LPUSHX", "nokey", "a")  # no change: nothing
    h.run(c, "LREM", "l", "0", "zz")  # no change: nothing
    h.run(c, "LTRIM", "l", "0", "-1")  # no change: nothing
    h.run(c, "LINSERT", "l", "AFTER", "zz", "x")  # no change: nothing
    h.run(c, "LPOP", "l", "0")  # no change: nothing
    h.run(c, "LPOP", "l", "1")
    h.run(c, "LMPOP", "2", "nokey", "l", "RIGHT", "COUNT", "2")
    h.run(c, "LMPOP", "1", "l", "LEFT", "COUNT", "10")  # propagated with the popped count
    h.run(c, "RPUSH", "src", "x")
    h.run(c, "LMOVE", "src", "dst", "LEFT", "RIGHT")
    h.run(c, "RPOPLPUSH", "dst", "dst")
    assert h.effects == [
        (0, [b"RPUSH", b"l", b"a", b"b", b"c", b"d", b"e"]),
        (0, [b"LPOP", b"l", b"1"]),
        (0, [b"RPOP", b"l", b"2"]),
        (0, [b"LPOP", b"l", b"2"]),
        (0, [b"RPUSH", b"src", b"x"]),
        (0, [b"LMOVE", b"src", b"dst", b"LEFT", b"RIGHT"]),
        (0, [b"RPOPLPUSH", b"dst", b"dst"]),
    ]


@pytest.mark.parametrize(
    ("args", "aborted"),
    [
        (("RPUSH", "l", "x"), True),
        (("LPUSHX", "new", "x"), False),
        (("RPUSH", "new", "x"), True),
        (("LPOP", "l"), True),
        (("LPOP", "l", "0"), False),
        (("LPOP", "l", "10"), True),  # emptied and deleted
        (("LSET", "l", "0", "a"), True),
        (("LSET", "l", "9", "a"), False),
        (("LINSERT", "l", "AFTER", "a", "x"), True),
        (("LINSERT", "l", "AFTER", "zz", "x"), False),
        (("LREM", "l", "0", "a"), True),
        (("LREM", "l", "0", "zz"), False),
        (("LTRIM", "l", "0", "-1"), True),  # Redis signals the key even if nothing trimmed
        (("LTRIM", "new", "0", "-1"), False),
        (("LMOVE", "l", "new", "LEFT", "LEFT"), True),
        (("LMOVE", "other", "l", "LEFT", "LEFT"), True),  # the destination
        (("LMOVE", "new", "l", "LEFT", "LEFT"), False),
        (("LMPOP", "1", "l", "LEFT"), True),
        (("LRANGE", "l", "0", "-1"), False),
    ],
)
def test_watch(h: Harness, args: tuple[str, ...], aborted: bool) -> None:
    watcher, other = h.client(), h.client()
    h.run(other, "RPUSH", "l", "a", "b")
    h.run(other, "RPUSH", "other", "o")
    h.run(watcher, "WATCH", "l", "new")
    h.run(other, *args)
    h.run(watcher, "MULTI")
    h.run(watcher, "PING")
    assert h.run(watcher, "EXEC") == (b"*-1\r\n" if aborted else b"*1\r\n+PONG\r\n")


# -- OBJECT ENCODING, digests, COPY ------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "size"),
    [
        (b"0", 2), (b"127", 2), (b"128", 3), (b"-1", 3), (b"-4096", 3), (b"4096", 4),
        (b"32767", 4), (b"-32769", 5), (b"8388607", 5), (b"8388608", 6), (b"2147483648", 10),
        (b"-9223372036854775808", 10), (b"9223372036854775808", 21), (b"007", 5), (b"", 2),
        (b"x" * 63, 65), (b"x" * 64, 67), (b"x" * 125, 128), (b"x" * 126, 130),
        (b"x" * 4095, 4099), (b"x" * 4096, 4103),
    ],
)  # fmt: skip
def test_listpack_entry_bytes(element: bytes, size: int) -> None:
    # Redis listpack: 7-bit uint, 13/16/24/32/64-bit ints, 6/12/32-bit string lengths,
    # then a back-length of 1 byte up to 127, 2 up to 16383.
    assert listpack_entry_bytes(element) == size


def test_object_encoding_size_limit(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a", "b")
    assert h.run(c, "OBJECT", "ENCODING", "l") == b"$8\r\nlistpack\r\n"  # Redis 7.2
    # 7 bytes of header and end, 2 entries of 2 bytes, and 82 of 100 bytes: 8211 > 8192
    h.run(c, "RPUSH", "l", *["x" * 97] * 82)
    assert h.run(c, "OBJECT", "ENCODING", "l") == b"$9\r\nquicklist\r\n"
    h.run(c, "RPOP", "l")  # 8111 bytes: listpack again (Redis would wait for half)
    assert h.run(c, "OBJECT", "ENCODING", "l") == b"$8\r\nlistpack\r\n"
    h.run(c, "CONFIG", "SET", "list-max-listpack-size", "-1")  # 4 KiB
    assert h.run(c, "OBJECT", "ENCODING", "l") == b"$9\r\nquicklist\r\n"


@pytest.mark.parametrize(
    ("fill", "n", "encoding"),
    [(3, 3, b"listpack"), (3, 4, b"quicklist"), (0, 1, b"listpack"), (0, 2, b"quicklist"),
     (-5, 600, b"listpack"), (-9, 600, b"listpack"), (-1, 600, b"quicklist")],
)  # fmt: skip
def test_list_encoding_limits(fill: int, n: int, encoding: bytes) -> None:
    value = deque([b"x" * 10] * n)
    assert list_encoding(value, {"list-max-listpack-size": fill}) == encoding


def test_list_encoding_count_limit_keeps_the_safety_size() -> None:
    value = deque([b"x" * 5000] * 2)
    assert list_encoding(value, {"list-max-listpack-size": 100}) == b"quicklist"


def test_object_encoding_follows_config(h: Harness) -> None:
    h2 = Harness("list-max-listpack-size 2")
    c = h2.client()
    h2.run(c, "RPUSH", "l", "a", "b")
    assert h2.run(c, "OBJECT", "ENCODING", "l") == b"$8\r\nlistpack\r\n"
    h2.run(c, "RPUSH", "l", "c")
    assert h2.run(c, "OBJECT", "ENCODING", "l") == b"$9\r\nquicklist\r\n"


def test_digest_value_matches_redis(h: Harness) -> None:
    # Values read from redis-server 7.0.15: RPUSH dl a b c; RPUSH dn 1 -5 "".
    c = h.client()
    h.run(c, "RPUSH", "dl", "a", "b", "c")
    h.run(c, "RPUSH", "dn", "1", "-5", "")
    assert h.run(c, "DEBUG", "DIGEST-VALUE", "dl", "dn") == (
        b"*2\r\n+8bf72d812571eea9b927f3c11beb0c4165a6ff89\r\n"
        b"+6e5ff8972f0dfccf5e040129f7cfe79af0c5827a\r\n"
    )
    assert h.run(c, "DEBUG", "DIGEST") == b"+09807f88c1d92e94ebbeff3d926ecc4c75307875\r\n"
    assert kind_of(deque([b"a"])) is ValueKind.LIST


def test_copy_is_deep_and_rename_moves(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a", "b")
    assert h.run(c, "COPY", "l", "k") == b":1\r\n"
    h.run(c, "RPUSH", "k", "c")
    assert contents(h, "l") == [b"a", b"b"]
    assert contents(h, "k") == [b"a", b"b", b"c"]
    assert h.run(c, "RENAME", "k", "m") == OK
    assert h.run(c, "LRANGE", "m", "0", "-1") == bulks("a", "b", "c")


def test_scan_type_list(h: Harness) -> None:
    c = h.client()
    h.run(c, "RPUSH", "l", "a")
    h.run(c, "SET", "s", "v")
    assert h.run(c, "SCAN", "0", "TYPE", "list") == b"*2\r\n$1\r\n0\r\n" + bulks("l")


# -- helpers shared with the blocking variants -------------------------------------------


def test_parse_end() -> None:
    assert parse_end(b"LEFT") is End.LEFT
    assert parse_end(b"rIgHt") is End.RIGHT
    with pytest.raises(CommandError, match="syntax error"):
        parse_end(b"up")


def test_parse_mpop_at_any_numkeys_position() -> None:
    # BLMPOP timeout numkeys ...: numkeys at index 2.
    argv = [b"BLMPOP", b"0", b"2", b"a", b"b", b"RIGHT", b"COUNT", b"3"]
    assert parse_mpop(argv, 2) == ([b"a", b"b"], End.RIGHT, 3)
    assert parse_mpop([b"LMPOP", b"1", b"a", b"left"], 1) == ([b"a"], End.LEFT, 1)


def test_pop_from_move_mpop_and_holds_list(h: Harness) -> None:
    c = h.client()
    db = h.server.dbs[0]
    h.run(c, "RPUSH", "l", "a", "b", "c")
    h.run(c, "SET", "s", "v")
    assert holds_list(db, b"l") and not holds_list(db, b"s") and not holds_list(db, b"x")
    assert pop_from(db, b"x", End.LEFT, 1) is None
    assert pop_from(db, b"l", End.RIGHT, 2) == [b"c", b"b"]
    with pytest.raises(CommandError, match="WRONGTYPE"):
        pop_from(db, b"s", End.LEFT, 1)
    assert move(db, b"x", b"s", End.LEFT, End.LEFT) is None
    with pytest.raises(CommandError, match="WRONGTYPE"):
        move(db, b"l", b"s", End.LEFT, End.LEFT)
    assert move(db, b"l", b"m", End.LEFT, End.RIGHT) == b"a"
    assert not holds_list(db, b"l")
    assert mpop(db, [b"x", b"l", b"m"], End.LEFT, 5) == (b"m", [b"a"])
    assert mpop(db, [b"x", b"m"], End.LEFT, 1) is None
    assert db.data.keys() == {b"s"}
