"""The leader's view of each follower and the quorum arithmetic (etcd raft tracker/).

Owns: per-peer replication progress (match, next, flow-control state, inflight window),
vote tallies and quorum computations over the current voters. Never does IO.

States of a Progress (etcd tracker/progress.go):
- PROBE: the leader does not know where the follower's log matches; it sends at most one
  append per heartbeat interval and backs ``next`` off on rejections (Raft §5.3).
- REPLICATE: the follower is known to match up to ``match``; the leader streams appends
  optimistically (``next`` runs ahead of ``match``), at most ``max_inflight_msgs`` unacked.
- SNAPSHOT: the entries the follower needs are compacted; a snapshot is in flight and
  nothing else is sent until it is acknowledged, reported failed or times out.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """Last indexes of the appends sent and not yet acknowledged, oldest first."""

    def __init__(self, size: int) -> None:
        assert size >= 1
        self.size = size
        self._q: deque[int] = deque()

    def add(self, last_index: int) -> None:
        assert not self.full(), "inflight window overflow"
        assert not self._q or last_index >= self._q[-1]
        self._q.append(last_index)

    def free_le(self, index: int) -> None:
        """An acknowledgement up to ``index`` frees every append ending at or before it."""
        while self._q and self._q[0] <= index:
            self._q.popleft()

    def free_first_one(self) -> None:
        if self._q:
            self._q.popleft()

    def full(self) -> bool:
        return len(self._q) >= self.size

    def count(self) -> int:
        return len(self._q)

    def reset(self) -> None:
        self._q.clear()


class Progress:
    __slots__ = (
        "match",
        "next",
        "state",
        "pending_snapshot",
        "snapshot_ticks",
        "recent_active",
        "probe_sent",
        "inflights",
    )

    def __init__(self, next_index: int, max_inflight: int, match: int = 0) -> None:
        self.match = match
        self.next = next_index
        self.state = ProgressState.PROBE
        self.pending_snapshot = 0
        self.snapshot_ticks = 0
        self.recent_active = False
        self.probe_sent = False
        self.inflights = Inflights(max_inflight)

    def _reset_state(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_ticks = 0
        self.inflights.reset()

    def become_probe(self) -> None:
        # After a snapshot the follower holds at least the snapshot's index.
        if self.state == ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, n: int) -> bool:
        """An acknowledgement that the follower matches up to ``n``; False if stale."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.probe_sent = False
        self.next = max(self.next, n + 1)
        return updated

    def sent_entries(self, last_index: int, count: int) -> None:
        """Bookkeeping after sending an append ending at ``last_index`` with ``count``
        entries: in REPLICATE the window advances, in PROBE we wait for the answer."""
        if self.state == ProgressState.REPLICATE:
            if count:
                self.next = last_index + 1
                self.inflights.add(last_index)
        elif self.state == ProgressState.PROBE:
            self.probe_sent = True
        else:
            raise AssertionError(f"sending entries in state {self.state}")

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """A rejection of the append after ``rejected``; False if it is stale."""
        if self.state == ProgressState.REPLICATE:
            # A rejection at or below match comes from an old, reordered append.
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        # In PROBE only the answer to the last probe counts.
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        if self.state == ProgressState.PROBE:
            return self.probe_sent
        if self.state == ProgressState.REPLICATE:
            return self.inflights.full()
        return True


class VoteResult(enum.Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def quorum(n_voters: int) -> int:
    """Raft §5.2: a majority of the voters."""
    return n_voters // 2 + 1


def committed_index(voters: Iterable[str], match: dict[str, int]) -> int:
    """The highest index stored on a majority of ``voters`` (Raft §5.3)."""
    idx = sorted((match.get(v, 0) for v in voters), reverse=True)
    if not idx:
        return 0
    return idx[quorum(len(idx)) - 1]


def vote_result(voters: Iterable[str], votes: dict[str, bool]) -> VoteResult:
    vs = list(voters)
    if not vs:
        return VoteResult.LOST
    granted = sum(1 for v in vs if votes.get(v) is True)
    rejected = sum(1 for v in vs if votes.get(v) is False)
    q = quorum(len(vs))
    if granted >= q:
        return VoteResult.WON
    if rejected > len(vs) - q:
        return VoteResult.LOST
    return VoteResult.PENDING
