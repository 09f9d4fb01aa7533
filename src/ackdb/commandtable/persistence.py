"""The table entries of the SAVE, BGSAVE, BGREWRITEAOF: data only, Redis 7.2's facts (key specs and
tips as Redis reports them in COMMAND INFO)."""

from __future__ import annotations

from .model import Command, entry

ENTRIES: list[Command] = [
    entry(
        "save",
        1,
        "admin noscript no_async_loading no_multi",
        group="server",
        summary="Synchronously saves the database(s) to disk.",
        complexity="O(N) where N is the total number of keys in all databases",
        acl="@admin @slow @dangerous",
    ),
    entry(
        "bgsave",
        -1,
        "admin noscript no_async_loading",
        group="server",
        summary="Asynchronously saves the database(s) to disk.",
        complexity="O(1)",
        args="[SCHEDULE]",
        acl="@admin @slow @dangerous",
    ),
    entry(
        "bgrewriteaof",
        1,
        "admin noscript no_async_loading",
        group="server",
        summary="Asynchronously rewrites the append-only file to disk.",
        complexity="O(1)",
        acl="@admin @slow @dangerous",
    ),
]
