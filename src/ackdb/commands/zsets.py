"""Sorted set commands: ZADD and its family, ranges, pops, the algebra, ZRANDMEMBER, ZSCAN.

Owns: Redis 7.2 semantics, replies (RESP2 and RESP3) and error texts of the sorted set
family, the effects its writes propagate, their keyspace events (Redis 7.2, checked on
7.0.15: ``zadd`` / ``zincr`` only when something changed, ``zrem``, ``zremrangebyrank`` /
``byscore`` / ``bylex``, ``zpopmin`` / ``zpopmax`` (ZMPOP too), each followed by ``del``
when the set was emptied; ``zrangestore`` / ``zunionstore`` / ``zinterstore`` /
``zdiffstore`` on the destination, or ``del`` when an empty result deleted one; ``new``
comes from the keyspace), and the keyspace hit/miss counts of its reads.
Never touches the network. The value is ``keyspace.zset.ZSet``; a sorted set emptied by a
command is deleted from the keyspace at once, and one modified in place touches its WATCHers.

Order of checks follows redis-server (verified against 7.0.15): every argument Redis parses
before its lookup (ZADD's flags and scores, ZINCRBY's increment, range bounds, LIMIT, counts,
numkeys) is checked before WRONGTYPE; the algebra type-checks every input key before it
parses WEIGHTS / AGGREGATE / WITHSCORES / LIMIT; ZMPOP type-checks keys only up to the first
non-empty sorted set; ZSCAN of a missing key answers an empty page without reading options.

Replies: scores are Redis 7.2 doubles (``format_double``; 7.0 printed ``%.17g``, so 1.1 was
"1.1000000000000001"), bulk strings in RESP2 and RESP3 doubles. WITHSCORES in RESP3 is an
array of ``[member, score]`` arrays (ZRANGE family, ZRANDMEMBER, ZUNION/ZINTER/ZDIFF, ZPOPMIN
and ZPOPMAX with a count); ZPOPMIN/ZPOPMAX without a count reply a flat ``[member, score]``;
ZMPOP replies ``[key, [[member, score], ...]]`` in both protocols; ZSCAN's scores are bulk
strings in both. ZRANK / ZREVRANK WITHSCORE (7.2) reply ``[rank, score]`` or a null array.

Effects (Redis 7.2, checked on 7.0.15's replication stream): ZMPOP propagates as
``ZPOPMIN|ZPOPMAX key <number popped>``; everything else propagates as sent (ZADD INCR and
ZINCRBY included: their float arithmetic is plain IEEE double, the same on every replica;
ZPOPMIN/ZPOPMAX with a count are deterministic). The blocking variants (BZPOPMIN, BZPOPMAX,
BZMPOP, not here) reuse ``parse_mpop``, ``first_zset``, ``pop`` (the removal, its keyspace
upkeep, events and dirty count), ``pop_effect`` (their effect: ``ZPOPMIN|ZPOPMAX key n``)
and ``mpop_reply``.

The algebra (ZUNION, ZINTER and their STORE forms) combines inputs in ascending order of
size (stable for ties), as Redis does, so SUM rounds the same way; a plain ``set`` input
counts each member with score 1; ``inf * 0`` weights and ``inf + -inf`` sums become 0.
A read reply keeps ``-0`` where the arithmetic made one, a stored result does not (Redis
stores small results as listpacks, which drop it; see keyspace/zset.py).

ZSCAN: a sorted set Redis would hold as a listpack is returned whole, in order, cursor 0.
A larger one is walked through a snapshot of its members (one O(N) copy of references at
the first call); the cursor is ``scan id << 32 | position``; members present for the whole
iteration are returned once with their current scores, removed ones are skipped. Snapshots
live in a bounded LRU per server; a cursor whose snapshot is gone continues at that
position of the current order, which can skip or repeat members if the set changed since
(an accepted difference, as for HSCAN).

Accepted differences from Redis 7.2: OBJECT ENCODING follows the current contents (Redis
never converts a skiplist back to a listpack); ``-0`` is never stored (module docstring of
keyspace/zset.py); ZRANDMEMBER with a negative count refuses more than
``RANDMEMBER_PICKS_MAX`` picks; lex ranges over mixed scores answer as a Redis listpack
would, whatever the size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace.db import Database
from ..keyspace.numbers import format_double, parse_float, parse_int
from ..keyspace.zrange import (
    LexRange,
    ScoreRange,
    limit_span,
    parse_lex_range,
    parse_score_range,
    rank_span,
)
from ..keyspace.zset import Entry, Pair, ZSet
from ..resp import encoder as enc
from .base import (
    LLONG_MAX,
    LLONG_MIN,
    SYNTAX,
    WRONGTYPE,
    CommandError,
    arg_int,
    get_typed,
    parse_scan_cursor,
    parse_scan_options,
    read_typed,
)
from .table import handler

# ZRANDMEMBER key -count: most picks (with repetition) one reply may hold.
RANDMEMBER_PICKS_MAX = 1 << 24
# Formatted scores kept for reuse, per generation of the cache (format_double of a
# fraction costs ~4 us).
SCORE_TEXT_CACHE_MAX = 8192

_NOT_FLOAT = "ERR value is not a valid float"
_NAN = "ERR resulting score is not a number (NaN)"
_NOT_RANGE_FLOAT = "ERR min or max is not a float"
_NOT_RANGE_LEX = "ERR min or max not valid string range item"
_POSITIVE = "ERR value is out of range, must be positive"
_COUNT_RANGE = (
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
)
_EMPTY_SCAN = b"*2\r\n$1\r\n0\r\n*0\r\n"


# -- lookups and keyspace upkeep -------------------------------------------------------


def _read(c: Client, key: bytes) -> ZSet | None:
    """A read lookup (counts a keyspace hit or miss): see ``base.read_typed``."""
    return read_typed(c, key, ZSet)  # type: ignore[no-any-return]


def _get(db: Database, key: bytes) -> ZSet | None:
    """A write lookup: see ``base.get_typed``."""
    return get_typed(db, key, ZSet)  # type: ignore[no-any-return]


def _modified(c: Client, key: bytes, z: ZSet, event: bytes) -> None:
    """After an in-place removal: publish ``event``, then delete an emptied set (and
    publish ``del``, as Redis), else tell WATCHers."""
    db = c.db
    c.server.notify(nt.ZSET, event, key, db.index)
    if not z:
        db.delete(key)  # touches WATCHers itself
        c.server.notify(nt.GENERIC, b"del", key, db.index)
    elif db.watched:
        db.touch(key)


def _store(c: Client, dst: bytes, z: ZSet, event: bytes) -> bytes:
    """STORE forms: ``z`` replaces ``dst`` (TTL dropped; ``event`` published); an empty
    result deletes it (``del`` published when there was one)."""
    db = c.db
    if z:
        db.set(dst, z)
        c.server.dirty += 1
        c.server.notify(nt.ZSET, event, dst, db.index)
    elif db.delete(dst):
        c.server.dirty += 1
        c.server.notify(nt.GENERIC, b"del", dst, db.index)
    return enc.integer(len(z))


# -- replies -----------------------------------------------------------------------------


class _ScoreCache:
    """Formatted scores by value, in two generations of at most ``SCORE_TEXT_CACHE_MAX``
    each: a full young generation becomes the old one (the former old one is dropped) and
    a hit in the old one moves back to the young one. A reply that walks more distinct
    scores than one generation holds (ZRANGE WITHSCORES over a large set) then still finds
    them, where clearing a single full dictionary made nearly every lookup miss (measured:
    100 of 10,000 members WITHSCORES, 36.8 -> 15 us in process).

    Zeros bypass it: 0.0 and -0.0 are the same dict key but print differently."""

    __slots__ = ("young", "old", "make")

    def __init__(self, make: Callable[[float], bytes]) -> None:
        self.young: dict[float, bytes] = {}
        self.old: dict[float, bytes] = {}
        self.make = make

    def miss(self, x: float) -> bytes:
        t = self.old.get(x)
        if t is None:
            t = self.make(x)
            if x == 0:
                return t
        if len(self.young) >= SCORE_TEXT_CACHE_MAX:
            self.old, self.young = self.young, {}
        self.young[x] = t
        return t


def _bulk_of_score(x: float) -> bytes:
    t = format_double(x)
    return b"$%d\r\n%s\r\n" % (len(t), t)


_SCORE_TEXT = _ScoreCache(format_double)
_SCORE_BULK = _ScoreCache(_bulk_of_score)


def score_text(x: float) -> bytes:
    """Redis 7.2's text of a score, through a bounded cache."""
    t = _SCORE_TEXT.young.get(x)
    return _SCORE_TEXT.miss(x) if t is None else t


