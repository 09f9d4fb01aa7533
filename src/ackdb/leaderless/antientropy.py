"""Anti-entropy: comparing two replicas' hash trees and deciding what to push.

Owns: the tree over a replica's leaves (2**depth leaves, each the XOR of its (key,
record) hashes; a replica keeps it incrementally, ``keyspace/lltree.py``), the
level-by-level comparison that finds differing leaves, the plan for one differing range
(which records go to which side), and the two jobs built on them: ``PairSync`` (compare
two replicas of a partition and push the merge of every differing range, within a push
budget) and ``PurgeSweep`` (read a window of leaves from every replica of a partition
and purge the tombstones ``tombstones.may_purge`` allows). Never fetches: a job returns
``Call`` actions -- ``LL.TREE depth``, ``LL.RANGE depth lo hi``, ``LL.APPLY key record``
(a merge: the newer side wins, a replica never loses a version), ``LL.PURGE key
version`` -- and the shell (coordinator/antientropy.py, sim/ll_world.py) feeds each
reply back (``on_reply``) or its failure (``on_failure``: no connection, an error reply,
a timeout). A job is over when no call of it is outstanding.

Pushing the *merge* of both sides, never one side's record, means a push cannot go back
in time and a content-identical record is never re-sent (equal records, no action).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..keyspace import lww
from ..keyspace.lww import Record, Version
from .tombstones import may_purge

# Leaves of the compared tree fetched in one LL.RANGE at most: a wiped replica differs
# everywhere, and one page must still cost a few leaves' keys, not the keyspace.
RANGE_LEAVES_MAX = 8


class HashTree:
    """A complete binary tree over 2**depth leaf hashes (XOR of the children)."""

    def __init__(self, leaves: list[int]) -> None:
        n = len(leaves)
        assert n and n & (n - 1) == 0, "leaf count must be a power of two"
        self.depth = n.bit_length() - 1
        self.levels: list[list[int]] = [list(leaves)]
        while len(self.levels[0]) > 1:
            below = self.levels[0]
            self.levels.insert(0, [below[i] ^ below[i + 1] for i in range(0, len(below), 2)])

    @property
    def root(self) -> int:
        return self.levels[0][0]


def differing_leaves(a: HashTree, b: HashTree) -> list[int]:
    """Leaves whose hashes differ, found top-down (only differing subtrees descend)."""
    assert a.depth == b.depth
    frontier = [0]
    for level in range(a.depth + 1):
        la, lb = a.levels[level], b.levels[level]
        frontier = [i for i in frontier if la[i] != lb[i]]
        if level < a.depth:
            frontier = [c for i in frontier for c in (2 * i, 2 * i + 1)]
    return frontier


def leaf_ranges(leaves: list[int]) -> list[tuple[int, int]]:
    """Sorted leaf indexes as [lo, hi) runs, so each run is one LL.RANGE."""
    out: list[tuple[int, int]] = []
    for i in sorted(leaves):
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def plan_sync(
    a: dict[bytes, Record], b: dict[bytes, Record]
) -> tuple[dict[bytes, Record], dict[bytes, Record]]:
    """Records to push to a and to b so both hold the merge of the two ranges."""
    to_a: dict[bytes, Record] = {}
    to_b: dict[bytes, Record] = {}
    for key in a.keys() | b.keys():
        ra, rb = a.get(key), b.get(key)
        if ra is None:
            assert rb is not None
            to_a[key] = rb
            continue
        if rb is None:
            to_b[key] = ra
            continue
        if ra == rb:
            continue
        m = lww.merge(ra, rb)
        if m != ra:
            to_a[key] = m
        if m != rb:
            to_b[key] = m
    return to_a, to_b


# -- jobs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One command to replica ``replica`` (its index in the partition's instances) of
    partition ``partition``. Repairs carry no SCHEMA and no MAXSKEW: their records were
    checked when first written."""

    partition: int
    replica: int
    argv: tuple[bytes, ...]


def tree_of(raw: bytes) -> HashTree:
    """An ``LL.TREE`` reply as a tree; ValueError when it is not whole leaves."""
    if raw.__class__ is not bytes or not raw or len(raw) % 8:
        raise ValueError("bad LL.TREE reply")
    return HashTree([int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw), 8)])


def items_of(flat: Any) -> dict[bytes, Record]:
    """An ``LL.RANGE`` reply (key, record, key, record...) as a dict; ValueError when bad."""
    if not isinstance(flat, list) or len(flat) % 2:
        raise ValueError("bad LL.RANGE reply")
    return {flat[i]: lww.decode(flat[i + 1]) for i in range(0, len(flat), 2)}


