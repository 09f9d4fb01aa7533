"""Linearizable reads through ReadIndex (Raft dissertation §6.4), the leader's bookkeeping.

Owns: the reads a leader has accepted and not yet answered. Never does IO.

A read goes through two waits:
1. ``waiting_commit``: a new leader does not know the latest commit index until it has
   committed an entry of its own term (its no-op); reads wait for that (§6.4 step 1).
2. ``pending``: the read index is the commit index when the read arrived; the leader must
   then prove it was still leader at that moment by a heartbeat round answered by a
   majority (§6.4 step 3). Each read joins the next heartbeat round (a number carried in
   the heartbeat's context and echoed back); a peer that acknowledges round r vouches for
   every round <= r, so a lost heartbeat is covered by the next one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from ackdb.consensus.progress import quorum


@dataclass(frozen=True, slots=True)
class ReadRequest:
    ctx: bytes
    origin: str  # the member that asked: the leader itself or a follower
    index: int = 0
    round: int = 0


def encode_round(r: int) -> bytes:
    return r.to_bytes(8, "big")


def decode_round(ctx: bytes) -> int | None:
    if len(ctx) != 8:
        return None
    return int.from_bytes(ctx, "big")


class ReadOnly:
    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self.waiting_commit: list[ReadRequest] = []
        self.pending: deque[ReadRequest] = deque()
        self.round = 0
        self.acked: dict[str, int] = {}

    def count(self) -> int:
        return len(self.waiting_commit) + len(self.pending)

    def full(self) -> bool:
        return self.count() >= self.max_pending

    def wait_for_commit(self, ctx: bytes, origin: str) -> None:
        assert not self.full()
        self.waiting_commit.append(ReadRequest(ctx=ctx, origin=origin))

    def take_waiting(self) -> list[ReadRequest]:
        out, self.waiting_commit = self.waiting_commit, []
        return out

    def add(self, ctx: bytes, origin: str, index: int) -> int:
        """Queue a read at ``index``; returns the heartbeat round that confirms it."""
        self.round += 1
        self.pending.append(ReadRequest(ctx=ctx, origin=origin, index=index, round=self.round))
        return self.round

    def last_round(self) -> int | None:
        """The round a regular heartbeat should carry (None when no read is pending)."""
        return self.pending[-1].round if self.pending else None

    def recv_ack(self, peer: str, round_: int) -> None:
        if round_ > self.acked.get(peer, 0):
            self.acked[peer] = round_

    def release(self, self_id: str, voters: Iterable[str]) -> list[ReadRequest]:
        """The pending reads whose round a majority of voters has confirmed, in order."""
        vs = list(voters)
        if not self.pending or not vs:
            return []
        rounds = sorted(
            (self.round if v == self_id else self.acked.get(v, 0) for v in vs), reverse=True
        )
        confirmed = rounds[quorum(len(vs)) - 1]
        out: list[ReadRequest] = []
        while self.pending and self.pending[0].round <= confirmed:
            out.append(self.pending.popleft())
        return out
