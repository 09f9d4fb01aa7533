"""The sorted set value (keyspace/zset.py): Hypothesis against a naive sorted list, the
range argument parsers, -0, copies, the digest and the encoding.

The naive reference keeps a plain Python list sorted by (score, member) and answers every
query by scanning it, following Redis's definitions: score ranges by comparing each score,
lex ranges by Redis's listpack walk (``zzlFirstInLexRange`` / ``zzlLastInLexRange``: the
first member in range from the head or the tail, then ``offset`` members stepped over
unchecked, then members while still in range).
"""

from __future__ import annotations

import bisect
import copy
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.keyspace.digest import value_digest
from ackdb.keyspace.types import encoding, type_name
from ackdb.keyspace.zrange import (
    LexRange,
    ScoreRange,
    limit_span,
    parse_lex_bound,
    parse_lex_range,
    parse_score_bound,
    rank_span,
)
from ackdb.keyspace.zset import ZSet


class TinyZSet(ZSet):
    """Blocks of at most 4 entries: a handful of members already splits, merges and
    spans blocks."""

    BLOCK_MAX = 4
    BLOCK_MIN = 2
    BLOCK_LOAD = 3


CLASSES = st.sampled_from([ZSet, TinyZSet])
MEMBERS = st.sampled_from([b"", b"a", b"aa", b"ab", b"b", b"ba", b"\x00", b"\xff", b"a\x00", b"c"])
SCORES = st.sampled_from([-math.inf, -2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, math.inf])


# -- the naive reference -----------------------------------------------------------------


class Naive:
    def __init__(self) -> None:
        self.items: list[tuple[float, bytes]] = []

    def add(self, member: bytes, score: float) -> bool:
        score += 0.0
        new = True
        for i, (_, m) in enumerate(self.items):
            if m == member:
                del self.items[i]
                new = False
                break
        self.items.append((score, member))
        self.items.sort()
        return new

    def remove(self, member: bytes) -> bool:
        for i, (_, m) in enumerate(self.items):
            if m == member:
                del self.items[i]
                return True
        return False

    def score_span(self, r: ScoreRange) -> list[int]:
        def inside(s: float) -> bool:
            above = s > r.min if r.minex else s >= r.min
            below = s < r.max if r.maxex else s <= r.max
            return above and below

        return [i for i, (s, _) in enumerate(self.items) if inside(s)]

    def lex_walk(self, r: LexRange, reverse: bool, offset: int, count: int) -> list[int]:
        """Redis's listpack walk over (score, member) order, literally."""
        n = len(self.items)
        members = [m for _, m in self.items]
        if n == 0 or r.is_empty():
            return []
        if not r.gte_min(members[-1]) or not r.lte_max(members[0]):
            return []
        order = range(n - 1, -1, -1) if reverse else range(n)
        found = None
        for i in order:
            if (r.lte_max if reverse else r.gte_min)(members[i]):
                found = i
                break
        if found is None or not (r.gte_min if reverse else r.lte_max)(members[found]):
            return []
        step = -1 if reverse else 1
        i = found
        while 0 <= i < n and offset:
            i += step
            offset -= 1  # a negative offset never reaches 0: it walks off the end
        out = []
        while 0 <= i < n and count != 0:
            if not (r.gte_min if reverse else r.lte_max)(members[i]):
                break
            out.append(i)
            i += step
            count -= 1
        return sorted(out)


def _indices(span: tuple[int, int]) -> list[int]:
    return list(range(*span))


