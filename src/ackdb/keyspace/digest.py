"""DEBUG DIGEST and DEBUG DIGEST-VALUE, bit-exact with redis-server 7.0.

Owns the dataset fingerprint the test suites compare between servers (and between a primary
and its replicas). The algorithm, as redis-server 7.0 computes it (verified against 7.0.15):

- ``xor(d, data)``: ``d ^= SHA1(data)``; order-free, used for unordered elements (when
  ``data`` is itself a 20-byte digest it is still hashed once more).
- ``mix(d, data)``: ``xor(d, data)`` then ``d = SHA1(d)``; order-sensitive.
- One value, starting from a digest ``d``: ``mix`` the type as a 4-byte big-endian integer
  (string 0, list 1, set 2, zset 3, hash 4), then
  string: ``mix`` its bytes (int-encoded strings by their decimal text, which is the same
  bytes, as Redis only int-encodes canonical decimal text);
  list: ``mix`` each element head to tail;
  set: ``xor`` each member;
  zset: per member ``e = mix(mix(0, member), "%.17g" % score)``, then ``xor(d, e)``;
  hash: per field ``e = mix(mix(0, field), value)``, then ``xor(d, e)``;
  stream (type 6): per live entry in id order ``mix`` "<ms>.<seq>", then each field and
  value in turn (consumer groups are not part of the digest);
  and last, for a key with a TTL, ``xor(d, "!!expire!!")``.
- One key: the value part above starting from ``mix(0, key)``.
- The dataset: start from 20 zero bytes; for each non-empty db in index order ``mix`` the
  index (4-byte big-endian), then ``xor`` every key's digest. No keys: 40 zeros.
- DEBUG DIGEST-VALUE: the value part starting from zeros (expire marker included); a
  missing key gives 40 zeros.

Values are ackdb's keyspace representation: ``bytes`` (string), ``Mapping[bytes, bytes]``
(hash), ``AbstractSet[bytes]`` (set), a ``Sequence`` of bytes or a ``deque`` (list), and
any other iterable of ``(member, score)`` pairs (sorted set; a ``Mapping`` whose values
are numbers or a sequence of pairs also work). An empty sequence is taken as a list;
``kind=`` overrides the guess.

Must never: mutate a value, depend on iteration order where Redis does not, touch I/O.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence, Set
from enum import IntEnum
from typing import Final, assert_never

from ackdb.keyspace import lww
from ackdb.keyspace.numbers import format_double_70
from ackdb.keyspace.stream import MAX_ID, MIN_ID, Stream

_ZERO: Final = bytes(20)
_EXPIRE_MARKER: Final = b"!!expire!!"
_BYTES_LIKE: Final = (bytes, bytearray, memoryview)


class ValueKind(IntEnum):
    """Redis object type codes, as mixed into the digest."""

    STRING = 0
    LIST = 1
    SET = 2
    ZSET = 3
    HASH = 4
    STREAM = 6


def _xor(digest: bytes, data: bytes) -> bytes:
    h = hashlib.sha1(data).digest()
    return (int.from_bytes(digest) ^ int.from_bytes(h)).to_bytes(20)


def _mix(digest: bytes, data: bytes) -> bytes:
    return hashlib.sha1(_xor(digest, data)).digest()


def _xor_many(digest: bytes, parts: Iterable[bytes]) -> bytes:
    """``_xor`` of every part in turn (SHA1 of each; the order does not matter)."""
    acc = int.from_bytes(digest)
    for part in parts:
        acc ^= int.from_bytes(hashlib.sha1(part).digest())
    return acc.to_bytes(20)


def kind_of(value: object) -> ValueKind:
    """Which Redis type ``value`` stands for (see the module docstring)."""
    if isinstance(value, (*_BYTES_LIKE, lww.Record)):  # a leaderless record: its encoding
        return ValueKind.STRING
    if isinstance(value, Stream):
        return ValueKind.STREAM
    if isinstance(value, Mapping):
        first = next(iter(value.values()), b"")
        return ValueKind.HASH if isinstance(first, _BYTES_LIKE) else ValueKind.ZSET
    if isinstance(value, Set):
        return ValueKind.SET
    if isinstance(value, Sequence):  # list, tuple, collections.deque, ...
        if len(value) == 0 or isinstance(value[0], _BYTES_LIKE):
            return ValueKind.LIST
        return ValueKind.ZSET
    if isinstance(value, Iterable):
        return ValueKind.ZSET
    raise TypeError(f"not a keyspace value: {type(value).__name__}")


def _zset_pairs(value: object) -> Iterable[tuple[bytes, float]]:
    if isinstance(value, Mapping):
        return value.items()
    assert isinstance(value, Iterable)
    return value


def _value_into(digest: bytes, value: object, has_expire: bool, kind: ValueKind) -> bytes:
    """Redis xorObjectDigest: continue ``digest`` with one value."""
    if value.__class__ is lww.Record:
        value = lww.encode(value)
    d = _mix(digest, struct.pack(">I", kind))
    match kind:
        case ValueKind.STRING:
            assert isinstance(value, _BYTES_LIKE)
            d = _mix(d, bytes(value))
        case ValueKind.LIST:
            assert isinstance(value, Iterable)
            for element in value:
                d = _mix(d, bytes(element))
        case ValueKind.SET:
            assert isinstance(value, Iterable)
            d = _xor_many(d, (bytes(m) for m in value))
        case ValueKind.ZSET:
            d = _xor_many(
                d,
                (
                    _mix(_mix(_ZERO, bytes(member)), format_double_70(float(score)))
                    for member, score in _zset_pairs(value)
                ),
            )
        case ValueKind.HASH:
            assert isinstance(value, Mapping)
            d = _xor_many(d, (_mix(_mix(_ZERO, bytes(f)), bytes(v)) for f, v in value.items()))
        case ValueKind.STREAM:
            assert isinstance(value, Stream)
            for sid, fv in value.range(MIN_ID, MAX_ID):
                d = _mix(d, b"%d.%d" % sid)
                for x in fv:
                    d = _mix(d, x)
        case _:
            assert_never(kind)
    if has_expire:
        d = _xor(d, _EXPIRE_MARKER)
    return d


def value_digest(value: object, has_expire: bool, *, kind: ValueKind | None = None) -> bytes:
    """The 20-byte digest of one value on its own (what DEBUG DIGEST-VALUE prints)."""
    return _value_into(_ZERO, value, has_expire, kind_of(value) if kind is None else kind)


def key_digest(
    key: bytes, value: object, has_expire: bool, *, kind: ValueKind | None = None
) -> bytes:
    """The 20-byte digest of one key and its value, as xored into the dataset digest."""
    start = _mix(_ZERO, bytes(key))
    return _value_into(start, value, has_expire, kind_of(value) if kind is None else kind)


def dataset_digest(dbs: Iterable[tuple[int, Iterable[tuple[bytes, object, bool]]]]) -> str:
    """DEBUG DIGEST: 40 hex digits for ``(db_index, [(key, value, has_expire), ...])``."""
    final = _ZERO
    seen: set[int] = set()
    for index, entries in sorted(dbs, key=lambda db: db[0]):
        assert index not in seen and 0 <= index < 2**32, f"bad db index {index}"
        seen.add(index)
        keys = [key_digest(k, v, expire) for k, v, expire in entries]
        if keys:  # Redis skips empty databases entirely, index included
            final = _xor_many(_mix(final, struct.pack(">I", index)), keys)
    return final.hex()


def digest_value_hex(value: object | None, has_expire: bool = False) -> str:
    """DEBUG DIGEST-VALUE for one key: 40 hex digits; 40 zeros when the key is missing."""
    return _ZERO.hex() if value is None else value_digest(value, has_expire).hex()
