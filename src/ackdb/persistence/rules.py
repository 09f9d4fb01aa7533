"""The arithmetic of the persistence policy: save rules and AOF growth.

Owns: matching ``save`` rules against the changes and the time since the last save, and
the growth of the AOF over its size after the last rewrite. Pure functions of integers;
``persistence.policy`` calls them and keeps the state. Must never read clocks or files.
"""

from __future__ import annotations

from collections.abc import Iterable


def save_rule_due(
    rules: Iterable[tuple[int, int]] | None,
    changes: int,
    elapsed_s: int,
    retry_allowed: bool,
) -> tuple[int, int] | None:
    """The first ``(seconds, changes)`` rule met -- at least ``changes`` writes and at
    least ``seconds`` since the last save (Redis redis.conf "save") -- or None. After a
    failed BGSAVE no rule fires until ``retry_allowed`` (Redis serverCron: the failed
    save is retried after CONFIG_BGSAVE_RETRY_DELAY)."""
    if not retry_allowed:
        return None
    for seconds, needed in rules or ():
        if changes >= needed and elapsed_s >= seconds:
            return seconds, needed
    return None


def rewrite_growth_pct(size: int, base_size: int, percentage: int, min_size: int) -> int | None:
    """The AOF's growth in percent over ``base_size`` (its size after the last rewrite,
    1 when unknown) when it calls for an automatic rewrite, else None (Redis redis.conf
    "auto-aof-rewrite-percentage": 0 disables it; "auto-aof-rewrite-min-size": never
    below this size)."""
    if not percentage or size < min_size:
        return None
    base = base_size or 1
    growth = (size - base) * 100 // base
    return growth if growth >= percentage else None
