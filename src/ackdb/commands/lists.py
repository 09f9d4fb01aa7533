"""List commands: pushes, pops, ranges, LPOS, LMOVE / RPOPLPUSH and LMPOP (non-blocking).

Owns: Redis 7.2 semantics, replies (RESP2 and RESP3) and error texts of the list family,
the effects its writes propagate, the keyspace hit/miss counts of its reads, and OBJECT
ENCODING of a list. Never touches the network, never blocks: BLPOP, BRPOP, BLMOVE,
BRPOPLPUSH and BLMPOP belong to the blocking core, which calls the helpers below
(``holds_list``, ``pop_from``, ``move``, ``mpop``, ``parse_end``, ``parse_mpop``,
``mpop_reply``, ``mpop_effect``) so that both variants share one implementation.

A list is a ``collections.deque[bytes]``: O(1) at both ends; LINDEX / LSET walk from the
nearer end (O(N/64)), LINSERT / LREM / LPOS are O(N) as in Redis. A list emptied by any
command is deleted from the keyspace at once; an in-place change touches WATCHers.

Order of checks follows Redis: argument errors Redis finds before the lookup (LPOP's count,
LRANGE / LTRIM / LREM's integers, LINSERT's and LMOVE's BEFORE|AFTER / LEFT|RIGHT, every
LPOS and LMPOP option) come before WRONGTYPE; LINDEX and LSET look the key up first.

Effects: every write propagates as sent, except LMPOP, which Redis 7.2 rewrites as
``LPOP|RPOP key <popped count>``. ``server.dirty`` grows by elements pushed / popped /
removed / trimmed, 1 for LSET, LINSERT, LMOVE; a write that changed nothing adds 0 and is
not propagated (LTRIM that trims nothing, LREM that finds nothing, LINSERT without pivot).

Keyspace events (Redis 7.2 names and order): ``lpush`` / ``rpush``, ``lpop`` / ``rpop``
(one per command whatever the count), ``lset``, ``linsert``, ``lrem``, ``ltrim`` (even
when nothing was trimmed), each followed by ``del`` when the list was emptied; LMOVE and
its family: the push event on the destination (after ``new`` when created), then the pop
event on the source, then its ``del``. The helpers take a database, whose owner is the
server: they publish through ``db.owner.notify``.

OBJECT ENCODING (Redis 7.2 has listpack-encoded small lists, 7.0 always says quicklist):
ackdb answers from the current contents, as if they were written afresh: ``listpack`` when
one listpack holding them stays within ``list-max-listpack-size`` (a negative value is a
byte limit: -1 4 KiB ... -5 64 KiB; a positive one an element count, with the 8 KiB safety
limit), else ``quicklist``. The listpack size is computed entry by entry (Redis's integer
and string entry encodings and back-lengths). Accepted difference: Redis's encoding
remembers history (a list converted to quicklist goes back to listpack only once it shrinks
to half the limit), so a list that grew past the limit and shrank a little reports
``listpack`` here and ``quicklist`` in Redis.
"""

from __future__ import annotations

import sys
from collections import deque
from enum import IntEnum
from itertools import islice
from typing import Any

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace.db import Database
from ..keyspace.numbers import parse_int
from ..keyspace.types import register
from ..resp import encoder as enc
from .base import LLONG_MIN, SYNTAX, WRONGTYPE, CommandError, arg_int, get_typed, read_typed
from .table import handler

List = deque[bytes]

_POSITIVE = "ERR value is out of range, must be positive"
_RANK_ZERO = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
_RANK_RANGE = (
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
)
_NUMKEYS = "ERR numkeys should be greater than 0"
_MPOP_COUNT = "ERR count should be greater than 0"


class End(IntEnum):
    """Which end of a list: LEFT is the head (index 0), RIGHT the tail."""

    LEFT = 0
    RIGHT = 1


_END_NAMES = {b"left": End.LEFT, b"right": End.RIGHT}
_POP_NAMES = {End.LEFT: b"LPOP", End.RIGHT: b"RPOP"}
_POP_EVENTS = {End.LEFT: b"lpop", End.RIGHT: b"rpop"}
_PUSH_EVENTS = {End.LEFT: b"lpush", End.RIGHT: b"rpush"}


