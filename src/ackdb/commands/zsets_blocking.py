"""Blocking sorted-set pops: BZPOPMIN, BZPOPMAX, BZMPOP.

Owns: their arguments, replies and effects. Like the blocking list commands, each first
tries its non-blocking form and raises ``BlockRequest`` when every key is empty; served
pops propagate as ZPOPMIN / ZPOPMAX key count, so replicas never block.
"""

from __future__ import annotations

from ..engine.blocking import BlockRequest
from ..engine.client import Client
from ..resp import encoder as enc
from .lists_blocking import parse_timeout_ms
from .table import handler
from .zsets import first_zset, mpop_reply, parse_mpop, pop, pop_effect, score_text


def _bzpop(c: Client, argv: list[bytes], maximum: bool) -> bytes:
    timeout_ms = parse_timeout_ms(argv[-1], c.server.now_ms())
    keys = argv[1:-1]
    found = first_zset(c.db, keys)
    if found is None:
        raise BlockRequest(keys, timeout_ms, c.p.null_array)
    key, z = found
    taken = pop(c, key, z, 1, maximum)
    c.prop = [pop_effect(key, maximum, len(taken))]
    score, _, member = taken[0]
    return b"*3\r\n" + enc.bulk(key) + member + c.p.double(score_text(score))


@handler("bzpopmin")
def bzpopmin(c: Client, argv: list[bytes]) -> bytes:
    return _bzpop(c, argv, False)


@handler("bzpopmax")
def bzpopmax(c: Client, argv: list[bytes]) -> bytes:
    return _bzpop(c, argv, True)


@handler("bzmpop")
def bzmpop(c: Client, argv: list[bytes]) -> bytes:
    timeout_ms = parse_timeout_ms(argv[1], c.server.now_ms())
    keys, maximum, count = parse_mpop(argv, 2)
    found = first_zset(c.db, keys)
    if found is None:
        raise BlockRequest(keys, timeout_ms, c.p.null_array)
    key, z = found
    taken = pop(c, key, z, count, maximum)
    c.prop = [pop_effect(key, maximum, len(taken))]
    return mpop_reply(c, key, taken)
