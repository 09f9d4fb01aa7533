"""The hash commands of a leaderless database: last-write-wins per field.

Owns: HSET (HMSET), HGET, HMGET, HGETALL, HDEL, HEXISTS, HLEN as plans (ops.py). A hash
write is a record of field cells at one version (``lww.fields_write``): concurrent writes
of different fields both survive; of one field, the newer wins. HSET and HDEL read first
(their counts, and WRONGTYPE on a string key), then write. HSET is checked against the
database's collections (cluster/schema.py) before anything is sent. Never does IO.
"""

from __future__ import annotations

from collections.abc import Generator

from ..cluster import schema
from ..keyspace import lww
from ..resp import encoder as enc
from .ops import Ctx, Op, Outcome, Plan, Read, Write
from .usercmds import WRONGTYPE, arity_error, command, error_of, view


def _fields(ctx: Ctx, o: Outcome) -> dict[bytes, bytes] | bytes:
    """The live fields, or the WRONGTYPE error for a string."""
    kind, value = view(o, ctx)
    if kind == "string":
        return enc.error(WRONGTYPE)
    if kind == "hash":
        assert isinstance(value, dict)
        return value
    return {}


FieldsPlan = Generator[list[Op], list[Outcome], "bytes | dict[bytes, bytes]"]


def _fields_of(ctx: Ctx, key: bytes) -> FieldsPlan:
    """Sub-plan: the key's live fields at the read level, or an error reply."""
    outs = yield [Read(key, ctx.read)]
    return error_of(outs) or _fields(ctx, outs[0])


def _hset(ctx: Ctx, argv: list[bytes], name: bytes, ok_reply: bool) -> Plan:
    if len(argv) < 4 or len(argv) % 2:
        return arity_error(name)
    key = argv[1]
    pairs = dict(zip(argv[2::2], argv[3::2], strict=True))
    refused = schema.validate(ctx.collections, key, pairs)
    if refused is not None:
        return enc.error(refused)
    old = yield from _fields_of(ctx, key)
    if isinstance(old, bytes):
        return old
    cells: dict[bytes, bytes | None] = dict(pairs)
    outs = yield [Write(key, lambda v: lww.fields_write(v, cells), ctx.write)]
    failed = error_of(outs)
    if failed is not None:
        return failed
    return enc.OK if ok_reply else enc.integer(sum(1 for f in pairs if f not in old))


@command("hset", -4)
def hset(ctx: Ctx, argv: list[bytes]) -> Plan:
    return (yield from _hset(ctx, argv, b"hset", False))


@command("hmset", -4)
def hmset(ctx: Ctx, argv: list[bytes]) -> Plan:
    return (yield from _hset(ctx, argv, b"hmset", True))


@command("hdel", -3)
def hdel(ctx: Ctx, argv: list[bytes]) -> Plan:
    key = argv[1]
    old = yield from _fields_of(ctx, key)
    if isinstance(old, bytes):
        return old
    cells: dict[bytes, bytes | None] = dict.fromkeys(argv[2:])
    outs = yield [Write(key, lambda v: lww.fields_write(v, cells), ctx.write)]
    failed = error_of(outs)
    if failed is not None:
        return failed
    return enc.integer(sum(1 for f in cells if f in old))


@command("hget", 3)
def hget(ctx: Ctx, argv: list[bytes]) -> Plan:
    f = yield from _fields_of(ctx, argv[1])
    if isinstance(f, bytes):
        return f
    return ctx.p.bulk_or_null(f.get(argv[2]))


@command("hmget", -3)
def hmget(ctx: Ctx, argv: list[bytes]) -> Plan:
    f = yield from _fields_of(ctx, argv[1])
    if isinstance(f, bytes):
        return f
    return ctx.p.bulks_or_null(f.get(x) for x in argv[2:])


@command("hgetall", 2)
def hgetall(ctx: Ctx, argv: list[bytes]) -> Plan:
    f = yield from _fields_of(ctx, argv[1])
    if isinstance(f, bytes):
        return f
    return ctx.p.map_bulks(sorted(f.items()))


@command("hexists", 3)
def hexists(ctx: Ctx, argv: list[bytes]) -> Plan:
    f = yield from _fields_of(ctx, argv[1])
    if isinstance(f, bytes):
        return f
    return enc.integer(1 if argv[2] in f else 0)


@command("hlen", 2)
def hlen(ctx: Ctx, argv: list[bytes]) -> Plan:
    f = yield from _fields_of(ctx, argv[1])
    if isinstance(f, bytes):
        return f
    return enc.integer(len(f))


@command("hkeys", 2)
def hkeys(ctx: Ctx, argv: list[bytes]) -> Plan:
    f = yield from _fields_of(ctx, argv[1])
    if isinstance(f, bytes):
        return f
    return enc.bulk_array(sorted(f))


@command("hvals", 2)
def hvals(ctx: Ctx, argv: list[bytes]) -> Plan:
    f = yield from _fields_of(ctx, argv[1])
    if isinstance(f, bytes):
        return f
    return enc.bulk_array(v for _, v in sorted(f.items()))
