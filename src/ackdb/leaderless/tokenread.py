"""A read that presents a session token: which replica to read first, when to wait, what
to answer (issue 16 item 10, read-your-writes without ALL).

Owns: the plan of one token read, as a small state machine. It never reads: each step
says what the shell does next -- ``ReadFirst``: one point read at the request's level
(``ReadRequest``, coordinator.py) with ``replica`` asked first in full; ``Sleep``: wait
``ms`` then call ``resume``; ``Answer``: reply with ``done``. The shell feeds each read's
``Done`` to ``on_done`` with its clock. Never does IO, never reads a clock, holds no
sockets; the asyncio shell (coordinator/endpoint.py) and the simulator
(sim/ll_world.py) carry out the same steps.

The rule. The token's replicas (the node ids that acknowledged its write, durably) are
asked first, one after the other, in the token's order (a token naming none of the
partition's nodes asks replica 0). The first read whose record **covers** the token
(``Token.covered_by``, session.py) is the answer. A read that fails (a level error, a
conflict) moves on to the next of them; when the last read of a round fails, its error
is the answer. When a round ends with answers none of which covers the token -- the
replicas that acknowledged it were unreachable and the spares asked instead lack it yet
-- the plan **waits** ``retry_ms`` and starts a new round, until ``deadline_ms`` (the
bound: one request timeout); then it answers ``TokenError`` (``-TRYAGAIN``).

A missing record covers the token when it comes from one of the token's replicas and
the token is older than the tombstone grace (tombstones.py): a replica that acknowledged
a write keeps it, or something newer, durably; only a purge (of a newer tombstone, once
every replica holds it and the grace has passed) leaves it with nothing. Without this a
connection that deleted a key would be refused its read for good once the tombstone
went.

States: reading (``at``: the index of the replica asked first, ``rounds``) -> sleeping
-> reading ... -> answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from .actions import Done, TokenError
from .session import Token

# Between two rounds of a token read whose replicas' answers do not cover it yet.
TOKEN_RETRY_MS = 50


@dataclass(frozen=True, slots=True)
class ReadFirst:
    """Read the key at the request's level, asking ``replica`` first in full."""

    replica: int


@dataclass(frozen=True, slots=True)
class Sleep:
    ms: int


@dataclass(frozen=True, slots=True)
class Answer:
    done: Done


Step = ReadFirst | Sleep | Answer


def first_replicas(token: Token, nodes: tuple[str, ...]) -> tuple[int, ...]:
    """The replica indexes to ask first, in the token's order (replica 0 if none)."""
    return tuple(nodes.index(n) for n in token.replicas if n in nodes) or (0,)


def read_order(first: int, replicas: tuple[int, ...]) -> tuple[int, ...]:
    """A read's replica order with ``first`` asked first (the rest in their order)."""
    return (first, *(r for r in replicas if r != first))


class TokenRead:
    """See the module docstring."""

    def __init__(
        self,
        token: Token,
        nodes: tuple[str, ...],
        deadline_ms: int,
        grace_ms: int,
        retry_ms: int = TOKEN_RETRY_MS,
    ) -> None:
        assert retry_ms > 0 and nodes
        self.token, self.nodes = token, nodes
        self.firsts = first_replicas(token, nodes)
        self.deadline_ms, self.grace_ms, self.retry_ms = deadline_ms, grace_ms, retry_ms
        self.at = 0
        self.rounds = 1
        self.reads = 0
        self.answered = False
        self.sleeping = False

    def start(self) -> Step:
        assert not self.reads and not self.answered
        return ReadFirst(self.firsts[0])

    def on_done(self, done: Done, now_ms: int) -> Step:
        """The ``Done`` of the read the last ``ReadFirst`` asked for."""
        assert not self.answered and not self.sleeping
        self.reads += 1
        if done.error is None and self.covers(done, now_ms):
            return self._answer(done)
        self.at += 1
        if self.at < len(self.firsts):
            return ReadFirst(self.firsts[self.at])
        if done.error is not None:
            return self._answer(done)
        if now_ms + self.retry_ms < self.deadline_ms:
            self.sleeping = True
            return Sleep(self.retry_ms)
        return self._answer(Done(done.receipt, error=TokenError()))

    def resume(self) -> Step:
        """After a ``Sleep``: the next round."""
        assert self.sleeping and not self.answered
        self.sleeping = False
        self.at = 0
        self.rounds += 1
        return ReadFirst(self.firsts[0])

    def covers(self, done: Done, now_ms: int) -> bool:
        t = self.token
        if done.record is not None or now_ms <= t.version.ms + self.grace_ms:
            return t.covered_by(done.record)
        return any(self.nodes[i] in t.replicas for i in done.receipt.answered)

    def _answer(self, done: Done) -> Answer:
        self.answered = True
        return Answer(done)
