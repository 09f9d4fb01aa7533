"""Value types: their TYPE names and OBJECT ENCODING answers.

Owns: the mapping from a stored Python value's class to Redis's type name and encoding.
Strings (``bytes``) and hashes (``dict``) are registered here; every other family
registers its class with ``register`` from its own module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .numbers import parse_int

# Redis: strings up to this many bytes are embedded in their object header ("embstr").
EMBSTR_MAX_BYTES = 44

EncodingFn = Callable[[Any, dict[str, int]], bytes]

TYPE_NAMES: dict[type, bytes] = {}
_ENCODINGS: dict[type, EncodingFn] = {}


def register(cls: type, name: bytes, encoding_fn: EncodingFn) -> None:
    """Declare a value class: its TYPE name and how OBJECT ENCODING describes a value."""
    TYPE_NAMES[cls] = name
    _ENCODINGS[cls] = encoding_fn


def type_name(value: Any) -> bytes:
    return TYPE_NAMES.get(value.__class__, b"none")


def encoding(value: Any, limits: dict[str, int]) -> bytes:
    """OBJECT ENCODING of ``value``; ``limits`` holds the *-max-listpack-* settings."""
    return _ENCODINGS[value.__class__](value, limits)


def _string_encoding(value: bytes, limits: dict[str, int]) -> bytes:
    if len(value) <= 20 and parse_int(value) is not None:
        return b"int"
    return b"embstr" if len(value) <= EMBSTR_MAX_BYTES else b"raw"


def _hash_encoding(value: dict[bytes, bytes], limits: dict[str, int]) -> bytes:
    n = limits["hash-max-listpack-entries"]
    m = limits["hash-max-listpack-value"]
    if len(value) <= n and all(len(k) <= m and len(v) <= m for k, v in value.items()):
        return b"listpack"
    return b"hashtable"


register(bytes, b"string", _string_encoding)
register(dict, b"hash", _hash_encoding)
