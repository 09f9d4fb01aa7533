"""ackdb.keyspace.glob against a direct recursive reference of Redis's stringmatchlen.

The reference below follows the C function step by step (pointer walk, '*' recursion with
the "skip longer matches" cut, signed-char ranges, nocase via ASCII tolower). It was
checked against redis-server 7.0.15: 9,000 random patterns through KEYS (with the empty key
and bytes 0x00/0x80/0xff present) and 4,000 through CONFIG GET (nocase); every edge case
in EDGE_CASES was also observed on that server.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.keyspace.glob import GLOB_CACHE_ENTRIES_MAX, compile_glob, glob_match, is_match_all


def _signed(c: int) -> int:
    return c - 256 if c >= 128 else c


def _lower(c: int) -> int:
    return c + 32 if 65 <= c <= 90 else c


def reference_match(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """stringmatchlen, transcribed as a recursive walk over (pattern index, string index)."""
    skip_longer = [False]
    plen, slen = len(pattern), len(string)

    def bracket(p: int, c: int) -> tuple[bool, int]:
        p += 1
        negate = p < plen and pattern[p] == ord("^")
        if negate:
            p += 1
        matched = False
        while True:
            rest = plen - p
            if rest >= 2 and pattern[p] == ord("\\"):
                p += 1
                matched |= pattern[p] == c
            elif rest > 0 and pattern[p] == ord("]"):
                break
            elif rest == 0:
                p -= 1
                break
            elif rest >= 3 and pattern[p + 1] == ord("-"):
                lo, hi, x = _signed(pattern[p]), _signed(pattern[p + 2]), _signed(c)
                if lo > hi:
                    lo, hi = hi, lo
                if nocase:
                    lo, hi, x = _lower(lo), _lower(hi), _lower(x)
                p += 2
                matched |= lo <= x <= hi
            elif nocase:
                matched |= _lower(pattern[p]) == _lower(c)
            else:
                matched |= pattern[p] == c
            p += 1
        return matched != negate, p

    def walk(p: int, s: int) -> bool:
        while p < plen and s < slen:
            c = pattern[p]
            if c == ord("*"):
                while p + 1 < plen and pattern[p + 1] == ord("*"):
                    p += 1
                if p + 1 == plen:
                    return True
                while s < slen:
                    if walk(p + 1, s):
                        return True
                    if skip_longer[0]:
                        return False
                    s += 1
                skip_longer[0] = True
                return False
            if c == ord("?"):
                s += 1
            elif c == ord("["):
                matched, p = bracket(p, string[s])
                if not matched:
                    return False
                s += 1
            else:
                if c == ord("\\") and plen - p >= 2:
                    p += 1
                    c = pattern[p]
                same = _lower(c) == _lower(string[s]) if nocase else c == string[s]
                if not same:
                    return False
                s += 1
            p += 1
            if s == slen:
                while p < plen and pattern[p] == ord("*"):
                    p += 1
                break
        return p == plen and s == slen

    return walk(0, 0)


PATTERN_BYTES = b"ab*?[]^-\\zAZ_\x00\x80\xff"
STRING_BYTES = b"abzAZ_-]^\\*?[\x00\x7f\x80\xff"


@settings(max_examples=3000, deadline=None)
@given(
    pattern=st.binary(max_size=10).map(
        lambda b: bytes(PATTERN_BYTES[x % len(PATTERN_BYTES)] for x in b)
    ),
    string=st.binary(max_size=8).map(
        lambda b: bytes(STRING_BYTES[x % len(STRING_BYTES)] for x in b)
    ),
    nocase=st.booleans(),
)
def test_matches_reference(pattern: bytes, string: bytes, nocase: bool) -> None:
    assert compile_glob(pattern, nocase)(string) == reference_match(pattern, string, nocase)


@settings(max_examples=500, deadline=None)
@given(pattern=st.binary(max_size=8), string=st.binary(max_size=8), nocase=st.booleans())
def test_matches_reference_on_any_bytes(pattern: bytes, string: bytes, nocase: bool) -> None:
    assert glob_match(pattern, string, nocase) == reference_match(pattern, string, nocase)


# (pattern, string, nocase, expected), observed on redis-server 7.0.15: case-sensitive ones
# with KEYS (and PSUBSCRIBE / PUBLISH for "*" vs ""), nocase ones with CONFIG GET, except
# ("[A-z]", "_", nocase), which no config name can show and follows from the reference.
EDGE_CASES = [
    (b"*", b"", False, False),  # PSUBSCRIBE * gets nothing from PUBLISH "" x
    (b"**", b"", False, False),  # KEYS ** misses the key ""
    (b"", b"", False, True),
    (b"*", b"a", False, True),
    (b"a*", b"a", False, True),
    (b"*a", b"a", False, True),
    (b"a*b", b"a", False, False),
    (b"h?llo", b"hello", False, True),
    (b"h[^e]llo", b"hello", False, False),
    (b"h[a-b]llo", b"hbllo", False, True),
    (b"h[b-a]llo", b"hbllo", False, True),  # reversed range
    (b"[", b"a", False, False),  # unterminated, empty set
    (b"[^", b"a", False, True),  # unterminated, negated empty set
    (b"[abc", b"b", False, True),  # unterminated set takes the rest
    (b"[]", b"]", False, False),  # "]" first closes an empty set
    (b"[]]", b"]", False, False),
    (b"[^]", b"x", False, True),
    (b"[a-]", b"]", False, True),  # range a..']' and still unterminated
    (b"[a-]", b"-", False, False),
    (b"[\\]]", b"]", False, True),
    (b"\\", b"\\", False, True),  # trailing backslash is literal
    (b"a\\*", b"a*", False, True),
    (b"a\\*", b"ab", False, False),
    (b"[a-\xff]", b"\x00", False, True),  # signed char: -1..97
    (b"[a-\xff]", b"\x80", False, False),
    (b"[a-\xff]", b"\xff", False, True),
    (b"[a-\xff]", b"b", False, False),
    (b"MAXMEMORY", b"maxmemory", True, True),
    (b"[\\M]axmemory", b"maxmemory", True, False),  # escaped in [] stays case-sensitive
    (b"[\\m]axmemory", b"maxmemory", True, True),
    (b"[Z-a]*", b"maxmemory", True, False),  # ends folded after the swap: 'z'..'a'
    (b"[A-z]", b"_", False, True),
    (b"[A-z]", b"_", True, False),
    (b"[A-z]axmemory", b"maxmemory", True, True),
    (b"maxmemory-polic[a-z", b"maxmemory-policy", True, True),
]


@pytest.mark.parametrize(("pattern", "string", "nocase", "expected"), EDGE_CASES)
def test_edge_cases(pattern: bytes, string: bytes, nocase: bool, expected: bool) -> None:
    assert reference_match(pattern, string, nocase) is expected
    assert compile_glob(pattern, nocase)(string) is expected


def test_match_all_is_only_the_single_star() -> None:
    assert is_match_all(b"*")
    assert not is_match_all(b"**")
    assert not is_match_all(b"")


def test_literal_and_star_fast_paths() -> None:
    assert compile_glob(b"key:1")(b"key:1")
    assert not compile_glob(b"key:1")(b"key:10")
    assert compile_glob(b"KEY", nocase=True)(b"key")
    assert not compile_glob(b"K\xc9Y", nocase=True)(b"k\xe9y")  # ASCII folding only


def test_compiled_predicates_are_cached() -> None:
    assert compile_glob(b"user:*") is compile_glob(bytearray(b"user:*"))
    assert compile_glob(b"user:*") is not compile_glob(b"user:*", nocase=True)
    assert GLOB_CACHE_ENTRIES_MAX > 0


def test_many_stars_do_not_backtrack_exponentially() -> None:
    # Redis fixed the same blow-up in 7.0.9 (CVE-2022-36021).
    predicate = compile_glob(b"*a*a*a*a*a*a*a*a*a*a*a*a*b")
    start = time.monotonic()
    assert not predicate(b"a" * 20_000)
    assert predicate(b"a" * 20_000 + b"b")
    assert time.monotonic() - start < 5.0
