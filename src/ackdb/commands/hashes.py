"""Hash commands: HSET and its family, counters, random fields, HSCAN.

Owns: Redis 7.2 semantics, replies (RESP2 and RESP3) and error texts of the hash family,
the effects its writes propagate (HINCRBYFLOAT as ``HSET key field <result>``, everything
else as sent), their keyspace events (Redis 7.2: ``hset`` for HSET / HMSET / HSETNX even
when no value changed, ``hdel`` then ``del`` when emptied, ``hincrby``, ``hincrbyfloat``),
the keyspace hit/miss counts of its reads, and the HSCAN cursors of large hashes. Never touches the network. A hash is a plain ``dict[bytes, bytes]`` in insertion
order; a hash emptied by HDEL is deleted from the keyspace at once, as in Redis.

Order of checks follows Redis: argument errors Redis finds before the lookup (HINCRBY's and
HINCRBYFLOAT's increment, HRANDFIELD's count and syntax, HSCAN's cursor) come before
WRONGTYPE; HSCAN of a missing key answers an empty page without looking at its options.

HSCAN: a hash of at most ``hash-max-listpack-entries`` fields is returned whole with cursor
0, whatever the cursor, as Redis does for a listpack. A larger hash is walked through a
*snapshot*: the first call copies the field list (one O(N) pass in C, a list of references)
and the cursor is ``scan id << 32 | position`` in it. Later calls visit COUNT slots and
return the fields still present, with their current values. So a field present for the
whole iteration is returned exactly once; fields added meanwhile may be missed (Redis's
guarantee allows that); a field deleted is not returned. Snapshots live per server in a
bounded LRU (``keyspace/scanpage.py``, shared with SSCAN and ZSCAN) and the snapshot of a completed iteration is dropped. A cursor whose snapshot is gone
(evicted, another process, a hash replaced by a new one) falls back to "position in the
dict's insertion order" and snapshots the rest from there: if fields before that position
were deleted since, later fields shift down and the scan can skip as many of them, an
accepted difference from Redis's guarantee. A hash larger than the whole snapshot budget
is always walked that way (O(position) per call).

Accepted differences from Redis 7.2: HRANDFIELD with a negative count refuses more than
``RANDFIELD_PICKS_MAX`` picks (Redis streams any count, growing the output buffer without
bound); HRANDFIELD without a count, or with a positive count smaller than the hash, is
O(N) instead of O(1) / O(count) because a dict has no random access.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace.numbers import FloatIncrError, check_hincr_increment, hincr_float_text, parse_int
from ..resp import encoder as enc
from .base import (
    LLONG_MAX,
    LLONG_MIN,
    SYNTAX,
    CommandError,
    arg_int,
    get_hash,
    parse_scan_cursor,
    parse_scan_options,
    read_typed,
)
from .table import handler

# HRANDFIELD key -count: most picks (with repetition) one reply may hold.
RANDFIELD_PICKS_MAX = 1 << 24

_NOT_INT = "ERR hash value is not an integer"
_OVERFLOW = "ERR increment or decrement would overflow"
_COUNT_RANGE = (
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
)


def _read(c: Client, key: bytes) -> dict[bytes, bytes] | None:
    """A read lookup (counts a keyspace hit or miss): see ``base.read_typed``."""
    return read_typed(c, key, dict)  # type: ignore[no-any-return]


def _store(c: Client, key: bytes, h: dict[bytes, bytes] | None, field: bytes, value: bytes) -> None:
    """Set one field, creating the hash when ``h`` is None (the key is absent)."""
    db = c.db
    if h is None:
        db.add_new(key, {field: value})
    else:
        h[field] = value
        if db.watched:
            db.touch(key)


# -- writes ------------------------------------------------------------------------------


def _hset(c: Client, argv: list[bytes], name: str) -> int:
    """Store the field/value pairs of argv[2:]; returns how many fields were new."""
    if len(argv) % 2:
        raise CommandError(f"ERR wrong number of arguments for '{name}' command")
    db = c.db
    key = argv[1]
    h = get_hash(db, key)
    if len(argv) == 4:  # one field: the common case, without building pairs
        if h is None:
            db.add_new(key, {argv[2]: argv[3]})
            created = 1
        else:
            before = len(h)
            h[argv[2]] = argv[3]
            created = len(h) - before
            if db.watched:
                db.touch(key)
        c.server.dirty += 1
        c.server.notify(nt.HASH, b"hset", key, db.index)
        return created
    pairs = zip(argv[2::2], argv[3::2], strict=True)
    if h is None:
        h = dict(pairs)
        db.add_new(key, h)
        created = len(h)
    else:
        before = len(h)
        h.update(pairs)
        created = len(h) - before
        if db.watched:
            db.touch(key)
    c.server.dirty += (len(argv) - 2) // 2  # Redis counts every pair written
    c.server.notify(nt.HASH, b"hset", key, db.index)
    return created


@handler("hset")
def hset(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) == 4:  # fast path: one field of an existing hash
        db = c.db
        h = db.lookup(argv[1]) if db.expires else db.data.get(argv[1])
        if h.__class__ is dict:
            before = len(h)
            h[argv[2]] = argv[3]
            if db.watched:
                db.touch(argv[1])
            srv = c.server
            srv.dirty += 1
            if srv.notifier.flags & nt.HASH:
                srv.notify(nt.HASH, b"hset", argv[1], db.index)
            return enc.ONE if len(h) > before else enc.ZERO
    return enc.integer(_hset(c, argv, "hset"))


@handler("hmset")
def hmset(c: Client, argv: list[bytes]) -> bytes:
    _hset(c, argv, "hmset")
    return enc.OK


@handler("hsetnx")
def hsetnx(c: Client, argv: list[bytes]) -> bytes:
    key, field = argv[1], argv[2]
    h = get_hash(c.db, key)
    if h is not None and field in h:
        return enc.ZERO
    _store(c, key, h, field, argv[3])
    c.server.dirty += 1
    c.server.notify(nt.HASH, b"hset", key, c.db.index)
    return enc.ONE


@handler("hdel")
def hdel(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    key = argv[1]
    h = get_hash(db, key)
    if h is None:
        return enc.ZERO
    deleted = 0
    for field in argv[2:]:
        if h.pop(field, None) is not None:
            deleted += 1
            if not h:
                break
    if deleted:
        c.server.notify(nt.HASH, b"hdel", key, db.index)
        if not h:
            db.delete(key)  # touches WATCHers itself
            c.server.notify(nt.GENERIC, b"del", key, db.index)
        elif db.watched:
            db.touch(key)
        c.server.dirty += deleted
    return enc.integer(deleted)


@handler("hincrby")
def hincrby(c: Client, argv: list[bytes]) -> bytes:
    key, field = argv[1], argv[2]
    incr = arg_int(argv[3])
    h = get_hash(c.db, key)
    cur = None if h is None else h.get(field)
    if cur is None:
        old = 0
    else:
        parsed = parse_int(cur)
        if parsed is None:
            raise CommandError(_NOT_INT)
        old = parsed
    new = old + incr
    if new > LLONG_MAX or new < LLONG_MIN:
        raise CommandError(_OVERFLOW)
    _store(c, key, h, field, b"%d" % new)
    c.server.dirty += 1
    c.server.notify(nt.HASH, b"hincrby", key, c.db.index)
    return enc.integer(new)


@handler("hincrbyfloat")
def hincrbyfloat(c: Client, argv: list[bytes]) -> bytes:
    key, field, incr = argv[1], argv[2], argv[3]
    try:
        check_hincr_increment(incr)  # before WRONGTYPE, as Redis
        h = get_hash(c.db, key)
        new = hincr_float_text(None if h is None else h.get(field), incr)
    except FloatIncrError as e:
        raise CommandError(str(e)) from None
    _store(c, key, h, field, new)
    c.server.notify(nt.HASH, b"hincrbyfloat", key, c.db.index)
    # Replicas must not redo long double arithmetic: the effect is the resulting text.
    c.prop = [[b"HSET", key, field, new]]
    c.server.dirty += 1
    return enc.bulk(new)


# -- reads -------------------------------------------------------------------------------


@handler("hget")
def hget(c: Client, argv: list[bytes]) -> bytes:
    h = _read(c, argv[1])
    p: enc.Resp2 = c.p
    return p.bulk_or_null(None if h is None else h.get(argv[2]))


@handler("hmget")
def hmget(c: Client, argv: list[bytes]) -> bytes:
    h = _read(c, argv[1])
    p: enc.Resp2 = c.p
    if h is None:
        return p.bulks_or_null([None] * (len(argv) - 2))
    get = h.get
    return p.bulks_or_null([get(f) for f in argv[2:]])


@handler("hexists")
def hexists(c: Client, argv: list[bytes]) -> bytes:
    h = _read(c, argv[1])
    return enc.ONE if h is not None and argv[2] in h else enc.ZERO


@handler("hlen")
def hlen(c: Client, argv: list[bytes]) -> bytes:
    h = _read(c, argv[1])
    return enc.integer(0 if h is None else len(h))


@handler("hstrlen")
def hstrlen(c: Client, argv: list[bytes]) -> bytes:
    h = _read(c, argv[1])
    v = None if h is None else h.get(argv[2])
    return enc.integer(0 if v is None else len(v))


@handler("hgetall")
def hgetall(c: Client, argv: list[bytes]) -> bytes:
    h = _read(c, argv[1])
    p: enc.Resp2 = c.p
    return p.map_bulks(() if h is None else h.items())


@handler("hkeys")
def hkeys(c: Client, argv: list[bytes]) -> bytes:
    h = _read(c, argv[1])
    return enc.EMPTY_ARRAY if h is None else enc.bulk_array(h)


@handler("hvals")
def hvals(c: Client, argv: list[bytes]) -> bytes:
    h = _read(c, argv[1])
    return enc.EMPTY_ARRAY if h is None else enc.bulk_array(h.values())


# -- HRANDFIELD --------------------------------------------------------------------------


def _pairs_array(p: enc.Resp2, pairs: list[tuple[bytes, bytes]]) -> bytes:
    """Field/value pairs: flat in RESP2, an array of 2-element arrays in RESP3 (Redis 7.2
    HRANDFIELD WITHVALUES reply schema). The encoder has no such shape, hence the branch."""
    if p.version == 3:
        parts = [b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(f), f, len(v), v) for f, v in pairs]
        return b"*%d\r\n" % len(parts) + b"".join(parts)
    return enc.bulk_array([x for pair in pairs for x in pair])


@handler("hrandfield")
def hrandfield(c: Client, argv: list[bytes]) -> bytes:
    rng = c.server.rng
    if len(argv) == 2:
        h = _read(c, argv[1])
        if h is None:
            null: bytes = c.p.null
            return null
        return enc.bulk(next(islice(iter(h), rng.randrange(len(h)), None)))
    count = arg_int(argv[2])
    if count == LLONG_MIN:  # Redis takes the count in -LONG_MAX..LONG_MAX
        raise CommandError(_COUNT_RANGE)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
        raise CommandError(SYNTAX)
    withvalues = len(argv) == 4
    if withvalues and not -(LLONG_MAX // 2) <= count <= LLONG_MAX // 2:
        raise CommandError("ERR value is out of range")
    h = _read(c, argv[1])
    if h is None or count == 0:
        return enc.EMPTY_ARRAY
    if -count > RANDFIELD_PICKS_MAX:
        raise CommandError(
            f"ERR value is out of range, a negative count must be at least -{RANDFIELD_PICKS_MAX}"
        )
    population: list[Any] = list(h.items()) if withvalues else list(h)
    if count < 0:
        picked = rng.choices(population, k=-count)
    elif count >= len(h):
        picked = population  # the whole hash, in its order
    else:
        picked = rng.sample(population, count)
    return _pairs_array(c.p, picked) if withvalues else enc.bulk_array(picked)


# -- HSCAN -------------------------------------------------------------------------------


def _scan_page(
    c: Client, h: dict[bytes, bytes], cursor: int, count: int
) -> tuple[int, list[bytes]]:
    """(next cursor, fields) of one HSCAN call on ``h``; fields may have been deleted."""
    return c.server.scan_snapshots.page(
        h,
        cursor,
        count,
        lambda start, stop: list(islice(h, start, stop)),
        lambda: len(h) <= c.server.config.get("hash-max-listpack-entries"),
    )


@handler("hscan")
def hscan(c: Client, argv: list[bytes]) -> bytes:
    cursor = parse_scan_cursor(argv[2])
    h = _read(c, argv[1])
    if h is None:
        return b"*2\r\n$1\r\n0\r\n*0\r\n"
    match, count, _ = parse_scan_options(argv, 3, False)
    nxt, fields = _scan_page(c, h, cursor, count)
    out: list[bytes] = []
    for f in fields:
        v = h.get(f)
        if v is not None and (match is None or match(f)):
            out += (f, v)
    return b"*2\r\n" + enc.bulk(b"%d" % nxt) + enc.bulk_array(out)
