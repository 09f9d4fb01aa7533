"""The metadata client port as a service of the node: the listener of ``--port`` and the
connections it accepted (each a metaserver.MetaConnection). It is given the peer links'
key to check the proof of ``CLUSTER.JOIN``.

Owns: the listening socket, the set of open connections (bounded by metaserver's
``CLIENT_MAX_CONNECTIONS``), and writing answered replies once per pass of the event
loop (``schedule_flush``; the Raft member also flushes at the end of each of its passes
through ``after_pass``, which first wakes the ``DB.TOPOLOGY`` long polls of topowatch.py
that the pass answered). Commands go to the ``MetaPort`` it was given -- the Raft member -- and
nothing here decides anything about them. Never touches the Raft state itself.

States: NEW -> LISTENING (start) -> DRAINED (drain: no new connections) -> CLOSED (stop:
replies flushed, connections closed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ackdb.cluster.commands import Op, Result
from ackdb.cluster.metadata import MetadataStore
from ackdb.consensus import Role
from ackdb.node.divergedfiles import DivergedFile
from ackdb.node.metaserver import MetaConnection
from ackdb.node.peerauth import join_proof_ok
from ackdb.node.service import ClientConnection, MetaPort
from ackdb.node.topowatch import TopologyWatches
from ackdb.server.log import Log


class ClientPort:
    name = "client-port"

    def __init__(
        self,
        member: MetaPort,
        bind: str,
        port: int,
        log: Log,
        join_key: bytes,
        host_stopping: Callable[[], bool] = lambda: False,
        extra_status: Callable[[], str] = lambda: "",
        diverged: Callable[[int, str | None, bool], list[DivergedFile]] = lambda *_: [],
    ) -> None:
        self.member = member
        self.extra_status = extra_status  # lines appended to CLUSTER.STATUS (the shards)
        self._diverged = diverged  # the shard supervisor's files of divergent writes
        self.join_key = join_key
        self.host_stopping = host_stopping
        self.bind = bind
        self.port = port
        self.log = log
        self.clients: set[ClientConnection] = set()
        self.node_id = member.node_id
        self.watches = TopologyWatches(lambda: self.member.meta)
        self._to_flush: list[ClientConnection] = []
        self._server: asyncio.Server | None = None
        self._draining = False

    # -- Service ------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: MetaConnection(self), self.bind, self.port)

    def drain(self) -> None:
        self._draining = True
        if self._server is not None:
            self._server.close()

    async def stop(self) -> None:
        self._draining = True
        self.watches.close()
        self.flush()
        for c in list(self.clients):
            if c.transport is not None:
                c.transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()  # (3.12+ also waits for the connections)

    # -- ConnectionHost: what each connection asks of the node ---------------------------

    @property
    def stopping(self) -> bool:
        return self._draining or self.host_stopping()

    @property
    def meta(self) -> MetadataStore:
        return self.member.meta

    @property
    def role(self) -> Role:
        return self.member.role

    def submit(
        self, op: Op, args: tuple[bytes | str | int, ...], done: Callable[[Result], None]
    ) -> None:
        self.member.submit(op, args, done)

    def read(self, run: Callable[[], None], failed: Callable[[str], None]) -> None:
        self.member.read(run, failed)

    def status_text(self) -> str:
        return self.member.status_text() + self.extra_status()

    def info_text(self) -> str:
        return self.member.info_text(len(self.clients))

    def diverged(self, db_uid: int, clear: str | None, clear_all: bool) -> list[DivergedFile]:
        return self._diverged(db_uid, clear, clear_all)

    def join_proof_ok(
        self, node_id: str, client_addr: str, cluster_addr: str, proof: bytes
    ) -> bool:
        return join_proof_ok(self.join_key, node_id, client_addr, cluster_addr, proof)

    def schedule_flush(self, conn: ClientConnection) -> None:
        """Write ``conn``'s answered replies at the end of this pass of the event loop."""
        if not self._to_flush:
            asyncio.get_running_loop().call_soon(self.flush)
        self._to_flush.append(conn)

    def after_pass(self) -> None:
        """The Raft loop ended a pass: wake the long polls it answered, write replies."""
        self.watches.check()
        self.flush()

    def flush(self) -> None:
        conns, self._to_flush = self._to_flush, []
        for conn in conns:
            conn.flush()
