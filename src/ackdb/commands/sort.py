"""SORT and SORT_RO.

Owns: Redis 7.0's SORT semantics (sort.c): the option grammar (ASC / DESC / ALPHA /
LIMIT / STORE / BY / GET, later options winning, STORE refused by SORT_RO), the weights
(the element itself, or a key or hash field named by a ``*`` pattern, ``->`` for a hash
field; a missing weight is 0, or sorts first under ALPHA), the "nosort" fast path of a
BY without ``*`` (lists and sorted sets keep their order, a set is sorted ALPHA when the
result is STOREd so replicas agree), numeric ties broken by comparing the elements' bytes,
GET ``#`` and patterns, and STORE (a list, ``sortstore``; an empty result deletes the
destination, ``del``). Never touches the network.

Differences: ALPHA compares bytes (Redis uses strcoll, which is a byte comparison in the
C locale redis-server runs under unless the environment sets another); without STORE, a
set sorted "nosort" comes back in ackdb's own set order, as Redis's comes in its hash
table's order (neither is defined); ALPHA with BY keeps equal weights in element order
where Redis's qsort leaves them in an undefined one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace.numbers import parse_float
from ..keyspace.zset import ZSet
from ..resp import encoder as enc
from .base import SYNTAX, WRONGTYPE, CommandError, arg_int, read_key
from .table import handler

_C_SPACE = b" \t\n\v\f\r"
_NOT_DOUBLE = "ERR One or more scores can't be converted into double"


@dataclass(slots=True)
class _Options:
    desc: bool = False
    alpha: bool = False
    start: int = 0
    count: int = -1
    store: bytes | None = None
    by: bytes | None = None
    dontsort: bool = False
    gets: list[bytes] = field(default_factory=list)


def _parse(argv: list[bytes], readonly: bool) -> _Options:
    o = _Options()
    j, n = 2, len(argv)
    while j < n:
        word = argv[j].lower()
        left = n - j - 1
        if word == b"asc":
            o.desc = False
        elif word == b"desc":
            o.desc = True
        elif word == b"alpha":
            o.alpha = True
        elif word == b"limit" and left >= 2:
            o.start = arg_int(argv[j + 1])
            o.count = arg_int(argv[j + 2])
            j += 2
        elif word == b"store" and left >= 1 and not readonly:
            o.store = argv[j + 1]
            j += 1
        elif word == b"by" and left >= 1:
            o.by = argv[j + 1]
            # Sticky: a later BY with a pattern does not bring sorting back (sort.c).
            o.dontsort = o.dontsort or b"*" not in _cstr(o.by)
            j += 1
        elif word == b"get" and left >= 1:
            o.gets.append(argv[j + 1])
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    return o


def _cstr(b: bytes) -> bytes:
    """``b`` as C string functions see it: up to its first NUL."""
    nul = b.find(b"\0")
    return b if nul < 0 else b[:nul]


def lookup_by_pattern(c: Client, pattern: bytes, subst: bytes) -> bytes | None:
    """Redis's lookupKeyByPattern: ``#`` is the element; else the string at the key the
    pattern names with its first ``*`` replaced by the element, or the hash field after
    ``->``; None when absent, of another type, or the pattern has no ``*``."""
    if pattern == b"#":
        return subst
    spat = _cstr(pattern)
    star = spat.find(b"*")
    if star < 0:
        return None
    arrow = spat.find(b"->", star + 1)
    fieldname = None
    if arrow >= 0 and arrow + 2 < len(spat):
        fieldname = pattern[arrow + 2 :]
        post = pattern[star + 1 : arrow]
    else:
        post = pattern[star + 1 :]
    v = read_key(c, pattern[:star] + subst + post)
    if v is None:
        return None
    if fieldname is not None:
        return v.get(fieldname) if v.__class__ is dict else None
    return v if v.__class__ is bytes else None


def _score(v: bytes) -> float:
    """strtod over the whole value (leading C whitespace allowed, "" is 0), as SORT's
    numeric weights are parsed; the error for anything else, overflow and NaN."""
    if not v:
        return 0.0
    x = parse_float(v.lstrip(_C_SPACE))
    if x is None:
        raise CommandError(_NOT_DOUBLE)
    return x


def _elements(v: Any, o: _Options, lo: int, hi: int) -> list[bytes]:
    """The elements to sort: with nosort, a list's or sorted set's range [lo, hi] in
    their order (reversed by DESC); else all of them."""
    if o.dontsort and v.__class__ is deque:
        items = list(reversed(v)) if o.desc else list(v)
        return items[lo : hi + 1]
    if o.dontsort and v.__class__ is ZSet:
        if o.desc:  # ranks counted from the highest score
            lo, hi = len(v) - 1 - hi, len(v) - 1 - lo
        return [m for _, m, _ in v.entries(lo, hi + 1, o.desc)]
    if v.__class__ is ZSet:
        return list(v.member_names())
    return list(v)


def _bounds(o: _Options, size: int) -> tuple[int, int]:
    """sort.c's LIMIT arithmetic: the inclusive [start, end] of the output."""
    start = min(max(o.start, 0), size)
    count = min(max(o.count, -1), size)
    end = size - 1 if count < 0 else start + count - 1
    if start >= size:
        start, end = size - 1, size - 2
    return start, min(end, size - 1)


