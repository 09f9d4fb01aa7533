"""Raw replies: finding where each reply a shard sends ends, without decoding it.

Owns: ``ReplySplitter`` (bytes in, complete replies out as the exact bytes the shard sent,
RESP2 and RESP3) and the few readers the merges need (``items`` of an aggregate, ``as_int``,
``is_error``). The proxy forwards a shard's reply bytes unchanged; it only needs their
boundaries, so nothing is decoded on the plain path. Never does IO.

States of the splitter: between replies (``_acc`` and ``_head`` empty) or inside one:
``_acc`` holds the bytes not scanned yet (from the first byte of an element whose end has
not arrived), ``_head`` the unfinished reply's bytes before them, already scanned
(``_held`` bytes), ``_stack`` the elements still owed by each open aggregate, ``_need``
the length ``_acc`` must reach before scanning is worth resuming, and ``_line`` how many
bytes of ``_acc`` are known to hold no CR when it begins with an unfinished simple line.
So a reply arriving in many reads costs time linear in its length: a long bulk string is
scanned once, a long array's scanned part is never scanned or copied again, and a long
line is searched from where the last search stopped.
"""

from __future__ import annotations

from typing import Final

import hiredis

from ..resp.ints import digit_run

# Type bytes. Aggregates: * array, ~ set, > push, % map, | attribute.
_ARRAY: Final = 0x2A
_SET: Final = 0x7E
_PUSH: Final = 0x3E
_MAP: Final = 0x25
_ATTR: Final = 0x7C
# Blob types with a length header: $ bulk, = verbatim, ! blob error.
_BLOB = frozenset({0x24, 0x3D, 0x21})
_SIMPLE = frozenset({0x2B, 0x2D, 0x3A, 0x2C, 0x23, 0x5F, 0x28})  # + - : , # _ (
_AGG = frozenset({_ARRAY, _SET, _PUSH, _MAP, _ATTR})
# What each type byte begins, as one table the scanner indexes (0: not RESP).
_KIND_BLOB: Final = 1
_KIND_SIMPLE: Final = 2
_KIND_AGG: Final = 3
_KINDS: Final = bytes(
    _KIND_BLOB if b in _BLOB else _KIND_SIMPLE if b in _SIMPLE else _KIND_AGG if b in _AGG else 0
    for b in range(256)
)
# The longest header line a shard may send before the stream counts as broken (bytes).
LINE_MAX_BYTES: Final = 64 * 1024
# A length or count header's digits (Redis sends at most 20, for a negative 64-bit int).
_DIGITS_MAX: Final = 18


class ReplyProtocolError(Exception):
    """The shard's byte stream is not RESP: the connection must be dropped."""


class ReplySplitter:
    """``feed(data)`` returns the replies completed by ``data``, each as raw bytes."""

    __slots__ = ("_acc", "_head", "_held", "_stack", "_need", "_line")

    def __init__(self) -> None:
        self._acc = bytearray()
        self._head: list[bytes] = []
        self._held = 0
        self._stack: list[int] = []
        self._need = 0
        self._line = 0

    def pending_bytes(self) -> int:
        return len(self._acc) + self._held

    def feed(self, data: bytes) -> list[bytes]:
        if self._acc:
            acc = self._acc
            acc += data
            if len(acc) < self._need:
                return []
            if self._line and acc.find(b"\r", self._line) < 0:  # the line goes on
                if len(acc) > LINE_MAX_BYTES:
                    raise ReplyProtocolError("header line too long")
                self._line = len(acc)
                return []
            data = bytes(acc)
            self._acc = bytearray()
        return self._scan(data)

    def _scan(self, buf: bytes) -> list[bytes]:  # noqa: C901 - one hot loop
        out: list[bytes] = []
        n = len(buf)
        start = pos = need = line = 0
        stack, head, kinds = self._stack, self._head, _KINDS
        while pos < n:
            t = buf[pos]
            kind = kinds[t]
            if kind == _KIND_BLOB:
                size, end = _header(buf, pos + 1, n)
                if end < 0:
                    break
                if size >= 0:
                    end += size + 2
                    if end > n:
                        need = end
                        break
                elif size != -1:  # $-1: the RESP2 null
                    raise ReplyProtocolError(f"bad length {size}")
            elif kind == _KIND_SIMPLE:
                k = pos + 1
                while k < n and buf[k] != 0x0D:
                    k += 1
                if k + 1 >= n:
                    if n - pos > LINE_MAX_BYTES:
                        raise ReplyProtocolError("header line too long")
                    line = k - pos
                    break
                if buf[k + 1] != 0x0A:
                    raise ReplyProtocolError("CR without LF in a line")
                end = k + 2
            elif kind == _KIND_AGG:
                count, end = _header(buf, pos + 1, n)
                if end < 0:
                    break
                pos = end
                if count > 0:
                    if t == _MAP:
                        count *= 2
                    elif t == _ATTR:
                        count = count * 2 + 1  # the attribute map, then the value it annotates
                    stack.append(count)
                    continue
                if count < -1:
                    raise ReplyProtocolError(f"bad count {count}")
                # empty or null aggregate: a complete element
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
                if head:
                    head.append(buf[start:pos])
                    out.append(b"".join(head))
                    head.clear()
                    self._held = 0
                else:
                    out.append(buf[start:pos])
                start = pos
        if start < pos:  # an unfinished reply's scanned part
            head.append(buf[start:pos])
            self._held += pos - start
        if pos < n:
            self._acc = bytearray(buf[pos:]) if pos else bytearray(buf)
            self._need = need - pos if need else 0
        self._line = line
        return out


def _header(buf: bytes, pos: int, n: int) -> tuple[int, int]:
    """The signed decimal number of the header line whose digits start at ``pos``, and the
    position after the line's CR LF; ``(0, -1)`` while the line has not all arrived.
    Anything but an optional minus sign, 1 to 18 digits and CR LF breaks the stream."""
    k = pos
    negative = k < n and buf[k] == 0x2D
    if negative:
        k += 1
    first = k
    value, k = digit_run(buf, k, n, _DIGITS_MAX)
    digits = k - first
    if digits > _DIGITS_MAX:
        raise ReplyProtocolError("length out of range")
    if k >= n:
        return 0, -1  # more digits may follow
    if digits == 0 or buf[k] != 0x0D:
        raise ReplyProtocolError("bad length or count line")
    if k + 1 >= n:
        return 0, -1
    if buf[k + 1] != 0x0A:
        raise ReplyProtocolError("CR without LF in a line")
    return (-value if negative else value), k + 2


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
