"""Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN, ...): who waits, who is served next.

Owns: the queues of blocked clients per (database, key), their deadlines, and the rule
that serves them: when a write makes an awaited key ready, the clients waiting on it are
woken in the order they blocked (first come, first served), each re-running its blocking
command as if it had just arrived; one that finds nothing left blocks again, keeping its
place in time (its original deadline) and in the queues (XREAD / XREADGROUP waiters stay
in their order while others are served). Never touches sockets: a woken client's held
commands are re-run through its connection's ``resume_commands``.

A command blocks by raising ``BlockRequest`` from its handler. Inside EXEC (and whenever
blocking is not allowed) the core answers the request's ``timeout_reply`` at once, as
Redis does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..keyspace.db import Database
    from .client import Client


class BlockRequest(Exception):
    """Raised by a blocking command that found nothing to serve.

    ``keys`` are awaited in the client's current database; ``timeout_ms`` is relative
    (0 waits forever); ``timeout_reply`` is the encoded reply when time runs out, and
    ``now_reply`` the one given at once where blocking is not allowed (inside EXEC) —
    Redis answers a timed-out BLMOVE with a null array but a BLMOVE in EXEC with a null.
    """

    def __init__(
        self, keys: list[bytes], timeout_ms: int, timeout_reply: bytes, now_reply: bytes = b""
    ) -> None:
        super().__init__("blocked")
        self.keys = keys
        self.timeout_ms = timeout_ms
        self.timeout_reply = timeout_reply
        self.now_reply = now_reply or timeout_reply


class BlockedState:
    __slots__ = ("db", "keys", "deadline_ms", "timeout_reply", "since_ms")

    def __init__(
        self, db: Database, keys: list[bytes], deadline_ms: int, timeout_reply: bytes, since_ms: int
    ) -> None:
        self.db = db
        self.keys = keys
        self.deadline_ms = deadline_ms  # absolute; 0 = forever
        self.timeout_reply = timeout_reply
        self.since_ms = since_ms


class Blocking:
    """The blocked clients of one server."""

    def __init__(self) -> None:
        self.queues: dict[tuple[int, bytes], deque[Client]] = {}
        self.ready: list[tuple[Database, bytes]] = []
        self.blocked: set[Client] = set()
        # Set by the shell: called with a deadline (ms) to wake at.
        self.timer_cb: Callable[[int], None] | None = None

    def __len__(self) -> int:
        return len(self.blocked)

    def keys_count(self) -> int:
        return len(self.queues)

    def block(self, c: Client, req: BlockRequest, now_ms: int) -> None:
        db = c.db
        # A client woken for nothing blocks again with its first deadline.
        deadline = c.block_deadline_ms
        if not deadline and req.timeout_ms:
            deadline = now_ms + req.timeout_ms
        c.block_deadline_ms = deadline
        c.blocked = BlockedState(
            db, list(dict.fromkeys(req.keys)), deadline, req.timeout_reply, now_ms
        )
        for key in c.blocked.keys:
            q = self.queues.get((db.index, key))
            if q is None:
                q = self.queues[(db.index, key)] = deque()
                db.awaited.add(key)
            q.append(c)
        self.blocked.add(c)
        if deadline and self.timer_cb is not None:
            self.timer_cb(deadline)

    def unblock(self, c: Client) -> BlockedState | None:
        """Take ``c`` out of every queue; returns what it was waiting for."""
        st: BlockedState | None = c.blocked
        if st is None:
            return None
        c.blocked = None
        self.blocked.discard(c)
        for key in st.keys:
            wk = (st.db.index, key)
            q = self.queues.get(wk)
            if q is None:
                continue
            try:
                q.remove(c)
            except ValueError:
                pass
            if not q:
                del self.queues[wk]
                st.db.awaited.discard(key)
        return st

    def answer(self, c: Client, reply: bytes) -> None:
        """End ``c``'s wait with ``reply`` as its blocked command's answer (a timeout, CLIENT
        UNBLOCK, WAIT reached, an error); the commands it sent meanwhile run next."""
        self.unblock(c)
        c.block_deadline_ms = 0
        c.conn.resume_commands(skip_first_with=reply)

    def key_ready(self, db: Database, key: bytes) -> None:
        if (db.index, key) in self.queues:
            self.ready.append((db, key))

    def serve_ready(self) -> None:
        """Wake the clients waiting on keys that became ready, in blocking order.

        Serving one client may make more keys ready (BLMOVE pushes to its destination):
        the loop runs until no key is left ready."""
        while self.ready:
            ready = self.ready[:]
            self.ready.clear()  # in place: the core keeps a reference to this list
            for db, key in ready:
                q = self.queues.get((db.index, key))
                if not q:
                    continue
                for c in list(q):
                    if c.blocked is None:
                        continue
                    if key not in db.data:
                        break  # consumed: the rest keep waiting
                    places = self._places(c)
                    self.unblock(c)
                    c.conn.resume_commands()
                    if _blocked_now(c) is None:  # (it may block again on a held command)
                        c.block_deadline_ms = 0
                    else:
                        self._restore(c, places)

    def _places(self, c: Client) -> dict[tuple[int, bytes], int]:
        """Where ``c`` stands in each queue it waits in."""
        st = c.blocked
        assert st is not None
        out = {}
        for key in st.keys:
            wk = (st.db.index, key)
            q = self.queues.get(wk)
            if q is not None:
                out[wk] = q.index(c)
        return out

    def _restore(self, c: Client, places: dict[tuple[int, bytes], int]) -> None:
        """A woken client that found nothing (an XREAD whose stream got no entry above
        its id, a consumer whose group another consumer served) blocked again: it takes
        back its places in the queues, as Redis leaves an unserved client where it was."""
        for wk, at in places.items():
            q = self.queues.get(wk)
            if q is not None and q and q[-1] is c and at < len(q) - 1:
                q.pop()
                q.insert(at, c)

    def expire(self, now_ms: int) -> None:
        """Answer the clients whose time ran out with their timeout reply."""
        due = [
            c
            for c in self.blocked
            if (st := c.blocked) is not None and st.deadline_ms and st.deadline_ms <= now_ms
        ]
        for c in due:
            st = c.blocked
            if st is not None:  # answering an earlier one may have served this one
                self.answer(c, st.timeout_reply)

    def next_deadline(self) -> int:
        ds = [c.blocked.deadline_ms for c in self.blocked if c.blocked and c.blocked.deadline_ms]
        return min(ds) if ds else 0


def _blocked_now(c: Client) -> BlockedState | None:
    """``c.blocked`` read afresh. After a check of ``c.blocked`` and calls that may change
    it, mypy still narrows the attribute to the checked type; compiled (mypyc), that
    narrowed read would raise on None."""
    return c.blocked