score_bounds = st.tuples(SCORES, st.booleans())
lex_bounds = st.one_of(
    st.just((-1, b"", True)), st.just((1, b"", True)), st.tuples(st.just(0), MEMBERS, st.booleans())
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), MEMBERS, SCORES),
        st.tuples(st.just("remove"), MEMBERS, SCORES),
        st.tuples(st.just("pop"), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("remove_span"), st.integers(-4, 4), st.integers(-4, 4)),
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(CLASSES, ops)
def test_operations_match_the_naive_reference(
    cls: type[ZSet], program: list[tuple[object, ...]]
) -> None:
    z, ref = cls(), Naive()
    for op in program:
        if op[0] == "add":
            _, m, s = op
            assert z.add(m, s) == ref.add(m, s)  # type: ignore[arg-type]
        elif op[0] == "remove":
            assert z.remove(op[1]) == ref.remove(op[1])  # type: ignore[arg-type]
        elif op[0] == "pop":
            _, count, maximum = op
            got = z.pop(count, maximum)  # type: ignore[arg-type]
            k = min(count, len(ref.items))  # type: ignore[type-var]
            cut = len(ref.items) - k if maximum else k
            if maximum:
                want, ref.items = ref.items[cut:][::-1], ref.items[:cut]
            else:
                want, ref.items = ref.items[:cut], ref.items[cut:]
            assert [e[:2] for e in got] == want
        else:
            lo, hi = rank_span(op[1], op[2], len(ref.items))  # type: ignore[arg-type]
            assert z.remove_span(lo, hi) == hi - lo
            del ref.items[lo:hi]
        z.check()
        assert [e[:2] for e in z.entries(0, len(z), False)] == ref.items
        assert len(z) == len(ref.items)
    for i, (s, m) in enumerate(ref.items):
        assert z.score(m) == s
        assert z.rank(m, False) == i
        assert z.rank(m, True) == len(ref.items) - 1 - i
        assert z.at(i) == (s, m, b"$%d\r\n%s\r\n" % (len(m), m))
    assert z.rank(b"nope", False) is None and z.score(b"nope") is None


@settings(max_examples=400, deadline=None)
@given(
    CLASSES,
    st.lists(st.tuples(MEMBERS, SCORES), max_size=12),
    score_bounds,
    score_bounds,
    st.integers(-1, 4),
    st.integers(-1, 4),
    st.booleans(),
)
def test_score_ranges_match_the_naive_reference(
    cls: type[ZSet],
    pairs: list[tuple[bytes, float]],
    lo: tuple[float, bool],
    hi: tuple[float, bool],
    offset: int,
    count: int,
    reverse: bool,
) -> None:
    z, ref = cls(pairs), Naive()
    for m, s in pairs:
        ref.add(m, s)
    r = ScoreRange(lo[0], hi[0], lo[1], hi[1])
    want = ref.score_span(r)
    assert _indices(z.score_span(r)) == want
    span = z.score_span(r)
    limited = _indices(limit_span(*span, offset, count, reverse))
    walk = want[::-1] if reverse else want
    expected = [] if offset < 0 else walk[offset:][: None if count < 0 else count]
    assert limited == sorted(expected)