def score_bulk(x: float) -> bytes:
    """``score_text`` as a RESP bulk string, cached the same way."""
    b = _SCORE_BULK.young.get(x)
    return _SCORE_BULK.miss(x) if b is None else b


_BULK = itemgetter(2)  # an entry's member as a RESP bulk string


def _members_reply(entries: list[Entry]) -> bytes:
    return b"*%d\r\n" % len(entries) + b"".join(map(_BULK, entries))


def _bulks_reply(bulks: list[bytes]) -> bytes:
    """An array of members already encoded as bulk strings (``ZSet.bulks``)."""
    return b"*%d\r\n" % len(bulks) + b"".join(bulks)


def _scored_reply(p: Any, entries: Iterable[Entry]) -> bytes:
    """WITHSCORES: flat in RESP2, ``[member, double]`` pairs in RESP3."""
    if p.version == 3:
        parts = [b"*2\r\n%s,%s\r\n" % (b, score_text(s)) for s, _, b in entries]
        return b"*%d\r\n" % len(parts) + b"".join(parts)
    return _flat_reply(entries)


def _flat_reply(entries: Iterable[Entry], p: Any = None) -> bytes:
    """``[member, score, ...]`` flat; scores are bulks, or doubles when ``p`` is RESP3."""
    if p is not None and p.version == 3:
        parts = [b"%s,%s\r\n" % (b, score_text(s)) for s, _, b in entries]
    else:
        parts = [b + score_bulk(s) for s, _, b in entries]
    return b"*%d\r\n" % (2 * len(parts)) + b"".join(parts)


