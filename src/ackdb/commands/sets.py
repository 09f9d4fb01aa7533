"""Set commands: SADD and its family, random members (SPOP, SRANDMEMBER), the algebra
(SINTER, SUNION, SDIFF, their STORE forms, SINTERCARD), SSCAN.

Owns: Redis 7.2 semantics, replies (RESP2 and RESP3) and error texts of the set family,
its TYPE / OBJECT ENCODING, the effects its writes propagate, the keyspace hit/miss counts
of its reads (the STORE forms count their sources as reads, as redis-server 7.0.15 does;
SMOVE and SPOP count nothing), random access to large sets and the SSCAN cursors of large
sets. Never touches the network. A set is a plain ``set[bytes]``; a set emptied by SREM,
SPOP or SMOVE is deleted from the keyspace at once, as in Redis.

Effects (Redis 7.2): SPOP key propagates ``SREM key member``; SPOP key count propagates
``SREM key m1 m2 ...`` in batches of ``SREM_BATCH_MEMBERS`` (wrapped in MULTI/EXEC when
there is more than one, Redis #12082), or ``DEL key`` (``UNLINK`` with
lazyfree-lazy-server-del) when it took the whole set. Everything else propagates as sent:
the algebra is deterministic, and a STORE whose result is empty deletes the destination
(propagated as the command itself, and only when a destination existed, as Redis does).

Keyspace events (Redis 7.2 names and order): ``sadd`` / ``srem`` / ``spop`` only when
members changed, ``del`` after them when the set was emptied; SMOVE: ``srem`` (and ``del``)
on the source, then ``sadd`` on the destination only when the member is new there;
the STORE forms: ``sinterstore`` / ``sunionstore`` / ``sdiffstore``, or ``del`` when an
empty result removed an existing destination.

Order of checks follows redis-server (verified against 7.0.15): SPOP's and SRANDMEMBER's
count and their syntax come before WRONGTYPE, SINTERCARD's numkeys and LIMIT too; every key
of the algebra is type-checked before a missing key short-cuts the result; SMOVE answers 0
for a missing source before type-checking the destination; SSCAN of a missing key answers
an empty page without looking at its options.

Reply order: where Redis's order is fixed by its encoding, it is kept for the common case:
a reply that Redis would serve from an intset (all members integers, at most
set-max-intset-entries of them) is in ascending numeric order. Other orders are Python's.

Random members: a set of at most ``DECK_MIN_MEMBERS`` is indexed directly (O(N), N small).
A larger one gets a *deck*: a shuffled list of its members, kept per set while the set
lives (weakly referenced, at most ``DECKS_MAX`` decks, LRU). A member added through this
module is inserted at a uniformly random position (inside-out Fisher-Yates), a member
removed stays as a stale card skipped when met, and a deck rebuilds once it holds more than
``2 * len(set) + DECK_SLACK`` cards. SPOP draws from the end of the deck, SRANDMEMBER picks
a random card; both O(1) amortised. Every in-place addition to a set goes through ``_add``
(SADD, SMOVE); a member added any other way is only drawn once the deck runs out and is
rebuilt, so it is never lost, but the draw is then not uniform.

SSCAN: a set Redis would hold as intset or listpack is returned whole with cursor 0, as
Redis does. A larger one is walked through a snapshot of its members (one O(N) copy of
references at the first call), the cursor being ``scan id << 32 | position``; members
present for the whole iteration are returned exactly once, members removed meanwhile are
not returned. Snapshots live in a bounded LRU; a cursor whose snapshot is gone falls back
to "position in the set's current iteration order", which can skip members if the set
changed (an accepted difference, as for HSCAN).

Accepted differences from Redis 7.2: OBJECT ENCODING follows the current contents (Redis
never converts a set back to intset or listpack); SRANDMEMBER with a negative count refuses
more than ``RANDMEMBER_PICKS_MAX`` picks; random picks are near-uniform (a member removed
and re-added while a deck lives has two cards until the next rebuild); listpack sets do
not keep insertion order in replies.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Collection, Iterable
from itertools import islice
from random import Random
from typing import Any

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace.db import Database
from ..keyspace.numbers import parse_int
from ..keyspace.types import register
from ..resp import encoder as enc
from .base import (
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

# SPOP with count: members per propagated SREM (Redis 7.2, #12082).
SREM_BATCH_MEMBERS = 1024
# SRANDMEMBER key -count: most picks (with repetition) one reply may hold.
RANDMEMBER_PICKS_MAX = 1 << 24
# Random access: sets up to this size are indexed directly, larger ones get a deck.
DECK_MIN_MEMBERS = 64
DECK_SLACK = 64  # stale cards tolerated beyond len(set) before a rebuild
DECKS_MAX = 256

_POSITIVE = "ERR value is out of range, must be positive"
_COUNT_RANGE = (
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
)
_NUMKEYS = "ERR numkeys should be greater than 0"
_NUMKEYS_ARGS = "ERR Number of keys can't be greater than number of args"
_LIMIT = "ERR LIMIT can't be negative"
_EMPTY_SCAN = b"*2\r\n$1\r\n0\r\n*0\r\n"

Members = set[bytes]


# -- type, encoding, reply order -------------------------------------------------------


def _all_ints(members: Iterable[bytes]) -> bool:
    return all(parse_int(m) is not None for m in members)


def _encoding(value: Members, limits: dict[str, int]) -> bytes:
    """What Redis 7.2 gives these contents written afresh (SADD of all of them)."""
    n = len(value)
    if n <= limits["set-max-intset-entries"] and _all_ints(value):
        return b"intset"
    if n <= limits["set-max-listpack-entries"]:
        m = limits["set-max-listpack-value"]
        if all(len(x) <= m for x in value):
            return b"listpack"
    return b"hashtable"


register(set, b"set", _encoding)


def _limits(c: Client) -> dict[str, int]:
    cfg = c.server.config
    return {
        name: cfg.get(name)
        for name in ("set-max-intset-entries", "set-max-listpack-entries", "set-max-listpack-value")
    }


def _in_order(c: Client, members: Collection[bytes]) -> Collection[bytes]:
    """``members`` in ascending numeric order when Redis would reply from an intset."""
    if len(members) > c.server.config.get("set-max-intset-entries"):
        return members
    ints = []
    for m in members:
        v = parse_int(m)
        if v is None:
            return members
        ints.append(v)
    ints.sort()
    return [b"%d" % v for v in ints]


def _bulks(members: Iterable[bytes]) -> bytes:
    return b"".join([b"$%d\r\n%s\r\n" % (len(m), m) for m in members])


def _set_reply(c: Client, members: Collection[bytes]) -> bytes:
    """A RESP3 set (``~``), an array in RESP2, in Redis's order where known."""
    members = _in_order(c, members)
    header: bytes = c.p.set_header(len(members))
    return header + _bulks(members)


