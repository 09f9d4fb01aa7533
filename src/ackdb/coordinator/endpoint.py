"""The coordinator's client side: the listener, client connections, running plans.

SHELL MODULE (asyncio). Owns: one ``ClientConn`` per client on the ordered-pipeline
front end (resp/frontend.py, resp/aio.py); each request is classified by
``leaderless/conncmds.classify``; a data command's plan (``leaderless/usercmds``) is
carried out over the ``Runner`` and its reply sent in order. A connection runs one data
command at a time (later requests wait, ``NOT_YET``): a pipelined ``SET`` then ``GET``
of one key reads the write, and writes get versions in request order. Also INFO, TIME
and CONVERGE (the anti-entropy port, coordinator/ports.py).

Read-your-writes: a read of a key this connection wrote (its token is in the session),
or one named by ``AFTER <token>``, carries out the steps of a ``TokenRead``
(leaderless/tokenread.py: the token's replicas asked first, one after the other, rounds
retried every 50 ms while none covers the token, up to one request timeout; then
``-TRYAGAIN``).

Limits: ``CLIENTS_MAX`` connections; the front end's ``BULK_MAX_BYTES`` and
``QUERY_BUFFER_MAX_BYTES``; ``PENDING_REPLIES_MAX`` (resp/aio.py) per connection.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

from .. import REDIS_COMPAT_VERSION, __version__
from ..cluster.databases import Topology
from ..keyspace import lww
from ..leaderless.actions import Done
from ..leaderless.conncmds import Access, DataCmd, ShellCmd, attribute, classify, login_needed
from ..leaderless.levels import Level, required
from ..leaderless.ops import Ctx, Outcome, Plan, Read, ScanPage, Write
from ..leaderless.scancmds import DEPTH
from ..leaderless.session import LastReceipt, Session, Token
from ..leaderless.tokenread import Answer, Sleep, TokenRead
from ..leaderless.tombstones import grace_ms
from ..leaderless.usercmds import run_plan_sync
from ..resp import encoder as enc
from ..resp.aio import FrontEndProtocol
from ..resp.frontend import NOT_YET, FrontEnd, NotYet, Pending
from .ports import Convergence
from .runner import Partition, Runner, node_name, wall_ms

CLIENTS_MAX = 10000
BULK_MAX_BYTES = 512 * 1024 * 1024
QUERY_BUFFER_MAX_BYTES = 1024 * 1024 * 1024
CONVERGE_TIMEOUT_MS_DEFAULT = 10_000


class ClientConn(FrontEndProtocol):
    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        ep.next_id += 1
        read, write = ep.levels()
        self.session = Session(ep.next_id, read, write)
        self.session.authenticated = not login_needed(ep.access)
        self.busy = False
        super().__init__(FrontEnd(self.handle, BULK_MAX_BYTES, QUERY_BUFFER_MAX_BYTES))

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if len(self.ep.clients) >= CLIENTS_MAX:
            transport.write(b"-ERR max number of clients reached\r\n")
            transport.close()
            return
        self.ep.clients.add(self)
        self.ep.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.ep.clients.discard(self)
        self.ep.commands += self.session.commands
        self.session.commands = 0

    def handle(self, argv: list[bytes]) -> bytes | Pending | NotYet:
        if self.busy:
            return NOT_YET
        s = self.session
        s.commands += 1
        c = classify(s, self.ep.access, argv)
        if isinstance(c, bytes):
            if s.closing:
                self.frontend.close_after_reply()
            return c
        if isinstance(c, ShellCmd):
            return self.ep.shell_command(self, c.argv)
        ctx = self.ep.ctx(s, c)
        plan = run_plan_sync(ctx, c.argv)
        if isinstance(plan, bytes):
            return plan
        pending = Pending()
        self.busy = True
        task = asyncio.get_running_loop().create_task(self._run(c, plan, pending))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return pending

    async def _run(self, cmd: DataCmd, plan: Plan, pending: Pending) -> None:
        run = RunState()
        try:
            reply = await self.ep.carry(self.session, cmd, plan, run)
        except Exception as e:  # a bug must not leave the client waiting forever
            self.ep.log.warning(f"command {cmd.argv[0]!r} failed: {e!r}")
            reply = enc.error(f"ERR internal error: {e}")
        self.busy = False
        s = self.session
        if run.dones:
            s.last_receipt = receipt(cmd, run)
            if s.receipts and s.protocol == 3:
                reply = attribute(s.last_receipt) + reply
        self.complete(pending, reply)

    def run_async(self, coro: Any) -> Pending:
        pending = Pending()

        async def run() -> None:
            self.complete(pending, await coro)

        task = asyncio.get_running_loop().create_task(run())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return pending


class Endpoint:
    def __init__(
        self,
        topo: Topology,
        runner: Runner,
        shard_password: bytes | None,
        log: Any,
        port: int,
        convergence: Convergence | None = None,
    ) -> None:
        self.topo = topo
        self.runner = runner
        self.shard_password = shard_password
        self.log = log
        self.port = port
        self.convergence = convergence
        self.clients: set[ClientConn] = set()
        self.next_id = 0
        self.connections = 0
        self.commands = 0
        self.started = time.monotonic()
        self.server: asyncio.AbstractServer | None = None
        self._derive()

    def _derive(self) -> None:
        """What requests read of the topology, computed once per topology."""
        db = self.topo.db
        self.access = Access(db.password_sha256, self.shard_password)
        self.default_levels = (
            Level.parse(db.read_consistency.encode()),
            Level.parse(db.write_consistency.encode()),
        )

    def levels(self) -> tuple[Level, Level]:
        return self.default_levels

    async def listen(self, host: str) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: ClientConn(self), host, self.port, reuse_address=True, backlog=511
        )

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for c in list(self.clients):
            if c.transport is not None:
                c.transport.close()
        self.runner.close()

    def set_topology(self, topo: Topology) -> None:
        old = self.topo
        self.topo = topo
        self._derive()
        self.runner.set_topology(topo)
        read, write = self.levels()
        for c in self.clients:
            c.session.set_defaults(read, write)
        if self.convergence is not None:
            self.convergence.set_topology(topo)
        self.log.notice(
            f"topology {topo.version}: {len(topo.db.shards)} partitions, levels"
            f" {read.value}/{write.value}, schema {topo.db.schema_version}"
            + (" (was " + str(old.version) + ")" if old.version != topo.version else "")
        )

    # -- plans -------------------------------------------------------------------------

    def ctx(self, s: Session, c: DataCmd) -> Ctx:
        p = enc.RESP3 if s.protocol == 3 else enc.RESP2
        db = self.topo.db
        return Ctx(p, c.read, c.write, wall_ms(), db.collections, len(db.shards))

    async def carry(self, s: Session, cmd: DataCmd, plan: Plan, run: RunState) -> bytes:
        """Run ``plan`` to its reply: each yielded list of ops concurrently."""
        try:
            ops = plan.send(None)  # type: ignore[arg-type]
            while True:
                outs = await asyncio.gather(*(self._op(s, cmd, op, run) for op in ops))
                ops = plan.send(list(outs))
        except StopIteration as stop:
            reply: bytes = stop.value
            return reply

    async def _op(
        self, s: Session, cmd: DataCmd, op: Read | Write | ScanPage, run: RunState
    ) -> Outcome:
        r = self.runner
        if isinstance(op, ScanPage):
            part = r.partitions[op.partition]
            done, items = await r.scan(part, DEPTH, op.lo, op.hi, op.level)
            run.dones.append((done, part.nodes))
            return Outcome(done, items)
        part = r.partition_of(op.key)
        if isinstance(op, Write):
            if run.version is None:  # one version per command (a REQID retry: its first)
                run.version = r.stamp(cmd.reqid)
            rec = op.make(run.version)
            done = await r.write(part, op.key, rec, op.level)
            if done.error is None:
                nodes = tuple(part.nodes[i] for i in done.receipt.answered)
                s.wrote(Token.of_write(op.key, rec, nodes))
        else:
            token = cmd.after if cmd.after is not None and cmd.after.key == op.key else None
            done = await self._read(part, op, token or s.token_for(op.key))
        run.dones.append((done, part.nodes))
        return Outcome(done)

    async def _read(self, part: Partition, op: Read, token: Token | None) -> Done:
        """A read; with a token, the steps of its ``TokenRead`` (leaderless/tokenread.py)."""
        r = self.runner
        if token is None:
            return await r.read(part, op.key, op.level)
        now = wall_ms()
        plan = TokenRead(token, part.nodes, now + r.timeout_ms, self.grace_ms())
        step = plan.start()
        while True:
            if isinstance(step, Answer):
                return step.done
            if isinstance(step, Sleep):
                await asyncio.sleep(step.ms / 1000)
                step = plan.resume()
                continue
            done = await r.read(part, op.key, op.level, (step.replica,))
            step = plan.on_done(done, wall_ms())

    def grace_ms(self) -> int:
        """The tombstone grace this coordinator's anti-entropy purges by."""
        db = self.topo.db
        return grace_ms(self.runner.limits.age_ms_max, self.runner.timeout_ms, db.max_clock_skew_ms)

    # -- INFO, TIME, CONVERGE -----------------------------------------------------------

    def shell_command(self, c: ClientConn, argv: list[bytes]) -> bytes | Pending:
        name = argv[0].lower()
        if name == b"time":
            ns = time.time_ns()
            return enc.bulk_array([b"%d" % (ns // 10**9), b"%d" % (ns // 1000 % 10**6)])
        if name == b"info":
            text = self.info_text([a.decode(errors="replace").lower() for a in argv[1:]])
            p = enc.RESP3 if c.session.protocol == 3 else enc.RESP2
            return p.verbatim(text.encode())
        return self._converge(c, argv)

    def _converge(self, c: ClientConn, argv: list[bytes]) -> bytes | Pending:
        key: bytes | None = None
        timeout_ms = CONVERGE_TIMEOUT_MS_DEFAULT
        i = 1
        while i + 1 < len(argv) and argv[i].lower() in (b"key", b"timeout"):
            if argv[i].lower() == b"key":
                key = argv[i + 1]
            elif argv[i + 1].isdigit():
                timeout_ms = int(argv[i + 1])
            else:
                return enc.error("ERR TIMEOUT is a number of milliseconds")
            i += 2
        if i != len(argv):
            return enc.error("ERR syntax error: CONVERGE [KEY <key>] [TIMEOUT <ms>]")
        conv = self.convergence
        if conv is None:
            return enc.error("ERR anti-entropy is not running")

        async def run() -> bytes:
            assert conv is not None
            err = await conv.converge(key, timeout_ms)
            return enc.OK if err is None else enc.error(err)

        return c.run_async(run())

    def info_fields(self) -> dict[str, list[tuple[str, Any]]]:
        up = time.monotonic() - self.started
        db = self.topo.db
        r = self.runner
        pending, size, dropped = r.hint_totals()
        read, write = self.levels()
        flagged = ",".join(sorted(node_name(r.topo, n) for n in r.clock.flagged))
        leaderless: list[tuple[str, Any]] = [
            ("ll_read_consistency", read.value),
            ("ll_write_consistency", write.value),
            ("ll_replication_factor", db.replication_factor),
            ("ll_quorum", required(Level.QUORUM, db.replication_factor)),
            ("ll_partitions", len(db.shards)),
            ("ll_node_number", r.clock.node),
            ("ll_schema_version", db.schema_version),
            ("ll_hints_pending", pending),
            ("ll_hints_bytes", size),
            ("ll_hints_dropped", dropped),
            ("ll_hints_replayed", r.hints_replayed),
            ("ll_hint_bytes_max", r.limits.bytes_max),
            ("ll_hint_count_max", r.limits.count_max),
            ("ll_hint_age_ms_max", r.limits.age_ms_max),
            ("ll_reads", r.reads),
            ("ll_writes", r.writes),
            ("ll_repairs", r.repairs),
            ("ll_schema_retries", r.schema_retries),
            ("ll_skew_refused", r.skew_refused),
            ("ll_skew_flagged_nodes", flagged),
        ]
        if self.convergence is not None:
            leaderless += self.convergence.info()
        return {
            "server": [
                ("redis_version", REDIS_COMPAT_VERSION),
                ("ackdb_version", __version__),
                ("redis_mode", "standalone"),
                ("ackdb_role", "coordinator"),
                ("database", db.name),
                ("node", self.topo.node),
                ("topology_version", self.topo.version),
                ("process_id", os.getpid()),
                ("tcp_port", self.port),
                ("uptime_in_seconds", int(up)),
                ("uptime_in_days", int(up // 86400)),
            ],
            "clients": [
                ("connected_clients", len(self.clients)),
                ("maxclients", CLIENTS_MAX),
                ("replica_links", sum(1 for x in r.links.values() if x.ready)),
            ],
            "stats": [
                ("total_connections_received", self.connections),
                (
                    "total_commands_processed",
                    self.commands + sum(c.session.commands for c in self.clients),
                ),
            ],
            "leaderless": leaderless,
        }

    def info_text(self, sections: list[str]) -> str:
        fields = self.info_fields()
        want = [s for s in sections if s in fields] or (
            list(fields) if not sections or sections[0] in ("all", "everything", "default") else []
        )
        blocks = []
        for name in want:
            body = "".join(f"{k}:{v}\r\n" for k, v in fields[name])
            blocks.append(f"# {name.capitalize()}\r\n{body}")
        return "\r\n".join(blocks)


@dataclass(slots=True)
class RunState:
    """One data command's run: the outcomes with their replica sets' node ids, and the
    version its writes got (None: it wrote nothing)."""

    dones: list[tuple[Done, tuple[str, ...]]] = field(default_factory=list)
    version: lww.Version | None = None


def receipt(cmd: DataCmd, run: RunState) -> LastReceipt:
    """The command's receipt: every replica (node id) that answered or acknowledged,
    the newest version written or read, the replicas repaired, the level."""
    replicas: list[str] = []
    repaired: list[str] = []
    version = lww.ZERO
    for d, nodes in run.dones:
        version = max(version, d.receipt.version)
        for i in d.receipt.answered:
            if nodes[i] not in replicas:
                replicas.append(nodes[i])
        for i in d.receipt.repaired:
            if nodes[i] not in repaired:
                repaired.append(nodes[i])
    level = cmd.level or (cmd.write if run.version is not None else cmd.read).value
    return LastReceipt(tuple(replicas), version, tuple(repaired), level)
