"""Generic key commands: existence, deletion, renames, copies, SCAN, and expiry.

Owns: Redis 7.2 semantics of the keyspace family and their effects (EXPIRE family made
absolute as PEXPIREAT; an expiry already in the past becomes DEL) and their keyspace
events (Redis 7.2: ``del`` per deleted key, ``rename_from`` / ``rename_to``, ``copy_to``,
``move_from`` / ``move_to``, ``expire`` or ``del``, ``persist``; ``new`` for a key created
comes from the keyspace first). EXISTS, TOUCH, TYPE, the TTL family and COPY's source
are read lookups (keyspace hit / miss, ``keymiss``); OBJECT counts without announcing;
MOVE, RENAME and the destinations are write lookups (neither). Never touches sockets.
"""

from __future__ import annotations

import copy
from typing import Any

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace.glob import compile_glob
from ..keyspace.types import encoding, type_name
from ..resp import encoder as enc
from .base import (
    LLONG_MAX,
    LLONG_MIN,
    SYNTAX,
    CommandError,
    arg_int,
    parse_scan_cursor,
    parse_scan_options,
    read_key,
)
from .table import handler


@handler("del")
def del_(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    srv = c.server
    n = 0
    for k in argv[1:]:
        if db.lookup(k) is not None and db.delete(k):
            n += 1
            srv.notify(nt.GENERIC, b"del", k, db.index)
    srv.dirty += n
    return enc.integer(n)


@handler("unlink")
def unlink(c: Client, argv: list[bytes]) -> bytes:
    return del_(c, argv)


@handler("exists")
def exists(c: Client, argv: list[bytes]) -> bytes:
    return enc.integer(sum(1 for k in argv[1:] if read_key(c, k) is not None))


@handler("touch")
def touch(c: Client, argv: list[bytes]) -> bytes:
    return exists(c, argv)


@handler("type")
def type_(c: Client, argv: list[bytes]) -> bytes:
    v = read_key(c, argv[1])
    return b"+none\r\n" if v is None else b"+%s\r\n" % type_name(v)


def _rename(c: Client, argv: list[bytes], nx: bool) -> bytes:
    db = c.db
    src, dst = argv[1], argv[2]
    v = db.lookup(src)
    if v is None:
        raise CommandError("ERR no such key")
    if src == dst:
        return enc.ZERO if nx else enc.OK
    if db.lookup(dst) is not None:  # an expired destination goes first, as in Redis
        if nx:
            return enc.ZERO
        db.delete(dst)
    when = db.ttl_ms(src)
    db.delete(src)
    db.set(dst, v)
    if when is not None:
        db.set_expire(dst, when)
    c.server.dirty += 1
    c.server.notify(nt.GENERIC, b"rename_from", src, db.index)
    c.server.notify(nt.GENERIC, b"rename_to", dst, db.index)
    return enc.ONE if nx else enc.OK


@handler("rename")
def rename(c: Client, argv: list[bytes]) -> bytes:
    return _rename(c, argv, False)


@handler("renamenx")
def renamenx(c: Client, argv: list[bytes]) -> bytes:
    return _rename(c, argv, True)


def _db_index(c: Client, arg: bytes) -> Any:
    idx = arg_int(arg)
    if idx < 0 or idx >= len(c.server.dbs):
        raise CommandError("ERR DB index is out of range")
    return c.server.dbs[idx]


@handler("copy")
def copy_(c: Client, argv: list[bytes]) -> bytes:
    src_db = dst_db = c.db
    replace = False
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and i + 1 < len(argv):
            dst_db = _db_index(c, argv[i + 1])
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    src, dst = argv[1], argv[2]
    if src_db is dst_db and src == dst:
        raise CommandError("ERR source and destination objects are the same")
    v = read_key(c, src)  # the destination is looked up for writing (no hit, no keymiss)
    if v is None:
        return enc.ZERO
    if dst_db.lookup(dst) is not None:
        if not replace:
            return enc.ZERO
        dst_db.delete(dst)
    dst_db.set(dst, v if v.__class__ is bytes else copy.deepcopy(v))
    when = src_db.ttl_ms(src)
    if when is not None:
        dst_db.set_expire(dst, when)
    c.server.dirty += 1
    c.server.notify(nt.GENERIC, b"copy_to", dst, dst_db.index)
    return enc.ONE


@handler("move")
def move(c: Client, argv: list[bytes]) -> bytes:
    src_db = c.db
    dst_db = _db_index(c, argv[2])
    if dst_db is src_db:
        raise CommandError("ERR source and destination objects are the same")
    key = argv[1]
    v = src_db.lookup(key)
    if v is None or dst_db.lookup(key) is not None:
        return enc.ZERO
    when = src_db.ttl_ms(key)
    src_db.delete(key)
    dst_db.set(key, v)
    if when is not None:
        dst_db.set_expire(key, when)
    c.server.dirty += 1
    c.server.notify(nt.GENERIC, b"move_from", key, src_db.index)
    c.server.notify(nt.GENERIC, b"move_to", key, dst_db.index)
    return enc.ONE


@handler("keys")
def keys(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    match = compile_glob(argv[1])
    now = c.server.now_ms()
    expires = db.expires
    out = []
    for k in list(db.data):
        if match(k):
            when = expires.get(k) if expires else None
            if when is None or when > now:
                out.append(k)
    return enc.bulk_array(out)


@handler("scan")
def scan(c: Client, argv: list[bytes]) -> bytes:
    cursor = parse_scan_cursor(argv[1])
    match, count, typ = parse_scan_options(argv, 2, True)
    db = c.db
    nxt, found = db.scan(cursor, count)
    out = []
    for k in found:
        v = db.lookup(k)
        if v is None:
            continue
        if match is not None and not match(k):
            continue
        if typ is not None and type_name(v) != typ:
            continue
        out.append(k)
    return b"*2\r\n" + enc.bulk(b"%d" % nxt) + enc.bulk_array(out)


@handler("randomkey")
def randomkey(c: Client, argv: list[bytes]) -> bytes:
    return c.p.bulk_or_null(c.db.random_key(c.server.rng))


# -- expiry ----------------------------------------------------------------------------


def _expire(c: Client, argv: list[bytes], unit_ms: int, absolute: bool) -> bytes:
    name = argv[0].decode().lower()
    key = argv[1]
    nx = xx = gt = lt = False
    for opt in argv[3:]:
        o = opt.lower()
        if o == b"nx":
            nx = True
        elif o == b"xx":
            xx = True
        elif o == b"gt":
            gt = True
        elif o == b"lt":
            lt = True
        else:
            raise CommandError(f"ERR Unsupported option {opt.decode('utf-8', 'replace')}")
    if nx and (xx or gt or lt):
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    t = arg_int(argv[2])
    bad = f"ERR invalid expire time in '{name}' command"
    if unit_ms == 1000:
        if t > LLONG_MAX // 1000 or t < LLONG_MIN // 1000:
            raise CommandError(bad)
        t *= 1000
    now = c.server.now_ms()
    if not absolute:
        if t > LLONG_MAX - now:
            raise CommandError(bad)
        t += now
    db = c.db
    if db.lookup(key) is None:
        return enc.ZERO
    cur = db.ttl_ms(key)
    if nx and cur is not None:
        return enc.ZERO
    if xx and cur is None:
        return enc.ZERO
    if gt and (cur is None or t <= cur):
        return enc.ZERO
    if lt and cur is not None and t >= cur:
        return enc.ZERO
    if t <= now and not c.server.loading and not c.server.is_replica():
        db.delete(key)
        c.server.notify(nt.GENERIC, b"del", key, db.index)
        c.prop = [[b"DEL", key]]
    else:
        db.set_expire(key, t)
        c.server.notify(nt.GENERIC, b"expire", key, db.index)
        c.prop = [[b"PEXPIREAT", key, b"%d" % t]]
    c.server.dirty += 1
    return enc.ONE


_EXPIRE_ARGS = "key {} [NX|XX|GT|LT]"


@handler("expire")
def expire(c: Client, argv: list[bytes]) -> bytes:
    return _expire(c, argv, 1000, False)


@handler("pexpire")
def pexpire(c: Client, argv: list[bytes]) -> bytes:
    return _expire(c, argv, 1, False)


@handler("expireat")
def expireat(c: Client, argv: list[bytes]) -> bytes:
    return _expire(c, argv, 1000, True)


@handler("pexpireat")
def pexpireat(c: Client, argv: list[bytes]) -> bytes:
    return _expire(c, argv, 1, True)


def _ttl(c: Client, key: bytes, ms: bool, absolute: bool) -> bytes:
    db = c.db
    if read_key(c, key) is None:
        return enc.integer(-2)
    when = db.ttl_ms(key)
    if when is None:
        return enc.integer(-1)
    if absolute:
        return enc.integer(when if ms else when // 1000)
    left = max(when - c.server.now_ms(), 0)
    return enc.integer(left if ms else (left + 500) // 1000)


@handler("ttl")
def ttl(c: Client, argv: list[bytes]) -> bytes:
    return _ttl(c, argv[1], False, False)


@handler("pttl")
def pttl(c: Client, argv: list[bytes]) -> bytes:
    return _ttl(c, argv[1], True, False)


@handler("expiretime")
def expiretime(c: Client, argv: list[bytes]) -> bytes:
    return _ttl(c, argv[1], False, True)


@handler("pexpiretime")
def pexpiretime(c: Client, argv: list[bytes]) -> bytes:
    return _ttl(c, argv[1], True, True)


@handler("persist")
def persist(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    if db.lookup(argv[1]) is None or not db.persist(argv[1]):
        return enc.ZERO
    c.server.dirty += 1
    c.server.notify(nt.GENERIC, b"persist", argv[1], db.index)
    return enc.ONE


# -- OBJECT ------------------------------------------------------------------------------

_OBJECT_HELP = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Print this help.",
]


def encoding_limits(c: Client) -> dict[str, int]:
    cfg = c.server.config
    return {
        name: cfg.get(name)
        for name in (
            "hash-max-listpack-entries",
            "hash-max-listpack-value",
            "set-max-intset-entries",
            "set-max-listpack-entries",
            "set-max-listpack-value",
            "zset-max-listpack-entries",
            "zset-max-listpack-value",
            "list-max-listpack-size",
        )
    }


@handler("object|encoding")
def object_encoding(c: Client, argv: list[bytes]) -> bytes:
    v = read_key(c, argv[2], notify=False)  # OBJECT: no keymiss
    if v is None:
        return c.p.null
    return enc.bulk(encoding(v, encoding_limits(c)))


@handler("object|freq")
def object_freq(c: Client, argv: list[bytes]) -> bytes:
    if read_key(c, argv[2], notify=False) is None:  # OBJECT: no keymiss
        return c.p.null
    raise CommandError(
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. "
        "Please note that when switching between policies at runtime LRU and LFU data "
        "will take some time to adjust."
    )


@handler("object|help")
def object_help(c: Client, argv: list[bytes]) -> bytes:
    return enc.array([enc.simple(line) for line in _OBJECT_HELP])
