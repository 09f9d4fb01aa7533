"""cluster/schema.py: collections, the write check, encodings; a leaderless database's
fields in its metadata record."""

from __future__ import annotations

import pytest

from ackdb.cluster.databases import Database, DbType, Instance, Persistence, Shard
from ackdb.cluster.schema import (
    Collection,
    Property,
    SchemaError,
    check_collection,
    collection_of,
    decode_schema,
    encode_schema,
    parse_properties,
    validate,
)

ARTICLE = Collection("Article", b"article:", parse_properties(["title:string", "year:int"]))
PRICED = Collection("Priced", b"article:p:", parse_properties(["price:float", "sold:bool"]))


def test_longest_prefix_wins() -> None:
    colls = [ARTICLE, PRICED]
    assert collection_of(colls, b"article:1") is ARTICLE
    assert collection_of(colls, b"article:p:1") is PRICED
    assert collection_of(colls, b"other") is None


@pytest.mark.parametrize(
    ("key", "fields", "error"),
    [
        (b"free", None, None),
        (b"article:1", {b"title": b"x", b"year": b"2024"}, None),
        (b"article:1", {b"year": b"-3"}, None),
        (b"article:1", {b"year": b"20.5"}, "property 'year' of collection 'Article' is int"),
        (b"article:1", {b"author": b"me"}, "collection 'Article' has no property 'author'"),
        (b"article:1", None, "its objects are hashes"),
        (b"article:p:1", {b"price": b"1.5", b"sold": b"true"}, None),
        (b"article:p:1", {b"price": b"nan"}, "is float"),
        (b"article:p:1", {b"sold": b"yes"}, "is bool"),
    ],
)
def test_validate(key: bytes, fields: dict[bytes, bytes] | None, error: str | None) -> None:
    got = validate([ARTICLE, PRICED], key, fields)
    if error is None:
        assert got is None
    else:
        assert got is not None and got.startswith("ERR SCHEMA ") and error in got


def test_check_collection_refuses_bad_schemas() -> None:
    check_collection(PRICED, [ARTICLE])
    for bad, others, text in [
        (Collection("1x", b"p", ()), [], "invalid collection name"),
        (Collection("A", b"", ()), [], "prefix"),
        (Collection("A", b"p", (Property("a", "blob"),)), [], "unknown type"),
        (Collection("A", b"p", (Property("a", "int"), Property("a", "int"))), [], "twice"),
        (Collection("Article", b"q", ()), [ARTICLE], "exists"),
        (Collection("B", b"article:", ()), [ARTICLE], "prefix"),
    ]:
        with pytest.raises(SchemaError, match=text):
            check_collection(bad, others)
    with pytest.raises(SchemaError, match="name:type"):
        parse_properties(["title"])


def test_schema_payload_round_trip() -> None:
    assert decode_schema(encode_schema(7, [ARTICLE, PRICED])) == (7, (ARTICLE, PRICED))
    with pytest.raises(ValueError):
        decode_schema(b"\xc1garbage")


def _db(**kw: object) -> Database:
    shard = Shard(0, 0, 16383, 1, Instance("n1", 20000), (Instance("n2", 20001),))
    base: dict[str, object] = dict(
        name="ll",
        uid=5,
        type=DbType.LEADERLESS,
        port=12001,
        replication=True,
        replicas=1,
        persistence=Persistence.AOF_ALWAYS,
        password_sha256="",
        cluster_api=False,
        shards=(shard,),
    )
    base.update(kw)
    return Database(**base)  # type: ignore[arg-type]


def test_leaderless_fields_round_trip_in_the_record() -> None:
    db = _db(
        read_consistency="ONE",
        write_consistency="ALL",
        deletion_strategy="DeleteOnConflict",
        max_clock_skew_ms=250,
        schema_version=3,
        collections=(ARTICLE,),
    )
    assert Database.from_body(db.to_body()) == db
    assert db.replication_factor == 2
    sharded = _db(type=DbType.SHARDED)
    assert b"leaderless" not in sharded.to_body()
    assert Database.from_body(sharded.to_body()) == sharded
    with pytest.raises(ValueError):
        Database.from_body(_db(read_consistency="MOST").to_body())
