"""Consumer groups of a stream: ``Group`` (last delivered id, entries-read counter, pending
entries list, consumers), ``Consumer`` and ``Nack`` (one pending entry: delivery time and
count, owner).

Owns: the group-side structures only; the stream's read-counter arithmetic (Redis's
estimates from entries-added and tombstones) is ``Stream``'s. Pending entries lists are
``PelMap``: a dict for O(1) lookup plus a sorted id list for ranges (an insert in the
middle, rare, is O(n) memmove). Never parses arguments, never touches I/O.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

StreamID = tuple[int, int]


class Nack:
    """One pending entry: when it was last delivered, how often, to whom."""

    __slots__ = ("delivery_time", "delivery_count", "consumer")

    def __init__(self, delivery_time: int, delivery_count: int, consumer: Consumer) -> None:
        self.delivery_time = delivery_time
        self.delivery_count = delivery_count
        self.consumer = consumer


class PelMap:
    """Pending entries by id, iterable in id order."""

    __slots__ = ("by_id", "order")

    def __init__(self) -> None:
        self.by_id: dict[StreamID, Nack] = {}
        self.order: list[StreamID] = []

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, sid: StreamID) -> Nack | None:
        return self.by_id.get(sid)

    def add(self, sid: StreamID, nack: Nack) -> None:
        if sid not in self.by_id:
            if not self.order or self.order[-1] < sid:
                self.order.append(sid)
            else:
                insort(self.order, sid)
        self.by_id[sid] = nack

    def remove(self, sid: StreamID) -> Nack | None:
        nack = self.by_id.pop(sid, None)
        if nack is not None:
            del self.order[bisect_left(self.order, sid)]
        return nack

    def from_id(self, start: StreamID) -> Iterator[tuple[StreamID, Nack]]:
        """(id, nack) from ``start`` on, in id order (stable under removals of yielded ids
        only if the caller copies; callers that remove collect first)."""
        i = bisect_left(self.order, start)
        order = self.order
        by_id = self.by_id
        while i < len(order):
            sid = order[i]
            yield sid, by_id[sid]
            i += 1

    def range(self, start: StreamID, end: StreamID) -> Iterator[tuple[StreamID, Nack]]:
        for sid, nack in self.from_id(start):
            if sid > end:
                return
            yield sid, nack


class Consumer:
    __slots__ = ("name", "seen_time", "active_time", "pel")

    def __init__(self, name: bytes, now_ms: int) -> None:
        self.name = name
        self.seen_time = now_ms
        self.active_time = -1  # Redis 7.2: never active yet
        self.pel = PelMap()


class Group:
    __slots__ = ("name", "last_id", "entries_read", "pel", "consumers")

    def __init__(self, name: bytes, last_id: StreamID, entries_read: int) -> None:
        self.name = name
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel = PelMap()
        self.consumers: dict[bytes, Consumer] = {}

    def deliver(self, sid: StreamID, consumer: Consumer, now_ms: int) -> Nack:
        """XREADGROUP ``>`` delivered ``sid`` to ``consumer``: its pending entry, new, or
        moved from its former owner with the delivery count reset to 1 (Redis)."""
        pel = self.pel
        nack = pel.by_id.get(sid)
        if nack is None:
            nack = Nack(now_ms, 1, consumer)
            # PelMap.add, inlined for the usual case: a new id above every pending one,
            # in the group's PEL and so in the consumer's.
            order = pel.order
            mine = consumer.pel
            if (not order or order[-1] < sid) and (not mine.order or mine.order[-1] < sid):
                order.append(sid)
                pel.by_id[sid] = nack
                mine.order.append(sid)
                mine.by_id[sid] = nack
                return nack
            pel.add(sid, nack)
        else:
            nack.consumer.pel.remove(sid)
            nack.consumer = consumer
            nack.delivery_time = now_ms
            nack.delivery_count = 1
        consumer.pel.add(sid, nack)
        return nack

    def create_consumer(self, name: bytes, now_ms: int) -> Consumer:
        c = self.consumers[name] = Consumer(name, now_ms)
        return c

    def delete_consumer(self, name: bytes) -> int:
        """Drop a consumer and its pending entries from the group; returns how many."""
        c = self.consumers.pop(name)
        for sid in c.pel.order:
            self.pel.remove(sid)
        return len(c.pel)
