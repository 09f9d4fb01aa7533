"""Replication commands: REPLICAOF / SLAVEOF, REPLCONF, PSYNC, SYNC, WAIT, WAITAOF,
FAILOVER, ROLE, and ackdb's ACKDB.SYNCWOFF, ACKDB.LEASE, ACKDB.FREEZE, ACKDB.DIVERGED.

Owns: their table entries (Redis 7.2 arities and flags) and handing them to the server's
replication shell (``server.repl``), whose engine decides every reply. A core without a
shell (unit tests of the core alone) answers as a lone primary.
"""

from __future__ import annotations

from typing import Any

from ..engine.blocking import BlockRequest
from ..engine.client import Client
from ..engine.ports import Replication
from ..resp import encoder as enc
from .base import CommandError
from .table import handler


def _repl(c: Client) -> Any:
    r = c.server.repl
    if r is None:
        raise CommandError("ERR replication is not available in this process")
    return r


@handler("replicaof")
def replicaof(c: Client, argv: list[bytes]) -> bytes:
    return bytes(_repl(c).replicaof(c, argv))


@handler("slaveof")
def slaveof(c: Client, argv: list[bytes]) -> bytes:
    return bytes(_repl(c).replicaof(c, argv))


@handler("replconf")
def replconf(c: Client, argv: list[bytes]) -> bytes:
    return bytes(_repl(c).replconf(c, argv))


@handler("psync")
def psync(c: Client, argv: list[bytes]) -> bytes:
    return bytes(_repl(c).psync(c, argv))


@handler("sync")
def sync(c: Client, argv: list[bytes]) -> bytes:
    # Pre-PSYNC replicas (Redis < 2.8) are out of scope (docs/replication.md).
    raise CommandError("ERR SYNC is not supported: use PSYNC (Redis >= 2.8 replicas)")


def _wait(c: Client, argv: list[bytes], aof: bool) -> bytes:
    reply = _repl(c).wait(c, argv, aof)
    if reply is None:
        # Parked without keys: the shell answers with the count reached.
        raise BlockRequest([], 0, b"")
    return bytes(reply)


@handler("wait")
def wait(c: Client, argv: list[bytes]) -> bytes:
    return _wait(c, argv, aof=False)


@handler("waitaof")
def waitaof(c: Client, argv: list[bytes]) -> bytes:
    return _wait(c, argv, aof=True)


@handler("ackdb.syncwoff")
def syncwoff(c: Client, argv: list[bytes]) -> bytes:
    """The endpoint's connections are shared by its clients: before a client's WAIT it
    raises its own connection's last write offset to the shard's offset, which covers the
    client's writes made over any connection (docs/proxy.md). Keep-alives (PING,
    GETACK) that end the stream are left out: nobody's write, and a WAIT for them would
    wait for what replicas acknowledge late and hold the replies of ``appendfsync
    always`` for a write that never comes."""
    r: Replication | None = c.server.repl
    c.woff = c.server.master_repl_offset if r is None else r.write_offset
    return enc.OK


@handler("ackdb.lease")
def ackdb_lease(c: Client, argv: list[bytes]) -> bytes:
    """ACKDB.LEASE <epoch> <deadline-monotonic-ms> (docs/fencing.md)."""
    return bytes(_repl(c).lease(argv))


@handler("ackdb.freeze")
def ackdb_freeze(c: Client, argv: list[bytes]) -> bytes:
    """ACKDB.FREEZE <epoch> (docs/fencing.md)."""
    return bytes(_repl(c).freeze(argv))


@handler("ackdb.diverged")
def ackdb_diverged(c: Client, argv: list[bytes]) -> bytes:
    """ACKDB.DIVERGED <replid> <offset> <tag> (docs/fencing.md)."""
    return bytes(_repl(c).diverged(argv))


@handler("failover")
def failover(c: Client, argv: list[bytes]) -> bytes:
    return bytes(_repl(c).failover(argv))


@handler("role")
def role(c: Client, argv: list[bytes]) -> bytes:
    r: Replication | None = c.server.repl
    if r is None:
        offset = int(c.server.master_repl_offset)
        return b"*3\r\n$6\r\nmaster\r\n" + enc.integer(offset) + enc.EMPTY_ARRAY
    return r.role_reply()
