"""The user commands of a leaderless database's endpoint: strings and keys.

Owns: each data command's plan (ops.py): its argument checks (Redis's error texts), the
reads and writes it asks for at the levels of ``Ctx``, and the reply it shapes from the
outcomes; the table of every data command (``PLANS``, filled by hashcmds.py,
expirycmds.py and scancmds.py too) and the errors for everything else. Never does IO.

Commands that depend on what the key holds -- ``SET`` with ``NX`` / ``XX`` / ``GET``,
``DEL`` (its count), ``HSET`` (new fields), ``HDEL``, the ``EXPIRE`` family -- **read
first, at the read level, then write**. Without a leader that is not atomic: a write
through another coordinator may land between the read and the write (the later version
wins, as for any two writes). ``DEL`` writes a tombstone for every key named, present or
not (a copy live on a replica the read missed is deleted too); its count is what the
read saw.
"""

from __future__ import annotations

from collections.abc import Callable

from ..cluster import schema
from ..keyspace import lww
from ..resp import encoder as enc
from ..resp.ints import parse_ll
from .ops import Ctx, Outcome, Plan, Read, Write

PlanFn = Callable[[Ctx, list[bytes]], Plan]
PLANS: dict[bytes, tuple[int, PlanFn]] = {}  # name -> (Redis arity, plan)

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INT = "ERR value is not an integer or out of range"
REFUSED = {
    b"incr",
    b"incrby",
    b"decr",
    b"decrby",
    b"incrbyfloat",
    b"hincrby",
    b"hincrbyfloat",
    b"append",
    b"setrange",
    b"getset",
    b"getdel",
    b"setnx",
    b"hsetnx",
}


def command(name: str, arity: int) -> Callable[[PlanFn], PlanFn]:
    def reg(fn: PlanFn) -> PlanFn:
        PLANS[name.encode()] = (arity, fn)
        return fn

    return reg


def refusal(name: bytes) -> str:
    cmd = name.decode("utf-8", "replace").upper()
    return (
        f"ERR {cmd} is not supported on a leaderless database: without a leader there is no"
        " single place to read-modify-write, so concurrent updates would be lost silently"
        " (write the new value with SET / HSET, or keep one writer per key)"
    )


def unknown(argv: list[bytes]) -> str:
    name = argv[0].decode("utf-8", "replace")[:128]
    return (
        f"ERR unknown command '{name}' on a leaderless database (supported: GET SET DEL"
        " EXISTS MGET MSET, the EXPIRE family, HSET HGET HMGET HGETALL HDEL HEXISTS HLEN,"
        " SCAN KEYS DBSIZE)"
    )


def arity_error(name: bytes) -> bytes:
    return enc.error(f"ERR wrong number of arguments for '{name.decode(errors='replace')}' command")


def error_of(outs: list[Outcome]) -> bytes | None:
    """The first failed operation's error reply, or None."""
    for o in outs:
        e = o.done.error
        if e is not None:
            return enc.error(e.text())
    return None


def view(o: Outcome, ctx: Ctx) -> tuple[str, object]:
    rec = o.record
    if rec is None:
        return "absent", None
    return rec.view_at(ctx.now_ms)


def live(o: Outcome, ctx: Ctx) -> bool:
    return view(o, ctx)[0] in ("string", "hash")


# -- strings -------------------------------------------------------------------------


@command("get", 2)
def get(ctx: Ctx, argv: list[bytes]) -> Plan:
    outs = yield [Read(argv[1], ctx.read)]
    failed = error_of(outs)
    if failed is not None:
        return failed
    return _string_reply(ctx, outs[0])


def _string_reply(ctx: Ctx, o: Outcome) -> bytes:
    kind, value = view(o, ctx)
    if kind == "string":
        assert isinstance(value, bytes)
        return enc.bulk(value)
    if kind == "hash":
        return enc.error(WRONGTYPE)
    return ctx.p.null


class SetArgs:
    """SET's options after ``key value`` (Redis's grammar and error texts)."""

    __slots__ = ("cond", "get", "keep_ttl", "at_ms", "error")

    def __init__(self, ctx: Ctx, opts: list[bytes]) -> None:
        self.cond = b""  # b"nx" | b"xx"
        self.get = False
        self.keep_ttl = False
        self.at_ms: int | None = None
        self.error: str | None = None
        i = 0
        while i < len(opts) and self.error is None:
            o = opts[i].lower()
            if o in (b"nx", b"xx") and not self.cond:
                self.cond = o
            elif o == b"get" and not self.get:
                self.get = True
            elif o == b"keepttl" and self.at_ms is None and not self.keep_ttl:
                self.keep_ttl = True
            elif o in (b"ex", b"px", b"exat", b"pxat") and self.at_ms is None and not self.keep_ttl:
                if i + 1 >= len(opts):
                    self.error = SYNTAX
                    break
                self.at_ms = self._when(ctx, o, opts[i + 1])
                i += 1
            else:
                self.error = SYNTAX
            i += 1

    def _when(self, ctx: Ctx, unit: bytes, arg: bytes) -> int:
        n = parse_ll(arg)
        if n is None:
            self.error = NOT_INT
            return 0
        if n <= 0:
            self.error = "ERR invalid expire time in 'set' command"
            return 0
        return expire_at(ctx, unit, n)


