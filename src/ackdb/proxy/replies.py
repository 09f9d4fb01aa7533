"""Raw replies: finding where each reply a shard sends ends, without decoding it.

Owns: ``ReplySplitter`` (bytes in, complete replies out as the exact bytes the shard sent,
RESP2 and RESP3) and the few readers the merges need (``items`` of an aggregate, ``as_int``,
``is_error``). The proxy forwards a shard's reply bytes unchanged; it only needs their
boundaries, so nothing is decoded on the plain path. Never does IO.

States of the splitter: between replies (``_buf`` empty) or inside one: ``_start`` is where
the current reply began in ``_buf``, ``_pos`` how far it is scanned, ``_stack`` the elements
still owed by each open aggregate, ``_need`` the length ``_buf`` must reach before scanning
is worth resuming (a long bulk string arriving in many reads is scanned once, and a long
array is never rescanned from its start).
"""

from __future__ import annotations

import hiredis

# Type bytes. Aggregates: * array, ~ set, > push, % map, | attribute.
_ARRAY, _SET, _PUSH, _MAP, _ATTR = 0x2A, 0x7E, 0x3E, 0x25, 0x7C
# Blob types with a length header: $ bulk, = verbatim, ! blob error.
_BLOB = frozenset({0x24, 0x3D, 0x21})
_SIMPLE = frozenset({0x2B, 0x2D, 0x3A, 0x2C, 0x23, 0x5F, 0x28})  # + - : , # _ (
_AGG = frozenset({_ARRAY, _SET, _PUSH, _MAP, _ATTR})
# The longest header line a shard may send before the stream counts as broken (bytes).
LINE_MAX_BYTES = 64 * 1024


class ReplyProtocolError(Exception):
    """The shard's byte stream is not RESP: the connection must be dropped."""


class ReplySplitter:
    """``feed(data)`` returns the replies completed by ``data``, each as raw bytes."""

    __slots__ = ("_buf", "_start", "_pos", "_stack", "_need")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._start = 0
        self._pos = 0
        self._stack: list[int] = []
        self._need = 0

    def pending_bytes(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return []
            return self._scan(self._buf)
        return self._scan(data)

    def _scan(self, buf: bytes | bytearray) -> list[bytes]:  # noqa: C901 - one hot loop
        out: list[bytes] = []
        n = len(buf)
        start, pos, stack = self._start, self._pos, self._stack
        need = 0
        find = buf.find
        while pos < n:
            t = buf[pos]
            eol = find(b"\r\n", pos)
            if eol < 0:
                if n - pos > LINE_MAX_BYTES:
                    raise ReplyProtocolError("header line too long")
                break
            if t in _BLOB:
                size = int(buf[pos + 1 : eol])
                if size < 0:  # $-1: the RESP2 null
                    end = eol + 2
                else:
                    end = eol + 4 + size
                    if end > n:
                        need = end
                        break
            elif t in _SIMPLE:
                end = eol + 2
            elif t in _AGG:
                count = int(buf[pos + 1 : eol])
                pos = eol + 2
                if count > 0:
                    if t == _MAP:
                        count *= 2
                    elif t == _ATTR:
                        count = count * 2 + 1  # the attribute map, then the value it annotates
                    stack.append(count)
                    continue
                end = pos  # empty or null aggregate: a complete element
            else:
                raise ReplyProtocolError(f"unexpected type byte {t!r}")
            pos = end
            # One element done: close every aggregate it completes.
            while stack:
                stack[-1] -= 1
                if stack[-1]:
                    break
                stack.pop()
            if not stack:
                out.append(bytes(buf[start:pos]))
                start = pos
        if start >= n:
            self._buf = bytearray()
            self._start = self._pos = self._need = 0
            return out
        shift = 0
        if buf is not self._buf:
            self._buf = bytearray(buf[start:])
            shift = start
        elif start > 65536:
            del self._buf[:start]
            shift = start
        self._start, self._pos = start - shift, pos - shift
        self._need = max(need - shift, 0)
        return out


class _Need:
    __slots__ = ()


_NEED = _Need()
_PROBE = b"+\r\n"  # an empty status reply


class ReplyCounter:
    """Counts the replies in a chunk with hiredis's C parser, for the pass-through path:
    when every reply a client is owed comes from one shard connection, a chunk that ends on
    a reply boundary is forwarded whole and only counted."""

    __slots__ = ("_r",)

    def __init__(self) -> None:
        self._r = hiredis.Reader(notEnoughData=_NEED)

    def count(self, data: bytes) -> int | None:
        """The replies in ``data``; None when it does not end on a reply boundary (or is
        not RESP): the caller splits it instead.

        hiredis consumes what it can of an unfinished reply (a lone type byte, an array's
        header and its complete elements) and ``has_data`` is then False: the empty
        status ``_PROBE`` read back as itself proves the reader was between replies."""
        r = self._r
        n = 0
        try:
            r.feed(data)
            while r.gets() is not _NEED:
                n += 1
            if not r.has_data():
                r.feed(_PROBE)
                if r.gets() == b"":
                    return n
        except hiredis.ProtocolError:
            pass
        self._r = hiredis.Reader(notEnoughData=_NEED)
        return None


def header(raw: bytes) -> tuple[int, int, int]:
    """(type byte, count or length, offset after the header line) of one raw reply."""
    eol = raw.index(b"\r\n")
    value = int(raw[1:eol]) if raw[0] in _AGG or raw[0] in _BLOB or raw[0] == 0x3A else 0
    return raw[0], value, eol + 2


def items(raw: bytes) -> list[bytes]:
    """The elements of one aggregate reply, each as raw bytes (a map's keys and values
    alternate); [] for an empty or null aggregate."""
    _, count, body = header(raw)
    if count <= 0:
        return []
    return ReplySplitter().feed(raw[body:])


def is_error(raw: bytes) -> bool:
    return raw[0] == 0x2D or raw[0] == 0x21


def as_int(raw: bytes) -> int | None:
    """The value of an integer reply, or None for any other reply."""
    if raw[0] != 0x3A:
        return None
    return int(raw[1:-2])


def is_null(raw: bytes) -> bool:
    return raw in (b"$-1\r\n", b"*-1\r\n", b"_\r\n")


def bulk_value(raw: bytes) -> bytes | None:
    """The payload of a bulk or simple string reply, None for anything else."""
    t = raw[0]
    if t == 0x24:
        eol = raw.index(b"\r\n")
        if raw[1:eol] == b"-1":
            return None
        return raw[eol + 2 : -2]
    if t == 0x2B:
        return raw[1:-2]
    if t == 0x3D:  # verbatim: "txt:" then the text
        eol = raw.index(b"\r\n")
        return raw[eol + 2 + 4 : -2]
    return None
