"""Bit arithmetic on string values: the pure half of SETBIT, BITCOUNT, BITPOS, BITOP and
BITFIELD.

Owns: Redis's bit order (bit 0 is the most significant bit of byte 0), counting and
searching bits in a byte or bit range, the bitwise operations over strings of different
lengths (the shorter ones zero-padded), and BITFIELD's integer fields with Redis's overflow
rules (WRAP, SAT, FAIL). Pure functions of bytes and ints: never looks a key up, never
raises a command error.
"""

from __future__ import annotations

from collections.abc import Sequence

WRAP, SAT, FAIL = 0, 1, 2


def get_bit(value: bytes, offset: int) -> int:
    byte = offset >> 3
    if byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


def set_bit(buf: bytearray, offset: int, bit: int) -> int:
    """Set one bit of ``buf`` (long enough); returns the bit it replaced."""
    byte = offset >> 3
    mask = 0x80 >> (offset & 7)
    old = 1 if buf[byte] & mask else 0
    if bit:
        buf[byte] |= mask
    else:
        buf[byte] &= ~mask & 0xFF
    return old


def _window(value: bytes, first_bit: int, last_bit: int) -> tuple[int, int]:
    """The bits ``first_bit..last_bit`` (inclusive, within ``value``) as one integer whose
    most significant bit is ``first_bit``, and how many bits it holds."""
    lo, hi = first_bit >> 3, last_bit >> 3
    n = last_bit - first_bit + 1
    word = int.from_bytes(value[lo : hi + 1], "big")
    word >>= 7 - (last_bit & 7)
    return word & ((1 << n) - 1), n


def count_bits(value: bytes, first_bit: int, last_bit: int) -> int:
    if first_bit > last_bit:
        return 0
    if not first_bit & 7 and (last_bit & 7) == 7:
        return int.from_bytes(value[first_bit >> 3 : (last_bit >> 3) + 1], "big").bit_count()
    word, _ = _window(value, first_bit, last_bit)
    return word.bit_count()


def find_bit(value: bytes, bit: int, first_bit: int, last_bit: int) -> int:
    """The position of the first bit equal to ``bit`` in ``first_bit..last_bit``, or -1."""
    if first_bit > last_bit:
        return -1
    word, n = _window(value, first_bit, last_bit)
    if not bit:
        word ^= (1 << n) - 1
    if not word:
        return -1
    return first_bit + n - word.bit_length()


def bitop(op: bytes, sources: Sequence[bytes], length: int) -> bytes:
    """AND / OR / XOR / NOT of ``sources``, each zero-padded to ``length`` bytes."""
    words = [int.from_bytes(s.ljust(length, b"\x00"), "big") for s in sources]
    full = (1 << (8 * length)) - 1
    if op == b"not":
        out = words[0] ^ full
    else:
        out = words[0]
        for w in words[1:]:
            if op == b"and":
                out &= w
            elif op == b"or":
                out |= w
            else:
                out ^= w
    return out.to_bytes(length, "big")


def get_field(value: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    """BITFIELD GET: the field of ``bits`` bits at bit ``offset`` (zeros past the end)."""
    lo, hi = offset >> 3, (offset + bits - 1) >> 3
    chunk = bytes(value[lo : hi + 1]).ljust(hi - lo + 1, b"\x00")
    word = int.from_bytes(chunk, "big") >> (7 - ((offset + bits - 1) & 7))
    word &= (1 << bits) - 1
    if signed and word >> (bits - 1):
        word -= 1 << bits
    return word


def set_field(buf: bytearray, offset: int, bits: int, value: int) -> None:
    """Write the low ``bits`` bits of ``value`` at bit ``offset`` (``buf`` is long enough)."""
    lo, hi = offset >> 3, (offset + bits - 1) >> 3
    shift = 7 - ((offset + bits - 1) & 7)
    nbytes = hi - lo + 1
    word = int.from_bytes(buf[lo : hi + 1], "big")
    mask = ((1 << bits) - 1) << shift
    word = (word & ~mask) | ((value << shift) & mask)
    buf[lo : hi + 1] = word.to_bytes(nbytes, "big")


def _int64(n: int) -> int:
    """``n`` as C's int64_t holds it (two's complement wrap-around)."""
    n &= _U64
    return n - (1 << 64) if n >> 63 else n


_U64 = (1 << 64) - 1


def overflow(value: int, incr: int, bits: int, signed: bool, mode: int) -> tuple[bool, int]:
    """Redis's bitfield overflow check of ``value + incr`` for a field type: (overflowed,
    the value to store). An unsigned SET passes the int64 argument as its uint64 pattern.

    Redis computes the headroom ``max - value`` and ``min - value`` in int64, which wraps
    for extreme SET arguments (SET i8 with -2**63 saturates to the maximum): kept as is."""
    if signed:
        hi = (1 << (bits - 1)) - 1
        lo = -hi - 1
        up, down = _int64(hi - value), _int64(lo - value)
        small = bits != 64
        if value > hi or (small and incr > up) or (value >= 0 and incr > 0 and incr > up):
            limit = hi
        elif value < lo or (small and incr < down) or (value < 0 and incr < 0 and incr < down):
            limit = lo
        else:
            return False, value + incr
    else:
        hi, lo = (1 << bits) - 1, 0
        if value > hi or (incr > 0 and incr > _int64(hi - value)):
            limit = hi
        elif incr < 0 and incr < _int64(-value):
            limit = lo
        else:
            return False, value + incr
    if mode == SAT:
        return True, limit
    wrapped = (value + incr) & ((1 << bits) - 1)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return True, wrapped
