"""The node host (``ackdb node``): runs the node's services side by side.

Owns: the services' life (``Host``) -- start them in order, stop the process on a signal
or when a service asks (``Exit``: this member was removed, a fatal error), then drain and
stop them in reverse order -- and the wiring (``Agent``): each service gets the narrow
ports it needs (options, the log, ``Exit``, another service's port), never the host.
Decides nothing about Raft, metadata or clients.

Services today (service.py has the contract):
- ``RaftMember`` (member.py): the Raft member and the replicated metadata store;
- ``ClientPort`` (clientport.py): the metadata client port on ``--port``.
Next: the shard supervisor, one proxy endpoint per database, metrics -- each appended to
``services``.

States of the process: STARTING (services starting in order) -> RUNNING -> STOPPING (a
signal, or a service asked to exit) -> stopped (every started service drained, then
stopped).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from ackdb.cluster.commands import Op, Result
from ackdb.cluster.metadata import MetadataStore
from ackdb.consensus import Role
from ackdb.node.clientport import ClientPort
from ackdb.node.member import RaftMember
from ackdb.node.options import AgentOptions
from ackdb.node.raftstore import RaftStore
from ackdb.node.service import Service
from ackdb.server.log import Log


class Host:
    """Runs ``services``: starts them in order, waits for ``stop``, drains and stops them
    in reverse order. Knows nothing of what they do."""

    def __init__(self, log: Log, services: list[Service] | None = None) -> None:
        self.log = log
        self.services: list[Service] = services if services is not None else []
        self._done: asyncio.Future[int] | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        started: list[Service] = []
        try:
            for s in self.services:
                await s.start()
                started.append(s)
        except BaseException:
            await self._shutdown(started)
            raise
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, 0, f"signal {sig}")
        self.ready()
        code = await self._done
        self.log.notice("Shutting down")
        await self._shutdown(started)
        return code

    def ready(self) -> None:
        """Every service started (a subclass says so in the log)."""

    async def _shutdown(self, started: list[Service]) -> None:
        for s in reversed(started):
            s.drain()
        for s in reversed(started):
            await s.stop()

    @property
    def stopping(self) -> bool:
        return self._done is not None and self._done.done()

    def stop(self, code: int = 0, why: str = "") -> None:
        """Stop the process (``Exit``): a signal, or a service asking."""
        if self._done is not None and not self._done.done():
            self.log.notice(f"Stopping ({why})")
            self._done.set_result(code)


class Agent(Host):
    """``ackdb node``: the Raft member and its client port (more services to come)."""

    def __init__(self, opts: AgentOptions, log: Log) -> None:
        super().__init__(log)
        self.opts = opts
        self.member = RaftMember(opts, log, self.stop, self._after_pass)
        self.client_port = ClientPort(
            self.member, opts.bind, opts.port, log, host_stopping=lambda: self.stopping
        )
        self.services = [self.member, self.client_port]

    def ready(self) -> None:
        o = self.opts
        self.log.notice(
            f"Node {o.node_id} ready: clients on {o.client_addr}, peers on {o.cluster_addr}, "
            f"data in {o.data_dir}, PID {os.getpid()}"
        )

    def _after_pass(self) -> None:
        self.client_port.after_pass()

    # -- the Raft member's state, for tests and tools -------------------------------------

    @property
    def role(self) -> Role:
        return self.member.role

    @property
    def meta(self) -> MetadataStore:
        return self.member.meta

    @property
    def store(self) -> RaftStore:
        return self.member.store

    @property
    def snap_index(self) -> int:
        return self.member.snap_index

    @property
    def stats(self) -> dict[str, int]:
        return self.member.stats

    def submit(
        self, op: Op, args: tuple[bytes | str | int, ...], done: Callable[[Result], None]
    ) -> None:
        self.member.submit(op, args, done)

    def read(self, run: Callable[[], None], failed: Callable[[str], None]) -> None:
        self.member.read(run, failed)
