"""The convergence schedule of one coordinator, and CONVERGE's waits (sans-IO).

Owns: *which* comparisons run and *when* -- rounds every ``ae_interval_ms``, the replica
pairs this node compares, the tombstone-purge windows it sweeps -- the counters INFO
shows (``ll_ae_*``, ``ll_tombstones_purged``), and the on-demand passes of ``CONVERGE``
(one key: digests from every replica, the merge pushed where they differ; the whole
database: every partition's trees compared until equal) with their deadline. Never
sends or reads a clock: the shell (coordinator/antientropy.py; sim/ll_world.py in the
simulation) runs the jobs this module hands out (``antientropy.PairSync``,
``PurgeSweep``, ``KeyPass``: each returns ``Call`` actions and takes replies), and
feeds ``now_ms``.

Spreading the work: a node compares only partitions whose replica set includes it, and
of those only the pair (its own replica i, the next one i+1 mod n): over all nodes each
partition's n replicas are compared around a ring, each pair by one node per round, so
the cluster does n comparisons per partition per interval instead of n(n-1), and a
difference anywhere reaches every replica within n-1 rounds (in practice one: a pair
pushes both ways). Each partition's tombstones are swept by one node (the one holding
replica ``index mod n``), a window of leaves per round, so a whole tree is swept every
2**depth / window rounds.

States of the schedule: idle (until ``next_ms``) -> round running (``begin_round``
handed out its jobs) -> ``end_round`` (counters; a round whose every comparison completed
is a *full comparison*) -> idle. States of a CONVERGE: pass running -> (agreed) answer /
(deadline passed) timeout error naming what differs / (else) retry after ``retry_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..keyspace import lww
from ..keyspace.lww import Record
from .antientropy import Call, PairSync, PurgeSweep, apply_call

AE_INTERVAL_MS_DEFAULT = 10_000
# Compared tree depth: 2**10 leaves, so a differing leaf of a 10M-key partition is ~10k keys.
AE_DEPTH_DEFAULT = 10
# Records one pair comparison pushes per round at most (the throttle); more wait a round.
AE_PUSH_BUDGET_DEFAULT = 20_000
# Leaves of the compared tree one purge sweep reads per round.
PURGE_WINDOW_LEAVES_DEFAULT = 32
# Pause between two passes of a CONVERGE that did not agree yet.
CONVERGE_RETRY_MS = 50


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition as the schedule sees it: its index and the node of each replica
    (``Shard.instances()`` order: the index is the replica number)."""

    index: int
    nodes: tuple[str, ...]


Job = PairSync | PurgeSweep


class Schedule:
    """One coordinator's anti-entropy rounds (see the module docstring)."""

    def __init__(
        self,
        node: str,
        grace_ms: int,
        interval_ms: int = AE_INTERVAL_MS_DEFAULT,
        depth: int = AE_DEPTH_DEFAULT,
        push_budget: int = AE_PUSH_BUDGET_DEFAULT,
        purge_window: int = PURGE_WINDOW_LEAVES_DEFAULT,
    ) -> None:
        assert interval_ms > 0 and 0 <= depth <= lww.TREE_DEPTH_MAX and purge_window > 0
        self.node, self.grace_ms, self.interval_ms = node, grace_ms, interval_ms
        self.depth, self.push_budget, self.purge_window = depth, push_budget, purge_window
        self.partitions: list[Partition] = []
        self.next_ms = 0  # the first round starts at once
        self.round_started_ms: int | None = None
        self.purge_cursor: dict[int, int] = {}
        # INFO leaderless
        self.rounds = 0
        self.differing_leaves = 0  # found by the last round (a gauge)
        self.pushed = 0
        self.purged = 0
        self.last_full_ms: int | None = None

    def set_partitions(self, partitions: list[Partition]) -> None:
        self.partitions = list(partitions)
        live = {p.index for p in partitions}
        self.purge_cursor = {i: c for i, c in self.purge_cursor.items() if i in live}

    def wait_ms(self, now_ms: int) -> int:
        """How long until the next round is due (0: now)."""
        return max(0, self.next_ms - now_ms)

    def pairs(self) -> list[tuple[int, int, int]]:
        """(partition, a, b): this node's replica and the next one, per partition."""
        out = []
        for p in self.partitions:
            n = len(p.nodes)
            for i, node in enumerate(p.nodes):
                if node == self.node and n > 1:
                    out.append((p.index, i, (i + 1) % n))
        return out

    def begin_round(self, now_ms: int) -> list[Job]:
        assert self.round_started_ms is None, "a round is already running"
        self.round_started_ms = now_ms
        jobs: list[Job] = [
            PairSync(part, a, b, self.depth, self.push_budget) for part, a, b in self.pairs()
        ]
        leaves = 1 << self.depth
        for p in self.partitions:
            n = len(p.nodes)
            if p.nodes[p.index % n] != self.node:
                continue
            lo = self.purge_cursor.get(p.index, 0)
            hi = min(lo + self.purge_window, leaves)
            self.purge_cursor[p.index] = hi % leaves
            jobs.append(PurgeSweep(p.index, n, self.depth, lo, hi, now_ms, self.grace_ms))
        return jobs

    def end_round(self, now_ms: int, jobs: list[Job]) -> None:
        started = self.round_started_ms
        assert started is not None, "no round is running"
        self.round_started_ms = None
        self.rounds += 1
        syncs = [j for j in jobs if isinstance(j, PairSync)]
        self.differing_leaves = sum(j.differing for j in syncs)
        self.pushed += sum(j.pushed for j in syncs)
        self.purged += sum(len(j.purged) for j in jobs if isinstance(j, PurgeSweep))
        if all(j.complete for j in syncs):
            self.last_full_ms = started
        self.next_ms = max(started + self.interval_ms, now_ms)

    def info(self, now_ms: int) -> list[tuple[str, str]]:
        age = -1 if self.last_full_ms is None else max(0, now_ms - self.last_full_ms)
        return [
            ("ll_ae_rounds", str(self.rounds)),
            ("ll_ae_differing_leaves", str(self.differing_leaves)),
            ("ll_ae_pushed", str(self.pushed)),
            ("ll_ae_last_full_comparison_age_ms", str(age)),
            ("ll_tombstones_purged", str(self.purged)),
        ]


