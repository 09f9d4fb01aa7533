"""Sorted sets: the value class behind Redis's zset type, and its range specifications.

Owns: a member -> score map plus the order of the members (scores ascending, then members
as raw bytes, like memcmp), ranks, ranges by rank / score / lex, pops, the
parsing of score and lex range arguments, and the TYPE / OBJECT ENCODING registration.
Never touches the keyspace, the network or a clock; it is pure data.

Structure: a ``dict`` member -> entry for O(1) ZSCORE, plus the same entries
``(score, member, bulk)`` in order, cut into blocks of at most ``BLOCK_MAX`` (512)
entries. Each block keeps its entries in a list and their scores in a parallel
``array('d')``; the blocks' last scores and members are kept apart too. An entry is found
by bisecting scores -- the array of block maxima, then one block's array -- and members
only where scores tie, so a search visits no Python object but the arrays (contiguous
memory; a ``SortedList`` of tuples visits a tuple and a float per comparison, each likely a
cache miss in a large set). Insertion and removal are O(log n + block) (a list / array
memmove), ranks and positions need the start of each block: kept in ``_offs``, rebuilt
lazily from the first block whose start moved. Blocks split in halves above ``BLOCK_MAX``
and merge with a neighbour below ``BLOCK_MIN``.

Measured against the former ``SortedList`` of entry tuples (``bench/zset_structure.py``
workload, 100,000 random members, CPython 3.11 on the shared 2-core machine, best of 3,
microseconds per operation; the machine is noisy, ~20 % between runs)::

                      ZADD of 100k  ZRANGE 100 of 10k  ZRANK in 100k  ZREM of 100k
    SortedList ZSet     1.78-2.32       1.14-1.19        1.84-2.51      1.63-2.03
    blocks (this)       1.48-1.54       0.86-0.96        1.12-1.59      1.20-1.53

and on redis-benchmark's ZADD pattern (random scores for random members of a ~95,000
member set, built with other objects allocated in between as a server does): 3.1-3.5 us
per score change instead of 5.0-5.4 us (blocks of at most 512 entries were ~9 % faster
than 1,024 there: shorter memmoves; ranks after a change rebuild at most ~200 starts).

Each entry carries its member already encoded as a RESP bulk string, so a ZRANGE reply is
one ``b"".join`` of slices (4 us instead of 12 us for 100 members, in process), at ~60
bytes more per member.

Scores: never NaN (the commands refuse it). ``-0.0`` is stored as ``+0.0``: Redis does
the same for every sorted set small enough for a listpack (it stores an integral score as
an integer), which is nearly all of them; a Redis zset already converted to a skiplist keeps
``-0`` (ZSCORE answers "-0") -- an accepted difference. ``+inf`` and ``-inf`` are ordinary
scores. Equal scores order members bytewise.

Lex ranges: Redis defines them only when all scores are equal; then they are a bisection.
With mixed scores the answer is what Redis computes on a listpack (a walk in score order:
the first member at or above ``min``, then LIMIT's offset members stepped over without
looking at them, then members while at or below ``max``; from the tail for REV), which is
deterministic; Redis's skiplist answer then depends on its random levels. That walk is
O(n) and only happens for mixed scores.

States: a ``ZSet`` is never empty while it is in a keyspace (commands delete emptied
ones); ``_index`` and the blocks always hold the same entry objects, no block is empty,
``_scores`` / ``_maxs`` / ``_maxm`` mirror the entries, and the starts in ``_offs``
before ``_stale`` are right (``check``).
"""

from __future__ import annotations

import math
import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate, chain
from operator import itemgetter
from typing import Any, Final

from .types import register

# Lex bound kinds: "-" (below every string), a string, "+" (above every string).
LEX_MIN: Final = -1
LEX_STRING: Final = 0
LEX_MAX: Final = 1

Pair = tuple[bytes, float]  # (member, score): how callers hand pairs in
# (score, member, the member as a RESP bulk string): how the order holds them. Tuples
# sort by score, then member (members are unique, so the bulk is never compared); the
# bulk makes a ZRANGE reply one join (4x faster than formatting each member).
Entry = tuple[float, bytes, bytes]


_SCORE: Final = itemgetter(0)
_MEMBER: Final = itemgetter(1)
# ZSet._stale when every block start is known.
_VALID: Final = 1 << 62


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


