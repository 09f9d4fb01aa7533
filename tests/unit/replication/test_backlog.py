"""Backlog: byte-exact offsets against a naive reference (Hypothesis), bounds, resize."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.replication.backlog import BACKLOG_MIN_BYTES, CHUNK_BYTES, Backlog


class NaiveBacklog:
    """The window as one bytes object: ``data`` starts at offset ``first``."""

    def __init__(self, size: int, start: int) -> None:
        self.size, self.first, self.data = max(size, BACKLOG_MIN_BYTES), start, b""

    def _trim(self) -> None:
        cut = max(0, len(self.data) - self.size)
        self.first += cut
        self.data = self.data[cut:]

    def append(self, b: bytes) -> None:
        self.data += b
        self._trim()

    def resize(self, size: int) -> None:
        self.size = max(size, BACKLOG_MIN_BYTES)
        self._trim()

    def read_from(self, offset: int) -> bytes:
        return self.data[offset - self.first :]


ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(min_size=0, max_size=300)),
        st.tuples(st.just("big"), st.integers(CHUNK_BYTES, 2 * CHUNK_BYTES)),
        st.tuples(st.just("resize"), st.integers(0, 3 * BACKLOG_MIN_BYTES)),
    ),
    max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(start=st.integers(1, 10**12), ops=ops, probe=st.integers(0, 10**6))
def test_matches_naive_reference(start: int, ops: list[tuple[str, object]], probe: int) -> None:
    b, ref = Backlog(BACKLOG_MIN_BYTES, start), NaiveBacklog(BACKLOG_MIN_BYTES, start)
    for kind, arg in ops:
        if kind == "resize":
            assert isinstance(arg, int)
            b.resize(arg)
            ref.resize(arg)
            continue
        data = arg if isinstance(arg, bytes) else bytes([arg % 251]) * arg
        b.append(data)
        ref.append(data)
        assert (b.first_byte_offset, b.histlen) == (ref.first, len(ref.data))
        assert b.end_offset == ref.first + len(ref.data)
    # Any offset in the window reads exactly the reference's tail; outside is refused.
    lo, hi = b.first_byte_offset, b.end_offset
    off = lo + probe % (hi - lo + 1)
    assert b.contains(off)
    assert b.read_from(off) == ref.read_from(off)
    assert not b.contains(lo - 1) and not b.contains(hi + 1)


def test_empty_backlog_serves_exactly_the_next_byte() -> None:
    # notes: asking for exactly the next byte is allowed and sends nothing.
    b = Backlog(1 << 20, 101)
    assert (b.first_byte_offset, b.histlen, b.end_offset) == (101, 0, 101)
    assert b.contains(101) and b.read_from(101) == b""
    assert not b.contains(100) and not b.contains(102)


def test_size_has_a_floor_of_16kb() -> None:
    # notes: the backlog is at least 16kb.
    assert Backlog(10, 1).size_bytes == 16 * 1024


def test_window_is_exact_after_many_small_appends() -> None:
    b = Backlog(BACKLOG_MIN_BYTES, 1)
    total = b""
    for i in range(5000):
        piece = b"*1\r\n$4\r\nping\r\n" + bytes([i % 256])
        b.append(piece)
        total += piece
    assert b.histlen == BACKLOG_MIN_BYTES
    assert b.end_offset == 1 + len(total)
    assert b.read_from(b.first_byte_offset) == total[-BACKLOG_MIN_BYTES:]


def test_memory_stays_bounded() -> None:
    b = Backlog(BACKLOG_MIN_BYTES, 1)
    for _ in range(10_000):
        b.append(b"x" * 100)
    held = sum(len(c) for c in b._stored())  # noqa: SLF001 - white-box bound check
    assert held <= BACKLOG_MIN_BYTES + CHUNK_BYTES


def test_read_outside_window_is_a_bug() -> None:
    b = Backlog(BACKLOG_MIN_BYTES, 5)
    with pytest.raises(AssertionError):
        b.read_from(4)
