"""The EXPIRE family on a leaderless database: a versioned expiry cell per key.

Owns: EXPIRE PEXPIRE EXPIREAT PEXPIREAT (with NX XX GT LT), PERSIST, TTL PTTL
EXPIRETIME PEXPIRETIME as plans (ops.py). An expiry is a write of the record's expiry
cell (``lww.expiry_write``: an absolute time, or 0 for PERSIST) at a new version; the
cell is in effect until a whole-key write without KEEPTTL supersedes it (keyspace/lww.py).
Setting or dropping a TTL reads first (Redis answers 0 for a missing key and the NX XX GT
LT conditions look at the current TTL), then writes -- not atomic without a leader, like
every read-then-write here. A time in the past makes the key read as absent at once.
Never does IO.
"""

from __future__ import annotations

from ..keyspace import lww
from ..resp import encoder as enc
from ..resp.ints import parse_ll
from .ops import Ctx, Outcome, Plan, Read, Write
from .usercmds import NOT_INT, command, error_of, expire_at, live


def _ttl_ok(cond: bytes, current: int | None, at: int) -> bool:
    """Redis's NX / XX / GT / LT (no TTL counts as infinite for GT / LT)."""
    if cond == b"nx":
        return current is None
    if cond == b"xx":
        return current is not None
    if cond == b"gt":
        return current is not None and at > current
    if cond == b"lt":
        return current is None or at < current
    return True


def _expire(ctx: Ctx, argv: list[bytes], unit: bytes) -> Plan:
    n = parse_ll(argv[2])
    if n is None:
        return enc.error(NOT_INT)
    conds = [a.lower() for a in argv[3:]]
    if any(c not in (b"nx", b"xx", b"gt", b"lt") for c in conds):
        return enc.error(
            f"ERR Unsupported option {argv[3 + len(conds) - 1].decode(errors='replace')}"
        )
    if len(set(conds)) > 1 and (b"nx" in conds or set(conds) >= {b"gt", b"lt"}):
        return enc.error(
            "ERR NX and XX, GT or LT options at the same time are not compatible"
            if b"nx" in conds
            else "ERR GT and LT options at the same time are not compatible"
        )
    at = max(1, expire_at(ctx, unit, n))
    key = argv[1]
    outs = yield [Read(key, ctx.read)]
    failed = error_of(outs)
    if failed is not None:
        return failed
    if not live(outs[0], ctx):
        return enc.ZERO
    current = _at(outs[0])
    if not all(_ttl_ok(c, current, at) for c in conds):
        return enc.ZERO
    done = yield [Write(key, lambda v: lww.expiry_write(v, at), ctx.write)]
    return error_of(done) or enc.ONE


def _at(o: Outcome) -> int | None:
    rec = o.record
    return None if rec is None else rec.expires_at()


@command("expire", -3)
def expire(ctx: Ctx, argv: list[bytes]) -> Plan:
    return (yield from _expire(ctx, argv, b"expire"))


@command("pexpire", -3)
def pexpire(ctx: Ctx, argv: list[bytes]) -> Plan:
    return (yield from _expire(ctx, argv, b"pexpire"))


@command("expireat", -3)
def expireat(ctx: Ctx, argv: list[bytes]) -> Plan:
    return (yield from _expire(ctx, argv, b"expireat"))


@command("pexpireat", -3)
def pexpireat(ctx: Ctx, argv: list[bytes]) -> Plan:
    return (yield from _expire(ctx, argv, b"pexpireat"))


@command("persist", 2)
def persist(ctx: Ctx, argv: list[bytes]) -> Plan:
    outs = yield [Read(argv[1], ctx.read)]
    failed = error_of(outs)
    if failed is not None:
        return failed
    if not live(outs[0], ctx) or _at(outs[0]) is None:
        return enc.ZERO
    done = yield [Write(argv[1], lambda v: lww.expiry_write(v, 0), ctx.write)]
    return error_of(done) or enc.ONE


def _ttl(ctx: Ctx, argv: list[bytes], absolute: bool, ms: bool) -> Plan:
    outs = yield [Read(argv[1], ctx.read)]
    failed = error_of(outs)
    if failed is not None:
        return failed
    if not live(outs[0], ctx):
        return enc.integer(-2)
    at = _at(outs[0])
    if at is None:
        return enc.integer(-1)
    left = at if absolute else max(0, at - ctx.now_ms)
    if not ms:
        left = (left + (0 if absolute else 500)) // 1000
    return enc.integer(left)


@command("ttl", 2)
def ttl(ctx: Ctx, argv: list[bytes]) -> Plan:
    return (yield from _ttl(ctx, argv, False, False))


@command("pttl", 2)
def pttl(ctx: Ctx, argv: list[bytes]) -> Plan:
    return (yield from _ttl(ctx, argv, False, True))


@command("expiretime", 2)
def expiretime(ctx: Ctx, argv: list[bytes]) -> Plan:
    return (yield from _ttl(ctx, argv, True, False))


@command("pexpiretime", 2)
def pexpiretime(ctx: Ctx, argv: list[bytes]) -> Plan:
    return (yield from _ttl(ctx, argv, True, True))
