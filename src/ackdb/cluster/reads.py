"""Linearizable reads through ReadIndex (Raft §6.4): batching, retrying, timing out.

Owns: the reads waiting on this member. A read is served from the local state machine
once it has applied the commit index the leader confirmed (with a heartbeat quorum)
AFTER the read arrived; on a follower the core forwards the request to the leader, so
every member serves linearizable reads without sending the read itself anywhere.

All reads that arrive in one pass of the event loop share one ``read_index`` request
(etcd's linearizableReadLoop does the same): one heartbeat round answers them all.

States of a read: WAITING (no request for it yet, e.g. no leader) -> ASKED (a context was
sent, no ReadState yet; asked again after ``retry_ms``) -> CONFIRMED (has an index,
waits for apply) -> served; or failed at its deadline. Never does IO; time is ``now_ms``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from ackdb.consensus import ProposalDropped, ReadState

# Reads waiting on one member (count); beyond it new reads fail at once.
PENDING_MAX_READS = 100_000


@dataclass(order=True)
class Read:
    deadline_ms: int
    run: Callable[[], None] = field(compare=False)
    fail: Callable[[str], None] = field(compare=False)


class Reads:
    def __init__(
        self,
        read_index: Callable[[bytes], None],
        retry_ms: int = 500,
        timeout_ms: int = 5000,
    ) -> None:
        self.read_index = read_index
        self.retry_ms = retry_ms
        self.timeout_ms = timeout_ms
        self.waiting: list[Read] = []
        self.asked: dict[bytes, tuple[int, list[Read]]] = {}  # ctx -> (asked at, reads)
        self.confirmed: list[tuple[int, int, Read]] = []  # heap of (index, n, read)
        self._ctx = itertools.count(1)
        self._n = itertools.count()
        self.leader_known = False
        self.served = 0

    def __len__(self) -> int:
        return len(self.waiting) + sum(len(r) for _, r in self.asked.values()) + len(self.confirmed)

    def add(self, run: Callable[[], None], fail: Callable[[str], None], now_ms: int) -> None:
        if len(self) >= PENDING_MAX_READS:
            fail("TRYAGAIN too many reads pending on this node")
            return
        self.waiting.append(Read(now_ms + self.timeout_ms, run, fail))

    def flush(self, now_ms: int) -> None:
        """Ask once for everything that waits (call at the end of a pass)."""
        if not self.waiting:
            return
        ctx = next(self._ctx).to_bytes(8, "big")
        try:
            self.read_index(ctx)
        except ProposalDropped:
            return  # no leader: wait (tick retries, the deadline fails them)
        self.asked[ctx] = (now_ms, self.waiting)
        self.waiting = []

    def on_read_state(self, rs: ReadState) -> None:
        entry = self.asked.pop(rs.ctx, None)
        if entry is None:
            return  # a late answer to a request already retried
        for r in entry[1]:
            heapq.heappush(self.confirmed, (rs.index, next(self._n), r))

    def on_applied(self, applied_index: int) -> None:
        c = self.confirmed
        while c and c[0][0] <= applied_index:
            _, _, r = heapq.heappop(c)
            self.served += 1
            r.run()

    def tick(self, now_ms: int) -> None:
        for ctx, (asked_ms, reads) in list(self.asked.items()):
            if now_ms - asked_ms >= self.retry_ms:
                del self.asked[ctx]  # the request or its answer was lost: ask again
                self.waiting.extend(reads)
        if self.waiting:
            self.waiting.sort()
        self._expire(now_ms)
        self.flush(now_ms)

    def _expire(self, now_ms: int) -> None:
        def overdue(r: Read) -> bool:
            return now_ms >= r.deadline_ms

        expired = [r for r in self.waiting if overdue(r)]
        self.waiting = [r for r in self.waiting if not overdue(r)]
        for ctx, (asked_ms, reads) in list(self.asked.items()):
            expired.extend(r for r in reads if overdue(r))
            keep = [r for r in reads if not overdue(r)]
            if keep:
                self.asked[ctx] = (asked_ms, keep)
            else:
                del self.asked[ctx]
        keep_c = [e for e in self.confirmed if not overdue(e[2])]
        expired.extend(e[2] for e in self.confirmed if overdue(e[2]))
        if len(keep_c) != len(self.confirmed):
            heapq.heapify(keep_c)
            self.confirmed = keep_c
        for r in expired:
            if self.leader_known:
                r.fail(f"TRYAGAIN read not confirmed within {self.timeout_ms} ms")
            else:
                r.fail("NOQUORUM no leader: this node cannot reach a majority")

    def fail_all(self, error: str) -> None:
        reads = self.waiting + [r for _, rs in self.asked.values() for r in rs]
        reads += [e[2] for e in self.confirmed]
        self.waiting, self.asked, self.confirmed = [], {}, []
        for r in reads:
            r.fail(error)
