"""Client sessions: a retried command is applied once (Raft dissertation §6.3).

Owns: per client id, the highest sequence number applied and its result, so that the
state machine recognises a retry (same seq: answer from memory) or a delayed duplicate
(older seq: refuse) instead of executing the command again. Never does IO and never reads
a clock: sessions expire deterministically by log index, so every replica applying the
same log expires the same sessions at the same entry.

Rules:
- a client has at most one command outstanding and numbers its commands 1, 2, 3, ...;
  it may skip numbers (after giving up on a command);
- ``apply(client_id, seq, fn, index=i)``: seq > last: run ``fn`` and remember its result;
  seq == last: return the remembered result without running ``fn``; seq < last: raise
  ``StaleRequest`` (the client already moved on; nobody waits for this answer);
- a session is forgotten after ``expiry_entries`` log entries without a command from its
  client, and the least recently active session is forgotten when ``max_clients`` are
  held. A duplicate that arrives after its session was forgotten is executed again: the
  limit is a trade of memory against that risk, so expiry must be far longer than any
  client keeps retrying (the default, a million entries, is).

Results must be msgpack-able (they go into the state machine's snapshot).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")

SNAPSHOT_VERSION = 1


class StaleRequest(Exception):
    """A command older than the client's latest: a delayed duplicate."""


class Sessions:
    def __init__(self, max_clients: int = 100_000, expiry_entries: int = 1_000_000) -> None:
        assert max_clients >= 1 and expiry_entries >= 1
        self.max_clients = max_clients
        self.expiry_entries = expiry_entries
        # client id -> [last seq, result, log index of last activity]; least recent first.
        self._clients: OrderedDict[str, list[Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def last_seq(self, client_id: str) -> int:
        s = self._clients.get(client_id)
        return 0 if s is None else int(s[0])

    def apply(self, client_id: str, seq: int, fn: Callable[[], R], *, index: int) -> R:
        assert seq >= 1, "sequence numbers start at 1"
        self._expire(index)
        s = self._clients.get(client_id)
        if s is not None:
            if seq < s[0]:
                raise StaleRequest(f"client {client_id}: seq {seq} < last {s[0]}")
            s[2] = index
            self._clients.move_to_end(client_id)
            if seq == s[0]:
                result: R = s[1]
                return result
        result = fn()
        if s is None:
            self._clients[client_id] = [seq, result, index]
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
        else:
            s[0] = seq
            s[1] = result
        return result

    def _expire(self, index: int) -> None:
        while self._clients:
            first = next(iter(self._clients.values()))
            if first[2] + self.expiry_entries >= index:
                return
            self._clients.popitem(last=False)

    def snapshot(self) -> list[Any]:
        """A msgpack-able image, in activity order (so expiry stays identical)."""
        return [SNAPSHOT_VERSION, [[cid, s[0], s[1], s[2]] for cid, s in self._clients.items()]]

    @classmethod
    def restore(
        cls, image: list[Any], max_clients: int = 100_000, expiry_entries: int = 1_000_000
    ) -> Sessions:
        version, clients = image
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported sessions snapshot version {version!r}")
        out = cls(max_clients=max_clients, expiry_entries=expiry_entries)
        for cid, seq, result, index in clients:
            out._clients[str(cid)] = [int(seq), result, int(index)]
        return out