def _positive(arg: bytes, msg: str, low: int = 0) -> int:
    """Redis getRangeLongFromObjectOrReply(low, LONG_MAX) with one message for all."""
    n = parse_int(arg)
    if n is None or n < low:
        raise CommandError(msg)
    return n


# -- lookups -----------------------------------------------------------------------------


def _read(c: Client, key: bytes) -> Members | None:
    """A read lookup (counts a keyspace hit or miss): see ``base.read_typed``."""
    return read_typed(c, key, set)  # type: ignore[no-any-return]


def _get(db: Database, key: bytes) -> Members | None:
    """A write lookup: see ``base.get_typed``."""
    return get_typed(db, key, set)  # type: ignore[no-any-return]


# ``db: Any`` in the helpers that send events through ``db.owner.notify``: the owner is the
# engine, and the keyspace's ``KeyspaceOwner`` port does not declare ``notify``.
def _modified(db: Any, key: bytes, s: Members) -> None:
    """After removing members in place (and their event): delete an emptied set, else
    tell WATCHers."""
    if not s:
        db.delete(key)  # touches WATCHers itself
        db.owner.notify(nt.GENERIC, b"del", key, db.index)
    elif db.watched:
        db.touch(key)


# -- random access (see the module docstring) ---------------------------------------------

_DECKS: OrderedDict[int, tuple[weakref.ref[Members], list[bytes]]] = OrderedDict()


def _forget(key: int, ref: weakref.ref[Members]) -> None:
    e = _DECKS.get(key)
    if e is not None and e[0] is ref:
        del _DECKS[key]


def _deck_of(s: Members) -> list[bytes] | None:
    e = _DECKS.get(id(s))
    if e is None or e[0]() is not s:
        return None
    return e[1]