# -- OBJECT ENCODING ---------------------------------------------------------------------

LISTPACK_HEADER_BYTES = 6  # total bytes (4) + element count (2)
LISTPACK_END_BYTES = 1
# Redis quicklist: a node of a count-limited list never exceeds this many bytes.
LISTPACK_SAFETY_BYTES = 8192
# list-max-listpack-size -1 .. -5: bytes per node.
LISTPACK_FILL_BYTES = (4096, 8192, 16384, 32768, 65536)


def listpack_entry_bytes(element: bytes) -> int:
    """Bytes one element takes in a listpack: encoding + data + back-length. Elements
    that are canonical int64 decimal text are stored as integers, as Redis does."""
    n = len(element)
    v = parse_int(element) if n <= 20 else None
    if v is not None:
        if 0 <= v <= 127:
            size = 1
        elif -4096 <= v <= 4095:
            size = 2
        elif -32768 <= v <= 32767:
            size = 3
        elif -(1 << 23) <= v < 1 << 23:
            size = 4
        elif -(1 << 31) <= v < 1 << 31:
            size = 5
        else:
            size = 9
    elif n < 64:
        size = 1 + n
    elif n < 4096:
        size = 2 + n
    else:
        size = 5 + n
    if size <= 127:
        return size + 1
    if size < 16383:
        return size + 2
    if size < 2097151:
        return size + 3
    return size + (4 if size < 268435455 else 5)


def list_encoding(value: List, limits: dict[str, int]) -> bytes:
    """OBJECT ENCODING of a list (see the module docstring)."""
    fill = limits["list-max-listpack-size"]
    if fill >= 0:
        if len(value) > max(fill, 1):
            return b"quicklist"
        limit = LISTPACK_SAFETY_BYTES
    else:
        limit = LISTPACK_FILL_BYTES[min(-fill, len(LISTPACK_FILL_BYTES)) - 1]
    total = LISTPACK_HEADER_BYTES + LISTPACK_END_BYTES
    for element in value:  # every entry takes >= 2 bytes: at most limit / 2 iterations
        total += listpack_entry_bytes(element)
        if total > limit:
            return b"quicklist"
    return b"listpack"


register(deque, b"list", list_encoding)


# -- keyspace helpers (shared with the blocking variants) ---------------------------------


def get_list(db: Database, key: bytes) -> List | None:
    """A write lookup: the list at ``key``, None when absent, WRONGTYPE otherwise."""
    return get_typed(db, key, deque)  # type: ignore[no-any-return]


def holds_list(db: Database, key: bytes) -> bool:
    """Whether ``key`` currently holds a (necessarily non-empty) list."""
    return db.lookup(key).__class__ is deque


def _read(c: Client, key: bytes) -> List | None:
    """A read lookup (counts a keyspace hit or miss): see ``base.read_typed``."""
    return read_typed(c, key, deque)  # type: ignore[no-any-return]


# ``db: Any`` in the helpers that send events through ``db.owner.notify``: the owner is the
# engine, and the keyspace's ``KeyspaceOwner`` port does not declare ``notify``.
def _changed(db: Any, key: bytes, lst: List) -> None:
    """After removing elements (and their event): delete an emptied list, else tell
    WATCHers."""
    if not lst:
        db.delete(key)  # touches WATCHers itself
        db.owner.notify(nt.GENERIC, b"del", key, db.index)
    elif db.watched:
        db.touch(key)


def parse_end(arg: bytes) -> End:
    """LEFT or RIGHT, any case; anything else is a syntax error."""
    end = _END_NAMES.get(arg.lower())
    if end is None:
        raise CommandError(SYNTAX)
    return end


