"""The ordered-pipeline front end of a RESP server port, sans-IO.

Owns: one connection's requests from bytes to replies, in order. Bytes come in through
``receive_data``; the request reader (resp.reader) cuts them into requests; each request
goes to the ``handler``, which returns one of:

- ``bytes``: the reply, ready now;
- a ``Pending`` it completes later with ``complete(pending, reply)``;
- ``NOT_YET``: the request may not start now (an ordering rule of the caller, e.g. "a read
  waits for earlier writes"); it and every later request wait and are offered again
  after the next completion.

Rules:
- replies leave strictly in request order: a ready reply waits behind an earlier pending
  one; ``data_to_send`` returns every leading ready reply joined, so all replies produced
  by one read leave in one write;
- after ``close_after_reply`` (QUIT) no later request runs, and ``should_close`` turns
  True once every earlier reply has left;
- a protocol error: the requests before it still run, then its error reply (Redis's text)
  is queued and the connection closes after it, as Redis does.

Limits (named with units): the reader's ``bulk_max_bytes`` and ``query_buffer_max_bytes``;
``pending_count()`` (replies not yet sent plus requests not yet started) is what the shell
compares with its pending-replies limit to pause reading.

Never does IO, never reads a clock; resp.aio is its asyncio shell.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

from . import encoder as enc
from .reader import RequestReader


class Pending:
    """A reply its handler gives later; ``reply`` is None until then."""

    __slots__ = ("reply",)

    def __init__(self) -> None:
        self.reply: bytes | None = None


class NotYet:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_YET"


NOT_YET: Final = NotYet()

Handler = Callable[[list[bytes]], "bytes | Pending | NotYet"]


class FrontEnd:
    """One connection's ordered pipeline; see the module docstring."""

    __slots__ = ("handler", "reader", "closing", "_slots", "_waiting", "_starting")

    def __init__(self, handler: Handler, bulk_max_bytes: int, query_buffer_max_bytes: int) -> None:
        self.handler = handler
        self.reader = RequestReader(bulk_max_bytes, query_buffer_max_bytes)
        self.closing = False  # no further request runs; close once the replies are out
        # Replies in request order: bytes when ready, a Pending while its handler works.
        self._slots: deque[bytes | Pending] = deque()
        # Requests not started yet (NOT_YET); a bytes item is a protocol error's reply.
        self._waiting: deque[list[bytes] | bytes] = deque()
        self._starting = False  # inside _start: completions must not re-enter it

    # -- input --------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.closing:
            return
        reader = self.reader
        self._waiting.extend(reader.feed(data))
        err = reader.error
        if err is not None:
            # Runs after the requests before it; an error without text closes silently.
            self._waiting.append(enc.error(err.reply) if err.reply else b"")
        self._start()

    def complete(self, pending: Pending, reply: bytes) -> bool:
        """Give ``pending`` its reply (a second reply is ignored). True when replies can
        now leave (``pending`` was the oldest unanswered one)."""
        if pending.reply is not None:
            return False
        pending.reply = reply
        if self._waiting and not self._starting:
            self._start()
        return bool(self._slots) and self._slots[0] is pending

    def close_after_reply(self) -> None:
        """Run nothing after the current request; close once its reply has left (QUIT)."""
        self.closing = True

    # -- output -------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Every leading ready reply, joined (b"" if none)."""
        slots = self._slots
        out: list[bytes] = []
        while slots:
            head = slots[0]
            if head.__class__ is not bytes:
                assert isinstance(head, Pending)
                if head.reply is None:
                    break
                head = head.reply
            slots.popleft()
            out.append(head)
        return b"".join(out)

    @property
    def should_close(self) -> bool:
        return self.closing and not self._slots

    def pending_count(self) -> int:
        """Replies not sent yet plus requests not started (the pending-replies limit)."""
        return len(self._slots) + len(self._waiting)

    # -- running requests in order ------------------------------------------------------

    def _start(self) -> None:
        self._starting = True
        try:
            self._start_waiting()
        finally:
            self._starting = False

    def _start_waiting(self) -> None:
        waiting = self._waiting
        slots = self._slots
        handler = self.handler
        while waiting:
            if self.closing:  # QUIT or a protocol error: nothing after it runs
                waiting.clear()
                return
            item = waiting[0]
            if item.__class__ is bytes:  # a protocol error, in its place in the order
                waiting.clear()
                if item:
                    slots.append(item)
                self.closing = True
                return
            result = handler(item)  # type: ignore[arg-type]
            if result is NOT_YET:
                return
            waiting.popleft()
            slots.append(result)  # type: ignore[arg-type]