@settings(max_examples=600, deadline=None)
@given(
    CLASSES,
    st.lists(st.tuples(MEMBERS, SCORES), max_size=12),
    st.booleans(),
    lex_bounds,
    lex_bounds,
    st.booleans(),
    st.integers(-1, 4),
    st.integers(-1, 4),
)
def test_lex_ranges_match_redis_walk(
    cls: type[ZSet],
    pairs: list[tuple[bytes, float]],
    same_score: bool,
    lo: tuple[int, bytes, bool],
    hi: tuple[int, bytes, bool],
    reverse: bool,
    offset: int,
    count: int,
) -> None:
    if same_score:
        pairs = [(m, 0.0) for m, _ in pairs]
    z, ref = cls(pairs), Naive()
    for m, s in pairs:
        ref.add(m, s)
    r = LexRange(lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
    assert _indices(z.lex_span(r, reverse, offset, count)) == ref.lex_walk(
        r, reverse, offset, count
    )


def test_many_blocks_against_a_sorted_list() -> None:
    """Thousands of random adds, moves, removals, pops and span removals over a set cut
    into many small blocks: order, ranks, positions and score spans stay those of a plain
    sorted list (ties of equal scores across block boundaries included)."""

    class Small(ZSet):
        BLOCK_MAX = 16
        BLOCK_MIN = 4
        BLOCK_LOAD = 8

    rng = random.Random(7)
    z = Small((b"m%d" % i, float(i % 7)) for i in range(200))
    ref = sorted((float(i % 7), b"m%d" % i) for i in range(200))
    for step in range(3000):
        op = rng.random()
        m = b"m%d" % rng.randrange(400)
        if op < 0.6:
            s = float(rng.randrange(-3, 12))
            old = z.score(m)
            assert z.update(m, s) == old
            if old is not None:
                ref.remove((old, m))
            bisect.insort(ref, (s, m))
        elif op < 0.85:
            old = z.score(m)
            assert z.remove(m) == (old is not None)
            if old is not None:
                ref.remove((old, m))
        elif op < 0.95:
            k = rng.randrange(0, 6)
            maximum = rng.random() < 0.5
            got = [e[:2] for e in z.pop(k, maximum)]
            k = min(k, len(ref))
            want = ref[len(ref) - k :][::-1] if maximum else ref[:k]
            ref = ref[: len(ref) - k] if maximum else ref[k:]
            assert got == want
        else:
            lo = rng.randrange(0, len(ref) + 1)
            hi = min(len(ref), lo + rng.randrange(0, 40))
            assert z.remove_span(lo, hi) == max(0, hi - lo)
            del ref[lo:hi]
        if step % 97 == 0:
            z.check()
        if ref and step % 7 == 0:
            i = rng.randrange(len(ref))
            assert z.at(i)[:2] == ref[i]
            assert z.rank(ref[i][1], False) == i
            lo = rng.randrange(len(ref))
            assert [e[:2] for e in z.entries(lo, lo + 30, False)] == ref[lo : lo + 30]
            a, b = sorted(float(rng.randrange(-4, 13)) for _ in range(2))
            scores = [e[0] for e in ref]
            want = (bisect.bisect_right(scores, a), bisect.bisect_left(scores, b))
            got = z.score_span(ScoreRange(a, b, True, True))
            assert got == (want[0], max(want))
    z.check()
    assert [e[:2] for e in z.entries(0, len(z), False)] == ref


# -- construction, -0, infinities, order -------------------------------------------------


def test_negative_zero_is_stored_as_zero() -> None:
    z = ZSet([(b"a", -0.0)])
    z.add(b"b", -0.0)
    for m in (b"a", b"b"):
        s = z.score(m)
        assert s == 0 and math.copysign(1.0, s) > 0  # type: ignore[arg-type]
    z.check()


def test_equal_scores_order_members_bytewise_like_memcmp() -> None:
    z = ZSet([(b"b", 1.0), (b"\xff", 1.0), (b"a\x00", 1.0), (b"a", 1.0), (b"", 1.0)])
    assert list(z.members()) == [b"", b"a", b"a\x00", b"b", b"\xff"]


def test_infinities_are_ordinary_scores() -> None:
    z = ZSet([(b"x", math.inf), (b"y", -math.inf), (b"z", 0.0)])
    assert list(z.members()) == [b"y", b"z", b"x"]
    assert z.score_span(ScoreRange(math.inf, math.inf)) == (2, 3)
    assert z.score_span(ScoreRange(math.inf, math.inf, minex=True)) == (3, 3)
    assert z.score_span(ScoreRange(-math.inf, -math.inf)) == (0, 1)


def test_add_reports_new_members_and_moves_changed_ones() -> None:
    z = ZSet()
    assert z.add(b"a", 1.0) is True
    assert z.add(b"a", 1.0) is False
    assert z.add(b"b", 0.5) is True
    assert z.add(b"a", 0.0) is False
    assert [e[:2] for e in z.entries(0, 2, False)] == [(0.0, b"a"), (0.5, b"b")]
    assert [e[:2] for e in z.entries(0, 2, True)] == [(0.5, b"b"), (0.0, b"a")]
    assert z.entries(1, 1, False) == []


@pytest.mark.parametrize("cls", [ZSet, TinyZSet])
def test_column_views_agree_with_entries(cls: type[ZSet]) -> None:
    """bulks (ZRANGE), member_slice (ZSCAN) and iter_entries (WITHSCORES) are the same
    slices as entries, across blocks, clipped, empty and reversed; update hands back the
    previous score and moves the member with its bulk."""
    rng = random.Random(11)
    z = cls()
    for _ in range(300):
        z.update(b"m%d" % rng.randrange(60), float(rng.randrange(20)))
    z.check()
    n = len(z)
    for lo, hi in [(0, n), (0, n + 5), (3, 17), (n - 2, n + 3), (5, 5), (9, 4), (n, n + 1)]:
        for reverse in (False, True):
            want = z.entries(lo, hi, reverse)
            assert z.bulks(lo, hi, reverse) == [e[2] for e in want]
            assert list(z.iter_entries(lo, hi, reverse)) == want
            if not reverse:
                assert z.member_slice(lo, hi) == [e[1] for e in want]
    m = z.at(0)[1]
    old = z.score(m)
    assert z.update(m, 100.0) == old and z.at(-1) == (100.0, m, b"$%d\r\n%s\r\n" % (len(m), m))
    assert z.update(m, 100.0) == 100.0 and z.update(b"new", 1.5) is None
    z.check()
    copied = ZSet.from_entries(z.iter_entries(0, len(z), False))
    copied.check()
    assert copied.entries(0, len(copied), False) == z.entries(0, len(z), False)


def test_pop_everything_empties_both_views() -> None:
    z = ZSet([(b"a", 1.0), (b"b", 2.0)])
    assert [e[:2] for e in z.pop(10, True)] == [(2.0, b"b"), (1.0, b"a")]
    assert len(z) == 0 and not z and z.pop(1, False) == []
    z.check()


def test_copy_is_deep_and_independent() -> None:
    z = ZSet([(b"a", 1.0), (b"b", 2.0)])
    for dup in (copy.deepcopy(z), copy.copy(z), z.copy()):
        dup.add(b"c", 3.0)
        dup.remove(b"a")
        assert sorted(z) == [(b"a", 1.0), (b"b", 2.0)]
        assert sorted(dup) == [(b"b", 2.0), (b"c", 3.0)]
        dup.check()


def test_digest_sees_a_zset() -> None:
    # Redis 7.0.15: ZADD d 3 a 6 b 10.5 c; DEBUG DIGEST-VALUE d
    z = ZSet([(b"a", 3.0), (b"b", 6.0), (b"c", 10.5)])
    assert value_digest(z, False).hex() == "a5cb48a78bc5ec3a9d6379257af7d82cc0b31662"


LIMITS = {"zset-max-listpack-entries": 128, "zset-max-listpack-value": 64}


def test_type_and_encoding() -> None:
    z = ZSet((b"m%d" % i, float(i)) for i in range(128))
    assert type_name(z) == b"zset"
    assert encoding(z, LIMITS) == b"listpack"
    z.add(b"one more", 0.0)
    assert encoding(z, LIMITS) == b"skiplist"
    assert encoding(ZSet([(b"x" * 64, 1.0)]), LIMITS) == b"listpack"
    assert encoding(ZSet([(b"x" * 65, 1.0)]), LIMITS) == b"skiplist"
    assert encoding(ZSet([(b"a", 1.0)]), {**LIMITS, "zset-max-listpack-entries": 0}) == (
        b"skiplist"
    )


# -- spans and parsers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "stop", "n", "span"),
    [
        (0, -1, 5, (0, 5)),
        (-2, 100, 5, (3, 5)),
        (3, 1, 5, (0, 0)),
        (5, 9, 5, (0, 0)),
        (-100, -50, 5, (0, 0)),
        (-100, 0, 5, (0, 1)),
        (0, -1, 0, (0, 0)),
        (-(2**63), 2**63 - 1, 3, (0, 3)),
    ],
)
def test_rank_span_is_redis_normalisation(start: int, stop: int, n: int, span: object) -> None:
    assert rank_span(start, stop, n) == span