def pop_from(db: Any, key: bytes, where: End, count: int) -> list[bytes] | None:
    """Pop up to ``count`` (>= 1) elements from one end of the list at ``key``, in pop
    order; None when the key is absent; WRONGTYPE when it is not a list. The caller adds
    the number popped to ``server.dirty``."""
    assert count >= 1
    lst = get_list(db, key)
    if lst is None:
        return None
    pop = lst.popleft if where is End.LEFT else lst.pop
    out = [pop()] if count == 1 else [pop() for _ in range(min(count, len(lst)))]
    db.owner.notify(nt.LIST, _POP_EVENTS[where], key, db.index)
    _changed(db, key, lst)
    return out


def move(db: Any, src: bytes, dst: bytes, wherefrom: End, whereto: End) -> bytes | None:
    """LMOVE: pop from ``src``, push onto ``dst`` (created if absent); the element moved,
    or None when ``src`` is absent (``dst`` is then not looked at). Both keys are type
    checked before anything changes. ``src == dst`` rotates. The caller adds 1 to
    ``server.dirty`` when an element moved."""
    s = get_list(db, src)
    if s is None:
        return None
    d = get_list(db, dst)
    x = s.popleft() if wherefrom is End.LEFT else s.pop()
    if d is None:
        db.add_new(dst, deque((x,)))
    else:
        if whereto is End.LEFT:
            d.appendleft(x)
        else:
            d.append(x)
        if db.watched:
            db.touch(dst)
    notify = db.owner.notify
    notify(nt.LIST, _PUSH_EVENTS[whereto], dst, db.index)
    notify(nt.LIST, _POP_EVENTS[wherefrom], src, db.index)
    _changed(db, src, s)
    return x


def parse_mpop(argv: list[bytes], numkeys_idx: int) -> tuple[list[bytes], End, int]:
    """LMPOP / BLMPOP arguments from ``argv[numkeys_idx]`` on: numkeys key... LEFT|RIGHT
    [COUNT n] -> (keys, end, count), with Redis's errors in Redis's order."""
    numkeys = parse_int(argv[numkeys_idx])
    if numkeys is None or numkeys < 1:
        raise CommandError(_NUMKEYS)
    where_idx = numkeys_idx + numkeys + 1
    if where_idx >= len(argv):
        raise CommandError(SYNTAX)
    where = parse_end(argv[where_idx])
    count = -1
    j = where_idx + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            parsed = parse_int(argv[j + 1])
            if parsed is None or parsed < 1:
                raise CommandError(_MPOP_COUNT)
            count = parsed
            j += 2
        else:
            raise CommandError(SYNTAX)
    return argv[numkeys_idx + 1 : where_idx], where, max(count, 1)


def mpop(
    db: Database, keys: list[bytes], where: End, count: int
) -> tuple[bytes, list[bytes]] | None:
    """Pop up to ``count`` elements from the first key of ``keys`` holding a list; keys are
    looked at in order, so a non-list before the first list is WRONGTYPE. The caller adds
    the number popped to ``server.dirty`` and propagates ``mpop_effect``."""
    for key in keys:
        popped = pop_from(db, key, where, count)
        if popped is not None:
            return key, popped
    return None


def mpop_reply(key: bytes, elements: list[bytes]) -> bytes:
    """[key, [elements...]] (LMPOP, BLMPOP; the same shape in RESP2 and RESP3)."""
    return b"*2\r\n" + enc.bulk(key) + enc.bulk_array(elements)


def mpop_effect(key: bytes, where: End, popped: int) -> list[bytes]:
    """What a replica runs for an [B]LMPOP that popped ``popped`` elements (Redis 7.2)."""
    return [_POP_NAMES[where], key, b"%d" % popped]


def _range(lst: List, start: int, end: int) -> list[bytes]:
    """Elements start..end inclusive, negative indexes from the tail (LRANGE rules)."""
    n = len(lst)
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return []
    if end >= n:
        end = n - 1
    if n - 1 - end < start:  # nearer the tail: walk from there
        out = list(islice(reversed(lst), n - 1 - end, n - start))
        out.reverse()
        return out
    return list(islice(lst, start, end + 1))


# -- pushes ------------------------------------------------------------------------------


