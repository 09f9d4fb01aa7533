"""ackdb.keyspace.digest against vectors recorded from redis-server 7.0.15.

Every hex string below was produced by running the listed commands on a fresh
``redis-server 7.0.15 --enable-debug-command yes`` (after FLUSHALL) and copying the reply
of ``DEBUG DIGEST`` and of ``DEBUG DIGEST-VALUE k``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator

import pytest

from ackdb.keyspace.digest import (
    ValueKind,
    dataset_digest,
    digest_value_hex,
    key_digest,
    kind_of,
    value_digest,
)

ZEROS = "0" * 40


class PairsOnly:
    """A sorted set as a keyspace might hold it: only iterable, as (member, score)."""

    def __init__(self, pairs: list[tuple[bytes, float]]) -> None:
        self._pairs = sorted(pairs, key=lambda p: (p[1], p[0]))

    def __iter__(self) -> Iterator[tuple[bytes, float]]:
        return iter(self._pairs)


def _db0_single(value: object, has_expire: bool = False) -> str:
    return dataset_digest([(0, [(b"k", value, has_expire)])])


# (commands run on 7.0.15, value as ackdb holds it, has_expire, DEBUG DIGEST, DIGEST-VALUE k)
SINGLE_KEY_VECTORS = [
    (
        "SET k v",
        b"v",
        False,
        "264ccf65edec66bccfa7cc659414ccca432057d2",
        "d79ee9fe5d5ad902d7f6620efc3b07b75ddd742f",
    ),
    (
        "SET k v; EXPIRE k 100",
        b"v",
        True,
        "bf83f210388eea94f06fb90d517490e16a08d7dd",
        "311b17018163335616e089f6b951c82c477335ac",
    ),
    (
        # OBJECT ENCODING k said "int"; SET k 12 + APPEND k "" ("raw") gave the same digests.
        "SET k 12",
        b"12",
        False,
        "eb708d7f0cec62a02e3eb7f1eae92e506c8433f1",
        "655ac46b180ad2f61a3cee25f0b1780fa2ec879a",
    ),
    (
        "RPUSH k a b c",
        [b"a", b"b", b"c"],
        False,
        "161ca83453aaa7be8f384d7fa227cf7fe4f22054",
        "8bf72d812571eea9b927f3c11beb0c4165a6ff89",
    ),
    (
        "RPUSH k c b a",
        deque([b"c", b"b", b"a"]),
        False,
        "029d9975e7eb8c49b1156e553e7c1246db854bdd",
        "ab68e07de85d09ef55234146f46ee46a318beead",
    ),
    (
        "RPUSH k 1 -2 9223372036854775807 007",
        (b"1", b"-2", b"9223372036854775807", b"007"),
        False,
        "bcb97a97cab55846215eb96793fc6a5bc75d018d",
        "067b3314d5d5d875ee47933a73cddebe23fdb448",
    ),
    (
        "SADD k a b c",
        {b"c", b"a", b"b"},
        False,
        "6fff39075ef57809c578a623b735a9fdbfe6897e",
        "593c2414786d75446e97f4ea5d4b731f3313da72",
    ),
    (
        "SADD k 1 2 3 -5 (intset)",
        frozenset({b"1", b"2", b"3", b"-5"}),
        False,
        "8d33664cd71e598eb058822774181dd34c7b5709",
        "5e497276f46b9037a75afe0286ef7a77cbed85e4",
    ),
    (
        "HSET k f v g w",
        {b"g": b"w", b"f": b"v"},
        False,
        "2b43e7fccc2999f0456bdead56bbffa48dac6d63",
        "d127864ed50239662bf61bafc9bda63c17da5b37",
    ),
    (
        "ZADD k 1.1 a",
        [(b"a", 1.1)],
        False,
        "c5a74bce1383ce748d89f1fbc9dd96d80c9babd2",
        "0afd0507a38ea3c3ca917a82c82ccea86228cfc8",
    ),
    (
        "ZADD k 1.1 a; ZADD k 2 b",
        {b"b": 2.0, b"a": 1.1},
        False,
        "518ce7aaec64fbe55072d6fa76112f6a24f50984",
        "04185ce3beb654ee4e54115d82328f07d38a5f2a",
    ),
    (
        "ZADD k inf a -inf b 1e-7 c 3 d",
        PairsOnly([(b"b", float("-inf")), (b"d", 3.0), (b"a", float("inf")), (b"c", 1e-7)]),
        False,
        "20be256aba521ed6ab2dc6bd45ce496c99d081e4",
        "a3b2e23dff72c309966008e8570fbb59231f3815",
    ),
    (
        # A 70-byte member makes it a skiplist, which keeps -0 ("%.17g" -> "-0").
        "ZADD k -0.0 mmm...m (70 m)",
        [(b"m" * 70, -0.0)],
        False,
        "ef5b2e3a14bb9b4990697742b60e016f54045347",
        "93d0779a05078b1454a2f7152a3c9d4bf9ea0efc",
    ),
]


@pytest.mark.parametrize(
    ("commands", "value", "has_expire", "dataset_hex", "value_hex"),
    SINGLE_KEY_VECTORS,
    ids=[v[0] for v in SINGLE_KEY_VECTORS],
)
def test_single_key_vectors(
    commands: str, value: object, has_expire: bool, dataset_hex: str, value_hex: str
) -> None:
    assert _db0_single(value, has_expire) == dataset_hex
    assert digest_value_hex(value, has_expire) == value_hex
    assert value_digest(value, has_expire).hex() == value_hex


def test_empty_dataset_and_missing_key_are_zeros() -> None:
    # DEBUG DIGEST on an empty server; DEBUG DIGEST-VALUE nokey -> ["000...0"].
    assert dataset_digest([]) == ZEROS
    assert dataset_digest([(0, []), (3, iter(()))]) == ZEROS
    assert digest_value_hex(None) == ZEROS


def test_multi_db_vectors() -> None:
    # SELECT 0; SET a 1; SELECT 1; SET a 1
    assert (
        dataset_digest([(1, [(b"a", b"1", False)]), (0, [(b"a", b"1", False)])])
        == "c6bab682b086d5daf847ee97e8554b6f1fb06350"
    )
    # SELECT 5; SET a 1
    assert dataset_digest([(5, [(b"a", b"1", False)])]) == (
        "b85608d4766e2017d22d4b0b43bcf40438d24a06"
    )


def test_mixed_types_in_one_db() -> None:
    # SET s hello; RPUSH l x; SADD st y; HSET h a b; ZADD z 0.5 q; EXPIRE l 1000
    keys = [
        (b"z", [(b"q", 0.5)], False),
        (b"s", b"hello", False),
        (b"l", [b"x"], True),
        (b"st", {b"y"}, False),
        (b"h", {b"a": b"b"}, False),
    ]
    assert dataset_digest([(0, keys)]) == "5a56e02c102d588296b39d492b9febccb0b28152"
    shuffled = keys[:]
    random.Random(7).shuffle(shuffled)
    assert dataset_digest([(0, shuffled)]) == "5a56e02c102d588296b39d492b9febccb0b28152"


def test_negative_zero_and_zero_scores_differ() -> None:
    # Redis 7.0 stores -0 as +0 in a listpack zset; the digest itself keeps them apart.
    assert digest_value_hex([(b"m", -0.0)]) != digest_value_hex([(b"m", 0.0)])


def test_key_digest_is_value_part_continued_from_the_key() -> None:
    assert key_digest(b"k", b"v", False) != value_digest(b"v", False)
    assert dataset_digest([(0, [(b"k", b"v", False)])]) != key_digest(b"k", b"v", False).hex()


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"x", ValueKind.STRING),
        (bytearray(b"x"), ValueKind.STRING),
        ([b"a"], ValueKind.LIST),
        ([], ValueKind.LIST),
        (deque([b"a"]), ValueKind.LIST),
        ({b"a"}, ValueKind.SET),
        (frozenset(), ValueKind.SET),
        ({b"f": b"v"}, ValueKind.HASH),
        ({b"m": 1.0}, ValueKind.ZSET),
        ([(b"m", 1.0)], ValueKind.ZSET),
        (PairsOnly([(b"m", 1.0)]), ValueKind.ZSET),
    ],
)
def test_kind_of(value: object, kind: ValueKind) -> None:
    assert kind_of(value) is kind


def test_kind_override_for_an_empty_value() -> None:
    assert value_digest([], False, kind=ValueKind.ZSET) != value_digest([], False)


def test_unknown_value_type_is_rejected() -> None:
    with pytest.raises(TypeError):
        value_digest(42, False)
