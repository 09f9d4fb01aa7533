"""The hybrid logical clock that stamps leaderless writes.

Owns: issuing versions (``keyspace.lww.Version``: physical ms, logical counter, node id)
that never go below any version this node issued or saw, and the skew guard: a version
from a peer more than ``max_skew_ms`` ahead of our wall clock is refused and its node
flagged (the caller logs it and shows it in INFO / status). Never reads a clock: wall
time comes in as ``wall_ms``.

Why refuse: if a peer with a clock hours ahead were believed, every version this node
issues afterwards would jump to the peer's time, and every write stamped honestly by
other nodes in those hours would lose to it (the Jepsen LWW-under-skew failure).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..keyspace.lww import Version

# Default of max-clock-skew-ms: how far ahead of our wall clock a peer's version may be.
MAX_SKEW_MS_DEFAULT = 500


@dataclass(slots=True)
class SkewFlag:
    """A peer seen ahead of us by more than the limit: the largest lead and how often."""

    ahead_ms: int
    refused: int


@dataclass(slots=True)
class HybridClock:
    node: int
    max_skew_ms: int = MAX_SKEW_MS_DEFAULT
    last: Version = Version(0, 0, 0)
    flagged: dict[int, SkewFlag] = field(default_factory=dict)

    def now(self, wall_ms: int) -> Version:
        """A fresh version, above every version issued or observed."""
        last = self.last
        if wall_ms > last.ms:
            v = Version(wall_ms, 0, self.node)
        else:
            v = Version(last.ms, last.logical + 1, self.node)
        assert v > last
        self.last = v
        return v

    def check(self, v: Version, wall_ms: int) -> bool:
        """False (and the sender flagged) when ``v`` is too far ahead to accept."""
        ahead = v.ms - wall_ms
        if ahead <= self.max_skew_ms:
            return True
        flag = self.flagged.get(v.node)
        if flag is None:
            self.flagged[v.node] = SkewFlag(ahead, 1)
        else:
            flag.ahead_ms = max(flag.ahead_ms, ahead)
            flag.refused += 1
        return False

    def observe(self, v: Version, wall_ms: int) -> bool:
        """Take ``v`` (read from a replica or a peer) into account: later versions of
        this node sort after it. Refuses, and does not move, when ``v`` is too far ahead."""
        if not self.check(v, wall_ms):
            return False
        if (v.ms, v.logical) > (self.last.ms, self.last.logical):
            self.last = Version(v.ms, v.logical, self.node)
        return True
