"""Value types: their TYPE names and OBJECT ENCODING answers.

Owns: the mapping from a stored Python value to Redis's type name and encoding. Values are
``bytes`` (string) and ``dict`` (hash); later families register theirs in ``TYPE_NAMES``.
"""

from __future__ import annotations

from typing import Any

from .numbers import parse_int

TYPE_NAMES: dict[type, bytes] = {bytes: b"string", dict: b"hash"}

# Redis: strings up to this many bytes are embedded in their object header ("embstr").
EMBSTR_MAX_BYTES = 44


def type_name(value: Any) -> bytes:
    return TYPE_NAMES.get(value.__class__, b"none")


def encoding(value: Any, limits: dict[str, int]) -> bytes:
    """OBJECT ENCODING of ``value``; ``limits`` holds the *-max-listpack-* settings."""
    if value.__class__ is bytes:
        if len(value) <= 20 and parse_int(value) is not None:
            return b"int"
        return b"embstr" if len(value) <= EMBSTR_MAX_BYTES else b"raw"
    if value.__class__ is dict:
        n = limits["hash-max-listpack-entries"]
        m = limits["hash-max-listpack-value"]
        if len(value) <= n and all(len(k) <= m and len(v) <= m for k, v in value.items()):
            return b"listpack"
        return b"hashtable"
    enc = getattr(value, "encoding", None)
    if enc is not None:
        return enc(limits)  # type: ignore[no-any-return]
    raise TypeError(f"no encoding for {type(value).__name__}")
