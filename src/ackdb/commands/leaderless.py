"""The replica side of leaderless databases: the ``LL.*`` commands.

Owns: storing versioned records (``keyspace.lww.Record``) -- every write is a merge, so
it applies only what is newer than what the key holds (idempotent: a retried or replayed
write changes nothing twice, and a repair can never clobber a newer write) -- and
answering records, digests, hash-tree leaves and leaf ranges (from the incrementally kept
tree of ``keyspace/lltree.py``: each write calls its ``begin`` / ``changed``). Never coordinates: which
replicas to ask, levels, repair and hints are ``leaderless/``'s.

Durability: a write changes the dataset only when the merge changed the record; then the
command is propagated as sent, so it reaches the AOF (and replicas) like any write, and
with ``appendfsync always`` its reply leaves only after the fsync. That is what
"applied durably" means for a leaderless acknowledgement: the replica's own persistence
setting decides, and a leaderless database's replicas should run ``appendfsync always``
for an acknowledged write to survive a crash of every replica that acknowledged it
(docs/leaderless.md). A write that changes nothing is not logged: its content is on disk
already, or in the same AOF buffer before it.

Skew: a write may carry ``MAXSKEW ms``; a record with a version more than that ahead of
this server's clock is refused (``ERR LLSKEW``), so one fast clock cannot stamp the
future into the data.
"""

from __future__ import annotations

from ..engine.client import Client
from ..engine.core import WRONGTYPE
from ..keyspace import lltree, lww
from ..keyspace.lww import Record, Version
from ..resp import encoder as enc
from .base import SYNTAX, CommandError, arg_int
from .table import handler

_BAD_VERSION = "ERR LL invalid version (expected ms.logical.node)"
_BAD_RECORD = "ERR LL invalid record"
_BAD_DEPTH = f"ERR LL depth must be between 0 and {lww.TREE_DEPTH_MAX}"


def _version(b: bytes) -> Version:
    try:
        return Version.parse(b)
    except ValueError:
        raise CommandError(_BAD_VERSION) from None


def _maxskew(c: Client, argv: list[bytes], at: int, rec: Record) -> None:
    """Parse an optional ``MAXSKEW ms`` at ``argv[at:]`` and refuse a record too far in
    the future. The effect logged leaves the option out: an AOF replayed after the clock
    moved must not refuse what was accepted."""
    rest = argv[at:]
    if not rest:
        return
    if len(rest) != 2 or rest[0].lower() != b"maxskew":
        raise CommandError(SYNTAX)
    limit = arg_int(rest[1])
    ahead = rec.newest().ms - c.server.now_ms()
    if limit >= 0 and ahead > limit:
        raise CommandError(f"ERR LLSKEW version is {ahead} ms ahead of this replica's clock")
    c.prop = [argv[:at]]


def _current(c: Client, key: bytes) -> Record | None:
    v = c.db.lookup(key)
    if v is not None and v.__class__ is not Record:
        raise CommandError(WRONGTYPE)
    return v


def _apply(c: Client, key: bytes, rec: Record) -> bytes:
    """Merge ``rec`` into the key; count a change so the command is propagated."""
    db = c.db
    tree = lltree.begin(db, c.server.dirty)
    cur = _current(c, key)
    if cur is None:
        db.add_new(key, rec)
        changed = True
    else:
        changed = lww.merge_into(cur, rec)
        if changed and db.watched:
            db.touch(key)
    if changed:
        c.server.dirty += 1
        lltree.changed(tree, db, key, c.server.dirty)
    return enc.ONE if changed else enc.ZERO


@handler("ll.apply")
def ll_apply(c: Client, argv: list[bytes]) -> bytes:
    try:
        rec = lww.decode(argv[2])
    except ValueError:
        raise CommandError(_BAD_RECORD) from None
    _maxskew(c, argv, 3, rec)
    return _apply(c, argv[1], rec)


@handler("ll.set")
def ll_set(c: Client, argv: list[bytes]) -> bytes:
    rec = lww.string_write(_version(argv[2]), argv[3])
    _maxskew(c, argv, 4, rec)
    return _apply(c, argv[1], rec)


@handler("ll.del")
def ll_del(c: Client, argv: list[bytes]) -> bytes:
    rec = lww.delete_write(_version(argv[2]))
    _maxskew(c, argv, 3, rec)
    return _apply(c, argv[1], rec)


@handler("ll.hset")
def ll_hset(c: Client, argv: list[bytes]) -> bytes:
    if not len(argv) % 2:  # ll.hset key version + pairs: an odd count
        raise CommandError("ERR wrong number of arguments for 'll.hset' command")
    pairs: dict[bytes, bytes | None] = dict(zip(argv[3::2], argv[4::2], strict=True))
    return _apply(c, argv[1], lww.fields_write(_version(argv[2]), pairs))


@handler("ll.hdel")
def ll_hdel(c: Client, argv: list[bytes]) -> bytes:
    pairs: dict[bytes, bytes | None] = dict.fromkeys(argv[3:])
    return _apply(c, argv[1], lww.fields_write(_version(argv[2]), pairs))


@handler("ll.get")
def ll_get(c: Client, argv: list[bytes]) -> bytes:
    rec = _current(c, argv[1])
    return c.p.bulk_or_null(None if rec is None else lww.encode(rec))


@handler("ll.digest")
def ll_digest(c: Client, argv: list[bytes]) -> bytes:
    rec = _current(c, argv[1])
    return enc.EMPTY_BULK if rec is None else enc.bulk(lww.digest(rec))


@handler("ll.purge")
def ll_purge(c: Client, argv: list[bytes]) -> bytes:
    v = _version(argv[2])
    tree = lltree.begin(c.db, c.server.dirty)
    rec = _current(c, argv[1])
    if rec is None or not rec.is_tombstone() or rec.base_version != v:
        return enc.ZERO
    c.db.delete(argv[1])
    c.server.dirty += 1
    lltree.changed(tree, c.db, argv[1], c.server.dirty)
    return enc.ONE


def _depth(b: bytes) -> int:
    d = arg_int(b)
    if not 0 <= d <= lww.TREE_DEPTH_MAX:
        raise CommandError(_BAD_DEPTH)
    return d


@handler("ll.tree")
def ll_tree(c: Client, argv: list[bytes]) -> bytes:
    depth = _depth(argv[1])
    return enc.bulk(lltree.current(c.db, c.server.dirty).leaves(depth))


@handler("ll.range")
def ll_range(c: Client, argv: list[bytes]) -> bytes:
    depth = _depth(argv[1])
    lo, hi = arg_int(argv[2]), arg_int(argv[3])
    out: list[bytes] = []
    for key, rec in lltree.current(c.db, c.server.dirty).range_items(depth, lo, hi):
        out.append(key)
        out.append(lww.encode(rec))
    return enc.bulk_array(out)
