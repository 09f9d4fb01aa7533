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
    """``feed(data)`` then ``get()`` until it returns ``NEED_DATA``."""

    __slots__ = ("_hr",)

    def __init__(self, encoding: str | None = None) -> None:
        if encoding is None:
            self._hr = hiredis.Reader(replyError=ReplyError, notEnoughData=NEED_DATA)
        else:
            self._hr = hiredis.Reader(
                replyError=ReplyError, notEnoughData=NEED_DATA, encoding=encoding, errors="replace"
            )

    def feed(self, data: bytes) -> None:
        self._hr.feed(data)

    def get(self) -> Any:
        """The next complete reply, or ``NEED_DATA``."""
        return self._hr.gets()
