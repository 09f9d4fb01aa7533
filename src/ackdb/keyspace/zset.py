"""Sorted sets: the value class behind Redis's zset type.

Owns: a member -> score map plus the order of the members (scores ascending, then members
as raw bytes, like memcmp), ranks, ranges by rank / score / lex, pops, and the TYPE /
OBJECT ENCODING registration. The range arguments themselves are parsed in ``zrange``.
Never touches the keyspace, the network or a clock; it is pure data.

Structure: a ``dict`` member -> score (a float) for O(1) ZSCORE, plus the order, cut
into blocks of at most ``BLOCK_MAX`` (512) entries. A block is three parallel sequences:
its members (``list`` of bytes), the same members encoded as RESP bulk strings (``list``),
and their scores (``array('d')``); the blocks' last scores and members are kept apart too.
No per-entry object exists besides the member, its bulk and the dict's float: a score
change allocates nothing but the new float and frees the old one, none of them tracked by
the garbage collector. (The former entry tuples ``(score, member, bulk)`` were tracked:
each ZADD that changed a score freed one and allocated another, so the young generation
never filled, no collection ever untracked them, and each free unlinked a long-lived tuple
from the GC list, touching two cold neighbours: ``PyObject_GC_UnTrack`` was 6 % of the
server's CPU under redis-benchmark's ZADD.)

An entry is found by bisecting scores -- the array of block maxima, then one block's array
-- and members (plain ``bytes`` comparisons, no key function) only where scores tie, so a
search visits no Python object but the arrays (contiguous memory; a ``SortedList`` of tuples
visits a tuple and a float per comparison, each likely a cache miss in a large set). A score
change finds the old position from (old score, member), takes the member and its bulk out
and puts the same objects back at the new position. Insertion and removal are
O(log n + block) (list / array memmoves), ranks and positions need the start of each block:
kept in ``_offs``, rebuilt lazily from the first block whose start moved. Blocks split in
halves above ``BLOCK_MAX`` and merge with a neighbour below ``BLOCK_MIN``.

Measured (CPython 3.11 on the shared 2-core machine; the machine is noisy, ~20 % between
runs, so only figures paired in one run compare). ``bench/zset_structure.py --repeat 3``,
microseconds per operation, entry tuples (before) and parallel lists (this)::

                      ZADD of 100k  ZRANK in 100k  ZREM of 100k
    entry tuples          1.62          1.62           1.42
    parallel lists        1.53          1.30           1.46

Its "ZRANGE 100 of 10k" column times ``entries()``, which now builds its tuples (0.93 ->
5.5 us); ZRANGE itself calls ``bulks()``: 3.3 us -> 1.7 us for 100 members joined into a
reply. WITHSCORES walks ``iter_entries()`` (``zip`` of the columns, no tuple kept): 100
members of 10,000 with their scores take 36 us instead of 31 us (2.4 us more to walk the
columns than the tuples, the rest the score text cache missing on fresh floats). On
redis-benchmark's ZADD pattern in process (random integer scores for random members of a
~100,000-member set built with other objects allocated in between): 2.7-3.0 us per score
change instead of 3.0-3.4 us. In the server (``bench/types_bench.py --pipelines 16
--repeat 3 --tests ZADD,ZRANGE --baseline <tree with entry tuples>``, medians of the
rounds of one run, two runs): ZADD 176,134 -> 199,700 and 208,117 -> 226,629 requests/s
(+13 %, +9 %; paired ratio to redis-server 0.50 -> 0.54 and 0.47 -> 0.54), ZRANGE 0 99
201,207 -> 272,480 and 197,922 -> 253,165. ``PyObject_GC_UnTrack`` no longer shows in a
perf profile of that ZADD load; the member index (``_Py_dict_lookup`` and the bytes
comparison of the cold stored key, ~19 %) and floats made by bisecting ``array('d')``
(~5 %) lead what remains outside the interpreter loop.

Blocks of at most 256 entries were ~3-5 % faster than 512 on the ZADD pattern in process
but not clearly so in the server (one paired run: +9 %, -8 %, +15 %); 512 stays.

Each member is kept as a RESP bulk string too, so a ZRANGE reply is one ``b"".join`` of
slices (4 us instead of 12 us for 100 members, in process, when measured with tuples), at
~60 bytes more per member.

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
ones); ``_index`` and the blocks always hold the same members with the same scores, each
block's three sequences have one length, no block is empty, each bulk encodes its member,
``_maxs`` / ``_maxm`` mirror the blocks' last entries, and the starts in ``_offs`` before
``_stale`` are right (``check``).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from itertools import accumulate, chain
from operator import itemgetter
from typing import Any, Final

from .types import register
from .zrange import LEX_MAX, LEX_MIN, LEX_STRING, LexRange, ScoreRange, limit_span

Pair = tuple[bytes, float]  # (member, score): how callers hand pairs in
# (score, member, the member as a RESP bulk string): how ranges and pops hand entries out
# (the order keeps the three in parallel columns, module docstring). Tuples sort by score,
# then member (members are unique, so the bulk is never compared).
Entry = tuple[float, bytes, bytes]


_SCORE: Final = itemgetter(0)
_MEMBER: Final = itemgetter(1)
_BULK: Final = itemgetter(2)
# ZSet._stale when every block start is known.
_VALID: Final = 1 << 62


def _bulk(member: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(member), member)


class ZSet:
    """A sorted set: member -> score plus the order in blocks of parallel lists (module
    docstring)."""

    __slots__ = ("_index", "_mems", "_bulks", "_scores", "_maxs", "_maxm", "_offs", "_stale")

    # A block splits in halves above BLOCK_MAX entries and merges with a neighbour below
    # BLOCK_MIN; a set built at once is cut into blocks of BLOCK_LOAD. Class attributes, so
    # that tests can exercise splits and merges on small sets.
    BLOCK_MAX = 512
    BLOCK_MIN = 64
    BLOCK_LOAD = 256

    def __init__(self, pairs: Iterable[Pair] = ()) -> None:
        index: dict[bytes, float] = {}
        for member, score in pairs:
            assert not math.isnan(score), "a sorted set never holds NaN"
            index[member] = score + 0.0  # -0.0 + 0.0 is +0.0
        self._index = index
        ordered = sorted(zip(index.values(), index.keys(), strict=True))
        mems = list(map(_MEMBER, ordered))
        self._build(list(map(_SCORE, ordered)), mems, list(map(_bulk, mems)))

    def _build(self, scores: list[float], mems: list[bytes], bulks: list[bytes]) -> None:
        """Cut entries already in order (three parallel lists) into blocks."""
        load = self.BLOCK_LOAD
        cuts = range(0, len(mems), load)
        self._mems: list[list[bytes]] = [mems[i : i + load] for i in cuts]
        self._bulks: list[list[bytes]] = [bulks[i : i + load] for i in cuts]
        self._scores: list[array[float]] = [array("d", scores[i : i + load]) for i in cuts]
        self._maxs: array[float] = array("d", [a[-1] for a in self._scores])
        self._maxm: list[bytes] = [b[-1] for b in self._mems]
        self._offs: list[int] = [0]
        self._stale = 1

    # -- whole-set views -----------------------------------------------------------------

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> ZSet:
        """A sorted set of entries taken from another one (distinct members)."""
        new = cls.__new__(cls)
        ordered = sorted(entries)
        new._index = {e[1]: e[0] for e in ordered}
        new._build(
            list(map(_SCORE, ordered)), list(map(_MEMBER, ordered)), list(map(_BULK, ordered))
        )
        return new

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, member: object) -> bool:
        return member in self._index

    def __iter__(self) -> Iterator[Pair]:
        """(member, score) pairs in no particular order (what DEBUG DIGEST needs)."""
        return iter(self._index.items())

    def __repr__(self) -> str:
        return f"ZSet({[(e[1], e[0]) for e in self.entries(0, len(self), False)]!r})"

    def __deepcopy__(self, memo: dict[int, Any]) -> ZSet:
        return self.copy()

    def __copy__(self) -> ZSet:
        return self.copy()

    def copy(self) -> ZSet:
        """An independent sorted set (members, bulks and scores are immutable: shared)."""
        new = self.__class__.__new__(self.__class__)
        new._index = dict(self._index)
        new._mems = [b[:] for b in self._mems]
        new._bulks = [b[:] for b in self._bulks]
        new._scores = [a[:] for a in self._scores]
        new._maxs = self._maxs[:]
        new._maxm = self._maxm[:]
        new._offs = self._offs[:]
        new._stale = self._stale
        return new

    def members(self) -> Iterator[bytes]:
        """Members in score order."""
        return chain.from_iterable(self._mems)

    def member_names(self) -> Iterable[bytes]:
        """Members in no particular order (cheapest)."""
        return self._index.keys()

    # -- single members ------------------------------------------------------------------

    def score(self, member: bytes) -> float | None:
        return self._index.get(member)

    def add(self, member: bytes, score: float) -> bool:
        """Set ``member``'s score; True when the member is new."""
        return self.update(member, score) is None

    def update(self, member: bytes, score: float) -> float | None:
        """Set ``member``'s score; returns its previous score, None when it is new (an
        unchanged score moves nothing).

        ZADD's path: a score change takes the member's stored name and bulk out of their
        block (``_find``, inlined) and puts them back at the new score; nothing else is
        allocated but the new score's float."""
        score += 0.0
        index = self._index
        s = index.get(member)
        if s is None:
            index[member] = score
            self._insert(score, member, b"$%d\r\n%s\r\n" % (len(member), member))
            return None
        if s == score:
            return s
        index[member] = score
        maxs = self._maxs
        p = bisect_left(maxs, s)
        if maxs[p] == s:
            p = bisect_left(self._maxm, member, p, bisect_right(maxs, s, p))
        sc = self._scores[p]
        i = bisect_left(sc, s)
        mems = self._mems[p]
        if i + 1 < len(sc) and sc[i + 1] == s:  # others share score s: tell them by member
            i = bisect_left(mems, member, i, bisect_right(sc, s, i))
        m = mems.pop(i)
        b = self._bulks[p].pop(i)
        del sc[i]
        if p + 1 < self._stale:
            self._stale = p + 1
        if i == len(mems) or len(mems) < self.BLOCK_MIN:
            self._shrunk(p)
        self._insert(score, m, b)
        return s

    def remove(self, member: bytes) -> bool:
        s = self._index.pop(member, None)
        if s is None:
            return False
        p, i = self._find(s, member)
        del self._mems[p][i]
        del self._bulks[p][i]
        del self._scores[p][i]
        if p + 1 < self._stale:
            self._stale = p + 1
        self._shrunk(p)
        return True

    def rank(self, member: bytes, reverse: bool) -> int | None:
        s = self._index.get(member)
        if s is None:
            return None
        p, i = self._find(s, member)
        rank: int = self._offsets()[p] + i
        return len(self._index) - 1 - rank if reverse else rank

    def at(self, index: int) -> Entry:
        if index < 0:
            index += len(self._index)
        offs = self._offsets()
        p = bisect_right(offs, index) - 1
        i = index - offs[p]
        return self._scores[p][i], self._mems[p][i], self._bulks[p][i]

    # -- the blocks ----------------------------------------------------------------------

    def _find(self, s: float, m: bytes) -> tuple[int, int]:
        """Block and position of the entry (s, m), which is in the set.

        Scores are bisected in the blocks' float arrays (contiguous memory: no object is
        visited); members are compared only where other entries share score s."""
        maxs = self._maxs
        p = bisect_left(maxs, s)
        if maxs[p] == s:  # blocks ending at score s: the first whose last member >= m
            p = bisect_left(self._maxm, m, p, bisect_right(maxs, s, p))
        sc = self._scores[p]
        i = bisect_left(sc, s)  # the block's first entry of score s
        if i + 1 < len(sc) and sc[i + 1] == s:
            i = bisect_left(self._mems[p], m, i, bisect_right(sc, s, i))
        return p, i

    def _insert(self, s: float, m: bytes, b: bytes) -> None:
        """Put member ``m`` (bulk ``b``) in its place for score ``s``."""
        mems = self._mems
        if not mems:
            mems.append([m])
            self._bulks.append([b])
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
            blk = mems[p]
            blk.append(m)
            self._bulks[p].append(b)
            self._scores[p].append(s)
            maxs[p] = s
            self._maxm[p] = m
        else:
            sc = self._scores[p]
            i = bisect_left(sc, s)
            blk = mems[p]
            if sc[i] == s:
                i = bisect_left(blk, m, i, bisect_right(sc, s, i))
            blk.insert(i, m)
            self._bulks[p].insert(i, b)
            sc.insert(i, s)
        if p + 1 < self._stale:
            self._stale = p + 1
        if len(blk) > self.BLOCK_MAX:
            self._split(p)

    def _shrunk(self, p: int) -> None:
        """Block ``p`` lost entries: drop it when empty, renew its last score and member,
        merge it with a neighbour when below BLOCK_MIN."""
        blk = self._mems[p]
        if not blk:
            self._drop(p)
            return
        self._maxs[p] = self._scores[p][-1]
        self._maxm[p] = blk[-1]
        if len(blk) < self.BLOCK_MIN and len(self._mems) > 1:
            self._merge(p)

    def _split(self, p: int) -> None:
        mems, bulks, sc = self._mems[p], self._bulks[p], self._scores[p]
        h = len(mems) >> 1
        self._mems.insert(p + 1, mems[h:])
        self._bulks.insert(p + 1, bulks[h:])
        self._scores.insert(p + 1, sc[h:])
        del mems[h:]
        del bulks[h:]
        del sc[h:]
        self._maxs.insert(p, sc[-1])
        self._maxm.insert(p, mems[-1])
        if p + 1 < self._stale:
            self._stale = p + 1

    def _merge(self, p: int) -> None:
        """Join block ``p`` with its next neighbour (the previous one for the last block)."""
        mems = self._mems
        q = p if p + 1 < len(mems) else p - 1
        mems[q] += mems[q + 1]
        self._bulks[q] += self._bulks[q + 1]
        self._scores[q] += self._scores[q + 1]
        self._maxs[q] = self._maxs[q + 1]
        self._maxm[q] = self._maxm[q + 1]
        self._drop(q + 1)
        if q + 1 < self._stale:
            self._stale = q + 1
        if len(mems[q]) > self.BLOCK_MAX:
            self._split(q)

    def _drop(self, p: int) -> None:
        del self._mems[p]
        del self._bulks[p]
        del self._scores[p]
        del self._maxs[p]
        del self._maxm[p]
        if p + 1 < self._stale:
            self._stale = p + 1

    def _offsets(self) -> list[int]:
        """Where each block starts in the whole order (one more item: the size). Rebuilt
        lazily from the first block whose start may have moved (``_stale``)."""
        offs = self._offs
        n = len(self._mems)
        k = self._stale
        if k <= n or len(offs) != n + 1:
            k = min(k, n + 1)
            offs[k - 1 :] = accumulate(map(len, self._mems[k - 1 :]), initial=offs[k - 1])
            self._stale = _VALID
        return offs

    def _clear(self) -> None:
        self._index.clear()
        self._build([], [], [])

    # -- index ranges --------------------------------------------------------------------

    def _cut(self, rows: list[Any], lo: int, hi: int) -> Any:
        """Items [lo, hi) of the whole order, taken from ``rows`` (``_mems``, ``_bulks``:
        a list; ``_scores``: an array); ``0 <= lo < hi <= len(self)``."""
        if lo == 0 and hi == len(self._index):
            return list(chain.from_iterable(rows))
        offs = self._offsets()
        p = bisect_right(offs, lo) - 1
        i = lo - offs[p]
        want = hi - lo
        out = rows[p][i : i + want]
        while len(out) < want:
            p += 1
            out += rows[p][: want - len(out)]
        return out

    def _clip(self, hi: int) -> int:
        n = len(self._index)
        return n if hi > n else hi

    def bulks(self, lo: int, hi: int, reverse: bool) -> list[bytes]:
        """The members at indices [lo, hi) in score order (clipped to the set, as a list
        slice is) as RESP bulk strings, or that slice reversed: a ZRANGE reply's body."""
        hi = self._clip(hi)
        if hi <= lo:
            return []
        out: list[bytes] = self._cut(self._bulks, lo, hi)
        if reverse:
            out.reverse()
        return out

    def member_slice(self, lo: int, hi: int) -> list[bytes]:
        """The members at indices [lo, hi) in score order (clipped to the set)."""
        hi = self._clip(hi)
        return self._cut(self._mems, lo, hi) if lo < hi else []

    def entries(self, lo: int, hi: int, reverse: bool) -> list[Entry]:
        """The entries at indices [lo, hi) in score order (clipped to the set, as a list
        slice is), or that slice reversed."""
        return list(self.iter_entries(lo, hi, reverse))

    def iter_entries(self, lo: int, hi: int, reverse: bool) -> Iterator[Entry]:
        """``entries`` as an iterator, which builds no tuple when it is unpacked as it goes
        (``zip`` reuses its result): what a WITHSCORES reply walks."""
        hi = self._clip(hi)
        if hi <= lo:
            return iter(())
        cols = [self._cut(rows, lo, hi) for rows in (self._scores, self._mems, self._bulks)]
        if reverse:
            for col in cols:
                col.reverse()
        return zip(*cols, strict=True)

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
        return self._offsets()[p] + find(self._mems[p], m)

    def lex_span(
        self, r: LexRange, reverse: bool = False, offset: int = 0, count: int = -1
    ) -> tuple[int, int]:
        """Indices [lo, hi) of the members in lex range ``r`` after LIMIT ``offset``
        ``count`` (module docstring), walked from the head or (``reverse``) the tail.

        With mixed scores this is Redis's walk: find the first member in range, step over
        ``offset`` members without looking at them, then take members while in range."""
        if not self._index or r.is_empty() or offset < 0:
            return 0, 0
        if self._scores[0][0] == self._maxs[-1]:  # all scores equal: members are sorted
            return limit_span(*self._lex_bisect(r), offset, count, reverse)
        if not (r.gte_min(self._maxm[-1]) and r.lte_max(self._mems[0][0])):
            return 0, 0
        members = list(chain.from_iterable(self._mems))
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
        mems, bulks, scores = self._mems, self._bulks, self._scores
        left = k
        while left:
            blk = mems[p]
            j = min(len(blk), i + left)
            for m in blk[i:j]:
                del index[m]
            del blk[i:j]
            del bulks[p][i:j]
            del scores[p][i:j]
            left -= j - i
            if not blk:
                self._drop(p)  # the next block is now at p
            else:
                if i == len(blk):  # its tail went
                    self._maxs[p] = scores[p][-1]
                    self._maxm[p] = blk[-1]
                p += 1
            i = 0
        if first + 1 < self._stale:
            self._stale = first + 1
        # Only the first and the last block touched can be left partly filled.
        for q in (first + 1, first):
            if q < len(mems) and len(mems[q]) < self.BLOCK_MIN and len(mems) > 1:
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
        mems, index = self._mems, self._index
        assert len(mems) == len(self._bulks) == len(self._scores)
        assert len(mems) == len(self._maxs) == len(self._maxm)
        assert sum(map(len, mems)) == len(index)
        want_offs = list(accumulate(map(len, mems), initial=0))
        valid = min(self._stale, len(mems) + 1, len(self._offs))
        assert self._offs[:valid] == want_offs[:valid], "a start marked valid has moved"
        prev: tuple[float, bytes] | None = None
        for p, blk in enumerate(mems):
            sc, bulks = self._scores[p], self._bulks[p]
            assert 0 < len(blk) <= self.BLOCK_MAX
            assert len(sc) == len(bulks) == len(blk)
            assert self._maxs[p] == sc[-1] and self._maxm[p] == blk[-1]
            for s, m, bulk in zip(sc, blk, bulks, strict=True):
                assert index[m] == s and not math.isnan(s)
                assert math.copysign(1.0, s) > 0 or s != 0
                assert bulk == _bulk(m)
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
