"""Simulated clients of the key-value register map, and the history they record.

Owns: choosing operations (put, get, cas on a few keys), sending them to the member
believed to lead, retrying on refusal or timeout with the SAME sequence number (so the
state machine's sessions apply a write once), and recording each operation's invoke and
return times for the linearizability check. A write given up on is recorded with an
unknown outcome; a read given up on is dropped (it had no effect). Never does IO.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ackdb.consensus import ProposalDropped
from ackdb.sim.kv import encode_command
from ackdb.sim.linearizability import Op, OpKind
from ackdb.sim.node import SimNode

# An attempt unanswered after this long is retried elsewhere (simulated ms).
ATTEMPT_TIMEOUT_MS = 150
# An operation unanswered after this long is given up (simulated ms).
OP_TIMEOUT_MS = 1500
# Pause after a refusal before the next attempt (simulated ms).
RETRY_PAUSE_MS = 10


@dataclass(slots=True)
class Pending:
    kind: OpKind
    key: str
    seq: int
    invoke: int
    value: Any = None
    expected: Any = None
    attempts: int = 0


@dataclass(slots=True)
class SimClient:
    id: str
    rng: random.Random
    keys: tuple[str, ...]
    history: list[Op]
    # (delay_ms, client id, token): the world calls ``wake(token)`` after the delay.
    schedule: Callable[[int, str, int], None]
    # The simulated time (ms); replies arrive synchronously from a member's apply loop.
    clock: Callable[[], int]
    seq: int = 0
    token: int = 0
    op: Pending | None = None
    leader_guess: str | None = None
    last_seen: dict[str, Any] = field(default_factory=dict)
    active: bool = True
    completed: int = 0
    writes_only: bool = False  # the liveness probe: every operation is a put

    def wake(self, now: int, token: int, nodes: dict[str, SimNode]) -> None:
        if token != self.token:
            return  # a timer of an earlier attempt
        if self.op is None:
            if self.active:
                self._begin(now)
                self._attempt(now, nodes)
            return
        if now - self.op.invoke >= OP_TIMEOUT_MS:
            self._give_up(now)
            return
        self.leader_guess = None
        self._attempt(now, nodes)

    def _begin(self, now: int) -> None:
        self.seq += 1
        key = self.rng.choice(self.keys)
        r = 0.0 if self.writes_only else self.rng.random()
        if r < 0.4:
            self.op = Pending(OpKind.PUT, key, self.seq, now, value=f"{self.id}-{self.seq}")
        elif r < 0.8:
            self.op = Pending(OpKind.GET, key, self.seq, now)
        else:
            expected = self.last_seen.get(key)
            value = f"{self.id}-{self.seq}"
            self.op = Pending(OpKind.CAS, key, self.seq, now, value=value, expected=expected)

    def _attempt(self, now: int, nodes: dict[str, SimNode]) -> None:
        op = self.op
        assert op is not None
        op.attempts += 1
        self.token += 1
        token = self.token
        target = self.leader_guess
        if target is None or target not in nodes:
            target = self.rng.choice(sorted(nodes))
        node = nodes[target]
        seq = op.seq

        def reply(result: Any) -> None:
            self._on_reply(seq, result)

        try:
            if op.kind == OpKind.GET:
                ctx = f"{self.id}/{seq}/{op.attempts}".encode()
                node.read(ctx, op.key, reply)
            else:
                name = "put" if op.kind == OpKind.PUT else "cas"
                a, b = (op.value, None) if op.kind == OpKind.PUT else (op.expected, op.value)
                data = encode_command(self.id, seq, name, op.key, a, b)
                node.propose(self.id, seq, data, reply)
        except ProposalDropped as exc:
            self.leader_guess = exc.leader
            self.schedule(RETRY_PAUSE_MS, self.id, token)
            return
        self.leader_guess = target
        self.schedule(ATTEMPT_TIMEOUT_MS, self.id, token)

    def _on_reply(self, seq: int, result: Any) -> None:
        op = self.op
        if op is None or op.seq != seq:
            return
        now = self.clock()
        if op.kind == OpKind.GET:
            self.last_seen[op.key] = result
        elif op.kind == OpKind.PUT:
            self.last_seen[op.key] = op.value
        elif result:
            self.last_seen[op.key] = op.value
        self._record(op, now, result)
        self.completed += 1
        self._next(now)

    def _give_up(self, now: int) -> None:
        op = self.op
        assert op is not None
        if op.kind != OpKind.GET:
            self._record(op, None, None)
        self._next(now)

    def _record(self, op: Pending, ret: int | None, result: Any) -> None:
        self.history.append(
            Op(
                client=self.id,
                kind=op.kind,
                key=op.key,
                invoke=op.invoke,
                ret=ret,
                value=op.value,
                expected=op.expected,
                output=result,
            )
        )

    def _next(self, now: int) -> None:
        self.op = None
        self.token += 1
        if self.active:
            self.schedule(self.rng.randint(0, 30), self.id, self.token)