def _deck(s: Members, rng: Random) -> list[bytes]:
    """The deck of ``s`` (a superset of its members in random order), built if needed."""
    key = id(s)
    cards = _deck_of(s)
    if cards is not None and cards and len(cards) <= 2 * len(s) + DECK_SLACK:
        _DECKS.move_to_end(key)
        return cards
    cards = list(s)
    rng.shuffle(cards)
    _DECKS[key] = (weakref.ref(s, lambda ref: _forget(key, ref)), cards)
    _DECKS.move_to_end(key)
    while len(_DECKS) > DECKS_MAX:
        _DECKS.popitem(last=False)
    return cards


def _add(s: Members, members: Iterable[bytes], rng: Random) -> int:
    """Add ``members`` to ``s`` in place, keeping its deck whole; returns how many were new."""
    before = len(s)
    cards = _deck_of(s) if _DECKS else None
    if cards is None:
        s.update(members)
        return len(s) - before
    for m in members:
        if m not in s:
            s.add(m)
            cards.append(m)
            j = rng.randrange(len(cards))
            cards[-1], cards[j] = cards[j], m
    return len(s) - before


def _peek(s: Members, rng: Random) -> bytes:
    """A uniformly random member of the non-empty ``s``."""
    n = len(s)
    if n <= DECK_MIN_MEMBERS:
        return next(islice(s, rng.randrange(n), None))
    cards = _deck(s, rng)
    while True:
        j = rng.randrange(len(cards))
        m = cards[j]
        if m in s:
            return m
        cards[j] = cards[-1]  # a stale card: drop it (keeps the order uniform)
        cards.pop()
        if not cards:
            cards = _deck(s, rng)


def _draw(s: Members, rng: Random) -> bytes:
    """Remove and return a uniformly random member of the non-empty ``s``."""
    if len(s) <= DECK_MIN_MEMBERS:
        m = next(islice(s, rng.randrange(len(s)), None))
    else:
        cards = _deck(s, rng)
        while True:
            if not cards:
                cards = _deck(s, rng)
            m = cards.pop()
            if m in s:
                break
    s.remove(m)
    return m


def _distinct(s: Members, count: int, rng: Random) -> list[bytes]:
    """``count`` (< len(s)) distinct random members."""
    if len(s) <= DECK_MIN_MEMBERS or count * 2 > len(s):
        return rng.sample(list(s), count)
    picked: dict[bytes, None] = {}
    while len(picked) < count:
        picked[_peek(s, rng)] = None
    return list(picked)


# -- writes ------------------------------------------------------------------------------