def _push(c: Client, argv: list[bytes], where: End, only_existing: bool) -> bytes:
    db = c.db
    key = argv[1]
    lst = db.lookup(key) if db.expires else db.data.get(key)
    if lst.__class__ is deque:
        if len(argv) == 3:
            if where is End.LEFT:
                lst.appendleft(argv[2])
            else:
                lst.append(argv[2])
        elif where is End.LEFT:
            lst.extendleft(islice(argv, 2, None))
        else:
            lst.extend(islice(argv, 2, None))
        if db.watched:
            db.touch(key)
    elif lst is None:
        if only_existing:
            return enc.ZERO
        lst = deque(islice(argv, 2, None))
        if where is End.LEFT:
            lst.reverse()
        db.add_new(key, lst)
    else:
        raise CommandError(WRONGTYPE)
    c.server.dirty += len(argv) - 2
    c.server.notify(nt.LIST, _PUSH_EVENTS[where], key, db.index)
    return enc.integer(len(lst))


_PUSH_COMPLEXITY = (
    "O(1) for each element added, so O(N) to add N elements when the command is called "
    "with multiple arguments."
)


@handler("lpush")
def lpush(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) == 3:  # fast path: one element onto an existing list
        db = c.db
        lst = db.lookup(argv[1]) if db.expires else db.data.get(argv[1])
        if lst.__class__ is deque:
            lst.appendleft(argv[2])
            if db.watched:
                db.touch(argv[1])
            srv = c.server
            srv.dirty += 1
            if srv.notifier.flags & nt.LIST:
                srv.notify(nt.LIST, b"lpush", argv[1], db.index)
            return enc.integer(len(lst))
    return _push(c, argv, End.LEFT, False)


@handler("rpush")
def rpush(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) == 3:  # fast path: one element onto an existing list
        db = c.db
        lst = db.lookup(argv[1]) if db.expires else db.data.get(argv[1])
        if lst.__class__ is deque:
            lst.append(argv[2])
            if db.watched:
                db.touch(argv[1])
            srv = c.server
            srv.dirty += 1
            if srv.notifier.flags & nt.LIST:
                srv.notify(nt.LIST, b"rpush", argv[1], db.index)
            return enc.integer(len(lst))
    return _push(c, argv, End.RIGHT, False)


@handler("lpushx")
def lpushx(c: Client, argv: list[bytes]) -> bytes:
    return _push(c, argv, End.LEFT, True)


@handler("rpushx")
def rpushx(c: Client, argv: list[bytes]) -> bytes:
    return _push(c, argv, End.RIGHT, True)


# -- pops --------------------------------------------------------------------------------


def _pop_one(c: Client, key: bytes, lst: Any) -> bytes:
    """LPOP / RPOP without count, when ``lst`` (the key's value) is not a list."""
    if lst is None:
        return c.p.null
    raise CommandError(WRONGTYPE)


def _pop(c: Client, argv: list[bytes], where: End) -> bytes:
    """LPOP / RPOP with a count (or a wrong number of arguments)."""
    db = c.db
    key = argv[1]
    if len(argv) > 3:
        name = "lpop" if where is End.LEFT else "rpop"
        raise CommandError(f"ERR wrong number of arguments for '{name}' command")
    count = parse_int(argv[2])
    if count is None or count < 0:
        raise CommandError(_POSITIVE)
    if count == 0:
        lst = get_list(db, key)
        return c.p.null_array if lst is None else enc.EMPTY_ARRAY
    popped = pop_from(db, key, where, count)
    if popped is None:
        return c.p.null_array
    c.server.dirty += len(popped)
    return enc.bulk_array(popped)


_POP_COMPLEXITY = "O(N) where N is the number of elements returned"


@handler("lpop")
def lpop(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) != 2:
        return _pop(c, argv, End.LEFT)
    db = c.db
    key = argv[1]
    lst = db.lookup(key) if db.expires else db.data.get(key)
    if lst.__class__ is not deque:
        return _pop_one(c, key, lst)
    x = lst.popleft()
    srv = c.server
    srv.dirty += 1
    if srv.notifier.flags:
        srv.notify(nt.LIST, b"lpop", key, db.index)
        _changed(db, key, lst)
    elif not lst:
        db.delete(key)
    elif db.watched:
        db.touch(key)
    return b"$%d\r\n%s\r\n" % (len(x), x)


