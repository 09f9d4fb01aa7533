"""Reply encoding for RESP2 and RESP3.

Owns: the bytes of every reply shape. Command handlers return encoded bytes; shapes that
differ between protocol versions (null, maps, sets, doubles, booleans, push) go through the
client's ``Resp2`` or ``Resp3`` object, so a handler never branches on the version itself.
Never touches sockets or the keyspace.
"""

from __future__ import annotations

from collections.abc import Iterable

OK = b"+OK\r\n"
QUEUED = b"+QUEUED\r\n"
PONG = b"+PONG\r\n"
ZERO = b":0\r\n"
ONE = b":1\r\n"
EMPTY_ARRAY = b"*0\r\n"
EMPTY_BULK = b"$0\r\n\r\n"

_SMALL_INTS = [b":%d\r\n" % i for i in range(-1, 10001)]


def integer(n: int) -> bytes:
    if -1 <= n <= 10000:
        return _SMALL_INTS[n + 1]
    return b":%d\r\n" % n


def bulk(v: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(v), v)


def simple(s: str | bytes) -> bytes:
    if isinstance(s, str):
        s = s.encode()
    return b"+" + s.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"


def error(msg: str) -> bytes:
    """An error reply. ``msg`` starts with its code (``ERR``, ``WRONGTYPE``...); newlines
    are replaced by spaces as Redis does, so the reply stays one line."""
    return b"-" + msg.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace") + b"\r\n"


def array(encoded: list[bytes]) -> bytes:
    """An array of already encoded items."""
    return b"*%d\r\n" % len(encoded) + b"".join(encoded)


def bulk_array(values: Iterable[bytes]) -> bytes:
    parts = [b"$%d\r\n%s\r\n" % (len(v), v) for v in values]
    return b"*%d\r\n" % len(parts) + b"".join(parts)


def verbatim_text(p: Resp2 | Resp3, text: str) -> bytes:
    return p.verbatim(text.encode())


class Resp2:
    """RESP2 shapes: nulls are $-1 / *-1, maps flatten to arrays, doubles are bulks."""

    version = 2
    null = b"$-1\r\n"
    null_array = b"*-1\r\n"
    true = b":1\r\n"
    false = b":0\r\n"

    @staticmethod
    def bulk_or_null(v: bytes | None) -> bytes:
        if v is None:
            return b"$-1\r\n"
        return b"$%d\r\n%s\r\n" % (len(v), v)

    @staticmethod
    def bulks_or_null(values: Iterable[bytes | None]) -> bytes:
        parts = [b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v) for v in values]
        return b"*%d\r\n" % len(parts) + b"".join(parts)

    @staticmethod
    def map_header(n: int) -> bytes:
        return b"*%d\r\n" % (2 * n)

    @staticmethod
    def set_header(n: int) -> bytes:
        return b"*%d\r\n" % n

    @staticmethod
    def push_header(n: int) -> bytes:
        return b"*%d\r\n" % n

    @staticmethod
    def double(text: bytes) -> bytes:
        """A double given as its Redis text form (see keyspace.numbers)."""
        return b"$%d\r\n%s\r\n" % (len(text), text)

    @staticmethod
    def verbatim(text: bytes) -> bytes:
        return b"$%d\r\n%s\r\n" % (len(text), text)

    @classmethod
    def map_bulks(cls, pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
        parts = []
        for k, v in pairs:
            parts.append(b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
        return cls.map_header(len(parts)) + b"".join(parts)

    @classmethod
    def map_encoded(cls, pairs: list[tuple[bytes, bytes]]) -> bytes:
        """A map whose keys and values are already encoded replies."""
        return cls.map_header(len(pairs)) + b"".join(k + v for k, v in pairs)


class Resp3(Resp2):
    """RESP3 shapes: _ null, % maps, ~ sets, , doubles, # booleans, = verbatim, > push."""

    version = 3
    null = b"_\r\n"
    null_array = b"_\r\n"
    true = b"#t\r\n"
    false = b"#f\r\n"

    @staticmethod
    def bulk_or_null(v: bytes | None) -> bytes:
        if v is None:
            return b"_\r\n"
        return b"$%d\r\n%s\r\n" % (len(v), v)

    @staticmethod
    def bulks_or_null(values: Iterable[bytes | None]) -> bytes:
        parts = [b"_\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v) for v in values]
        return b"*%d\r\n" % len(parts) + b"".join(parts)

    @staticmethod
    def map_header(n: int) -> bytes:
        return b"%%%d\r\n" % n

    @staticmethod
    def set_header(n: int) -> bytes:
        return b"~%d\r\n" % n

    @staticmethod
    def push_header(n: int) -> bytes:
        return b">%d\r\n" % n

    @staticmethod
    def double(text: bytes) -> bytes:
        return b",%s\r\n" % text

    @staticmethod
    def verbatim(text: bytes) -> bytes:
        return b"=%d\r\ntxt:%s\r\n" % (len(text) + 4, text)


RESP2 = Resp2()
RESP3 = Resp3()
