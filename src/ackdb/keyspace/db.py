"""Databases of typed values with expiry, WATCH tracking and stable SCAN cursors.

Owns: the mapping key -> value of each numbered database, the absolute expiry times,
lazy expiry on access and the bounded active expiry cycle, the key order that SCAN and
RANDOMKEY walk, and which clients WATCH which keys. Never touches sockets or files; time
comes in through the owner's ``now_ms()``, randomness through an injected ``random.Random``.

Values: ``bytes`` (string), ``dict`` (hash); later issues add list, set and sorted set.

SCAN guarantee: a key present for the whole iteration is returned. Keys live in
``_order`` in insertion order; a deleted key leaves its slot stale and a new key takes a
new slot at the end, so a cursor (a slot position) never passes over a live key. When
stale slots outnumber live ones the order is compacted; the cursors of older generations
are mapped exactly through a compact table (a prefix count and a bitmap of kept slots per
64 slots). A cursor older than ``SCAN_GENERATIONS_MAX`` compactions restarts from the
beginning: duplicates, never misses.

The order costs a pointer a key (8 bytes, about 5% of a small string key), so it exists
only once needed: the first SCAN or RANDOMKEY of a database builds it from the ``dict``
(whose iteration order is insertion order, the order a compacted ``_order`` holds), in
one pass over the keys; FLUSHDB drops it again.
"""

from __future__ import annotations

import heapq
import random
from array import array
from collections.abc import Iterator
from typing import Any, Protocol

# Generations of cursor maps kept; an older cursor restarts (duplicates, never misses).
SCAN_GENERATIONS_MAX = 16
# Compact the key order when it holds more stale slots than this and than live keys.
ORDER_STALE_MIN = 1024
# A SCAN cursor: 7 bits of generation, 28 of end position, 28 of position (< 2**63, so
# clients that hold cursors in signed 64-bit integers are safe).
CURSOR_POS_BITS = 28
CURSOR_POS_MASK = (1 << CURSOR_POS_BITS) - 1
CURSOR_GEN_SHIFT = 2 * CURSOR_POS_BITS
CURSOR_GEN_MASK = 0x7F


class KeyspaceOwner(Protocol):
    """What a database needs from the server core."""

    applying: bool

    @property
    def role_replica(self) -> bool: ...

    def now_ms(self) -> int: ...
    def on_expired(self, db: Database, key: bytes) -> None: ...
    def on_key_ready(self, db: Database, key: bytes) -> None: ...
    def on_key_created(self, db: Database, key: bytes) -> None: ...
    def on_watched_touched(
        self, db: Database, key: bytes, clients: set[Any], expiring: bool
    ) -> None: ...


class TouchAll(dict[bytes, set[Any]]):
    """A WATCH map that is never empty to the write paths' ``if db.watched:`` check, so
    every change of every key reaches ``KeyspaceOwner.on_watched_touched`` (CLIENT
    TRACKING's BCAST mode installs it while it needs every change)."""

    def __bool__(self) -> bool:
        return True


_NOBODY: set[Any] = set()


