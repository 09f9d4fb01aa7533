"""Consistency levels: how many of a key's n replicas a request needs.

Owns: ONE = 1, QUORUM = n // 2 + 1, ALL = n (counted per replica set), their names on
the wire, and the r + w > n test. Pure arithmetic.
"""

from __future__ import annotations

import enum


class Level(enum.Enum):
    ONE = "ONE"
    QUORUM = "QUORUM"
    ALL = "ALL"

    @staticmethod
    def parse(b: bytes) -> Level:
        """ValueError for anything but one/quorum/all (any case)."""
        try:
            return Level(b.decode("ascii").upper())
        except (UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"unknown consistency level {b!r}") from e


def required(level: Level, n: int) -> int:
    """Replicas a request at ``level`` needs out of ``n``."""
    assert n >= 1
    if level is Level.ONE:
        return 1
    if level is Level.QUORUM:
        return n // 2 + 1
    return n


def strong(read: Level, write: Level, n: int) -> bool:
    """r + w > n: every read set meets every write set in at least one replica."""
    return required(read, n) + required(write, n) > n
