"""A seeded world of leaderless replicas, coordinators and clients (tests/sim).

Owns: ``SimCoordinator`` -- the driver that carries out the real coordinator cores'
actions (``leaderless/coordinator.py``) over ``SimNet``, keeps hints
(``leaderless/hints.py``), and runs the real anti-entropy schedule
(``leaderless/convergence.py``: its rounds of pair comparisons and tombstone purge
sweeps, and CONVERGE's passes) by carrying out the jobs' calls -- and ``LlWorld``, which
builds one world from a seed, runs clients and faults, and records a history (with every
purge sent, and every write's session token) for the checks in
tests/sim/test_leaderless_sim.py. A token read carries out the steps of the real
``TokenRead`` (leaderless/tokenread.py, as the coordinator's endpoint does): its reads
through a coordinator, its waits on the event queue's clock. A paused coordinator
(a long GC pause, SIGSTOP) starts nothing and handles no reply or timeout until it
resumes; then it works through them in order. Never reads a real clock; one seed, one
run.

Node layout: coordinator i runs on node ``c<i>``; replica j runs on node ``c<j mod
coordinators>``, so the schedule's ring pairs (each node compares its replica with the
next) cover every replica pair of the ring even with more replicas than coordinators.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hiredis

from ..keyspace import lww
from ..keyspace.lww import Record, Version
from ..leaderless import convergence as cv
from ..leaderless.antientropy import Call, PairSync, PurgeSweep
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
from ..leaderless.session import Token
from ..leaderless.tokenread import Answer, Sleep, Step, TokenRead, read_order
from ..leaderless.tombstones import grace_ms
from .events import EventQueue
from .ll_replica import SimNet, SimReplica

REQUEST_TIMEOUT_MS = 60
MAX_SKEW_MS = 500
TREE_DEPTH = 4
# Hints older than this are dropped (anti-entropy carries their writes): short, so the
# tombstone grace is short enough for purges to run while faults still happen.
HINT_AGE_MS_MAX = 500
GRACE_MS = grace_ms(HINT_AGE_MS_MAX, REQUEST_TIMEOUT_MS, MAX_SKEW_MS)
AE_INTERVAL_MS = 400
AE_PUSH_BUDGET = 64
PURGE_WINDOW = 8  # leaves per sweep: the whole tree of 16 leaves in 2 rounds
TOKEN_RETRY_MS = 10  # a token read's rounds, until one request timeout
Request = WriteRequest | ReadRequest | ScanRequest
Job = PairSync | PurgeSweep | cv.KeyPass


@dataclass(slots=True)
class Op:
    """One client operation in the history."""

    kind: str  # write | read | scan | token (a read at ONE presenting a session token)
    key: bytes
    level: Level
    start_ms: int
    coord: int
    record: Record | None = None  # write: what was written; read: what was returned
    end_ms: int | None = None
    ok: bool = False
    error: Any = None  # Done.error of a failed request
    request: Any = None
    keys: list[bytes] = field(default_factory=list)
    token: Token | None = None  # write: its token (acknowledged); token: the one presented
    wrote: Record | None = None  # token: what the token's write wrote


@dataclass(frozen=True, slots=True)
class Purge:
    """An LL.PURGE a coordinator sent (the checks allow the key's absence after it)."""

    key: bytes
    version: Version
    at_ms: int


class SimCoordinator:
    def __init__(self, world: LlWorld, index: int, skew_ms: int) -> None:
        self.w, self.index, self.skew_ms = world, index, skew_ms
        self.clock = HybridClock(node=100 + index, max_skew_ms=MAX_SKEW_MS)
        self.hints = {
            r: HintQueue(hint_count_max=64, hint_age_ms_max=HINT_AGE_MS_MAX) for r in range(world.n)
        }
        self.replaying: set[int] = set()
        self.paused_until = 0
        self.schedule = cv.Schedule(
            f"c{index}", GRACE_MS, AE_INTERVAL_MS, TREE_DEPTH, AE_PUSH_BUDGET, PURGE_WINDOW
        )
        self.schedule.set_partitions([world.partition])

    def wall(self) -> int:
        return self.w.q.now + self.skew_ms

    def later(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` now, or when this coordinator resumes from a pause."""
        wait = self.paused_until - self.w.q.now
        if wait > 0:
            self.w.q.schedule(wait, self.later, fn, *args)
        else:
            fn(*args)

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
            if self.paused_until > self.w.q.now:
                self.later(reply, value)
            elif state["open"]:
                state["open"] = False
                if isinstance(value, hiredis.ReplyError):
                    fail(str(value).startswith("ERR LLSKEW"))
                else:
                    ok(value)

        def lost() -> None:
            if self.paused_until > self.w.q.now:
                self.later(lost)
            elif state["open"]:
                state["open"] = False
                fail(False)

        self.w.net.request(self.index, replica, argv, reply, lost)
        self.w.q.schedule(REQUEST_TIMEOUT_MS, lost)

    # -- running requests ------------------------------------------------------------

    def run(self, req: Request, op: Op, done: Callable[[Done], None]) -> None:
        self.carry(req, req.start(), done)
        self.w.q.schedule(REQUEST_TIMEOUT_MS, self._tick, req, done)

    def _tick(self, req: Request, done: Callable[[Done], None]) -> None:
        self.later(lambda: self.carry(req, req.tick(self.w.q.now), done))

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
            batch = q.take_timed(self.wall())
            if not batch:  # every hint aged out: nothing in flight to wait for
                continue
            self.replaying.add(r)
            left = {"n": len(batch)}
            for key, rec, stored_ms in batch:
                self._replay_one(r, key, rec, stored_ms, left)

    def _replay_one(
        self, r: int, key: bytes, rec: Record, stored_ms: int, left: dict[str, int]
    ) -> None:
        def finish() -> None:
            left["n"] -= 1
            if not left["n"]:
                self.replaying.discard(r)

        def fail(skew: bool) -> None:
            if not skew:  # back with its first-stored time: its age keeps counting
                self.hints[r].put_back(key, rec, stored_ms)
            finish()

        self.rpc(r, self._apply_argv(key, rec), lambda _: finish(), fail)

    # -- anti-entropy: the real schedule's jobs --------------------------------------

    def drive(self, job: Job, then: Callable[[], None]) -> None:
        """Carry out ``job``'s calls (each reply fed back); ``then()`` when none is left."""
        out = {"n": 0}

        def send(calls: list[Call]) -> None:
            for call in calls:
                out["n"] += 1
                if call.argv[0] == b"LL.PURGE":
                    purge = Purge(call.argv[1], Version.parse(call.argv[2]), self.w.q.now)
                    self.w.purges.append(purge)
                self.rpc(
                    self.w.replica_of(call),
                    list(call.argv),
                    lambda v, c=call: answered(job.on_reply(c, v)),  # type: ignore[misc]
                    lambda _, c=call: answered(job.on_failure(c)),  # type: ignore[misc]
                )

        def answered(more: list[Call]) -> None:
            out["n"] -= 1
            send(more)
            if not out["n"]:
                then()

        first = job.start()
        if not first:
            then()
        send(first)

    def drive_all(self, jobs: list[Any], then: Callable[[], None]) -> None:
        """Run ``jobs`` one after the other (a round holds one job's calls at a time)."""
        if not jobs:
            then()
            return
        self.drive(jobs[0], lambda: self.drive_all(jobs[1:], then))

    def start_schedule(self) -> None:
        """Rounds whenever the schedule says one is due (the coordinator's ``run``)."""

        def due() -> None:
            wait = self.schedule.wait_ms(self.wall())
            if wait:
                self.w.q.schedule(wait, self.later, due)
                return
            jobs = self.schedule.begin_round(self.wall())

            def ended() -> None:
                self.schedule.end_round(self.wall(), jobs)
                self.later(due)

            self.drive_all(jobs, ended)

        self.later(due)


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
        nodes = tuple(f"c{j % coordinators}" for j in range(n))
        self.partition = cv.Partition(0, nodes)
        # The node ids session tokens name: one per replica (``nodes`` repeats a node
        # when there are more replicas than coordinators).
        self.replica_nodes = tuple(f"r{j}" for j in range(n))
        self.purges: list[Purge] = []
        self.safety_end_ms = 0  # set by the test: when the faults stop
        self.coords = [SimCoordinator(self, i, s) for i, s in enumerate(cskews)]
        self.history: list[Op] = []
        self.max_coord_skew_ms = max(cskews) - min(cskews)

    def replica_of(self, call: Call) -> int:
        assert call.partition == 0
        return call.replica

    def run_until(self, t_ms: int) -> None:
        while len(self.q) and self.q._q[0][0] <= t_ms:
            fn, args = self.q.pop()
            fn(*args)
        self.q.now = max(self.q.now, t_ms)

    # -- client operations -----------------------------------------------------------

    def write(self, coord: int, key: bytes, make: Callable[[Version], Record], level: Level,
              then: Callable[[Op], None]) -> None:  # fmt: skip
        c = self.coords[coord]
        if c.paused_until > self.q.now:
            c.later(self.write, coord, key, make, level, then)
            return
        rec = make(c.clock.now(c.wall()))
        req = WriteRequest(key, rec, tuple(range(self.n)), level, self.q.now + REQUEST_TIMEOUT_MS)
        op = Op("write", key, level, self.q.now, coord, rec, request=req)
        self.history.append(op)
        c.run(req, op, lambda d: self._end(op, d, then))

    def read(self, coord: int, key: bytes, level: Level, then: Callable[[Op], None]) -> None:
        if self.coords[coord].paused_until > self.q.now:
            self.coords[coord].later(self.read, coord, key, level, then)
            return
        order = list(range(self.n))
        self.rng.shuffle(order)
        req = ReadRequest(key, tuple(order), level, self.q.now + REQUEST_TIMEOUT_MS)
        op = Op("read", key, level, self.q.now, coord, request=req)
        self.history.append(op)
        self.coords[coord].run(req, op, lambda d: self._end(op, d, then))

    def scan(self, coord: int, level: Level, then: Callable[[Op], None]) -> None:
        if self.coords[coord].paused_until > self.q.now:
            self.coords[coord].later(self.scan, coord, level, then)
            return
        depth = TREE_DEPTH
        req = ScanRequest(tuple(range(self.n)), level, depth, 0, 1 << depth, self.q.now + 60)
        op = Op("scan", b"", level, self.q.now, coord, request=req)
        self.history.append(op)
        self.coords[coord].run(req, op, lambda d: self._end(op, d, then))

    def token_read(
        self, coord: int, token: Token, wrote: Record, then: Callable[[Op], None]
    ) -> None:
        """A read at ONE presenting ``token`` (of the write of ``wrote``): the steps of
        the real ``TokenRead``, its reads run by the coordinator, its waits on its clock."""
        c = self.coords[coord]
        if c.paused_until > self.q.now:
            c.later(self.token_read, coord, token, wrote, then)
            return
        deadline = c.wall() + REQUEST_TIMEOUT_MS
        plan = TokenRead(token, self.replica_nodes, deadline, GRACE_MS, TOKEN_RETRY_MS)
        op = Op("token", token.key, Level.ONE, self.q.now, coord, token=token, wrote=wrote)
        self.history.append(op)

        def step(s: Step) -> None:
            if isinstance(s, Answer):
                self._end(op, s.done, then)
            elif isinstance(s, Sleep):
                self.q.schedule(s.ms, c.later, lambda: step(plan.resume()))
            else:
                order = read_order(s.replica, tuple(range(self.n)))
                req = ReadRequest(token.key, order, Level.ONE, self.q.now + REQUEST_TIMEOUT_MS)
                op.request = req
                c.run(req, op, lambda d: step(plan.on_done(d, c.wall())))

        step(plan.start())

    def _end(self, op: Op, d: Done, then: Callable[[Op], None]) -> None:
        assert op.end_ms is None, "a request replied twice"
        op.end_ms, op.ok, op.error = self.q.now, d.error is None, d.error
        if op.kind in ("read", "token"):
            op.record = d.record
        elif op.kind == "write" and op.ok:
            assert op.record is not None
            nodes = tuple(self.replica_nodes[i] for i in d.receipt.answered)
            op.token = Token.of_write(op.key, op.record, nodes)
        elif op.kind == "scan" and op.ok:
            op.keys = op.request.live_keys()
        then(op)
