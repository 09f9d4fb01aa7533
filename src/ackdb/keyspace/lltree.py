"""A replica's hash tree over its leaderless records, kept up to date incrementally.

Owns: per database, the anti-entropy tree ``LL.TREE`` answers (every level from the root
down to ``lww.TREE_DEPTH_MAX``: level d has 2**d hashes, a hash is the XOR of the entry
hashes ``lww.entry_hash(key, record)`` of the keys whose ``lww.leaf_of`` falls in it) and
the index of keys per max-depth leaf that ``LL.RANGE`` pages through, so a page costs
its keys, not the keyspace. Never decides anything about replication; sans-IO.

Incremental, exactly: the tree remembers each key's entry (its leaf, its entry hash and
the ``Record`` object it hashed). A change of key k XORs k's *remembered* hash out and
the new one in, so a write applied twice, or a record written back unchanged, can never
cancel itself out (Weaviate's double-fold bug) -- the tree always equals
``lww.tree_leaves`` over the stored records, which the unit tests check after random
operation sequences, AOF rewrites and restarts.

Who keeps it: the ``LL.*`` write commands call ``begin`` before and ``changed`` after
they change a record. Every other change of the keyspace (DEL, FLUSHALL, SWAPDB,
RENAME, RESTORE, an expiry, a load from disk, llcoord's commands...) is noticed without
any work on those commands' path: the tree stamps itself with the database's
``change_mark()`` (moves on every key added or deleted), the ``dict`` holding the data
(replaced by FLUSHALL / SWAPDB) and the server's ``dirty`` counter (moves on every
write) as they were after its own last change. A mismatch at ``begin`` marks the tree
suspect; ``current`` (what LL.TREE / LL.RANGE read) then re-checks it: one pass that
compares each remembered ``Record`` object by identity with the stored one and hashes
only the keys that changed (O(keys) dict look-ups, no hashing of unchanged records).
With keys carrying a TTL in the database (which LL records do not use) every read
re-checks, because an expiry moves nothing the tree stamps before it happens.
A new tree (first use after start or load) is built by that same pass.
"""

from __future__ import annotations

import sys
from array import array
from typing import Any

from . import lww
from .db import Database
from .lww import Record

DEPTH = lww.TREE_DEPTH_MAX
# The key's remembered entry: (max-depth leaf, entry hash, the Record object hashed).
Entry = tuple[int, int, Record]


class LlTree:
    """The tree of one database (see the module docstring)."""

    __slots__ = ("levels", "entries", "leaf_keys", "data", "mark", "dirty", "suspect")

    def __init__(self) -> None:
        self.levels = [array("Q", bytes(8 << d)) for d in range(DEPTH + 1)]
        self.entries: dict[bytes, Entry] = {}
        self.leaf_keys: dict[int, set[bytes]] = {}  # max-depth leaf -> its keys
        self.data: dict[bytes, Any] | None = None  # the dict the stamp was taken of
        self.mark: tuple[int, int, int] = (-1, -1, -1)
        self.dirty = -1
        self.suspect = True  # a new tree describes nothing yet

    # -- the stamp --------------------------------------------------------------------

    def _stale(self, db: Database, dirty: int) -> bool:
        return (
            self.data is not db.data
            or self.dirty != dirty
            or self.mark != db.change_mark()
            or bool(db.expires)
        )

    def stamp(self, db: Database, dirty: int) -> None:
        self.data, self.mark, self.dirty = db.data, db.change_mark(), dirty

    # -- entries ----------------------------------------------------------------------

    def put(self, key: bytes, rec: Record | None) -> None:
        """Make key's entry describe ``rec`` (None: no leaderless record at key)."""
        old = self.entries.get(key)
        if old is not None:
            # XOR out what was folded in for this key (even when ``rec`` is the same
            # object: a merge changes a record in place).
            leaf, h, _ = old
            self._xor(leaf, h)
            if rec is None:
                del self.entries[key]
                keys = self.leaf_keys[leaf]
                keys.discard(key)
                if not keys:
                    del self.leaf_keys[leaf]
                return
        elif rec is None:
            return
        assert rec is not None
        leaf = old[0] if old is not None else lww.leaf_of(key, DEPTH)
        h = lww.entry_hash(key, rec)
        self._xor(leaf, h)
        self.entries[key] = (leaf, h, rec)
        if old is None:
            self.leaf_keys.setdefault(leaf, set()).add(key)

    def _xor(self, leaf: int, h: int) -> None:
        for level in reversed(self.levels):
            level[leaf] ^= h
            leaf >>= 1

    def resync(self, data: dict[bytes, Any]) -> int:
        """Bring every entry in line with ``data``; returns how many keys were re-hashed
        or dropped. Identity comparisons only, for keys that did not change."""
        fixed = 0
        entries = self.entries
        gone = [k for k, e in entries.items() if data.get(k) is not e[2]]
        for key in gone:
            self.put(key, None)
            fixed += 1
        if len(entries) != len(data):
            for key, v in data.items():
                if v.__class__ is Record and key not in entries:
                    self.put(key, v)
                    fixed += 1
        return fixed

    # -- reading ----------------------------------------------------------------------

    def leaves(self, depth: int) -> bytes:
        """Level ``depth``'s hashes, 8 bytes each, big-endian."""
        level = self.levels[depth]
        if sys.byteorder == "big":
            return level.tobytes()
        out = array("Q", level)
        out.byteswap()
        return out.tobytes()

    def range_items(self, depth: int, lo: int, hi: int) -> list[tuple[bytes, Record]]:
        """The (key, record) pairs of the leaves [lo, hi) at ``depth``, leaf by leaf,
        keys sorted within a leaf (the same order on every replica)."""
        shift = DEPTH - depth
        first, last = max(lo, 0) << shift, min(hi, 1 << depth) << shift
        out: list[tuple[bytes, Record]] = []
        index, entries = self.leaf_keys, self.entries
        if last - first > 4 * len(index):  # a wide range: walk the occupied leaves
            leaves = sorted(leaf for leaf in index if first <= leaf < last)
        else:
            leaves = [leaf for leaf in range(first, last) if leaf in index]
        for leaf in leaves:
            for key in sorted(index[leaf]):
                out.append((key, entries[key][2]))
        return out


def _tree(db: Database) -> LlTree:
    t = db.lltree
    if t is None:
        t = db.lltree = LlTree()
    assert isinstance(t, LlTree)
    return t


def begin(db: Database, dirty: int) -> LlTree:
    """Before an LL.* write: the tree, marked suspect if something else changed the
    keyspace since its last stamp."""
    t = _tree(db)
    if t._stale(db, dirty):
        t.suspect = True
    return t


def changed(t: LlTree, db: Database, key: bytes, dirty: int) -> None:
    """After an LL.* write changed ``key`` (stored, merged in place or purged)."""
    v = db.data.get(key)
    t.put(key, v if v.__class__ is Record else None)
    t.stamp(db, dirty)


def current(db: Database, dirty: int) -> LlTree:
    """The tree, equal to the stored records (re-checked when suspect or stale)."""
    t = _tree(db)
    if t.suspect or t._stale(db, dirty):
        t.resync(db.data)
        t.suspect = False
        t.stamp(db, dirty)
    return t
