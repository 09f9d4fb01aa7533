"""The node host (``ackdb node``): runs the node's services side by side.

Owns: the services' life (``Host``) -- start them in order, stop the process on a signal
or when a service asks (``Exit``: this member was removed, a fatal error), then drain and
stop them in reverse order -- and the wiring (``Agent``): each service gets the narrow
ports it needs (options, the log, ``Exit``, another service's port, the key derived from
the cluster secret), never the host. Before any service exists the agent makes sure the
data directory holds the cluster secret (``cluster_secret``: the rules of
``--bootstrap``, ``--join`` and ``--cluster-secret-file``).
Decides nothing about Raft, metadata or clients.

Services today (service.py has the contract):
- ``RaftMember`` (member.py): the Raft member and the replicated metadata store;
- ``ClientPort`` (clientport.py): the metadata client port on ``--port``;
- ``ShardSupervisor`` (shards.py): the shard and proxy processes the metadata assigns to
  this node (told after each Raft pass; its lines join ``CLUSTER.STATUS``);
- ``LeaseRenewer`` (lease.py): the leases of the primaries this node runs (a Raft read,
  then ``ACKDB.LEASE`` over the supervisor's connections; told after each Raft pass).
Next: metrics -- appended to ``services``.

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
from ackdb.node.lease import LeaseRenewer
from ackdb.node.member import RaftMember
from ackdb.node.options import AgentOptions
from ackdb.node.peerauth import peer_key
from ackdb.node.raftstore import RaftStore
from ackdb.node.secrets import MissingSecret, SecretError, provision_secret, secret_path
from ackdb.node.service import Service
from ackdb.node.shards import ShardSupervisor
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
    """``ackdb node``: the Raft member, its client port, the shard supervisor and the
    lease renewer."""

    def __init__(self, opts: AgentOptions, log: Log) -> None:
        super().__init__(log)
        self.opts = opts
        key = peer_key(cluster_secret(opts, log))
        self.member = RaftMember(opts, log, self.stop, self._after_pass, key)
        self.supervisor = ShardSupervisor(
            opts,
            log,
            lambda: self.member.meta,
            applied_at_start=self.member.raw.status().commit,
            proxies=opts.proxies,
            submit=self.member.submit,
        )
        self.client_port = ClientPort(
            self.member,
            opts.bind,
            opts.port,
            log,
            key,
            host_stopping=lambda: self.stopping,
            extra_status=self.supervisor.status_text,
            diverged=self.supervisor.diverged,
        )
        self.lease = LeaseRenewer(
            opts.node_id, log, lambda: self.member.meta, self.member.read, self.supervisor.call
        )
        self.services = [self.member, self.client_port, self.supervisor, self.lease]

    def ready(self) -> None:
        o = self.opts
        self.log.notice(
            f"Node {o.node_id} ready: clients on {o.client_addr}, peers on {o.cluster_addr}, "
            f"data in {o.data_dir}, PID {os.getpid()}"
        )

    def _after_pass(self) -> None:
        self.client_port.after_pass()
        self.supervisor.on_pass()
        self.lease.on_pass()

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


def cluster_secret(opts: AgentOptions, log: Log) -> bytes:
    """The node's cluster secret, from its data directory; put there first if needed:
    created for a one-voter ``--bootstrap``, copied from ``--cluster-secret-file``
    otherwise. SecretError (with what to do) if it cannot be had."""
    alone = len(opts.bootstrap) == 1
    given = opts.cluster_secret_file or None
    try:
        secret, done = provision_secret(opts.data_dir, given, may_create=alone)
    except MissingSecret as e:
        raise SecretError(f"{e}: {_missing_secret_hint(opts)}") from None
    path = secret_path(opts.data_dir)
    if done == "created":
        log.notice(f"Created a new cluster secret in {path} (give it to joining nodes)")
    elif done == "copied":
        log.notice(f"Copied the cluster secret from {given} to {path}")
    return secret


def _missing_secret_hint(opts: AgentOptions) -> str:
    if opts.bootstrap:
        return (
            "--bootstrap with several voters needs --cluster-secret-file: the first members "
            "must share one secret (make one with 'ackdb cluster secret --new FILE' and give "
            "the same file to each)"
        )
    if opts.join:
        return (
            "--join needs --cluster-secret-file holding the cluster's secret (on a member, "
            "'ackdb cluster secret --dir DATA --out FILE' copies it)"
        )
    return "a node waiting to be added needs --cluster-secret-file holding the cluster's secret"
