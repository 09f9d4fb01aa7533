"""Bit arithmetic of the bitmap commands against naive references, and BITFIELD's
overflow rules (including Redis's int64 quirk for extreme SET values)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ackdb.keyspace import bits as kb


def _bit_list(value: bytes) -> list[int]:
    return [(b >> (7 - i)) & 1 for b in value for i in range(8)]


@given(st.binary(min_size=1, max_size=40), st.data())
def test_count_and_find_match_a_naive_scan(value: bytes, data: st.DataObject) -> None:
    n = len(value) * 8
    first = data.draw(st.integers(0, n - 1))
    last = data.draw(st.integers(first, n - 1))
    window = _bit_list(value)[first : last + 1]
    assert kb.count_bits(value, first, last) == sum(window)
    for bit in (0, 1):
        want = first + window.index(bit) if bit in window else -1
        assert kb.find_bit(value, bit, first, last) == want


@given(st.binary(max_size=20), st.integers(0, 200), st.integers(1, 64), st.booleans(), st.data())
def test_fields_round_trip(
    value: bytes, offset: int, bits: int, signed: bool, data: st.DataObject
) -> None:
    buf = bytearray(value.ljust((offset + bits + 7) // 8, b"\x00"))
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    v = data.draw(st.integers(lo, hi))
    before = _bit_list(bytes(buf))
    kb.set_field(buf, offset, bits, v)
    assert kb.get_field(buf, offset, bits, signed) == v
    after = _bit_list(bytes(buf))
    assert after[:offset] == before[:offset]
    assert after[offset + bits :] == before[offset + bits :]


def test_overflow_modes() -> None:
    assert kb.overflow(250, 10, 8, False, kb.WRAP) == (True, 4)
    assert kb.overflow(250, 10, 8, False, kb.SAT) == (True, 255)
    assert kb.overflow(5, -10, 8, False, kb.SAT) == (True, 0)
    assert kb.overflow(120, 10, 8, True, kb.WRAP) == (True, -126)
    assert kb.overflow(-120, -10, 8, True, kb.SAT) == (True, -128)
    assert kb.overflow(1, 1, 8, True, kb.SAT) == (False, 2)
    assert kb.overflow(2**63 - 1, 1, 64, True, kb.WRAP) == (True, -(2**63))
    # Redis computes max - value in int64: SET i8 -2**63 saturates to the maximum.
    assert kb.overflow(-(2**63), 0, 8, True, kb.SAT) == (True, 127)


def test_bitop_pads_shorter_sources() -> None:
    assert kb.bitop(b"and", [b"\xff\xff", b"\x0f"], 2) == b"\x0f\x00"
    assert kb.bitop(b"or", [b"\xf0", b"\x0f\x01"], 2) == b"\xff\x01"
    assert kb.bitop(b"xor", [b"\xff", b"\xff", b"\x01"], 1) == b"\x01"
    assert kb.bitop(b"not", [b"\x0f"], 1) == b"\xf0"
