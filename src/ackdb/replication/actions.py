"""The actions the replication cores return for the shell to carry out, in order.

Every action is a frozen, slotted dataclass. Connection ids (``conn``) and client ids
(``client``) are the shell's own integers; the cores never interpret them.
Ordering rule for every list of actions: carry them out in list order. Where an action
depends on durable state (a FACK, a WAITAOF local count) the core only ever reports what
the shell already told it was fsynced, so no action needs a fsync before it.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- towards replicas (primary side) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendToReplica:
    """Write ``data`` to the replica connection ``conn`` (replies and stream bytes)."""

    conn: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseReplica:
    """Close the replica connection ``conn`` (after flushing what was queued)."""

    conn: int
    reason: str


@dataclass(frozen=True, slots=True)
class SnapshotNeeded:
    """Replicas wait for a full sync: call ``begin_snapshot`` before sleeping."""


# -- towards the primary (replica side) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectPrimary:
    """Open a TCP connection to the primary; report ``on_link_established`` or
    ``on_link_failed``."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class SendToPrimary:
    data: bytes


@dataclass(frozen=True, slots=True)
class ClosePrimaryLink:
    """Close the link to the primary. The core already counts the link as gone: the
    shell must not report ``on_link_lost`` for it."""

    reason: str


@dataclass(slots=True)  # not frozen: the replica's stream reader extends its list
class Apply:
    """Execute the commands ``argvs``, in order, as the primary's client (SELECT,
    MULTI/EXEC and PING included), without replying and without propagating them as new
    effects. One per run of consecutive commands in a read of the stream."""

    argvs: list[list[bytes]]


@dataclass(frozen=True, slots=True)
class DiscardTransaction:
    """The link broke inside MULTI: drop the primary client's queued transaction."""


@dataclass(frozen=True, slots=True)
class SnapshotBegin:
    """A full sync's snapshot starts. ``size_bytes`` is -1 for the EOF-marked form."""

    replid: str
    offset: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    data: bytes


@dataclass(frozen=True, slots=True)
class SnapshotEnd:
    """The whole snapshot arrived: replace the dataset with it before the next action."""


@dataclass(frozen=True, slots=True)
class SnapshotAbort:
    """The transfer failed part-way: discard what ``SnapshotChunk`` delivered."""

    reason: str


# -- towards clients -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplyToClient:
    """Send ``data`` to a blocked client and unblock it; close it after when ``close``."""

    client: int
    data: bytes
    close: bool = False


@dataclass(frozen=True, slots=True)
class PauseWrites:
    """FAILOVER: pause write commands (CLIENT PAUSE WRITE semantics) until unpaused."""


@dataclass(frozen=True, slots=True)
class UnpauseWrites:
    pass


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """The node became a primary (``host`` None) or a replica of host:port. Clients
    blocked on keys must get the UNBLOCKED error when it became a replica."""

    host: str | None
    port: int


@dataclass(frozen=True, slots=True)
class Log:
    level: str  # "notice" | "warning" | "verbose"
    message: str


Action = (
    SendToReplica
    | CloseReplica
    | SnapshotNeeded
    | ConnectPrimary
    | SendToPrimary
    | ClosePrimaryLink
    | Apply
    | DiscardTransaction
    | SnapshotBegin
    | SnapshotChunk
    | SnapshotEnd
    | SnapshotAbort
    | ReplyToClient
    | PauseWrites
    | UnpauseWrites
    | RoleChanged
    | Log
)
