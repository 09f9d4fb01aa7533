"""Sans-IO reader of replies, RESP2 and RESP3, with hiredis doing the parsing.

Owns: turning the bytes a server sends back into Python values, in order, and the typed
error reply. Never does IO: the clients (resp.client) feed it what they read.

Values as hiredis gives them: ``+`` and ``$`` are bytes (str when an ``encoding`` is
given), ``:`` int, ``*`` list, nulls None; RESP3 adds ``%`` dict, ``~`` and ``>`` list,
``,`` float, ``#`` bool, ``=`` bytes, ``(`` bytes. An error reply is a ``ReplyError``
value (a reader never raises it: the caller chooses); a malformed stream raises
``hiredis.ProtocolError`` from ``get``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import hiredis


class ReplyError(hiredis.ReplyError):
    """An error reply (``-TRYAGAIN ...``): its text without the ``-``; ``code`` is the
    first word. A ``hiredis.ReplyError`` too, for code that checks for that."""

    @property
    def code(self) -> str:
        return str(self).split(" ", 1)[0]


class _NeedData:
    """The type of ``NEED_DATA``: no complete reply yet (RESP3 ``#f`` is False, so
    hiredis's default marker for this would be ambiguous)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


class ReplyReader:
    """``feed(data)`` then ``get()`` until it returns ``NEED_DATA``. Both are hiredis's
    own bound methods: no Python call in between, per reply."""

    __slots__ = ("feed", "get")

    def __init__(self, encoding: str | None = None) -> None:
        if encoding is None:
            hr = hiredis.Reader(replyError=ReplyError, notEnoughData=NEED_DATA)
        else:
            hr = hiredis.Reader(
                replyError=ReplyError, notEnoughData=NEED_DATA, encoding=encoding, errors="replace"
            )
        self.feed: Callable[[bytes], None] = hr.feed
        self.get: Callable[[], Any] = hr.gets  # the next complete reply, or NEED_DATA
