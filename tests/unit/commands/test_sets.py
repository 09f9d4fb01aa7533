"""Set commands through the server core: replies in RESP2 and RESP3, error texts and their
order, dirty counts, keyspace hit/miss stats, WATCH, effects, random members (SPOP,
SRANDMEMBER and their decks), the algebra and its STORE forms, SSCAN, OBJECT ENCODING.

Expected bytes are redis-server 7.0.15's (run side by side while writing these tests) and
Redis 7.2's where the two differ: listpack-encoded sets, and SPOP with count propagated as
SREMs of up to 1024 members (Redis #12082) instead of one SREM per member.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ackdb.commands import sets
from ackdb.keyspace.digest import digest_value_hex
from conftest import Harness

WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
NOT_INT = b"-ERR value is not an integer or out of range\r\n"
SYNTAX = b"-ERR syntax error\r\n"
POSITIVE = b"-ERR value is out of range, must be positive\r\n"


def bulks(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in items)


def rset(*items: bytes) -> bytes:
    """A RESP3 set reply."""
    return b"~%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in items)


def members(reply: bytes) -> list[bytes]:
    """The bulk strings of a flat array or set reply, in order."""
    lines = reply.split(b"\r\n")
    assert lines[0][:1] in (b"*", b"~"), reply
    return [lines[i] for i in range(2, len(lines) - 1, 2)]


def resp3(h: Harness):  # type: ignore[no-untyped-def]
    c = h.client()
    assert h.run(c, "HELLO", "3").startswith(b"%7\r\n")
    return c


def data(h: Harness, key: bytes = b"s") -> object:
    return h.server.dbs[0].data.get(key)


@pytest.fixture
def h() -> Harness:
    return Harness()


# -- SADD / SREM / SCARD / SISMEMBER / SMISMEMBER ---------------------------------------------


def test_sadd_counts_new_members(h: Harness) -> None:
    c = h.client()
    assert h.run(c, "SADD", "s", "a", "b", "a") == b":2\r\n"
    assert h.run(c, "SADD", "s", "b", "c") == b":1\r\n"
    assert h.run(c, "SADD", "s", "c") == b":0\r\n"
    assert data(h) == {b"a", b"b", b"c"}
    assert h.run(c, "SCARD", "s") == b":3\r\n"
    assert h.run(c, "SCARD", "nokey") == b":0\r\n"
    assert h.run(c, "TYPE", "s") == b"+set\r\n"


def test_srem_deletes_an_emptied_set(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a", "b", "c")
    assert h.run(c, "SREM", "s", "a", "x", "a") == b":1\r\n"
    assert h.run(c, "SREM", "nokey", "a") == b":0\r\n"
    assert h.run(c, "SREM", "s", "b", "c", "d") == b":2\r\n"
    assert h.run(c, "EXISTS", "s") == b":0\r\n"


def test_membership(h: Harness) -> None:
    c, c3 = h.client(), resp3(h)
    h.run(c, "SADD", "s", "a", "")
    assert h.run(c, "SISMEMBER", "s", "a") == b":1\r\n"
    assert h.run(c, "SISMEMBER", "s", "") == b":1\r\n"
    assert h.run(c, "SISMEMBER", "s", "z") == b":0\r\n"
    assert h.run(c, "SISMEMBER", "nokey", "a") == b":0\r\n"
    # Redis 7: SISMEMBER and SMISMEMBER answer integers in RESP3 too.
    assert h.run(c3, "SISMEMBER", "s", "a") == b":1\r\n"
    assert h.run(c, "SMISMEMBER", "s", "a", "z", "") == b"*3\r\n:1\r\n:0\r\n:1\r\n"
    assert h.run(c3, "SMISMEMBER", "nokey", "a", "z") == b"*2\r\n:0\r\n:0\r\n"


@pytest.mark.parametrize(
    "args",
    [
        ("SADD", "str", "a"),
        ("SREM", "str", "a"),
        ("SCARD", "str"),
        ("SISMEMBER", "str", "a"),
        ("SMISMEMBER", "str", "a"),
        ("SMEMBERS", "str"),
        ("SPOP", "str"),
        ("SPOP", "str", "2"),
        ("SPOP", "str", "0"),  # the type is checked before a zero count
        ("SRANDMEMBER", "str"),
        ("SRANDMEMBER", "str", "0"),
        ("SRANDMEMBER", "str", "-2"),
        ("SMOVE", "str", "s", "a"),
        ("SMOVE", "s", "str", "zz"),  # the destination is checked even for a non-member
        ("SINTER", "nokey", "str"),  # every key is checked, even after a missing one
        ("SUNION", "s", "str"),
        ("SDIFF", "nokey", "str"),
        ("SDIFF", "str", "nokey"),
        ("SINTERSTORE", "d", "nokey", "str"),
        ("SUNIONSTORE", "d", "s", "str"),
        ("SDIFFSTORE", "d", "str"),
        ("SINTERCARD", "2", "nokey", "str"),
        ("SSCAN", "str", "0"),
        ("SSCAN", "str", "0", "FOO"),  # WRONGTYPE before option errors
    ],
)
def test_wrongtype(h: Harness, args: tuple[str, ...]) -> None:
    c = h.client()
    h.run(c, "SET", "str", "x")
    h.run(c, "SADD", "s", "a")
    assert h.run(c, *args) == WRONGTYPE
    assert h.run(c, "GET", "str") == b"$1\r\nx\r\n"
    assert h.run(c, "EXISTS", "d") == b":0\r\n"


# -- SMEMBERS and the algebra -----------------------------------------------------------------


def test_smembers_resp2_and_resp3(h: Harness) -> None:
    c, c3 = h.client(), resp3(h)
    h.run(c, "SADD", "s", "b", "a")
    assert sorted(members(h.run(c, "SMEMBERS", "s"))) == [b"a", b"b"]
    assert h.run(c, "SMEMBERS", "s").startswith(b"*2\r\n")
    assert h.run(c3, "SMEMBERS", "s").startswith(b"~2\r\n")
    assert h.run(c, "SMEMBERS", "nokey") == b"*0\r\n"
    assert h.run(c3, "SMEMBERS", "nokey") == b"~0\r\n"


def test_integer_sets_reply_in_ascending_order_as_an_intset(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "i", "5", "3", "100", "-2", "1")
    h.run(c, "SADD", "j", "7", "3", "-5")
    # redis-server 7.0.15's replies, byte for byte.
    assert h.run(c, "SMEMBERS", "i") == bulks(b"-2", b"1", b"3", b"5", b"100")
    assert h.run(c, "SUNION", "i", "j") == bulks(b"-5", b"-2", b"1", b"3", b"5", b"7", b"100")
    assert h.run(c, "SDIFF", "i", "j") == bulks(b"-2", b"1", b"5", b"100")
    assert h.run(c, "SRANDMEMBER", "i", "10") == bulks(b"-2", b"1", b"3", b"5", b"100")
    assert h.run(c, "SPOP", "i", "10") == bulks(b"-2", b"1", b"3", b"5", b"100")
    h.run(c, "SADD", "k", "1", "01")  # "01" is no intset member: no particular order
    assert sorted(members(h.run(c, "SMEMBERS", "k"))) == [b"01", b"1"]


def test_algebra(h: Harness) -> None:
    c, c3 = h.client(), resp3(h)
    h.run(c, "SADD", "a", "x", "y", "z")
    h.run(c, "SADD", "b", "y", "z", "w")
    h.run(c, "SADD", "c", "z", "v")
    assert members(h.run(c, "SINTER", "a", "b", "c")) == [b"z"]
    assert sorted(members(h.run(c, "SINTER", "a", "b"))) == [b"y", b"z"]
    assert h.run(c, "SINTER", "a", "nokey") == b"*0\r\n"
    assert h.run(c3, "SINTER", "a", "nokey") == b"~0\r\n"
    assert sorted(members(h.run(c, "SUNION", "a", "nokey", "c"))) == [b"v", b"x", b"y", b"z"]
    assert h.run(c3, "SUNION", "nokey") == b"~0\r\n"
    assert h.run(c3, "SUNION", "c", "c").startswith(b"~2\r\n")
    assert members(h.run(c, "SDIFF", "a", "b")) == [b"x"]
    assert sorted(members(h.run(c, "SDIFF", "a", "nokey"))) == [b"x", b"y", b"z"]
    assert h.run(c, "SDIFF", "nokey", "a") == b"*0\r\n"
    assert h.run(c3, "SDIFF", "a", "a") == b"~0\r\n"
    assert h.run(c, "SINTER", "a") == h.run(c, "SMEMBERS", "a")


def test_store_forms(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "a", "x", "y")
    h.run(c, "SADD", "b", "y", "z")
    h.run(c, "SET", "d", "string", "EX", "100")
    assert h.run(c, "SINTERSTORE", "d", "a", "b") == b":1\r\n"  # any type is overwritten
    assert data(h, b"d") == {b"y"}
    assert h.run(c, "TTL", "d") == b":-1\r\n"  # and its TTL dropped
    assert h.run(c, "SUNIONSTORE", "d", "a", "b", "nokey") == b":3\r\n"
    assert data(h, b"d") == {b"x", b"y", b"z"}
    assert h.run(c, "SDIFFSTORE", "d", "a", "b") == b":1\r\n"
    assert data(h, b"d") == {b"x"}
    assert h.run(c, "SUNIONSTORE", "a", "a", "b") == b":3\r\n"  # destination among sources
    assert data(h, b"a") == {b"x", b"y", b"z"}
    stored = data(h, b"d")
    assert h.run(c, "SUNIONSTORE", "e", "d") == b":1\r\n"
    assert data(h, b"e") is not stored  # a copy, never the source object
    # An empty result deletes the destination.
    assert h.run(c, "SINTERSTORE", "d", "a", "nokey") == b":0\r\n"
    assert h.run(c, "EXISTS", "d") == b":0\r\n"
    assert h.run(c, "SDIFFSTORE", "d", "a", "a") == b":0\r\n"
    assert h.run(c, "EXISTS", "d") == b":0\r\n"


def test_store_effects_and_dirty(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "a", "x")
    h.effects.clear()
    dirty = h.server.dirty
    h.run(c, "SUNIONSTORE", "d", "a")
    h.run(c, "SINTERSTORE", "d", "a", "nokey")  # deletes d: propagated as sent
    h.run(c, "SINTERSTORE", "d", "a", "nokey")  # nothing changed: not propagated
    assert h.effects == [
        (0, [b"SUNIONSTORE", b"d", b"a"]),
        (0, [b"SINTERSTORE", b"d", b"a", b"nokey"]),
    ]
    assert h.server.dirty - dirty == 2


def test_sintercard(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a", "b", "c", "d", "e", "f")
    h.run(c, "SADD", "t", "a", "b", "c", "z")
    assert h.run(c, "SINTERCARD", "1", "s") == b":6\r\n"
    assert h.run(c, "SINTERCARD", "2", "s", "t") == b":3\r\n"
    assert h.run(c, "SINTERCARD", "2", "s", "t", "LIMIT", "2") == b":2\r\n"
    assert h.run(c, "SINTERCARD", "2", "s", "t", "limit", "0") == b":3\r\n"  # 0: no limit
    assert h.run(c, "SINTERCARD", "1", "s", "LIMIT", "1", "LIMIT", "3") == b":3\r\n"
    assert h.run(c, "SINTERCARD", "2", "s", "nokey") == b":0\r\n"
    assert h.run(c, "SINTERCARD", "2", "s", "s") == b":6\r\n"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("0", "s"), b"ERR numkeys should be greater than 0"),
        (("-1", "s"), b"ERR numkeys should be greater than 0"),
        (("x", "s"), b"ERR numkeys should be greater than 0"),
        (("9223372036854775808", "s"), b"ERR numkeys should be greater than 0"),
        (("2", "s"), b"ERR Number of keys can't be greater than number of args"),
        (("2147483648", "s"), b"ERR Number of keys can't be greater than number of args"),
        (("1", "s", "LIMIT"), b"ERR syntax error"),
        (("1", "s", "s"), b"ERR syntax error"),
        (("1", "s", "FOO", "2"), b"ERR syntax error"),
        (("1", "s", "LIMIT", "-1"), b"ERR LIMIT can't be negative"),
        (("1", "s", "LIMIT", "x"), b"ERR LIMIT can't be negative"),
        (("1", "s", "LIMIT", "9223372036854775808"), b"ERR LIMIT can't be negative"),
        (("2", "str", "s", "LIMIT", "-1"), b"ERR LIMIT can't be negative"),  # before WRONGTYPE
    ],
)
def test_sintercard_errors(h: Harness, args: tuple[str, ...], error: bytes) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a")
    h.run(c, "SET", "str", "x")
    assert h.run(c, "SINTERCARD", *args) == b"-" + error + b"\r\n"


# -- SMOVE ---------------------------------------------------------------------------------


def test_smove(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a", "b")
    h.run(c, "SADD", "t", "b")
    h.run(c, "SET", "str", "x")
    assert h.run(c, "SMOVE", "nokey", "str", "a") == b":0\r\n"  # before the type checks
    assert h.run(c, "SMOVE", "s", "nokey2", "zz") == b":0\r\n"
    assert h.run(c, "SMOVE", "s", "s", "a") == b":1\r\n"
    assert h.run(c, "SMOVE", "s", "s", "zz") == b":0\r\n"
    assert h.run(c, "SMOVE", "s", "d", "a") == b":1\r\n"  # creates the destination
    assert data(h, b"d") == {b"a"}
    assert h.run(c, "SMOVE", "s", "t", "b") == b":1\r\n"  # already there; source emptied
    assert h.run(c, "EXISTS", "s") == b":0\r\n"
    assert data(h, b"t") == {b"b"}


def test_smove_dirty_and_effects(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a", "b", "c")
    h.run(c, "SADD", "t", "b")
    h.effects.clear()
    for args, dirty in [
        (("SMOVE", "s", "t", "a"), 2),
        (("SMOVE", "s", "t", "b"), 1),  # removed from s, already in t
        (("SMOVE", "s", "s", "c"), 0),
        (("SMOVE", "s", "t", "zz"), 0),
        (("SMOVE", "s", "new", "c"), 2),
    ]:
        before = h.server.dirty
        h.run(c, *args)
        assert h.server.dirty - before == dirty, args
    assert [argv[3] for _, argv in h.effects] == [b"a", b"b", b"c"]


# -- SPOP ----------------------------------------------------------------------------------


def test_spop_replies(h: Harness) -> None:
    c, c3 = h.client(), resp3(h)
    assert h.run(c, "SPOP", "nokey") == b"$-1\r\n"
    assert h.run(c3, "SPOP", "nokey") == b"_\r\n"
    assert h.run(c, "SPOP", "nokey", "3") == b"*0\r\n"
    assert h.run(c3, "SPOP", "nokey", "3") == b"~0\r\n"
    h.run(c, "SADD", "s", "a", "b", "c")
    assert h.run(c, "SPOP", "s", "0") == b"*0\r\n"
    assert h.run(c3, "SPOP", "s", "0") == b"~0\r\n"
    one = h.run(c3, "SPOP", "s", "1")
    assert one.startswith(b"~1\r\n")
    m = h.run(c, "SPOP", "s")
    assert m in (b"$1\r\na\r\n", b"$1\r\nb\r\n", b"$1\r\nc\r\n")
    rest = h.run(c3, "SPOP", "s", "5")
    assert rest.startswith(b"~1\r\n")
    assert h.run(c, "EXISTS", "s") == b":0\r\n"
    popped = members(one) + [m.split(b"\r\n")[1]] + members(rest)
    assert sorted(popped) == [b"a", b"b", b"c"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("s", "-1"), POSITIVE),
        (("s", "x"), POSITIVE),
        (("s", "-9223372036854775808"), POSITIVE),
        (("s", "9223372036854775808"), POSITIVE),
        (("str", "x"), POSITIVE),  # before WRONGTYPE
        (("s", "1", "2"), SYNTAX),
        (("str", "1", "x"), SYNTAX),
    ],
)
def test_spop_errors(h: Harness, args: tuple[str, ...], error: bytes) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a")
    h.run(c, "SET", "str", "x")
    assert h.run(c, "SPOP", *args) == error
    assert data(h) == {b"a"}


def test_spop_effects(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "s", *"abcdefgh")
    h.effects.clear()
    dirty = h.server.dirty
    one = h.run(c, "SPOP", "s").split(b"\r\n")[1]
    two = members(h.run(c, "SPOP", "s", "2"))
    h.run(c, "SPOP", "s", "0")
    h.run(c, "SPOP", "s", "100")
    assert h.effects == [
        (0, [b"SREM", b"s", one]),
        (0, [b"SREM", b"s", *two]),  # Redis 7.2: one SREM for the batch
        (0, [b"DEL", b"s"]),  # the whole set
    ]
    assert h.server.dirty - dirty == 1 + 2 + 5
    h.effects.clear()
    h.run(c, "SADD", "s", "a", "b")
    h.run(c, "SPOP", "s")
    last = h.run(c, "SPOP", "s")  # empties the set: still an SREM
    assert h.effects[-1] == (0, [b"SREM", b"s", last.split(b"\r\n")[1]])
    assert h.run(c, "EXISTS", "s") == b":0\r\n"


def test_spop_whole_set_is_unlink_with_lazyfree() -> None:
    h = Harness("lazyfree-lazy-server-del yes")
    c = h.client()
    h.run(c, "SADD", "s", "a", "b")
    h.effects.clear()
    h.run(c, "SPOP", "s", "2")
    assert h.effects == [(0, [b"UNLINK", b"s"])]


def test_spop_count_propagates_batches_in_multi(h: Harness) -> None:
    c = h.client()
    n = 3000
    h.run(c, "SADD", "s", *[f"m{i}" for i in range(n)])
    h.effects.clear()
    popped = members(h.run(c, "SPOP", "s", "2500"))
    assert len(set(popped)) == 2500
    argvs = [argv for _, argv in h.effects]
    assert argvs[0] == [b"MULTI"] and argvs[-1] == [b"EXEC"]
    batches = argvs[1:-1]
    assert [len(b) - 2 for b in batches] == [1024, 1024, 452]
    assert all(b[:2] == [b"SREM", b"s"] for b in batches)
    assert [m for b in batches for m in b[2:]] == popped
    assert len(data(h)) == n - 2500  # type: ignore[arg-type]
    # Inside EXEC the transaction already wraps the effects: no nested MULTI.
    h.effects.clear()
    h.run(c, "MULTI")
    h.run(c, "SPOP", "s", "499")
    h.run(c, "EXEC")
    argvs = [argv for _, argv in h.effects]
    assert [a[0] for a in argvs] == [b"SREM"]
    assert len(argvs[0]) == 2 + 499


def test_spop_draws_every_member_exactly_once(h: Harness) -> None:
    """A large set pops through its deck; members added meanwhile are drawn too, and
    a popped member is always a live one (checked against a model)."""
    c = h.client()
    h.server.rng.seed(1)
    model = {f"m{i}".encode() for i in range(500)}
    h.run(c, "SADD", "s", *model)
    pops = 0
    for i in range(300):
        m = h.run(c, "SPOP", "s").split(b"\r\n")[1]
        model.remove(m)  # KeyError if not live
        pops += 1
        if i % 3 == 0:
            h.run(c, "SADD", "s", f"n{i}")
            model.add(f"n{i}".encode())
        if i % 7 == 0:  # removed and re-added: two cards in the deck
            h.run(c, "SREM", "s", f"m{499 - i}")
            h.run(c, "SADD", "s", f"m{499 - i}")
            model.add(f"m{499 - i}".encode())
    batch = members(h.run(c, "SPOP", "s", "100"))  # a batch through the deck
    assert len(set(batch)) == 100
    model.difference_update(batch)
    assert data(h) == model
    while model:
        model.remove(h.run(c, "SPOP", "s").split(b"\r\n")[1])
    assert h.run(c, "EXISTS", "s") == b":0\r\n"


def test_spop_is_not_biased_towards_an_order() -> None:
    """Pop one of 200 members 2000 times (re-adding it): each about 10 times."""
    h = Harness()
    c = h.client()
    h.server.rng.seed(3)
    h.run(c, "SADD", "s", *[f"m{i}" for i in range(200)])
    counts: Counter[bytes] = Counter()
    for _ in range(2000):
        m = h.run(c, "SPOP", "s").split(b"\r\n")[1]
        counts[m] += 1
        h.run(c, "SADD", "s", m)
    assert len(counts) > 180
    assert max(counts.values()) < 35


# -- SRANDMEMBER ------------------------------------------------------------------------------


def test_srandmember_replies(h: Harness) -> None:
    c, c3 = h.client(), resp3(h)
    assert h.run(c, "SRANDMEMBER", "nokey") == b"$-1\r\n"
    assert h.run(c3, "SRANDMEMBER", "nokey") == b"_\r\n"
    assert h.run(c, "SRANDMEMBER", "nokey", "3") == b"*0\r\n"
    assert h.run(c3, "SRANDMEMBER", "nokey", "-3") == b"*0\r\n"  # an array, even in RESP3
    h.run(c, "SADD", "s", *"abcdef")
    assert h.run(c3, "SRANDMEMBER", "s", "0") == b"*0\r\n"
    three = members(h.run(c3, "SRANDMEMBER", "s", "3"))
    six = [bytes([x]) for x in b"abcdef"]
    assert len(set(three)) == 3 and set(three) <= set(six)
    assert sorted(members(h.run(c3, "SRANDMEMBER", "s", "10"))) == six
    many = members(h.run(c, "SRANDMEMBER", "s", "-20"))
    assert len(many) == 20 and len(set(many)) <= 6
    assert h.run(c, "SRANDMEMBER", "s").startswith(b"$1\r\n")
    assert data(h) == set(six)  # read-only


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("s", "x"), NOT_INT),
        (("str", "x"), NOT_INT),  # before WRONGTYPE
        (
            ("nokey", "-9223372036854775808"),
            b"-ERR value is out of range, value must between -9223372036854775807 and "
            b"9223372036854775807\r\n",
        ),
        (("s", "1", "2"), SYNTAX),
        (("str", "-1", "x"), SYNTAX),
        (
            ("s", str(-sets.RANDMEMBER_PICKS_MAX - 1)),
            b"-ERR value is out of range, a negative count must be at least -16777216\r\n",
        ),
    ],
)
def test_srandmember_errors(h: Harness, args: tuple[str, ...], error: bytes) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a")
    h.run(c, "SET", "str", "x")
    assert h.run(c, "SRANDMEMBER", *args) == error


def test_srandmember_large_sets(h: Harness) -> None:
    c = h.client()
    h.server.rng.seed(5)
    all_members = {f"m{i}".encode() for i in range(1000)}
    h.run(c, "SADD", "s", *all_members)
    h.run(c, "SREM", "s", *[f"m{i}" for i in range(0, 1000, 2)])  # stale cards later
    live = {m for m in all_members if int(m[1:]) % 2}
    h.effects.clear()
    assert h.run(c, "SRANDMEMBER", "s").split(b"\r\n")[1] in live
    distinct = members(h.run(c, "SRANDMEMBER", "s", "100"))
    assert len(set(distinct)) == 100 and set(distinct) <= live
    repeats = members(h.run(c, "SRANDMEMBER", "s", "-50"))
    assert len(repeats) == 50 and set(repeats) <= live
    big = members(h.run(c, "SRANDMEMBER", "s", "400"))
    assert len(set(big)) == 400 and set(big) <= live
    counts = Counter(members(h.run(c, "SRANDMEMBER", "s", "-50000")))
    assert set(counts) == live
    assert max(counts.values()) < 160  # expected 100 each
    assert h.effects == []  # read-only: nothing propagated
    assert data(h) == live


def test_random_replies_follow_the_server_rng(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "s", *[f"m{i}" for i in range(10)])
    h.server.rng.seed(9)
    first = [h.run(c, "SRANDMEMBER", "s", "-5") for _ in range(3)]
    h.server.rng.seed(9)
    assert [h.run(c, "SRANDMEMBER", "s", "-5") for _ in range(3)] == first


# -- SSCAN ---------------------------------------------------------------------------------


def test_sscan_small_set_whole(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a", "b", "ab")
    reply = h.run(c, "SSCAN", "s", "12345", "COUNT", "1")
    assert reply.startswith(b"*2\r\n$1\r\n0\r\n*3\r\n")
    assert h.run(c, "SSCAN", "s", "0", "MATCH", "a*") in (
        b"*2\r\n$1\r\n0\r\n" + bulks(b"a", b"ab"),
        b"*2\r\n$1\r\n0\r\n" + bulks(b"ab", b"a"),
    )
    h.run(c, "SADD", "i", "3", "-1", "2")
    assert h.run(c, "SSCAN", "i", "0") == b"*2\r\n$1\r\n0\r\n" + bulks(b"-1", b"2", b"3")


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        (("s", "x"), b"-ERR invalid cursor\r\n"),
        (("nokey", "x"), b"-ERR invalid cursor\r\n"),
        (("nokey", "0", "COUNT", "0"), b"*2\r\n$1\r\n0\r\n*0\r\n"),  # options unread
        (("s", "0", "COUNT", "0"), SYNTAX),
        (("s", "0", "COUNT", "x"), NOT_INT),
        (("s", "0", "MATCH"), SYNTAX),
        (("s", "0", "FOO", "bar"), SYNTAX),
        (("s", "0", "TYPE", "set"), SYNTAX),
        (("s", "0", "MATCH", "a*", "NOVALUES"), SYNTAX),
    ],
)
def test_sscan_errors(h: Harness, args: tuple[str, ...], reply: bytes) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a")
    assert h.run(c, "SSCAN", *args) == reply


def _sscan_all(h: Harness, c, key: str, *opts: str) -> list[bytes]:  # type: ignore[no-untyped-def]
    cursor = b"0"
    out: list[bytes] = []
    for _ in range(10_000):
        reply = h.run(c, "SSCAN", key, cursor, *opts)
        lines = reply.split(b"\r\n")
        cursor = lines[2]
        out += members(b"\r\n".join(lines[3:]))
        if cursor == b"0":
            return out
    raise AssertionError("SSCAN did not end")


def test_sscan_large_set_returns_each_member_once(h: Harness) -> None:
    c = h.client()
    all_members = [f"member:{i}".encode() for i in range(1000)]
    h.run(c, "SADD", "s", *all_members)
    seen = _sscan_all(h, c, "s", "COUNT", "37")
    assert sorted(seen) == sorted(all_members)
    matched = _sscan_all(h, c, "s", "MATCH", "member:1??", "COUNT", "100")
    assert sorted(matched) == sorted(m for m in all_members if len(m) == 10 and m[7:8] == b"1")


def test_sscan_with_changes_during_iteration(h: Harness) -> None:
    """Members present throughout come exactly once; a removed member never comes after
    its removal (Redis's SCAN guarantees, with no duplicates on top)."""
    c, other = h.client(), h.client()
    stable = [f"stable:{i}".encode() for i in range(600)]
    doomed = [f"doomed:{i}".encode() for i in range(600)]
    h.run(c, "SADD", "s", *stable, *doomed)
    removed: set[bytes] = set()
    seen: list[bytes] = []
    cursor = b"0"
    for i in range(1000):
        lines = h.run(c, "SSCAN", "s", cursor, "COUNT", "50").split(b"\r\n")
        page = members(b"\r\n".join(lines[3:]))
        assert not set(page) & removed
        seen += page
        cursor = lines[2]
        if cursor == b"0":
            break
        gone = doomed[i * 20 : i * 20 + 20]
        h.run(other, "SREM", "s", *gone)
        removed.update(gone)
        h.run(other, "SADD", "s", f"new:{i}")
    assert cursor == b"0"
    assert len(seen) == len(set(seen))
    assert set(stable) <= set(seen)


def test_sscan_cursor_survives_a_lost_snapshot(h: Harness) -> None:
    c = h.client()
    all_members = [f"m{i}".encode() for i in range(500)]
    h.run(c, "SADD", "s", *all_members)
    reply = h.run(c, "SSCAN", "s", "0", "COUNT", "100")
    lines = reply.split(b"\r\n")
    first = members(b"\r\n".join(lines[3:]))
    h.server.scan_snapshots._entries.clear()  # as if evicted
    rest = _sscan_from(h, c, lines[2])
    assert sorted(first + rest) == sorted(all_members)


def _sscan_from(h: Harness, c, cursor: bytes) -> list[bytes]:  # type: ignore[no-untyped-def]
    out: list[bytes] = []
    while cursor != b"0":
        lines = h.run(c, "SSCAN", "s", cursor, "COUNT", "100").split(b"\r\n")
        cursor = lines[2]
        out += members(b"\r\n".join(lines[3:]))
    return out


# -- OBJECT ENCODING, DEBUG DIGEST-VALUE, COPY ---------------------------------------------------


@pytest.mark.parametrize(
    ("items", "encoding"),
    [
        (["1", "2", "-3"], b"intset"),
        (["9223372036854775807", "-9223372036854775808"], b"intset"),
        (["9223372036854775808"], b"listpack"),  # beyond int64
        (["01"], b"listpack"),  # not canonical
        (["+1"], b"listpack"),
        (["-0"], b"listpack"),
        (["a", "b"], b"listpack"),
        (["x" * 64], b"listpack"),
        (["x" * 65], b"hashtable"),
        ([str(i) for i in range(512)], b"intset"),
        ([str(i) for i in range(513)], b"hashtable"),
        ([f"m{i}" for i in range(128)], b"listpack"),
        ([f"m{i}" for i in range(129)], b"hashtable"),
    ],
)
def test_object_encoding(h: Harness, items: list[str], encoding: bytes) -> None:
    c = h.client()
    h.run(c, "SADD", "s", *items)
    assert h.run(c, "OBJECT", "ENCODING", "s") == b"$%d\r\n%s\r\n" % (len(encoding), encoding)


def test_object_encoding_follows_config() -> None:
    h = Harness(
        "set-max-intset-entries 2", "set-max-listpack-entries 3", "set-max-listpack-value 5"
    )
    c = h.client()
    for items, encoding in [
        (["1", "2"], b"intset"),
        (["1", "2", "3"], b"listpack"),  # too many for an intset, fine for a listpack
        (["1", "2", "3", "4"], b"hashtable"),
        (["abcde"], b"listpack"),
        (["abcdef"], b"hashtable"),
    ]:
        h.run(c, "DEL", "s")
        h.run(c, "SADD", "s", *items)
        assert h.run(c, "OBJECT", "ENCODING", "s") == enc_bulk(encoding), items


def enc_bulk(v: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(v), v)


def test_digest_value(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a", "b", "1")
    # The digest of a set xors its members' SHA1s: insertion order does not matter.
    h.run(c, "SADD", "t", "1", "b", "a")
    d = h.run(c, "DEBUG", "DIGEST-VALUE", "s", "t")
    expected = digest_value_hex({b"a", b"b", b"1"}).encode()
    assert d == b"*2\r\n+%s\r\n+%s\r\n" % (expected, expected)


def test_copy_is_deep(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a")
    h.run(c, "COPY", "s", "t")
    h.run(c, "SADD", "t", "b")
    assert data(h) == {b"a"}
    assert data(h, b"t") == {b"a", b"b"}


# -- dirty, stats, WATCH ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "dirty"),
    [
        (("SADD", "s", "a", "x", "y"), 2),
        (("SADD", "s", "a"), 0),
        (("SADD", "new", "a", "a"), 1),
        (("SREM", "s", "a", "b", "zz"), 2),
        (("SREM", "s", "zz"), 0),
        (("SPOP", "s"), 1),
        (("SPOP", "s", "2"), 2),
        (("SPOP", "s", "9"), 3),
        (("SPOP", "s", "0"), 0),
        (("SRANDMEMBER", "s", "2"), 0),
        (("SUNIONSTORE", "d", "s"), 1),
        (("SINTERSTORE", "d", "nokey"), 0),
        (("SINTERSTORE", "s", "nokey"), 1),
    ],
)
def test_dirty(h: Harness, args: tuple[str, ...], dirty: int) -> None:
    c = h.client()
    h.run(c, "SADD", "s", "a", "b", "c")
    before = h.server.dirty
    h.run(c, *args)
    assert h.server.dirty - before == dirty


def test_keyspace_hits_and_misses(h: Harness) -> None:
    c = h.client()
    h.run(c, "SADD", "a", "1", "2")
    h.run(c, "SADD", "b", "2", "3")
    h.run(c, "CONFIG", "RESETSTAT")
    # redis-server 7.0.15: the STORE forms read their sources as reads; SMOVE does not.
    h.run(c, "SINTERSTORE", "d", "a", "b", "nokey")
    h.run(c, "SUNIONSTORE", "d", "a", "b", "nokey")
    h.run(c, "SDIFFSTORE", "d", "a", "b", "nokey")
    h.run(c, "SMOVE", "a", "b", "1")
    h.run(c, "SMOVE", "nokey", "b", "1")
    assert (h.server.stat_keyspace_hits, h.server.stat_keyspace_misses) == (6, 3)
    for args in [("SCARD", "b"), ("SISMEMBER", "nokey", "x"), ("SMEMBERS", "b")]:
        h.run(c, *args)
    assert (h.server.stat_keyspace_hits, h.server.stat_keyspace_misses) == (8, 4)


@pytest.mark.parametrize(
    ("args", "aborted"),
    [
        (("SADD", "s", "new"), True),
        (("SADD", "s", "a"), False),
        (("SREM", "s", "a"), True),
        (("SREM", "s", "zz"), False),
        (("SPOP", "s"), True),
        (("SPOP", "s", "1"), True),
        (("SPOP", "s", "0"), False),
        (("SRANDMEMBER", "s", "-3"), False),
        (("SMOVE", "s", "t", "a"), True),
        (("SMOVE", "t", "s", "t1"), True),
        (("SMOVE", "t", "s", "a"), False),  # only t changes: a is in s already
        (("SMOVE", "s", "s", "a"), False),
        (("SMOVE", "s", "t", "zz"), False),
        (("SUNIONSTORE", "s", "t"), True),
        (("SINTERSTORE", "s", "nokey"), True),
        (("SINTERSTORE", "new", "nokey"), False),
        (("SINTER", "s", "t"), False),
    ],
)
def test_watch(h: Harness, args: tuple[str, ...], aborted: bool) -> None:
    watcher, other = h.client(), h.client()
    h.run(other, "SADD", "s", "a", "b")
    h.run(other, "SADD", "t", "a", "t1")
    h.run(watcher, "WATCH", "s", "new")
    h.run(other, *args)
    h.run(watcher, "MULTI")
    h.run(watcher, "PING")
    assert h.run(watcher, "EXEC") == (b"*-1\r\n" if aborted else b"*1\r\n+PONG\r\n")


def test_smove_touches_the_destination(h: Harness) -> None:
    watcher, other = h.client(), h.client()
    h.run(other, "SADD", "s", "a", "b")
    h.run(other, "SADD", "t", "x")
    h.run(watcher, "WATCH", "t")
    h.run(other, "SMOVE", "s", "t", "a")
    h.run(watcher, "MULTI")
    assert h.run(watcher, "EXEC") == b"*-1\r\n"


# -- decks -----------------------------------------------------------------------------------


def test_decks_are_bounded_and_dropped_with_their_set() -> None:
    rng = random.Random(1)
    kept = []
    for i in range(sets.DECKS_MAX + 10):
        s = {b"%d:%d" % (i, j) for j in range(sets.DECK_MIN_MEMBERS + 1)}
        sets._peek(s, rng)
        kept.append(s)
    del s
    assert len(sets._DECKS) == sets.DECKS_MAX
    kept.clear()
    assert len(sets._DECKS) == 0  # weakly referenced: gone with their sets


def test_deck_rebuilds_when_mostly_stale() -> None:
    rng = random.Random(2)
    s = {b"%d" % i for i in range(1000)}
    sets._peek(s, rng)
    for i in range(900):
        s.discard(b"%d" % i)
    m = sets._peek(s, rng)
    assert m in s
    cards = sets._deck_of(s)
    assert cards is not None and len(cards) <= 2 * len(s) + sets.DECK_SLACK
