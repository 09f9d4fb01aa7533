"""Cursors of HSCAN, SSCAN and ZSCAN over one large collection.

Owns: the snapshots that let a scan of a hash, set or sorted set return every element
present for the whole iteration. The first call copies the element names from the cursor's
position on and gives the copy a scan id; later calls page through the copy (elements
deleted since are filtered by the caller). Snapshots live in a bounded LRU
(``SNAPSHOTS_MAX`` of them, ``SNAPSHOT_ITEMS_MAX`` element references in all) and are
dropped when their scan ends. A cursor whose snapshot is gone — evicted, another
collection, another process — continues by position in the collection's current order,
which can skip an element if elements before the cursor were deleted (an accepted
difference, docs/compat.md). A collection larger than the whole budget is always paged by
position.

A cursor is ``scan_id << 32 | position``; scan ids stay below 2**31, so cursors stay
below 2**63 for clients that parse them as signed integers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sized
from typing import Any

SNAPSHOTS_MAX = 64
SNAPSHOT_ITEMS_MAX = 4_000_000
POS_BITS = 32
POS_MASK = (1 << POS_BITS) - 1
SCAN_ID_MAX = (1 << 31) - 1

# Element names of ``coll`` from ``start`` to ``stop`` in its current order.
ItemsFn = Callable[[int, int], list[bytes]]


class ScanSnapshots:
    def __init__(self) -> None:
        # scan id -> (the collection, its element names from position ``base`` on, base)
        self._entries: OrderedDict[int, tuple[Any, list[bytes], int]] = OrderedDict()
        self._items = 0
        self._next_id = 1

    def page(
        self,
        coll: Sized,
        cursor: int,
        count: int,
        items: ItemsFn,
        whole: Callable[[], bool] | None = None,
    ) -> tuple[int, list[bytes]]:
        """(next cursor, element names) of one call; names may have been deleted since.

        ``whole``: asked when no snapshot serves the cursor; True returns everything at
        once with cursor 0 (Redis does so for its small listpack encodings)."""
        scan_id, pos = cursor >> POS_BITS, cursor & POS_MASK
        found = self._get(scan_id, coll) if scan_id else None
        if found is None:
            n = len(coll)
            if whole is not None and whole():
                return 0, items(0, n)
            if pos >= n:
                return 0, []
            if n - pos > SNAPSHOT_ITEMS_MAX:  # too large: position in the current order
                page = items(pos, pos + count)
                end = pos + len(page)
                return (0 if end >= n else end), page
            found = (items(pos, n), pos)
            scan_id = self._add(coll, *found)
        names, base = found
        start = max(pos - base, 0)
        page = names[start : start + count]
        end = start + len(page)
        if end >= len(names):
            self._drop(scan_id)
            return 0, page
        return (scan_id << POS_BITS) | (base + end), page

    def _get(self, scan_id: int, coll: Any) -> tuple[list[bytes], int] | None:
        e = self._entries.get(scan_id)
        if e is None or e[0] is not coll:
            return None
        self._entries.move_to_end(scan_id)
        return e[1], e[2]

    def _add(self, coll: Any, names: list[bytes], base: int) -> int:
        n = len(names)
        assert n <= SNAPSHOT_ITEMS_MAX
        entries = self._entries
        while entries and (len(entries) >= SNAPSHOTS_MAX or self._items + n > SNAPSHOT_ITEMS_MAX):
            _, (_, old, _) = entries.popitem(last=False)
            self._items -= len(old)
        scan_id = self._next_id
        self._next_id = scan_id % SCAN_ID_MAX + 1
        entries[scan_id] = (coll, names, base)
        self._items += n
        return scan_id

    def _drop(self, scan_id: int) -> None:
        e = self._entries.pop(scan_id, None)
        if e is not None:
            self._items -= len(e[1])
