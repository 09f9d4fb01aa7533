"""HyperLogLog representation: the sparse and dense encodings, their agreement, the
promotion rules, corruption handling and known answers taken from Redis 7.0.15 (values
built there with PFADD and read with GET / PFDEBUG DECODE)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.keyspace import hll

# Redis: PFADD u1 a b c foo; PFCOUNT u1 (the cache now holds 4); GET u1.
REDIS_ABC_FOO = bytes.fromhex("48594c4c0100000004000000000000005cb390443e8050b1844bfb80425a")


def _build(elements: list[bytes], max_bytes: int = 3000) -> bytearray:
    buf = hll.new_sparse()
    for e in elements:
        _, buf = hll.add(buf, e, max_bytes)
    return buf


def test_empty_value_is_redis_createHLLObject() -> None:
    assert bytes(hll.new_sparse()) == b"HYLL\x01" + bytes(11) + b"\x7f\xff"
    assert hll.decode(hll.new_sparse()) == b"Z:16384"
    assert hll.cached(hll.new_sparse()) == 0


def test_known_value_from_redis() -> None:
    buf = _build([b"a", b"b", b"c", b"foo"])
    assert hll.cached(buf) is None  # PFADD invalidated it
    card = hll.estimate(hll.registers(buf))
    hll.set_cache(buf, card)
    assert bytes(buf) == REDIS_ABC_FOO and card == 4
    assert hll.decode(buf) == b"Z:7348 v:5,1 Z:1087 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"


def test_pattern_matches_redis_registers() -> None:
    # The registers Redis's DECODE shows for "a b c foo": indexes 7348, 8436, 12711, 15780.
    found = sorted(hll.pattern(e) for e in (b"a", b"b", b"c", b"foo"))
    assert [i for i, _ in found] == [7348, 8436, 12711, 15780]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, hll.REGISTERS - 1), st.integers(1, 32)), max_size=300))
def test_sparse_and_dense_agree(updates: list[tuple[int, int]]) -> None:
    sparse = hll.new_sparse()
    dense = hll.to_dense(hll.new_sparse())
    expected = [0] * hll.REGISTERS
    for index, count in updates:
        _, sparse = hll.sparse_set(sparse, index, count, 1 << 20)
        if hll.dense_get(dense, index) < count:
            hll.dense_put(dense, index, count)
        expected[index] = max(expected[index], count)
    assert sparse[4] == hll.SPARSE
    assert hll.registers(sparse) == expected == hll.registers(dense)
    assert bytes(hll.to_dense(sparse))[16:] == bytes(dense)[16:]


def test_no_two_adjacent_equal_vals_after_merges() -> None:
    buf = hll.new_sparse()
    for i in range(100, 110):
        _, buf = hll.sparse_set(buf, i, 3, 3000)
    assert hll.decode(buf) == b"Z:100 v:3,4 v:3,4 v:3,2 Z:16274"


def test_promotion_at_a_register_over_32_and_at_the_size_limit() -> None:
    buf = hll.new_sparse()
    changed, buf = hll.sparse_set(buf, 5, 33, 3000)
    assert changed and buf[4] == hll.DENSE and len(buf) == hll.DENSE_SIZE
    assert hll.dense_get(buf, 5) == 33
    small = _build([b"%d" % i for i in range(30)], max_bytes=40)
    assert small[4] == hll.DENSE
    big = _build([b"%d" % i for i in range(30)], max_bytes=3000)
    assert big[4] == hll.SPARSE and hll.registers(big) == hll.registers(small)


def test_dense_packing_round_trips() -> None:
    rng = random.Random(1)
    buf = bytearray(hll.DENSE_SIZE)
    values = [rng.randrange(64) for _ in range(hll.REGISTERS)]
    for i, v in enumerate(values):
        hll.dense_put(buf, i, v)
    assert hll.dense_registers(buf) == values
    assert all(hll.dense_get(buf, i) == v for i, v in enumerate(values))


def test_estimates() -> None:
    assert hll.estimate([0] * hll.REGISTERS) == 0
    many = _build([b"x%d" % i for i in range(20000)])
    assert abs(hll.estimate(hll.registers(many)) - 20000) < 20000 * 0.03


@pytest.mark.parametrize(
    "value",
    [
        b"HYLL\x01" + bytes(11) + b"\x7f\xfe",  # one register short
        b"HYLL\x01" + bytes(11) + b"\x7f\xff\x80",  # one register too many
        b"HYLL\x01" + bytes(11) + b"\x7f",  # a cut XZERO
        b"HYLL\x01" + bytes(11),  # no opcodes
    ],
)
def test_corrupt_sparse_values_raise(value: bytes) -> None:
    with pytest.raises(hll.Corrupt):
        hll.registers(value)
    with pytest.raises(hll.Corrupt):
        hll.to_dense(value)


def test_header_checks() -> None:
    assert hll.is_valid_header(bytes(hll.new_sparse()))
    assert not hll.is_valid_header(b"HYLL\x02" + bytes(20))
    assert not hll.is_valid_header(b"HYLX\x01" + bytes(20))
    assert not hll.is_valid_header(b"HYLL\x00" + bytes(20))  # dense of the wrong size
    assert not hll.is_valid_header(b"HYLL")
