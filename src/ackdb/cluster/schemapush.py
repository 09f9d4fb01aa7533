"""When a node's agent pushes a leaderless database's schema to a local replica.

Owns: the decision ``push_due`` (pure: the replica's spec, the version it last answered
to ``LL.SCHEMA``, when the agent last pushed) and its retry interval. The supervisor
(cluster/supervise.py) asks it after each probe of a running leaderless replica and when
the database's schema version rises; the shell (node/shards.py) sends ``LL.SCHEMA
<version> <payload>``. A replica that answered a lower version, or none (-1: it could
not say, e.g. a server without the command yet, answering ``-ERR unknown command``), is
pushed to again every ``SCHEMA_PUSH_RETRY_MS`` until it answers the spec's version or
more. Never does IO, reads no clock.
"""

from __future__ import annotations

from ackdb.cluster.shardspec import ShardSpec

SCHEMA_PUSH_RETRY_MS = 2000  # a push not seen applied by the probes is sent again after this


def push_due(spec: ShardSpec, seen_version: int, pushed_ms: int | None, now_ms: int) -> bool:
    """True when the replica of ``spec`` needs ``LL.SCHEMA`` now: the database has a schema
    (version > 0) the replica has not answered (``seen_version``: its ``LL.SCHEMA``
    answer, -1 unknown), and no push went out in the last ``SCHEMA_PUSH_RETRY_MS``
    (``pushed_ms``: the last one's time, None: none since the spec last changed)."""
    if not spec.leaderless or spec.schema_version <= 0 or seen_version >= spec.schema_version:
        return False
    return pushed_ms is None or now_ms - pushed_ms >= SCHEMA_PUSH_RETRY_MS