@pytest.mark.parametrize(
    ("arg", "parsed"),
    [
        (b"1.5", (1.5, False)),
        (b"(1.5", (1.5, True)),
        (b"-inf", (-math.inf, False)),
        (b"+inf", (math.inf, False)),
        (b"(inf", (math.inf, True)),
        (b"infinity", (math.inf, False)),
        (b"", (0.0, False)),  # strtod consumes nothing and nothing is left over
        (b"(", (0.0, True)),
        (b" 1", (1.0, False)),  # strtod skips leading white space
        (b"\t(1", None),
        (b"( 1", (1.0, True)),
        (b"1e400", (math.inf, False)),  # no ERANGE check here, unlike ZADD's scores
        (b"-1e400", (-math.inf, False)),
        (b"1e-400", (0.0, False)),
        (b"0x10", (16.0, False)),
        (b"0x1p-2", (0.25, False)),
        (b".5", (0.5, False)),
        (b"5.", (5.0, False)),
        (b"1 ", None),
        (b" ", None),
        (b"nan", None),
        (b"(nan", None),
        (b"abc", None),
        (b"((1", None),
        (b"1_0", None),
        (b"0x", None),
        (b"1e", None),
        (b"-", None),
        (b".", None),
        (b"1\x00", None),
    ],
)
def test_score_bound_is_strtod(arg: bytes, parsed: object) -> None:
    # Redis zslParseRange (checked against redis-server 7.0.15 with ZRANGE ... BYSCORE)
    assert parse_score_bound(arg) == parsed