def split_ranges(ranges: list[tuple[int, int]], width: int) -> list[tuple[int, int]]:
    """Runs cut into pieces of at most ``width`` leaves."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        out.extend((x, min(x + width, hi)) for x in range(lo, hi, width))
    return out


def apply_call(partition: int, replica: int, key: bytes, rec: Record) -> Call:
    return Call(partition, replica, (b"LL.APPLY", key, lww.encode(rec)))


class PairSync:
    """Compare replicas ``a`` and ``b`` of a partition; push the merge of each differing
    range to the side that lacks it, one range at a time, until ``push_budget`` records
    were pushed (the rest waits for the next comparison: ``complete`` is then False).

    States: trees asked -> (both trees) ranges, one at a time -> over. A failed tree or
    range read ends the job (``failed`` names the replica); a failed push is counted only
    (the next comparison finds that range again)."""

    def __init__(self, partition: int, a: int, b: int, depth: int, push_budget: int) -> None:
        assert a != b
        self.partition, self.a, self.b, self.depth = partition, a, b, depth
        self.push_budget = push_budget
        self.trees: dict[int, HashTree] = {}
        self.ranges: list[tuple[int, int]] = []
        self.pages: dict[int, dict[bytes, Record]] = {}
        self.differing = 0  # leaves that differed
        self.pushed = 0
        self.push_failed = 0
        self.failed: list[int] = []
        self.complete = False  # compared everything and pushed every difference found

    def start(self) -> list[Call]:
        return [Call(self.partition, r, (b"LL.TREE", b"%d" % self.depth)) for r in (self.a, self.b)]

    def on_reply(self, call: Call, reply: Any) -> list[Call]:
        if self.failed:
            return []
        cmd = call.argv[0]
        try:
            if cmd == b"LL.TREE":
                self.trees[call.replica] = tree_of(reply)
                return self._compared() if len(self.trees) == 2 else []
            if cmd == b"LL.RANGE":
                self.pages[call.replica] = items_of(reply)
                return self._merge_page() if len(self.pages) == 2 else []
        except ValueError:
            return self.on_failure(call)
        return []  # a push landed

    def on_failure(self, call: Call) -> list[Call]:
        if call.argv[0] == b"LL.APPLY":
            self.push_failed += 1
        elif call.replica not in self.failed:
            self.failed.append(call.replica)
            self.complete = False
        return []

    def _compared(self) -> list[Call]:
        ta, tb = self.trees[self.a], self.trees[self.b]
        if ta.depth != tb.depth:
            self.failed.append(self.b)
            return []
        diff = differing_leaves(ta, tb)
        self.differing = len(diff)
        self.ranges = split_ranges(leaf_ranges(diff), RANGE_LEAVES_MAX)
        return self._next_range()

    def _next_range(self) -> list[Call]:
        if not self.ranges:
            self.complete = True
            return []
        if self.pushed >= self.push_budget:
            return []
        lo, hi = self.ranges.pop(0)
        argv = (b"LL.RANGE", b"%d" % self.depth, b"%d" % lo, b"%d" % hi)
        return [Call(self.partition, r, argv) for r in (self.a, self.b)]

    def _merge_page(self) -> list[Call]:
        to_a, to_b = plan_sync(self.pages[self.a], self.pages[self.b])
        self.pages = {}
        out = [apply_call(self.partition, self.a, k, rec) for k, rec in sorted(to_a.items())]
        out += [apply_call(self.partition, self.b, k, rec) for k, rec in sorted(to_b.items())]
        self.pushed += len(out)
        return out + self._next_range()


class PurgeSweep:
    """Read leaves [lo, hi) at ``depth`` and the clock (``TIME``) of every replica of a
    partition; purge each tombstone every replica holds exactly, once the grace has
    passed (``may_purge``) by the earliest of the replicas' clocks and this node's
    (``now_ms``) -- so one fast clock, even this node's, cannot purge early: ``LL.PURGE``
    on every replica, which drops it only if it still holds that exact tombstone. A
    replica failing to answer ends the job without a purge."""

    def __init__(
        self, partition: int, n: int, depth: int, lo: int, hi: int, now_ms: int, grace_ms: int
    ) -> None:
        self.partition, self.n, self.now_ms, self.grace_ms = partition, n, now_ms, grace_ms
        self.argv = (b"LL.RANGE", b"%d" % depth, b"%d" % lo, b"%d" % hi)
        self.pages: dict[int, dict[bytes, Record]] = {}
        self.clocks: dict[int, int] = {}
        self.failed: list[int] = []
        self.purged: set[bytes] = set()  # keys some replica dropped

    def start(self) -> list[Call]:
        out: list[Call] = []
        for r in range(self.n):
            out += [Call(self.partition, r, (b"TIME",)), Call(self.partition, r, self.argv)]
        return out

    def on_reply(self, call: Call, reply: Any) -> list[Call]:
        cmd = call.argv[0]
        if cmd == b"LL.PURGE":
            if reply == 1:
                self.purged.add(call.argv[1])
            return []
        try:
            if cmd == b"TIME":
                self.clocks[call.replica] = _time_ms(reply)
            else:
                self.pages[call.replica] = items_of(reply)
        except ValueError:
            return self.on_failure(call)
        if len(self.pages) < self.n or len(self.clocks) < self.n or self.failed:
            return []
        return self._purges()

    def on_failure(self, call: Call) -> list[Call]:
        if call.argv[0] != b"LL.PURGE" and call.replica not in self.failed:
            self.failed.append(call.replica)
        return []

    def _purges(self) -> list[Call]:
        out: list[Call] = []
        replicas = tuple(range(self.n))
        now_ms = min(self.now_ms, *self.clocks.values())
        for key, rec in sorted(self.pages[0].items()):
            if not rec.is_tombstone():
                continue
            v: Version = rec.base_version
            holders: dict[int, Record | None] = {r: self.pages[r].get(key) for r in replicas}
            if may_purge(v, holders, replicas, now_ms, self.grace_ms):
                out += [Call(self.partition, r, (b"LL.PURGE", key, v.to_bytes())) for r in replicas]
        return out


def _time_ms(reply: Any) -> int:
    """A ``TIME`` reply ([seconds, microseconds]) in ms; ValueError when malformed."""
    if not isinstance(reply, list) or len(reply) != 2:
        raise ValueError("bad TIME reply")
    return int(reply[0]) * 1000 + int(reply[1]) // 1000
