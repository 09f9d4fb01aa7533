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
from .table import command
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


@command(
    "bzpopmin",
    -3,
    "write noscript blocking fast",
    (1, -2, 1),
    group="sorted_set",
    since="5.0.0",
    summary="Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
    args="key [key ...] timeout",
    complexity="O(log(N)) with N being the number of elements in the sorted set.",
)
def bzpopmin(c: Client, argv: list[bytes]) -> bytes:
    return _bzpop(c, argv, False)


@command(
    "bzpopmax",
    -3,
    "write noscript blocking fast",
    (1, -2, 1),
    group="sorted_set",
    since="5.0.0",
    summary="Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.",
    args="key [key ...] timeout",
    complexity="O(log(N)) with N being the number of elements in the sorted set.",
)
def bzpopmax(c: Client, argv: list[bytes]) -> bytes:
    return _bzpop(c, argv, True)


@command(
    "bzmpop",
    -5,
    "write blocking movablekeys",
    (0, 0, 0),
    numkeys=2,
    group="sorted_set",
    since="7.0.0",
    summary="Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
    args="timeout numkeys key [key ...] MIN|MAX [COUNT count]",
    complexity="O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
)
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
