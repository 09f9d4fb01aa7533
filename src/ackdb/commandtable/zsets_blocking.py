"""The table entries of the blocking sorted set commands: data only, Redis 7.2's facts (key specs and
tips as Redis reports them in COMMAND INFO)."""

from __future__ import annotations

from .keyspecs import BeginIndex, FindKeynum, FindRange, spec
from .model import Command, entry

ENTRIES: list[Command] = [
    entry(
        "bzpopmin",
        -3,
        "write noscript blocking fast",
        (1, -2, 1),
        group="sorted_set",
        summary="Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
        since="5.0.0",
        complexity="O(log(N)) with N being the number of elements in the sorted set.",
        args="key [key ...] timeout",
        acl="@write @sortedset @fast @blocking",
        specs=(spec("RW access delete", BeginIndex(1), FindRange(-2, 1, 0)),),
    ),
    entry(
        "bzpopmax",
        -3,
        "write noscript blocking fast",
        (1, -2, 1),
        group="sorted_set",
        summary="Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.",
        since="5.0.0",
        complexity="O(log(N)) with N being the number of elements in the sorted set.",
        args="key [key ...] timeout",
        acl="@write @sortedset @fast @blocking",
        specs=(spec("RW access delete", BeginIndex(1), FindRange(-2, 1, 0)),),
    ),
    entry(
        "bzmpop",
        -5,
        "write blocking movablekeys",
        group="sorted_set",
        summary="Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
        since="7.0.0",
        complexity="O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
        args="timeout numkeys key [key ...] MIN|MAX [COUNT count]",
        acl="@write @sortedset @slow @blocking",
        specs=(spec("RW access delete", BeginIndex(2), FindKeynum(0, 1, 1)),),
    ),
]