@pytest.mark.parametrize(
    ("arg", "parsed"),
    [
        (b"-", (-1, b"", True)),
        (b"+", (1, b"", True)),
        (b"[a", (0, b"a", False)),
        (b"(a", (0, b"a", True)),
        (b"[", (0, b"", False)),
        (b"(", (0, b"", True)),
        (b"a", None),
        (b"", None),
        (b"-a", None),
        (b"+b", None),
        (b"]a", None),
    ],
)
def test_lex_bound(arg: bytes, parsed: object) -> None:
    assert parse_lex_bound(arg) == parsed


@pytest.mark.parametrize(
    ("lo", "hi", "empty"),
    [
        (b"-", b"+", False),
        (b"-", b"-", True),
        (b"+", b"+", True),
        (b"+", b"-", True),
        (b"[a", b"[a", False),
        (b"(a", b"[a", True),
        (b"[b", b"[a", True),
        (b"[", b"(", True),
        (b"[", b"+", False),
    ],
)
def test_lex_range_emptiness(lo: bytes, hi: bytes, empty: bool) -> None:
    r = parse_lex_range(lo, hi)
    assert r is not None and r.is_empty() is empty


def test_lex_range_on_mixed_scores_follows_the_listpack_walk() -> None:
    # Redis 7.0.15: ZADD z1 -2 a 0 e 2.25 -1 4 aa 5 ba 9 h
    z = ZSet([(b"a", -2), (b"e", 0), (b"-1", 2.25), (b"aa", 4), (b"ba", 5), (b"h", 9)])
    r = parse_lex_range(b"[a", b"+")
    assert r is not None
    # ZRANGE z1 [a + BYLEX -> all six: "+" never stops the walk from the head
    assert [e[1] for e in z.entries(*z.lex_span(r), False)] == [
        b"a", b"e", b"-1", b"aa", b"ba", b"h"
    ]  # fmt: skip
    # ZRANGE z1 + [a REV BYLEX -> h ba aa; with LIMIT 4 4 -> e a
    assert [e[1] for e in z.entries(*z.lex_span(r, True), True)] == [b"h", b"ba", b"aa"]
    assert [e[1] for e in z.entries(*z.lex_span(r, True, 4, 4), True)] == [b"e", b"a"]
