"""From a client's write to its result: numbering, routing, retrying and timing out the
metadata commands this member submits.

Owns: the commands submitted here and not yet applied. Each gets this member's client id
and the next sequence number, then goes to the leader: proposed to the local Raft node
when this member leads, forwarded (a ``FWD`` frame) when another does, held while no
leader is known. It is resolved when the local state machine applies it -- every member
applies every entry, so a follower learns its forwarded command's result without a reply
message. Never does IO itself: proposing and forwarding are callbacks, time is ``now_ms``.

Retries and exactly-once (Raft dissertation §6.3): a forwarded command unanswered after
``retry_ms``, or pending when the leader changes, is sent again with the SAME number; the
client sessions apply it once. Sessions apply only numbers above the client's highest
applied one, so once a later number of ours has applied, an earlier one still pending can
never apply (it was lost, and a late copy would be ignored as a retry): it is renumbered
and sent again ("reissued").

States of a pending command: WAITING (no leader known) -> SENT -> resolved (applied) or
failed (its deadline passed: ``NOQUORUM`` only if no leader ever received it, so it
cannot apply; else ``TRYAGAIN``: it may still apply later, even with no leader known now,
because an entry an old leader appended can still commit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ackdb.cluster.commands import Command, Op, Result, encode_command, fail
from ackdb.cluster.metadata import Applied
from ackdb.consensus import ProposalDropped

# Pending commands per member (count): beyond it new commands fail at once.
PENDING_MAX_COMMANDS = 100_000

Done = Callable[[Result], None]


@dataclass
class Pending:
    seq: int
    op: Op
    args: tuple[bytes | str | int, ...]
    data: bytes
    deadline_ms: int
    done: Done
    sent_ms: int = -1  # -1: not sent to the current leader yet
    sent_to: str | None = None
    handed_over: bool = False  # some leader (this node or another) ever received it


class Proposer:
    def __init__(
        self,
        node_id: str,
        client_id: str,
        propose_local: Callable[[bytes], int],
        forward: Callable[[str, bytes], bool],
        retry_ms: int = 1000,
        timeout_ms: int = 5000,
    ) -> None:
        self.node_id = node_id
        self.client_id = client_id
        self.propose_local = propose_local
        self.forward = forward
        self.retry_ms = retry_ms
        self.timeout_ms = timeout_ms
        self.leader: str | None = None
        self.next_seq = 1
        self.pending: dict[int, Pending] = {}  # by seq; dicts keep insertion (seq) order
        self.highest_applied = 0
        self.reissued = 0
        self.resent = 0

    def submit(self, op: Op, args: tuple[bytes | str | int, ...], now_ms: int, done: Done) -> None:
        if len(self.pending) >= PENDING_MAX_COMMANDS:
            done(fail("TRYAGAIN too many commands pending on this node"))
            return
        p = self._number(op, args, now_ms + self.timeout_ms, done)
        self._send(p, now_ms)

    def _number(
        self, op: Op, args: tuple[bytes | str | int, ...], deadline: int, done: Done
    ) -> Pending:
        seq = self.next_seq
        self.next_seq += 1
        data = encode_command(Command(self.client_id, seq, op, args))
        p = Pending(seq, op, args, data, deadline, done)
        self.pending[seq] = p
        return p

    def _send(self, p: Pending, now_ms: int) -> None:
        leader = self.leader
        if leader is None:
            p.sent_ms, p.sent_to = -1, None
            return
        if leader == self.node_id:
            try:
                self.propose_local(p.data)
            except ProposalDropped:
                p.sent_ms, p.sent_to = -1, None  # retried on the next tick
                return
        elif not self.forward(leader, p.data):
            p.sent_ms, p.sent_to = -1, None
            return
        p.sent_ms, p.sent_to = now_ms, leader
        p.handed_over = True

    def on_leader(self, leader: str | None, now_ms: int) -> None:
        """The Raft leader as this member now sees it; resend what the old one may have
        lost, in number order (a log keeps one proposer's commands in order)."""
        if leader == self.leader:
            return
        self.leader = leader
        for p in list(self.pending.values()):
            self._send(p, now_ms)
            self.resent += 1

    def on_applied(self, applied: Applied, now_ms: int) -> None:
        if applied.client_id != self.client_id:
            return
        if applied.fresh:
            self.highest_applied = max(self.highest_applied, applied.seq)
        p = self.pending.pop(applied.seq, None)
        if p is not None:
            p.done(applied.result)
        if applied.fresh:
            self._reissue_lost(now_ms)

    def _reissue_lost(self, now_ms: int) -> None:
        # ``pending`` is in number order (reissues go to the end with new numbers), so
        # the lost ones are at its front: no scan of everything per applied command.
        lost = []
        for p in self.pending.values():
            if p.seq >= self.highest_applied:
                break
            lost.append(p)
        for p in lost:
            del self.pending[p.seq]
            q = self._number(p.op, p.args, p.deadline_ms, p.done)
            self.reissued += 1
            self._send(q, now_ms)

    def tick(self, now_ms: int) -> None:
        """Time out what is overdue; resend what was never sent or waited ``retry_ms``."""
        for p in list(self.pending.values()):
            if now_ms >= p.deadline_ms:
                del self.pending[p.seq]
                if not p.handed_over:
                    # No leader ever had it: it cannot be applied (a definite failure).
                    p.done(fail("NOQUORUM no leader: this node cannot reach a majority"))
                else:
                    leader = self.leader or "unknown now"
                    p.done(
                        fail(
                            f"TRYAGAIN not committed within {self.timeout_ms} ms "
                            f"(leader {leader}); it may still be applied"
                        )
                    )
            elif p.sent_ms < 0 or now_ms - p.sent_ms >= self.retry_ms:
                # A local proposal is retried too: this member may have lost and regained
                # leadership between two looks at its status, losing the entry.
                self._send(p, now_ms)
                self.resent += 1

    def fail_all(self, error: str) -> None:
        pending, self.pending = self.pending, {}
        for p in pending.values():
            p.done(fail(error))
