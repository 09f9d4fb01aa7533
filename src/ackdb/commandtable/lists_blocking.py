"""The table entries of the blocking list commands: data only, Redis 7.2's facts (key specs and
tips as Redis reports them in COMMAND INFO)."""

from __future__ import annotations

from .keyspecs import BeginIndex, FindKeynum, FindRange, spec
from .model import Command, entry

ENTRIES: list[Command] = [
    entry(
        "blpop",
        -3,
        "write noscript blocking",
        (1, -2, 1),
        group="list",
        summary="Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        since="2.0.0",
        complexity="O(N) where N is the number of provided keys.",
        args="key [key ...] timeout",
        acl="@write @list @slow @blocking",
        specs=(spec("RW access delete", BeginIndex(1), FindRange(-2, 1, 0)),),
    ),
    entry(
        "brpop",
        -3,
        "write noscript blocking",
        (1, -2, 1),
        group="list",
        summary="Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        since="2.0.0",
        complexity="O(N) where N is the number of provided keys.",
        args="key [key ...] timeout",
        acl="@write @list @slow @blocking",
        specs=(spec("RW access delete", BeginIndex(1), FindRange(-2, 1, 0)),),
    ),
    entry(
        "blmove",
        6,
        "write denyoom noscript blocking",
        (1, 2, 1),
        group="list",
        summary="Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
        since="6.2.0",
        complexity="O(1)",
        args="source destination LEFT|RIGHT LEFT|RIGHT timeout",
        acl="@write @list @slow @blocking",
        specs=(
            spec("RW access delete", BeginIndex(1), FindRange(0, 1, 0)),
            spec("RW insert", BeginIndex(2), FindRange(0, 1, 0)),
        ),
    ),
    entry(
        "brpoplpush",
        4,
        "write denyoom noscript blocking",
        (1, 2, 1),
        group="list",
        summary="Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
        since="2.2.0",
        complexity="O(1)",
        args="source destination timeout",
        acl="@write @list @slow @blocking",
        specs=(
            spec("RW access delete", BeginIndex(1), FindRange(0, 1, 0)),
            spec("RW insert", BeginIndex(2), FindRange(0, 1, 0)),
        ),
    ),
    entry(
        "blmpop",
        -5,
        "write blocking movablekeys",
        group="list",
        summary="Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        since="7.0.0",
        complexity="O(N+M) where N is the number of provided keys and M is the number of elements returned.",
        args="timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]",
        acl="@write @list @slow @blocking",
        specs=(spec("RW access delete", BeginIndex(2), FindKeynum(0, 1, 1)),),
    ),
]
