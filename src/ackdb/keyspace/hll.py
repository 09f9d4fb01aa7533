"""HyperLogLog values in Redis's own representation, byte for byte.

Owns: the 16-byte header ("HYLL", the encoding byte, three unused bytes, the cached
cardinality as a little-endian uint64 whose top bit marks it stale), the dense encoding
(16384 six-bit registers packed least significant bit first, 12304 bytes in all), the
sparse encoding (ZERO ``00xxxxxx``, XZERO ``01xxxxxx yyyyyyyy`` and VAL ``1vvvvvxx``
opcodes), MurmurHash64A with Redis's seed, the in-place sparse update with its exact
splitting and merging of opcodes, the promotion to dense (a register over 32, or the
value growing past hll-sparse-max-bytes), and the estimator of Ertl's "New cardinality
estimation algorithms for HyperLogLog sketches" as Redis computes it. So a value PFADDed
here equals, byte for byte, the one Redis builds, and estimates are the same.

Pure functions on ``bytes`` / ``bytearray``: never looks a key up. A value that does not
decode raises ``Corrupt``; the commands turn it into Redis's INVALIDOBJ error.
"""

from __future__ import annotations

import math

HDR = 16
P = 14
Q = 64 - P
REGISTERS = 1 << P
P_MASK = REGISTERS - 1
REGISTER_MAX = 63
DENSE = 0
SPARSE = 1
DENSE_SIZE = HDR + (REGISTERS * 6 + 7) // 8
SEED = 0xADC83B19
ALPHA_INF = 0.721347520444481703680  # 1 / (2 ln 2)
VAL_MAX_VALUE = 32
VAL_MAX_LEN = 4
ZERO_MAX_LEN = 64
XZERO_MAX_LEN = 16384
_M64 = (1 << 64) - 1
_MUL = 0xC6A4A7935BD1E995


class Corrupt(Exception):
    """The value's registers do not decode (a sparse run past 16384 registers...)."""


def murmur64a(data: bytes, seed: int = SEED) -> int:
    """MurmurHash64A (Austin Appleby), reading 8-byte words little-endian as Redis does."""
    n = len(data)
    h = (seed ^ (n * _MUL)) & _M64
    whole = n - (n & 7)
    for i in range(0, whole, 8):
        k = (int.from_bytes(data[i : i + 8], "little") * _MUL) & _M64
        k ^= k >> 47
        k = (k * _MUL) & _M64
        h = ((h ^ k) * _MUL) & _M64
    if n & 7:
        h ^= int.from_bytes(data[whole:], "little")
        h = (h * _MUL) & _M64
    h ^= h >> 47
    h = (h * _MUL) & _M64
    return h ^ (h >> 47)


def pattern(element: bytes) -> tuple[int, int]:
    """(register index, run length of the "000..1" pattern) of one element."""
    h = murmur64a(element)
    index = h & P_MASK
    h = (h >> P) | (1 << Q)
    return index, (h & -h).bit_length()


def new_sparse() -> bytearray:
    """An empty HLL: sparse, one XZERO covering every register, cardinality 0 (valid)."""
    return bytearray(b"HYLL\x01" + bytes(11) + b"\x7f\xff")


def is_valid_header(v: bytes) -> bool:
    """Redis isHLLObjectOrReply: magic, known encoding, exact dense size."""
    if len(v) < HDR or v[:4] != b"HYLL" or v[4] > SPARSE:
        return False
    return v[4] != DENSE or len(v) == DENSE_SIZE


def cached(v: bytes) -> int | None:
    if v[15] & 0x80:
        return None
    return int.from_bytes(v[8:16], "little")


def set_cache(buf: bytearray, card: int) -> None:
    buf[8:16] = card.to_bytes(8, "little")


def invalidate(buf: bytearray) -> None:
    buf[15] |= 0x80


# -- dense -------------------------------------------------------------------------------


def dense_get(buf: bytes | bytearray, reg: int) -> int:
    byte = reg * 6 >> 3
    fb = reg * 6 & 7
    b1 = buf[HDR + byte + 1] if HDR + byte + 1 < len(buf) else 0
    return ((buf[HDR + byte] >> fb) | (b1 << (8 - fb))) & REGISTER_MAX


def dense_put(buf: bytearray, reg: int, val: int) -> None:
    byte = HDR + (reg * 6 >> 3)
    fb = reg * 6 & 7
    buf[byte] = (buf[byte] & ~(REGISTER_MAX << fb) & 0xFF) | ((val << fb) & 0xFF)
    if fb > 2:  # the register crosses into the next byte
        fb8 = 8 - fb
        buf[byte + 1] = (buf[byte + 1] & ~(REGISTER_MAX >> fb8) & 0xFF) | (val >> fb8)


