"""Runs the coordinator's cores over the replica links; keeps and replays hints.

SHELL MODULE (asyncio, the clock). Owns: the partitions of the current topology (a key's
replica set: ``db.shard_of_slot(key_slot(key)).instances()``, replica i = index i), one
``Link`` per replica address, the coordinator's hybrid logical clock, its request ids,
the hint queues (one per replica address, ``leaderless/hints.HintQueue`` with the three
limits of the database's record, ``db create --hint-*``, applied live with each
topology) and their replay, and the counters INFO shows. It only carries out actions: a
core (``WriteRequest`` / ``ReadRequest`` / ``ScanRequest``) decides, this feeds it
replies, failures and the deadline tick.

Per send: a user write carries ``MAXSKEW <db.max_clock_skew_ms>`` and ``SCHEMA <db
schema version>``; repairs and hints carry neither. A replica's ``-TRYAGAIN`` (it lacks
that schema version) is asked again every ``SCHEMA_RETRY_MS`` until the deadline. A
version read more than the skew ahead of our clock is refused (that replica counts as
failed) and its node flagged. Versions read are observed by the clock.

Node ids in versions: a coordinator's ``Version.node`` is a hash of its node id
(``node_number``), the same whatever the cluster's membership.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cluster.databases import Topology
from ..cluster.keyslot import key_slot
from ..keyspace import lww
from ..keyspace.lww import Record, Version
from ..leaderless.actions import Action, Done, SendApply, SendRange, SendRead, StoreHint
from ..leaderless.coordinator import ReadRequest, RequestIds, ScanRequest, WriteRequest
from ..leaderless.deletes import DeletionStrategy
from ..leaderless.hints import HintQueue
from ..leaderless.hlc import HybridClock
from ..leaderless.levels import Level
from ..resp.replies import ReplyError
from .links import Link

REQUEST_TIMEOUT_MS = 2000
REPLAY_PAUSE_S = 0.01  # between two hint batches to one replica (at most ~12 800 hints/s)
SCHEMA_RETRY_MS = 50
PROBE_INTERVAL_S = 0.5  # how often replicas with hints are probed
Request = WriteRequest | ReadRequest | ScanRequest
Addr = tuple[str, int]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Partition:
    index: int
    addrs: tuple[Addr, ...]
    nodes: tuple[str, ...]

    @property
    def replicas(self) -> tuple[int, ...]:
        return tuple(range(len(self.addrs)))


@dataclass(frozen=True, slots=True)
class HintLimits:
    bytes_max: int
    count_max: int
    age_ms_max: int

    @staticmethod
    def of(topo: Topology) -> HintLimits:
        db = topo.db
        return HintLimits(db.hint_bytes_max, db.hint_count_max, db.hint_age_ms_max)


def node_number(topo: Topology) -> int:
    """The version tie-break of this coordinator: a 31-bit hash (CRC-32) of its node id,
    plus 1 -- the same for the node's whole life whatever the membership (a position in
    the member list would renumber nodes when one joins). Two ids sharing a number only
    share the tie-break of versions equal in milliseconds and counter, which the merge
    then settles by content (keyspace/lww.py), the same way on every replica."""
    return number_of(topo.node)


def number_of(node: str) -> int:
    return (zlib.crc32(node.encode()) & 0x7FFFFFFF) + 1


def node_name(topo: Topology, number: int) -> str:
    """The node id whose version number is ``number`` (``#<number>`` if none is known)."""
    ids = set(topo.hosts) | {topo.node}
    return next((n for n in sorted(ids) if number_of(n) == number), f"#{number}")


class Runner:
    def __init__(
        self,
        topo: Topology,
        password: bytes | None,
        log: Any,
        request_timeout_ms: int = REQUEST_TIMEOUT_MS,
    ) -> None:
        self.password = password
        self.limits = HintLimits.of(topo)
        self.log = log
        self.timeout_ms = request_timeout_ms
        self.clock = HybridClock(node_number(topo), topo.db.max_clock_skew_ms)
        self.ids = RequestIds()
        self.links: dict[Addr, Link] = {}
        self.hints: dict[Addr, HintQueue] = {}
        self.replaying: set[Addr] = set()
        self.hints_replayed = 0
        # Hints taken from their queue for a batch whose replies have not all come: still
        # pending (they go back to the queue if they fail), so ll_hints_pending counts them.
        self.hints_in_flight = 0
        self.hints_dropped_gone = 0  # dropped with a replica that left the topology
        self.repairs = 0
        self.skew_refused = 0
        self.schema_retries = 0
        self.reads = 0
        self.writes = 0
        self.topo = topo
        self.partitions: list[Partition] = []  # by partition index (Shard.index)
        self.strategy = DeletionStrategy.TIME_BASED_RESOLUTION
        self.set_topology(topo)

    # -- topology ----------------------------------------------------------------------

    def set_topology(self, topo: Topology) -> None:
        self.topo = topo
        self.clock.max_skew_ms = topo.db.max_clock_skew_ms
        self.strategy = DeletionStrategy.parse(topo.db.deletion_strategy.encode())
        self.limits = lim = HintLimits.of(topo)
        for q in self.hints.values():
            q.hint_bytes_max, q.hint_count_max = lim.bytes_max, lim.count_max
            q.hint_age_ms_max = lim.age_ms_max
        self.partitions = [
            Partition(
                s.index,
                tuple(topo.addr(i) for i in s.instances()),
                tuple(i.node for i in s.instances()),
            )
            for s in topo.db.shards
        ]
        live = {a for p in self.partitions for a in p.addrs}
        for addr in list(self.links):
            if addr not in live:
                self.links.pop(addr).close()
        for addr in list(self.hints):
            if addr not in live:  # the replica left the replica set: its hints go
                q = self.hints.pop(addr)
                self.hints_dropped_gone += q.dropped + len(q)

    def partition_of(self, key: bytes) -> Partition:
        return self.partitions[self.topo.db.shard_of_slot(key_slot(key)).index]

    def link(self, addr: Addr) -> Link:
        link = self.links.get(addr)
        if link is None or link.closed:
            link = self.links[addr] = Link(addr, self.password)
        return link

    # -- requests ----------------------------------------------------------------------

    def stamp(self, reqid: bytes | None) -> Version:
        fresh = self.clock.now(wall_ms())
        return fresh if reqid is None else self.ids.version_for(reqid, fresh)

    async def write(self, part: Partition, key: bytes, rec: Record, level: Level) -> Done:
        self.writes += 1
        req = WriteRequest(key, rec, part.replicas, level, self._deadline())
        return await self._drive(req, part, True)

    async def read(
        self, part: Partition, key: bytes, level: Level, first: tuple[int, ...] = ()
    ) -> Done:
        self.reads += 1
        order = (*first, *(r for r in part.replicas if r not in first))
        stamp = self.clock.now(wall_ms())
        req = ReadRequest(key, order, level, self._deadline(), self.strategy, stamp)
        done = await self._drive(req, part, False)
        if done.record is not None:
            self.clock.observe(done.record.newest(), wall_ms())
        self.repairs += len(done.receipt.repaired)
        return done

    async def scan(
        self, part: Partition, depth: int, lo: int, hi: int, level: Level
    ) -> tuple[Done, dict[bytes, Record]]:
        req = ScanRequest(part.replicas, level, depth, lo, hi, self._deadline())
        done = await self._drive(req, part, False)
        items = getattr(req, "merged", {}) if done.error is None else {}
        return done, items

    def _deadline(self) -> int:
        return wall_ms() + self.timeout_ms

    async def _drive(self, req: Request, part: Partition, user_write: bool) -> Done:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Done] = loop.create_future()

        def carry(actions: list[Action]) -> None:
            for a in actions:
                if isinstance(a, Done):
                    if not result.done():
                        result.set_result(a)
                elif isinstance(a, StoreHint):
                    self._hint(part.addrs[a.replica], a.key, a.record)
                else:
                    t = loop.create_task(self._send(req, part, a, user_write, carry))
                    t.add_done_callback(_quiet)

        carry(req.start())
        timer = loop.call_later(
            max(0, req.deadline_ms - wall_ms()) / 1000, lambda: carry(req.tick(wall_ms()))
        )
        try:
            return await result
        finally:
            if not isinstance(req, WriteRequest):
                timer.cancel()  # a write's tick still hints the replicas that never answered

    async def _send(
        self,
        req: Request,
        part: Partition,
        a: SendApply | SendRead | SendRange,
        user_write: bool,
        carry: Callable[[list[Action]], None],
    ) -> None:
        r = a.replica
        try:
            reply = await self._call(req, part.addrs[r], self._argv(a, user_write))
        except (ConnectionError, TimeoutError) as e:
            self.log.verbose(f"replica {part.addrs[r]}: {e}")
            carry(req.on_failure(r))
            return
        if isinstance(reply, ReplyError):
            text = str(reply)
            if isinstance(req, WriteRequest):
                if text.startswith("ERR LLSKEW"):
                    self.skew_refused += 1
                carry(req.on_failure(r, hint=False))
            else:
                carry(req.on_failure(r))
            self.log.verbose(f"replica {part.addrs[r]} answered -{text}")
            return
        carry(self._feed(req, a, reply))

    def _argv(self, a: SendApply | SendRead | SendRange, user_write: bool) -> list[Any]:
        if isinstance(a, SendRead):
            return ["LL.GET" if a.full else "LL.DIGEST", a.key]
        if isinstance(a, SendRange):
            return ["LL.RANGE", a.depth, a.lo, a.hi]
        argv: list[Any] = ["LL.APPLY", a.key, lww.encode(a.record)]
        if user_write and not a.repair:
            db = self.topo.db
            argv += ["MAXSKEW", db.max_clock_skew_ms]
            if db.schema_version:
                argv += ["SCHEMA", db.schema_version]
        return argv

    async def _call(self, req: Request, addr: Addr, argv: list[Any]) -> Any:
        """One command, asked again while the replica lacks the write's schema version."""
        while True:
            left_s = (req.deadline_ms - wall_ms()) / 1000
            if left_s <= 0:
                raise TimeoutError("deadline")
            reply = await asyncio.wait_for(self.link(addr).call(*argv), left_s)
            if not (isinstance(reply, ReplyError) and str(reply).startswith("TRYAGAIN LL schema")):
                return reply
            self.schema_retries += 1
            await asyncio.sleep(SCHEMA_RETRY_MS / 1000)

    def _feed(self, req: Request, a: SendApply | SendRead | SendRange, reply: Any) -> list[Action]:
        r = a.replica
        if isinstance(a, SendApply):
            if isinstance(req, WriteRequest):
                return req.on_ack(r)
            if isinstance(req, ReadRequest):
                return req.on_repaired(r)
            return []
        if isinstance(a, SendRead):
            assert isinstance(req, ReadRequest)
            if not a.full:
                return req.on_digest(r, reply)
            try:
                rec = None if reply is None else lww.decode(reply)
            except ValueError:
                return req.on_failure(r)
            if rec is not None and not self._skew_ok(rec.newest(), a.replica):
                return req.on_failure(r)
            return req.on_record(r, rec)
        assert isinstance(req, ScanRequest)
        try:
            items = {reply[i]: lww.decode(reply[i + 1]) for i in range(0, len(reply), 2)}
        except (ValueError, TypeError, IndexError):
            return req.on_failure(r)
        return req.on_range(r, items)

    def _skew_ok(self, v: Version, replica: int) -> bool:
        """False (counted; logged the first time a node is flagged) for a version more
        than the skew limit ahead of our clock."""
        first = v.node not in self.clock.flagged
        if self.clock.check(v, wall_ms()):
            return True
        self.skew_refused += 1
        if first:
            ahead = self.clock.flagged[v.node].ahead_ms
            self.log.warning(
                f"version {v.to_bytes().decode()} (node {node_name(self.topo, v.node)}) read"
                f" from replica {replica}"
                f" is {ahead} ms ahead of this clock (limit {self.clock.max_skew_ms} ms):"
                " refused, node flagged"
            )
        return False

    # -- hints -------------------------------------------------------------------------

    def _hint(self, addr: Addr, key: bytes, rec: Record) -> None:
        q = self.hints.get(addr)
        if q is None:
            lim = self.limits
            q = self.hints[addr] = HintQueue(lim.bytes_max, lim.count_max, lim.age_ms_max)
        q.put(key, rec, wall_ms())

    async def replay_loop(self) -> None:
        """Forever: probe each replica that has hints; when it answers, replay its
        hints in batches of ``HintQueue.replay_batch_max``, one batch in flight at a
        time and ``REPLAY_PAUSE_S`` between batches (the throttle), until the queue is
        empty or a batch has a failure (then at the next probe)."""
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            for addr, q in list(self.hints.items()):
                q.expire(wall_ms())
                if len(q) and addr not in self.replaying:
                    self.replaying.add(addr)
                    t = asyncio.get_running_loop().create_task(self._replay(addr, q))
                    t.add_done_callback(_quiet)

    async def _replay(self, addr: Addr, q: HintQueue) -> None:
        try:
            link = self.link(addr)
            try:
                pong = await asyncio.wait_for(link.call("PING"), self.timeout_ms / 1000)
            except (ConnectionError, TimeoutError):
                return
            if isinstance(pong, ReplyError):
                return
            while len(q) and await self._replay_batch(link, q):
                await asyncio.sleep(REPLAY_PAUSE_S)
        finally:
            self.replaying.discard(addr)

    async def _replay_batch(self, link: Link, q: HintQueue) -> bool:
        """One batch; False when any of it failed (put back for the next probe)."""
        batch = q.take_timed(wall_ms())
        futs = [link.call("LL.APPLY", k, lww.encode(rec)) for k, rec, _ in batch]
        ok = True
        left = len(batch)
        self.hints_in_flight += left
        try:
            for (key, rec, stored_ms), fut in zip(batch, futs, strict=True):
                try:
                    reply = await asyncio.wait_for(fut, self.timeout_ms / 1000)
                except (ConnectionError, TimeoutError):
                    reply = None
                left -= 1
                self.hints_in_flight -= 1
                if isinstance(reply, int):
                    self.hints_replayed += 1
                else:  # keeps its first-stored time: a hint that keeps failing still
                    q.put_back(key, rec, stored_ms)  # ages out (the tombstone grace)
                    ok = False
        finally:
            self.hints_in_flight -= left  # cancelled part-way
        return ok

    def hint_totals(self) -> tuple[int, int, int]:
        """(pending, bytes, dropped) over every replica; pending counts the hints being
        replayed until their replies come."""
        qs = list(self.hints.values())
        return (
            sum(len(q) for q in qs) + self.hints_in_flight,
            sum(q.size_bytes for q in qs),
            sum(q.dropped for q in qs) + self.hints_dropped_gone,
        )

    def close(self) -> None:
        for link in self.links.values():
            link.close()


def _quiet(t: asyncio.Task[Any]) -> None:
    if not t.cancelled():
        t.exception()