class Database:
    __slots__ = (
        "index",
        "owner",
        "data",
        "expires",
        "watched",
        "_heap",
        "_order",
        "_stale",
        "_gen",
        "_gen_maps",
        "avg_ttl",
        "awaited",
        "notify_created",
        "lltree",
    )

    def __init__(self, index: int, owner: KeyspaceOwner) -> None:
        self.index = index
        self.owner = owner
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}  # key -> absolute unix time in ms
        # key -> clients watching it; a dict or a ``TouchAll`` (always true). Typed Any
        # on purpose: compiled (mypyc), a ``dict``-typed truth test reads the size and
        # would skip TouchAll's ``__bool__``.
        self.watched: Any = {}
        self._heap: list[tuple[int, bytes]] = []  # (when_ms, key); may hold stale entries
        # SCAN order, stale slots allowed; None until the first SCAN or RANDOMKEY.
        self._order: list[bytes] | None = None
        # Stale slots in the order; while there is no order, keys deleted since the last
        # build (change_mark's counter).
        self._stale = 0
        self._gen = 0
        self._gen_maps: dict[int, tuple[array[int], array[int]]] = {}
        self.avg_ttl = 0
        self.awaited: set[bytes] = set()  # keys blocked clients wait for (BLPOP...)
        # Call owner.on_key_created for every key added (the `new` keyspace event); the
        # owner turns it on only when that event is enabled: one check per creation.
        self.notify_created = False
        # The hash tree of this database's leaderless records (keyspace/lltree.py),
        # made by the first LL.* command; None until then.
        self.lltree: Any = None

    # -- reads -------------------------------------------------------------------------

    def lookup(self, key: bytes) -> Any:
        """The live value of ``key`` or None; an expired key is deleted on the way."""
        v = self.data.get(key)
        if v is not None and self.expires:
            when = self.expires.get(key)
            if when is not None and when <= self.owner.now_ms():
                owner = self.owner
                if owner.role_replica:
                    # A replica waits for its primary's DEL: its own reads see nothing,
                    # the primary's commands see the key (Redis expireIfNeeded).
                    return v if owner.applying else None
                self.expire_now(key)
                return None
        return v

    def exists(self, key: bytes) -> bool:
        return self.lookup(key) is not None

    def ttl_ms(self, key: bytes) -> int | None:
        """Absolute expiry of ``key`` in ms, or None when it has none."""
        return self.expires.get(key)

    def __len__(self) -> int:
        return len(self.data)

    def change_mark(self) -> tuple[int, int, int]:
        """A value that moves whenever a key is added or deleted (not when a value is
        replaced in place): for state derived from the keyspace outside the command
        path (keyspace/lltree.py) to notice changes it did not make. Nothing to keep up:
        it reads the SCAN order's counters: within one generation the order is either
        absent throughout or present throughout (building it starts a generation), and
        its length, or without it the key count, only grows while ``_stale`` stays."""
        order = self._order
        return self._gen, len(self.data) if order is None else len(order), self._stale

    # -- writes ------------------------------------------------------------------------

    def set(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store ``value`` at ``key``; the old TTL is dropped unless ``keep_ttl``."""
        d = self.data
        n = len(d)
        d[key] = value  # one lookup: the size says whether the key is new (never None)
        if len(d) != n:
            order = self._order
            if order is not None:
                order.append(key)
            if self.notify_created:
                self.owner.on_key_created(self, key)
            if self.awaited and key in self.awaited:
                self.owner.on_key_ready(self, key)
        elif not keep_ttl and self.expires:
            self.expires.pop(key, None)
        if self.watched:
            self.touch(key)

    def set_many(self, argv: list[bytes], start: int) -> None:
        """MSET: store argv[start], argv[start+1], ... as key/value pairs (TTLs dropped)."""
        d = self.data
        order = self._order
        expires = self.expires
        for i in range(start, len(argv), 2):
            key = argv[i]
            old = d.get(key)
            d[key] = argv[i + 1]
            if old is None:
                if order is not None:
                    order.append(key)
                if self.notify_created:
                    self.owner.on_key_created(self, key)
                if self.awaited and key in self.awaited:
                    self.owner.on_key_ready(self, key)
            elif expires:
                expires.pop(key, None)
        if self.watched:
            for i in range(start, len(argv), 2):
                self.touch(argv[i])

    def replace(self, key: bytes, value: Any) -> None:
        """Store a new value at a key known to exist, keeping its TTL (INCR, APPEND...)."""
        self.data[key] = value
        if self.watched:
            self.touch(key)

    def add_new(self, key: bytes, value: Any) -> None:
        """Store a value at a key known to be absent (skips the existence check)."""
        self.data[key] = value
        order = self._order
        if order is not None:
            order.append(key)
        if self.notify_created:
            self.owner.on_key_created(self, key)
        if self.awaited and key in self.awaited:
            self.owner.on_key_ready(self, key)
        if self.watched:
            self.touch(key)

    def delete(self, key: bytes, expiring: bool = False) -> bool:
        d = self.data
        if key not in d:
            return False
        del d[key]
        if self.expires:
            self.expires.pop(key, None)
        self._stale += 1
        if self._stale > ORDER_STALE_MIN and self._stale > len(d) and self._order is not None:
            self._compact()
        if self.watched:
            self.touch(key, expiring)
        return True

    def expire_now(self, key: bytes) -> None:
        """Delete an expired key and let the owner propagate it (as DEL) and count it."""
        self.delete(key, expiring=True)
        self.owner.on_expired(self, key)

    def set_expire(self, key: bytes, when_ms: int) -> None:
        """Set the absolute expiry of an existing key (a modification for WATCH)."""
        self.expires[key] = when_ms
        if self.watched:
            self.touch(key)
        heapq.heappush(self._heap, (when_ms, key))
        if len(self._heap) > 2 * len(self.expires) + ORDER_STALE_MIN:
            self._heap = [(w, k) for k, w in self.expires.items()]
            heapq.heapify(self._heap)

    def persist(self, key: bytes) -> bool:
        if self.expires.pop(key, None) is None:
            return False
        if self.watched:
            self.touch(key)
        return True

    def touch(self, key: bytes, expiring: bool = False) -> None:
        """Mark the clients watching ``key`` (WATCH) as having seen it change; with a
        ``TouchAll`` map, every change reaches the owner."""
        watched = self.watched
        clients = watched.get(key)
        if clients:
            self.owner.on_watched_touched(self, key, clients, expiring)
        elif watched.__class__ is TouchAll:
            self.owner.on_watched_touched(self, key, _NOBODY, expiring)

    def clear(self) -> int:
        """FLUSHDB: drop everything; returns how many keys there were."""
        n = len(self.data)
        if self.watched:
            for key in list(self.watched):
                if key in self.data:
                    self.touch(key)
        self.data = {}
        self.expires = {}
        self._heap = []
        self._order = None
        self._stale = 0
        self._gen += 1  # cursors of the old generation restart
        return n

    def swap_contents(self, other: Database) -> None:
        """SWAPDB: exchange the datasets; WATCHers of either see a change."""
        for db in (self, other):
            for key in list(db.watched):
                if key in self.data or key in other.data:
                    db.touch(key)
        for name in ("data", "expires", "_heap", "_order", "_stale", "_gen", "_gen_maps"):
            a, b = getattr(self, name), getattr(other, name)
            setattr(self, name, b)
            setattr(other, name, a)
        # Keys now present that blocked clients of either database wait for are ready.
        for db in (self, other):
            for key in list(db.awaited):
                if key in db.data:
                    db.owner.on_key_ready(db, key)

    # -- bulk loading (snapshots) -------------------------------------------------------

    def load_strings(self, flat: list[bytes]) -> None:
        """Snapshot load: string keys without TTL as [k, v, k, v, ...]; no events (a load
        announces nothing, as in Redis). Call ``finish_load`` after the last key."""
        it = iter(flat)
        self.data.update(zip(it, it, strict=True))
        if self._order is not None:
            self._order.extend(flat[0::2])

    def load_key(self, key: bytes, value: Any, expire_ms: int | None) -> None:
        """Snapshot load of one key of any type, with its absolute expiry if any."""
        self.data[key] = value
        if self._order is not None:
            self._order.append(key)
        if expire_ms is not None:
            self.expires[key] = expire_ms
            self._heap.append((expire_ms, key))

    def finish_load(self) -> None:
        """Restore the invariants the bulk loaders skip (heap order, duplicate slots)."""
        heapq.heapify(self._heap)
        order = self._order
        if order is not None and len(order) != len(self.data):
            self._stale = len(order) - len(self.data)
            self._compact()

    # -- active expiry -----------------------------------------------------------------

    def expire_cycle(self, now_ms: int, keys_max: int) -> int:
        """Reclaim up to ``keys_max`` expired keys, earliest first; returns how many."""
        heap = self._heap
        expires = self.expires
        done = 0
        while heap and done < keys_max and heap[0][0] <= now_ms:
            when, key = heapq.heappop(heap)
            if expires.get(key) == when:
                self.expire_now(key)
                done += 1
        return done

    def has_expired_pending(self, now_ms: int) -> bool:
        return bool(self._heap) and self._heap[0][0] <= now_ms

    # -- SCAN and RANDOMKEY --------------------------------------------------------------

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """Visit about ``count`` slots from ``cursor``; returns (next cursor, live keys).

        A cursor holds the generation, the position, and the end of the order when the
        iteration began: a key present for the whole iteration sits before that end, and
        stopping there keeps a scan finite however fast other keys come and go.
        """
        gen = cursor >> CURSOR_GEN_SHIFT
        end = (cursor >> CURSOR_POS_BITS) & CURSOR_POS_MASK
        pos = cursor & CURSOR_POS_MASK
        order = self._order
        if order is None:
            order = self._build_order()
        if cursor == 0:
            end = len(order)
        elif gen != self._gen & CURSOR_GEN_MASK:
            pos, end = self._map_cursor(gen, pos, end)
        data = self.data
        out: list[bytes] = []
        stop = min(end, len(order))
        limit = pos + count * 10  # bound work in a sparse region
        seen: set[bytes] = set()
        while pos < stop and len(out) < count and pos < limit:
            k = order[pos]
            pos += 1
            if k in data and k not in seen:
                seen.add(k)
                out.append(k)
        if pos >= stop:
            return 0, out
        assert end <= CURSOR_POS_MASK, "SCAN cursor positions are limited to 2**28 slots"
        return (
            ((self._gen & CURSOR_GEN_MASK) << CURSOR_GEN_SHIFT) | (end << CURSOR_POS_BITS) | pos
        ), out

    def _map_cursor(self, gen: int, pos: int, end: int) -> tuple[int, int]:
        cur = self._gen & CURSOR_GEN_MASK
        while gen != cur:
            maps = self._gen_maps.get(gen)
            if maps is None:
                # Too old: restart (duplicates, never misses).
                return 0, len(self._order or ())
            pos = _map_position(maps, pos)
            end = _map_position(maps, end)
            gen = (gen + 1) & CURSOR_GEN_MASK
        return pos, end

    def _build_order(self) -> list[bytes]:
        """The SCAN order, made from the keys' insertion order; a new generation starts,
        so ``change_mark`` cannot repeat a value it gave without the order."""
        order = list(self.data)
        self._order = order
        self._stale = 0
        self._gen += 1
        return order

    def _compact(self) -> None:
        """Drop stale slots. Records, per 64 old slots, how many slots were kept before
        them and which of them were kept, so an old cursor maps exactly to the position
        of the first kept slot at or after it."""
        old = self._order
        assert old is not None
        data = self.data
        keep = [k in data for k in old]
        if sum(keep) != len(data):
            # A key deleted and re-added sits twice in the old order: keep its later slot.
            seen: set[bytes] = set()
            for i in range(len(old) - 1, -1, -1):
                if keep[i]:
                    if old[i] in seen:
                        keep[i] = False
                    else:
                        seen.add(old[i])
        new: list[bytes] = []
        prefix = array("Q")
        words = array("Q")
        word = 0
        for i, k in enumerate(old):
            if not i & 63:
                prefix.append(len(new))
                if i:
                    words.append(word)
                    word = 0
            if keep[i]:
                new.append(k)
                word |= 1 << (i & 63)
        words.append(word)
        prefix.append(len(new))
        gen = self._gen & CURSOR_GEN_MASK
        self._gen_maps[gen] = (prefix, words)
        self._gen_maps.pop((gen - SCAN_GENERATIONS_MAX) & CURSOR_GEN_MASK, None)
        self._gen += 1
        self._order = new
        self._stale = 0

    def random_key(self, rng: random.Random) -> bytes | None:
        """A random live key (RANDOMKEY); expired picks are reclaimed and retried."""
        for _ in range(100):
            if not self.data:
                return None
            order = self._order
            if order is None:
                order = self._build_order()
            k = order[rng.randrange(len(order))]
            if k in self.data:
                if self.lookup(k) is not None:
                    return k
        for k in list(self.data):
            if self.lookup(k) is not None:
                return k
        return None

    def keys(self) -> Iterator[bytes]:
        return iter(list(self.data))


def _map_position(maps: tuple[array[int], array[int]], pos: int) -> int:
    """The new index of the first slot kept at or after old slot ``pos``."""
    prefix, words = maps
    block = pos >> 6
    if block >= len(words):
        return prefix[-1]
    below = words[block] & ((1 << (pos & 63)) - 1)
    return int(prefix[block]) + below.bit_count()