def dense_registers(v: bytes | bytearray) -> list[int]:
    out: list[int] = []
    regs = v[HDR:]
    for i in range(0, len(regs) - 2, 3):
        b0, b1, b2 = regs[i], regs[i + 1], regs[i + 2]
        out += (b0 & 63, (b0 >> 6) | ((b1 & 15) << 2), (b1 >> 4) | ((b2 & 3) << 4), b2 >> 2)
    return out


# -- sparse ------------------------------------------------------------------------------


def _op_at(v: bytes | bytearray, p: int) -> tuple[int, int, int]:
    """(kind 0 ZERO / 1 XZERO / 2 VAL, registers covered, opcode length) at ``p``."""
    b = v[p]
    if b & 0x80:
        return 2, (b & 3) + 1, 1
    if b & 0x40:
        nxt = v[p + 1] if p + 1 < len(v) else 0  # Redis reads the sds terminator
        return 1, (((b & 0x3F) << 8) | nxt) + 1, 2
    return 0, (b & 0x3F) + 1, 1


def sparse_runs(v: bytes | bytearray) -> list[tuple[int, int]]:
    """(value, run length) of every opcode; Corrupt unless they cover 16384 registers."""
    runs = []
    idx = 0
    p = HDR
    end = len(v)
    while p < end:
        kind, span, oplen = _op_at(v, p)
        val = ((v[p] >> 2) & 0x1F) + 1 if kind == 2 else 0
        if kind == 2 and idx + span > REGISTERS:
            raise Corrupt
        runs.append((val, span))
        idx += span
        p += oplen
    if idx != REGISTERS:
        raise Corrupt
    return runs


def to_dense(v: bytes | bytearray) -> bytearray:
    """The dense form of a sparse value (header copied, the cached cardinality kept)."""
    out = bytearray(DENSE_SIZE)
    out[:HDR] = v[:HDR]
    out[4] = DENSE
    idx = 0
    for val, span in sparse_runs(v):
        if val:
            for r in range(idx, idx + span):
                dense_put(out, r, val)
        idx += span
    return out


def _val(val: int, length: int) -> int:
    return 0x80 | ((val - 1) << 2) | (length - 1)


def _zeros(length: int) -> bytes:
    if length > ZERO_MAX_LEN:
        n = length - 1
        return bytes((0x40 | (n >> 8), n & 0xFF))
    return bytes((length - 1,))


# Where a scan of the opcodes may start: (position, first register of that opcode).
Hint = tuple[int, int]
_START: Hint = (HDR, 0)


def _locate(buf: bytearray, index: int, start: Hint) -> tuple[int, int, int, Hint]:
    """(opcode covering ``index``, its first register, the opcode before it or -1, and
    the opcode before that as a hint for a later scan — untouched by this update)."""
    p, first = start
    prev = -1
    prev2: Hint = start
    prev_at: Hint = start
    end = len(buf)
    while p < end:
        _, span, oplen = _op_at(buf, p)
        if index <= first + span - 1:
            return p, first, prev, prev2
        prev2, prev_at = prev_at, (p, first)
        prev = p
        p += oplen
        first += span
    raise Corrupt


def sparse_set(buf: bytearray, index: int, count: int, max_bytes: int) -> tuple[bool, bytearray]:
    """Redis hllSparseSet: raise register ``index`` to ``count``. Returns (changed, the
    value) — a new dense value when the update promotes it."""
    changed, buf, _ = _sparse_set(buf, index, count, max_bytes, _START)
    return changed, buf


def _sparse_set(
    buf: bytearray, index: int, count: int, max_bytes: int, hint: Hint
) -> tuple[bool, bytearray, Hint]:
    """``sparse_set`` scanning from ``hint`` (an opcode at or before the one covering
    ``index``, whose predecessor is unknown: a register in the hint's own opcode is looked
    up again from the start); returns a hint for a later, higher register."""
    if count > VAL_MAX_VALUE:
        return (*_promote(buf, index, count), _START)
    p, first, prev, after = _locate(buf, index, hint)
    if p == hint[0] and hint != _START:
        p, first, prev, after = _locate(buf, index, _START)
    kind, span, oplen = _op_at(buf, p)
    if kind == 2:
        cur = ((buf[p] >> 2) & 0x1F) + 1
        if cur >= count:
            return False, buf, after
        if span == 1:
            buf[p] = _val(count, 1)
            _merge(buf, prev)
            invalidate(buf)
            return True, buf, after
    elif kind == 0 and span == 1:
        buf[p] = _val(count, 1)
        _merge(buf, prev)
        invalidate(buf)
        return True, buf, after
    last = first + span - 1
    seq = bytearray()
    if kind == 2:
        cur = ((buf[p] >> 2) & 0x1F) + 1
        if index != first:
            seq.append(_val(cur, index - first))
        seq.append(_val(count, 1))
        if index != last:
            seq.append(_val(cur, last - index))
    else:
        if index != first:
            seq += _zeros(index - first)
        seq.append(_val(count, 1))
        if index != last:
            seq += _zeros(last - index)
    if len(seq) > oplen and len(buf) + len(seq) - oplen > max_bytes:
        return (*_promote(buf, index, count), _START)
    buf[p : p + oplen] = seq
    _merge(buf, prev)
    invalidate(buf)
    return True, buf, after


