"""Delete/update conflicts on read and the three deletion strategies of the seed's system.

Owns: what a conflict is -- the replicas a read merged disagree such that one sees the
key deleted (a tombstone) and another sees it live -- and how each strategy resolves it:

- ``TimeBasedResolution`` (default): no special case; the newest version wins (a delete
  is a version like any write).
- ``DeleteOnConflict``: the delete wins even over a newer live write. Replicas only ever
  merge upwards, so the coordinator writes a *new* tombstone, above every version read.
  This can destroy a newer live object (Weaviate's documented caveat); choose it only
  when a deleted object must never reappear.
- ``NoAutomatedResolution``: the read fails with a conflict error and repairs nothing;
  the client settles it by writing or deleting the key.

Pure: the tombstone's version is derived from the version the coordinator stamped for
the read, so nothing here reads a clock.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from ..keyspace import lww
from ..keyspace.lww import Record, Version


class DeletionStrategy(enum.Enum):
    NO_AUTOMATED_RESOLUTION = "NoAutomatedResolution"
    DELETE_ON_CONFLICT = "DeleteOnConflict"
    TIME_BASED_RESOLUTION = "TimeBasedResolution"

    @staticmethod
    def parse(b: bytes) -> DeletionStrategy:
        """ValueError for an unknown name (case-insensitive)."""
        text = b.decode("ascii", "replace").lower()
        for s in DeletionStrategy:
            if s.value.lower() == text:
                return s
        raise ValueError(f"unknown deletion strategy {b!r}")


def conflict(records: Iterable[Record | None]) -> bool:
    """One participant sees the key deleted, another sees it live."""
    kinds = {("absent" if r is None else r.view()[0]) for r in records}
    return "deleted" in kinds and bool(kinds & {"string", "hash"})


def winning_delete(merged: Record, stamp: Version) -> Record:
    """DeleteOnConflict: a tombstone above every version in ``merged`` (the read's own
    stamp, or just above the newest version read when that is ahead of it)."""
    newest = merged.newest()
    v = stamp if stamp > newest else Version(newest.ms, newest.logical + 1, stamp.node)
    out = lww.merge(merged, lww.delete_write(v))
    assert out.view()[0] == "deleted"
    return out
