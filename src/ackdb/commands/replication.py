"""Replication commands: REPLICAOF / SLAVEOF, REPLCONF, PSYNC, SYNC, WAIT, WAITAOF,
FAILOVER, ROLE.

Owns: their table entries (Redis 7.2 arities and flags) and handing them to the server's
replication shell (``server.repl``), whose engine decides every reply. A core without a
shell (unit tests of the core alone) answers as a lone primary.
"""

from __future__ import annotations

from typing import Any

from ..engine.blocking import BlockRequest
from ..engine.ports import Replication
from ..resp import encoder as enc
from .base import CommandError
from .table import command


def _repl(c: Any) -> Any:
    r = c.server.repl
    if r is None:
        raise CommandError("ERR replication is not available in this process")
    return r


@command(
    "replicaof",
    3,
    "admin noscript stale no_async_loading",
    group="server",
    since="5.0.0",
    summary="Configures a server as replica of another, or promotes it to a master.",
    args="host port",
)
def replicaof(c: Any, argv: list[bytes]) -> bytes:
    return bytes(_repl(c).replicaof(c, argv))


@command(
    "slaveof",
    3,
    "admin noscript stale no_async_loading",
    group="server",
    summary="Sets a Redis server as a replica of another, or promotes it to being a master.",
    args="host port",
)
def slaveof(c: Any, argv: list[bytes]) -> bytes:
    return bytes(_repl(c).replicaof(c, argv))


@command(
    "replconf",
    -1,
    "admin noscript loading stale allow_busy",
    group="server",
    since="3.0.0",
    summary="An internal command for configuring the replication stream.",
)
def replconf(c: Any, argv: list[bytes]) -> bytes:
    return bytes(_repl(c).replconf(c, argv))


@command(
    "psync",
    -3,
    "admin noscript no_async_loading no_multi",
    group="server",
    since="2.8.0",
    summary="An internal command used in replication.",
    args="replicationid offset",
)
def psync(c: Any, argv: list[bytes]) -> bytes:
    return bytes(_repl(c).psync(c, argv))


@command(
    "sync",
    1,
    "admin noscript no_async_loading no_multi",
    group="server",
    summary="An internal command used in replication.",
)
def sync(c: Any, argv: list[bytes]) -> bytes:
    # Pre-PSYNC replicas (Redis < 2.8) are out of scope (docs/replication.md).
    raise CommandError("ERR SYNC is not supported: use PSYNC (Redis >= 2.8 replicas)")


def _wait(c: Any, argv: list[bytes], aof: bool) -> bytes:
    reply = _repl(c).wait(c, argv, aof)
    if reply is None:
        # Parked without keys: the shell answers with the count reached.
        raise BlockRequest([], 0, b"")
    return bytes(reply)


@command(
    "wait",
    3,
    "noscript",
    group="connection",
    since="3.0.0",
    summary="Blocks until the asynchronous replication of all preceding write commands "
    "sent by the connection is completed.",
    args="numreplicas timeout",
    complexity="O(1)",
    acl="@slow",
)
def wait(c: Any, argv: list[bytes]) -> bytes:
    return _wait(c, argv, aof=False)


@command(
    "waitaof",
    4,
    "noscript",
    group="connection",
    since="7.2.0",
    summary="Blocks until all of the preceding write commands sent by the connection are "
    "written to the append-only file of the master and/or replicas.",
    args="numlocal numreplicas timeout",
    complexity="O(1)",
    acl="@slow",
)
def waitaof(c: Any, argv: list[bytes]) -> bytes:
    return _wait(c, argv, aof=True)


@command(
    "failover",
    -1,
    "admin noscript stale",
    group="server",
    since="6.2.0",
    summary="Starts a coordinated failover from a server to one of its replicas.",
    args="[TO host port [FORCE]] [ABORT] [TIMEOUT milliseconds]",
)
def failover(c: Any, argv: list[bytes]) -> bytes:
    return bytes(_repl(c).failover(argv))


@command(
    "role",
    1,
    "noscript loading stale fast",
    group="server",
    acl="@admin @dangerous",
    since="2.8.12",
    summary="Returns the replication role.",
)
def role(c: Any, argv: list[bytes]) -> bytes:
    r: Replication | None = c.server.repl
    if r is None:
        offset = int(c.server.master_repl_offset)
        return b"*3\r\n$6\r\nmaster\r\n" + enc.integer(offset) + enc.EMPTY_ARRAY
    return r.role_reply()