def _promote(buf: bytearray, index: int, count: int) -> tuple[bool, bytearray]:
    dense = to_dense(buf)
    if dense_get(dense, index) < count:
        dense_put(dense, index, count)
    return True, dense


def _merge(buf: bytearray, prev: int) -> None:
    """Redis's step 4: merge adjacent VAL opcodes of one value, scanning 5 opcodes from
    the one before the update."""
    p = prev if prev >= 0 else HDR
    scans = 5
    while p < len(buf) and scans:
        scans -= 1
        b = buf[p]
        if not b & 0x80:
            p += 2 if b & 0x40 else 1
            continue
        if p + 1 < len(buf) and buf[p + 1] & 0x80:
            v1, v2 = (b >> 2) & 0x1F, (buf[p + 1] >> 2) & 0x1F
            length = (b & 3) + (buf[p + 1] & 3) + 2
            if v1 == v2 and length <= VAL_MAX_LEN:
                buf[p : p + 2] = bytes((_val(v1 + 1, length),))
                continue
        p += 1


# -- adding, merging, counting -----------------------------------------------------------


def add(buf: bytearray, element: bytes, max_bytes: int) -> tuple[bool, bytearray]:
    """PFADD of one element: (a register changed, the value, possibly promoted)."""
    index, count = pattern(element)
    if buf[4] == DENSE:
        if dense_get(buf, index) >= count:
            return False, buf
        dense_put(buf, index, count)
        return True, buf
    return sparse_set(buf, index, count, max_bytes)


def registers(v: bytes | bytearray) -> list[int]:
    """All 16384 register values (Corrupt for a sparse value that does not decode)."""
    if v[4] == DENSE:
        return dense_registers(v)
    out: list[int] = []
    for val, span in sparse_runs(v):
        out += [val] * span
    return out


def merge_max(into: list[int], v: bytes | bytearray) -> None:
    """Redis hllMerge: ``into[i] = max(into[i], register i of v)``."""
    for i, r in enumerate(registers(v)):
        if r > into[i]:
            into[i] = r


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prev = z
        z += x * y
        y += y
        if z_prev == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prev = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if z_prev == z:
            return z / 3


def estimate(regs: list[int]) -> int:
    """Redis hllCount's estimator over the register values."""
    histo = [0] * 64
    for r in regs:
        histo[r] += 1
    m = float(REGISTERS)
    z = m * _tau((m - histo[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histo[j]
        z *= 0.5
    z += m * _sigma(histo[0] / m)
    e = ALPHA_INF * m * m / z
    whole = math.floor(e)
    return int(whole + 1 if e - whole >= 0.5 else whole)  # llroundl


def decode(v: bytes | bytearray) -> bytes:
    """PFDEBUG DECODE: the opcodes as "z:len", "Z:len", "v:value,len"."""
    parts = []
    p = HDR
    while p < len(v):
        kind, span, oplen = _op_at(v, p)
        if kind == 0:
            parts.append(b"z:%d" % span)
        elif kind == 1:
            parts.append(b"Z:%d" % span)
        else:
            parts.append(b"v:%d,%d" % (((v[p] >> 2) & 0x1F) + 1, span))
        p += oplen
    return b" ".join(parts)


def set_all(buf: bytearray, regs: list[int], max_bytes: int) -> bytearray:
    """PFMERGE's write: raise every register of ``buf`` to ``regs`` in register order, as
    Redis does one register at a time (so the sparse opcodes come out the same)."""
    hint = _START
    for j, r in enumerate(regs):
        if not r:
            continue
        if buf[4] == DENSE:
            if dense_get(buf, j) < r:
                dense_put(buf, j, r)
        else:
            _, buf, hint = _sparse_set(buf, j, r, max_bytes, hint)
    return buf