def _sorted(c: Client, items: list[bytes], o: _Options) -> list[bytes]:
    by = o.by
    if o.alpha:
        if by is None:
            return sorted(items, reverse=o.desc)
        weights = [lookup_by_pattern(c, by, e) for e in items]
        ranked = sorted(
            range(len(items)),
            key=lambda i: (weights[i] is not None, weights[i] or b""),
            reverse=o.desc,
        )
        return [items[i] for i in ranked]
    scores: list[float] = []
    bad = False
    for e in items:
        w = e if by is None else lookup_by_pattern(c, by, e)
        if w is None:
            scores.append(0.0)
            continue
        try:
            scores.append(_score(w))
        except CommandError:
            bad = True
            scores.append(0.0)
    if bad:
        raise CommandError(_NOT_DOUBLE)
    ranked = sorted(range(len(items)), key=lambda i: (scores[i], items[i]), reverse=o.desc)
    return [items[i] for i in ranked]


def _sort(c: Client, argv: list[bytes], readonly: bool) -> bytes:
    o = _parse(argv, readonly)
    v = read_key(c, argv[1])
    if v is None:
        v = deque()
    elif v.__class__ not in (deque, set, ZSet):
        raise CommandError(WRONGTYPE)
    if o.dontsort and v.__class__ is set and o.store is not None:
        o.dontsort, o.alpha, o.by = False, True, None
    start, end = _bounds(o, len(v))
    if o.dontsort and v.__class__ is not set:
        out = _elements(v, o, start, end)
    else:
        items = _elements(v, o, 0, len(v) - 1)
        if not o.dontsort:
            items = _sorted(c, items, o)
        out = items[start : end + 1] if end >= start else []
    if o.gets:
        got = [lookup_by_pattern(c, g, e) for e in out for g in o.gets]
    else:
        got = list(out)
    if o.store is None:
        return c.p.bulks_or_null(got)
    return _store(c, o.store, got)


def _store(c: Client, key: bytes, got: list[bytes | None]) -> bytes:
    db, srv = c.db, c.server
    if got:
        db.set(key, deque(b"" if g is None else g for g in got))
        srv.notify(nt.LIST, b"sortstore", key, db.index)
        srv.dirty += len(got)
    elif db.lookup(key) is not None and db.delete(key):
        srv.notify(nt.GENERIC, b"del", key, db.index)
        srv.dirty += 1
    return enc.integer(len(got))


@handler("sort")
def sort(c: Client, argv: list[bytes]) -> bytes:
    return _sort(c, argv, False)


@handler("sort_ro")
def sort_ro(c: Client, argv: list[bytes]) -> bytes:
    return _sort(c, argv, True)