def _entry(score: float, member: bytes) -> Entry:
    return (score, member, b"$%d\r\n%s\r\n" % (len(member), member))


class ZSet:
    """A sorted set: member -> entry plus the order of entries in blocks (module docstring)."""

    __slots__ = ("_index", "_ents", "_scores", "_maxs", "_maxm", "_offs", "_stale")

    # A block splits in halves above BLOCK_MAX entries and merges with a neighbour below
    # BLOCK_MIN; a set built at once is cut into blocks of BLOCK_LOAD. Class attributes, so
    # that tests can exercise splits and merges on small sets.
    BLOCK_MAX = 512
    BLOCK_MIN = 64
    BLOCK_LOAD = 256

    def __init__(self, pairs: Iterable[Pair] = ()) -> None:
        index: dict[bytes, Entry] = {}
        for member, score in pairs:
            assert not math.isnan(score), "a sorted set never holds NaN"
            index[member] = _entry(score + 0.0, member)  # -0.0 + 0.0 is +0.0
        self._index = index
        self._build(sorted(index.values()))

    def _build(self, ordered: list[Entry]) -> None:
        """Cut entries already in order into blocks."""
        load = self.BLOCK_LOAD
        ents = [ordered[i : i + load] for i in range(0, len(ordered), load)]
        self._ents: list[list[Entry]] = ents
        self._scores: list[array[float]] = [array("d", map(_SCORE, b)) for b in ents]
        self._maxs: array[float] = array("d", [b[-1][0] for b in ents])
        self._maxm: list[bytes] = [b[-1][1] for b in ents]
        self._offs: list[int] = [0]
        self._stale = 1

    # -- whole-set views -----------------------------------------------------------------

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> ZSet:
        """A sorted set of entries taken from another one (distinct members)."""
        new = cls.__new__(cls)
        new._index = {e[1]: e for e in entries}
        new._build(sorted(new._index.values()))
        return new

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, member: object) -> bool:
        return member in self._index

    def __iter__(self) -> Iterator[Pair]:
        """(member, score) pairs in no particular order (what DEBUG DIGEST needs)."""
        return ((m, e[0]) for m, e in self._index.items())

    def __repr__(self) -> str:
        return f"ZSet({[(e[1], e[0]) for b in self._ents for e in b]!r})"

    def __deepcopy__(self, memo: dict[int, Any]) -> ZSet:
        return self.copy()

    def __copy__(self) -> ZSet:
        return self.copy()

    def copy(self) -> ZSet:
        """An independent sorted set (entries are immutable, so they are shared)."""
        new = self.__class__.__new__(self.__class__)
        new._index = dict(self._index)
        new._ents = [b[:] for b in self._ents]
        new._scores = [a[:] for a in self._scores]
        new._maxs = self._maxs[:]
        new._maxm = self._maxm[:]
        new._offs = self._offs[:]
        new._stale = self._stale
        return new

    def members(self) -> Iterator[bytes]:
        """Members in score order."""
        return (e[1] for b in self._ents for e in b)

    def member_names(self) -> Iterable[bytes]:
        """Members in no particular order (cheapest)."""
        return self._index.keys()

    # -- single members ------------------------------------------------------------------

    def score(self, member: bytes) -> float | None:
        e = self._index.get(member)
        return None if e is None else e[0]

    def add(self, member: bytes, score: float) -> bool:
        """Set ``member``'s score; True when the member is new."""
        return self.update(member, score) is None

    def update(self, member: bytes, score: float) -> float | None:
        """Set ``member``'s score; returns its previous score, None when it is new (an
        unchanged score moves nothing)."""
        score += 0.0
        index = self._index
        old = index.get(member)
        if old is None:
            e = index[member] = (score, member, b"$%d\r\n%s\r\n" % (len(member), member))
            self._insert(e)
            return None
        s: float = old[0]
        if s != score:
            self._delete(old)
            e = index[member] = (score, member, old[2])
            self._insert(e)
        return s

    def remove(self, member: bytes) -> bool:
        old = self._index.pop(member, None)
        if old is None:
            return False
        self._delete(old)
        return True

    def rank(self, member: bytes, reverse: bool) -> int | None:
        e = self._index.get(member)
        if e is None:
            return None
        p, i = self._locate(e[0], member)
        rank: int = self._offsets()[p] + i
        return len(self._index) - 1 - rank if reverse else rank

    def at(self, index: int) -> Entry:
        if index < 0:
            index += len(self._index)
        offs = self._offsets()
        p = bisect_right(offs, index) - 1
        return self._ents[p][index - offs[p]]

    # -- the blocks ----------------------------------------------------------------------

    def _locate(self, s: float, m: bytes) -> tuple[int, int]:
        """Block and position of entry (s, m), or where it would go (the end of the last
        block when it follows every entry). The set must not be empty.

        Scores are bisected in the blocks' float arrays (contiguous memory: no object is
        visited); only entries of an equal score are told apart by their members."""
        maxs = self._maxs
        n = len(maxs)
        p = bisect_left(maxs, s)
        if p == n:
            return n - 1, len(self._ents[n - 1])
        if maxs[p] == s:  # blocks ending at score s: the first whose last member >= m
            p = bisect_left(self._maxm, m, p, bisect_right(maxs, s, p))
            if p == n:
                return n - 1, len(self._ents[n - 1])
        sc = self._scores[p]
        i = bisect_left(sc, s)  # < len(sc): the block's last entry is at or above (s, m)
        if sc[i] == s:
            blk = self._ents[p]
            if blk[i][1] < m:
                i = bisect_left(blk, m, i + 1, bisect_right(sc, s, i + 1), key=_MEMBER)
        return p, i

    def _insert(self, e: Entry) -> None:
        """Put ``e`` in its place (``_locate``, inlined: this is ZADD's path)."""
        s, m = e[0], e[1]
        ents = self._ents
        if not ents:
            ents.append([e])
            self._scores.append(array("d", (s,)))
            self._maxs.append(s)
            self._maxm.append(m)
            self._stale = 1
            return
        maxs = self._maxs
        n = len(maxs)
        p = bisect_left(maxs, s)
        if p < n and maxs[p] == s:
            p = bisect_left(self._maxm, m, p, bisect_right(maxs, s, p))
        if p == n:  # after every entry
            p -= 1
            blk = ents[p]
            blk.append(e)
            self._scores[p].append(s)
            maxs[p] = s
            self._maxm[p] = m
        else:
            sc = self._scores[p]
            i = bisect_left(sc, s)
            blk = ents[p]
            if sc[i] == s and blk[i][1] < m:
                i = bisect_left(blk, m, i + 1, bisect_right(sc, s, i + 1), key=_MEMBER)
            blk.insert(i, e)
            sc.insert(i, s)
        if p + 1 < self._stale:
            self._stale = p + 1
        if len(blk) > self.BLOCK_MAX:
            self._split(p)

    def _delete(self, e: Entry) -> None:
        """Take ``e`` (which is in the order) out. Its block and position are found as in
        ``_locate``; its members are only compared when other entries share its score."""
        s = e[0]
        maxs = self._maxs
        p = bisect_left(maxs, s)
        if maxs[p] == s:
            p = bisect_left(self._maxm, e[1], p, bisect_right(maxs, s, p))
        sc = self._scores[p]
        i = bisect_left(sc, s)
        blk = self._ents[p]
        if i + 1 < len(sc) and sc[i + 1] == s:  # others share its score: find e itself
            # by identity among the first few (no entry is visited), else by member
            end = min(i + 8, len(blk))
            j = i
            while j < end and blk[j] is not e:
                j += 1
            i = j if j < end else bisect_left(blk, e[1], j, bisect_right(sc, s, j), key=_MEMBER)
        del blk[i]
        del sc[i]
        if p + 1 < self._stale:
            self._stale = p + 1
        if i == len(blk):  # the block's last entry went
            if not blk:
                self._drop(p)
                return
            maxs[p] = blk[-1][0]
            self._maxm[p] = blk[-1][1]
        if len(blk) < self.BLOCK_MIN and len(self._ents) > 1:
            self._merge(p)

    def _split(self, p: int) -> None:
        blk, sc = self._ents[p], self._scores[p]
        h = len(blk) >> 1
        self._ents.insert(p + 1, blk[h:])
        self._scores.insert(p + 1, sc[h:])
        del blk[h:]
        del sc[h:]
        self._maxs.insert(p, sc[-1])
        self._maxm.insert(p, blk[-1][1])
        if p + 1 < self._stale:
            self._stale = p + 1

    def _merge(self, p: int) -> None:
        """Join block ``p`` with its next neighbour (the previous one for the last block)."""
        ents = self._ents
        q = p if p + 1 < len(ents) else p - 1
        ents[q] += ents[q + 1]
        self._scores[q] += self._scores[q + 1]
        self._maxs[q] = self._maxs[q + 1]
        self._maxm[q] = self._maxm[q + 1]
        self._drop(q + 1)
        if q + 1 < self._stale:
            self._stale = q + 1
        if len(ents[q]) > self.BLOCK_MAX:
            self._split(q)

    def _drop(self, p: int) -> None:
        del self._ents[p]
        del self._scores[p]
        del self._maxs[p]
        del self._maxm[p]
        if p + 1 < self._stale:
            self._stale = p + 1

    def _offsets(self) -> list[int]:
        """Where each block starts in the whole order (one more item: the size). Rebuilt
        lazily from the first block whose start may have moved (``_stale``)."""
        offs = self._offs
        n = len(self._ents)
        k = self._stale
        if k <= n or len(offs) != n + 1:
            k = min(k, n + 1)
            offs[k - 1 :] = accumulate(map(len, self._ents[k - 1 :]), initial=offs[k - 1])
            self._stale = _VALID
        return offs

    def _clear(self) -> None:
        self._index.clear()
        self._build([])

    # -- index ranges --------------------------------------------------------------------

    def entries(self, lo: int, hi: int, reverse: bool) -> list[Entry]:
        """The entries at indices [lo, hi) in score order (clipped to the set, as a list
        slice is), or that slice reversed."""
        n = len(self._index)
        if hi > n:
            hi = n
        if hi <= lo:
            return []
        ents = self._ents
        if lo == 0 and hi == n:
            out = list(chain.from_iterable(ents))
        else:
            offs = self._offsets()
            p = bisect_right(offs, lo) - 1
            i = lo - offs[p]
            want = hi - lo
            out = ents[p][i : i + want]
            while len(out) < want:
                p += 1
                out += ents[p][: want - len(out)]
        if reverse:
            out.reverse()
        return out

    def score_span(self, r: ScoreRange) -> tuple[int, int]:
        """Indices [lo, hi) of the members whose score lies in ``r``."""
        lo = self._score_pos(r.min, r.minex)
        hi = self._score_pos(r.max, not r.maxex)
        return lo, max(lo, hi)

    def _score_pos(self, x: float, after: bool) -> int:
        """Index of the first entry of score >= x (> x when ``after``)."""
        find = bisect_right if after else bisect_left
        p = find(self._maxs, x)
        if p == len(self._maxs):
            return len(self._index)
        return self._offsets()[p] + find(self._scores[p], x)

    def _member_pos(self, m: bytes, after: bool) -> int:
        """Index of the first member >= m (> m when ``after``), all scores being equal."""
        find = bisect_right if after else bisect_left
        p = find(self._maxm, m)
        if p == len(self._maxm):
            return len(self._index)
        return self._offsets()[p] + find(self._ents[p], m, key=_MEMBER)

    def lex_span(
        self, r: LexRange, reverse: bool = False, offset: int = 0, count: int = -1
    ) -> tuple[int, int]:
        """Indices [lo, hi) of the members in lex range ``r`` after LIMIT ``offset``
        ``count`` (module docstring), walked from the head or (``reverse``) the tail.

        With mixed scores this is Redis's walk: find the first member in range, step over
        ``offset`` members without looking at them, then take members while in range."""
        if not self._index or r.is_empty() or offset < 0:
            return 0, 0
        first, last = self._ents[0][0], self._ents[-1][-1]
        if first[0] == last[0]:  # all scores equal: members are sorted
            return limit_span(*self._lex_bisect(r), offset, count, reverse)
        if not (r.gte_min(last[1]) and r.lte_max(first[1])):
            return 0, 0
        members = [e[1] for b in self._ents for e in b]
        if reverse:
            return self._lex_walk_back(members, r, offset, count)
        return self._lex_walk(members, r, offset, count)

    def _lex_bisect(self, r: LexRange) -> tuple[int, int]:
        """A lex range by bisection, all scores being equal."""
        n = len(self._index)
        if r.min_kind != LEX_STRING:
            lo = 0 if r.min_kind == LEX_MIN else n
        else:
            lo = self._member_pos(r.min, r.minex)
        if r.max_kind != LEX_STRING:
            hi = n if r.max_kind == LEX_MAX else 0
        else:
            hi = self._member_pos(r.max, not r.maxex)
        return lo, max(lo, hi)

    @staticmethod
    def _lex_walk(members: list[bytes], r: LexRange, offset: int, count: int) -> tuple[int, int]:
        n = len(members)
        start = 0
        while start < n and not r.gte_min(members[start]):
            start += 1
        if start == n or not r.lte_max(members[start]):
            return 0, 0
        lo = hi = start + offset
        while hi < n and hi - lo != count and r.lte_max(members[hi]):
            hi += 1
        return (lo, hi) if lo < n else (0, 0)

    @staticmethod
    def _lex_walk_back(
        members: list[bytes], r: LexRange, offset: int, count: int
    ) -> tuple[int, int]:
        start = len(members) - 1
        while start >= 0 and not r.lte_max(members[start]):
            start -= 1
        if start < 0 or not r.gte_min(members[start]):
            return 0, 0
        hi = lo = start - offset + 1
        while lo > 0 and hi - lo != count and r.gte_min(members[lo - 1]):
            lo -= 1
        return (lo, hi) if hi > 0 else (0, 0)

    # -- removal of ranges ---------------------------------------------------------------

    def remove_span(self, lo: int, hi: int) -> int:
        """Remove the members at indices [lo, hi); returns how many."""
        if hi <= lo:
            return 0
        index = self._index
        k = hi - lo
        if k == len(index):
            self._clear()
            return k
        offs = self._offsets()
        first = p = bisect_right(offs, lo) - 1
        i = lo - offs[p]
        ents, scores = self._ents, self._scores
        left = k
        while left:
            blk = ents[p]
            j = min(len(blk), i + left)
            for e in blk[i:j]:
                del index[e[1]]
            del blk[i:j]
            del scores[p][i:j]
            left -= j - i
            if not blk:
                self._drop(p)  # the next block is now at p
            else:
                if i == len(blk):  # its tail went
                    self._maxs[p] = blk[-1][0]
                    self._maxm[p] = blk[-1][1]
                p += 1
            i = 0
        if first + 1 < self._stale:
            self._stale = first + 1
        # Only the first and the last block touched can be left partly filled.
        for q in (first + 1, first):
            if q < len(ents) and len(ents[q]) < self.BLOCK_MIN and len(ents) > 1:
                self._merge(q)
        return k

    def pop(self, count: int, maximum: bool) -> list[Entry]:
        """Remove and return up to ``count`` lowest (or highest, highest first) entries."""
        n = len(self._index)
        k = min(count, n)
        if k <= 0:
            return []
        if maximum:
            taken = self.entries(n - k, n, True)
            self.remove_span(n - k, n)
        else:
            taken = self.entries(0, k, False)
            self.remove_span(0, k)
        return taken

    def check(self) -> None:
        """Assert the invariants (tests)."""
        ents, index = self._ents, self._index
        assert len(ents) == len(self._scores) == len(self._maxs) == len(self._maxm)
        assert sum(map(len, ents)) == len(index)
        want_offs = list(accumulate(map(len, ents), initial=0))
        valid = min(self._stale, len(ents) + 1, len(self._offs))
        assert self._offs[:valid] == want_offs[:valid], "a start marked valid has moved"
        prev: tuple[float, bytes] | None = None
        for p, blk in enumerate(ents):
            assert 0 < len(blk) <= self.BLOCK_MAX
            assert list(self._scores[p]) == [e[0] for e in blk]
            assert self._maxs[p] == blk[-1][0] and self._maxm[p] == blk[-1][1]
            for e in blk:
                s, m, bulk = e
                assert index[m] is e and not math.isnan(s)
                assert math.copysign(1.0, s) > 0 or s != 0
                assert bulk == b"$%d\r\n%s\r\n" % (len(m), m)
                assert prev is None or prev < (s, m)
                prev = (s, m)
        assert self._offsets() == want_offs


def _zset_encoding(value: ZSet, limits: dict[str, int]) -> bytes:
    """OBJECT ENCODING for the current contents: listpack while at most
    zset-max-listpack-entries members, none longer than zset-max-listpack-value bytes."""
    if len(value) <= limits["zset-max-listpack-entries"]:
        most = limits["zset-max-listpack-value"]
        if all(len(m) <= most for m in value.member_names()):
            return b"listpack"
    return b"skiplist"


register(ZSet, b"zset", _zset_encoding)
