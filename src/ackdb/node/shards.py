"""The shard supervisor as a service of the node: runs the shard processes (``ackdb
server``) and proxy processes (``ackdb proxy``; ``ackdb coordinator`` for a leaderless
database) the metadata assigns to this node, and pushes a leaderless database's schema
to its local replicas (``LL.SCHEMA``, when the decider says so).

Owns: the processes and their directories under the data directory --

    DATA/cluster.secret               the cluster secret (shards' password derives from it)
    DATA/shards/<db uid>-<shard>/     shard.conf (0600), shard.pid, shard.log, its data
    DATA/proxies/<db uid>/            proxy.pid, proxy.log (coordinator.log: leaderless)

-- the probes' connections to them (authenticated RESP), and carrying out the decisions
of ``cluster.supervise.Supervisor`` in order. Decides nothing itself: what to start,
stop, restart or reconfigure comes from the decider, fed with the local applied metadata
(after each Raft pass) and with what it sees (exits, probe answers, every ``TICK_S``).

Processes run in their own session, so an agent that dies leaves them running; the next
agent adopts them (the pid file, then ``/proc/<pid>/cmdline`` naming the unit's file).
A graceful stop of the agent stops them all: SIGTERM, then SIGKILL after
``STOP_TIMEOUT_S``. Nothing here blocks the event loop: a spawn is one quick
``Popen``, every wait is a timer or a task.

States: NEW -> RUNNING (start: secret loaded, units adopted, ticking) -> STOPPED (stop:
every process gone, connections closed).
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import IO, Any

from ackdb.cluster.commands import Op, RecordKind, Result
from ackdb.cluster.databases import Database
from ackdb.cluster.metadata import MetadataStore
from ackdb.cluster.retirecheck import retire_checks
from ackdb.cluster.shardspec import (
    Observed,
    ProxySpec,
    ShardSpec,
    Spec,
    desired_units,
    parse_replication_info,
    shard_config,
)
from ackdb.cluster.status import instance_line
from ackdb.cluster.supervise import (
    Action,
    CheckDiverged,
    Freeze,
    HandOver,
    Kill,
    Note,
    Probe,
    PushSchema,
    RemoveDir,
    SetReplication,
    Start,
    Stop,
    Supervisor,
    Timing,
)
from ackdb.node import divergedfiles, secrets
from ackdb.node.divergedfiles import DivergedFile
from ackdb.node.options import AgentOptions
from ackdb.node.shardfailover import ShardFailover, Submit
from ackdb.node.shardfiles import (
    CLEAN_STOP,
    SECRET_FILE,
    STOP_TIMEOUT_S,
    alive,
    clear_clean_stop,
    config_port,
    exit_text,
    find_units,
    load_or_create_secret,
    read_clean_stop,
    send_signal,
    write_file,
)
from ackdb.resp.addr import parse_addr
from ackdb.resp.client import Client, ReplyError
from ackdb.server.log import Log

TICK_S = 0.1  # exits are seen and the decider ticks this often
KILL_WAIT_S = 2.0  # after SIGKILL, how long stop() waits for the exits
PROBE_TIMEOUT_S = 1.0  # one probe: connect, AUTH and the question


def now_ms() -> int:
    return int(time.monotonic() * 1000)


class ShardSupervisor:
    name = "shard-supervisor"

    def __init__(
        self,
        opts: AgentOptions,
        log: Log,
        meta: Callable[[], MetadataStore],
        applied_at_start: int = 0,
        proxies: bool = False,
        timing: Timing | None = None,
        submit: Submit | None = None,
    ) -> None:
        self.opts = opts
        self.log = log
        self.meta = meta
        self.proxies = proxies
        self.base = os.path.abspath(opts.data_dir)
        self.core = Supervisor(timing or Timing())
        self._applied_at_start = applied_at_start  # the metadata is current from here
        self._seen: tuple[object, ...] | None = None
        self._seen_index = -1
        self._dbs: dict[tuple[str, bytes], Database] = {}
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._conns: dict[str, tuple[int, Client]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()  # connections being closed
        self._chains: dict[str, asyncio.Task[None]] = {}  # unit -> its last ordered step
        self._timer: asyncio.TimerHandle | None = None
        self._password = ""
        self._submit = submit or _no_submit
        self.failover = ShardFailover(opts.node_id, log, self.call, self._submit)
        self._unchecked: set[str] = set()  # units whose last divergence check failed
        self._started = False  # Raft passes run before this service starts: wait
        self._stopped = False

    # -- Service ------------------------------------------------------------------------

    async def start(self) -> None:
        os.makedirs(self.base, exist_ok=True)
        self._password = secrets.shard_password(load_or_create_secret(self.base))
        self._adopt()
        self._started = True
        self._schedule()
        self.on_pass()

    def drain(self) -> None:
        pass  # nothing waits on us; stop() stops the processes

    async def stop(self) -> None:
        self._stopped = True
        self._run(self.core.stop_all())
        deadline = time.monotonic() + STOP_TIMEOUT_S + KILL_WAIT_S
        while self.core.units and time.monotonic() < deadline:
            await asyncio.sleep(TICK_S / 2)
            self._reap()
        for unit in self.core.units.values():
            self.log.warning(f"{unit.id}: pid {unit.pid} did not exit")
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for _, c in self._conns.values():
            await c.close()
        self._conns.clear()
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=PROBE_TIMEOUT_S)

    # -- the metadata ---------------------------------------------------------------------

    def on_pass(self) -> None:
        """After a Raft pass: the desired units again, when the metadata they come from
        changed (cheap when it did not)."""
        meta = self.meta()
        if meta.applied_index == self._seen_index or self._stopped or not self._started:
            return
        self._seen_index = meta.applied_index
        if meta.applied_index < self._applied_at_start:
            return  # still replaying what was committed before this start
        records = meta.record_list(RecordKind.DATABASE)
        hosts = {m.id: parse_addr(m.client_addr)[0] for m in meta.members.values() if m.client_addr}
        hosts[self.opts.node_id] = self.opts.advertise_host
        seen = (tuple((r.name, r.body) for r in records), tuple(sorted(hosts.items())))
        if seen == self._seen:
            return
        self._seen = seen
        dbs: list[Database] = []
        cache: dict[tuple[str, bytes], Database] = {}
        for r in records:
            db = self._dbs.get((r.name, r.body))
            if db is None:
                try:
                    db = Database.from_body(r.body)
                except ValueError as e:
                    self.log.warning(f"Ignoring database record '{r.name}': {e}")
                    continue
            cache[(r.name, r.body)] = db
            dbs.append(db)
        self._dbs = cache
        want = desired_units(self.opts.node_id, dbs, hosts, self.proxies)
        leaving = [uid for uid in self.core.units if uid not in want]
        checks = retire_checks(leaving, dbs, self.opts.advertise_host, self._ports(leaving))
        self._run(self.core.set_desired(want, now_ms(), checks))

    def _ports(self, units: list[str]) -> dict[str, int]:
        """The port each unit ran on: its last spec's, else its config file's."""
        out = {}
        for uid in units:
            u = self.core.units.get(uid)
            if u is not None and isinstance(u.spec, ShardSpec):
                out[uid] = u.spec.port
            elif (port := config_port(os.path.join(self._dir(uid), "shard.conf"))) is not None:
                out[uid] = port
        return out

    # -- status -------------------------------------------------------------------------

    def status_text(self) -> str:
        lines = []
        units = sorted(self.core.units.values(), key=lambda u: u.id)
        for u in units:
            if u.spec is not None:
                lines.append(instance_line(self.opts.node_id, u))
        names = {db.uid: db.name for db in self._dbs.values()}
        for f in divergedfiles.find(self.base):
            name = names.get(f.db_uid, f"uid-{f.db_uid}")
            lines.append(self.failover.diverged_line(name, f.shard, f.path, f.size))
        return "".join(f"{line}\r\n" for line in lines)

    def diverged(self, db_uid: int, clear: str | None, clear_all: bool) -> list[DivergedFile]:
        """This node's files of divergent writes of the database ``db_uid`` (DB.DIVERGED);
        with ``clear`` (a path or file name) or ``clear_all``, those removed instead."""
        files = [f for f in divergedfiles.find(self.base) if f.db_uid == db_uid]
        if clear is None and not clear_all:
            return files
        gone = set(divergedfiles.clear(files, None if clear_all else clear))
        for path in gone:
            self.failover.saved.pop(path, None)
            self.log.notice(f"{path}: removed (db diverged --clear)")
        return [f for f in files if f.path in gone]

    # -- watching -------------------------------------------------------------------------

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        try:
            self._reap()
            now = now_ms()
            self._run(self.core.tick(now))
            if self._seen_index >= self._applied_at_start:
                self.failover.propose_down(self.meta(), self.core.units, now)
        except Exception:
            self.log.warning("Unexpected error in the shard supervisor", exc=True)
        if not self._stopped:
            self._schedule()

    def _reap(self) -> None:
        """Feed the decider every exit: our children's (with their status), adopted
        processes' (gone from /proc)."""
        for u in list(self.core.units.values()):
            pid = u.pid
            if pid is None:
                continue
            child = self._children.get(pid)
            if child is not None:
                code = child.poll()
                if code is None:
                    continue
                del self._children[pid]
                status = exit_text(code)
                if code == 0 and self._stopped and isinstance(u.spec, ShardSpec):
                    self._mark_clean_stop(u.id, u.spec)
            elif alive(pid):
                continue
            else:
                status = "exit status unknown: not started by this agent"
            self._drop_conn(u.id)
            self._run(self.core.exited(u.id, pid, status, now_ms()))

    # -- carrying out actions -------------------------------------------------------------

    def _run(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Start):
                self._start(a.unit, a.spec)
            elif isinstance(a, Probe):
                self._spawn_task(self._probe(a))
            elif isinstance(a, SetReplication):
                self._in_order(a.unit, functools.partial(self._set_replication, a))
            elif isinstance(a, (Freeze, CheckDiverged, HandOver)):
                self._in_order(a.unit, functools.partial(self._failover_step, a))
            elif isinstance(a, PushSchema):
                self._in_order(a.unit, functools.partial(self._push_schema, a))
            elif isinstance(a, Stop):
                send_signal(a.pid, signal.SIGTERM)
                asyncio.get_running_loop().call_later(STOP_TIMEOUT_S, self._kill_late, a.pid)
            elif isinstance(a, Kill):
                self.log.warning(f"{a.unit}: killing pid {a.pid} ({a.why})")
                send_signal(a.pid, signal.SIGKILL)
            elif isinstance(a, RemoveDir):
                self._drop_conn(a.unit)
                self._spawn_task(self._remove_dir(a))
            elif isinstance(a, Note):
                getattr(self.log, a.level)(a.text)

    def _dir(self, unit: str) -> str:
        return os.path.join(self.base, unit)

    def _start(self, unit: str, spec: Spec) -> None:
        d = self._dir(unit)
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
            if isinstance(spec, ShardSpec):
                clear_clean_stop(d)  # (a mark describes the last exit, never a later one)
                argv = [sys.executable, "-m", "ackdb", "server", self._write_config(d, spec)]
                log_name, pid_name = "shard.log", "shard.pid"
            else:
                log_name, pid_name = endpoint_log(spec), "proxy.pid"
                argv = self._proxy_argv(d, spec, log_name)
            out: IO[bytes]
            with open(os.path.join(d, log_name), "ab") as out:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._children[proc.pid] = proc
            write_file(os.path.join(d, pid_name), f"{proc.pid}\n", 0o644)
        except OSError as e:
            self._run(self.core.exited(unit, None, f"could not start: {e}", now_ms()))
            return
        self.core.started(unit, proc.pid, now_ms())
        self.log.notice(f"{unit}: started pid {proc.pid} ({_describe(spec)})")

    def _write_config(self, d: str, spec: ShardSpec) -> str:
        path = os.path.join(d, "shard.conf")
        write_file(path, shard_config(spec, d, self._password), 0o600)
        return path

    def _proxy_argv(self, d: str, spec: ProxySpec, log_name: str) -> list[str]:
        """``ackdb proxy`` (``ackdb coordinator`` for a leaderless database: the same
        options, docs/leaderless-ops.md)."""
        o = self.opts
        return [
            sys.executable, "-m", "ackdb", "coordinator" if spec.coordinator else "proxy",
            "--db", spec.db, "--bind", spec.host, "--port", str(spec.port),
            "--meta", o.client_addr, "--secret-file", os.path.join(self.base, SECRET_FILE),
            "--logfile", os.path.join(d, log_name), "--loglevel", o.log_level,
        ]  # fmt: skip

    def _kill_late(self, pid: int) -> None:
        if any(u.pid == pid for u in self.core.units.values()) and alive(pid):
            self.log.warning(f"pid {pid} still running {STOP_TIMEOUT_S:g}s after SIGTERM: SIGKILL")
            send_signal(pid, signal.SIGKILL)

    def _adopt(self) -> None:
        """Units left by an earlier agent: running ones are adopted (same process), the
        others wait for the metadata (restart, or removal)."""
        now = now_ms()
        for unit, pid in find_units(self.base):
            clean = read_clean_stop(self._dir(unit)) if pid is None else None
            self.core.adopt(unit, pid, now, clean)
            if pid is not None:
                self.log.notice(f"{unit}: adopted running pid {pid}")

    def _mark_clean_stop(self, unit: str, spec: ShardSpec) -> None:
        """A shard that exited with status 0 at this agent's stop: its final fsync (or
        snapshot) is done, so the next agent may start it as it was (supervise.py,
        ``held_after_restart``)."""
        try:
            text = f"{spec.mode.value if spec.mode else 'none'} {spec.epoch}\n"
            write_file(os.path.join(self._dir(unit), CLEAN_STOP), text, 0o644)
        except OSError as e:
            self.log.warning(f"{unit}: could not write its clean-stop mark: {e}")

    # -- talking to the processes -------------------------------------------------------

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _in_order(self, unit: str, step: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``step()`` once every earlier step of ``unit`` is done: the commands that
        change a shard's role (freeze, divergence checks, REPLICAOF, hand-over) reach it
        in the order the decider gave them."""
        prev = self._chains.get(unit)

        async def run() -> None:
            if prev is not None:
                await asyncio.wait({prev})
            await step()

        task = self._spawn_task(run())
        self._chains[unit] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._chains.get(unit) is t:
                del self._chains[unit]

        task.add_done_callback(done)

    async def _conn(self, unit: str, pid: int, spec: Spec) -> Client:
        have = self._conns.get(unit)
        if have is not None and have[0] == pid:
            return have[1]
        self._drop_conn(unit)
        c = await Client.connect(f"{spec.host}:{spec.port}", timeout_s=PROBE_TIMEOUT_S)
        c.read_timeout_s = PROBE_TIMEOUT_S
        if isinstance(spec, ShardSpec):
            try:
                await c.call("AUTH", self._password)
            except BaseException:
                await c.close()
                raise
        have = self._conns.get(unit)
        if have is not None:
            if have[0] == pid:
                await c.close()  # another task connected meanwhile (a probe, a lease): share it
                return have[1]
            self._drop_conn(unit)  # one to another process of the unit: closed, not lost
        self._conns[unit] = (pid, c)
        return c

    async def call(self, unit: str, *args: str | bytes) -> Any:
        """One command on the connection to ``unit``'s running shard process (the lease
        loop's port). LookupError when the unit runs no shard process now; the errors of
        ``Client.call`` otherwise (the connection is dropped on a connection error)."""
        u = self.core.units.get(unit)
        if u is None or u.pid is None or not isinstance(u.spec, ShardSpec):
            raise LookupError(f"{unit} runs no shard process")
        pid = u.pid
        try:
            c = await self._conn(unit, pid, u.spec)
            reply = await c.call(*args)
        except ReplyError:
            self.core.answered(unit, pid, now_ms())  # an error reply is an answer too
            raise
        except BaseException:
            # A connection error, a timeout, or the caller cancelling (its wait_for) after
            # the command went out: its reply may still come and would answer the next
            # command on this shared connection. Drop the connection.
            self._drop_conn(unit)
            raise
        self.core.answered(unit, pid, now_ms())
        return reply

    def _drop_conn(self, unit: str) -> None:
        have = self._conns.pop(unit, None)
        if have is not None:
            # Not one of ``_tasks``: stop() cancels those, and a close cancelled before it
            # ran leaves the connection open.
            task = asyncio.get_running_loop().create_task(have[1].close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _probe(self, a: Probe) -> None:
        seen: Observed | None = None
        try:
            c = await self._conn(a.unit, a.pid, a.spec)
            question = ("INFO", "replication") if isinstance(a.spec, ShardSpec) else ("PING",)
            leaderless = isinstance(a.spec, ShardSpec) and a.spec.leaderless
            questions = [question, ("LL.SCHEMA",)] if leaderless else [question]
            reply, *schema = await c.pipeline(questions)
            # Any answer is alive (a shard loading its data may answer an error).
            seen = Observed()
            if isinstance(reply, bytes) and isinstance(a.spec, ShardSpec):
                seen = parse_replication_info(reply.decode(errors="replace"))
            if schema and isinstance(schema[0], int):
                seen = replace(seen, ll_schema=schema[0])
        except (OSError, ConnectionError, TimeoutError, ReplyError, ValueError) as e:
            self.log.verbose(f"{a.unit}: probe failed: {e!r}")
            self._drop_conn(a.unit)
        if not self._stopped:
            self._run(self.core.probed(a.unit, a.pid, seen, now_ms()))

    async def _remove_dir(self, a: RemoveDir) -> None:
        loop = asyncio.get_running_loop()
        remove = functools.partial(divergedfiles.remove_unit_dir, self.base, a.unit)
        try:
            moved = await loop.run_in_executor(None, remove, a.keep_diverged)
        except OSError as e:
            self.log.warning(f"{a.unit}: could not keep its files of divergent writes ({e})")
            return
        for old, new in moved:
            self.failover.moved(old, new)
            self.log.warning(f"{old}: kept as {new} (its shard left this node)")

    async def _failover_step(self, a: Freeze | CheckDiverged | HandOver) -> None:
        u = self.core.units.get(a.unit)
        spec = u.spec if u is not None else None
        if isinstance(spec, ShardSpec) and not self._stopped:
            ok = await self.failover.step(a, spec, self._dir(a.unit))
            u = self.core.units.get(a.unit)
            if u is not None and u.checking and isinstance(a, CheckDiverged):
                self._run(self.core.checked(a.unit, ok, now_ms()))
            elif not ok and isinstance(a, CheckDiverged):
                self._unchecked.add(a.unit)  # the REPLICAOF after it is skipped

    async def _push_schema(self, a: PushSchema) -> None:
        """LL.SCHEMA to a leaderless replica; a refusal (a server without the command
        yet) or a connection error is retried after the next probe (schemapush.py)."""
        u = self.core.units.get(a.unit)
        if u is None or u.pid != a.pid or self._stopped:
            return
        try:
            await self.call(a.unit, "LL.SCHEMA", str(a.version), a.payload)
            self.log.verbose(f"{a.unit}: schema version {a.version} pushed")
        except ReplyError as e:
            self.log.debug(f"{a.unit}: LL.SCHEMA {a.version} refused ({e}); will retry")
        except (OSError, ConnectionError, TimeoutError, LookupError) as e:
            self.log.debug(f"{a.unit}: LL.SCHEMA {a.version} not sent ({e!r}); will retry")

    async def _set_replication(self, a: SetReplication) -> None:
        spec = a.spec
        if a.unit in self._unchecked:
            # Its divergence check failed: following the new primary now could throw
            # away writes only it holds. The probes repair the role, checking again.
            self._unchecked.discard(a.unit)
            self.log.warning(f"{a.unit}: REPLICAOF skipped (divergence check failed)")
            return
        try:
            self._write_config(self._dir(a.unit), spec)
            c = await self._conn(a.unit, a.pid, spec)
            if spec.primary is None:
                await c.call("REPLICAOF", "NO", "ONE")
            else:
                await c.call("REPLICAOF", spec.primary[0], str(spec.primary[1]))
        except (OSError, ConnectionError, TimeoutError, ReplyError) as e:
            self.log.warning(f"{a.unit}: REPLICAOF failed ({e}); the probes will retry")
            self._drop_conn(a.unit)


def _no_submit(op: Op, args: tuple[bytes | str | int, ...], done: Callable[[Result], None]) -> None:
    done(Result(False, error="ERR no Raft member to propose through"))


def endpoint_log(spec: ProxySpec) -> str:
    return "coordinator.log" if spec.coordinator else "proxy.log"


def _describe(spec: Spec) -> str:
    if isinstance(spec, ProxySpec):
        what = "coordinator" if spec.coordinator else "proxy"
        return f"{what} of {spec.db} on {spec.host}:{spec.port}"
    if spec.leaderless:
        return f"{spec.db} partition {spec.shard} replica on {spec.host}:{spec.port}"
    role = "primary" if spec.primary is None else f"replica of {spec.primary[0]}:{spec.primary[1]}"
    return f"{spec.db} shard {spec.shard} on {spec.host}:{spec.port}, {role}"
