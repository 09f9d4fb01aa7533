"""The DUMP / RESTORE payload: one value in ackdb's own format, versioned and checksummed.

Owns: ``dump(value)`` and ``restore(payload)``. The layout, like Redis's, puts the
checks at the end:

    body     msgpack [type code, value]   (the snapshot's value forms: string = bytes,
             hash = flat [field, value, ...], list, set, sorted set = flat
             [member, score, ...], stream = ``stream_plain.to_plain``)
    footer   version (u16, little endian) + b"AK" + crc32 of body and the four bytes
             before it (u32, little endian)                                   8 bytes

A payload whose footer does not match (a Redis payload, another version, flipped bits)
is ``WrongPayload``; one whose checksum holds but whose body is no value ackdb can hold
(an empty collection, a NaN score, a wrong shape) is ``BadData``. Never touches I/O.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections import deque
from typing import Any

import msgpack

from .stream import Stream
from .stream_plain import from_plain, to_plain
from .zset import ZSet

VERSION = 1
MAGIC = b"AK"
_FOOT = struct.Struct("<H2sI")
T_STRING, T_HASH, T_LIST, T_SET, T_ZSET, T_STREAM = range(6)


class WrongPayload(ValueError):
    """Not a payload of this version: Redis's "DUMP payload version or checksum are wrong"."""


class BadData(ValueError):
    """The checksum holds but the body is no value: Redis's "Bad data format"."""


def _flat(pairs: Any) -> list[Any]:
    out: list[Any] = []
    for a, b in pairs:
        out.append(a)
        out.append(b)
    return out


def _encode(v: Any) -> list[Any]:
    cls = v.__class__
    if cls is bytes:
        return [T_STRING, v]
    if cls is dict:
        return [T_HASH, _flat(v.items())]
    if cls is deque:
        return [T_LIST, list(v)]
    if cls is set:
        return [T_SET, list(v)]
    if cls is ZSet:
        return [T_ZSET, _flat(v)]
    if cls is Stream:
        return [T_STREAM, to_plain(v)]
    raise TypeError(f"no DUMP encoding for {cls.__name__}")


def dump(v: Any) -> bytes:
    """The payload of one value."""
    body: bytes = msgpack.packb(_encode(v), use_bin_type=True)
    head = body + struct.pack("<H2s", VERSION, MAGIC)
    return head + struct.pack("<I", zlib.crc32(head))


def _bytes_list(x: Any, pairs: bool = False) -> list[bytes]:
    if x.__class__ is not list or not x or any(e.__class__ is not bytes for e in x):
        raise BadData("not a list of strings")
    if pairs and len(x) % 2:
        raise BadData("odd pairs")
    return x


def _decode(code: Any, x: Any) -> Any:
    if code == T_STRING and x.__class__ is bytes:
        return x
    if code == T_HASH:
        flat = _bytes_list(x, pairs=True)
        h = dict(zip(flat[::2], flat[1::2], strict=True))
        if len(h) * 2 != len(flat):
            raise BadData("duplicate field")
        return h
    if code == T_LIST:
        return deque(_bytes_list(x))
    if code == T_SET:
        s = set(_bytes_list(x))
        if len(s) != len(x):
            raise BadData("duplicate member")
        return s
    if code == T_ZSET:
        if x.__class__ is not list or not x or len(x) % 2:
            raise BadData("bad sorted set")
        members, scores = x[::2], x[1::2]
        if any(m.__class__ is not bytes for m in members) or len(set(members)) != len(members):
            raise BadData("bad member")
        if any(s.__class__ is not float or math.isnan(s) for s in scores):
            raise BadData("bad score")
        return ZSet(zip(members, scores, strict=True))
    if code == T_STREAM and x.__class__ is list:
        try:
            return from_plain(x)
        except Exception as e:  # any shape from_plain cannot take
            raise BadData("bad stream") from e
    raise BadData("unknown type")


def restore(payload: bytes) -> Any:
    """The value a payload holds; ``WrongPayload`` or ``BadData``."""
    if len(payload) < _FOOT.size:
        raise WrongPayload("too short")
    version, magic, crc = _FOOT.unpack_from(payload, len(payload) - _FOOT.size)
    if version != VERSION or magic != MAGIC or zlib.crc32(payload[:-4]) != crc:
        raise WrongPayload("version or checksum")
    try:
        code, x = msgpack.unpackb(payload[: -_FOOT.size], raw=False, strict_map_key=False)
    except Exception as e:  # msgpack's errors, or not a two-item array
        raise BadData("bad body") from e
    return _decode(code, x)
