#!/usr/bin/env python3
"""Which ordered structure should hold a sorted set's (score, member) order?

Measures, in this process, three candidates behind the same small interface, each paired
with the dict member -> score that every sorted set keeps anyway:

- ``sortedlist``: ``sortedcontainers.SortedList`` of ``(score, member)`` tuples (a maintained
  library: a list of sorted blocks with a lazily built positional index);
- ``blocked``: our own blocked sorted list (blocks of at most ``2 * LOAD`` tuples, a list of
  block maxima to bisect, ranks by summing block lengths);
- ``skiplist``: our own skiplist with spans (Redis's structure), written in Python.

Workload (the issue's): ZADD of 100,000 random members, ZRANGE of 100 consecutive members
at random ranks of a 10,000-member set, ZRANK of random members of the 100,000-member set,
ZREM of every member in random order. One seed; the figures are the best of ``--repeat``
runs, in microseconds per operation. Then the same workload through ``ackdb.keyspace.zset``
(its ZRANGE column times ``ZSet.bulks``, the members already encoded that ZRANGE joins).

Usage: ``python bench/zset_structure.py [--repeat 3] [--seed 1]`` (needs the ``bench`` extra:
``pip install -e '.[bench]'``, for sortedcontainers).
"""

from __future__ import annotations

import argparse
import bisect
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sortedcontainers import SortedList

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from ackdb.keyspace.zrange import rank_span  # noqa: E402
from ackdb.keyspace.zset import ZSet  # noqa: E402

N_ADD = 100_000
N_RANGE_SET = 10_000
RANGE_LEN = 100
N_RANGE = 10_000
N_RANK = 100_000

Item = tuple[float, bytes]


class Order(Protocol):
    def add(self, item: Item) -> None: ...
    def remove(self, item: Item) -> None: ...
    def index(self, item: Item) -> int: ...
    def slice(self, start: int, stop: int) -> list[Item]: ...


class SortedListOrder:
    def __init__(self) -> None:
        self.sl: SortedList = SortedList()

    def add(self, item: Item) -> None:
        self.sl.add(item)

    def remove(self, item: Item) -> None:
        self.sl.remove(item)

    def index(self, item: Item) -> int:
        return int(self.sl.index(item))

    def slice(self, start: int, stop: int) -> list[Item]:
        return self.sl[start:stop]  # type: ignore[no-any-return]


class BlockedOrder:
    """Sorted blocks; ``maxes[i]`` is the last item of ``blocks[i]``."""

    LOAD = 512

    def __init__(self) -> None:
        self.blocks: list[list[Item]] = []
        self.maxes: list[Item] = []

    def add(self, item: Item) -> None:
        blocks, maxes = self.blocks, self.maxes
        if not blocks:
            blocks.append([item])
            maxes.append(item)
            return
        i = bisect.bisect_left(maxes, item)
        if i == len(maxes):
            i -= 1
            blocks[i].append(item)
            maxes[i] = item
        else:
            bisect.insort(blocks[i], item)
        if len(blocks[i]) > 2 * self.LOAD:
            b = blocks[i]
            blocks[i : i + 1] = [b[: self.LOAD], b[self.LOAD :]]
            maxes[i : i + 1] = [b[self.LOAD - 1], b[-1]]

    def remove(self, item: Item) -> None:
        i = bisect.bisect_left(self.maxes, item)
        b = self.blocks[i]
        del b[bisect.bisect_left(b, item)]
        if b:
            self.maxes[i] = b[-1]
        else:
            del self.blocks[i]
            del self.maxes[i]

    def index(self, item: Item) -> int:
        i = bisect.bisect_left(self.maxes, item)
        return sum(len(b) for b in self.blocks[:i]) + bisect.bisect_left(self.blocks[i], item)

    def slice(self, start: int, stop: int) -> list[Item]:
        out: list[Item] = []
        pos = 0
        for b in self.blocks:
            n = len(b)
            if pos + n > start:
                out += b[max(start - pos, 0) : stop - pos]
                if pos + n >= stop:
                    break
            pos += n
        return out


