"""Anti-entropy: comparing two replicas' hash trees and deciding what to push.

Owns: the tree over a replica's leaves (``keyspace.lww.tree_leaves``: 2**depth leaves,
each the XOR of its (key, record) hashes, computed from the stored records), the
level-by-level comparison that finds differing leaves, and the plan for one differing
range: which records go to which side. Never fetches: the shell asks each replica for
``LL.TREE depth`` and ``LL.RANGE depth lo hi`` and sends the plan's records as
``LL.APPLY`` (a merge: the newer side wins, a replica never loses a version).

Pushing the *merge* of both sides, never one side's record, means a push cannot go back
in time and a content-identical record is never re-sent (equal records, no action).
"""

from __future__ import annotations

from ..keyspace import lww
from ..keyspace.lww import Record


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