@handler("sadd")
def sadd(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    key = argv[1]
    s = db.lookup(key) if db.expires else db.data.get(key)
    if s is None:
        s = set(argv[2:])
        db.add_new(key, s)
        added = len(s)
    elif s.__class__ is set:
        if len(argv) == 3 and argv[2] in s:  # already a member: nothing changes
            return enc.ZERO
        added = _add(s, argv[2:], c.server.rng)
        if added and db.watched:
            db.touch(key)
    else:
        raise CommandError(WRONGTYPE)
    srv = c.server
    srv.dirty += added
    if added and srv.notifier.flags & nt.SET:
        srv.notify(nt.SET, b"sadd", key, db.index)
    return enc.integer(added)


@handler("srem")
def srem(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    key = argv[1]
    s = _get(db, key)
    if s is None:
        return enc.ZERO
    before = len(s)
    s.difference_update(argv[2:])
    removed = before - len(s)
    if removed:
        c.server.notify(nt.SET, b"srem", key, db.index)
        _modified(db, key, s)
        c.server.dirty += removed
    return enc.integer(removed)


@handler("smove")
def smove(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    src_key, dst_key, member = argv[1], argv[2], argv[3]
    src = db.lookup(src_key)
    dst = db.lookup(dst_key)
    if src is None:
        return enc.ZERO
    if src.__class__ is not set or (dst is not None and dst.__class__ is not set):
        raise CommandError(WRONGTYPE)
    if src is dst:
        return enc.ONE if member in src else enc.ZERO
    if member not in src:
        return enc.ZERO
    src.remove(member)
    srv = c.server
    srv.notify(nt.SET, b"srem", src_key, db.index)
    _modified(db, src_key, src)
    srv.dirty += 1
    if dst is None:
        db.add_new(dst_key, {member})
    elif _add(dst, (member,), srv.rng):
        if db.watched:
            db.touch(dst_key)
    else:
        return enc.ONE  # already a member of the destination
    srv.dirty += 1
    srv.notify(nt.SET, b"sadd", dst_key, db.index)
    return enc.ONE


def _srem_effects(c: Client, key: bytes, popped: list[bytes]) -> list[list[bytes]]:
    """SPOP with count as Redis 7.2 propagates it: SREMs of at most SREM_BATCH_MEMBERS
    members, in MULTI/EXEC when more than one (EXEC already wraps a transaction's)."""
    n = SREM_BATCH_MEMBERS
    effects = [[b"SREM", key, *popped[i : i + n]] for i in range(0, len(popped), n)]
    if len(effects) > 1 and not c.server.in_exec:
        effects = [[b"MULTI"], *effects, [b"EXEC"]]
    return effects


def _spop_count(c: Client, key: bytes, arg: bytes) -> bytes:
    count = _positive(arg, _POSITIVE)
    db = c.db
    s = _get(db, key)
    p = c.p
    if s is None or count == 0:
        empty: bytes = p.set_header(0)
        return empty
    if count >= len(s):  # the whole set
        reply = _set_reply(c, s)
        c.server.notify(nt.SET, b"spop", key, db.index)
        db.delete(key)
        c.server.notify(nt.GENERIC, b"del", key, db.index)
        lazy = c.server.config.get("lazyfree-lazy-server-del")
        c.prop = [[b"UNLINK" if lazy else b"DEL", key]]
        c.server.dirty += len(s)
        return reply
    rng = c.server.rng
    if len(s) > DECK_MIN_MEMBERS and count * 2 <= len(s):
        popped = [_draw(s, rng) for _ in range(count)]
    else:
        popped = rng.sample(list(s), count)
        s.difference_update(popped)
    if db.watched:
        db.touch(key)
    c.server.notify(nt.SET, b"spop", key, db.index)
    c.prop = _srem_effects(c, key, popped)
    c.server.dirty += count
    header: bytes = p.set_header(count)
    return header + _bulks(popped)


@handler("spop")
def spop(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) == 3:
        return _spop_count(c, argv[1], argv[2])
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    db = c.db
    key = argv[1]
    s = _get(db, key)
    if s is None:
        null: bytes = c.p.null
        return null
    m = _draw(s, c.server.rng)
    c.server.notify(nt.SET, b"spop", key, db.index)
    _modified(db, key, s)
    c.prop = [[b"SREM", key, m]]
    c.server.dirty += 1
    return enc.bulk(m)


# -- reads -------------------------------------------------------------------------------


@handler("sismember")
def sismember(c: Client, argv: list[bytes]) -> bytes:
    s = _read(c, argv[1])
    return enc.ONE if s is not None and argv[2] in s else enc.ZERO


@handler("smismember")
def smismember(c: Client, argv: list[bytes]) -> bytes:
    s = _read(c, argv[1]) or ()
    return b"*%d\r\n" % (len(argv) - 2) + b"".join(
        [enc.ONE if m in s else enc.ZERO for m in argv[2:]]
    )


@handler("scard")
def scard(c: Client, argv: list[bytes]) -> bytes:
    s = _read(c, argv[1])
    return enc.integer(0 if s is None else len(s))


@handler("smembers")
def smembers(c: Client, argv: list[bytes]) -> bytes:
    s = _read(c, argv[1])
    return _set_reply(c, () if s is None else s)


def _srandmember_count(c: Client, key: bytes, arg: bytes) -> bytes:
    count = arg_int(arg)
    if count == LLONG_MIN:  # Redis takes the count in -LONG_MAX..LONG_MAX
        raise CommandError(_COUNT_RANGE)
    s = _read(c, key)
    if s is None or count == 0:
        return enc.EMPTY_ARRAY
    rng = c.server.rng
    if count < 0:
        k = -count
        if k > RANDMEMBER_PICKS_MAX:
            raise CommandError(
                "ERR value is out of range, a negative count must be at least "
                f"-{RANDMEMBER_PICKS_MAX}"
            )
        if len(s) > DECK_MIN_MEMBERS and k * 4 < len(s):
            return enc.bulk_array([_peek(s, rng) for _ in range(k)])
        return enc.bulk_array(rng.choices(list(s), k=k))
    if count >= len(s):
        return enc.bulk_array(_in_order(c, s))  # the whole set, in Redis's order
    return enc.bulk_array(_distinct(s, count, rng))


@handler("srandmember")
def srandmember(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) == 3:
        return _srandmember_count(c, argv[1], argv[2])
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    s = _read(c, argv[1])
    if s is None:
        null: bytes = c.p.null
        return null
    return enc.bulk(_peek(s, c.server.rng))


# -- the algebra ---------------------------------------------------------------------------


def _sources(c: Client, keys: list[bytes]) -> list[Members | None]:
    """Every key looked up and type-checked before any result (as Redis)."""
    return [_read(c, k) for k in keys]


def _present(sets: list[Members | None]) -> list[Members] | None:
    """The sets smallest first, or None when a key is missing (an empty intersection)."""
    present = [s for s in sets if s is not None]
    if len(present) < len(sets):
        return None
    present.sort(key=len)
    return present


def _inter(sets: list[Members | None]) -> Members:
    present = _present(sets)
    if present is None:
        return set()
    return present[0].intersection(*present[1:])


def _union(sets: list[Members | None]) -> Members:
    return set().union(*[s for s in sets if s is not None])


def _diff(sets: list[Members | None]) -> Members:
    first = sets[0]
    if first is None:
        return set()
    return first.difference(*[s for s in sets[1:] if s is not None])


def _store(c: Client, dst: bytes, result: Members, event: bytes) -> bytes:
    """STORE forms: replace ``dst`` (TTL dropped) or delete it when ``result`` is empty."""
    db = c.db
    if result:
        db.set(dst, result)
        c.server.dirty += 1
        c.server.notify(nt.SET, event, dst, db.index)
        return enc.integer(len(result))
    if db.delete(dst):
        c.server.dirty += 1
        c.server.notify(nt.GENERIC, b"del", dst, db.index)
    return enc.ZERO


@handler("sinter")
def sinter(c: Client, argv: list[bytes]) -> bytes:
    return _set_reply(c, _inter(_sources(c, argv[1:])))


@handler("sunion")
def sunion(c: Client, argv: list[bytes]) -> bytes:
    return _set_reply(c, _union(_sources(c, argv[1:])))


@handler("sdiff")
def sdiff(c: Client, argv: list[bytes]) -> bytes:
    return _set_reply(c, _diff(_sources(c, argv[1:])))


@handler("sinterstore")
def sinterstore(c: Client, argv: list[bytes]) -> bytes:
    return _store(c, argv[1], _inter(_sources(c, argv[2:])), b"sinterstore")


@handler("sunionstore")
def sunionstore(c: Client, argv: list[bytes]) -> bytes:
    return _store(c, argv[1], _union(_sources(c, argv[2:])), b"sunionstore")


@handler("sdiffstore")
def sdiffstore(c: Client, argv: list[bytes]) -> bytes:
    return _store(c, argv[1], _diff(_sources(c, argv[2:])), b"sdiffstore")


@handler("sintercard")
def sintercard(c: Client, argv: list[bytes]) -> bytes:
    numkeys = _positive(argv[1], _NUMKEYS, 1)
    if numkeys > len(argv) - 2:
        raise CommandError(_NUMKEYS_ARGS)
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].lower() == b"limit" and i + 1 < len(argv):
            limit = _positive(argv[i + 1], _LIMIT)
            i += 2
        else:
            raise CommandError(SYNTAX)
    present = _present(_sources(c, argv[2 : 2 + numkeys]))
    if present is None:
        return enc.ZERO
    if limit == 0:
        return enc.integer(len(present[0].intersection(*present[1:])))
    rest = present[1:]
    n = 0
    for m in present[0]:
        if all(m in o for o in rest):
            n += 1
            if n >= limit:
                break
    return enc.integer(n)


# -- SSCAN ---------------------------------------------------------------------------------


def _scan_page(c: Client, s: Members, cursor: int, count: int) -> tuple[int, list[bytes]]:
    """(next cursor, members) of one SSCAN call on a large ``s``; members may be gone."""
    return c.server.scan_snapshots.page(
        s, cursor, count, lambda start, stop: list(islice(s, start, stop))
    )


@handler("sscan")
def sscan(c: Client, argv: list[bytes]) -> bytes:
    cursor = parse_scan_cursor(argv[2])
    s = _read(c, argv[1])
    if s is None:
        return _EMPTY_SCAN
    match, count, _ = parse_scan_options(argv, 3, False)
    if _encoding(s, _limits(c)) != b"hashtable":  # Redis: intset / listpack whole
        nxt, page = 0, list(_in_order(c, s))
    else:
        nxt, page = _scan_page(c, s, cursor, count)
    out = [m for m in page if m in s and (match is None or match(m))]
    return b"*2\r\n" + enc.bulk(b"%d" % nxt) + enc.bulk_array(out)
