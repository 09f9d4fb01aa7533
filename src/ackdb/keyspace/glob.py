"""Redis glob patterns (``stringmatchlen``) for KEYS, SCAN MATCH, CONFIG GET, PSUBSCRIBE.

Owns turning a pattern into a fast predicate with Redis 7.0's exact semantics (verified
against redis-server 7.0.15 with KEYS, CONFIG GET and PSUBSCRIBE):

- ``*`` any run of bytes, ``?`` one byte, ``\\x`` the byte x; a trailing lone ``\\`` is a
  literal backslash.
- ``[...]`` one byte from a set: ``^`` first negates; ``\\x`` inside is x *compared
  case-sensitively even with nocase*; ``a-z`` is a range, reversed ranges are swapped, and
  any byte after ``-`` ends the range, even ``]`` (so ``[a-]`` is an unterminated set);
  ``]`` right after ``[`` or ``[^`` closes an empty set. An unterminated ``[`` takes the
  rest of the pattern as its set.
- Ranges compare bytes as C ``char`` on x86-64, i.e. *signed*: 0x80..0xff sort below 0x00,
  so ``[a-\\xff]`` means the signed range -1..97: bytes 0x00-0x61 and 0xff.
- nocase folds ASCII A-Z only (C locale ``tolower``), and a range folds its two ends after
  swapping, so ``[Z-a]`` with nocase matches nothing and ``[A-z]`` with nocase misses ``_``.
- The empty string matches only the empty pattern: ``*`` does *not* match b"" (PSUBSCRIBE *
  misses PUBLISH to channel ""). KEYS and SCAN special-case the pattern ``*`` as "match
  everything" before calling stringmatchlen; callers do the same with ``is_match_all``.

Otherwise the semantics are ordinary globbing, so a pattern compiles to one ``re`` pattern:
byte sets per position, and between stars atomic groups ``(?>.*?segment)`` (the leftmost
placement of a fixed-length segment is always the best one), which keeps matching linear in
the pattern count instead of the backtracking blow-up of ``*a*a*a*b``.

Must never: raise on any byte string, depend on the process locale, hold unbounded state
(the compile cache is an LRU of GLOB_CACHE_ENTRIES_MAX entries).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Final

GLOB_CACHE_ENTRIES_MAX: Final = 1024

_STAR: Final = object()
_SPECIAL: Final = frozenset(b"*?[\\")
_ALL_BYTES: Final = frozenset(range(256))


def _signed(c: int) -> int:
    return c - 256 if c >= 128 else c


def _fold(c: int) -> int:
    """C-locale tolower on a (possibly negative) char value."""
    return c + 32 if 65 <= c <= 90 else c


def _bracket(pattern: bytes, i: int, nocase: bool) -> tuple[frozenset[int], int]:
    """The byte set of the ``[`` at ``pattern[i - 1]`` and the index just past it."""
    n = len(pattern)
    negate = i < n and pattern[i] == 0x5E  # '^'
    if negate:
        i += 1
    chosen: set[int] = set()
    while True:
        if i + 1 < n and pattern[i] == 0x5C:  # '\\': escaped, case-sensitive
            chosen.add(pattern[i + 1])
            i += 2
        elif i < n and pattern[i] == 0x5D:  # ']'
            i += 1
            break
        elif i >= n:  # unterminated: the set ends with the pattern
            break
        elif i + 2 < n and pattern[i + 1] == 0x2D:  # 'x-y' range, compared as signed char
            lo, hi = sorted((_signed(pattern[i]), _signed(pattern[i + 2])))
            if nocase:
                lo, hi = _fold(lo), _fold(hi)
                chosen.update(c for c in range(256) if lo <= _fold(_signed(c)) <= hi)
            else:
                chosen.update(c for c in range(256) if lo <= _signed(c) <= hi)
            i += 3
        else:
            c = pattern[i]
            chosen.update({c, _fold(c), c - 32 if 97 <= c <= 122 else c} if nocase else {c})
            i += 1
    members = _ALL_BYTES - chosen if negate else frozenset(chosen)
    return members, i


def _tokens(pattern: bytes, nocase: bool) -> list[object]:
    """The pattern as a list of _STAR and one-byte sets (frozenset of byte values)."""
    out: list[object] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # '*'
            if not out or out[-1] is not _STAR:
                out.append(_STAR)
            i += 1
        elif c == 0x3F:  # '?'
            out.append(_ALL_BYTES)
            i += 1
        elif c == 0x5B:  # '['
            members, i = _bracket(pattern, i + 1, nocase)
            out.append(members)
        else:
            if c == 0x5C and i + 1 < n:  # '\\' escapes the next byte
                i += 1
                c = pattern[i]
            upper_lower = {c, _fold(c), c - 32 if 97 <= c <= 122 else c}
            out.append(frozenset(upper_lower if nocase else {c}))
            i += 1
    return out


def _byte_class(members: frozenset[int]) -> bytes:
    if members == _ALL_BYTES:
        return b"."
    if not members:
        return b"(?!)"
    if len(members) == 1:
        return re.escape(bytes(members))
    parts, run_start, prev = [], -2, -2
    for c in sorted(members) + [-1]:
        if c != prev + 1:
            if run_start >= 0:
                parts.append(b"\\x%02x-\\x%02x" % (run_start, prev))
            run_start = c
        prev = c
    return b"[" + b"".join(parts) + b"]"


def _regex(tokens: list[object]) -> re.Pattern[bytes]:
    segments: list[bytes] = [b""]
    for token in tokens:
        if token is _STAR:
            segments.append(b"")
        else:
            assert isinstance(token, frozenset)
            segments[-1] += _byte_class(token)
    if len(segments) == 1:
        return re.compile(segments[0], re.DOTALL)
    middle = b"".join(b"(?>.*?" + s + b")" for s in segments[1:-1])
    return re.compile(segments[0] + middle + b".*" + segments[-1], re.DOTALL)


def is_match_all(pattern: bytes) -> bool:
    """KEYS / SCAN MATCH treat exactly ``*`` as "every key", the empty key included."""
    return pattern == b"*"


@functools.lru_cache(maxsize=GLOB_CACHE_ENTRIES_MAX)
def _compile(pattern: bytes, nocase: bool) -> Callable[[bytes], bool]:
    if pattern == b"*":
        return lambda s: len(s) > 0
    if _SPECIAL.isdisjoint(pattern):
        if nocase:
            folded = pattern.lower()  # bytes.lower folds ASCII only, like C tolower
            return lambda s: len(s) == len(folded) and s.lower() == folded
        return lambda s: s == pattern
    fullmatch = _regex(_tokens(pattern, nocase)).fullmatch
    # An empty string never enters stringmatchlen's loop: only the empty pattern matches it.
    return lambda s: len(s) > 0 and fullmatch(s) is not None


def compile_glob(pattern: bytes, nocase: bool = False) -> Callable[[bytes], bool]:
    """A predicate equal to Redis ``stringmatchlen(pattern, s, nocase)``."""
    return _compile(bytes(pattern), nocase)


def glob_match(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """One-shot ``stringmatchlen``."""
    return compile_glob(pattern, nocase)(string)
