"""The range arguments of the sorted-set commands: ZRANGEBYSCORE's and ZRANGEBYLEX's
bounds, LIMIT, and ZRANGE's ranks, as Redis parses and applies them.

Owns: ``ScoreRange`` / ``LexRange`` and their parsers (Redis zslParseRange and
zslParseLexRangeItem: strtod's grammar for scores, ``(`` exclusive, ``[`` / ``(`` / ``-`` /
``+`` for lex bounds), and the arithmetic that turns ranks and LIMIT into index spans.
Pure functions; the sorted set (``zset``) takes what they return.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

# Lex bound kinds: "-" (below every string), a string, "+" (above every string).
LEX_MIN: Final = -1
LEX_STRING: Final = 0
LEX_MAX: Final = 1


@dataclass(frozen=True, slots=True)
class ScoreRange:
    """ZRANGEBYSCORE's ``min`` / ``max``: ``(`` makes a bound exclusive."""

    min: float
    max: float
    minex: bool = False
    maxex: bool = False


@dataclass(frozen=True, slots=True)
class LexRange:
    """ZRANGEBYLEX's ``min`` / ``max``: ``-``, ``+``, ``[value`` or ``(value``."""

    min_kind: int
    min: bytes
    minex: bool
    max_kind: int
    max: bytes
    maxex: bool

    def is_empty(self) -> bool:
        """Redis zslIsInLexRange's first test: min above max, or equal and exclusive."""
        a = (self.min_kind, self.min if self.min_kind == LEX_STRING else b"")
        b = (self.max_kind, self.max if self.max_kind == LEX_STRING else b"")
        return a > b or (a == b and (self.minex or self.maxex))

    def gte_min(self, member: bytes) -> bool:
        if self.min_kind != LEX_STRING:
            return self.min_kind == LEX_MIN
        return member > self.min if self.minex else member >= self.min

    def lte_max(self, member: bytes) -> bool:
        if self.max_kind != LEX_STRING:
            return self.max_kind == LEX_MAX
        return member < self.max if self.maxex else member <= self.max


# strtod's grammar (C locale) without NaN forms, which Redis refuses anyway.
_STRTOD_RE: Final = re.compile(
    rb"[+-]?(?:[iI][nN][fF](?:[iI][nN][iI][tT][yY])?"
    rb"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
)
_C_SPACE: Final = b" \t\n\v\f\r"


def _strtod_whole(text: bytes) -> float | None:
    """C ``strtod`` that must consume all of ``text``: leading white space is skipped,
    overflow gives +-inf and underflow 0 (no ERANGE check), "" is 0 (nothing to parse,
    nothing left over); NaN and trailing characters fail."""
    if not text:
        return 0.0
    body = text.lstrip(_C_SPACE)
    if _STRTOD_RE.fullmatch(body) is None:
        return None
    digits = body.lstrip(b"+-")
    if digits[:2] in (b"0x", b"0X"):
        try:
            value = float.fromhex(body.decode())
        except OverflowError:
            value = -math.inf if body.startswith(b"-") else math.inf
        return value
    return float(body)  # Python's float() overflows to inf and underflows to 0 like strtod


def parse_score_bound(arg: bytes) -> tuple[float, bool] | None:
    """One ZRANGEBYSCORE bound (Redis zslParseRange): ``(x`` is exclusive, the number is
    parsed by plain strtod (so " 1", "", "(" and "1e400" are accepted), NaN refused."""
    exclusive = arg[:1] == b"("
    value = _strtod_whole(arg[1:] if exclusive else arg)
    if value is None or math.isnan(value):
        return None
    return value, exclusive


def parse_score_range(lo: bytes, hi: bytes) -> ScoreRange | None:
    a, b = parse_score_bound(lo), parse_score_bound(hi)
    if a is None or b is None:
        return None
    return ScoreRange(a[0], b[0], a[1], b[1])


def parse_lex_bound(arg: bytes) -> tuple[int, bytes, bool] | None:
    """One ZRANGEBYLEX bound (Redis zslParseLexRangeItem): "+" and "-" alone (both count
    as exclusive), "[value" inclusive, "(value" exclusive; anything else is invalid."""
    head = arg[:1]
    if head == b"+" or head == b"-":
        if len(arg) != 1:
            return None
        return (LEX_MAX if head == b"+" else LEX_MIN), b"", True
    if head == b"[":
        return LEX_STRING, arg[1:], False
    if head == b"(":
        return LEX_STRING, arg[1:], True
    return None


def parse_lex_range(lo: bytes, hi: bytes) -> LexRange | None:
    a, b = parse_lex_bound(lo), parse_lex_bound(hi)
    if a is None or b is None:
        return None
    return LexRange(a[0], a[1], a[2], b[0], b[1], b[2])


def limit_span(lo: int, hi: int, offset: int, count: int, reverse: bool) -> tuple[int, int]:
    """LIMIT ``offset`` ``count`` applied to the sorted span [lo, hi) walked forward or
    backward (a negative offset selects nothing, a negative count means all)."""
    k = hi - lo
    if offset < 0 or offset >= k:
        return 0, 0
    take = k - offset if count < 0 else min(count, k - offset)
    if reverse:
        return hi - offset - take, hi - offset
    return lo + offset, lo + offset + take


def rank_span(start: int, stop: int, n: int) -> tuple[int, int]:
    """ZRANGE's inclusive ``start``/``stop`` (negative from the end) as indices [lo, hi)."""
    if start < 0:
        start = max(start + n, 0)
    if stop < 0:
        stop += n
    if start > stop or start >= n:
        return 0, 0
    return start, min(stop, n - 1) + 1