def _range_reply(p: Any, entries: list[Entry], withscores: bool) -> bytes:
    return _scored_reply(p, entries) if withscores else _members_reply(entries)


def _nested_pairs(entries: list[Entry], p: Any) -> bytes:
    """``[[member, score], ...]`` in both protocols (ZMPOP)."""
    parts = [b"*2\r\n" + b + p.double(score_text(s)) for s, _, b in entries]
    return b"*%d\r\n" % len(parts) + b"".join(parts)


# -- ZADD, ZINCRBY -------------------------------------------------------------------------


def _score_arg(arg: bytes) -> float | None:
    """ZADD's score (Redis string2d, ``parse_float``), with a fast path for short decimal
    integers, which float() converts exactly as strtod does."""
    if 0 < len(arg) < 16 and (arg.isdigit() or (arg[0] == 0x2D and arg[1:].isdigit())):
        return float(arg)
    return parse_float(arg)


_ZADD_FLAGS = {b"nx", b"xx", b"ch", b"incr", b"gt", b"lt"}


def _zadd(c: Client, argv: list[bytes], incr_only: bool) -> bytes:
    """ZADD (and ZINCRBY, ``incr_only``): Redis zaddGenericCommand's checks, in its order."""
    flags: set[bytes] = set()
    i = 2
    if incr_only:
        flags.add(b"incr")
    else:
        while i < len(argv):
            f = argv[i].lower()
            if f not in _ZADD_FLAGS:
                break
            flags.add(f)
            i += 1
    elements = len(argv) - i
    if elements % 2 or elements == 0:
        raise CommandError(SYNTAX)
    nx, xx, gt, lt = b"nx" in flags, b"xx" in flags, b"gt" in flags, b"lt" in flags
    incr = b"incr" in flags
    if nx and xx:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and elements > 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    pairs: list[tuple[float, bytes]] = []
    for j in range(i, len(argv), 2):
        score = _score_arg(argv[j])
        if score is None:
            raise CommandError(_NOT_FLOAT)
        pairs.append((score, argv[j + 1]))
    db = c.db
    key = argv[1]
    z = _get(db, key)
    null: bytes = c.p.null
    if z is None:
        if xx:
            return null if incr else enc.ZERO
        z = ZSet()
        db.add_new(key, z)  # never left empty: without XX the first pair is always added
    added = updated = 0
    result: float | None = None
    for score, member in pairs:
        cur = z.score(member)
        if cur is None:
            if xx:
                continue
            z.add(member, score)
            added += 1
            result = score
            continue
        if nx:
            continue
        if incr:
            score += cur
            if math.isnan(score):
                raise CommandError(_NAN)
        if (lt and score >= cur) or (gt and score <= cur):
            continue
        if score != cur:
            z.add(member, score)
            updated += 1
        result = score
    if added or updated:
        if db.watched:
            db.touch(key)
        c.server.dirty += added + updated
        c.server.notify(nt.ZSET, b"zincr" if incr else b"zadd", key, db.index)
    if incr:
        return null if result is None else c.p.double(score_text(result))
    return enc.integer(added + updated if b"ch" in flags else added)


@handler("zadd")
def zadd(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) == 4:  # fast path: one pair, no flags, an existing sorted set
        db = c.db
        z = db.lookup(argv[1]) if db.expires else db.data.get(argv[1])
        score = _score_arg(argv[2])
        if z.__class__ is ZSet and score is not None:
            cur = z.update(argv[3], score)
            if cur == score:
                return enc.ZERO
            if db.watched:
                db.touch(argv[1])
            srv = c.server
            srv.dirty += 1
            if srv.notifier.flags & nt.ZSET:
                srv.notify(nt.ZSET, b"zadd", argv[1], db.index)
            return enc.ONE if cur is None else enc.ZERO
    return _zadd(c, argv, False)


