"""Blocking list commands: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP.

Owns: their arguments, replies and effects. Each first tries its non-blocking form; when
nothing is there it raises ``BlockRequest`` and the core parks the client until a write
creates one of the keys (then the command runs again, in blocking order) or the timeout
passes (then the client gets a null). Served commands propagate as their non-blocking
effect (BLPOP as LPOP, BLMOVE as LMOVE, BLMPOP as LPOP/RPOP key count), so replicas never
block. Their keyspace events are the non-blocking forms' (published by the shared helpers
of ``lists``), after the events of the write that served them.
"""

from __future__ import annotations

from ..engine.blocking import BlockRequest
from ..engine.client import Client
from ..keyspace.numbers import timeout_seconds_ms
from ..resp import encoder as enc
from .base import CommandError
from .lists import (
    End,
    get_list,
    move,
    mpop,
    mpop_effect,
    mpop_reply,
    parse_end,
    parse_mpop,
    pop_from,
)
from .table import handler

LLONG_MAX = 2**63 - 1
_POP = {End.LEFT: b"LPOP", End.RIGHT: b"RPOP"}
_END_WORD = {End.LEFT: b"LEFT", End.RIGHT: b"RIGHT"}


def parse_timeout_ms(arg: bytes, now_ms: int) -> int:
    """A blocking timeout in seconds (a float since Redis 6) as ms; 0 waits forever.

    Redis 7.2 getTimeoutFromObjectOrReply: rounded up to whole ms (``timeout_seconds_ms``),
    "out of range" above LLONG_MAX ms or when the deadline ``now + ms`` would overflow
    (redis#11338), then "negative" (so -0.0005 rounds to 0 and waits forever, as in Redis).
    """
    ms = timeout_seconds_ms(arg)
    if ms is None:
        raise CommandError("ERR timeout is not a float or out of range")
    if ms > LLONG_MAX:
        raise CommandError("ERR timeout is out of range")
    if ms < 0:
        raise CommandError("ERR timeout is negative")
    if ms > LLONG_MAX - now_ms:
        raise CommandError("ERR timeout is out of range")
    return ms


def _bpop(c: Client, argv: list[bytes], where: End) -> bytes:
    timeout_ms = parse_timeout_ms(argv[-1], c.server.now_ms())
    keys = argv[1:-1]
    db = c.db
    for key in keys:
        if get_list(db, key) is not None:  # WRONGTYPE for a non-list, in key order
            popped = pop_from(db, key, where, 1)
            assert popped
            c.prop = [[_POP[where], key]]
            c.server.dirty += 1
            return b"*2\r\n" + enc.bulk(key) + enc.bulk(popped[0])
    raise BlockRequest(keys, timeout_ms, c.p.null_array)


@handler("blpop")
def blpop(c: Client, argv: list[bytes]) -> bytes:
    return _bpop(c, argv, End.LEFT)


@handler("brpop")
def brpop(c: Client, argv: list[bytes]) -> bytes:
    return _bpop(c, argv, End.RIGHT)


def _bmove(
    c: Client,
    src: bytes,
    dst: bytes,
    wherefrom: End,
    whereto: End,
    timeout: bytes,
    effect: list[bytes],
) -> bytes:
    timeout_ms = parse_timeout_ms(timeout, c.server.now_ms())
    x = move(c.db, src, dst, wherefrom, whereto)
    if x is None:
        raise BlockRequest([src], timeout_ms, c.p.null_array, c.p.null)
    c.prop = [effect]
    c.server.dirty += 1
    return enc.bulk(x)


@handler("blmove")
def blmove(c: Client, argv: list[bytes]) -> bytes:
    wherefrom, whereto = parse_end(argv[3]), parse_end(argv[4])
    effect = [b"LMOVE", argv[1], argv[2], _END_WORD[wherefrom], _END_WORD[whereto]]
    return _bmove(c, argv[1], argv[2], wherefrom, whereto, argv[5], effect)


@handler("brpoplpush")
def brpoplpush(c: Client, argv: list[bytes]) -> bytes:
    effect = [b"RPOPLPUSH", argv[1], argv[2]]
    return _bmove(c, argv[1], argv[2], End.RIGHT, End.LEFT, argv[3], effect)


@handler("blmpop")
def blmpop(c: Client, argv: list[bytes]) -> bytes:
    timeout_ms = parse_timeout_ms(argv[1], c.server.now_ms())
    keys, where, count = parse_mpop(argv, 2)
    got = mpop(c.db, keys, where, count)
    if got is None:
        raise BlockRequest(keys, timeout_ms, c.p.null_array)
    key, popped = got
    c.prop = [mpop_effect(key, where, len(popped))]
    c.server.dirty += len(popped)
    return mpop_reply(key, popped)