class _Node:
    __slots__ = ("item", "forward", "span")

    def __init__(self, item: Any, level: int) -> None:
        self.item = item
        self.forward: list[_Node | None] = [None] * level
        self.span = [0] * level


class SkiplistOrder:
    """Pugh's skiplist with spans for ranks (as Redis's zskiplist), p = 1/4."""

    MAX_LEVEL = 32

    def __init__(self) -> None:
        self.head = _Node(None, self.MAX_LEVEL)
        self.level = 1
        self.length = 0
        self.rng = random.Random(7)

    def _random_level(self) -> int:
        level = 1
        while self.rng.random() < 0.25 and level < self.MAX_LEVEL:
            level += 1
        return level

    def add(self, item: Item) -> None:
        update: list[_Node] = [self.head] * self.MAX_LEVEL
        rank = [0] * self.MAX_LEVEL
        x = self.head
        for i in range(self.level - 1, -1, -1):
            rank[i] = 0 if i == self.level - 1 else rank[i + 1]
            nxt = x.forward[i]
            while nxt is not None and nxt.item < item:
                rank[i] += x.span[i]
                x = nxt
                nxt = x.forward[i]
            update[i] = x
        level = self._random_level()
        if level > self.level:
            for i in range(self.level, level):
                rank[i] = 0
                update[i] = self.head
                self.head.span[i] = self.length
            self.level = level
        node = _Node(item, level)
        for i in range(level):
            node.forward[i] = update[i].forward[i]
            update[i].forward[i] = node
            node.span[i] = update[i].span[i] - (rank[0] - rank[i])
            update[i].span[i] = rank[0] - rank[i] + 1
        for i in range(level, self.level):
            update[i].span[i] += 1
        self.length += 1

    def remove(self, item: Item) -> None:
        update: list[_Node] = [self.head] * self.MAX_LEVEL
        x = self.head
        for i in range(self.level - 1, -1, -1):
            nxt = x.forward[i]
            while nxt is not None and nxt.item < item:
                x = nxt
                nxt = x.forward[i]
            update[i] = x
        node = x.forward[0]
        assert node is not None and node.item == item
        for i in range(self.level):
            if update[i].forward[i] is node:
                update[i].span[i] += node.span[i] - 1
                update[i].forward[i] = node.forward[i]
            else:
                update[i].span[i] -= 1
        while self.level > 1 and self.head.forward[self.level - 1] is None:
            self.level -= 1
        self.length -= 1

    def index(self, item: Item) -> int:
        rank = 0
        x = self.head
        for i in range(self.level - 1, -1, -1):
            nxt = x.forward[i]
            while nxt is not None and nxt.item <= item:
                rank += x.span[i]
                x = nxt
                nxt = x.forward[i]
            if x.item == item:
                return rank - 1
        raise ValueError(item)

    def slice(self, start: int, stop: int) -> list[Item]:
        traversed = 0
        x = self.head
        for i in range(self.level - 1, -1, -1):
            nxt = x.forward[i]
            while nxt is not None and traversed + x.span[i] <= start:
                traversed += x.span[i]
                x = nxt
                nxt = x.forward[i]
        out: list[Item] = []
        node = x.forward[0]
        while node is not None and len(out) < stop - start:
            out.append(node.item)
            node = node.forward[0]
        return out


