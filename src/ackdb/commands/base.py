"""Helpers shared by the command families: argument parsing and typed lookups.

Owns: Redis's argument errors (integer, float, syntax, WRONGTYPE) and the expiry-time
arithmetic of SET / GETEX / EXPIRE. Never touches the network.
"""

from __future__ import annotations

import re
from typing import Any

from ..engine.client import Client
from ..engine.core import NOT_INTEGER, SYNTAX, WRONGTYPE, CommandError
from ..keyspace.db import Database
from ..keyspace.glob import compile_glob
from ..keyspace.numbers import parse_float, parse_int

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
# Redis: the largest string a command may build (proto-max-bulk-len by default 512 MiB).
STRING_MAX_BYTES = 512 * 1024 * 1024

__all__ = [
    "CommandError",
    "NOT_INTEGER",
    "SYNTAX",
    "WRONGTYPE",
    "arg_int",
    "arg_float",
    "get_string",
    "get_hash",
    "get_typed",
    "read_typed",
    "read_key",
    "read_string",
    "expire_at_ms",
    "parse_scan_cursor",
    "parse_scan_options",
]


def arg_int(b: bytes, msg: str = NOT_INTEGER) -> int:
    v = parse_int(b)
    if v is None:
        raise CommandError(msg)
    return v


def arg_float(b: bytes, msg: str = "ERR value is not a valid float") -> float:
    v = parse_float(b)
    if v is None:
        raise CommandError(msg)
    return v


def get_typed(db: Database, key: bytes, cls: type) -> Any:
    """A write lookup: the value of class ``cls`` at ``key``, None when absent, WRONGTYPE
    for another type (Redis's lookupKeyWrite + checkType)."""
    v = db.lookup(key)
    if v is not None and v.__class__ is not cls:
        raise CommandError(WRONGTYPE)
    return v


def read_typed(c: Client, key: bytes, cls: type) -> Any:
    """A read lookup: like ``get_typed``, and counts a keyspace hit or miss by key, as
    Redis's lookupKeyRead does (a WRONGTYPE key is a hit)."""
    v = c.db.lookup(key)
    if v is None:
        c.server.key_miss(c.db.index, key)
        return None
    c.server.stat_keyspace_hits += 1
    if v.__class__ is not cls:
        raise CommandError(WRONGTYPE)
    return v


def read_key(c: Client, key: bytes, notify: bool = True) -> Any:
    """A read lookup of a key of any type (Redis's lookupKeyRead): its live value or None;
    counts a keyspace hit or miss, and a miss sends ``keymiss`` (class ``m``) unless
    ``notify`` is False (Redis's LOOKUP_NONOTIFY, as OBJECT looks keys up)."""
    db = c.db
    v = db.lookup(key)
    if v is not None:
        c.server.stat_keyspace_hits += 1
    elif notify:
        c.server.key_miss(db.index, key)
    else:
        c.server.stat_keyspace_misses += 1
    return v


def read_string(c: Client, key: bytes) -> bytes | None:
    """A read lookup of a string (GETRANGE, GETSET...): see ``read_typed``."""
    return read_typed(c, key, bytes)  # type: ignore[no-any-return]


def get_string(db: Database, key: bytes) -> bytes | None:
    return get_typed(db, key, bytes)  # type: ignore[no-any-return]


def get_hash(db: Database, key: bytes) -> dict[bytes, bytes] | None:
    return get_typed(db, key, dict)  # type: ignore[no-any-return]


def expire_at_ms(amount: bytes, unit_ms: int, absolute: bool, now_ms: int, cmd: str) -> int:
    """The absolute expiry in ms for an EX/PX/EXAT/PXAT argument, with Redis's checks."""
    n = arg_int(amount)
    bad = f"ERR invalid expire time in '{cmd}' command"
    if n <= 0 or (unit_ms == 1000 and n > LLONG_MAX // 1000):
        raise CommandError(bad)
    ms = n * unit_ms
    if not absolute:
        if ms > LLONG_MAX - now_ms:
            raise CommandError(bad)
        ms += now_ms
    return ms


_CURSOR_RE = re.compile(rb"([+-]?)([0-9]+)")
_U64 = 1 << 64


def parse_scan_cursor(arg: bytes) -> int:
    """Redis parseScanCursorOrReply: C ``strtoul`` base 10 over the whole argument, no
    leading space. So "" is 0, "+5" is 5, "-1" wraps to 2**64 - 1, "-0" is 0."""
    if not arg:
        return 0
    m = _CURSOR_RE.fullmatch(arg)
    if m is None or int(m[2]) >= _U64:
        raise CommandError("ERR invalid cursor")
    n = int(m[2])
    return (-n) % _U64 if m[1] == b"-" else n


def parse_scan_options(
    argv: list[bytes], start: int, allow_type: bool
) -> tuple[Any, int, bytes | None]:
    """SCAN-family options from ``argv[start]``: (MATCH matcher or None for everything,
    COUNT, TYPE when allowed); later options win."""
    match = None
    count = 10
    typ = None
    i = start
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            raise CommandError(SYNTAX)
        if opt == b"count":
            count = arg_int(argv[i + 1])
            if count < 1:
                raise CommandError(SYNTAX)
        elif opt == b"match":
            pat = argv[i + 1]
            match = None if pat == b"*" else compile_glob(pat)
        elif opt == b"type" and allow_type:
            typ = argv[i + 1].lower()
        else:
            raise CommandError(SYNTAX)
        i += 2
    return match, count, typ