@handler("zincrby")
def zincrby(c: Client, argv: list[bytes]) -> bytes:
    return _zadd(c, argv, True)


# -- single members ----------------------------------------------------------------------


@handler("zrem")
def zrem(c: Client, argv: list[bytes]) -> bytes:
    key = argv[1]
    z = _get(c.db, key)
    if z is None:
        return enc.ZERO
    deleted = 0
    for member in argv[2:]:
        if z.remove(member):
            deleted += 1
            if not z:
                break
    if deleted:
        _modified(c, key, z, b"zrem")
        c.server.dirty += deleted
    return enc.integer(deleted)


@handler("zcard")
def zcard(c: Client, argv: list[bytes]) -> bytes:
    z = _read(c, argv[1])
    return enc.integer(0 if z is None else len(z))


@handler("zscore")
def zscore(c: Client, argv: list[bytes]) -> bytes:
    z = _read(c, argv[1])
    s = None if z is None else z.score(argv[2])
    if s is None:
        null: bytes = c.p.null
        return null
    reply: bytes = c.p.double(score_text(s))
    return reply


@handler("zmscore")
def zmscore(c: Client, argv: list[bytes]) -> bytes:
    z = _read(c, argv[1])
    p = c.p
    parts = []
    for member in argv[2:]:
        s = None if z is None else z.score(member)
        parts.append(p.null if s is None else p.double(score_text(s)))
    return enc.array(parts)


def _zrank(c: Client, argv: list[bytes], reverse: bool) -> bytes:
    if len(argv) > 4:
        raise CommandError(
            f"ERR wrong number of arguments for '{argv[0].decode().lower()}' command"
        )
    withscore = len(argv) == 4
    if withscore and argv[3].lower() != b"withscore":
        raise CommandError(SYNTAX)
    p: enc.Resp2 = c.p
    z = _read(c, argv[1])
    rank = None if z is None else z.rank(argv[2], reverse)
    if rank is None:
        return p.null_array if withscore else p.null
    if not withscore:
        return enc.integer(rank)
    assert z is not None
    s = z.score(argv[2])
    assert s is not None
    return b"*2\r\n" + enc.integer(rank) + p.double(score_text(s))


@handler("zrank")
def zrank(c: Client, argv: list[bytes]) -> bytes:
    return _zrank(c, argv, False)


@handler("zrevrank")
def zrevrank(c: Client, argv: list[bytes]) -> bytes:
    return _zrank(c, argv, True)


# -- counts ------------------------------------------------------------------------------


def _score_range(lo: bytes, hi: bytes) -> ScoreRange:
    r = parse_score_range(lo, hi)
    if r is None:
        raise CommandError(_NOT_RANGE_FLOAT)
    return r


def _lex_range(lo: bytes, hi: bytes) -> LexRange:
    r = parse_lex_range(lo, hi)
    if r is None:
        raise CommandError(_NOT_RANGE_LEX)
    return r


@handler("zcount")
def zcount(c: Client, argv: list[bytes]) -> bytes:
    r = _score_range(argv[2], argv[3])
    z = _read(c, argv[1])
    if z is None:
        return enc.ZERO
    lo, hi = z.score_span(r)
    return enc.integer(hi - lo)


@handler("zlexcount")
def zlexcount(c: Client, argv: list[bytes]) -> bytes:
    r = _lex_range(argv[2], argv[3])
    z = _read(c, argv[1])
    if z is None:
        return enc.ZERO
    lo, hi = z.lex_span(r)
    return enc.integer(hi - lo)


# -- the ZRANGE family ---------------------------------------------------------------------

_RANK, _SCORE, _LEX = "rank", "score", "lex"


