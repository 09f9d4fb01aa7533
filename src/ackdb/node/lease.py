"""The node's lease renewal loop (issue 15, docs/failover.md "Leases"): the primaries this
node runs accept writes only while the Raft majority keeps confirming that they still are
the primaries.

Owns: one asyncio task. Every ``lease_renew_ms`` of the strictest profile of the
databases with a primary here, it starts a linearizable read (ReadIndex through the Raft
member, ``read``) at local monotonic time ``a``; when the read completes it asks the
*applied* metadata which local instances are the primaries of shards in state OK
(``cluster.shardspec.lease_targets``) and sends each ``ACKDB.LEASE <epoch> <a +
lease_ms>`` (CLOCK_MONOTONIC milliseconds: the agent and its shards share one host, so one
clock) over the supervisor's connection to it (``call``). A read that fails, or does not
complete before the shortest lease it could grant would already be over, renews nothing:
the shards fence themselves when their deadline passes. Starting the lease at ``a``
(before the read) is what makes it safe: the controller waits ``lease_ms`` (plus drift
and margin) past the last time it saw this node, which is after ``a``.

Decides nothing about who is primary (the metadata does) nor when a shard is fenced (the
shard does, from its deadline). Logs a lost renewal once, and once again when leases are
renewed again.

States: NEW -> RUNNING (start: the loop task) -> STOPPED (stop: the task cancelled; the
leases run out by themselves).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ackdb.cluster import dbops
from ackdb.cluster.commands import RecordKind
from ackdb.cluster.failover import PROFILES, Profile, profile_of
from ackdb.cluster.leases import lease_targets
from ackdb.cluster.metadata import MetadataStore
from ackdb.resp.client import ReplyError
from ackdb.server.log import Log

DEFAULT_PROFILE = "high"

Read = Callable[[Callable[[], None], Callable[[str], None]], None]
Call = Callable[..., Awaitable[Any]]


def now_ms() -> int:
    """CLOCK_MONOTONIC in milliseconds: the clock the shards compare deadlines with."""
    return int(time.monotonic() * 1000)


class ReadFailed(Exception):
    pass


class LeaseRenewer:
    name = "lease-renewer"

    def __init__(
        self,
        node_id: str,
        log: Log,
        meta: Callable[[], MetadataStore],
        read: Read,
        call: Call,
    ) -> None:
        self.node_id = node_id
        self.log = log
        self.meta = meta
        self.read = read
        self.call = call  # call(unit, *args): one command on the unit's shard connection
        self.rounds = 0
        self.renewed = 0  # leases sent and accepted
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._bodies: tuple[bytes, ...] = ()  # the database records last looked at
        self._held: frozenset[tuple[str, int]] = frozenset()  # targets of the last look
        self._lost = False  # a renewal failed and nothing has been renewed since
        self._failing: set[str] = set()  # units whose last ACKDB.LEASE failed

    # -- Service ----------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def drain(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def on_pass(self) -> None:
        """After a Raft pass: when the local primaries changed (a promotion here), renew
        at once instead of at the next period (a promoted shard is fenced until its
        first lease)."""
        meta = self.meta()
        bodies = tuple(r.body for r in meta.record_list(RecordKind.DATABASE))
        if bodies == self._bodies:
            return
        self._bodies = bodies
        held = frozenset(lease_targets(meta, self.node_id))
        if held - self._held:
            self._wake.set()
        self._held = held

    # -- the loop ---------------------------------------------------------------------

    def _profiles(self, meta: MetadataStore) -> dict[int, Profile]:
        """Each database's failover profile, by uid."""
        return {db.uid: profile_of(db) for db in dbops.databases(meta)}

    def _targets(self, meta: MetadataStore) -> list[tuple[str, int, int]]:
        """(unit, epoch, lease_ms) of every local primary the metadata says gets a lease."""
        profiles = self._profiles(meta)
        out = []
        for unit, epoch in lease_targets(meta, self.node_id):
            uid = int(unit.rpartition("/")[2].partition("-")[0])
            p = profiles.get(uid, PROFILES[DEFAULT_PROFILE])
            out.append((unit, epoch, p.lease_ms))
        return out

    def _period_ms(self, meta: MetadataStore) -> int:
        profiles = self._profiles(meta)
        renew = [profiles[db].lease_renew_ms for db in profiles]
        return min(renew, default=PROFILES[DEFAULT_PROFILE].lease_renew_ms)

    async def _loop(self) -> None:
        while True:
            started = now_ms()
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.warning("Unexpected error renewing the leases", exc=True)
            wait_ms = started + self._period_ms(self.meta()) - now_ms()
            if wait_ms > 0 and not self._wake.is_set():
                try:
                    await asyncio.wait_for(self._wake.wait(), wait_ms / 1000)
                except TimeoutError:
                    pass
            self._wake.clear()

    async def _round(self) -> None:
        local = self._targets(self.meta())
        if not local:
            self._lost = False
            return  # no primary here (as far as this member knows): nothing to renew
        self.rounds += 1
        a = now_ms()
        shortest = min(lease_ms for _, _, lease_ms in local)
        try:
            targets = await asyncio.wait_for(self._confirmed_targets(), shortest / 1000)
        except (TimeoutError, ReadFailed) as e:
            why = str(e) or f"no answer within {shortest} ms"
            self._lose(f"the Raft read failed ({why})")
            return
        now = now_ms()
        sends = [
            self._send(unit, epoch, a + lease_ms)
            for unit, epoch, lease_ms in targets
            if a + lease_ms > now
        ]
        if not sends:
            if targets:
                self._lose("the Raft read completed after the leases it could grant")
            return
        results = await asyncio.gather(*sends)
        if any(results) and self._lost:
            self._lost = False
            self.log.notice("Leases renewed again: the primaries here accept writes")

    async def _confirmed_targets(self) -> list[tuple[str, int, int]]:
        """The targets by the metadata as of a linearizable read started now."""
        fut: asyncio.Future[list[tuple[str, int, int]]] = asyncio.get_running_loop().create_future()

        def run() -> None:
            if not fut.done():
                fut.set_result(self._targets(self.meta()))

        def failed(why: str) -> None:
            if not fut.done():
                fut.set_exception(ReadFailed(why))

        self.read(run, failed)
        return await fut

    async def _send(self, unit: str, epoch: int, deadline_ms: int) -> bool:
        # An answer after the deadline it carries is worth nothing: give up then.
        timeout_s = max(deadline_ms - now_ms(), 1) / 1000
        try:
            await asyncio.wait_for(
                self.call(unit, "ACKDB.LEASE", str(epoch), str(deadline_ms)), timeout_s
            )
        except (OSError, ConnectionError, TimeoutError, ReplyError, LookupError) as e:
            if unit not in self._failing:
                self._failing.add(unit)
                self.log.warning(f"{unit}: lease not renewed ({e!r}); it fences itself")
            return False
        self.renewed += 1
        if unit in self._failing:
            self._failing.discard(unit)
            self.log.notice(f"{unit}: lease renewed again (epoch {epoch})")
        return True

    def _lose(self, why: str) -> None:
        if not self._lost:
            self._lost = True
            self.log.warning(
                f"Leases not renewed: {why}; the primaries on this node stop accepting "
                "writes when their lease runs out"
            )
