"""A seeded world of leaderless replicas, coordinators and clients (tests/sim).

Owns: ``SimCoordinator`` -- the driver that carries out the real coordinator cores'
actions (``leaderless/coordinator.py``) over ``SimNet``, keeps hints
(``leaderless/hints.py``) and runs anti-entropy (``leaderless/antientropy.py``) and
tombstone purges (``leaderless/tombstones.py``) -- and ``LlWorld``, which builds one
world from a seed, runs clients and faults, and records a history for the checks in
tests/sim/test_leaderless_sim.py. Never reads a real clock; one seed, one run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hiredis

from ..keyspace import lww
from ..keyspace.lww import Record, Version
from ..leaderless import antientropy as ae
from ..leaderless.coordinator import (
    Action,
    Done,
    ReadRequest,
    ScanRequest,
    SendApply,
    SendRange,
    SendRead,
    StoreHint,
    WriteRequest,
)
from ..leaderless.hints import HintQueue
from ..leaderless.hlc import HybridClock
from ..leaderless.levels import Level
from .events import EventQueue
from .ll_replica import SimNet, SimReplica

REQUEST_TIMEOUT_MS = 60
MAX_SKEW_MS = 500
TREE_DEPTH = 4
Request = WriteRequest | ReadRequest | ScanRequest


@dataclass(slots=True)
class Op:
    """One client operation in the history."""

    kind: str  # write | read | scan
    key: bytes
    level: Level
    start_ms: int
    coord: int
    record: Record | None = None  # write: what was written; read: what was returned
    end_ms: int | None = None
    ok: bool = False
    request: Any = None
    keys: list[bytes] = field(default_factory=list)


class SimCoordinator:
    def __init__(self, world: LlWorld, index: int, skew_ms: int) -> None:
        self.w, self.index, self.skew_ms = world, index, skew_ms
        self.clock = HybridClock(node=100 + index, max_skew_ms=MAX_SKEW_MS)
        self.hints = {r: HintQueue(hint_count_max=64) for r in range(world.n)}
        self.replaying: set[int] = set()

    def wall(self) -> int:
        return self.w.q.now + self.skew_ms

    # -- one RPC ---------------------------------------------------------------------

    def rpc(
        self,
        replica: int,
        argv: list[bytes],
        ok: Callable[[Any], None],
        fail: Callable[[bool], None],
    ) -> None:
        """``fail(refused_for_skew)`` on an error reply, a refusal or a timeout."""
        state = {"open": True}

        def reply(value: Any) -> None:
            if state["open"]:
                state["open"] = False
                if isinstance(value, hiredis.ReplyError):
                    fail(str(value).startswith("ERR LLSKEW"))
                else:
                    ok(value)

        def lost() -> None:
            if state["open"]:
                state["open"] = False
                fail(False)

        self.w.net.request(self.index, replica, argv, reply, lost)
        self.w.q.schedule(REQUEST_TIMEOUT_MS, lost)

    # -- running requests ------------------------------------------------------------

    def run(self, req: Request, op: Op, done: Callable[[Done], None]) -> None:
        self.carry(req, req.start(), done)
        self.w.q.schedule(REQUEST_TIMEOUT_MS, self._tick, req, done)

    def _tick(self, req: Request, done: Callable[[Done], None]) -> None:
        self.carry(req, req.tick(self.w.q.now), done)

    def carry(self, req: Request, actions: list[Action], done: Callable[[Done], None]) -> None:
        for a in actions:
            if isinstance(a, SendApply):
                self._send_apply(req, a, done)
            elif isinstance(a, SendRead):
                self._send_read(req, a, done)
            elif isinstance(a, SendRange):
                self._send_range(req, a, done)
            elif isinstance(a, StoreHint):
                self.hints[a.replica].put(a.key, a.record, self.wall())
            else:
                done(a)

    def _apply_argv(self, key: bytes, rec: Record) -> list[bytes]:
        return [b"LL.APPLY", key, lww.encode(rec), b"MAXSKEW", b"%d" % MAX_SKEW_MS]

    def _send_apply(self, req: Request, a: SendApply, done: Callable[[Done], None]) -> None:
        def ok(_: Any) -> None:
            if isinstance(req, WriteRequest):
                self.carry(req, req.on_ack(a.replica), done)
            elif isinstance(req, ReadRequest):
                self.carry(req, req.on_repaired(a.replica), done)

        def fail(skew: bool) -> None:
            if isinstance(req, WriteRequest):
                self.carry(req, req.on_failure(a.replica, hint=not skew), done)
            elif isinstance(req, ReadRequest):
                self.carry(req, req.on_failure(a.replica), done)

        self.rpc(a.replica, self._apply_argv(a.key, a.record), ok, fail)

    def _send_read(self, req: Request, a: SendRead, done: Callable[[Done], None]) -> None:
        assert isinstance(req, ReadRequest)

        def ok(value: Any) -> None:
            if a.full:
                rec = None if value is None else lww.decode(value)
                if rec is not None:
                    self.clock.observe(rec.newest(), self.wall())
                self.carry(req, req.on_record(a.replica, rec), done)
            else:
                self.carry(req, req.on_digest(a.replica, value), done)

        argv = [b"LL.GET" if a.full else b"LL.DIGEST", a.key]
        self.rpc(a.replica, argv, ok, lambda _: self.carry(req, req.on_failure(a.replica), done))

    def _send_range(self, req: Request, a: SendRange, done: Callable[[Done], None]) -> None:
        assert isinstance(req, ScanRequest)

        def ok(flat: Any) -> None:
            items = {flat[i]: lww.decode(flat[i + 1]) for i in range(0, len(flat), 2)}
            self.carry(req, req.on_range(a.replica, items), done)

        argv = [b"LL.RANGE", b"%d" % a.depth, b"%d" % a.lo, b"%d" % a.hi]
        self.rpc(a.replica, argv, ok, lambda _: self.carry(req, req.on_failure(a.replica), done))

    # -- hints -----------------------------------------------------------------------

    def replay_hints(self) -> None:
        """One throttled batch per replica that is not already being replayed."""
        for r, q in self.hints.items():
            if r in self.replaying or not len(q):
                continue
            batch = q.take(self.wall())
            self.replaying.add(r)
            left = {"n": len(batch)}
            for key, rec in batch:
                self._replay_one(r, key, rec, left)

    def _replay_one(self, r: int, key: bytes, rec: Record, left: dict[str, int]) -> None:
        def finish() -> None:
            left["n"] -= 1
            if not left["n"]:
                self.replaying.discard(r)

        def fail(skew: bool) -> None:
            if not skew:
                self.hints[r].put(key, rec, self.wall())
            finish()

        self.rpc(r, self._apply_argv(key, rec), lambda _: finish(), fail)

    # -- anti-entropy ----------------------------------------------------------------

    def sync_pair(self, a: int, b: int, then: Callable[[], None]) -> None:
        """Compare the trees of replicas a and b; push the merge of differing ranges."""
        trees: dict[int, ae.HashTree] = {}

        def got_tree(r: int, raw: Any) -> None:
            trees[r] = ae.HashTree(
                [int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw), 8)]
            )
            if len(trees) == 2:
                ranges = ae.leaf_ranges(ae.differing_leaves(trees[a], trees[b]))
                self._sync_ranges(a, b, ranges, then)

        for r in (a, b):
            self.rpc(
                r,
                [b"LL.TREE", b"%d" % TREE_DEPTH],
                lambda raw, r=r: got_tree(r, raw),  # type: ignore[misc]
                lambda _: then(),
            )

    def _sync_ranges(
        self, a: int, b: int, ranges: list[tuple[int, int]], then: Callable[[], None]
    ) -> None:
        if not ranges:
            then()
            return
        lo, hi = ranges[0]
        pages: dict[int, dict[bytes, Record]] = {}

        def got(r: int, flat: Any) -> None:
            pages[r] = {flat[i]: lww.decode(flat[i + 1]) for i in range(0, len(flat), 2)}
            if len(pages) == 2:
                to_a, to_b = ae.plan_sync(pages[a], pages[b])
                for target, push in ((a, to_a), (b, to_b)):
                    for key, rec in push.items():
                        self.rpc(target, self._apply_argv(key, rec), lambda _: None, lambda _: None)
                self._sync_ranges(a, b, ranges[1:], then)

        argv = [b"LL.RANGE", b"%d" % TREE_DEPTH, b"%d" % lo, b"%d" % hi]
        for r in (a, b):
            self.rpc(r, argv, lambda flat, r=r: got(r, flat), lambda _: then())  # type: ignore[misc]


class LlWorld:
    """Replicas, coordinators and the history of one seed."""

    def __init__(self, seed: int, n: int = 3, coordinators: int = 3) -> None:
        self.seed, self.n = seed, n
        self.rng = random.Random(seed)
        self.q = EventQueue()
        self.q.now = 1_000_000  # wall clocks start far from zero, like real ones
        skews = [self.rng.randint(-150, 150) for _ in range(n)]
        self.replicas = [SimReplica(i, self.q, self.rng, skews[i]) for i in range(n)]
        self.net = SimNet(self.q, self.rng, self.replicas)
        cskews = [self.rng.randint(-150, 150) for _ in range(coordinators)]
        if self.rng.random() < 0.5:
            cskews[-1] = 5_000  # a coordinator whose clock runs far ahead: refused
        self.coords = [SimCoordinator(self, i, s) for i, s in enumerate(cskews)]
        self.history: list[Op] = []
        self.max_coord_skew_ms = max(cskews) - min(cskews)

    def run_until(self, t_ms: int) -> None:
        while len(self.q) and self.q._q[0][0] <= t_ms:
            fn, args = self.q.pop()
            fn(*args)
        self.q.now = max(self.q.now, t_ms)

    # -- client operations -----------------------------------------------------------

    def write(self, coord: int, key: bytes, make: Callable[[Version], Record], level: Level,
              then: Callable[[Op], None]) -> None:  # fmt: skip
        c = self.coords[coord]
        rec = make(c.clock.now(c.wall()))
        req = WriteRequest(key, rec, tuple(range(self.n)), level, self.q.now + REQUEST_TIMEOUT_MS)
        op = Op("write", key, level, self.q.now, coord, rec, request=req)
        self.history.append(op)
        c.run(req, op, lambda d: self._end(op, d, then))

    def read(self, coord: int, key: bytes, level: Level, then: Callable[[Op], None]) -> None:
        order = list(range(self.n))
        self.rng.shuffle(order)
        req = ReadRequest(key, tuple(order), level, self.q.now + REQUEST_TIMEOUT_MS)
        op = Op("read", key, level, self.q.now, coord, request=req)
        self.history.append(op)
        self.coords[coord].run(req, op, lambda d: self._end(op, d, then))

    def scan(self, coord: int, level: Level, then: Callable[[Op], None]) -> None:
        depth = TREE_DEPTH
        req = ScanRequest(tuple(range(self.n)), level, depth, 0, 1 << depth, self.q.now + 60)
        op = Op("scan", b"", level, self.q.now, coord, request=req)
        self.history.append(op)
        self.coords[coord].run(req, op, lambda d: self._end(op, d, then))

    def _end(self, op: Op, d: Done, then: Callable[[Op], None]) -> None:
        assert op.end_ms is None, "a request replied twice"
        op.end_ms, op.ok = self.q.now, d.error is None
        if op.kind == "read":
            op.record = d.record
        elif op.kind == "scan" and op.ok:
            op.keys = op.request.live_keys()
        then(op)
