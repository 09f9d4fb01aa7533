"""The Raft member of a node, as one service: the metadata store replicated over TCP.

Owns: this member's RawNode, its durable store (raftstore.py), the metadata state machine
(cluster/machine.py), the peer links (transport.py), the deciders (cluster/proposer.py,
cluster/reads.py, cluster/reconcile.py, and on the leader the failover controller
cluster/failover.py, stepped after the reconciler each tick and after every pass that
applied entries, so a committed fence or report is acted on at once) and the membership shell (membership.py); and the
asyncio side of the Raft loop. Each Ready is carried out by the shared
``consensus.driver.RaftDriver`` -- the code the simulator runs too -- in the order the core
requires (etcd raft node.go; Raft §5):

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

It is given narrow ports by the host: the options, the log, ``Exit`` (to stop the process
when removed or on a fatal error), ``after_pass`` (the client port's reply flush) and the
peer links' key (peerauth.peer_key of the cluster secret: the handshake of every peer
link and the proof of ``--join``). It holds no reference to the host or to another
service.

States: NEW (store opened) -> RUNNING (start: peers bound, ticking) -> DRAINED (pending
commands and reads failed) -> STOPPED (links closed, store closed).
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ackdb.cluster.commands import CommandError, Op, Result, decode_command
from ackdb.cluster.failover import FailoverController
from ackdb.cluster.machine import MetadataMachine
from ackdb.cluster.metadata import MetadataStore
from ackdb.cluster.proposer import Proposer
from ackdb.cluster.reads import Reads
from ackdb.cluster.reconcile import ProposeConf, Reconciler, Submit
from ackdb.cluster.status import status_text
from ackdb.consensus import Config, Entry, Message, ProposalDropped, RawNode, Role, Snapshot
from ackdb.consensus.driver import RaftDriver, Written
from ackdb.node.membership import Membership
from ackdb.node.options import AgentOptions
from ackdb.node.peerframes import Forward, Frame, RaftFrame, Removed, encode_forward, encode_raft
from ackdb.node.raftstore import RaftStore
from ackdb.node.service import Exit
from ackdb.node.status import RaftCounters, info_text
from ackdb.node.transport import Transport
from ackdb.server.log import Log

# Ready rounds in one pass before yielding to the event loop (count).
READY_ROUNDS_MAX = 8


# The controller's slack past a peer's last message (see ``_heard``): the arrival times
# are exact, this only absorbs the time between a frame's arrival and its handling.
HEARD_SLACK_MS = 50


def now_ms() -> int:
    return int(time.monotonic() * 1000)


class RaftMember:
    name = "raft-member"

    def __init__(
        self,
        opts: AgentOptions,
        log: Log,
        exit: Exit,
        after_pass: Callable[[], None],
        peer_key: bytes,
    ) -> None:
        self.opts = opts
        self.peer_key = peer_key
        self.log = log
        self.exit = exit
        self.after_pass = after_pass
        self.node_id = opts.node_id
        self.store, self.storage = RaftStore.open(opts.data_dir, warn=log.warning)
        fresh = self.storage.last_index() == 0
        cfg = Config(
            node_id=opts.node_id,
            election_tick=opts.election_ticks,
            heartbeat_tick=opts.heartbeat_ticks,
        )
        self.raw = RawNode(cfg, self.storage, random.Random(int.from_bytes(os.urandom(8), "big")))
        if fresh and opts.bootstrap:
            self.raw.bootstrap(tuple(pid for pid, _ in opts.bootstrap))
            log.notice(f"Bootstrapping a new cluster: {', '.join(p for p, _ in opts.bootstrap)}")
        snap = self.storage.snapshot()
        meta = MetadataStore.restore(snap.data) if snap.data else MetadataStore()
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
        # When each peer's last Raft message arrived (monotonic ms): the controller's
        # "seen" times -- exact, where the Reconciler's are samples of a flag that Raft
        # keeps set until its next quorum check (up to an election timeout after a node
        # fell silent). Every read that grants a lease reaches the leader as a message
        # from its node, so no lease was granted after this time (cluster/failover.py).
        self._heard: dict[str, int] = {}
        self.failover = FailoverController(seen_slack_ms=HEARD_SLACK_MS)
        self._failover_applied = -1  # the applied index the controller last looked at
        self.machine = MetadataMachine(
            meta, self.proposer, self._on_conf_entry, now_ms, self._on_restored
        )
        self.driver = RaftDriver(
            self.raw,
            self.storage,
            self.store,
            self,
            self.machine,
            self.reads,
            compact_entries=opts.snapshot_entries,
            on_compacted=self._on_compacted,
        )
        self.transport: Transport | None = None
        self.membership: Membership | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.leader: str | None = None
        self.role = Role.FOLLOWER
        self.passes = 0
        self.fsync_ms_last = 0.0
        self._kicked = False
        self._tasks: list[asyncio.Task[None]] = []
        self._next_tick = 0.0
        self._last_leader_log: tuple[str | None, int] = (None, 0)
        self._syncing = False  # an fsync is in flight: no new Ready until it completes
        self._sync_started = 0.0
        self._failed = False
        self._fsync_thread = ThreadPoolExecutor(1, thread_name_prefix="fsync")

    # -- reading the state ----------------------------------------------------------------

    @property
    def meta(self) -> MetadataStore:
        return self.machine.meta

    @property
    def snap_index(self) -> int:
        return self.driver.snap_index

    @property
    def stats(self) -> dict[str, int]:
        d = self.driver.stats
        return {
            "passes": self.passes,
            "fsyncs": d.fsyncs,
            "entries_persisted": d.entries_persisted,
            "applied": d.applied,
        }

    def status_text(self) -> str:
        lines = self.failover.status_lines(self.meta, now_ms())
        st = self.raw.status()
        return status_text(st, self.meta, self.opts.client_addr, self.snap_index, lines)

    def info_text(self, clients: int) -> str:
        d = self.driver.stats
        counters = RaftCounters(
            pending_commands=len(self.proposer.pending),
            pending_reads=len(self.reads),
            passes=self.passes,
            fsyncs=d.fsyncs,
            entries_persisted=d.entries_persisted,
            fsync_ms_last=self.fsync_ms_last,
        )
        st = self.raw.status()
        return info_text(self.opts, st, self.meta, counters, clients, self.transport)

    # -- life ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = self.loop = asyncio.get_running_loop()
        o = self.opts
        t = self.transport = Transport(
            o.node_id,
            o.cluster_addr,
            self.log,
            self._on_frame,
            self.raw.report_unreachable,
            random.Random(),
            self.peer_key,
        )
        for pid, addr in o.bootstrap:
            t.set_address(pid, addr, pinned=True)
        self.membership = Membership(
            o, self.log, t, lambda: self.meta, self.exit, join_key=self.peer_key
        )
        self.membership.sync_addresses()
        await t.listen(o.bind, o.cluster_port)
        self._next_tick = loop.time()
        self._on_tick()
        if o.join and self.node_id not in self.meta.voters and self.storage.last_index() == 0:
            self._tasks.append(loop.create_task(self.membership.join()))

    def drain(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.proposer.fail_all("ERR node shutting down")
        self.reads.fail_all("ERR node shutting down")

    async def stop(self) -> None:
        if self.transport is not None:
            await self.transport.aclose()
        # An fsync in flight finishes before the store closes (bounded by the disk).
        self._fsync_thread.shutdown(wait=True)
        self.store.close()

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
            self._heard[frame.msg.frm] = now_ms()
            self.raw.step(frame.msg)
        elif isinstance(frame, Forward):
            self._on_forward(peer, frame.data)
        elif isinstance(frame, Removed) and frame.node_id == self.node_id:
            assert self.membership is not None
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

    # -- the driver's ports -------------------------------------------------------------

    def send(self, m: Message) -> bool:
        """The driver's Network port: one Raft message to its peer."""
        assert self.transport is not None
        return self.transport.send(m.to, encode_raft(m))

    def _forward(self, leader: str, data: bytes) -> bool:
        assert self.transport is not None
        return self.transport.send(leader, encode_forward(data))

    def _on_conf_entry(self, e: Entry) -> None:
        if self.membership is not None:
            self.membership.on_conf_entry(e)

    def _on_restored(self, snap: Snapshot) -> None:
        self.log.notice(f"Installed a snapshot at index {snap.index} (term {snap.term})")

    def _on_compacted(self, snap: Snapshot) -> None:
        self.log.verbose(f"Snapshot at index {snap.index} ({len(snap.data)} bytes)")

    # -- the loop -----------------------------------------------------------------------

    def _kick(self) -> None:
        if not self._kicked and self.loop is not None:
            self._kicked = True
            self.loop.call_soon(self._pass)

    def _on_tick(self) -> None:
        assert self.loop is not None and self.membership is not None
        now = now_ms()
        try:
            self.driver.tick()
            self.proposer.tick(now)
            self.reads.tick(now)
            self._reconcile(now)
            self._step_failover(now)
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
        self.exit(1, "fatal error")

    def _run_ready(self) -> None:
        self.passes += 1
        for _ in range(READY_ROUNDS_MAX):
            if self._failed:
                break
            w = self.driver.begin()
            if w is None:
                break
            if w.must_sync:
                # The fsync runs on a worker thread while this loop keeps reading clients
                # and peers (their input collects in the core for the next Ready); the
                # rest of this Ready -- sending first of all -- waits for it.
                self._syncing = True
                self._sync_started = time.perf_counter()
                assert self.loop is not None
                fut = self.loop.run_in_executor(self._fsync_thread, self.store.sync)
                fut.add_done_callback(functools.partial(self._synced, w))
                return
            self.driver.complete(w)
        self._end_pass()

    def _synced(self, w: Written, fut: asyncio.Future[None]) -> None:
        self._syncing = False
        try:
            fut.result()
            self.fsync_ms_last = (time.perf_counter() - self._sync_started) * 1000
            self.driver.complete(w)
            self._end_pass()
        except Exception:
            self._fatal()

    def _end_pass(self) -> None:
        now = now_ms()
        self._observe(now)
        if self.role is Role.LEADER:
            self._leader_pass(now)
        self.reads.flush(now)
        self.after_pass()
        if self.driver.has_ready():
            self._kick()

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

    def _leader_pass(self, now: int) -> None:
        """After every pass on the leader: the reconciler samples its peers' activity now
        (``recent_active`` is set by a peer's message and cleared at each quorum check,
        so sampling only at ticks could miss the last contact with a node and make the
        failover controller's lease wait start too early); a commit (a fence, a report)
        is acted on now rather than at the next tick."""
        try:
            self._reconcile(now)
            if self.meta.applied_index != self._failover_applied:
                self._step_failover(now)
        except Exception:
            self.log.warning("Unexpected error in the leader's deciders", exc=True)

    def _step_failover(self, now: int) -> None:
        """The failover controller after the reconciler (leader only): the peers' last
        message times as its seen-map, the reconciler's leading_since; propose what it
        decided, log its notices."""
        st = self.raw.status()
        seen = dict(self._heard)
        seen[self.node_id] = now
        for action in self.failover.step(st, self.meta, now, seen, self.reconciler.leading_since):
            self.proposer.submit(action.op, action.args, now, self._log_failure)
        for line in self.failover.drain_log():
            if line:
                self.log.notice(f"Failover: {line}")
        self._failover_applied = self.meta.applied_index

    def _log_failure(self, r: Result) -> None:
        if not r.ok:
            self.log.verbose(f"Internal command failed: {r.error}")
