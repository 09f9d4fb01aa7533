"""The contracts between the node host (agent.py) and the services it runs.

Owns: the ``Service`` protocol every service of a node implements (the Raft member today;
the shard supervisor, the per-database proxy endpoints and metrics next), the ``Exit``
callback a service uses to ask the host to stop the process, and ``ConnectionHost``:
what a client connection of the metadata port (metaserver.py) needs from its service.
Never does anything itself; it imports no service, so no service imports another.

Life of a service, driven by the host:
    start()   bind ports, start timers and tasks; raises if it cannot run;
    drain()   stop taking new work and fail what waits (synchronous, so every service
              has drained before any is torn down: replies still reach open clients);
    stop()    release everything (connections, files, threads).
The host starts services in list order and drains, then stops, them in reverse order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from ackdb.cluster.commands import Op, Result
from ackdb.cluster.metadata import MetadataStore
from ackdb.consensus import Role
from ackdb.node.divergedfiles import DivergedFile
from ackdb.node.topowatch import TopologyWatches
from ackdb.server.log import Log

# Ask the host to stop the process with this exit code, saying why (for the log).
Exit = Callable[[int, str], None]


class Service(Protocol):
    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    def drain(self) -> None: ...

    async def stop(self) -> None: ...


class MetaAccess(Protocol):
    """The metadata store as a connection uses it: writes through the log, linearizable
    reads, the node's role."""

    @property
    def meta(self) -> MetadataStore: ...

    @property
    def role(self) -> Role: ...

    def submit(
        self, op: Op, args: tuple[bytes | str | int, ...], done: Callable[[Result], None]
    ) -> None: ...

    def read(self, run: Callable[[], None], failed: Callable[[str], None]) -> None: ...


class MetaPort(MetaAccess, Protocol):
    """The metadata store as a client port sees it: writes through the log, linearizable
    reads, and the reports (the Raft member implements it)."""

    node_id: str

    def status_text(self) -> str: ...

    def info_text(self, clients: int) -> str: ...


class ClientConnection(Protocol):
    transport: asyncio.Transport | None

    def flush(self) -> None: ...


class ConnectionHost(MetaAccess, Protocol):
    """What one client connection (metaserver.MetaConnection) needs from its service."""

    log: Log
    clients: set[ClientConnection]
    node_id: str
    watches: TopologyWatches  # DB.TOPOLOGY long polls

    @property
    def stopping(self) -> bool: ...

    def schedule_flush(self, conn: ClientConnection) -> None: ...

    def status_text(self) -> str: ...

    def info_text(self) -> str: ...

    def diverged(self, db_uid: int, clear: str | None, clear_all: bool) -> list[DivergedFile]:
        """This node's files of divergent writes of a database (DB.DIVERGED); with
        ``clear`` or ``clear_all`` the ones removed."""
        ...

    def join_proof_ok(
        self, node_id: str, client_addr: str, cluster_addr: str, proof: bytes
    ) -> bool:
        """Whether ``CLUSTER.JOIN``'s proof shows the node holds the cluster secret."""
        ...
