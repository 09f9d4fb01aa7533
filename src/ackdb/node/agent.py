"""The node agent: one Raft member over TCP, serving the cluster's metadata store.

Owns: the Raft loop of this member -- the RawNode, its durable store, the metadata state
machine, the peer transport and the client port -- and carries out each Ready in the
order the core requires (etcd raft node.go; Raft §5):

    1. persist the snapshot, the entries and the hard state, and fsync (one fsync per
       pass covers every proposal that pass collected: group commit);
    2. only then send the messages (a vote or an append acknowledgement promises
       durability);
    3. apply the committed entries to the metadata store, resolve the commands and reads
       waiting on them;
    4. advance.

Timers: a tick every ``tick_ms`` (Raft ticks, retries, deadlines, the reconciler). A pass
runs at the end of any event-loop iteration that gave the core input (a client command,
a peer message, a tick), so everything that arrived together shares one Ready.

The fsync runs on a worker thread: while it is in flight the loop goes on reading
clients and peers and feeding the core (RawNode accepts input between ``ready`` and
``advance``), so the next Ready collects everything that arrived meanwhile -- the slower
the disk, the bigger the batch. Nothing of a Ready is sent or applied before its fsync
returns, and no new Ready is taken until then.

States of the process: STARTING (store opened, ports bound) -> RUNNING -> STOPPING (a
signal, or this member was removed from the cluster) -> stopped.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ackdb.cluster.commands import CommandError, Op, Result, decode_command, fail
from ackdb.cluster.metadata import MetadataStore
from ackdb.consensus import (
    Config,
    Entry,
    EntryKind,
    Message,
    MsgType,
    ProposalDropped,
    RawNode,
    Ready,
    Role,
)
from ackdb.node.membership import Membership
from ackdb.node.options import AgentOptions
from ackdb.node.peerframes import (
    Forward,
    Frame,
    RaftFrame,
    Removed,
    encode_forward,
    encode_raft,
)
from ackdb.node.proposer import Proposer
from ackdb.node.raftstore import RaftStore
from ackdb.node.reads import Reads
from ackdb.node.reconcile import ProposeConf, Reconciler, Submit
from ackdb.node.status import info_text, status_text
from ackdb.node.transport import Transport
from ackdb.server.log import Log

if TYPE_CHECKING:
    from ackdb.node.metaserver import MetaConnection

# Ready rounds in one pass before yielding to the event loop (count).
READY_ROUNDS_MAX = 8


def now_ms() -> int:
    return int(time.monotonic() * 1000)


class Agent:
    def __init__(self, opts: AgentOptions, log: Log) -> None:
        self.opts = opts
        self.log = log
        self.node_id = opts.node_id
        self.store, self.storage = RaftStore.open(opts.data_dir, warn=log.warning)
        fresh = self.storage.last_index() == 0
        seed = int.from_bytes(os.urandom(8), "big")
        cfg = Config(
            node_id=opts.node_id,
            election_tick=opts.election_ticks,
            heartbeat_tick=opts.heartbeat_ticks,
        )
        self.raw = RawNode(cfg, self.storage, random.Random(seed))
        if fresh and opts.bootstrap:
            self.raw.bootstrap(tuple(pid for pid, _ in opts.bootstrap))
            log.notice(f"Bootstrapping a new cluster: {', '.join(p for p, _ in opts.bootstrap)}")
        snap = self.storage.snapshot()
        self.meta = MetadataStore.restore(snap.data) if snap.data else MetadataStore()
        self.snap_index = snap.index
        # A new id per process: sequence numbers restart at 1 with it.
        self.client_id = f"{opts.node_id}.{os.urandom(6).hex()}"
        self.proposer = Proposer(
            opts.node_id,
            self.client_id,
            self.raw.propose,
            self._forward,
            retry_ms=opts.retry_ms,
            timeout_ms=opts.request_timeout_ms,
        )
        self.reads = Reads(self.raw.read_index, opts.retry_ms // 2, opts.request_timeout_ms)
        self.reconciler = Reconciler(
            opts.node_id, opts.client_addr, opts.cluster_addr, settle_ms=2 * opts.election_ms
        )
        self.membership = Membership(self)
        self.clients: set[MetaConnection] = set()
        self.transport: Transport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.leader: str | None = None
        self.role = Role.FOLLOWER
        self.stats = {"passes": 0, "fsyncs": 0, "entries_persisted": 0, "applied": 0}
        self.fsync_ms_last = 0.0
        self._kicked = False
        self._to_flush: list[MetaConnection] = []
        self._done: asyncio.Future[int] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._next_tick = 0.0
        self._last_leader_log: tuple[str | None, int] = (None, 0)
        self._syncing = False  # an fsync is in flight: no new Ready until it completes
        self._sync_started = 0.0
        self._failed = False
        self._fsync_thread = ThreadPoolExecutor(1, thread_name_prefix="fsync")

    # -- life ---------------------------------------------------------------------------

    async def run(self) -> int:
        from ackdb.node.metaserver import MetaConnection

        loop = self.loop = asyncio.get_running_loop()
        o = self.opts
        t = self.transport = Transport(
            o.node_id,
            o.cluster_addr,
            self.log,
            self._on_frame,
            self._on_unreachable,
            random.Random(),
        )
        for pid, addr in o.bootstrap:
            t.set_address(pid, addr, pinned=True)
        self.membership.sync_addresses()
        await t.listen(o.bind, o.cluster_port)
        server = await loop.create_server(lambda: MetaConnection(self), o.bind, o.port)
        self._done = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, 0, f"signal {sig}")
        self.log.notice(
            f"Node {o.node_id} ready: clients on {o.client_addr}, peers on {o.cluster_addr}, "
            f"data in {o.data_dir}, PID {os.getpid()}"
        )
        self._next_tick = loop.time()
        self._on_tick()
        if o.join and self.node_id not in self.meta.voters and self.storage.last_index() == 0:
            self._tasks.append(loop.create_task(self.membership.join()))
        code = await self._done
        self.log.notice("Shutting down")
        server.close()
        for task in self._tasks:
            task.cancel()
        self.proposer.fail_all("ERR node shutting down")
        self.reads.fail_all("ERR node shutting down")
        self._flush_clients()
        for c in list(self.clients):
            if c.transport is not None:
                c.transport.close()
        await server.wait_closed()  # (3.12+ also waits for the connections closed above)
        await t.aclose()
        # An fsync in flight finishes before the store closes (bounded by the disk).
        self._fsync_thread.shutdown(wait=True)
        self.store.close()
        return code

    @property
    def stopping(self) -> bool:
        return self._done is not None and self._done.done()

    def stop(self, code: int = 0, why: str = "") -> None:
        if self._done is not None and not self._done.done():
            self.log.notice(f"Stopping ({why})")
            self._done.set_result(code)

    # -- input ----------------------------------------------------------------------------

    def submit(
        self, op: Op, args: tuple[bytes | str | int, ...], done: Callable[[Result], None]
    ) -> None:
        self.proposer.submit(op, args, now_ms(), done)
        self._kick()

    def read(self, run: Callable[[], None], failed: Callable[[str], None]) -> None:
        self.reads.add(run, failed, now_ms())
        self._kick()

    def _on_frame(self, peer: str, frame: Frame) -> None:
        if isinstance(frame, RaftFrame):
            if frame.msg.to != self.node_id:
                self.log.verbose(f"Dropping a message for {frame.msg.to} from {peer}")
                return
            self.raw.step(frame.msg)
        elif isinstance(frame, Forward):
            self._on_forward(peer, frame.data)
        elif isinstance(frame, Removed) and frame.node_id == self.node_id:
            self.membership.removed(f"told by {peer}")
        self._kick()

    def _on_forward(self, peer: str, data: bytes) -> None:
        try:
            decode_command(data)
        except CommandError as e:
            self.log.warning(f"Dropping a malformed command forwarded by {peer}: {e}")
            return
        try:
            self.raw.propose(data)
        except ProposalDropped:
            pass  # not the leader (any more): the sender retries at the leader it learns

    def _forward(self, leader: str, data: bytes) -> bool:
        assert self.transport is not None
        return self.transport.send(leader, encode_forward(data))

    def _on_unreachable(self, peer: str) -> None:
        self.raw.report_unreachable(peer)

    # -- the loop -----------------------------------------------------------------------

    def _kick(self) -> None:
        if not self._kicked and self.loop is not None:
            self._kicked = True
            self.loop.call_soon(self._pass)

    def _on_tick(self) -> None:
        assert self.loop is not None
        now = now_ms()
        try:
            self.raw.tick()
            self.proposer.tick(now)
            self.reads.tick(now)
            self._reconcile(now)
            self.membership.sync_addresses()
        except Exception:
            self.log.warning("Unexpected error in the tick", exc=True)
        # Ticks keep their cadence even when a pass runs long (no drift).
        self._next_tick = max(self._next_tick + self.opts.tick_ms / 1000, self.loop.time())
        self.loop.call_at(self._next_tick, self._on_tick)
        self._kick()

    def _pass(self) -> None:
        self._kicked = False
        if self._syncing:
            return  # the pass resumes when the fsync in flight completes
        try:
            self._run_ready()
        except Exception:
            self._fatal()

    def _fatal(self) -> None:
        # A failed fsync or a broken invariant: continuing could acknowledge what is
        # not durable. Stop; the log says why, the disk holds what was synced.
        self.log.warning("Fatal error in the Raft loop", exc=True)
        self._failed = True
        self.stop(1, "fatal error")

    def _run_ready(self) -> None:
        raw = self.raw
        self.stats["passes"] += 1
        for _ in range(READY_ROUNDS_MAX):
            if self._failed or not raw.has_ready():
                break
            rd = raw.ready()
            if self._write(rd):
                # The fsync runs on a worker thread while this loop keeps reading clients
                # and peers (their input collects in the core for the next Ready); the
                # rest of this Ready -- sending first of all -- waits for it.
                self._syncing = True
                self._sync_started = time.perf_counter()
                assert self.loop is not None
                fut = self.loop.run_in_executor(self._fsync_thread, self.store.sync)
                fut.add_done_callback(functools.partial(self._synced, rd))
                return
            self._finish(rd)
        self._end_pass()

    def _synced(self, rd: Ready, fut: asyncio.Future[None]) -> None:
        self._syncing = False
        try:
            fut.result()
            self.fsync_ms_last = (time.perf_counter() - self._sync_started) * 1000
            self.stats["fsyncs"] += 1
            self._finish(rd)
            self._end_pass()
        except Exception:
            self._fatal()

    def _write(self, rd: Ready) -> bool:
        """Write the Ready's durable part; True if it must be fsynced before the rest."""
        if rd.snapshot is not None:
            self._install_snapshot(rd)
        if rd.hard_state is None and not rd.entries and rd.snapshot is None:
            return False
        self.store.save(rd.hard_state, rd.entries, rd.snapshot)
        return rd.must_sync

    def _finish(self, rd: Ready) -> None:
        """Everything after the fsync: mirror, send, apply, advance."""
        # The core reads the persisted log from the MemoryStorage: mirror what is on disk.
        if rd.snapshot is not None:
            self.storage.apply_snapshot(rd.snapshot)
        self.storage.append(rd.entries)
        if rd.hard_state is not None:
            self.storage.set_hard_state(rd.hard_state)
        self.stats["entries_persisted"] += len(rd.entries)
        for m in rd.messages:
            self._send(m)
        self._apply(rd.committed_entries, now_ms())
        for rs in rd.read_states:
            self.reads.on_read_state(rs)
        self.raw.advance(rd)

    def _end_pass(self) -> None:
        now = now_ms()
        self.reads.on_applied(self.meta.applied_index)
        self._observe(now)
        self.reads.flush(now)
        self._maybe_snapshot()
        self._flush_clients()
        if self.raw.has_ready():
            self._kick()

    def _install_snapshot(self, rd: Ready) -> None:
        snap = rd.snapshot
        assert snap is not None
        self.meta = MetadataStore.restore(snap.data) if snap.data else MetadataStore()
        self.snap_index = snap.index
        self.log.notice(f"Installed a snapshot at index {snap.index} (term {snap.term})")
        # Our commands the snapshot covers: the session knows the last one's result; for
        # earlier ones the outcome is unknown (never guess: they may have applied).
        last = self.meta.sessions.last_seq(self.client_id)
        for seq, p in list(self.proposer.pending.items()):
            if seq <= last:
                del self.proposer.pending[seq]
                p.done(fail("TRYAGAIN outcome unknown: this node caught up from a snapshot"))

    def _send(self, m: Message) -> None:
        assert self.transport is not None
        ok = self.transport.send(m.to, encode_raft(m))
        if not ok and m.type is MsgType.SNAPSHOT:
            self.raw.report_snapshot(m.to, False)

    def _apply(self, entries: tuple[Entry, ...], now: int) -> None:
        for e in entries:
            if e.index <= self.meta.applied_index:
                continue  # covered by a snapshot installed in this Ready
            applied = self.meta.apply_entry(e)
            self.stats["applied"] += 1
            if applied is not None:
                self.proposer.on_applied(applied, now)
            elif e.kind is EntryKind.CONF_CHANGE:
                self.membership.on_conf_entry(e)

    def _observe(self, now: int) -> None:
        """Leader changes: the proposer resends, the reads learn whether to wait."""
        st = self.raw.status()
        leader, role, term = st.leader, st.role, st.term
        self.role = role
        if leader != self.leader:
            self.leader = leader
            self.proposer.on_leader(leader, now)
            self.reads.leader_known = leader is not None
            if (leader, term) != self._last_leader_log:
                self._last_leader_log = (leader, term)
                who = "none" if leader is None else leader
                self.log.notice(f"Leader is {who} (term {term}, this node is {role.value})")

    def _reconcile(self, now: int) -> None:
        for action in self.reconciler.step(self.raw.status(), self.meta, now):
            if isinstance(action, Submit):
                self.proposer.submit(action.op, action.args, now, self._log_failure)
            elif isinstance(action, ProposeConf):
                try:
                    self.raw.propose_conf_change(action.cc)
                    self.log.notice(
                        f"Proposing {action.cc.kind.name.lower()} of {action.cc.node_id}"
                    )
                except ProposalDropped as e:
                    self.log.verbose(f"Configuration change deferred: {e}")

    def _log_failure(self, r: Result) -> None:
        if not r.ok:
            self.log.verbose(f"Internal command failed: {r.error}")

    def _maybe_snapshot(self) -> None:
        applied = self.meta.applied_index
        if applied - self.snap_index < self.opts.snapshot_entries:
            return
        snap = self.raw.compact(applied, self.meta.snapshot())
        self.store.save_snapshot(snap)
        self.snap_index = applied
        self.log.verbose(f"Snapshot at index {applied} ({len(snap.data)} bytes)")

    # -- replies ------------------------------------------------------------------------

    def schedule_flush(self, conn: MetaConnection) -> None:
        """Write ``conn``'s answered replies at the end of this pass of the event loop."""
        if not self._to_flush and self.loop is not None:
            self.loop.call_soon(self._flush_clients)
        self._to_flush.append(conn)

    def _flush_clients(self) -> None:
        conns, self._to_flush = self._to_flush, []
        for conn in conns:
            conn.flush()

    # -- reports ------------------------------------------------------------------------

    def status_text(self) -> str:
        return status_text(self)

    def info_text(self) -> str:
        return info_text(self)
