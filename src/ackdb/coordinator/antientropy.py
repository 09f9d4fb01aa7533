"""The coordinator's anti-entropy and CONVERGE: the asyncio shell of
``leaderless/convergence.py`` (implements ``coordinator.ports.Convergence``).

SHELL MODULE: owns sockets to the replicas (one ``resp.client.Client`` per replica
address, authenticated with the shards' password, dropped on any error and made again
on the next call; of two callers that connect to one address at once, the second closes
its connection and shares the first's), the wall clock it feeds the schedule, and the
waits between rounds and between CONVERGE passes. Decides nothing: the schedule says
when a round starts and which jobs it runs; each job (``PairSync``, ``PurgeSweep``,
``KeyPass``) says what to call; this module carries the calls out, a wave at a time
(the calls a job returned together, pipelined per replica), and feeds every reply back
-- an error reply, a refused connection or a timeout (``call_timeout_s``) as a failure.

Rounds run one job at a time (a pair comparison, then the next), so anti-entropy holds
at most one job's calls in flight: the throttle, with each job's push budget.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from ..cluster.databases import Topology
from ..cluster.keyslot import key_slot
from ..leaderless import convergence as cv
from ..leaderless.antientropy import Call, PairSync, PurgeSweep
from ..leaderless.hints import HINT_AGE_MS_MAX_DEFAULT
from ..leaderless.tombstones import grace_ms
from ..resp.client import Client, ReplyError
from .ports import Convergence

# How long one wave of calls may take before its replicas count as unreachable.
CALL_TIMEOUT_S_DEFAULT = 5.0
# The longest a write request may be in flight (the coordinator's request deadline); a
# part of the tombstone grace (leaderless/tombstones.py).
REQUEST_TIMEOUT_MS_DEFAULT = 10_000

Job = PairSync | PurgeSweep | cv.KeyPass
Addr = tuple[str, int]


class Log(Protocol):
    def notice(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def partitions_of(topo: Topology) -> list[cv.Partition]:
    return [cv.Partition(s.index, tuple(i.node for i in s.instances())) for s in topo.db.shards]


class AntiEntropy:
    """See the module docstring."""

    def __init__(
        self,
        node: str,
        password: bytes | None,
        log: Log,
        *,
        interval_ms: int = cv.AE_INTERVAL_MS_DEFAULT,
        depth: int = cv.AE_DEPTH_DEFAULT,
        push_budget: int = cv.AE_PUSH_BUDGET_DEFAULT,
        call_timeout_s: float = CALL_TIMEOUT_S_DEFAULT,
        request_timeout_ms: int = REQUEST_TIMEOUT_MS_DEFAULT,
    ) -> None:
        self.node, self.password, self.log = node, password, log
        self.call_timeout_s = call_timeout_s
        self.request_timeout_ms = request_timeout_ms
        grace = grace_ms(HINT_AGE_MS_MAX_DEFAULT, request_timeout_ms, 0)  # until a topology
        self.schedule = cv.Schedule(node, grace, interval_ms, depth, push_budget)
        self.topo: Topology | None = None
        self._conns: dict[Addr, Client] = {}
        self._wake = asyncio.Event()

    # -- the Convergence protocol -------------------------------------------------------

    def set_topology(self, topo: Topology) -> None:
        self.topo = topo
        db = topo.db  # the database's hint age: the same grace on every coordinator
        self.schedule.grace_ms = grace_ms(
            db.hint_age_ms_max, self.request_timeout_ms, db.max_clock_skew_ms
        )
        self.schedule.set_partitions(partitions_of(topo))
        self._wake.set()

    async def run(self) -> None:
        """The schedule, until cancelled."""
        try:
            while True:
                wait = self.schedule.wait_ms(_now_ms()) if self.topo is not None else None
                if wait is None or wait > 0:
                    self._wake.clear()
                    timeout = None if wait is None else wait / 1000
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout)
                    except TimeoutError:
                        pass
                    continue
                await self.round()
        finally:
            await self.close()

    async def round(self) -> None:
        """One round of the schedule, now."""
        topo = self.topo
        assert topo is not None
        jobs = self.schedule.begin_round(_now_ms())
        try:
            for job in jobs:
                await self.drive(job, topo, self.call_timeout_s)
        finally:
            self.schedule.end_round(_now_ms(), jobs)
        for job in jobs:
            if isinstance(job, PairSync) and job.failed:
                down = ", ".join(self._name(topo, job.partition, r) for r in job.failed)
                self.log.notice(f"anti-entropy: partition {job.partition}: unreachable {down}")

    async def converge(self, key: bytes | None, timeout_ms: int) -> str | None:
        wait = cv.ConvergeWait(_now_ms(), timeout_ms)
        while True:
            topo = self.topo
            if topo is None:
                return "ERR anti-entropy has no topology yet"
            limit = min(self.call_timeout_s, max(wait.remaining_ms(_now_ms()), 50) / 1000)
            differs = await (self._key_pass(topo, key, limit) if key is not None else
                             self._db_pass(topo, limit))  # fmt: skip
            out = wait.after_pass(_now_ms(), differs)
            if isinstance(out, cv.Answer):
                return out.error
            await asyncio.sleep(out.wait_ms / 1000)

    def info(self) -> list[tuple[str, str]]:
        return self.schedule.info(_now_ms())

    # -- passes -----------------------------------------------------------------------

    async def _key_pass(self, topo: Topology, key: bytes, limit_s: float) -> str | None:
        shard = topo.db.shard_of_slot(key_slot(key))
        insts = shard.instances()
        job = cv.KeyPass(shard.index, len(insts), key)
        await self.drive(job, topo, limit_s)
        if job.agreed:
            return None
        return job.describe(tuple(self._name(topo, shard.index, r) for r in range(len(insts))))

    async def _db_pass(self, topo: Topology, limit_s: float) -> str | None:
        parts = partitions_of(topo)
        jobs = cv.db_pass(parts, self.schedule.depth)
        for job in jobs:
            await self.drive(job, topo, limit_s)
        if cv.db_pass_agreed(jobs):
            return None
        named = [cv.Partition(p.index, tuple(self._name(topo, p.index, r) for r in
                                              range(len(p.nodes)))) for p in parts]  # fmt: skip
        return cv.describe_db_pass(jobs, named)

    def _name(self, topo: Topology, partition: int, replica: int) -> str:
        inst = topo.db.shards[partition].instances()[replica]
        host, port = topo.addr(inst)
        return f"{inst.node} ({host}:{port})"

    # -- carrying out calls -----------------------------------------------------------

    async def drive(self, job: Job, topo: Topology, limit_s: float) -> None:
        """Run ``job`` to its end: waves of calls, replies fed back."""
        pending = job.start()
        while pending:
            by_addr: dict[Addr, list[Call]] = {}
            for call in pending:
                inst = topo.db.shards[call.partition].instances()[call.replica]
                by_addr.setdefault(topo.addr(inst), []).append(call)
            waves = await asyncio.gather(
                *(self._pipeline(addr, calls, limit_s) for addr, calls in by_addr.items())
            )
            pending = []
            for calls, replies in zip(by_addr.values(), waves, strict=True):
                for call, reply in zip(calls, replies, strict=True):
                    failed = reply is _FAILED or isinstance(reply, ReplyError)
                    pending += job.on_failure(call) if failed else job.on_reply(call, reply)

    async def _pipeline(self, addr: Addr, calls: list[Call], limit_s: float) -> list[Any]:
        conn: Client | None = None
        try:
            conn = await asyncio.wait_for(self._conn(addr), limit_s)
            return await asyncio.wait_for(conn.pipeline([c.argv for c in calls]), limit_s)
        except (OSError, ConnectionError, TimeoutError, ReplyError):
            # A reply cut short leaves the stream mid-reply: that connection is done.
            if conn is not None and self._conns.get(addr) is conn:
                await self._drop(addr)
            return [_FAILED] * len(calls)

    async def _conn(self, addr: Addr) -> Client:
        conn = self._conns.get(addr)
        if conn is not None:
            return conn
        conn = await Client.connect(f"{addr[0]}:{addr[1]}", timeout_s=self.call_timeout_s)
        if self.password:
            try:
                await conn.call(b"AUTH", self.password)
            except BaseException:
                await conn.close()
                raise
        have = self._conns.get(addr)
        if have is not None:
            # A round and a CONVERGE (or two CONVERGEs) connected at once: share the one
            # pooled, close ours -- overwriting it would drop a connection unclosed.
            await conn.close()
            return have
        self._conns[addr] = conn
        return conn

    async def _drop(self, addr: Addr) -> None:
        conn = self._conns.pop(addr, None)
        if conn is not None:
            await conn.close()

    async def close(self) -> None:
        for addr in list(self._conns):
            await self._drop(addr)


_FAILED = object()


def as_convergence(ae: AntiEntropy) -> Convergence:
    """``AntiEntropy`` is the coordinator's ``Convergence`` (checked by mypy here)."""
    return ae
