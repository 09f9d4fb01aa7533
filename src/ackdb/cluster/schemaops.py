"""A leaderless database's schema in the metadata state machine: ``schema.create``,
``schema.add`` and ``schema.drop`` as they apply, and their arguments as they travel in
the log.

Owns: encoding a change's properties (a msgpack list of ``[name, type]``), applying a
change to the database record (checked with ``cluster/schema.check_collection``; a refusal
changes nothing and its message is the client's error reply). Every applied change bumps the database's ``schema_version`` and rewrites its
record, so the topology version (cluster/dbops.py) changes with it and the coordinators
long-polling ``DB.TOPOLOGY`` see the new schema. Never does IO, reads no clock.

Only leaderless databases have schemas; a change to another database is refused.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import msgpack

from ackdb.cluster import dbops
from ackdb.cluster.commands import Op, RecordKind, Result, fail
from ackdb.cluster.databases import Database, DbType
from ackdb.cluster.schema import Collection, Property, SchemaError, check_collection

if TYPE_CHECKING:
    from ackdb.cluster.metadata import MetadataStore

SCHEMA_OPS = frozenset({Op.SCHEMA_CREATE, Op.SCHEMA_ADD, Op.SCHEMA_DROP})


def encode_properties(props: tuple[Property, ...]) -> bytes:
    out = msgpack.packb([[p.name, p.type] for p in props], use_bin_type=True)
    assert isinstance(out, bytes)
    return out


def decode_properties(data: bytes) -> tuple[Property, ...]:
    """Inverse of ``encode_properties``; SchemaError on anything else."""
    try:
        v = msgpack.unpackb(data, raw=False, strict_map_key=True, max_ext_len=0)
        return tuple(Property(str(n), str(t)) for n, t in v)
    except Exception:  # msgpack raises several unrelated types on garbage
        raise SchemaError("ERR SCHEMA malformed properties") from None


def load_leaderless(store: MetadataStore, name: str) -> Database:
    """Database ``name`` if it is leaderless; SchemaError (the client's error) otherwise."""
    db = dbops.load(store, name)
    if isinstance(db, str):
        raise SchemaError(db)
    if db.type is not DbType.LEADERLESS:
        raise SchemaError(
            f"ERR database '{name}' is {db.type.value}: only leaderless databases have schemas"
        )
    return db


def changed(db: Database, op: Op, a: tuple[Any, ...]) -> tuple[Collection, ...]:
    """The collections after the change; SchemaError, the client's error, if refused."""
    colls = db.collections
    name: str = a[1]
    if op is Op.SCHEMA_CREATE:
        c = Collection(name, a[2], decode_properties(a[3]))
        check_collection(c, colls)
        return (*colls, c)
    old = next((c for c in colls if c.name == name), None)
    if old is None:
        raise SchemaError(f"ERR SCHEMA database '{db.name}' has no collection '{name:.64}'")
    others = tuple(c for c in colls if c.name != name)
    if op is Op.SCHEMA_DROP:
        return others
    assert op is Op.SCHEMA_ADD, op
    props = decode_properties(a[2])
    if not props:
        raise SchemaError("ERR SCHEMA no properties to add")
    new = replace(old, properties=(*old.properties, *props))
    check_collection(new, others)
    return tuple(new if c.name == name else c for c in colls)


def apply(store: MetadataStore, op: Op, a: tuple[Any, ...], index: int) -> Result:
    """Apply one ``schema.*`` op at log index ``index``: the new schema version, or an
    error having changed nothing."""
    try:
        db = load_leaderless(store, a[0])
        colls = changed(db, op, a)
    except SchemaError as e:
        return fail(str(e))
    version = db.schema_version + 1
    new = replace(db, collections=colls, schema_version=version)
    store.put_record(RecordKind.DATABASE, db.name, new.to_body(), index)
    return Result(True, version)