def _zrange(
    c: Client,
    argv: list[bytes],
    src_idx: int,
    dst: bytes | None,
    rangetype: str | None,
    reverse: bool | None,
) -> bytes:
    """Redis zrangeGenericCommand: ZRANGE, ZRANGESTORE and the older forms (which fix
    ``rangetype`` and ``reverse``; then BYSCORE / BYLEX / REV are syntax errors)."""
    withscores = False
    offset, count = 0, -1  # LIMIT's defaults: everything
    j = src_idx + 3
    while j < len(argv):
        opt = argv[j].lower()
        left = len(argv) - j - 1
        if dst is None and opt == b"withscores":
            withscores = True
        elif opt == b"limit" and left >= 2:
            offset, count = arg_int(argv[j + 1]), arg_int(argv[j + 2])
            j += 2
        elif reverse is None and opt == b"rev":
            reverse = True
        elif rangetype is None and opt == b"bylex":
            rangetype = _LEX
        elif rangetype is None and opt == b"byscore":
            rangetype = _SCORE
        else:
            raise CommandError(SYNTAX)
        j += 1
    reverse = bool(reverse)
    rangetype = rangetype or _RANK
    if count != -1 and rangetype == _RANK:  # Redis ignores "LIMIT <any> -1" there
        raise CommandError(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    if withscores and rangetype == _LEX:
        raise CommandError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    lo_arg, hi_arg = argv[src_idx + 1], argv[src_idx + 2]
    if reverse and rangetype != _RANK:
        lo_arg, hi_arg = hi_arg, lo_arg  # REV takes max first
    srange: ScoreRange | None = None
    lrange: LexRange | None = None
    if rangetype == _RANK:
        start, stop = arg_int(lo_arg), arg_int(hi_arg)
    elif rangetype == _SCORE:
        srange = _score_range(lo_arg, hi_arg)
    else:
        lrange = _lex_range(lo_arg, hi_arg)
    z = _read(c, argv[src_idx])
    if z is None:
        return enc.EMPTY_ARRAY if dst is None else _store(c, dst, ZSet(), b"zrangestore")
    if srange is not None:
        lo, hi = limit_span(*z.score_span(srange), offset, count, reverse)
    elif lrange is not None:
        lo, hi = z.lex_span(lrange, reverse, offset, count)
    else:
        n = len(z)
        lo, hi = rank_span(start, stop, n)
        if reverse:
            lo, hi = n - hi, n - lo
    if dst is None and not withscores:
        return _bulks_reply(z.bulks(lo, hi, reverse))
    if dst is not None:
        return _store(c, dst, ZSet.from_entries(z.iter_entries(lo, hi, False)), b"zrangestore")
    return _scored_reply(c.p, z.iter_entries(lo, hi, reverse))


@handler("zrange")
def zrange(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) == 4:  # fast path: ZRANGE key start stop of an existing sorted set
        z = c.db.lookup(argv[1])
        start, stop = parse_int(argv[2]), parse_int(argv[3])
        if z.__class__ is ZSet and start is not None and stop is not None:
            c.server.stat_keyspace_hits += 1
            return _bulks_reply(z.bulks(*rank_span(start, stop, len(z)), False))
    return _zrange(c, argv, 1, None, None, None)


@handler("zrangestore")
def zrangestore(c: Client, argv: list[bytes]) -> bytes:
    return _zrange(c, argv, 2, argv[1], None, None)


@handler("zrangebyscore")
def zrangebyscore(c: Client, argv: list[bytes]) -> bytes:
    return _zrange(c, argv, 1, None, _SCORE, False)


@handler("zrevrangebyscore")
def zrevrangebyscore(c: Client, argv: list[bytes]) -> bytes:
    return _zrange(c, argv, 1, None, _SCORE, True)


@handler("zrangebylex")
def zrangebylex(c: Client, argv: list[bytes]) -> bytes:
    return _zrange(c, argv, 1, None, _LEX, False)


@handler("zrevrangebylex")
def zrevrangebylex(c: Client, argv: list[bytes]) -> bytes:
    return _zrange(c, argv, 1, None, _LEX, True)


@handler("zrevrange")
def zrevrange(c: Client, argv: list[bytes]) -> bytes:
    return _zrange(c, argv, 1, None, _RANK, True)


# -- ZREMRANGEBY* ------------------------------------------------------------------------


def _zremrange(c: Client, argv: list[bytes], rangetype: str) -> bytes:
    """ZREMRANGEBYRANK / BYSCORE / BYLEX: the range is parsed before the lookup."""
    key = argv[1]
    span: Any
    if rangetype == _RANK:
        start, stop = arg_int(argv[2]), arg_int(argv[3])
        span = lambda z: rank_span(start, stop, len(z))  # noqa: E731
    elif rangetype == _SCORE:
        srange = _score_range(argv[2], argv[3])
        span = lambda z: z.score_span(srange)  # noqa: E731
    else:
        lrange = _lex_range(argv[2], argv[3])
        span = lambda z: z.lex_span(lrange)  # noqa: E731
    z = _get(c.db, key)
    if z is None:
        return enc.ZERO
    lo, hi = span(z)
    deleted = z.remove_span(lo, hi)
    if deleted:
        _modified(c, key, z, argv[0].lower())
        c.server.dirty += deleted
    return enc.integer(deleted)


@handler("zremrangebyrank")
def zremrangebyrank(c: Client, argv: list[bytes]) -> bytes:
    return _zremrange(c, argv, _RANK)


@handler("zremrangebyscore")
def zremrangebyscore(c: Client, argv: list[bytes]) -> bytes:
    return _zremrange(c, argv, _SCORE)


@handler("zremrangebylex")
def zremrangebylex(c: Client, argv: list[bytes]) -> bytes:
    return _zremrange(c, argv, _LEX)


# -- pops (shared with the blocking variants) ---------------------------------------------


def pop(c: Client, key: bytes, z: ZSet, count: int, maximum: bool) -> list[Entry]:
    """Pop up to ``count`` entries of ``z`` (stored at ``key`` in ``c.db``), lowest first
    or highest first; deletes an emptied set, touches WATCHers, counts the change. The
    caller replies and, unless the command propagates as sent, sets ``c.prop``."""
    taken = z.pop(count, maximum)
    if taken:
        _modified(c, key, z, b"zpopmax" if maximum else b"zpopmin")
        c.server.dirty += len(taken)
    return taken


def pop_effect(key: bytes, maximum: bool, popped: int) -> list[bytes]:
    """What a ZMPOP / BZMPOP / BZPOPMIN / BZPOPMAX that popped ``popped`` propagates."""
    return [b"ZPOPMAX" if maximum else b"ZPOPMIN", key, b"%d" % popped]


def mpop_reply(c: Client, key: bytes, entries: list[Entry]) -> bytes:
    """``[key, [[member, score], ...]]`` (ZMPOP, BZMPOP; both protocols)."""
    return b"*2\r\n" + enc.bulk(key) + _nested_pairs(entries, c.p)


def first_zset(db: Database, keys: list[bytes]) -> tuple[bytes, ZSet] | None:
    """The first key of ``keys`` holding a sorted set; a non-zset before it is WRONGTYPE."""
    for key in keys:
        z = _get(db, key)
        if z is not None:
            return key, z
    return None


def _zpop(c: Client, argv: list[bytes], maximum: bool) -> bytes:
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    count = 1
    if len(argv) == 3:
        parsed = parse_int(argv[2])
        if parsed is None or parsed < 0:
            raise CommandError(_POSITIVE)
        count = parsed
    key = argv[1]
    z = _get(c.db, key)
    if z is None or count == 0:  # a count of 0 still type-checks the key
        return enc.EMPTY_ARRAY
    taken = pop(c, key, z, count, maximum)
    if len(argv) == 3:
        return _scored_reply(c.p, taken)
    return _flat_reply(taken, c.p)


@handler("zpopmin")
def zpopmin(c: Client, argv: list[bytes]) -> bytes:
    return _zpop(c, argv, False)


@handler("zpopmax")
def zpopmax(c: Client, argv: list[bytes]) -> bytes:
    return _zpop(c, argv, True)


def parse_mpop(argv: list[bytes], numkeys_idx: int) -> tuple[list[bytes], bool, int]:
    """ZMPOP / BZMPOP from ``argv[numkeys_idx]`` on: numkeys key... MIN|MAX [COUNT n] ->
    (keys, maximum, count), with Redis's errors in Redis's order."""
    numkeys = parse_int(argv[numkeys_idx])
    if numkeys is None or numkeys < 1:
        raise CommandError("ERR numkeys should be greater than 0")
    where_idx = numkeys_idx + numkeys + 1
    if where_idx >= len(argv):
        raise CommandError(SYNTAX)
    where = argv[where_idx].lower()
    if where not in (b"min", b"max"):
        raise CommandError(SYNTAX)
    count = -1
    j = where_idx + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            parsed = parse_int(argv[j + 1])
            if parsed is None or parsed < 1:
                raise CommandError("ERR count should be greater than 0")
            count = parsed
            j += 2
        else:
            raise CommandError(SYNTAX)
    return argv[numkeys_idx + 1 : where_idx], where == b"max", max(count, 1)


@handler("zmpop")
def zmpop(c: Client, argv: list[bytes]) -> bytes:
    keys, maximum, count = parse_mpop(argv, 1)
    found = first_zset(c.db, keys)
    if found is None:
        null: bytes = c.p.null_array
        return null
    key, z = found
    taken = pop(c, key, z, count, maximum)
    c.prop = [pop_effect(key, maximum, len(taken))]
    return mpop_reply(c, key, taken)


# -- ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD --------------------------------

_UNION, _INTER, _DIFF = "union", "inter", "diff"
Source = ZSet | set[bytes] | None


def _pairs(src: Source) -> Iterable[Pair]:
    """A source's (member, score) pairs (a plain set's members score 1)."""
    if src is None:
        return ()
    if isinstance(src, ZSet):
        return src
    return ((m, 1.0) for m in src)


def _getter(src: Source) -> Callable[[bytes], float | None]:
    """A source's member -> score lookup (None when absent)."""
    if src is None:
        return lambda m: None
    if isinstance(src, ZSet):
        return src.score
    return lambda m: 1.0 if m in src else None


def _aggregate(how: bytes, target: float, value: float) -> float:
    """Redis zunionInterAggregate: a NaN sum (inf + -inf) is 0; MIN/MAX keep the target
    when the value is NaN (every comparison with NaN is false)."""
    if how == b"sum":
        total = target + value
        return 0.0 if math.isnan(total) else total
    if how == b"min":
        return value if value < target else target
    return value if value > target else target


def _parse_algebra(
    c: Client, argv: list[bytes], numkeys_idx: int, op: str, store: bool, card: bool
) -> tuple[list[Source], list[float], bytes, bool, int]:
    """numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES] [LIMIT n], in
    Redis's order: numkeys, the keys' types, then the options."""
    name = argv[0].decode("utf-8", "replace").lower()
    setnum = arg_int(argv[numkeys_idx])
    if setnum < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if setnum > len(argv) - numkeys_idx - 1:
        raise CommandError(SYNTAX)
    db = c.db
    sources: list[Source] = []
    for key in argv[numkeys_idx + 1 : numkeys_idx + 1 + setnum]:
        v = db.lookup(key)
        if v is None:  # a read lookup, STORE forms too (Redis 7: lookupKeyRead)
            c.server.key_miss(db.index, key)
        else:
            c.server.stat_keyspace_hits += 1
        if v is not None and v.__class__ is not ZSet and v.__class__ is not set:
            raise CommandError(WRONGTYPE)
        sources.append(v)
    weights = [1.0] * setnum
    aggregate = b"sum"
    withscores = False
    limit = 0
    j = numkeys_idx + 1 + setnum
    while j < len(argv):
        opt = argv[j].lower()
        left = len(argv) - j
        if op != _DIFF and not card and left >= setnum + 1 and opt == b"weights":
            for i in range(setnum):
                w = parse_float(argv[j + 1 + i])
                if w is None:
                    raise CommandError("ERR weight value is not a float")
                weights[i] = w
            j += setnum + 1
        elif op != _DIFF and not card and left >= 2 and opt == b"aggregate":
            how = argv[j + 1].lower()
            if how not in (b"sum", b"min", b"max"):
                raise CommandError(SYNTAX)
            aggregate = how
            j += 2
        elif not store and not card and opt == b"withscores":
            withscores = True
            j += 1
        elif card and left >= 2 and opt == b"limit":
            parsed = parse_int(argv[j + 1])
            if parsed is None or parsed < 0:
                raise CommandError("ERR LIMIT can't be negative")
            limit = parsed
            j += 2
        else:
            raise CommandError(SYNTAX)
    return sources, weights, aggregate, withscores, limit


def _by_size(sources: list[Source], weights: list[float]) -> list[tuple[Source, float]]:
    """Inputs with their weights, smallest first (stable), as Redis orders them."""
    pairs = list(zip(sources, weights, strict=True))
    pairs.sort(key=lambda p: 0 if p[0] is None else len(p[0]))
    return pairs


def _union(sources: list[Source], weights: list[float], how: bytes) -> dict[bytes, float]:
    acc: dict[bytes, float] = {}
    for src, w in _by_size(sources, weights):
        for member, s in _pairs(src):
            value = w * s
            if math.isnan(value):
                value = 0.0
            cur = acc.get(member)
            acc[member] = value if cur is None else _aggregate(how, cur, value)
    return acc


def _inter(
    sources: list[Source], weights: list[float], how: bytes, limit: int = 0
) -> dict[bytes, float]:
    ordered = _by_size(sources, weights)
    first, w0 = ordered[0]
    rest = [(_getter(src), w) for src, w in ordered[1:]]
    acc: dict[bytes, float] = {}
    for member, s in _pairs(first):
        score = w0 * s
        if math.isnan(score):
            score = 0.0
        for get, w in rest:
            other = get(member)
            if other is None:
                break
            score = _aggregate(how, score, w * other)
        else:
            acc[member] = score
            if len(acc) == limit:
                break
    return acc


def _diff(sources: list[Source]) -> dict[bytes, float]:
    others = [src for src in sources[1:] if src]
    return {m: s for m, s in _pairs(sources[0]) if not any(m in o for o in others)}


def _algebra(c: Client, argv: list[bytes], op: str, store: bool) -> bytes:
    numkeys_idx = 2 if store else 1
    sources, weights, how, withscores, _ = _parse_algebra(c, argv, numkeys_idx, op, store, False)
    if op == _UNION:
        result = _union(sources, weights, how)
    elif op == _INTER:
        result = _inter(sources, weights, how)
    else:
        result = _diff(sources)
    if store:
        return _store(c, argv[1], ZSet(result.items()), b"z%sstore" % op.encode())
    # Sorted straight from the arithmetic: keeps -0 in replies, as Redis does.
    entries = sorted((s, m, b"$%d\r\n%s\r\n" % (len(m), m)) for m, s in result.items())
    return _range_reply(c.p, entries, withscores)


_ALGEBRA_DOC = {
    _UNION: "Returns the union of multiple sorted sets.",
    _INTER: "Returns the intersect of multiple sorted sets.",
    _DIFF: "Returns the difference between multiple sorted sets.",
}


@handler("zunion")
def zunion(c: Client, argv: list[bytes]) -> bytes:
    return _algebra(c, argv, _UNION, False)


@handler("zinter")
def zinter(c: Client, argv: list[bytes]) -> bytes:
    return _algebra(c, argv, _INTER, False)


@handler("zdiff")
def zdiff(c: Client, argv: list[bytes]) -> bytes:
    return _algebra(c, argv, _DIFF, False)


@handler("zunionstore")
def zunionstore(c: Client, argv: list[bytes]) -> bytes:
    return _algebra(c, argv, _UNION, True)


@handler("zinterstore")
def zinterstore(c: Client, argv: list[bytes]) -> bytes:
    return _algebra(c, argv, _INTER, True)


@handler("zdiffstore")
def zdiffstore(c: Client, argv: list[bytes]) -> bytes:
    return _algebra(c, argv, _DIFF, True)


@handler("zintercard")
def zintercard(c: Client, argv: list[bytes]) -> bytes:
    sources, weights, how, _, limit = _parse_algebra(c, argv, 1, _INTER, False, True)
    if any(s is None for s in sources):
        return enc.ZERO
    return enc.integer(len(_inter(sources, weights, how, limit)))


# -- ZRANDMEMBER -------------------------------------------------------------------------


@handler("zrandmember")
def zrandmember(c: Client, argv: list[bytes]) -> bytes:
    rng = c.server.rng
    if len(argv) == 2:
        z = _read(c, argv[1])
        if z is None:
            null: bytes = c.p.null
            return null
        return enc.bulk(z.at(rng.randrange(len(z)))[1])
    count = arg_int(argv[2])
    if count == LLONG_MIN:  # Redis takes the count in -LONG_MAX..LONG_MAX
        raise CommandError(_COUNT_RANGE)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
        raise CommandError(SYNTAX)
    withscores = len(argv) == 4
    if withscores and not -(LLONG_MAX // 2) <= count <= LLONG_MAX // 2:
        raise CommandError("ERR value is out of range")
    z = _read(c, argv[1])
    if z is None or count == 0:
        return enc.EMPTY_ARRAY
    if -count > RANDMEMBER_PICKS_MAX:
        raise CommandError(
            f"ERR value is out of range, a negative count must be at least -{RANDMEMBER_PICKS_MAX}"
        )
    n = len(z)
    if count < 0:
        entries = [z.at(rng.randrange(n)) for _ in range(-count)]
    elif count >= n:
        entries = z.entries(0, n, False)  # the whole set, in order (as a Redis listpack)
    else:
        entries = [z.at(i) for i in rng.sample(range(n), count)]
    return _range_reply(c.p, entries, withscores)


# -- ZSCAN -------------------------------------------------------------------------------


def _is_listpack(c: Client, z: ZSet) -> bool:
    cfg = c.server.config
    if len(z) > cfg.get("zset-max-listpack-entries"):
        return False
    most = cfg.get("zset-max-listpack-value")
    return all(len(m) <= most for m in z.member_names())


def _scan_page(c: Client, z: ZSet, cursor: int, count: int) -> tuple[int, Iterable[bytes]]:
    """(next cursor, members) of one ZSCAN call; members may have been removed since."""
    return c.server.scan_snapshots.page(
        z,
        cursor,
        count,
        z.member_slice,
        lambda: _is_listpack(c, z),
    )


@handler("zscan")
def zscan(c: Client, argv: list[bytes]) -> bytes:
    cursor = parse_scan_cursor(argv[2])
    z = _read(c, argv[1])
    if z is None:
        return _EMPTY_SCAN
    match, count, _ = parse_scan_options(argv, 3, False)
    nxt, members = _scan_page(c, z, cursor, count)
    parts: list[bytes] = []
    for m in members:
        s = z.score(m)
        if s is not None and (match is None or match(m)):
            t = score_text(s)
            parts.append(b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(m), m, len(t), t))
    return b"*2\r\n" + enc.bulk(b"%d" % nxt) + b"*%d\r\n" % (2 * len(parts)) + b"".join(parts)
