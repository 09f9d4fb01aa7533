"""The server core: command dispatch, statistics, propagation of effects, client registry.

Owns: the path of one command from name lookup to reply (arity, authentication, MULTI
queueing, CLIENT PAUSE, LOADING, the call itself, INFO commandstats and errorstats,
SLOWLOG, MONITOR feed) and the stream of effects every write yields for the AOF and
replicas. Never touches sockets: clients carry a ``conn`` handle the shell implements,
and the shell calls ``cron(now_ms)`` on its timer.

Effects: after a write command changes the dataset (``dirty`` moved), its argv — or the
rewritten effects a handler put in ``client.prop`` — goes to every registered feed as
``(db_index, argv)``; expired keys go out as DEL before the command that found them;
EXEC wraps more than one effect in MULTI/EXEC. Feeds are callables; the persistence and
replication issues register theirs with ``add_feed``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from ..commandtable import TABLE
from ..keyspace.db import Database
from ..keyspace.scanpage import ScanSnapshots
from ..resp import encoder as enc
from . import access
from . import notify as nt
from .blocking import Blocking, BlockRequest
from .client import REPLY_OFF, REPLY_ON, REPLY_SKIP, REPLY_SKIP_NEXT, Client, Conn
from .cmdlatency import CommandLatency
from .dispatch import Dispatch, Entry
from .latency import LatencyMonitor
from .ports import (
    AclFile,
    Clock,
    Config,
    Info,
    Loading,
    Log,
    OffsetCounter,
    Persistence,
    Replication,
)
from .pubsub import PubSub
from .tracking import TRACKER, Tracking

Feed = Callable[[int, list[bytes]], None]

# Most keys the active expiry cycle reclaims per database per tick.
EXPIRE_CYCLE_KEYS_MAX = 2000
# Longest time the active expiry cycle may run per tick (ms); Redis: 25% of a tick.
EXPIRE_CYCLE_TIME_MS = 25
# Commands sampled for instantaneous_ops_per_sec.
OPS_SAMPLES = 16


class CommandError(Exception):
    """A command's error reply; ``msg`` starts with its code (ERR, WRONGTYPE, ...)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"

# Commands that run while a transaction is being queued instead of being queued.
_MULTI_IMMEDIATE = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
# What a RESP2 client may run while subscribed.
_SUBSCRIBED_ALLOWED = frozenset(
    {
        "subscribe",
        "ssubscribe",
        "psubscribe",
        "unsubscribe",
        "sunsubscribe",
        "punsubscribe",
        "ping",
        "quit",
        "reset",
    }
)
# Paused (CLIENT PAUSE WRITE) in addition to write commands.
_PAUSE_WRITE_EXTRA = frozenset({"publish", "pfcount", "eval", "evalsha", "fcall"})


class PausedSignal:
    """Returned by ``process`` when a command must wait for CLIENT UNPAUSE."""


PAUSED = PausedSignal()
# Returned when a command blocks on keys (BLPOP...): the client waits in ``blocking``.
BLOCKED = PausedSignal()


class SlowlogEntry:
    __slots__ = ("id", "time_s", "usec", "argv", "addr", "name")

    def __init__(self, id_: int, time_s: int, usec: int, argv: list[bytes], c: Client) -> None:
        self.id = id_
        self.time_s = time_s
        self.usec = usec
        self.argv = argv
        self.addr = c.addr.encode()
        self.name = c.name


