"""The table entries of MEMORY and its subcommands: data only, Redis 7.2's facts (flags,
ACL categories, key specs and tips as Redis reports them in COMMAND INFO)."""

from __future__ import annotations

from .keyspecs import BeginIndex, FindRange, spec
from .model import Command, entry

_SPECIAL = "nondeterministic_output request_policy:all_shards response_policy:special"

ENTRIES: list[Command] = [
    entry(
        "memory",
        -2,
        group="server",
        summary="A container for memory diagnostics commands.",
        since="4.0.0",
        complexity="Depends on subcommand.",
        acl="@slow",
        container=True,
    ),
    entry(
        "memory|doctor",
        2,
        group="server",
        summary="Outputs a memory problems report.",
        since="4.0.0",
        complexity="O(1)",
        acl="@slow",
        tips=_SPECIAL,
    ),
    entry(
        "memory|help",
        2,
        "loading stale",
        group="server",
        summary="Returns helpful text about the different subcommands.",
        since="4.0.0",
        complexity="O(1)",
        acl="@slow",
    ),
    entry(
        "memory|malloc-stats",
        2,
        group="server",
        summary="Returns the allocator statistics.",
        since="4.0.0",
        complexity="Depends on how much memory is allocated, could be slow",
        acl="@slow",
        tips=_SPECIAL,
    ),
    entry(
        "memory|purge",
        2,
        group="server",
        summary="Asks the allocator to release memory.",
        since="4.0.0",
        complexity="Depends on how much memory is allocated, could be slow",
        acl="@slow",
        tips="request_policy:all_shards response_policy:all_succeeded",
    ),
    entry(
        "memory|stats",
        2,
        group="server",
        summary="Returns details about memory usage.",
        since="4.0.0",
        complexity="O(1)",
        acl="@slow",
        tips=_SPECIAL,
    ),
    entry(
        "memory|usage",
        -3,
        "readonly",
        (2, 2, 1),
        group="server",
        summary="Estimates the memory usage of a key.",
        since="4.0.0",
        complexity="O(N) where N is the number of samples.",
        args="key [SAMPLES count]",
        acl="@read @slow",
        specs=(spec("RO", BeginIndex(2), FindRange(0, 1, 0)),),
    ),
]
