"""The replication engine of one node: the cores wired together, one object for the shell.

Owns: the node's role and every decision that crosses cores -- promotion (REPLICAOF NO
ONE, a PSYNC ... FAILOVER received) shifts the history and drops sub-replicas; demotion
(REPLICAOF host port, FAILOVER) unblocks WAIT/WAITAOF waiters and caches our own history
for a partial resync; stream bytes a replica processed go on to its sub-replicas; the
FAILOVER state machine drives demotion and its abort; fencing (``fencing.py``: the
lease gates a primary's writes, ACKDB.FREEZE stops the link). Never touches sockets, files,
clocks or global randomness; returns actions (``actions.py``) for the shell to carry out
in order.

Role: primary when ``link.state == "none"``, else replica of ``link.host:link.port``.

Shell contract in one paragraph (details in docs/replication.md): feed every effect
through ``propagate``; route REPLCONF / PSYNC / WAIT / WAITAOF / FAILOVER / REPLICAOF /
ROLE to the methods of the same name; report replica-connection closes with
``on_replica_disconnect`` and client closes with ``on_client_disconnect``; report the
primary link's events and bytes; report fsyncs with ``on_fsynced``; call ``before_sleep``
at the end of every event-loop iteration (after the AOF write/fsync, before flushing
client output) and ``cron`` on the ``hz`` timer.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass

from . import failover as fo
from . import introspection
from .actions import Action, Apply, Log, RoleChanged
from .fencing import DivergedRange, Fencing, diverged_range
from .handshake import ReplicaConfig
from .primary import ReplicaTable, SnapshotStart
from .refusal import FENCED, MASTERDOWN, NOREPLICAS, READONLY, Refusal
from .replica import (
    CONNECTED,
    NONE,
    DisconnectReplicas,
    Forward,
    LinkAction,
    PsyncReplied,
    ReplicaLink,
)
from .state import ReplicationState, SavedHistory
from .stream import PING, StreamEncoder
from .util import error_reply, parse_ll
from .waiters import Waiters

ERR_FAILING_OVER = "NOMASTERLINK Can't SYNC while failing over"
ERR_NO_LINK = "NOMASTERLINK Can't SYNC while not connected with my master"
ERR_REPLICA_CLIENT = "ERR Command is not valid when client is a replica."
ERR_FREEZE_LOADING = "LOADING a full sync's snapshot is loading: retry ACKDB.FREEZE after it"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    listening_port: int
    announce_ip: str | None = None
    masteruser: str | None = None
    masterauth: str | None = None
    repl_timeout_ms: int = 60_000
    # Redis repl-ping-replica-period (10 s), in ms.
    ping_period_ms: int = 10_000
    backlog_bytes_max: int = 1024 * 1024
    backlog_ttl_ms: int = 3600 * 1000
    min_replicas_to_write: int = 0
    min_replicas_max_lag_s: int = 10
    reconnect_min_ms: int = 100
    reconnect_max_ms: int = 1000
    # Redis replica-read-only and replica-serve-stale-data.
    replica_read_only: bool = True
    serve_stale_data: bool = True
    # ackdb-lease: a primary writes only under a lease (docs/fencing.md).
    lease: bool = False


class Replication:
    """Primary side, replica side, waiters and FAILOVER of one node."""

    def __init__(
        self,
        config: EngineConfig,
        rng: random.Random,
        *,
        aof_enabled: bool = False,
        saved: SavedHistory | None = None,
    ) -> None:
        self.config = config
        self.state = ReplicationState(rng, config.backlog_bytes_max, config.backlog_ttl_ms)
        self._saved = saved
        if saved is not None:
            self.state.restore_as_primary(saved)
        self.table = ReplicaTable(
            self.state,
            repl_timeout_ms=config.repl_timeout_ms,
            min_replicas_to_write=config.min_replicas_to_write,
            min_replicas_max_lag_s=config.min_replicas_max_lag_s,
        )
        link_config = ReplicaConfig(
            listening_port=config.listening_port,
            announce_ip=config.announce_ip,
            masteruser=config.masteruser,
            masterauth=config.masterauth,
            repl_timeout_ms=config.repl_timeout_ms,
            reconnect_min_ms=config.reconnect_min_ms,
            reconnect_max_ms=config.reconnect_max_ms,
        )
        self.link = ReplicaLink(self.state, link_config)
        # A restart with persisted history may continue it partially (Redis loads
        # repl-id/offset from its RDB and PSYNCs with them).
        self.link.can_psync = saved is not None
        self.link.stream_db = self.link._unit_db = saved.stream_db if saved else 0
        self.encoder = StreamEncoder()
        self.waiters = Waiters()
        self.failover = fo.Failover()
        self.fencing = Fencing(config.lease)
        self.aof_enabled = aof_enabled
        self.fsynced_offset = self.state.master_repl_offset if aof_enabled else -1
        self.link.fsynced_offset = self.fsynced_offset if aof_enabled else None
        self._next_ping_ms = -1  # the first cron run starts the schedule (Redis's loop 0)

    def reconfigure(self, config: EngineConfig) -> None:
        """CONFIG SET of a replication setting: every part takes its new values at once."""
        resized = config.backlog_bytes_max != self.config.backlog_bytes_max
        self.config = config
        t = self.table
        t.repl_timeout_ms = config.repl_timeout_ms
        t.min_replicas_to_write = config.min_replicas_to_write
        t.min_replicas_max_lag_s = config.min_replicas_max_lag_s
        self.state.backlog_ttl_ms = config.backlog_ttl_ms
        self.fencing.set_enabled(config.lease)
        self.link.config = dataclasses.replace(
            self.link.config,
            listening_port=config.listening_port,
            announce_ip=config.announce_ip,
            masteruser=config.masteruser,
            masterauth=config.masterauth,
            repl_timeout_ms=config.repl_timeout_ms,
        )
        if resized:
            self.state.resize_backlog(config.backlog_bytes_max)

    @property
    def is_primary(self) -> bool:
        return self.link.state == NONE

    def saved_history(self) -> SavedHistory:
        """What to persist with the data (e.g. in the snapshot's metadata) so a restart
        can continue this history partially: take it when the data is captured."""
        # Redis rdbPopulateSaveInfo: a primary saves the db its stream has selected
        # (-1, "SELECT comes next", is as good as 0).
        db = max(self.encoder.selected_db, 0) if self.is_primary else self.link.stream_db
        st = self.state
        if self.is_primary and st.master_repl_offset == st.second_repl_offset - 1:
            # Nothing written on our own id since it was shifted (a start or promotion):
            # the data is still exactly the previous history's at this offset. Keep that
            # id, so a server that restarts again before writing still knows it (the
            # divergence check after a failover needs it: docs/failover-sim.md).
            return SavedHistory(st.replid2, st.master_repl_offset, db)
        return SavedHistory(st.replid, st.master_repl_offset, db)

    # -- the primary's stream ---------------------------------------------------------

    def propagate(self, db: int, argv: list[bytes]) -> int:
        """One effect of a write; returns the stream offset after it (the client's woff).

        A replica does not propagate (writes on a writable replica stay local). With no
        backlog, no replica and no AOF nobody needs the bytes: the effect counts 1 (as
        Redis 7.2 counts commands with the AOF on and no backlog), so a writer's offset
        is never 0, "never wrote" (its WAIT must wait for replicas attached later), and
        a backlog created later starts after it.
        """
        if not self.is_primary:
            return self.state.master_repl_offset
        if self.state.backlog is None and not self.table.replicas and not self.aof_enabled:
            self.state.master_repl_offset += 1
            return self.state.master_repl_offset
        return self.table.feed(self.encoder.encode(db, argv))

    @property
    def gated(self) -> bool:
        """Some command may be refused now (``refusal`` can return non-None): the server
        core sends every command through ``refusal`` only while this holds."""
        return (
            not self.is_primary
            or self.table.min_replicas_to_write > 0
            or self.failover.active
            or self.fencing.fencing
        )

    def refusal(
        self, *, writes: bool, stale_ok: bool, now_ms: int, mono_ms: int = 0
    ) -> Refusal | None:
        """Why a client's command may not run here now (Redis processCommand's order), or
        None. ``writes``: it writes (an EXEC of queued writes does); ``stale_ok``: it may
        run on a replica whose link is down; ``mono_ms``: CLOCK_MONOTONIC ms, read only
        while ``fencing.fencing`` (the lease's clock). Commands of our primary are never
        refused."""
        if self.is_primary:
            if writes:
                f = self.fencing
                if f.fencing and mono_ms >= f.deadline_ms:
                    return FENCED  # ackdb: before NOREPLICAS, the more basic refusal
                if self.table.write_refused(now_ms):
                    return NOREPLICAS  # notes: replicas ignore min-replicas-to-write
            return None
        if writes and self.config.replica_read_only:
            return READONLY
        if stale_ok or self.config.serve_stale_data or self.link.state == CONNECTED:
            return None
        return MASTERDOWN

    # -- commands ---------------------------------------------------------------------

    def replconf(
        self, conn: int, argv: list[bytes], now_ms: int, peer_addr: str
    ) -> tuple[bytes | None, list[Action]]:
        """REPLCONF: its reply (None: no reply at all) and actions."""
        out = self.table.on_replconf(conn, argv, now_ms, peer_addr)
        if out.send_ack:
            # REPLCONF GETACK from a client of a replica: ACK upstream now (Redis).
            return out.reply, self._run_link(self.link.ack_now(now_ms), now_ms)
        return out.reply, []

    def psync(
        self, conn: int, argv: list[bytes], now_ms: int, peer_addr: str
    ) -> tuple[bytes | None, list[Action]]:
        """PSYNC (and its FAILOVER form, which may promote us first)."""
        if conn in self.table.replicas:
            return None, []
        actions: list[Action] = []
        if len(argv) > 3 and argv[3].lower() == b"failover":
            asked = argv[1].decode("latin-1").lower()
            offset = parse_ll(argv[2])
            if asked == self.state.replid:
                if not self.is_primary:
                    actions.append(Log("notice", "PRIMARY MODE enabled (failover request)"))
                    actions += self._promote(now_ms)
            elif not (
                self.is_primary
                and asked == self.state.replid2
                and offset is not None
                and offset <= self.state.second_repl_offset
            ):
                return error_reply("ERR PSYNC FAILOVER replid must match my replid."), actions
            else:
                # A retry after a lost +CONTINUE: we already promoted ourselves.
                actions.append(
                    Log(
                        "notice",
                        "PSYNC FAILOVER for my previous replid: serving it as a regular PSYNC",
                    )
                )
        refuse = None
        if self.failover.active:
            refuse = ERR_FAILING_OVER
        elif not self.is_primary and self.link.state != CONNECTED:
            refuse = ERR_NO_LINK
        out = self.table.on_psync(
            conn, argv, now_ms, peer_addr, is_primary=self.is_primary, refuse=refuse
        )
        return out.reply, actions + out.actions

    def wait(
        self, client: int, argv: list[bytes], *, target_offset: int, now_ms: int, can_block: bool
    ) -> bytes | None:
        """WAIT; None when the client is parked (it gets a ``ReplyToClient`` later)."""
        return self.waiters.wait(
            client,
            argv,
            target_offset=target_offset,
            now_ms=now_ms,
            is_replica=not self.is_primary,
            can_block=can_block,
            acks=self.table,
        )

    def waitaof(
        self, client: int, argv: list[bytes], *, target_offset: int, now_ms: int, can_block: bool
    ) -> bytes | None:
        return self.waiters.waitaof(
            client,
            argv,
            target_offset=target_offset,
            now_ms=now_ms,
            is_replica=not self.is_primary,
            can_block=can_block,
            acks=self.table,
            aof_enabled=self.aof_enabled,
            fsynced_offset=self.fsynced_offset,
        )

    def failover_command(self, argv: list[bytes], now_ms: int) -> tuple[bytes, list[Action]]:
        reply, fas = self.failover.command(
            argv, now_ms, is_replica=not self.is_primary, table=self.table
        )
        return reply, self._run_failover(fas, now_ms)

    def replicaof(
        self, argv: list[bytes], now_ms: int, *, from_replica: bool = False
    ) -> tuple[bytes, list[Action]]:
        """REPLICAOF host port | NO ONE (Redis replicaofCommand)."""
        refusal = self.failover.replicaof_refusal()
        if refusal is not None:
            return refusal, []
        if argv[1].lower() == b"no" and argv[2].lower() == b"one":
            return b"+OK\r\n", self._promote(now_ms) if not self.is_primary else []
        if from_replica:
            return error_reply(ERR_REPLICA_CLIENT), []
        port = parse_ll(argv[2])
        if port is None or not 0 <= port <= 65535:
            return error_reply("ERR Invalid master port"), []
        host = argv[1].decode("latin-1")
        same_host = self.link.host is not None and self.link.host.lower() == host.lower()
        if not self.is_primary and same_host and self.link.port == port and not self.link.frozen:
            return b"+OK Already connected to specified master\r\n", []
        return b"+OK\r\n", self.demote(host, port, now_ms)

    # -- fencing (issue 15, docs/fencing.md) -----------------------------------------

    def lease(self, argv: list[bytes]) -> bytes:
        """ACKDB.LEASE <epoch> <deadline-monotonic-ms>."""
        err = self.fencing.lease(argv[1], argv[2], primary=self.is_primary)
        return b"+OK\r\n" if err is None else error_reply(err)

    def freeze(self, argv: list[bytes], now_ms: int) -> tuple[bytes, list[Action]]:
        """ACKDB.FREEZE <epoch>: a primary is fenced at once and stays primary; a replica
        drops its link and does not reconnect until the next REPLICAOF. The reply is
        the history to report: [replid, offset, replid2, second_offset]."""
        err = self.fencing.check_epoch(argv[1])
        if err is not None:
            return error_reply(err), []
        if not self.is_primary and self.link.loading:
            # The dataset is being replaced by a full sync's snapshot: neither the old
            # history nor the new one is ours to report yet. The agent retries.
            return error_reply(ERR_FREEZE_LOADING), []
        # A FAILOVER command running is aborted first (as a controller's promotion does):
        # the cluster's controller decides from here; its abort may restore us as primary.
        actions = self._run_failover(self.failover.abort("frozen by a failover"), now_ms)
        self.fencing.freeze(argv[1])
        if not self.is_primary:
            actions += self._run_link(self.link.freeze(now_ms), now_ms)
        actions.append(Log("notice", f"Frozen for failover epoch {self.fencing.epoch}"))
        st = self.state
        reply = b"*4\r\n$40\r\n%s\r\n:%d\r\n$40\r\n%s\r\n:%d\r\n" % (
            st.replid.encode(),
            st.master_repl_offset,
            st.replid2.encode(),
            st.second_repl_offset,
        )
        return reply, actions

    def diverged(self, replid: str, offset: int, *, has_data: bool) -> DivergedRange | None:
        """What of our data a new primary's fork ``(replid, offset)`` lacks (``has_data``:
        the dataset holds a key; it matters only when our history is unknown)."""
        return diverged_range(self.state, replid, offset, has_data=has_data, own=self.is_primary)

    # -- role changes -----------------------------------------------------------------

    def demote(self, host: str, port: int, now_ms: int, *, failover: bool = False) -> list[Action]:
        """Become a replica of host:port (Redis replicationSetMaster)."""
        was_primary = self.is_primary
        self.fencing.drop_lease()
        actions: list[Action] = self.table.flush()
        actions += self.waiters.unblock_all()
        if was_primary:
            # Redis replicationCacheMasterUsingMyself: our own history may continue
            # partially on the new primary (it has it as replid2 after its promotion).
            self.link.can_psync = True
        self.link.failover_psync = failover
        actions.append(RoleChanged(host, port))
        # Sub-replicas stay: they are dropped when our history changes (a +CONTINUE with
        # a new id, or a full sync), and can then continue partially with us.
        actions += self._run_link(self.link.replicaof(host, port, now_ms), now_ms)
        return actions

    def start_replica(self, host: str, port: int, now_ms: int) -> list[Action]:
        """At start-up with ``replicaof`` configured: follow host:port, continuing the
        restored history when there is one (never our fresh random id)."""
        assert self.is_primary, "call once, right after construction"
        if self._saved is not None:
            self.state.restore_as_replica(self._saved)
        return [RoleChanged(host, port)] + self._run_link(
            self.link.replicaof(host, port, now_ms), now_ms
        )

    def promote(self, now_ms: int) -> list[Action]:
        """Become a primary by a failover controller's choice. A FAILOVER in progress is
        aborted first (its writes pause ends; REPLICAOF itself is refused meanwhile)."""
        actions = self._run_failover(self.failover.abort("promoted by the controller"), now_ms)
        return actions + (self._promote(now_ms) if not self.is_primary else [])

    def _promote(self, now_ms: int) -> list[Action]:
        # Redis replicationUnsetMaster. ackdb: a promoted node is fenced until its first
        # lease (ACKDB.LEASE) when ackdb-lease is on.
        self.fencing.promoted()
        actions: list[Action] = self._run_link(self.link.unset(now_ms), now_ms)
        actions += self.table.flush()
        self.state.shift_replid()
        actions += self.table.drop_all("primary promoted: replicas must learn the new id")
        self.state.ensure_backlog(new_history=False)
        self.encoder.force_select()
        actions.append(RoleChanged(None, 0))
        actions.append(
            Log(
                "notice",
                f"PRIMARY MODE enabled: new replid {self.state.replid}, replid2 {self.state.replid2} valid up to {self.state.second_repl_offset}",
            )
        )
        return actions

    # -- full syncs served ------------------------------------------------------------

    @property
    def snapshot_needed(self) -> bool:
        return self.table.snapshot_needed

    def begin_snapshot(self) -> SnapshotStart:
        """Snapshot the dataset now (synchronously) for every replica waiting for one."""
        start = self.table.begin_snapshot()
        self.encoder.force_select()
        # The snapshot must carry the db our stream has selected at its offset (Redis
        # repl-stream-db): a primary re-selects on its next effect, so 0 will do.
        db = 0 if self.is_primary else self.link.stream_db
        return dataclasses.replace(start, stream_db=db)

    def on_bulk_sent(self, conn: int, now_ms: int) -> None:
        self.table.on_bulk_sent(conn, now_ms)

    def on_replica_disconnect(self, conn: int) -> None:
        self.table.on_disconnect(conn)

    def unblock_waiter(self, client: int, now_ms: int, *, error: bool) -> bytes | None:
        """CLIENT UNBLOCK of a WAIT / WAITAOF client: its reply, or None if not one."""
        return self.waiters.unblock(
            client,
            now_ms,
            self.table,
            fsynced_offset=self.fsynced_offset,
            aof_enabled=self.aof_enabled,
            error=error,
        )

    def on_client_disconnect(self, client: int) -> None:
        self.waiters.cancel(client)

    # -- the link to our primary ------------------------------------------------------

    def on_link_established(self, now_ms: int) -> list[Action]:
        return self._run_link(self.link.on_link_established(now_ms), now_ms)

    def on_link_failed(self, now_ms: int) -> list[Action]:
        return self._run_link(self.link.on_link_failed(now_ms), now_ms)

    def on_link_lost(self, now_ms: int) -> list[Action]:
        return self._run_link(self.link.on_link_lost(now_ms), now_ms)

    def receive_data(self, data: bytes, now_ms: int) -> list[Action]:
        return self._run_link(self.link.receive_data(data, now_ms), now_ms)

    def snapshot_loaded(self, stream_db: int, now_ms: int) -> list[Action]:
        """After ``SnapshotEnd``: the dataset was replaced by the snapshot. Bytes that
        followed the snapshot are processed now."""
        if self.aof_enabled:
            # The dataset now belongs to the primary's history: nothing of it is known
            # fsynced until the AOF layer reports it (after rewriting the AOF).
            self.fsynced_offset = -1
            self.link.fsynced_offset = -1
        return self._run_link(self.link.snapshot_loaded(stream_db, now_ms), now_ms)

    def _run_link(self, las: Sequence[LinkAction], now_ms: int) -> list[Action]:
        out: list[Action] = []
        append = out.append
        for a in las:
            if type(a) is Apply:  # by far the commonest: one per replicated command
                append(a)
            elif isinstance(a, Forward):
                self.table.queue(a.data)
            elif isinstance(a, DisconnectReplicas):
                out += self.table.drop_all(a.reason)
            elif isinstance(a, PsyncReplied):
                out += self._run_failover(self.failover.on_psync_reply(a.accepted), now_ms)
            else:
                append(a)
        return out

    def _run_failover(self, fas: Sequence[fo.FailoverAction], now_ms: int) -> list[Action]:
        out: list[Action] = []
        for a in fas:
            if isinstance(a, fo.Demote):
                out += self.demote(a.host, a.port, now_ms, failover=True)
            elif isinstance(a, fo.RestorePrimary):
                out += self._promote(now_ms)
            else:
                out.append(a)
        if not self.failover.active:
            self.link.failover_psync = False
        return out

    # -- introspection ----------------------------------------------------------------

    def info_fields(
        self,
        now_ms: int,
        *,
        replica_priority: int = 100,
        read_only: bool = True,
        announced: bool = True,
        mono_ms: int = 0,
    ) -> list[tuple[str, str]]:
        """INFO replication, in Redis's order (then ackdb's fencing lines)."""
        return introspection.replication_info(
            self,
            now_ms,
            replica_priority=replica_priority,
            read_only=read_only,
            announced=announced,
            mono_ms=mono_ms,
        )

    def role_reply(self) -> bytes:
        """The ROLE command's reply."""
        return introspection.role_reply(self)

    # -- durability -------------------------------------------------------------------

    def on_fsynced(self, offset: int, now_ms: int) -> list[Action]:
        """The AOF is fsynced up to stream offset ``offset`` (the shell's AOF layer)."""
        if not self.aof_enabled:
            return []  # a late report after AOF was switched off
        self.fsynced_offset = max(self.fsynced_offset, offset)
        return self._run_link(self.link.on_fsynced(self.fsynced_offset, now_ms), now_ms)

    def set_aof_enabled(self, enabled: bool, now_ms: int) -> None:
        """CONFIG SET appendonly. Waiters for a local fsync get their error on the next
        ``before_sleep``; the shell reports the first fsync with ``on_fsynced``."""
        self.aof_enabled = enabled
        if not enabled:
            self.fsynced_offset = -1
            self.link.fsynced_offset = None

    # -- the event loop ---------------------------------------------------------------

    def before_sleep(self, now_ms: int, *, writes_paused: bool = False) -> list[Action]:
        """End of an event-loop iteration: failover progress, one batched GETACK,
        waiters, then the stream queued during the iteration goes to the replicas."""
        actions = self._run_failover(
            self.failover.update(now_ms, self.state.master_repl_offset, self.table), now_ms
        )
        paused = writes_paused or self.failover.active
        if (
            self.waiters.take_getack(paused)
            and self.is_primary
            and self.table.getack_needed(now_ms)
        ):
            # Replicas that had a GETACK lately acknowledge every read by themselves
            # (replica.py, EAGER_ACK_MS): a WAIT needs no new one, which saves both sides
            # a message per WAIT on the path to its answer.
            self.table.feed_getack(now_ms)
        actions += self.waiters.process(
            now_ms, self.table, fsynced_offset=self.fsynced_offset, aof_enabled=self.aof_enabled
        )
        return actions + self.table.flush()

    def cron(self, now_ms: int, *, writes_paused: bool = False) -> list[Action]:
        """The hz timer: link timers, keep-alive pings, timeouts, backlog TTL; then what
        ``before_sleep`` does (``writes_paused`` as there: CLIENT PAUSE WRITE is on)."""
        actions = self._run_link(self.link.tick(now_ms), now_ms)
        if now_ms >= self._next_ping_ms:
            # Redis replicationCron: a ping on every repl-ping-replica-period-th run of
            # the cron counted from start-up -- a schedule of its own, kept whether or not
            # there are replicas, never restarted when one attaches or on a promotion (a
            # primary whose replicas attached after its first run and never writes keeps
            # offset 0 for a whole period, as Redis's does).
            period = self.config.ping_period_ms
            first = self._next_ping_ms < 0
            nxt = now_ms + period if first else self._next_ping_ms + period
            self._next_ping_ms = nxt if nxt > now_ms else now_ms + period
            # Redis's loop 0 runs right at start-up, before any replica could attach: the
            # first run here (up to 1/hz later, when one may have) does not ping either.
            if not first and self.is_primary and self.table.replicas and not self.failover.active:
                # notes: not while a failover pauses writes (it would move the offset the
                # target must match).
                self.table.feed_keepalive(PING)
        actions += self.table.cron(now_ms)
        self.state.maybe_free_backlog(now_ms, len(self.table.replicas), self.is_primary)
        return actions + self.before_sleep(now_ms, writes_paused=writes_paused)
