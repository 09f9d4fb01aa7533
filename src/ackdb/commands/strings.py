"""String commands: GET, SET and its family, counters, ranges.

Owns: Redis 7.2 semantics, replies and error texts of the string family, and the effect
each write propagates (relative expiries made absolute, INCRBYFLOAT as SET ... KEEPTTL,
GETDEL as DEL), and the keyspace events of each write (Redis 7.2 names and order: ``set``
then ``expire``, ``incrby``, ``incrbyfloat``, ``append``, ``setrange``, ``del``,
``persist``; ``new`` comes from the keyspace when a key is created). Its read lookups
(GET, MGET, STRLEN, GETRANGE, and the GET part of GETSET, GETDEL, GETEX, SET ... GET)
count keyspace hits and misses and announce ``keymiss`` as Redis's lookupKeyRead does.
Never touches the network.
"""

from __future__ import annotations

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace.numbers import incr_float_text, parse_int
from ..resp import encoder as enc
from .base import (
    LLONG_MAX,
    LLONG_MIN,
    NOT_INTEGER,
    STRING_MAX_BYTES,
    SYNTAX,
    WRONGTYPE,
    CommandError,
    arg_int,
    expire_at_ms,
    get_string,
    read_string,
)
from .table import handler

OK = enc.OK
_TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

_UNITS = {b"ex": (1000, False), b"px": (1, False), b"exat": (1000, True), b"pxat": (1, True)}


