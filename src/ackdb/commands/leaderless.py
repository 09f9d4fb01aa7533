"""The replica side of leaderless databases: the ``LL.*`` commands.

Owns: storing versioned records (``keyspace.lww.Record``) -- every write is a merge, so
it applies only what is newer than what the key holds (idempotent: a retried or replayed
write changes nothing twice, and a repair can never clobber a newer write) -- and
answering records, digests, hash-tree leaves and leaf ranges. Never coordinates: which
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

Schema: ``LL.SCHEMA <version> <payload>`` (cluster/schema.encode_schema) sets the
replica's schema when the version is above the one it holds; ``LL.SCHEMA`` answers the
version held (0: none). It is kept as an ordinary string under the reserved key
``SCHEMA_KEY``, so the AOF (the command as sent), AOF rewrite and snapshots carry it with
no new format. A write may carry ``SCHEMA <v>`` (LL.APPLY, LL.SET, LL.DEL: their
arity is fixed, so the option cannot be mistaken for a field): the schema version the
coordinator checked it against. A replica holding less answers ``-TRYAGAIN`` (the
coordinator asks again until its deadline); one holding v or more checks the record's
written cells again (``schema.validate``) and answers ``ERR SCHEMA ...`` on failure.
Options are left out of what is logged: an AOF replayed later must not refuse what was
accepted.
"""

from __future__ import annotations

from ..cluster import schema
from ..cluster.schema import Collection
from ..engine.client import Client
from ..engine.core import WRONGTYPE
from ..keyspace import lww
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


SCHEMA_KEY = b"\x00ackdb-ll-schema"
_schema_cache: list[tuple[bytes, int, tuple[Collection, ...]]] = []


def _schema(c: Client) -> tuple[int, tuple[Collection, ...]]:
    """The schema this replica holds (version 0, no collections: none)."""
    raw = c.db.lookup(SCHEMA_KEY)
    if raw is None or raw.__class__ is not bytes:
        return 0, ()
    if _schema_cache and _schema_cache[0][0] is raw:
        return _schema_cache[0][1], _schema_cache[0][2]
    try:
        version, colls = schema.decode_schema(raw)
    except ValueError:
        return 0, ()
    _schema_cache[:] = [(raw, version, colls)]
    return version, colls


def _maxskew(c: Client, argv: list[bytes], at: int, rec: Record) -> None:
    """Parse the options at ``argv[at:]`` (``MAXSKEW ms``, ``SCHEMA v``, any order):
    refuse a record too far in the future, or one the schema refuses (see the module
    docstring). The effect logged leaves the options out."""
    rest = argv[at:]
    if not rest:
        return
    if len(rest) % 2:
        raise CommandError(SYNTAX)
    for i in range(0, len(rest), 2):
        opt, n = rest[i].lower(), arg_int(rest[i + 1])
        if opt == b"maxskew":
            ahead = rec.newest().ms - c.server.now_ms()
            if n >= 0 and ahead > n:
                raise CommandError(
                    f"ERR LLSKEW version is {ahead} ms ahead of this replica's clock"
                )
        elif opt == b"schema":
            _check_schema(c, argv[1], rec, n)
        else:
            raise CommandError(SYNTAX)
    c.prop = [argv[:at]]


def _check_schema(c: Client, key: bytes, rec: Record, wanted: int) -> None:
    have, colls = _schema(c)
    if have < wanted:
        raise CommandError(
            f"TRYAGAIN LL schema version {wanted} is not applied here yet (have {have})"
        )
    refused = None
    if rec.base_kind == lww.STRING:
        refused = schema.validate(colls, key, None)
    live = {f: v for f, (_, v) in rec.fields.items() if v is not None}
    if refused is None and live:
        refused = schema.validate(colls, key, live)
    if refused is not None:
        raise CommandError(refused)


@handler("ll.schema")
def ll_schema(c: Client, argv: list[bytes]) -> bytes:
    have, _ = _schema(c)
    if len(argv) == 1:
        return enc.integer(have)
    if len(argv) != 3:
        raise CommandError("ERR wrong number of arguments for 'll.schema' command")
    version = arg_int(argv[1])
    try:
        got, _ = schema.decode_schema(argv[2])
    except ValueError:
        raise CommandError("ERR LL invalid schema payload") from None
    if got != version:
        raise CommandError("ERR LL the schema payload is of another version")
    if version <= have:
        return enc.ZERO
    c.db.set(SCHEMA_KEY, argv[2])
    c.server.dirty += 1
    return enc.ONE


def _current(c: Client, key: bytes) -> Record | None:
    v = c.db.lookup(key)
    if v is not None and v.__class__ is not Record:
        raise CommandError(WRONGTYPE)
    return v


def _apply(c: Client, key: bytes, rec: Record) -> bytes:
    """Merge ``rec`` into the key; count a change so the command is propagated."""
    db = c.db
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
    rec = _current(c, argv[1])
    if rec is None or not rec.is_tombstone() or rec.base_version != v:
        return enc.ZERO
    c.db.delete(argv[1])
    c.server.dirty += 1
    return enc.ONE


def _depth(b: bytes) -> int:
    d = arg_int(b)
    if not 0 <= d <= lww.TREE_DEPTH_MAX:
        raise CommandError(_BAD_DEPTH)
    return d


@handler("ll.tree")
def ll_tree(c: Client, argv: list[bytes]) -> bytes:
    leaves = lww.tree_leaves(c.db.data.items(), _depth(argv[1]))
    return enc.bulk(b"".join(h.to_bytes(8, "big") for h in leaves))


@handler("ll.range")
def ll_range(c: Client, argv: list[bytes]) -> bytes:
    depth = _depth(argv[1])
    lo, hi = arg_int(argv[2]), arg_int(argv[3])
    out: list[bytes] = []
    for key, v in c.db.data.items():
        if v.__class__ is Record and lo <= lww.leaf_of(key, depth) < hi:
            out.append(key)
            out.append(lww.encode(v))
    return enc.bulk_array(out)
