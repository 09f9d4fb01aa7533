"""Merging the replies of several shards into the one reply a client gets.

Owns: each ``Merge`` of the router (command tips' response policies: agg_sum, agg_min,
all_succeeded, concatenation, MGET's order, RANDOMKEY), SCAN's cursor
arithmetic, and INFO keyspace sums. Pure functions of raw replies (proxy/replies.py);
never does IO. An error reply from any shard wins (the first one, in shard order), as
Redis Cluster clients report a failed part.
"""

from __future__ import annotations

import random
import re

from .replies import as_int, bulk_value, header, is_error, is_null, items
from .router import Merge

_INT_MAX = (1 << 63) - 1


def _first_error(parts: list[bytes]) -> bytes | None:
    for p in parts:
        if is_error(p):
            return p
    return None


def _array(elements: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(elements) + b"".join(elements)


def merge(kind: Merge, parts: list[bytes], rng: random.Random) -> bytes:
    """One reply from the replies of every shard asked (``parts`` in shard order)."""
    err = _first_error(parts)
    if err is not None:
        return err
    if kind is Merge.SUM:
        total = 0
        for p in parts:
            v = as_int(p)
            if v is None:
                return p
            total += v
        return b":%d\r\n" % total
    if kind is Merge.MIN:
        return _min(parts)
    if kind is Merge.CONCAT:
        return _array([e for p in parts for e in items(p)])
    if kind is Merge.RANDOM:
        found = [p for p in parts if not is_null(p)]
        return rng.choice(found) if found else parts[0]
    return parts[0]  # FIRST, ALL_OK (no error: every reply is alike)


def _min(parts: list[bytes]) -> bytes:
    """agg_min: integers (WAIT), or element-wise over arrays of integers (WAITAOF)."""
    if parts[0][0] == 0x3A:
        return b":%d\r\n" % min(as_int(p) or 0 for p in parts)
    columns: list[int] | None = None
    for p in parts:
        values = [as_int(e) or 0 for e in items(p)]
        columns = (
            values
            if columns is None
            else [min(a, b) for a, b in zip(columns, values, strict=False)]
        )
    return _array([b":%d\r\n" % v for v in columns or []])


def ordered(parts: list[bytes], positions: list[list[int]], total: int) -> bytes:
    """MGET: shard i's reply holds the values of the keys at ``positions[i]``."""
    err = _first_error(parts)
    if err is not None:
        return err
    out: list[bytes] = [b""] * total
    for p, where in zip(parts, positions, strict=True):
        for at, e in zip(where, items(p), strict=False):
            out[at] = e
    return _array(out)


# -- SCAN: the cursor names the shard ------------------------------------------------------
#
# proxy cursor = shard cursor * S + shard index. 0 starts shard 0; when a shard's iteration
# ends (its cursor 0) the next proxy cursor is the next shard's index (its cursor 0), and
# after the last shard 0 ends the whole iteration. A key present for the whole iteration is
# on one shard for all of it and that shard's scan returns it.
#
# A cursor must fit Redis's unsigned 64 bits, and a shard's own cursor may use 63 of them
# (ackdb's carries a generation in its high bits), so a product that would reach 2**63 is
# kept in ``ScanCursors``, the endpoint's table, and the client gets 2**63 + its entry's
# number instead. The table holds ``SCAN_CURSORS_MAX`` entries (the oldest go first); an
# entry that is gone answers "ERR invalid cursor".

SCAN_CURSORS_MAX = 65536
_HIGH = 1 << 63


class ScanCursors:
    """Shard cursors too big to multiply, by entry number (shared by an endpoint's
    clients, as a cursor may move between connections)."""

    def __init__(self, limit: int = SCAN_CURSORS_MAX) -> None:
        self.limit = limit
        self.entries: dict[int, tuple[int, int]] = {}
        self.next_id = 0

    def encode(self, shard: int, shard_cursor: int, shards: int) -> int:
        if not shard_cursor:
            return shard + 1 if shard + 1 < shards else 0
        plain = shard_cursor * shards + shard
        if plain < _HIGH:
            return plain
        self.next_id = (self.next_id + 1) % _HIGH
        self.entries[self.next_id] = (shard, shard_cursor)
        if len(self.entries) > self.limit:
            del self.entries[next(iter(self.entries))]
        return _HIGH | self.next_id

    def decode(self, cursor: int, shards: int) -> tuple[int, int] | None:
        """(shard, its cursor), or None for an entry no longer held."""
        if cursor >= _HIGH:
            return self.entries.get(cursor - _HIGH)
        return cursor % shards, cursor // shards


_CURSOR = re.compile(rb"([+-]?)([0-9]+)")
_U64 = 1 << 64


def parse_cursor(arg: bytes) -> int | None:
    """Redis's cursor rules (strtoul over the whole argument; "" is 0); None: invalid."""
    if not arg:
        return 0
    m = _CURSOR.fullmatch(arg)
    if m is None or int(m[2]) >= _U64:
        return None
    n = int(m[2])
    return (-n) % _U64 if m[1] == b"-" else n


def scan_reply(raw: bytes, shard: int, shards: int, cursors: ScanCursors) -> bytes:
    """The shard's SCAN reply with its cursor turned into the proxy's."""
    if is_error(raw):
        return raw
    cursor, page = items(raw)
    value = bulk_value(cursor)
    shard_next = int(value) if value is not None else 0
    text = b"%d" % cursors.encode(shard, shard_next, shards)
    return b"*2\r\n$%d\r\n%s\r\n" % (len(text), text) + page


# -- INFO keyspace -------------------------------------------------------------------------

_DB_LINE = re.compile(rb"^db(\d+):(.*)$", re.M)


def keyspace_lines(parts: list[bytes]) -> list[str]:
    """``db0:keys=...`` lines summed over the shards' ``INFO keyspace`` replies (keys and
    expires add up; avg_ttl is the key-weighted mean of the shards')."""
    sums: dict[int, dict[str, int]] = {}
    for p in parts:
        if is_error(p):
            continue
        _, _, body = header(p)
        text = p[body:-2]
        for m in _DB_LINE.finditer(text):
            db = sums.setdefault(int(m[1]), {"keys": 0, "expires": 0, "ttl_weight": 0})
            fields = dict(f.split(b"=", 1) for f in m[2].strip().split(b",") if b"=" in f)
            keys = int(fields.get(b"keys", b"0"))
            db["keys"] += keys
            db["expires"] += int(fields.get(b"expires", b"0"))
            db["ttl_weight"] += int(fields.get(b"avg_ttl", b"0")) * keys
    out = []
    for index in sorted(sums):
        db = sums[index]
        avg = db["ttl_weight"] // db["keys"] if db["keys"] else 0
        out.append(f"db{index}:keys={db['keys']},expires={db['expires']},avg_ttl={avg}")
    return out


def clamp_int(v: int) -> int:
    return min(v, _INT_MAX)
