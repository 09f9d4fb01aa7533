"""LCS: the longest common subsequence of two strings.

Owns: Redis 7.0's LCS (t_string.c lcsCommand): the options (LEN, IDX, MINMATCHLEN,
WITHMATCHLEN), their errors, the walk back through the table that picks which common
subsequence and which match ranges are reported (so replies are Redis's, byte for byte),
and Redis's refusal of a table larger than proto-max-bulk-len. Never touches the network.

The table is kept as one bit row per byte of the first string (Hyyro's bit-parallel LCS:
bit j of row i is set where LCS(i, j + 1) exceeds LCS(i, j)), so LCS(i, j) is a popcount
and the rows cost (len(a) * len(b)) / 8 bytes where Redis's table costs 4 bytes a cell.
"""

from __future__ import annotations

from ..engine.client import Client
from ..resp import encoder as enc
from .base import SYNTAX, CommandError, arg_int, read_key
from .table import handler

_NOT_STRINGS = "ERR The specified keys must contain string values"
_BOTH = "ERR If you want both the length and indexes, please just use IDX."
_TOO_BIG = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
_U32_MAX = 2**32 - 1


def lcs_rows(a: bytes, b: bytes) -> list[int]:
    """Row i (0..len(a)) has bit j set when LCS(a[:i], b[:j + 1]) > LCS(a[:i], b[:j])."""
    full = (1 << len(b)) - 1
    masks: dict[int, int] = {}
    for j, ch in enumerate(b):
        masks[ch] = masks.get(ch, 0) | (1 << j)
    v = full
    rows = [0]
    for ch in a:
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
        rows.append(~v & full)
    return rows


def _at(rows: list[int], i: int, j: int) -> int:
    return (rows[i] & ((1 << j) - 1)).bit_count()


Range = tuple[int, int, int, int]  # a's start and end, b's start and end (inclusive)


def lcs_walk(a: bytes, b: bytes, rows: list[int]) -> tuple[bytes, list[Range]]:
    """Redis's walk from the table's end: the common subsequence and its match ranges, last
    first."""
    alen = len(a)
    i, j = alen, len(b)
    out = bytearray()
    ranges: list[Range] = []
    a0 = alen  # alen: no range open
    a1 = b0 = b1 = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out.append(a[i - 1])
            if a0 == alen:
                a0 = a1 = i - 1
                b0 = b1 = j - 1
            elif a0 == i and b0 == j:
                a0 -= 1
                b0 -= 1
            else:
                emit = True
            if a0 == 0 or b0 == 0:
                emit = True
            i -= 1
            j -= 1
        else:
            if _at(rows, i - 1, j) > _at(rows, i, j - 1):
                i -= 1
            else:
                j -= 1
            if a0 != alen:
                emit = True
        if emit:
            ranges.append((a0, a1, b0, b1))
            a0 = alen
    out.reverse()
    return bytes(out), ranges


@handler("lcs")
def lcs(c: Client, argv: list[bytes]) -> bytes:
    va, vb = read_key(c, argv[1]), read_key(c, argv[2])
    if (va is not None and va.__class__ is not bytes) or (
        vb is not None and vb.__class__ is not bytes
    ):
        raise CommandError(_NOT_STRINGS)
    a: bytes = va or b""
    b: bytes = vb or b""
    getlen = getidx = withlen = False
    minlen = 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        if opt == b"idx":
            getidx = True
        elif opt == b"len":
            getlen = True
        elif opt == b"withmatchlen":
            withlen = True
        elif opt == b"minmatchlen" and j < len(argv) - 1:
            minlen = max(arg_int(argv[j + 1]), 0)
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    if getidx and getlen:
        raise CommandError(_BOTH)
    if len(a) >= _U32_MAX - 1 or len(b) >= _U32_MAX - 1:
        raise CommandError("ERR String too long for LCS")
    if (len(a) + 1) * (len(b) + 1) * 4 > int(c.server.config.get("proto-max-bulk-len")):
        raise CommandError(_TOO_BIG)
    rows = lcs_rows(a, b)
    total = rows[-1].bit_count()
    if getlen:
        return enc.integer(total)
    text, ranges = lcs_walk(a, b, rows)
    if not getidx:
        return enc.bulk(text)
    matches = []
    for a0, a1, b0, b1 in ranges:
        if minlen and a1 - a0 + 1 < minlen:
            continue
        parts = [enc.array([enc.integer(a0), enc.integer(a1)])]
        parts.append(enc.array([enc.integer(b0), enc.integer(b1)]))
        if withlen:
            parts.append(enc.integer(a1 - a0 + 1))
        matches.append(enc.array(parts))
    p = c.p
    return (
        p.map_header(2)
        + enc.bulk(b"matches")
        + enc.array(matches)
        + enc.bulk(b"len")
        + enc.integer(total)
    )
