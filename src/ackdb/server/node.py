"""A running ``ackdb server``: start-up, listeners, the cron timer, signals, shutdown.

Owns: the process-level life of a node — logging the banner, binding ``bind``/``port``
(and ``unixsocket``), the pid file, applying live config changes (port, hz, requirepass,
loglevel, ...), the ``hz`` timer that drives the core's cron, client idle timeouts, and a
clean shutdown on SIGTERM / SIGINT / SHUTDOWN.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import sys
import time
from typing import Any

from .. import REDIS_COMPAT_VERSION, __version__
from ..engine.access import users_changed
from ..resp.aio import new_event_loop, settle_gc
from .acl_files import AclStartupError, load_users_at_startup
from .busypoll import BusyPoll, poll_sockets
from .config import Config, ConfigSetError
from .engine_host import build_engine
from .loading import Loader, LoadFailure
from .log import Log
from .network import ClientConnection, is_loopback, serve_while_busy
from .persist import Persistence
from .replication import ReplicationShell, saved_history_from

# How often idle clients are checked against ``timeout`` (ms).
CLIENT_TIMEOUT_CHECK_MS = 1000
# Clients answered in a pass whose sockets a busy poll watches: at most.
POLL_CLIENTS_MAX = 64


class Node:
    def __init__(self, config: Config, log: Log) -> None:
        self.config = config
        self.log = log
        self.core = build_engine(config, log)
        load_users_at_startup(self.core, config)  # AclStartupError: Redis does not start
        self.core.busy_pump = lambda: serve_while_busy(self)
        self.persist = Persistence(self.core, config, log)
        self.loader: Loader | None = None
        self.exit_code = 0
        self._cron_handle: asyncio.TimerHandle | None = None
        # Connections whose replies wait for the fsync that makes them true (always).
        self._held: set[ClientConnection] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.listeners: list[asyncio.AbstractServer] = []
        self.cached_ms = int(time.time() * 1000)
        self.output_limits: dict[str, tuple[int, int, int]] = {}
        self._stopping = False
        self._done: asyncio.Future[None] | None = None
        self._last_timeout_check_ms = 0
        self._to_flush: list[ClientConnection] = []
        self._flush_scheduled = False
        self._pass_start_ns = 0  # when the pass that scheduled _flush_all began its work
        self.busy_poll = BusyPoll(config.get("ackdb-busy-poll-us"))
        self.repl: ReplicationShell | None = None
        self._load_output_limits()
        self._register_config_hooks()

    # -- configuration -----------------------------------------------------------------

    def _load_output_limits(self) -> None:
        normal, replica, pubsub = self.config.get("client-output-buffer-limit")
        self.output_limits = {
            kind: (lim.hard_bytes, lim.soft_bytes, lim.soft_seconds)
            for kind, lim in (("normal", normal), ("replica", replica), ("pubsub", pubsub))
        }
        # Normal clients are unlimited by default: their hot path then skips the check.
        self.normal_limited = any(self.output_limits["normal"][:2])

    def _register_config_hooks(self) -> None:
        cfg = self.config
        core = self.core

        def requirepass(name: str, old: Any, new: Any) -> None:
            # Redis: requirepass is the default user's password (nopass when empty).
            core.requirepass = (new or "").encode()
            core.acl.set_default_password(core.requirepass)
            users_changed(core)

        def loglevel(name: str, old: Any, new: Any) -> None:
            self.log.set_level(new)

        def logfile(name: str, old: Any, new: Any) -> None:
            try:
                self.log.set_file(new)
            except OSError as e:
                raise ConfigSetError(f"Can't open the log file: {e.strerror}", name) from None

        def output_limits(name: str, old: Any, new: Any) -> None:
            self._load_output_limits()

        def rebind(name: str, old: Any, new: Any) -> None:
            if self.loop is None:
                return
            try:
                self._rebind()
            except OSError as e:
                raise ConfigSetError(f"Unable to listen on this port: {e.strerror}", name) from None

        def reader_limits(name: str, old: Any, new: Any) -> None:
            for c in core.clients.values():
                c.reader.max_bulk_bytes = cfg.get("proto-max-bulk-len")
                c.reader.max_query_bytes = cfg.get("client-query-buffer-limit")

        def refresh(name: str, old: Any, new: Any) -> None:
            core.refresh_config()

        def chdir(name: str, old: Any, new: Any) -> None:
            try:
                os.chdir(new)
            except OSError as e:
                raise ConfigSetError(f"No such directory: {e.strerror}", name) from None

        def appendonly(name: str, old: Any, new: Any) -> None:
            if new and self.persist.aof_state == "off":
                try:
                    self.persist.create_aof()
                except OSError as e:
                    self.log.warning(f"Unable to turn on AOF: {e.strerror or e}")
                    raise ConfigSetError(
                        "Unable to turn on AOF. Check server logs.", name
                    ) from None
            elif not new and self.persist.aof_state != "off":
                self.persist.stop_aof()

        cfg.on_change("appendonly", appendonly)
        cfg.on_change("dir", chdir)
        cfg.on_change("requirepass", requirepass)
        cfg.on_change("loglevel", loglevel)
        cfg.on_change("logfile", logfile)
        cfg.on_change("client-output-buffer-limit", output_limits)
        cfg.on_change("port", rebind)
        cfg.on_change("bind", rebind)
        cfg.on_change("proto-max-bulk-len", reader_limits)
        cfg.on_change("client-query-buffer-limit", reader_limits)
        cfg.on_change("slowlog-log-slower-than", refresh)
        cfg.on_change("slowlog-max-len", refresh)
        cfg.on_change("notify-keyspace-events", refresh)
        cfg.on_change("ackdb-busy-poll-us", lambda n, o, new: self.busy_poll.set_window_us(new))

    def protected_mode_denies(self, addr: str) -> bool:
        cfg = self.config
        if not cfg.get("protected-mode") or not self.core.acl.default.nopass:
            return False
        if tuple(cfg.get("bind")) != ("*", "-::*"):
            return False
        return not is_loopback(addr)

    # -- start and stop ------------------------------------------------------------------

    def _bind_sockets(self) -> list[socket.socket]:
        """Bind every listening socket now, so a failure is reported where it happens."""
        cfg = self.config
        port = cfg.get("port")
        backlog = cfg.get("tcp-backlog")
        socks: list[socket.socket] = []
        try:
            if port:
                for addr in cfg.get("bind"):
                    optional = addr.startswith("-")
                    host = addr[1:] if optional else addr
                    family = socket.AF_INET6 if ":" in host else socket.AF_INET
                    host = {"*": "0.0.0.0", "::*": "::"}.get(host, host)
                    s = socket.socket(family, socket.SOCK_STREAM)
                    try:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        if family == socket.AF_INET6:
                            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                        s.bind((host, port))
                        s.listen(backlog)
                    except OSError as e:
                        s.close()
                        if optional:
                            self.log.verbose(
                                f"Could not bind optional address {host}:{port}: {e.strerror}"
                            )
                            continue
                        raise OSError(
                            e.errno,
                            f"Failed listening on port {port} (tcp), aborting: {e.strerror}",
                        ) from e
                    s.setblocking(False)
                    socks.append(s)
            path = cfg.get("unixsocket")
            if path:
                if os.path.exists(path):
                    os.unlink(path)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind(path)
                s.listen(backlog)
                s.setblocking(False)
                perm = cfg.get("unixsocketperm")
                if perm:
                    os.chmod(path, perm if isinstance(perm, int) else int(str(perm), 8))
                socks.append(s)
        except BaseException:
            for s in socks:
                s.close()
            raise
        return socks

    async def _serve_sockets(self, socks: list[socket.socket]) -> None:
        assert self.loop is not None
        for s in socks:
            if s.family == socket.AF_UNIX:
                srv = await self.loop.create_unix_server(lambda: ClientConnection(self), sock=s)
            else:
                srv = await self.loop.create_server(lambda: ClientConnection(self), sock=s)
            self.listeners.append(srv)

    def _rebind(self) -> None:
        assert self.loop is not None
        socks = self._bind_sockets()
        for srv in self.listeners:
            srv.close()
        self.listeners = []
        self.loop.create_task(self._serve_sockets(socks))

    async def serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        cfg = self.config
        self.log.role = "M"
        await self._serve_sockets(self._bind_sockets())
        mode = "standalone"
        self.log.notice(
            f"ackdb {__version__} (Redis {REDIS_COMPAT_VERSION} compatible) 64 bit, "
            f"{mode} mode, port {cfg.get('port')}, PID: {os.getpid()}"
        )
        self.log.notice("Server initialized")
        if not await self._load():
            return
        self.repl = ReplicationShell(self, saved_history_from(self.persist.loaded_meta))
        self._propagate_expired_at_load()
        pidfile = cfg.get("pidfile")
        if pidfile:
            try:
                with open(pidfile, "w") as f:
                    f.write(f"{os.getpid()}\n")
            except OSError as e:
                self.log.warning(f"Failed to write PID file: {e.strerror}")
        self._done = self.loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._on_signal, sig)
        if cfg.get("port"):
            self.log.notice("Ready to accept connections tcp")
        if cfg.get("unixsocket"):
            self.log.notice("Ready to accept connections unix")
        self._schedule_cron()
        self.core.blocking.timer_cb = self._arm_block_timer
        settle_gc()
        core = self.core
        while True:
            await self._done
            mode = core.shutdown_requested or "default"
            parked = core.shutdown_client
            if core.shutdown_now or await self._let_replicas_catch_up():
                if self.persist.prepare_shutdown(mode) or (parked and core.shutdown_force):
                    break
            # Redis: a shutdown whose final save fails (or that was aborted) does not
            # happen; a parked SHUTDOWN gets the error.
            core.unpause()
            if parked is not None and not parked.closed:
                core.blocking.answer(parked, b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n")
            self._stopping = False
            core.shutdown_requested = None
            core.shutdown_now = False
            core.shutdown_client = None
            self._done = self.loop.create_future()
            self._schedule_cron()
        await self._shutdown()

    async def _let_replicas_catch_up(self) -> bool:
        """Redis 7's graceful shutdown: with writes paused, give replicas that lag up to
        ``shutdown-timeout`` seconds to acknowledge everything; False when SHUTDOWN ABORT
        cancelled it."""
        repl, core = self.repl, self.core
        timeout_s = self.config.get("shutdown-timeout")
        if repl is None or not timeout_s or not repl.lagging_replicas():
            return True
        self.log.notice("Waiting for replicas before shutting down.")
        core.pause(1 << 62, everything=False)
        core.shutdown_waiting = True
        target = repl.request_acks()
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if not core.shutdown_waiting:
                    self.log.warning("Shutdown aborted (SHUTDOWN ABORT).")
                    return False
                lagging = repl.lagging_replicas(target)
                if not lagging:
                    self.log.notice("All replicas are in sync: shutting down.")
                    return True
                if time.monotonic() >= deadline:
                    for name in lagging:
                        self.log.warning(f"Lagging replica {name} at shutdown.")
                    return True
                await asyncio.sleep(0.01)
        finally:
            core.shutdown_waiting = False

    def _propagate_expired_at_load(self) -> None:
        """Redis's start-up as a primary (rdbLoad with RDBFLAGS_FEED_REPL): every key
        dropped because its time passed while the server was down goes to the stream as
        DEL (UNLINK under lazyfree-lazy-expire), so replicas that continue the saved
        history partially delete it too; it lands after the restored offset, before any
        replica can attach."""
        keys, self.persist.expired_at_load = self.persist.expired_at_load, []
        if not keys or self.repl is None or not self.repl.is_primary:
            return
        name = b"UNLINK" if self.config.get("lazyfree-lazy-expire") else b"DEL"
        for db_index, key in keys:
            self.core.propagate(db_index, [name, key])

    async def _load(self) -> bool:
        """Load the dataset while clients get -LOADING; False when it cannot be loaded."""
        core = self.core
        loader = self.loader = core.loader = Loader(self.persist)
        core.loading = True
        try:
            for _ in loader.steps():
                await asyncio.sleep(0)
        except (LoadFailure, OSError) as e:
            self.log.warning(str(e))
            self.log.warning("ackdb cannot start: the dataset could not be loaded.")
            self.exit_code = 1
            for s in self.listeners:
                s.close()
            return False
        finally:
            core.loading = False
            self.loader = core.loader = None
        return True

    def _on_signal(self, sig: int) -> None:
        name = "SIGINT" if sig == signal.SIGINT else "SIGTERM"
        if self._stopping:
            self.log.warning("You insist... exiting now.")
            os._exit(1)
        self.log.warning(f"Received {name} scheduling shutdown...")
        self.shutdown_soon()

    def shutdown_soon(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def _shutdown(self) -> None:
        self.log.warning("User requested shutdown...")
        if self.repl is not None:
            self.repl.stop()
        for s in self.listeners:
            s.close()
        for c in list(self.core.clients.values()):
            c.conn.close()
        pidfile = self.config.get("pidfile")
        if pidfile:
            self.log.notice("Removing the pid file.")
            try:
                os.unlink(pidfile)
            except OSError:
                pass
        path = self.config.get("unixsocket")
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass
        self.log.warning("ackdb is now ready to exit, bye bye...")

    # -- output ------------------------------------------------------------------------

    def schedule_flush(self, conn: ClientConnection) -> None:
        """Write ``conn``'s queued replies at the end of this pass of the event loop."""
        if not self._flush_scheduled:
            self.request_before_sleep()
        self._to_flush.append(conn)

    def request_before_sleep(self) -> None:
        """Run the end-of-pass work (``_flush_all``) at the end of this pass."""
        if not self._flush_scheduled and self.loop is not None:
            self._flush_scheduled = True
            now = time.perf_counter_ns()
            self._pass_start_ns = now
            self.busy_poll.pass_started(now)
            self.loop.call_soon(self._flush_all)

    def _flush_all(self) -> None:
        """Redis's beforeSleep: write (and under always fsync) the AOF, then the replies
        this pass queued, then replication (fsync reports, WAIT answers, one GETACK, the
        stream to replicas, full syncs), then the replies that answered (WAIT)."""
        p = self.persist
        repl = self.repl
        mark = None
        flushed: list[ClientConnection] = []
        if p.aof is not None:
            p.before_replies()
            if self._held:
                self._release_held()
            mark = p.durable_mark()
        if repl is not None:
            # The clients' replies leave before the stream to replicas: the client that
            # wrote wakes first, while the replica applies (measured: SET + WAIT 1 0's p50
            # 8% lower than with the stream first; docs/performance.md). The order is
            # invisible to clients: a reply and the stream never waited for each other.
            flushed, self._to_flush = self._to_flush, []
            self._flush(flushed, mark)
            repl.driver.before_sleep()  # the driver itself: a frame less on every pass
        conns, self._to_flush = self._to_flush, []
        self._flush_scheduled = False
        self._flush(conns, mark)
        core = self.core
        core.stat_eventloop_cycles += 1
        end = time.perf_counter_ns()
        core.stat_eventloop_duration_us += (end - self._pass_start_ns) // 1000
        if (p.aof is not None and p.aof.pending) or (
            repl is not None and repl.driver.engine.table.has_queued
        ):
            # Commands resumed above (a WAIT answered) wrote more: another pass.
            self.request_before_sleep()
            return
        bp = self.busy_poll
        window = bp.window()
        # Not while replies wait for an fsync: its completion comes through the loop,
        # which the poll would keep waiting. Nor without a socket to watch (a pass of
        # the timer alone).
        fds = self._poll_fds(flushed + conns) if window and not self._held else None
        if fds:
            caught, spent = poll_sockets(fds, window)
            bp.polled(caught, spent)
            core.stat_busy_poll_us = bp.spent_ns // 1000
            core.stat_busy_poll_hits = bp.hits
        bp.pass_ended(end)  # the gap to the next pass counts the poll in

    def _poll_fds(self, conns: list[ClientConnection]) -> list[int]:
        """The sockets whose input ends a busy poll: the clients this pass answered (the
        next request likely comes from one of them), the replicas, the link to our
        primary."""
        fds = []
        for conn in conns[:POLL_CLIENTS_MAX]:
            c = conn.client
            if c is not None and c.fd >= 0:
                fds.append(c.fd)
        repl = self.repl
        if repl is not None:
            fds += repl.poll_fds()
        return fds

    def _flush(self, conns: list[ClientConnection], mark: int | None) -> None:
        """Write ``conns``' replies; under appendfsync always (``mark``: the fsynced
        offset) a reply to a write leaves only once that write is fsynced."""
        if mark is None:
            for conn in conns:
                conn.flush()
            return
        for conn in conns:
            c = conn.client
            if c is not None and c.woff > mark:
                self._held.add(conn)
            else:
                conn.flush()

    def may_flush(self, conn: ClientConnection) -> bool:
        """Whether ``conn``'s queued replies may leave now (a closing connection asks)."""
        c = conn.client
        mark = self.persist.durable_mark()
        if mark is None or c is None or c.woff <= mark:
            return True
        self.persist.sync_now()
        mark = self.persist.durable_mark()
        return mark is None or c.woff <= mark

    def _release_held(self) -> None:
        mark = self.persist.durable_mark()
        for conn in list(self._held):
            c = conn.client
            if mark is None or c is None or c.closed or c.woff <= mark:
                self._held.discard(conn)
                conn.flush()

    # -- blocked clients ---------------------------------------------------------------

    def _arm_block_timer(self, deadline_ms: int) -> None:
        """Wake up when a blocked client's time runs out (BLPOP key 0.5 answers on time,
        not at the next cron tick)."""
        assert self.loop is not None
        delay_s = max(0.0, deadline_ms / 1000 - time.time()) + 0.001
        self.loop.call_later(delay_s, self._expire_blocked)

    def _expire_blocked(self) -> None:
        if self.core.blocking.blocked:
            self.core.blocking.expire(int(time.time() * 1000))

    # -- cron ----------------------------------------------------------------------------

    def _schedule_cron(self) -> None:
        assert self.loop is not None
        hz = max(1, min(500, self.config.get("hz")))
        if self._cron_handle is not None:
            self._cron_handle.cancel()
        self._cron_handle = self.loop.call_later(1.0 / hz, self._cron)

    def _cron(self) -> None:
        if self._stopping:
            return
        now = int(time.time() * 1000)
        self.cached_ms = now
        try:
            self.core.cron(now)
            self.persist.cron(now)
            if self.repl is not None:
                self.repl.cron(now)
            if self._held:
                self._release_held()
            if now - self._last_timeout_check_ms >= CLIENT_TIMEOUT_CHECK_MS:
                self._last_timeout_check_ms = now
                self._close_idle_clients(now)
        except Exception:
            self.log.warning("Unexpected error in cron", exc=True)
        self._schedule_cron()

    def _close_idle_clients(self, now: int) -> None:
        timeout_s = self.config.get("timeout")
        if not timeout_s:
            return
        for c in list(self.core.clients.values()):
            if c.kind != "normal" or c.subscriptions or c.pending or c.blocked_since_ms:
                continue
            if now - c.last_ms > timeout_s * 1000:
                self.log.verbose(f"Closing idle client id={c.id} addr={c.addr}")
                self.core.kill_client(c)


# glibc's mallopt parameter for its mmap threshold.
_M_MMAP_THRESHOLD = -3


def fix_mmap_threshold() -> None:
    """Keep glibc's mmap threshold at its default, 128 KiB. glibc raises it to the size of
    each mmapped block freed (up to 32 MiB), after which the keyspace's large tables come
    from the heap, and the old table a resize frees stays there: measured, 4.8 MiB more
    RSS after DEBUG POPULATE 1000000 depending on what start-up happened to free (issue
    19's memory row). With the threshold fixed, large blocks are mmapped and returned to
    the system when freed. Elsewhere than glibc, nothing happens."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):
        pass


def run(config: Config, log: Log) -> int:
    fix_mmap_threshold()
    try:
        node = Node(config, log)
    except AclStartupError as e:
        log.warning(f"Aborting Redis startup because of ACL errors: {e}")
        return 1
    loop = new_event_loop()
    try:
        loop.run_until_complete(node.serve())
    except OSError as e:
        log.warning(str(e.strerror or e))
        return 1
    finally:
        loop.close()
    sys.stdout.flush()
    return node.exit_code
