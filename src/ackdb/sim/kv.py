"""The simulator's replicated state machine: a map of registers with client sessions.

Owns: command encoding (msgpack), applying committed entries in log order, snapshots.
Never does IO. Commands are ``[client_id, seq, op, key, a, b]`` with op ``put`` (a = value)
or ``cas`` (a = expected, b = new); reads never enter the log (they go through ReadIndex).
Each command runs through ``Sessions`` so a retried proposal takes effect once; the state
machine also remembers which (client, seq) it executed and asserts none runs twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from ackdb.consensus import Entry, EntryKind
from ackdb.consensus.sessions import Sessions, StaleRequest


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one command produced, for the client waiting on it."""

    client: str
    seq: int
    result: Any


def encode_command(client: str, seq: int, op: str, key: str, a: Any, b: Any = None) -> bytes:
    out = msgpack.packb([client, seq, op, key, a, b], use_bin_type=True)
    assert isinstance(out, bytes)
    return out


class KvStateMachine:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.sessions = Sessions(max_clients=1000, expiry_entries=100_000)
        self.applied = 0
        self._executed: set[tuple[str, int]] = set()

    def apply(self, e: Entry) -> Applied | None:
        assert e.index == self.applied + 1, f"apply {e.index} after {self.applied}"
        self.applied = e.index
        if e.kind != EntryKind.NORMAL:
            return None
        client, seq, op, key, a, b = msgpack.unpackb(e.data, raw=False)

        def run() -> Any:
            assert (client, seq) not in self._executed, f"{client}/{seq} executed twice"
            self._executed.add((client, seq))
            if op == "put":
                self.data[key] = a
                return "ok"
            assert op == "cas", op
            if self.data.get(key) == a:
                self.data[key] = b
                return True
            return False

        try:
            result = self.sessions.apply(client, seq, run, index=e.index)
        except StaleRequest:
            return None
        return Applied(client=client, seq=seq, result=result)

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def snapshot(self) -> bytes:
        out = msgpack.packb(
            [self.applied, sorted(self.data.items()), self.sessions.snapshot()], use_bin_type=True
        )
        assert isinstance(out, bytes)
        return out

    @classmethod
    def restore(cls, data: bytes, index: int) -> KvStateMachine:
        sm = cls()
        if data:
            applied, items, sessions = msgpack.unpackb(data, raw=False)
            assert applied == index, f"snapshot data at {applied}, snapshot at {index}"
            sm.data = dict(items)
            sm.sessions = Sessions.restore(sessions, max_clients=1000, expiry_entries=100_000)
        sm.applied = index
        return sm

    def digest(self) -> tuple[int, tuple[tuple[str, Any], ...]]:
        return self.applied, tuple(sorted(self.data.items()))