class Server:
    # Wall-clock ms: the clock port's own method, bound once (it is read per command on
    # keys with a TTL). Tests may replace it on an instance.
    now_ms: Callable[[], int]

    def __init__(
        self,
        config: Config,
        log: Log | None = None,
        rng: random.Random | None = None,
        *,
        clock: Clock,
        pid: int = 0,
    ) -> None:
        if not TABLE.loaded:
            # The engine runs the handlers; it does not choose them (commands/ sits above it).
            raise RuntimeError("command handlers not loaded: call ackdb.commands.load_all() first")
        self.config = config
        self.log = log
        self.rng = rng or random.Random()
        self.clock = clock
        self.now_ms = clock.now_ms
        self._perf_ns = clock.perf_ns
        self.pid = pid
        self.start_time_s = clock.time_s()
        self.run_id = "%040x" % self.rng.getrandbits(160)
        # Replication ids (INFO replication); the replication issue makes them move.
        self.replid = "%040x" % self.rng.getrandbits(160)
        self.replid2 = "0" * 40
        self.second_repl_offset = -1
        self._repl_offset = 0
        # The replication shell (server.replication.ReplicationShell), set by the node.
        self.repl: Replication | None = None
        # The object holding the replication shell's offset, set with ``repl``: read
        # after every write (a client's woff), so it skips the shell's property.
        self.repl_offsets: OffsetCounter | None = None
        # Replication refuses some commands here (READONLY, MASTERDOWN, NOREPLICAS): set
        # while that is possible, so every command takes the checked path.
        self.repl_gated = False
        self.applying = False
        # Set by the replication shell while nobody needs the effects' bytes: an object
        # whose master_repl_offset counts writes instead (see _propagate_call).
        self.count_only: OffsetCounter | None = None
        # INFO latest_fork_usec / total_forks: every child (BGSAVE, BGREWRITEAOF, a
        # replica's full sync) is counted by ``count_fork``.
        self.stat_latest_fork_usec = 0
        self.stat_total_forks = 0
        self.dbs = [Database(i, self) for i in range(config.get("databases"))]
        self.requirepass: bytes = (config.get("requirepass") or "").encode()
        self.acl = access.new_acl(self)  # the users (requirepass is the default's password)
        self.acl_file: AclFile | None = None  # set by the shell when ``aclfile`` is set
        # ACL GENPASS's randomness: the shell injects the OS's (random.SystemRandom).
        self.secure_rng: random.Random = self.rng
        self.clients: dict[int, Client] = {}
        self.next_client_id = 1
        self.monitors: list[Client] = []
        self.feeds: list[Feed] = []
        self.dirty = 0
        self._loading = False
        self.gated = False  # loading, paused or writes denied: every command is checked
        # Why writes are refused (MISCONF ... while the disk fails), or None.
        self.write_denied: str | None = None
        self.persist: Persistence | None = None  # set by the shell
        # INFO's text and CONFIG RESETSTAT's memory peak; set by the shell.
        self.info: Info | None = None
        self.loader: Loading | None = None  # set by the shell while a dataset loads
        # This engine's entries and call counters (INFO commandstats): its own, never
        # shared with another engine in the process.
        self.dispatch = Dispatch(TABLE)
        self.cmd_latency = CommandLatency(self.dispatch)  # LATENCY HISTOGRAM's view
        self._plain = self.dispatch.plain
        self.active_expire = True
        self.shutdown_requested: str | None = None
        self.shutdown_now = False  # SHUTDOWN NOW: do not wait for lagging replicas
        self.shutdown_client: Client | None = None  # a SHUTDOWN parked while waiting
        self.shutdown_force = False
        self.shutdown_waiting = False  # replicas are being waited for (SHUTDOWN ABORT)
        self.pause_until_ms = 0
        self.pause_all = False
        self.paused_clients: list[Client] = []
        self.blocking = Blocking()
        self.pubsub = PubSub()
        self.tracking = Tracking(self)  # CLIENT TRACKING (costs nothing while unused)
        self.scan_snapshots = ScanSnapshots()  # HSCAN / SSCAN / ZSCAN cursors
        self.notifier = nt.Notifier(self.pubsub)
        self.slowlog: deque[SlowlogEntry] = deque()
        self.slowlog_next_id = 0
        self.error_stats: dict[str, int] = {}
        self._multi_depth = 0
        # Effects of the EXEC running: (db, argv, for replicas only).
        self._multi_buffer: list[tuple[int, list[bytes], bool]] = []
        self.slowlog_slower_than_us = 0
        self.slowlog_ns = 0
        self.slowlog_log_ns = 0
        self.latency = LatencyMonitor()
        self.slowlog_max_len = 0
        # Scripting (commands/script_run.ScriptState), made by the first script or FUNCTION.
        self.scripting: Any = None
        # While a script runs past busy-reply-threshold: the -BUSY text every command but
        # the allow_busy ones gets; the shell's ``busy_pump`` reads clients meanwhile.
        self.busy: str | None = None
        self.busy_pump: Callable[[], None] | None = None
        self.busy_client: Client | None = None  # whose script it is: never read meanwhile
        self.refresh_config()
        self.reset_stats()

    def notify(self, cls: int, event: bytes, key: bytes, db_index: int) -> None:
        """Publish a keyspace notification (see ``notify``); a bit test when off."""
        if self.notifier.flags & cls:
            self.notifier.publish(cls, event, key, db_index)

    def key_miss(self, db_index: int, key: bytes) -> None:
        """A read found no key: count it (keyspace_misses) and send the ``keymiss`` event
        (class ``m``), as Redis's lookupKeyRead does."""
        self.stat_keyspace_misses += 1
        if self.notifier.flags & nt.KEYMISS:
            self.notifier.publish(nt.KEYMISS, b"keymiss", key, db_index)

    def refresh_config(self) -> None:
        """Copy settings read on the command path into attributes."""
        self.slowlog_slower_than_us = self.config.get("slowlog-log-slower-than")
        # The same threshold in ns for the hot path; a negative setting disables SLOWLOG.
        us = self.slowlog_slower_than_us
        self.slowlog_log_ns = us * 1000 if us >= 0 else 1 << 62
        # The hot path's one test, "is this command slow enough to look at?": the lower
        # of SLOWLOG's threshold and the latency monitor's (0 = off).
        latency_ms = self.config.get("latency-monitor-threshold")
        self.latency.threshold_ms = latency_ms
        self.cmd_latency.set_enabled(bool(self.config.get("latency-tracking")))
        self.slowlog_ns = min(self.slowlog_log_ns, latency_ms * 1_000_000 or 1 << 62)
        self.slowlog_max_len = self.config.get("slowlog-max-len")
        if hasattr(self, "notifier"):
            flags = nt.flags_of(self.config.get("notify-keyspace-events"))
            self.notifier.flags = flags
            for db in self.dbs:
                db.notify_created = bool(flags & nt.NEW)

    def request_shutdown(self, mode: str) -> None:
        """SHUTDOWN that already did its final steps (no replica to wait for)."""
        self.shutdown_requested = mode
        self.shutdown_now = True

    def defer_shutdown(self, c: Client, mode: str, force: bool) -> None:
        """SHUTDOWN that first lets lagging replicas catch up: ``c`` is parked and gets
        its answer (an error, or nothing when the server exits) from the shell."""
        self.shutdown_requested = mode
        self.shutdown_now = False
        self.shutdown_client = c
        self.shutdown_force = force

    @property
    def loading(self) -> bool:
        return self._loading

    @loading.setter
    def loading(self, value: bool) -> None:
        self._loading = value
        self._refresh_gated()

    def set_write_denied(self, reason: str | None) -> None:
        """Refuse write commands (and PING, as Redis does) with ``reason``, or stop."""
        self.write_denied = reason
        self._refresh_gated()

    def _refresh_gated(self) -> None:
        self.gated = (
            self._loading
            or bool(self.pause_until_ms)
            or self.write_denied is not None
            or self.repl_gated
            or self.busy is not None
        )

    def set_busy(self, text: str | None, client: Client | None = None) -> None:
        """A script of ``client`` runs past busy-reply-threshold (``text``: the -BUSY
        error others get), or it ended (None)."""
        self.busy = text
        self.busy_client = client
        self._refresh_gated()

    def set_repl_gated(self, gated: bool) -> None:
        self.repl_gated = gated
        self._refresh_gated()

    @property
    def role_replica(self) -> bool:
        """A replica (the replication engine holds the role): keys past their expiry are
        not deleted (the primary sends DEL); reads see them as missing, the primary's
        commands (``applying``) as present (Redis)."""
        r = self.repl
        return r is not None and not r.is_primary

    def is_replica(self) -> bool:
        return self.role_replica

    @property
    def master_repl_offset(self) -> int:
        """The replication offset: the replication engine's when there is one."""
        o = self.repl_offsets
        if o is not None:
            return o.master_repl_offset
        r = self.repl
        if r is not None:
            return r.master_repl_offset
        return self._repl_offset

    @master_repl_offset.setter
    def master_repl_offset(self, value: int) -> None:
        self._repl_offset = value

    # -- KeyspaceOwner ---------------------------------------------------------------

    def on_expired(self, db: Database, key: bytes) -> None:
        self.stat_expired_keys += 1
        self.notify(nt.EXPIRED, b"expired", key, db.index)
        self.propagate(db.index, [b"DEL", key])

    def on_key_created(self, db: Database, key: bytes) -> None:
        self.notify(nt.NEW, b"new", key, db.index)

    def on_key_ready(self, db: Database, key: bytes) -> None:
        self.blocking.key_ready(db, key)

    def on_watched_touched(
        self, db: Database, key: bytes, clients: set[Any], expiring: bool
    ) -> None:
        # ``clients`` holds the WATCHing clients and, while a client tracks the key, the
        # TRACKER sentinel (engine/tracking.py).
        tracked = TRACKER in clients
        for member in clients:
            if member is TRACKER:
                continue
            c: Client = member
            wk = (db.index, key)
            if expiring and c.watched.get(wk):
                # Already expired when WATCHed: its removal is no logical change.
                c.watched[wk] = False
            else:
                c.dirty_cas = True
        tracking = self.tracking
        if tracked or tracking.prefixes:  # CLIENT TRACKING (after: it edits ``clients``)
            tracking.invalidate(key, tracking.current)

    # -- stats -------------------------------------------------------------------------

    def count_fork(self, fork_usec: int) -> None:
        self.latency.add_if_needed("fork", fork_usec // 1000, int(self.clock.time_s()))
        self.stat_latest_fork_usec = fork_usec
        self.stat_total_forks += 1

    def reset_stats(self) -> None:
        self.stat_connections = 0
        self.stat_rejected_conn = 0
        self.stat_expired_keys = 0
        self.stat_keyspace_hits = 0
        self.stat_keyspace_misses = 0
        self.stat_net_input = 0
        self.stat_net_output = 0
        self.stat_total_errors = 0
        self.stat_unexpected_errors = 0
        self.stat_expire_cycle_ms = 0
        # Active expiry cycles that stopped at their time cap with expired keys left.
        self.stat_expired_time_cap_reached = 0
        # Replication traffic, kept apart from the clients' (Redis 7): the primary's
        # stream as a replica reads it, and what a primary writes to its replicas.
        self.stat_net_repl_input = 0
        self.stat_net_repl_output = 0
        # Socket reads and writes (Redis counts read()/write() calls, not commands).
        self.stat_reads_processed = 0
        self.stat_writes_processed = 0
        # Event-loop passes that served clients or replication, and their time (us).
        self.stat_eventloop_cycles = 0
        self.stat_eventloop_duration_us = 0
        self.stat_busy_poll_us = 0  # the node's busy polls (server/busypoll.py)
        self.stat_busy_poll_hits = 0
        # AUTH / HELLO AUTH refused (Redis: acl_access_denied_auth).
        self.stat_auth_denied = 0
        # Commands refused by ACL rules (INFO acl_access_denied_cmd / _key / _channel).
        self.stat_acl_denied_cmd = 0
        self.stat_acl_denied_key = 0
        self.stat_acl_denied_channel = 0
        self.error_stats = {}
        self._ops_samples: deque[tuple[int, int]] = deque(maxlen=OPS_SAMPLES)
        self._net_in_samples: deque[tuple[int, int]] = deque(maxlen=OPS_SAMPLES)
        self._net_out_samples: deque[tuple[int, int]] = deque(maxlen=OPS_SAMPLES)
        self._repl_in_samples: deque[tuple[int, int]] = deque(maxlen=OPS_SAMPLES)
        self._repl_out_samples: deque[tuple[int, int]] = deque(maxlen=OPS_SAMPLES)
        self._cycle_samples: deque[tuple[int, int]] = deque(maxlen=OPS_SAMPLES)
        # (cycles, duration_us) pairs: the recent average duration of one pass.
        self._cycle_time_samples: deque[tuple[int, int]] = deque(maxlen=OPS_SAMPLES)
        self.dispatch.reset()
        self.cmd_latency.reset()

    def count_error(self, reply: bytes) -> None:
        self.stat_total_errors += 1
        code = reply[1:].split(b" ", 1)[0].decode("utf-8", "replace")
        if len(self.error_stats) < 128 or code in self.error_stats:
            self.error_stats[code] = self.error_stats.get(code, 0) + 1

    # -- clients -------------------------------------------------------------------------

    def new_client(self, conn: Conn, addr: str, laddr: str, fd: int) -> Client:
        c = Client(self.next_client_id, self, conn, addr, laddr, fd)
        self.next_client_id += 1
        self.clients[c.id] = c
        self.stat_connections += 1
        return c

    def client_gone(self, c: Client) -> None:
        if c.closed:
            return
        c.closed = True
        self.clients.pop(c.id, None)
        self.unwatch_all(c)
        if c.monitor:
            self.monitors.remove(c)
        if c in self.paused_clients:
            self.paused_clients.remove(c)
        self.blocking.unblock(c)
        self.pubsub.unsubscribe_all(c)
        if c.tracking is not None:
            self.tracking.client_gone(c)
        if self.repl is not None:
            self.repl.client_gone(c)

    def subscription_counts(self, c: Client) -> tuple[int, int, int]:
        """(channels, patterns, shard channels) for CLIENT LIST."""
        return len(c.channels), len(c.patterns), len(c.shard_channels)

    def kill_client(self, c: Client) -> None:
        c.close_after_reply = True
        c.conn.close()
        self.client_gone(c)

    # -- dispatch ------------------------------------------------------------------------

    def process(self, c: Client, argv: list[bytes]) -> bytes | PausedSignal:
        """Run one request; returns its reply, or PAUSED when CLIENT PAUSE holds it."""
        out: list[bytes] = []
        if self.process_batch(c, [argv], out) is not None:
            return PAUSED
        return out[0]

    def process_batch(self, c: Client, cmds: list[list[bytes]], out: list[bytes]) -> int | None:
        """Run the requests of one read, appending each reply to ``out``.

        Stops after a command that closes the client; returns the index of the first
        command CLIENT PAUSE holds (it and the rest wait), else None.

        The common case — a known command with the right arity from an authenticated
        client outside MULTI, nothing paused or loading (or the primary's client) — runs
        inline, with one clock read
        per command (each command's time runs from the end of the one before, so the
        dispatch cost is counted too); every other case goes through ``_process_checked``.
        The inline part repeats the body of ``call`` on purpose (a call per command costs
        measurable throughput): a change to one must be made to the other.
        """
        lookup = self._plain  # commands without subcommands, by name as sent
        append = out.append
        ready = self.blocking.ready  # mutated in place, never replaced
        feeds = self.feeds
        monitors = self.monitors
        slow_ns = self.slowlog_ns
        perf_ns = self._perf_ns
        t_prev = perf_ns()
        for argv in cmds:
            cmd = lookup.get(argv[0])
            # The primary's client (a replica applying the stream) is exempt from every
            # reason to gate (loading, pauses, MISCONF, READONLY...): it stays fast.
            if cmd is None or c.gate or (self.gated and c.kind != "master"):
                if c.reply_mode == REPLY_ON and c.tracking is None:
                    reply = self._process_checked(c, argv)
                    if c.reply_mode != REPLY_ON and reply.__class__ is bytes:
                        reply = self._mute(c, b"")  # CLIENT REPLY OFF / SKIP itself
                else:
                    reply = self._process_muted_or_tracked(c, argv)
                if reply.__class__ is not bytes:
                    if reply is PAUSED:
                        self.paused_clients.append(c)
                    return len(out)
                append(reply)
                if ready:
                    self.blocking.serve_ready()
                if c.close_after_reply:
                    return None
                slow_ns = self.slowlog_ns  # CONFIG SET takes this path
                t_prev = perf_ns()
                continue
            n = len(argv)
            if n < cmd.argc_min or n > cmd.argc_max:
                append(
                    self._reject(c, cmd, f"ERR wrong number of arguments for '{cmd.name}' command")
                )
                continue
            dirty = self.dirty
            try:
                reply = cmd.handler(c, argv)  # type: ignore[misc]
            except CommandError as e:
                reply = enc.error(e.msg)
                cmd.failed_calls += 1
                self.count_error(reply)
            except BlockRequest as b:
                if self._block(c, b):
                    c.last_cmd = cmd.name  # CLIENT LIST shows cmd=blpop while it waits
                    return len(out)
                reply = b.now_reply
            except Exception as bug:  # (a name of its own: compiled, ``e`` is typed)
                reply = self.internal_error(cmd, bug)
            t = perf_ns()
            ns = t - t_prev
            t_prev = t
            cmd.hist[ns.bit_length()] += 1  # the call, counted by its duration
            cmd.nsec += ns
            c.last_cmd = cmd.name
            if cmd.write and self.dirty != dirty and feeds:
                counter = self.count_only
                if counter is not None and not self._multi_depth:
                    counter.master_repl_offset += 1  # _propagate_call, inlined
                    c.woff = counter.master_repl_offset
                else:
                    self._propagate_call(c, argv)
            if c.prop is not None:
                c.prop = None
            if ns >= slow_ns:
                self.slow_command(c, cmd, argv, ns)
            if monitors and cmd.monitored:
                self.feed_monitors(c, argv)
            append(reply)
            if ready:
                self.blocking.serve_ready()
            if c.close_after_reply:
                return None
        return None

    def _block(self, c: Client, req: BlockRequest) -> bool:
        """Park ``c`` on the request's keys; False when it may not block (inside EXEC,
        where Redis answers as if the timeout had expired)."""
        if self.in_exec:
            return False
        self.blocking.block(c, req, self.now_ms())
        return True

    def _process_checked(self, c: Client, argv: list[bytes]) -> bytes | PausedSignal:
        cmd = self.dispatch.get(argv[0])
        if cmd is None:
            return self._reject(c, None, _unknown_command(argv))
        if cmd.subcommands and (cmd.handler is None or len(argv) >= 2):  # CONFIG, CLIENT...
            if len(argv) < 2:
                return self._reject(
                    c, cmd, f"ERR wrong number of arguments for '{cmd.name}' command"
                )
            sub = cmd.subcommands.get(argv[1].lower())
            if sub is None:
                name = argv[1].decode("utf-8", "replace")
                return self._reject(
                    c, cmd, f"ERR unknown subcommand '{name}'. Try {cmd.name.upper()} HELP."
                )
            cmd = sub
        n = len(argv)
        a = cmd.arity
        if (a > 0 and n != a) or n < -a:
            return self._reject(c, cmd, f"ERR wrong number of arguments for '{cmd.name}' command")
        if not c.authenticated and not cmd.no_auth:
            return self._reject(c, cmd, "NOAUTH Authentication required.")
        if c.acl_limited:
            denied = access.check(self, c, cmd.spec, argv)
            if denied is not None:
                return self._reject(c, cmd, denied)
        if self.busy is not None and "allow_busy" not in cmd.flags:
            return self._reject(c, cmd, self.busy)
        if c.subscriptions and c.resp == 2 and cmd.name not in _SUBSCRIBED_ALLOWED:
            return self._reject(
                c,
                cmd,
                f"ERR Can't execute '{cmd.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                "PING / QUIT / RESET are allowed in this context",
            )
        if self.write_denied is not None and self._denied(c, cmd):
            return self._reject(c, cmd, self.write_denied)
        repl = self.repl
        if self.repl_gated and repl is not None and c.kind != "master":
            refusal = repl.refusal(c, cmd)
            if refusal is not None:
                if refusal.hold:  # resumed by the shell (its write pause) and asked again
                    return PAUSED
                return self._reject(c, cmd, refusal.text)
        if c.multi is not None and cmd.name not in _MULTI_IMMEDIATE:
            if cmd.no_multi:
                return self._reject(c, cmd, "ERR Command not allowed inside a transaction")
            c.multi.append((cmd, argv))
            return enc.QUEUED
        if self.loading and not cmd.loading_ok:
            return self._reject(c, cmd, "LOADING Redis is loading the dataset in memory")
        if self.pause_until_ms and self._must_pause(c, cmd):
            return PAUSED
        return self.call(c, cmd, argv)

    def _process_muted_or_tracked(self, c: Client, argv: list[bytes]) -> bytes | PausedSignal:
        """``_process_checked`` for a client under CLIENT REPLY OFF / SKIP or CLIENT
        TRACKING: the reply muted as the mode says, then the invalidation messages the
        command caused for the client itself (Redis 7.2: after the reply, even muted)."""
        tracking = self.tracking
        if c.tracking is not None:
            tracking.current = c
        try:
            reply = self._process_checked(c, argv)
        finally:
            tracking.current = None
        if reply.__class__ is not bytes:
            return reply
        assert isinstance(reply, bytes)
        if c.reply_mode != REPLY_ON:
            reply = self._mute(c, reply)
        if c.tracking is not None:
            reply = tracking.after_command(c, argv, reply)
        return reply

    def _mute(self, c: Client, reply: bytes) -> bytes:
        """CLIENT REPLY: no reply under OFF or SKIP; SKIP lasts one more command."""
        mode = c.reply_mode
        if mode == REPLY_SKIP_NEXT:
            c.reply_mode = REPLY_SKIP
        elif mode == REPLY_SKIP:
            c.reply_mode = REPLY_ON
            c.refresh_gate()
        return b""

    def set_reply_mode(self, c: Client, word: bytes) -> bool:
        """CLIENT REPLY ON / OFF / SKIP; False for another word."""
        if word == b"on":
            c.reply_mode = REPLY_ON
        elif word == b"off":
            c.reply_mode = REPLY_OFF
        elif word == b"skip":
            if c.reply_mode != REPLY_OFF:
                c.reply_mode = REPLY_SKIP_NEXT
        else:
            return False
        c.refresh_gate()
        return True

    def _denied(self, c: Client, cmd: Entry) -> bool:
        """Redis refuses writes, EXEC of queued writes, and PING while the disk fails;
        never the commands its primary sends."""
        if c.kind == "master":
            return False
        if cmd.name == "exec":
            return bool(c.multi) and any(q.write for q, _ in c.multi or ())
        return cmd.write or cmd.name == "ping"

    def _reject(self, c: Client, cmd: Entry | None, msg: str) -> bytes:
        if c.multi is not None:
            c.multi_error = True
        if cmd is not None:
            cmd.rejected_calls += 1
            if cmd.name == "exec":
                # Redis: a rejected EXEC discards the transaction and says why.
                c.multi = None
                c.multi_error = False
                self.unwatch_all(c)
                msg = "EXECABORT Transaction discarded because of: " + msg.removeprefix("ERR ")
        reply = enc.error(msg)
        self.count_error(reply)
        return reply

    def _must_pause(self, c: Client, cmd: Entry) -> bool:
        if self.now_ms() >= self.pause_until_ms:
            self.unpause()
            return False
        if c.kind in ("replica", "master"):
            return False
        if cmd.name == "exec" and c.multi:
            return self.pause_all or any(q.write for q, _ in c.multi)
        return self.pause_all or cmd.write or cmd.name in _PAUSE_WRITE_EXTRA

    def call_unblocked(self, c: Client, cmd: Entry, argv: list[bytes]) -> bytes:
        """``call`` where a command cannot block (inside EXEC or a script, blocking
        commands answer as if their timeout had expired)."""
        reply = self.call(c, cmd, argv)
        if not isinstance(reply, bytes):
            raise AssertionError(f"'{cmd.name}' blocked inside a transaction")
        return reply

    def call(self, c: Client, cmd: Entry, argv: list[bytes]) -> bytes | PausedSignal:
        """Execute ``cmd`` (checks done) with stats, effects, SLOWLOG and MONITOR; BLOCKED
        when it blocked its client."""
        dirty = self.dirty
        t0 = self._perf_ns()
        try:
            reply = cmd.handler(c, argv)  # type: ignore[misc]
        except CommandError as e:
            reply = enc.error(e.msg)
            cmd.failed_calls += 1
            self.count_error(reply)
        except BlockRequest as b:
            if self._block(c, b):
                c.last_cmd = cmd.name
                return BLOCKED
            reply = b.now_reply
        except Exception as bug:  # (a name of its own: compiled, ``e`` is typed)
            reply = self.internal_error(cmd, bug)
        ns = self._perf_ns() - t0
        cmd.hist[ns.bit_length()] += 1  # the call, counted by its duration
        cmd.nsec += ns
        c.last_cmd = cmd.name
        if c.tracking is not None and "readonly" in cmd.flags:
            self.tracking.remember(c, cmd.spec, argv)
        if cmd.write and self.dirty != dirty and self.feeds:
            counter = self.count_only
            if counter is not None:  # _propagate_call, inlined (scripts' and EXEC's writes)
                counter.master_repl_offset += 1
                if not self._multi_depth:
                    c.woff = counter.master_repl_offset
            else:
                self._propagate_call(c, argv)
        c.prop = None
        if ns >= self.slowlog_ns:
            self.slow_command(c, cmd, argv, ns)
        if self.monitors and cmd.monitored:
            self.feed_monitors(c, argv)
        return reply

    def internal_error(self, cmd: Entry, e: Exception) -> bytes:
        """A bug in a command must not take the server down: log it, answer an error."""
        self.stat_unexpected_errors += 1
        if self.log is not None:
            self.log.warning(f"Unexpected error in '{cmd.name}': {e!r}", exc=True)
        reply = enc.error(f"ERR internal error in '{cmd.name}': {type(e).__name__}")
        cmd.failed_calls += 1
        self.count_error(reply)
        return reply

    def _propagate_call(self, c: Client, argv: list[bytes]) -> None:
        counter = self.count_only
        if counter is not None:
            # Nobody needs the effects' bytes (no replica, backlog or AOF): the offset
            # only counts writes, so a writer's WAIT has something to wait for.
            counter.master_repl_offset += 1
            if not self._multi_depth:
                c.woff = counter.master_repl_offset
            return
        db = c.db.index
        prop = c.prop
        if prop is None:
            self.propagate(db, argv)
        elif self._multi_depth:
            for eff in prop:
                self.propagate(db, eff)
        else:
            # A command's own effects (XREADGROUP's, a rewritten XADD...): ``propagate``
            # at depth 0, inlined.
            feeds = self.feeds
            for eff in prop:
                for feed in feeds:
                    feed(db, eff)
        if not self._multi_depth:
            # Inside EXEC the effects go out at its end, and EXEC sets woff then: a WAIT
            # in the transaction covers only the writes made before it (Redis).
            c.woff = self.master_repl_offset

    @property
    def stat_commands(self) -> int:
        """total_commands_processed: every call of every command and subcommand."""
        return sum(e.calls for e in self.dispatch.every())

    @property
    def stat_command_us(self) -> int:
        """eventloop_duration_cmd_sum: the time (us) spent running commands."""
        return sum(e.nsec for e in self.dispatch.every()) // 1000

    # -- effects -------------------------------------------------------------------------

    def add_feed(self, feed: Feed) -> None:
        self.feeds.append(feed)

    def propagate(self, db_index: int, argv: list[bytes]) -> None:
        if not self.feeds:
            return
        if self._multi_depth:
            self._multi_buffer.append((db_index, argv, False))
            return
        for feed in self.feeds:
            feed(db_index, argv)

    @property
    def in_exec(self) -> bool:
        """True while EXEC runs its queued commands."""
        return self._multi_depth > 0

    def begin_transaction_effects(self) -> None:
        self._multi_depth += 1

    def end_transaction_effects(self) -> None:
        self._multi_depth -= 1
        if self._multi_depth or not self._multi_buffer:
            return
        buf, self._multi_buffer = self._multi_buffer, []
        # ``propagate`` at depth 0, inlined: each feed in turn, one frame less an effect.
        feeds = self.feeds
        wrap = len(buf) > 1
        if wrap:
            for feed in feeds:
                feed(buf[0][0], [b"MULTI"])
        for db_index, argv, replicas_only in buf:
            if replicas_only:
                self.propagate_to_replicas(db_index, argv)
            else:
                for feed in feeds:
                    feed(db_index, argv)
        if wrap:
            for feed in feeds:
                feed(buf[-1][0], [b"EXEC"])

    def effects_mark(self) -> int:
        """Where the effects of a running EXEC or script stand (see ``effects_trim``)."""
        return len(self._multi_buffer)

    def effects_trim(self, mark: int, keep: bool, replicas_only: bool) -> None:
        """redis.set_repl: drop the effects after ``mark`` (not ``keep``), or send them to
        the replicas only."""
        buf = self._multi_buffer
        if not keep:
            del buf[mark:]
        elif replicas_only:
            buf[mark:] = [(db, argv, True) for db, argv, _ in buf[mark:]]

    def discard_transaction_effects(self) -> None:
        """A script stopped by SHUTDOWN NOSAVE: its partial effects go nowhere."""
        if self._multi_depth == 1:
            self._multi_buffer = []

    def propagate_to_replicas(self, db_index: int, argv: list[bytes]) -> None:
        """PUBLISH: to the replication stream only, never the AOF (Redis), so clients
        subscribed on replicas get the message too."""
        r = self.repl
        if r is None or self.count_only is not None:
            return  # no replica, no backlog: nobody to tell
        if self._multi_depth:
            self._multi_buffer.append((db_index, argv, True))
            return
        r.propagate(db_index, argv)

    # -- WATCH -------------------------------------------------------------------------

    def unwatch_all(self, c: Client) -> None:
        for db_index, key in c.watched:
            db = self.dbs[db_index]
            clients = db.watched.get(key)
            if clients is not None:
                clients.discard(c)
                if not clients:
                    del db.watched[key]
        c.watched = {}
        c.dirty_cas = False

    # -- SLOWLOG and MONITOR -----------------------------------------------------------

    def slow_command(self, c: Client, cmd: Entry, argv: list[bytes], ns: int) -> None:
        """A command past the lower of the SLOWLOG and latency-monitor thresholds."""
        if ns >= self.slowlog_log_ns and not cmd.skip_slowlog:
            self._slowlog_add(c, argv, ns // 1000)
        event = "fast-command" if "fast" in cmd.flags else "command"
        self.latency.add_if_needed(event, ns // 1_000_000, int(self.clock.time_s()))

    def _slowlog_add(self, c: Client, argv: list[bytes], usec: int) -> None:
        # Redis keeps at most 32 arguments and 128 bytes of each.
        shown = []
        for i, a in enumerate(argv):
            if i == 31 and len(argv) > 32:
                shown.append(b"... (%d more arguments)" % (len(argv) - 31))
                break
            shown.append(a if len(a) <= 128 else a[:128] + b"... (%d more bytes)" % (len(a) - 128))
        entry = SlowlogEntry(self.slowlog_next_id, int(self.clock.time_s()), usec, shown, c)
        self.slowlog_next_id += 1
        self.slowlog.appendleft(entry)
        while len(self.slowlog) > self.slowlog_max_len:
            self.slowlog.pop()

    def feed_monitors(self, c: Client, argv: list[bytes]) -> None:
        now = self.clock.time_s()
        parts = [_monitor_quote(a) for a in argv]
        where = "lua" if c.kind == "lua" else c.addr
        line = f"+{now:.6f} [{c.db.index} {where}] " + " ".join(parts)
        data = line.replace("\r", "\\r").replace("\n", "\\n").encode() + b"\r\n"
        for m in self.monitors:
            m.conn.write(data)

    # -- CLIENT PAUSE --------------------------------------------------------------------

    def pause(self, until_ms: int, everything: bool) -> None:
        # A second PAUSE can only extend the time or widen WRITE to ALL.
        self.pause_until_ms = max(self.pause_until_ms, until_ms)
        self.pause_all = self.pause_all or everything
        self.gated = True

    def unpause(self) -> None:
        self.pause_until_ms = 0
        self.pause_all = False
        self._refresh_gated()
        waiting, self.paused_clients = self.paused_clients, []
        for c in waiting:
            if not c.closed:
                c.conn.resume_commands()

    # -- cron ----------------------------------------------------------------------------

    def cron(self, now_ms: int) -> None:
        """Periodic work, ``hz`` times a second: active expiry, pauses, samples."""
        if self.pause_until_ms and now_ms >= self.pause_until_ms:
            self.unpause()
        if self.active_expire and not self.loading and not self.role_replica:
            self._active_expire(now_ms)
        if self.blocking.blocked:
            self.blocking.expire(now_ms)
        self._ops_samples.append((now_ms, self.stat_commands))
        self._net_in_samples.append((now_ms, self.stat_net_input))
        self._net_out_samples.append((now_ms, self.stat_net_output))
        self._repl_in_samples.append((now_ms, self.stat_net_repl_input))
        self._repl_out_samples.append((now_ms, self.stat_net_repl_output))
        self._cycle_samples.append((now_ms, self.stat_eventloop_cycles))
        self._cycle_time_samples.append(
            (self.stat_eventloop_cycles, self.stat_eventloop_duration_us)
        )

    def _active_expire(self, now_ms: int) -> None:
        perf_ns = self._perf_ns
        t0 = perf_ns()
        deadline = t0 + EXPIRE_CYCLE_TIME_MS * 1_000_000
        for db in self.dbs:
            if not db.expires:
                continue
            while db.has_expired_pending(now_ms):
                db.expire_cycle(now_ms, 200)
                if perf_ns() > deadline:
                    break
            if perf_ns() > deadline:
                if any(d.has_expired_pending(now_ms) for d in self.dbs):
                    self.stat_expired_time_cap_reached += 1
                break
        ms = (perf_ns() - t0) // 1_000_000
        self.stat_expire_cycle_ms += ms
        self.latency.add_if_needed("expire-cycle", ms, int(self.clock.time_s()))

    def instantaneous(self, which: str) -> float:
        samples = {
            "ops": self._ops_samples,
            "in": self._net_in_samples,
            "out": self._net_out_samples,
            "repl_in": self._repl_in_samples,
            "repl_out": self._repl_out_samples,
            "cycles": self._cycle_samples,
        }[which]
        if len(samples) < 2:
            return 0.0
        (t0, v0), (t1, v1) = samples[0], samples[-1]
        if t1 <= t0:
            return 0.0
        return (v1 - v0) * 1000 / (t1 - t0)

    def recent_cycle_us(self) -> int:
        """The average duration (us) of one event-loop pass over the recent samples."""
        samples = self._cycle_time_samples
        if len(samples) < 2:
            return 0
        (c0, d0), (c1, d1) = samples[0], samples[-1]
        return (d1 - d0) // (c1 - c0) if c1 > c0 else 0


def _unknown_command(argv: list[bytes]) -> str:
    name = argv[0].decode("utf-8", "replace")[:128]
    args = "".join(f"'{a.decode('utf-8', 'replace')[:128]}' " for a in argv[1:])
    return f"ERR unknown command '{name}', with args beginning with: {args}"


def _monitor_quote(a: bytes) -> str:
    out = ['"']
    for ch in a:
        if ch == 0x5C:
            out.append("\\\\")
        elif ch == 0x22:
            out.append('\\"')
        elif ch == 0x0A:
            out.append("\\n")
        elif ch == 0x0D:
            out.append("\\r")
        elif ch == 0x09:
            out.append("\\t")
        elif ch == 0x07:
            out.append("\\a")
        elif ch == 0x08:
            out.append("\\b")
        elif 0x20 <= ch < 0x7F:
            out.append(chr(ch))
        else:
            out.append("\\x%02x" % ch)
    out.append('"')
    return "".join(out)
