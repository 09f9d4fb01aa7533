"""Replication over a server core, without I/O: the part of the replication shell that
the server and the simulator share.

Owns: building the engine from the configuration and the driver around it; the
``Dataset`` port over the server core (the primary's client that applies the stream,
MULTI discards, pauses, blocked clients, role changes, the command gate); and the core's
entry points (commands, the refusal check, effects). The ports that do I/O -- ``Host``,
``Links``, ``Aof`` and the snapshot ports -- are a subclass's: ``server/replication.py``
(asyncio, forks, files) or ``sim/replication.py`` (simulated). Never touches sockets,
files, clocks or tasks.

The role lives in the engine (``engine.is_primary``): the core reads it from there; what
follows from a change (the log's role letter, CONFIG's ``replicaof``, whether the core
feeds effects to the engine) is set in one place, ``role_changed``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mypy_extensions import mypyc_attr

from ..commands.base import CommandError
from ..engine.access import login
from ..engine.client import Client, NullConn
from ..replication.driver import ReplicationDriver
from ..replication.engine import EngineConfig, Replication
from ..replication.fencing import DivergedRange
from ..replication.ports import SnapshotReceiver, SnapshotServer
from ..replication.refusal import HELD, Refusal
from ..replication.state import SavedHistory
from ..replication.stream import GETACK
from ..replication.util import parse_ll
from ..resp import encoder as enc

# ACKDB.DIVERGED's tag names a file: a safe, short word.
_TAG = re.compile(r"[A-Za-z0-9_-]{1,64}")
# How long a promoted primary holds writes (a CLIENT PAUSE WRITE of its own) while it awaits
# its first lease, instead of refusing them: the node agent leases a primary the metadata
# names within a Raft read round, so a client of a planned or automatic failover sees a
# short pause, not -TRYAGAIN. Past it, writes are refused as fenced (docs/fencing.md).
FIRST_LEASE_WAIT_MS = 2000
UNBLOCKED_ROLE = (
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"
)
_ENGINE_SETTINGS = (
    "repl-timeout",
    "repl-ping-replica-period",
    "repl-backlog-size",
    "repl-backlog-ttl",
    "min-replicas-to-write",
    "min-replicas-max-lag",
    "masterauth",
    "masteruser",
    "replica-announce-ip",
    "replica-announce-port",
    "port",
    "replica-read-only",
    "replica-serve-stale-data",
    "ackdb-lease",
)


def engine_config_from(cfg: Any) -> EngineConfig:
    """The engine's settings from the server's configuration."""
    return EngineConfig(
        listening_port=cfg.get("replica-announce-port") or cfg.get("port"),
        announce_ip=cfg.get("replica-announce-ip") or None,
        masteruser=cfg.get("masteruser") or None,
        masterauth=cfg.get("masterauth") or None,
        repl_timeout_ms=cfg.get("repl-timeout") * 1000,
        ping_period_ms=cfg.get("repl-ping-replica-period") * 1000,
        backlog_bytes_max=cfg.get("repl-backlog-size"),
        backlog_ttl_ms=cfg.get("repl-backlog-ttl") * 1000,
        min_replicas_to_write=cfg.get("min-replicas-to-write"),
        min_replicas_max_lag_s=cfg.get("min-replicas-max-lag"),
        replica_read_only=cfg.get("replica-read-only"),
        serve_stale_data=cfg.get("replica-serve-stale-data"),
        lease=cfg.get("ackdb-lease"),
    )


class _PrimaryClientConn(NullConn):
    """The connection handle of the primary's client: the stream it sends is applied
    without replies; killing that client (CLIENT KILL TYPE master) drops the link."""

    def __init__(self, owner: CoreReplication | None) -> None:
        self.owner = owner

    def close(self) -> None:
        if self.owner is not None:
            self.owner.primary_client_killed()


# Compiled (src/ackdb/compiled.py) with subclasses that stay interpreted: the simulator's.
@mypyc_attr(allow_interpreted_subclasses=True)
class CoreReplication:
    """Engine, driver and the Dataset port over a server core; I/O ports by subclasses."""

    def __init__(
        self,
        core: Any,
        config: Any,
        log: Any,
        saved: SavedHistory | None,
        *,
        aof_enabled: bool,
        served: SnapshotServer,
        received: SnapshotReceiver,
        rng: Any = None,
    ) -> None:
        self.core = core
        self.config = config
        self.log = log
        self._lease_hold: tuple[int, int] | None = None  # (promotion, hold end in wall ms)
        self.engine = Replication(
            engine_config_from(config),
            rng=rng if rng is not None else core.rng,
            aof_enabled=aof_enabled,
            saved=saved,
        )
        self.driver = ReplicationDriver(
            self.engine,
            host=self,  # type: ignore[arg-type]  # a subclass implements Host, Links, Aof
            links=self,  # type: ignore[arg-type]
            dataset=self,
            aof=self,  # type: ignore[arg-type]
            served=served,
            received=received,
        )
        self.primary_client: Client | None = None
        # While an AOF is open: where ``_feed`` hands the offset each effect ends at, so
        # the AOF's marks do not depend on the order of the core's feeds (a subclass sets
        # it; see server.persist_aof.aof_numbered).
        self.aof_offsets: Callable[[int], None] | None = None
        if saved is None and not any(db.data for db in core.dbs):
            # Empty at start: everything we will hold is of our own history.
            self.engine.state.history_known = True
        core.repl = self
        core.repl_offsets = self.engine.state
        core.feeds.insert(0, self._feed)
        for name in _ENGINE_SETTINGS:
            config.on_change(name, self._reconfigure)

    def _reconfigure(self, name: str, old: Any, new: Any) -> None:
        self.engine.reconfigure(engine_config_from(self.config))
        self.engine_changed()

    # -- the engine's Replication port (engine/ports.py) -------------------------------

    @property
    def master_repl_offset(self) -> int:
        return int(self.engine.state.master_repl_offset)

    @property
    def write_offset(self) -> int:
        return int(self.engine.state.write_offset)

    @property
    def is_primary(self) -> bool:
        return self.engine.is_primary

    def propagate(self, db_index: int, argv: list[bytes]) -> None:
        self.engine.propagate(db_index, argv)

    def role_reply(self) -> bytes:
        return bytes(self.engine.role_reply())

    def unblock_waiter(self, client_id: int, now_ms: int, error: bool) -> bytes | None:
        reply: bytes | None = self.engine.unblock_waiter(client_id, now_ms, error=error)
        return reply

    def _feed(self, db: int, argv: list[bytes]) -> None:
        # The engine numbers the stream and the AOF is handed the offset the effect
        # ends at, whichever of the two feeds the core runs first.
        offset = self.engine.propagate(db, argv)
        aof_offsets = self.aof_offsets
        if aof_offsets is not None:
            aof_offsets(offset)

    def refusal(self, c: Client, cmd: Any) -> Refusal | None:
        """Why ``cmd`` may not run here now (the engine decides), or None."""
        writes = cmd.write or (cmd.name == "exec" and any(q.write for q, _ in c.multi or ()))
        e = self.engine
        if not writes:
            return e.refusal(writes=False, stale_ok=cmd.stale_ok, now_ms=0)
        # The clocks only for writes, each only when it can matter: NOREPLICAS counts
        # good replicas by their lag (wall clock, as the ACKs' times); the lease is in
        # CLOCK_MONOTONIC ms, read only while fencing.
        now_ms = self.now_ms() if e.table.min_replicas_to_write else 0
        mono_ms = self.mono_ms() if e.fencing.fencing else 0
        refusal = e.refusal(writes=True, stale_ok=cmd.stale_ok, now_ms=now_ms, mono_ms=mono_ms)
        if refusal is not None and e.fencing.awaiting_lease and self._hold_for_lease():
            return HELD  # the core holds it until the lease (or refuses it after the wait)
        return refusal

    def _hold_for_lease(self) -> bool:
        """A promotion awaits its first lease: pause writes (once per promotion, for
        FIRST_LEASE_WAIT_MS); False once that pause is over."""
        f, core = self.engine.fencing, self.core
        if self._lease_hold is None or self._lease_hold[0] != f.promotions:
            self._lease_hold = (f.promotions, core.now_ms() + FIRST_LEASE_WAIT_MS)
            self.log.notice("Holding writes until this new primary's first lease")
        elif core.now_ms() >= self._lease_hold[1]:
            return False
        # (Re-)armed each time: the pause's end (or the lease) resumes what it holds, even
        # after a CLIENT UNPAUSE meanwhile; a held command never runs without a lease.
        core.pause(self._lease_hold[1], everything=False)
        return True

    def _end_lease_hold(self) -> None:
        """The first lease came: release the writes it held (a CLIENT PAUSE of a user that
        outlasts ours is left alone)."""
        hold, core = self._lease_hold, self.core
        if hold is not None and core.pause_until_ms == hold[1] and not core.pause_all:
            core.unpause()

    def now_ms(self) -> int:
        raise NotImplementedError

    def mono_ms(self) -> int:
        """CLOCK_MONOTONIC ms, the clock of ACKDB.LEASE deadlines (the node agent's,
        on the same host). A simulator's clock is one clock: ``now_ms``."""
        return self.now_ms()

    # -- fencing (issue 15, docs/fencing.md) -------------------------------------------

    def lease(self, argv: list[bytes]) -> bytes:
        awaiting = self.engine.fencing.awaiting_lease
        reply = self.driver.lease(argv)
        if awaiting and not self.engine.fencing.awaiting_lease:
            self._end_lease_hold()
        return reply

    def freeze(self, argv: list[bytes]) -> bytes:
        return self.driver.freeze(argv)

    def diverged(self, argv: list[bytes]) -> bytes:
        """ACKDB.DIVERGED <replid> <offset> <tag>: the engine finds the range, the shell
        writes it (``save_diverged``)."""
        replid = argv[1].decode("latin-1").lower()
        offset = parse_ll(argv[2])
        tag = argv[3].decode("latin-1")
        if offset is None or offset < 0:
            return enc.error("ERR invalid offset")
        if not _TAG.fullmatch(tag):
            return enc.error("ERR invalid tag: use 1 to 64 of A-Z a-z 0-9 _ -")
        has_data = any(db.data for db in self.core.dbs)
        rng = self.engine.diverged(replid, offset, has_data=has_data)
        if rng is None:
            self.log.notice(
                f"ACKDB.DIVERGED {replid}:{offset}: nothing of our history "
                f"({self.engine.state.replid}:{self.engine.state.master_repl_offset}) "
                "lies beyond that fork"
            )
            return _diverged_reply(0, 0, 0, "")
        count, path = self.save_diverged(tag, rng)
        return _diverged_reply(count, rng.first_offset, rng.last_offset, path)

    def save_diverged(self, tag: str, rng: DivergedRange) -> tuple[int, str]:
        """Write the diverged range to a file in the data dir: (count, path)."""
        raise CommandError("ERR ACKDB.DIVERGED needs a data directory (server only)")

    def replconf(self, c: Client, argv: list[bytes]) -> bytes:
        return self.driver.replconf(c.id, argv, c.addr) or b""

    def psync(self, c: Client, argv: list[bytes]) -> bytes:
        return self.driver.psync(c.id, argv, c.addr) or b""

    def wait(self, c: Client, argv: list[bytes], aof: bool) -> bytes | None:
        """WAIT / WAITAOF: the reply, or None when the client is parked."""
        return self.driver.wait(
            c.id, argv, aof=aof, target_offset=c.woff, can_block=not self.core.in_exec
        )

    def failover(self, argv: list[bytes]) -> bytes:
        return self.driver.failover(argv)

    def replicaof(self, c: Client, argv: list[bytes]) -> bytes:
        return self.driver.replicaof(c.id, argv)

    def client_gone(self, c: Client) -> None:
        self.driver.client_gone(c.id)

    def aof_changed(self, enabled: bool) -> None:
        """The AOF was switched on or off (start-up, CONFIG SET appendonly)."""
        self.driver.aof_changed(enabled)

    # -- Links: replicas are the core's clients ---------------------------------------

    def replica_attached(self, conn: int) -> None:
        c = self.core.clients.get(conn)
        if c is not None:
            c.kind = "replica"

    def send_to_replica(self, conn: int, data: bytes) -> None:
        c = self.core.clients.get(conn)
        if c is not None:
            # Out at once (the end of a pass sends it after the replies it queued).
            c.conn.write(data)
            c.conn.flush()

    def close_replica(self, conn: int, reason: str) -> None:
        c = self.core.clients.get(conn)
        if c is not None:
            self.log.notice(f"Connection with replica {c.addr} lost: {reason}")
            c.conn.close()

    # -- Dataset ---------------------------------------------------------------------------

    def apply(self, cmds: list[list[bytes]], stream_db: int) -> None:
        c = self.primary_client
        if c is None:
            c = self._new_primary_client(stream_db)
        core = self.core
        core.applying = True
        try:
            held = core.process_batch(c, cmds, [])
        finally:
            core.applying = False
        if held is not None:  # never: the primary's client is not paused nor blocked
            self.log.warning(f"Stream command not applied: {cmds[held][0]!r}")

    def new_primary_client(self, db: int) -> None:
        self._new_primary_client(db)

    def _new_primary_client(self, db: int) -> Client:
        self.drop_primary_client()
        host, port = self.engine.link.host, self.engine.link.port
        c: Client = self.core.new_client(_PrimaryClientConn(self), f"{host}:{port}", "", -1)
        c.kind = "master"
        login(c, None)  # the superuser: the primary's stream is applied whatever the ACLs
        c.db = self.core.dbs[db] if 0 <= db < len(self.core.dbs) else self.core.dbs[0]
        self.primary_client = c
        return c

    def drop_primary_client(self) -> None:
        c = self.primary_client
        if c is not None:
            self.primary_client = None
            conn = c.conn
            if isinstance(conn, _PrimaryClientConn):
                conn.owner = None  # closing it must not drop the (new) link
            self.core.client_gone(c)

    def primary_client_killed(self) -> None:
        """CLIENT KILL TYPE master: drop the link; the engine reconnects (and continues
        partially, Redis's way to test PSYNC)."""
        self.primary_client = None  # the core is closing it
        self.drop_link()

    def discard_transaction(self) -> None:
        if self.primary_client is not None:
            self.primary_client.multi = None
            self.core.unwatch_all(self.primary_client)

    def role_changed(self, host: str | None, port: int) -> None:
        core = self.core
        # A replica streams nothing of its own (its primary's bytes are passed on as
        # they are): its feed would only cost every applied command a call.
        if host is None and self._feed not in core.feeds:
            core.feeds.insert(0, self._feed)
        elif host is not None and self._feed in core.feeds:
            core.feeds.remove(self._feed)
        self.log.role = "M" if host is None else "S"
        self.config.values["replicaof"] = None if host is None else (host, port)
        if host is None:
            self.drop_primary_client()
            return
        err = enc.error(UNBLOCKED_ROLE)
        for c in list(core.blocking.blocked):
            if c.blocked is not None and c.blocked.keys:
                core.blocking.answer(c, err)
                core.kill_client(c)

    def reply_to_client(self, client: int, data: bytes, close: bool) -> None:
        c = self.core.clients.get(client)
        if c is None or c.closed:
            return
        self.core.blocking.answer(c, data)
        if close:
            c.close_after_reply = True
            self.core.kill_client(c)

    def pause_writes(self) -> None:
        self.core.pause(1 << 62, everything=False)

    def unpause_writes(self) -> None:
        self.core.unpause()

    def writes_paused(self) -> bool:
        return bool(self.core.pause_until_ms)

    def engine_changed(self) -> None:
        """The command gate follows the engine; while nothing needs the stream's bytes --
        a primary without replicas, backlog or AOF, and no other feed -- the core only
        counts writes (0.3 µs a write less)."""
        e, core = self.engine, self.core
        gated = e.gated
        if gated != core.repl_gated:
            core.set_repl_gated(gated)
        idle = (
            e.is_primary
            and e.state.backlog is None
            and not e.table.replicas
            and not e.aof_enabled
            and core.feeds == [self._feed]
        )
        core.count_only = e.state if idle else None

    # -- saving and stopping ---------------------------------------------------------------

    def lagging_replicas(self, target: int | None = None) -> list[str]:
        """Online replicas whose acknowledged offset is below ``target`` (default: the
        current offset), as ip:port."""
        e = self.engine
        if target is None:
            target = e.state.master_repl_offset
        if not e.is_primary:
            return []
        return [f"{r.ip}:{r.listening_port}" for r in e.table.online() if r.ack_offset < target]

    def request_acks(self) -> int:
        """Ask every replica for its offset now (REPLCONF GETACK); returns the offset
        they must reach (the GETACK itself is not acknowledged at once)."""
        target = self.engine.state.master_repl_offset
        if self.engine.is_primary and self.engine.table.replicas:
            self.engine.table.feed_keepalive(GETACK)
        self.driver.host.request_pass()
        return target

    def saved_meta(self) -> dict[str, Any]:
        """What a snapshot of the dataset stores so a restart continues this history."""
        h = self.engine.saved_history()
        return {"replid": h.replid, "repl_offset": h.offset, "stream_db": h.stream_db}

    def drop_link(self) -> None:
        """Close the link to our primary, if any, and report it lost."""
        raise NotImplementedError

    def info_fields(self) -> list[tuple[str, Any]]:
        cfg = self.config
        fields = self.engine.info_fields(
            self.now_ms(),
            replica_priority=cfg.get("replica-priority"),
            read_only=cfg.get("replica-read-only"),
            announced=cfg.get("replica-announced"),
            mono_ms=self.mono_ms(),
        )
        return list(fields)


def _diverged_reply(count: int, first: int, last: int, path: str) -> bytes:
    return (
        b"*4\r\n"
        + enc.integer(count)
        + enc.integer(first)
        + enc.integer(last)
        + enc.bulk(path.encode())
    )