# -- CONVERGE ------------------------------------------------------------------------------


class KeyPass:
    """One pass of ``CONVERGE KEY k``: ``LL.DIGEST`` on every replica; if they differ,
    ``LL.GET`` on every replica and the merge pushed (``LL.APPLY``) where it is missing.
    ``agreed`` when every replica answered the same digest."""

    def __init__(self, partition: int, n: int, key: bytes) -> None:
        self.partition, self.n, self.key = partition, n, key
        self.digests: dict[int, bytes] = {}
        self.records: dict[int, Record | None] = {}
        self.unreachable: list[int] = []
        self.agreed = False
        self.distinct = 0  # different digests seen

    def start(self) -> list[Call]:
        return [Call(self.partition, r, (b"LL.DIGEST", self.key)) for r in range(self.n)]

    def on_reply(self, call: Call, reply: Any) -> list[Call]:
        cmd = call.argv[0]
        if cmd == b"LL.DIGEST":
            if reply.__class__ is not bytes:
                return self.on_failure(call)
            self.digests[call.replica] = reply
            return self._digested()
        if cmd == b"LL.GET":
            try:
                self.records[call.replica] = None if reply is None else lww.decode(reply)
            except ValueError:
                return self.on_failure(call)
            return self._fetched()
        return []

    def on_failure(self, call: Call) -> list[Call]:
        if call.argv[0] != b"LL.APPLY" and call.replica not in self.unreachable:
            self.unreachable.append(call.replica)
        return []

    def _digested(self) -> list[Call]:
        if len(self.digests) + len(self.unreachable) < self.n:
            return []
        self.distinct = len(set(self.digests.values()))
        if self.unreachable:
            return []
        if self.distinct == 1:
            self.agreed = True
            return []
        return [Call(self.partition, r, (b"LL.GET", self.key)) for r in range(self.n)]

    def _fetched(self) -> list[Call]:
        if len(self.records) + len(self.unreachable) < self.n or self.unreachable:
            return []
        merged = Record()
        for rec in self.records.values():
            if rec is not None:
                lww.merge_into(merged, rec)
        return [
            apply_call(self.partition, r, self.key, merged)
            for r, rec in sorted(self.records.items())
            if rec != merged
        ]

    def describe(self, names: tuple[str, ...]) -> str:
        text = f"the {self.n} replicas of the key hold {self.distinct} different records"
        return text + _unreachable(names, self.unreachable)


def db_pass(partitions: list[Partition], depth: int) -> list[PairSync]:
    """One pass of ``CONVERGE`` for the whole database: every partition's replica 0
    compared (and synced) with each other replica. Agreed when no pair differed."""
    unlimited = 1 << 62
    return [
        PairSync(p.index, 0, j, depth, unlimited)
        for p in partitions
        for j in range(1, len(p.nodes))
    ]


def db_pass_agreed(jobs: list[PairSync]) -> bool:
    return all(j.complete and not j.differing for j in jobs)


def describe_db_pass(jobs: list[PairSync], partitions: list[Partition]) -> str:
    names = {p.index: p.nodes for p in partitions}
    differing = {j.partition for j in jobs if j.differing}
    leaves = sum(j.differing for j in jobs)
    text = f"replicas differ in {len(differing)} of {len(partitions)} partitions ({leaves} leaves)"
    down = sorted({(j.partition, r) for j in jobs for r in j.failed})
    if down:
        text += "; unreachable: " + ", ".join(
            f"replica {r} of partition {p} on {names[p][r]}" for p, r in down
        )
    return text


def _unreachable(names: tuple[str, ...], replicas: list[int]) -> str:
    if not replicas:
        return ""
    return "; unreachable: " + ", ".join(f"replica {r} on {names[r]}" for r in sorted(replicas))


@dataclass(frozen=True, slots=True)
class Retry:
    """Run another pass after ``wait_ms``."""

    wait_ms: int


@dataclass(frozen=True, slots=True)
class Answer:
    """CONVERGE's answer: None (converged) or the error text, without the leading '-'."""

    error: str | None


class ConvergeWait:
    """The deadline of one CONVERGE: after each pass, answer or retry."""

    def __init__(self, now_ms: int, timeout_ms: int, retry_ms: int = CONVERGE_RETRY_MS) -> None:
        assert timeout_ms >= 0
        self.deadline_ms = now_ms + timeout_ms
        self.retry_ms = retry_ms
        self.passes = 0

    def remaining_ms(self, now_ms: int) -> int:
        return max(0, self.deadline_ms - now_ms)

    def after_pass(self, now_ms: int, differs: str | None) -> Retry | Answer:
        """``differs``: None when the pass agreed, else what still differs."""
        self.passes += 1
        if differs is None:
            return Answer(None)
        if now_ms >= self.deadline_ms:
            return Answer(f"TIMEOUT not converged after {self.passes} passes: {differs}")
        return Retry(min(self.retry_ms, self.deadline_ms - now_ms))
