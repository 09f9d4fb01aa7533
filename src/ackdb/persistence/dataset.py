"""Whole datasets to and from files: snapshot images, RESP bases, and the load target.

Owns: walking the databases to write them (as a snapshot, or as the RESP commands of an
AOF base when ``aof-use-rdb-preamble no``), and filling databases from a snapshot
(``DbTarget``). Keys already expired when a save starts are left out; a primary drops
keys that expired while the file sat on disk when it loads them (as Redis does), a
replica and an AOF's base keep them.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from ..keyspace import lww
from ..keyspace.db import Database
from ..keyspace.numbers import format_double_70 as format_double
from ..keyspace.stream import Stream
from ..keyspace.stream_plain import resp_commands
from ..keyspace.zset import ZSet
from . import snapshot as snap
from .aof import encode_command, select_command

# Elements per command when a collection is written as RESP (Redis: 64).
RESP_ITEMS_PER_COMMAND = 64

ProgressFn = Callable[[int, int], None]


def total_keys(dbs: Sequence[Database]) -> int:
    return sum(len(db.data) for db in dbs)


def _live_items(db: Database, now_ms: int, key_delay_us: int = 0) -> Any:
    exp = db.expires
    items: Any = db.data.items()
    if exp:
        items = ((k, v) for k, v in items if k not in exp or exp[k] > now_ms)
    if key_delay_us:
        items = _delayed(items, key_delay_us)
    return items


def _delayed(items: Any, key_delay_us: int) -> Any:
    """``rdb-key-save-delay``: a pause per key, so tests can act during a save."""
    for kv in items:
        time.sleep(key_delay_us / 1e6)
        yield kv


def write_snapshot(
    f: BinaryIO,
    dbs: Sequence[Database],
    meta: dict[str, Any],
    now_ms: int,
    progress: ProgressFn | None = None,
    key_delay_us: int = 0,
) -> int:
    """Write every database as a snapshot; returns the number of keys written."""
    total = total_keys(dbs)
    meta = {**meta, "keys_at_start": total}
    w = snap.SnapshotWriter(f, meta)
    for db in dbs:
        if not db.data:
            continue
        cb = (lambda n: progress(n, total)) if progress is not None else None
        w.database(db.index, _live_items(db, now_ms, key_delay_us), db.expires, cb)
    w.close()
    return w.keys


def write_resp(
    f: BinaryIO,
    dbs: Sequence[Database],
    now_ms: int,
    progress: ProgressFn | None = None,
    key_delay_us: int = 0,
    preamble: Sequence[list[bytes]] = (),
) -> int:
    """Write every database as RESP commands (an AOF base without a snapshot preamble),
    after the ``preamble`` commands (the function libraries' FUNCTION LOADs)."""
    total = total_keys(dbs)
    n = 0
    for argv in preamble:
        f.write(encode_command(argv))
    for db in dbs:
        if not db.data:
            continue
        f.write(select_command(db.index))
        for key, value in _live_items(db, now_ms, key_delay_us):
            for argv in _commands_for(key, value):
                f.write(encode_command(argv))
            when = db.expires.get(key)
            if when is not None:
                f.write(encode_command([b"PEXPIREAT", key, b"%d" % when]))
            n += 1
            if progress is not None and not n % 65536:
                progress(n, total)
    return n


def _commands_for(key: bytes, v: Any) -> list[list[bytes]]:
    cls = v.__class__
    if cls is bytes:
        return [[b"SET", key, v]]
    if cls is dict:
        flat = [x for pair in v.items() for x in pair]
        return _batched(b"HSET", key, flat, 2)
    if cls is deque:
        return _batched(b"RPUSH", key, list(v), 1)
    if cls is set:
        return _batched(b"SADD", key, list(v), 1)
    if cls is ZSet:
        flat = []
        for m, s in v:
            flat.append(_score(s))
            flat.append(m)
        return _batched(b"ZADD", key, flat, 2)
    if cls is Stream:
        return resp_commands(key, v)
    if cls is lww.Record:
        return [[b"LL.APPLY", key, lww.encode(v)]]
    raise TypeError(f"no RESP form for {cls.__name__}")


def _score(s: float) -> bytes:
    if math.isinf(s):
        return b"inf" if s > 0 else b"-inf"
    return format_double(s)


def _batched(name: bytes, key: bytes, items: list[bytes], width: int) -> list[list[bytes]]:
    step = RESP_ITEMS_PER_COMMAND * width
    return [[name, key, *items[i : i + step]] for i in range(0, len(items), step)]


class DbTarget(snap.LoadTarget):
    """Fills the server's databases from a snapshot; counts expired keys skipped.

    ``keep_expired``: load keys whose time has passed too (Redis: a replica's load, whose
    primary expires them, and an AOF's base, which the AOF's commands continue).
    ``expired_keys``: a list to which (db index, key) of each key skipped is appended, for
    a primary that tells its replicas (Redis's RDBFLAGS_FEED_REPL at start-up)."""

    def __init__(
        self,
        dbs: Sequence[Database],
        now_ms: int,
        keep_expired: bool = False,
        expired_keys: list[tuple[int, bytes]] | None = None,
    ) -> None:
        self.dbs = dbs
        self.now_ms = now_ms
        self.keep_expired = keep_expired
        self.expired_keys = expired_keys
        self.db = dbs[0]
        self.db_index = 0
        self.expired = 0

    def select(self, index: int) -> None:
        if not 0 <= index < len(self.dbs):
            raise ValueError(
                f"the snapshot holds database {index}, but 'databases' is {len(self.dbs)}"
            )
        self.db = self.dbs[index]
        self.db_index = index

    def strings(self, flat: list[bytes]) -> None:
        self.db.load_strings(flat)

    def key(self, key: bytes, value: Any, expire_ms: int | None) -> None:
        if expire_ms is not None and expire_ms <= self.now_ms and not self.keep_expired:
            self.expired += 1
            if self.expired_keys is not None:
                self.expired_keys.append((self.db_index, key))
            return
        self.db.load_key(key, value, expire_ms)

    def finish(self) -> None:
        for db in self.dbs:
            db.finish_load()