@handler("get")
def get(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    v = db.lookup(argv[1]) if db.expires else db.data.get(argv[1])
    if v is None:
        c.server.key_miss(db.index, argv[1])
        return c.p.null
    if v.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    c.server.stat_keyspace_hits += 1
    return b"$%d\r\n%s\r\n" % (len(v), v)


def _parse_set_options(
    argv: list[bytes], start: int, for_set: bool
) -> tuple[str, bool, bytes | None, int, bool, bool]:
    """Redis's extended SET / GETEX options: (condition '', 'nx' or 'xx'; GET; expire unit
    word; index of its argument; KEEPTTL; PERSIST). An option may repeat (the last
    expiry wins) but not conflict."""
    cond = ""
    want_get = keepttl = persist = False
    unit: bytes | None = None
    unit_at = 0
    i = start
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        if for_set and opt == b"nx" and cond != "xx":
            cond = "nx"
        elif for_set and opt == b"xx" and cond != "nx":
            cond = "xx"
        elif for_set and opt == b"get":
            want_get = True
        elif for_set and opt == b"keepttl" and unit is None:
            keepttl = True
        elif not for_set and opt == b"persist" and unit is None:
            persist = True
        elif opt in _UNITS and unit in (None, opt) and not keepttl and not persist and i + 1 < n:
            unit = opt
            unit_at = i + 1
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    return cond, want_get, unit, unit_at, keepttl, persist


@handler("set")
def set_(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    key = argv[1]
    if len(argv) == 3:
        db.set(key, argv[2])
        srv = c.server
        srv.dirty += 1
        if srv.notifier.flags & nt.STRING:
            srv.notify(nt.STRING, b"set", key, db.index)
        return OK
    cond, want_get, unit, unit_at, keepttl, _ = _parse_set_options(argv, 3, True)
    when = None
    if unit is not None:
        scale, absolute = _UNITS[unit]
        when = expire_at_ms(argv[unit_at], scale, absolute, c.server.now_ms(), "set")
    old = None
    if want_get:
        old = read_string(c, key)  # GET reads first (keymiss, hit / miss), as Redis
        found = old is not None
    else:
        found = db.lookup(key) is not None
    if (cond == "nx" and found) or (cond == "xx" and not found):
        return c.p.bulk_or_null(old) if want_get else c.p.null
    db.set(key, argv[2], keep_ttl=keepttl)
    c.server.notify(nt.STRING, b"set", key, db.index)
    effect = [b"SET", key, argv[2]]
    if when is not None:
        db.set_expire(key, when)
        c.server.notify(nt.GENERIC, b"expire", key, db.index)
        effect += [b"PXAT", b"%d" % when]
    elif keepttl:
        effect.append(b"KEEPTTL")
    c.prop = [effect]
    c.server.dirty += 1
    return c.p.bulk_or_null(old) if want_get else OK


@handler("setnx")
def setnx(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    if db.lookup(argv[1]) is not None:
        return enc.ZERO
    db.set(argv[1], argv[2])
    c.server.dirty += 1
    c.server.notify(nt.STRING, b"set", argv[1], db.index)
    return enc.ONE


def _setex(c: Client, argv: list[bytes], scale: int, name: str) -> bytes:
    db = c.db
    when = expire_at_ms(argv[2], scale, False, c.server.now_ms(), name)
    db.set(argv[1], argv[3])
    c.server.notify(nt.STRING, b"set", argv[1], db.index)
    db.set_expire(argv[1], when)
    c.server.notify(nt.GENERIC, b"expire", argv[1], db.index)
    c.prop = [[b"SET", argv[1], argv[3], b"PXAT", b"%d" % when]]
    c.server.dirty += 1
    return OK


@handler("setex")
def setex(c: Client, argv: list[bytes]) -> bytes:
    return _setex(c, argv, 1000, "setex")


@handler("psetex")
def psetex(c: Client, argv: list[bytes]) -> bytes:
    return _setex(c, argv, 1, "psetex")


@handler("getset")
def getset(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    old = read_string(c, argv[1])
    db.set(argv[1], argv[2])
    c.server.notify(nt.STRING, b"set", argv[1], db.index)
    c.prop = [[b"SET", argv[1], argv[2]]]
    c.server.dirty += 1
    return c.p.bulk_or_null(old)


@handler("getdel")
def getdel(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    old = read_string(c, argv[1])
    if old is None:
        return c.p.null
    db.delete(argv[1])
    c.server.notify(nt.GENERIC, b"del", argv[1], db.index)
    c.prop = [[b"DEL", argv[1]]]
    c.server.dirty += 1
    return c.p.bulk_or_null(old)


@handler("getex")
def getex(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    key = argv[1]
    _, _, unit, unit_at, _, persist = _parse_set_options(argv, 2, False)
    v = read_string(c, key)
    if v is None:
        return c.p.null
    now = c.server.now_ms()
    if unit is not None:
        scale, absolute = _UNITS[unit]
        when = expire_at_ms(argv[unit_at], scale, absolute, now, "getex")
        if when <= now:  # already in the past: the key goes now, as a DEL
            db.delete(key)
            c.server.notify(nt.GENERIC, b"del", key, db.index)
            c.prop = [[b"DEL", key]]
        else:
            db.set_expire(key, when)
            c.server.notify(nt.GENERIC, b"expire", key, db.index)
            c.prop = [[b"PEXPIREAT", key, b"%d" % when]]
        c.server.dirty += 1
    elif persist and db.persist(key):
        c.server.notify(nt.GENERIC, b"persist", key, db.index)
        c.prop = [[b"PERSIST", key]]
        c.server.dirty += 1
    return b"$%d\r\n%s\r\n" % (len(v), v)


@handler("mget")
def mget(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    lookup = db.lookup
    srv = c.server
    vals = []
    for k in argv[1:]:
        v = lookup(k)
        if v is None:
            srv.key_miss(db.index, k)
        else:
            srv.stat_keyspace_hits += 1  # a hit even when not a string (Redis)
        vals.append(v if v.__class__ is bytes else None)
    return c.p.bulks_or_null(vals)


@handler("mset")
def mset(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) % 2 == 0:
        raise CommandError("ERR wrong number of arguments for 'mset' command")
    srv = c.server
    if srv.notifier.flags & nt.STRING:
        _set_each(c, argv)  # Redis's event order: new and set of one key, then the next
    else:
        c.db.set_many(argv, 1)
    srv.dirty += (len(argv) - 1) // 2
    return OK


def _set_each(c: Client, argv: list[bytes]) -> None:
    """MSET / MSETNX: store argv[1], argv[2], ... pair by pair, each with its event."""
    db = c.db
    notify = c.server.notify
    for i in range(1, len(argv), 2):
        db.set(argv[i], argv[i + 1])
        notify(nt.STRING, b"set", argv[i], db.index)


@handler("msetnx")
def msetnx(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) % 2 == 0:
        raise CommandError("ERR wrong number of arguments for 'msetnx' command")
    db = c.db
    for i in range(1, len(argv), 2):
        if db.lookup(argv[i]) is not None:
            return enc.ZERO
    _set_each(c, argv)
    c.server.dirty += (len(argv) - 1) // 2
    return enc.ONE


def _incr(c: Client, key: bytes, by: int) -> bytes:
    db = c.db
    v = db.lookup(key) if db.expires else db.data.get(key)
    if v is None:
        if not -(2**63) <= by < 2**63:
            raise CommandError("ERR increment or decrement would overflow")
        db.add_new(key, b"%d" % by)
        c.server.dirty += 1
        c.server.notify(nt.STRING, b"incrby", key, db.index)
        return enc.integer(by)
    if v.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    cur = parse_int(v)
    if cur is None:
        raise CommandError(NOT_INTEGER)
    new = cur + by
    if new > LLONG_MAX or new < LLONG_MIN:
        raise CommandError("ERR increment or decrement would overflow")
    text = b"%d" % new
    db.replace(key, text)
    c.server.dirty += 1
    c.server.notify(nt.STRING, b"incrby", key, db.index)
    return b":%s\r\n" % text


@handler("incr")
def incr(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    key = argv[1]
    v = db.lookup(key) if db.expires else db.data.get(key)
    # Fast path: a canonical non-negative integer far from overflow (a counter).
    if v.__class__ is bytes and len(v) < 18 and v.isdigit() and (v[0] != 0x30 or len(v) == 1):
        text = b"%d" % (int(v) + 1)
        db.replace(key, text)
        srv = c.server
        srv.dirty += 1
        if srv.notifier.flags & nt.STRING:
            srv.notify(nt.STRING, b"incrby", key, db.index)
        return b":%s\r\n" % text
    return _incr(c, key, 1)


@handler("decr")
def decr(c: Client, argv: list[bytes]) -> bytes:
    return _incr(c, argv[1], -1)


@handler("incrby")
def incrby(c: Client, argv: list[bytes]) -> bytes:
    return _incr(c, argv[1], arg_int(argv[2]))


@handler("decrby")
def decrby(c: Client, argv: list[bytes]) -> bytes:
    by = arg_int(argv[2])
    if by == LLONG_MIN:
        raise CommandError("ERR decrement would overflow")
    return _incr(c, argv[1], -by)


@handler("incrbyfloat")
def incrbyfloat(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    key = argv[1]
    cur = get_string(db, key)
    try:
        new = incr_float_text(cur, argv[2])
    except ValueError as e:
        raise CommandError(str(e)) from None
    db.set(key, new, keep_ttl=True)
    c.server.notify(nt.STRING, b"incrbyfloat", key, db.index)
    # Replicas must not redo float arithmetic: the effect is the resulting string.
    c.prop = [[b"SET", key, new, b"KEEPTTL"]]
    c.server.dirty += 1
    return b"$%d\r\n%s\r\n" % (len(new), new)


@handler("append")
def append(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    cur = get_string(db, argv[1])
    new = argv[2] if cur is None else cur + argv[2]
    if len(new) > STRING_MAX_BYTES:
        raise CommandError(_TOO_BIG)
    db.set(argv[1], new, keep_ttl=True)
    c.server.dirty += 1
    c.server.notify(nt.STRING, b"append", argv[1], db.index)
    return enc.integer(len(new))


@handler("strlen")
def strlen(c: Client, argv: list[bytes]) -> bytes:
    v = read_string(c, argv[1])
    return enc.integer(0 if v is None else len(v))


def _getrange(c: Client, argv: list[bytes]) -> bytes:
    start = arg_int(argv[2])
    end = arg_int(argv[3])
    v = read_string(c, argv[1])
    if v is None:
        return enc.EMPTY_BULK
    n = len(v)
    if start < 0 and end < 0 and start > end:
        return enc.EMPTY_BULK
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = max(n + end, 0)
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return enc.EMPTY_BULK
    return enc.bulk(v[start : end + 1])


@handler("getrange")
def getrange(c: Client, argv: list[bytes]) -> bytes:
    return _getrange(c, argv)


@handler("substr")
def substr(c: Client, argv: list[bytes]) -> bytes:
    return _getrange(c, argv)


@handler("setrange")
def setrange(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    key, value = argv[1], argv[3]
    offset = arg_int(argv[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    cur = get_string(db, key)
    if cur is None:
        if not value:
            return enc.ZERO
        cur = b""
    elif not value:
        return enc.integer(len(cur))
    if offset + len(value) > STRING_MAX_BYTES:
        raise CommandError(_TOO_BIG)
    if len(cur) < offset:
        cur = cur + b"\x00" * (offset - len(cur))
    new = cur[:offset] + value + cur[offset + len(value) :]
    db.set(key, new, keep_ttl=True)
    c.server.dirty += 1
    c.server.notify(nt.STRING, b"setrange", key, db.index)
    return enc.integer(len(new))
