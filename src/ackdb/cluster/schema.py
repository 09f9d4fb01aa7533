"""A leaderless database's schema: its collections and the check every hash write passes.

Owns: ``Collection`` (a name, the key prefix its objects live under, its typed
properties), ``Property``, their encodings (inside the database record, and as the
``LL.SCHEMA`` payload a node pushes to its replicas), the rules of a valid schema, and
``validate`` -- the one check both the coordinators and the replicas run, so a replica
never stores a write it cannot check. Pure: never does IO, reads no clock. The schema is
changed only through Raft (cluster/dbops.py); this module only describes and checks it.

A key belongs to the collection with the longest prefix it starts with (none: the key is
free-form). A collection's keys hold hashes whose fields are its properties: a hash
write to such a key must name declared properties only, each value parsing as the
property's type; a whole-key string write (``SET``) to it is refused. Deletes (``DEL``,
``HDEL``) are always allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgpack

TYPES = ("string", "int", "float", "bool")
COLLECTIONS_MAX = 1024
PROPERTIES_MAX = 1024
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PREFIX_MAX_BYTES = 256
_BOOLS = (b"true", b"false", b"1", b"0")


class SchemaError(ValueError):
    """A schema change or a write the schema refuses; the message is the error reply."""


@dataclass(frozen=True, slots=True)
class Property:
    name: str
    type: str  # one of TYPES


@dataclass(frozen=True, slots=True)
class Collection:
    name: str
    prefix: bytes
    properties: tuple[Property, ...]

    def prop(self, name: bytes) -> Property | None:
        try:
            text = name.decode()
        except UnicodeDecodeError:
            return None
        return next((p for p in self.properties if p.name == text), None)

    def to_list(self) -> list[Any]:
        return [self.name, self.prefix, [[p.name, p.type] for p in self.properties]]

    @staticmethod
    def from_list(v: Any) -> Collection:
        name, prefix, props = v
        if not isinstance(prefix, bytes):
            raise ValueError("a collection prefix is bytes")
        return Collection(str(name), prefix, tuple(Property(str(n), str(t)) for n, t in props))


def parse_properties(specs: Iterable[str]) -> tuple[Property, ...]:
    """``name:type`` words (the CLI's and SCHEMA.CREATE's form) as properties."""
    out: list[Property] = []
    for spec in specs:
        name, sep, typ = spec.partition(":")
        if not sep:
            raise SchemaError(f"ERR SCHEMA property '{spec:.64}' is not name:type")
        out.append(Property(name, typ.lower()))
    return tuple(out)


def check_collection(c: Collection, others: Iterable[Collection]) -> None:
    """Raise SchemaError unless ``c`` may join ``others`` (a schema's other collections)."""
    if not NAME_RE.match(c.name):
        raise SchemaError(f"ERR SCHEMA invalid collection name '{c.name:.64}'")
    if not c.prefix or len(c.prefix) > PREFIX_MAX_BYTES:
        raise SchemaError(f"ERR SCHEMA a prefix is 1 to {PREFIX_MAX_BYTES} bytes")
    if len(c.properties) > PROPERTIES_MAX:
        raise SchemaError(f"ERR SCHEMA at most {PROPERTIES_MAX} properties per collection")
    seen: set[str] = set()
    for p in c.properties:
        if not NAME_RE.match(p.name):
            raise SchemaError(f"ERR SCHEMA invalid property name '{p.name:.64}'")
        if p.type not in TYPES:
            raise SchemaError(
                f"ERR SCHEMA property '{p.name}' has unknown type '{p.type:.32}'"
                f" (types: {', '.join(TYPES)})"
            )
        if p.name in seen:
            raise SchemaError(f"ERR SCHEMA property '{p.name}' is declared twice")
        seen.add(p.name)
    rest = list(others)
    if len(rest) >= COLLECTIONS_MAX:
        raise SchemaError(f"ERR SCHEMA at most {COLLECTIONS_MAX} collections per database")
    for o in rest:
        if o.name == c.name:
            raise SchemaError(f"ERR SCHEMA collection '{c.name}' exists")
        if o.prefix == c.prefix:
            raise SchemaError(
                f"ERR SCHEMA prefix '{c.prefix.decode(errors='replace'):.64}' is collection"
                f" '{o.name}''s"
            )


def collection_of(collections: Iterable[Collection], key: bytes) -> Collection | None:
    """The collection ``key`` belongs to: the longest prefix it starts with."""
    best: Collection | None = None
    for c in collections:
        if key.startswith(c.prefix) and (best is None or len(c.prefix) > len(best.prefix)):
            best = c
    return best


def _fits(typ: str, value: bytes) -> bool:
    if typ == "string":
        return True
    if typ == "bool":
        return value.lower() in _BOOLS
    try:
        text = value.decode("ascii")
        if typ == "int":
            return str(int(text)) == text.lstrip("+") or text == "-0"
        f = float(text)
        return f == f and f not in (float("inf"), float("-inf"))
    except (UnicodeDecodeError, ValueError):
        return False


def validate(
    collections: Iterable[Collection], key: bytes, fields: dict[bytes, bytes] | None
) -> str | None:
    """The error reply (``ERR SCHEMA ...``) for a write of ``key`` the schema refuses, or
    None. ``fields``: a hash write's field -> value; None: a whole-key string write."""
    c = collection_of(collections, key)
    if c is None:
        return None
    if fields is None:
        return f"ERR SCHEMA key belongs to collection '{c.name}': its objects are hashes"
    for f, value in fields.items():
        p = c.prop(f)
        if p is None:
            return (
                f"ERR SCHEMA collection '{c.name}' has no property"
                f" '{f.decode(errors='replace'):.64}'"
            )
        if not _fits(p.type, value):
            return (
                f"ERR SCHEMA property '{p.name}' of collection '{c.name}' is {p.type},"
                f" got '{value.decode(errors='replace'):.64}'"
            )
    return None


def encode_schema(version: int, collections: Iterable[Collection]) -> bytes:
    """The ``LL.SCHEMA`` payload: the version and the collections."""
    out = msgpack.packb([version, [c.to_list() for c in collections]], use_bin_type=True)
    assert isinstance(out, bytes)
    return out


def decode_schema(data: bytes) -> tuple[int, tuple[Collection, ...]]:
    """Inverse of ``encode_schema``; ValueError on anything else."""
    try:
        version, colls = msgpack.unpackb(data, raw=False)
        return int(version), tuple(Collection.from_list(c) for c in colls)
    except Exception as e:  # msgpack raises several unrelated types on garbage
        raise ValueError(f"not a schema: {e}") from None