def expire_at(ctx: Ctx, unit: bytes, n: int) -> int:
    """An absolute time in ms from EX/PX (relative) or EXAT/PXAT (absolute)."""
    if unit in (b"ex", b"expire"):
        return ctx.now_ms + n * 1000
    if unit in (b"px", b"pexpire"):
        return ctx.now_ms + n
    if unit in (b"exat", b"expireat"):
        return n * 1000
    return n


def _set_record(a: SetArgs, value: bytes) -> Callable[[lww.Version], lww.Record]:
    at = a.at_ms
    if at is not None:
        return lambda v: lww.string_write_ex(v, value, max(at, 1))
    keep = a.keep_ttl
    return lambda v: lww.string_write(v, value, keep_ttl=keep)


@command("set", -3)
def set_(ctx: Ctx, argv: list[bytes]) -> Plan:
    key, value = argv[1], argv[2]
    a = SetArgs(ctx, argv[3:])
    if a.error is not None:
        return enc.error(a.error)
    refused = schema.validate(ctx.collections, key, None)
    if refused is not None:
        return enc.error(refused)
    old: bytes | None = None
    if a.cond or a.get:
        outs = yield [Read(key, ctx.read)]
        failed = error_of(outs)
        if failed is not None:
            return failed
        kind, val = view(outs[0], ctx)
        if a.get and kind == "hash":
            return enc.error(WRONGTYPE)
        old = val if kind == "string" else None  # type: ignore[assignment]
        exists = kind in ("string", "hash")
        if (a.cond == b"nx" and exists) or (a.cond == b"xx" and not exists):
            return ctx.p.bulk_or_null(old) if a.get else ctx.p.null
    outs = yield [Write(key, _set_record(a, value), ctx.write)]
    failed = error_of(outs)
    if failed is not None:
        return failed
    return ctx.p.bulk_or_null(old) if a.get else enc.OK


@command("mget", -2)
def mget(ctx: Ctx, argv: list[bytes]) -> Plan:
    outs = yield [Read(k, ctx.read) for k in argv[1:]]
    failed = error_of(outs)
    if failed is not None:
        return failed
    vals: list[bytes | None] = []
    for o in outs:
        kind, value = view(o, ctx)
        vals.append(value if kind == "string" else None)  # type: ignore[arg-type]
    return ctx.p.bulks_or_null(vals)


@command("mset", -3)
def mset(ctx: Ctx, argv: list[bytes]) -> Plan:
    """One write per key, all at the write level; ``+OK`` only when every one reached
    it, else the first error (the writes that reached it stand)."""
    if len(argv) % 2 == 0:
        return arity_error(b"mset")
    pairs = list(zip(argv[1::2], argv[2::2], strict=True))
    for k, _ in pairs:
        refused = schema.validate(ctx.collections, k, None)
        if refused is not None:
            return enc.error(refused)
    outs = yield [Write(k, _string_of(val), ctx.write) for k, val in pairs]
    return error_of(outs) or enc.OK


def _string_of(value: bytes) -> Callable[[lww.Version], lww.Record]:
    return lambda v: lww.string_write(v, value)


# -- keys ------------------------------------------------------------------------------


@command("exists", -2)
def exists(ctx: Ctx, argv: list[bytes]) -> Plan:
    outs = yield [Read(k, ctx.read) for k in argv[1:]]
    failed = error_of(outs)
    if failed is not None:
        return failed
    return enc.integer(sum(1 for o in outs if live(o, ctx)))


@command("del", -2)
def del_(ctx: Ctx, argv: list[bytes]) -> Plan:
    keys = list(dict.fromkeys(argv[1:]))
    outs = yield [Read(k, ctx.read) for k in keys]
    failed = error_of(outs)
    if failed is not None:
        return failed
    count = sum(1 for o in outs if live(o, ctx))
    done = yield [Write(k, lww.delete_write, ctx.write) for k in keys]
    return error_of(done) or enc.integer(count)


PLANS[b"unlink"] = (-2, del_)


@command("type", 2)
def type_(ctx: Ctx, argv: list[bytes]) -> Plan:
    outs = yield [Read(argv[1], ctx.read)]
    failed = error_of(outs)
    if failed is not None:
        return failed
    kind = view(outs[0], ctx)[0]
    return enc.simple(kind if kind in ("string", "hash") else "none")


def run_plan_sync(ctx: Ctx, argv: list[bytes]) -> Plan | bytes:
    """The plan of ``argv`` (a data command), or the reply when there is none to run:
    an arity error, a refused increment, an unknown command."""
    name = argv[0].lower()
    entry = PLANS.get(name)
    if entry is None:
        return enc.error(refusal(name) if name in REFUSED else unknown(argv))
    arity, fn = entry
    n = len(argv)
    if (arity > 0 and n != arity) or n < -arity:
        return arity_error(name)
    return fn(ctx, argv)


# The other families register their plans in PLANS when imported (they import this module).
from . import expirycmds, hashcmds, scancmds  # noqa: E402, F401, I001