def _timed(fn: Callable[[], None], ops: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / ops * 1e6


def _workload(seed: int) -> tuple[list[tuple[bytes, float]], list[tuple[bytes, float]]]:
    rng = random.Random(seed)
    big = [
        (b"member:%d" % rng.getrandbits(40), float(rng.randrange(1_000_000))) for _ in range(N_ADD)
    ]
    big = list(dict(big).items())  # distinct members
    small = big[:N_RANGE_SET]
    return big, small


def bench_order(make: Callable[[], Order], seed: int, repeat: int) -> dict[str, float]:
    big, small = _workload(seed)
    rng = random.Random(seed + 1)
    order_rem = big[:]
    rng.shuffle(order_rem)
    starts = [rng.randrange(len(small) - RANGE_LEN) for _ in range(N_RANGE)]
    rank_probe = [big[rng.randrange(len(big))] for _ in range(N_RANK)]
    out: dict[str, float] = {}

    def add_all() -> tuple[dict[bytes, float], Order]:
        scores: dict[bytes, float] = {}
        o = make()
        for m, s in big:
            old = scores.get(m)
            if old is None:
                scores[m] = s
                o.add((s, m))
        return scores, o

    out["zadd"] = _timed(lambda: None if add_all() else None, len(big), repeat)
    scores, o = add_all()

    small_o = make()
    for m, s in small:
        small_o.add((s, m))

    def ranges() -> None:
        sl = small_o.slice
        for st in starts:
            sl(st, st + RANGE_LEN)

    out["zrange100"] = _timed(ranges, N_RANGE, repeat)

    def ranks() -> None:
        idx = o.index
        for m, _ in rank_probe:
            idx((scores[m], m))

    out["zrank"] = _timed(ranks, N_RANK, repeat)

    def remove_all() -> None:
        sc, oo = add_all()
        t0 = time.perf_counter()
        for m, _ in order_rem:
            oo.remove((sc.pop(m), m))
        remove_times.append(time.perf_counter() - t0)

    remove_times: list[float] = []
    for _ in range(repeat):
        remove_all()
    out["zrem"] = min(remove_times) / len(big) * 1e6
    return out


def bench_zset(seed: int, repeat: int) -> dict[str, float]:
    """The same workload through the chosen ``ZSet`` (what the commands call)."""
    big, small = _workload(seed)
    rng = random.Random(seed + 1)
    order_rem = [m for m, _ in big]
    rng.shuffle(order_rem)
    starts = [rng.randrange(len(small) - RANGE_LEN) for _ in range(N_RANGE)]
    rank_probe = [big[rng.randrange(len(big))][0] for _ in range(N_RANK)]
    out: dict[str, float] = {}

    def add_all() -> ZSet:
        z = ZSet()
        for m, s in big:
            z.add(m, s)
        return z

    out["zadd"] = _timed(lambda: None if add_all() else None, len(big), repeat)
    z = add_all()
    zs = ZSet()
    for m, s in small:
        zs.add(m, s)

    def ranges() -> None:
        for st in starts:
            zs.bulks(*rank_span(st, st + RANGE_LEN - 1, len(zs)), False)

    out["zrange100"] = _timed(ranges, N_RANGE, repeat)

    def ranks() -> None:
        rank = z.rank
        for m in rank_probe:
            rank(m, False)

    out["zrank"] = _timed(ranks, N_RANK, repeat)
    remove_times: list[float] = []
    for _ in range(repeat):
        zz = add_all()
        t0 = time.perf_counter()
        for m in order_rem:
            zz.remove(m)
        remove_times.append(time.perf_counter() - t0)
    out["zrem"] = min(remove_times) / len(big) * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rows: list[tuple[str, dict[str, float]]] = []
    for name, make in (
        ("sortedlist", SortedListOrder),
        ("blocked", BlockedOrder),
        ("skiplist", SkiplistOrder),
    ):
        rows.append((name, bench_order(make, args.seed, args.repeat)))
    rows.append(("ZSet (chosen)", bench_zset(args.seed, args.repeat)))
    cols = ("zadd", "zrange100", "zrank", "zrem")
    print(f"{'us per op':<15}" + "".join(f"{c:>12}" for c in cols))
    for name, r in rows:
        print(f"{name:<15}" + "".join(f"{r[c]:>12.2f}" for c in cols))


if __name__ == "__main__":
    main()