@handler("rpop")
def rpop(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) != 2:
        return _pop(c, argv, End.RIGHT)
    db = c.db
    key = argv[1]
    lst = db.lookup(key) if db.expires else db.data.get(key)
    if lst.__class__ is not deque:
        return _pop_one(c, key, lst)
    x = lst.pop()
    srv = c.server
    srv.dirty += 1
    if srv.notifier.flags:
        srv.notify(nt.LIST, b"rpop", key, db.index)
        _changed(db, key, lst)
    elif not lst:
        db.delete(key)
    elif db.watched:
        db.touch(key)
    return b"$%d\r\n%s\r\n" % (len(x), x)


@handler("lmpop")
def lmpop(c: Client, argv: list[bytes]) -> bytes:
    keys, where, count = parse_mpop(argv, 1)
    found = mpop(c.db, keys, where, count)
    if found is None:
        return c.p.null_array
    key, popped = found
    c.server.dirty += len(popped)
    c.prop = [mpop_effect(key, where, len(popped))]
    return mpop_reply(key, popped)


def _move(c: Client, argv: list[bytes], wherefrom: End, whereto: End) -> bytes:
    x = move(c.db, argv[1], argv[2], wherefrom, whereto)
    if x is None:
        return c.p.null
    c.server.dirty += 1
    return enc.bulk(x)


@handler("lmove")
def lmove(c: Client, argv: list[bytes]) -> bytes:
    wherefrom = parse_end(argv[3])
    whereto = parse_end(argv[4])
    return _move(c, argv, wherefrom, whereto)


@handler("rpoplpush")
def rpoplpush(c: Client, argv: list[bytes]) -> bytes:
    return _move(c, argv, End.RIGHT, End.LEFT)


# -- reads -------------------------------------------------------------------------------


@handler("llen")
def llen(c: Client, argv: list[bytes]) -> bytes:
    lst = _read(c, argv[1])
    return enc.integer(0 if lst is None else len(lst))


@handler("lrange")
def lrange(c: Client, argv: list[bytes]) -> bytes:
    start = arg_int(argv[2])
    end = arg_int(argv[3])
    lst = _read(c, argv[1])
    if lst is None:
        return enc.EMPTY_ARRAY
    return enc.bulk_array(_range(lst, start, end))


def _index(lst: List, index: int) -> int | None:
    """A list index (negative from the tail) as a position in ``lst``, or None."""
    n = len(lst)
    if index < 0:
        index += n
    return index if 0 <= index < n else None


@handler("lindex")
def lindex(c: Client, argv: list[bytes]) -> bytes:
    lst = _read(c, argv[1])
    if lst is None:
        return c.p.null
    i = _index(lst, arg_int(argv[2]))
    return c.p.null if i is None else enc.bulk(lst[i])


def _lpos_options(argv: list[bytes]) -> tuple[int, int, int]:
    """RANK, COUNT (-1: not given) and MAXLEN of LPOS; later options win."""
    rank, count, maxlen = 1, -1, 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        if j + 1 >= len(argv) or opt not in (b"rank", b"count", b"maxlen"):
            raise CommandError(SYNTAX)
        arg = argv[j + 1]
        if opt == b"rank":
            rank = arg_int(arg)
            if rank == LLONG_MIN:  # Redis 7.2: -LONG_MAX .. LONG_MAX
                raise CommandError(_RANK_RANGE)
            if rank == 0:
                raise CommandError(_RANK_ZERO)
        else:
            v = parse_int(arg)
            if v is None or v < 0:
                raise CommandError(f"ERR {opt.decode().upper()} can't be negative")
            if opt == b"count":
                count = v
            else:
                maxlen = v
        j += 2
    return rank, count, maxlen


