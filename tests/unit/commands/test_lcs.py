"""LCS's bit-row table against the textbook dynamic-programming table."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ackdb.commands.lcs import lcs_rows, lcs_walk


def _table(a: bytes, b: bytes) -> list[list[int]]:
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                t[i][j] = t[i - 1][j - 1] + 1
            else:
                t[i][j] = max(t[i - 1][j], t[i][j - 1])
    return t


small = st.binary(max_size=14).map(lambda s: bytes(b"abc"[x % 3] for x in s))


@given(small, small)
def test_rows_give_every_cell_of_the_table(a: bytes, b: bytes) -> None:
    t, rows = _table(a, b), lcs_rows(a, b)
    for i in range(len(a) + 1):
        for j in range(len(b) + 1):
            assert (rows[i] & ((1 << j) - 1)).bit_count() == t[i][j]


@given(small, small)
def test_walk_finds_a_common_subsequence_of_the_longest_length(a: bytes, b: bytes) -> None:
    text, ranges = lcs_walk(a, b, lcs_rows(a, b))
    assert len(text) == _table(a, b)[len(a)][len(b)]
    assert sum(a1 - a0 + 1 for a0, a1, _, _ in ranges) == len(text)
    for a0, a1, b0, b1 in ranges:
        assert a[a0 : a1 + 1] == b[b0 : b1 + 1]


def test_redis_example() -> None:
    # Redis LCS docs: LCS ohmytext mynewtext -> "mytext"; IDX matches [[4,7],[5,8]], [[2,3],[0,1]]
    a, b = b"ohmytext", b"mynewtext"
    text, ranges = lcs_walk(a, b, lcs_rows(a, b))
    assert text == b"mytext"
    assert ranges == [(4, 7, 5, 8), (2, 3, 0, 1)]