@handler("lpos")
def lpos(c: Client, argv: list[bytes]) -> bytes:
    rank, count, maxlen = _lpos_options(argv)
    lst = _read(c, argv[1])
    if lst is None:
        return c.p.null if count == -1 else enc.EMPTY_ARRAY
    element = argv[2]
    scan = iter(lst) if rank > 0 else reversed(lst)
    if maxlen:
        scan = islice(scan, maxlen)
    found = (i for i, x in enumerate(scan) if x == element)
    skip = abs(rank) - 1
    stop = None if count <= 0 else min(skip + count, sys.maxsize)
    hits = list(islice(found, skip, skip + 1 if count == -1 else stop))
    if rank < 0:
        last = len(lst) - 1
        hits = [last - i for i in hits]
    if count == -1:
        return enc.integer(hits[0]) if hits else c.p.null
    return enc.array([enc.integer(i) for i in hits])


# -- in-place writes ---------------------------------------------------------------------


@handler("lset")
def lset(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    lst = get_list(db, argv[1])
    if lst is None:
        raise CommandError("ERR no such key")
    i = _index(lst, arg_int(argv[2]))
    if i is None:
        raise CommandError("ERR index out of range")
    lst[i] = argv[3]
    if db.watched:
        db.touch(argv[1])
    c.server.dirty += 1
    c.server.notify(nt.LIST, b"lset", argv[1], db.index)
    return enc.OK


@handler("linsert")
def linsert(c: Client, argv: list[bytes]) -> bytes:
    side = argv[2].lower()
    if side not in (b"before", b"after"):
        raise CommandError(SYNTAX)
    db = c.db
    lst = get_list(db, argv[1])
    if lst is None:
        return enc.ZERO
    try:
        i = lst.index(argv[3])
    except ValueError:
        return enc.integer(-1)
    lst.insert(i + 1 if side == b"after" else i, argv[4])
    if db.watched:
        db.touch(argv[1])
    c.server.dirty += 1
    c.server.notify(nt.LIST, b"linsert", argv[1], db.index)
    return enc.integer(len(lst))


def _without(lst: List, element: bytes, limit: int, from_tail: bool) -> list[bytes]:
    """The elements of ``lst`` minus the first ``limit`` copies of ``element`` counted from
    the head (or the tail)."""
    kept: list[bytes] = []
    keep = kept.append
    for x in reversed(lst) if from_tail else lst:
        if limit and x == element:
            limit -= 1
        else:
            keep(x)
    if from_tail:
        kept.reverse()
    return kept


@handler("lrem")
def lrem(c: Client, argv: list[bytes]) -> bytes:
    limit = arg_int(argv[2])
    db = c.db
    key, element = argv[1], argv[3]
    lst = get_list(db, key)
    if lst is None:
        return enc.ZERO
    present = lst.count(element)
    if not present:
        return enc.ZERO
    removed = present if limit == 0 else min(abs(limit), present)
    if removed == 1 and limit >= 0:
        lst.remove(element)  # the first copy, in C
    else:
        kept = _without(lst, element, removed, limit < 0)
        lst.clear()
        lst.extend(kept)
    c.server.notify(nt.LIST, b"lrem", key, db.index)
    _changed(db, key, lst)
    c.server.dirty += removed
    return enc.integer(removed)


@handler("ltrim")
def ltrim(c: Client, argv: list[bytes]) -> bytes:
    start = arg_int(argv[2])
    end = arg_int(argv[3])
    db = c.db
    key = argv[1]
    lst = get_list(db, key)
    if lst is None:
        return enc.OK
    n = len(lst)
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        left, right = n, 0
    else:
        left, right = start, n - 1 - min(end, n - 1)
    c.server.notify(nt.LIST, b"ltrim", key, db.index)  # even when nothing is trimmed
    if left + right == n:
        db.delete(key)
        c.server.notify(nt.GENERIC, b"del", key, db.index)
    else:
        if left + right > n // 2:  # keep the smaller part: rebuild from it
            kept = _range(lst, start, end)
            lst.clear()
            lst.extend(kept)
        else:
            for _ in range(left):
                lst.popleft()
            for _ in range(right):
                lst.pop()
        if db.watched:  # Redis signals the key even when nothing was trimmed
            db.touch(key)
    c.server.dirty += left + right
    return enc.OK
