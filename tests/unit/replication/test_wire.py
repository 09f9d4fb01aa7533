"""LinkReader: commands with exact positions, fed whole and byte by byte; lines; errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ackdb.replication.util import encode_command
from ackdb.replication.wire import LinkProtocolError, LinkReader


def parse(data: bytes, step: int | None) -> list[tuple[list[bytes], int]]:
    r = LinkReader()
    out: list[tuple[list[bytes], int]] = []
    chunks = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        r.feed(chunk)
        while (argv := r.next_command()) is not None:
            out.append((argv, r.command_end))
    return out


commands = st.lists(
    st.lists(st.binary(max_size=20), min_size=1, max_size=4), min_size=1, max_size=8
)


@given(cmds=commands, step=st.integers(1, 17))
def test_positions_whole_and_in_pieces(cmds: list[list[bytes]], step: int) -> None:
    data = b"".join(encode_command(c) for c in cmds)
    ends, pos = [], 0
    for c in cmds:
        pos += len(encode_command(c))
        ends.append(pos)
    want = list(zip(cmds, ends, strict=True))
    assert parse(data, None) == want
    assert parse(data, step) == want
    assert parse(data, 1) == want


def test_take_until_hands_out_exact_bytes_and_keeps_the_rest() -> None:
    a, b = encode_command([b"MULTI"]), encode_command([b"SET", b"k", b"v"])
    r = LinkReader()
    r.feed(a + b[:5])
    assert r.next_command() == [b"MULTI"]
    assert r.next_command() is None
    assert r.command_end == len(a)
    assert r.take_until(len(a)) == a
    r.feed(b[5:])
    assert r.next_command() == [b"SET", b"k", b"v"]
    assert r.take_until(r.command_end) == b and r.buffered == 0


def test_take_until_refuses_a_partial_command() -> None:
    r = LinkReader()
    r.feed(b"*1\r\n$4\r\npi")
    assert r.next_command() is None
    with pytest.raises(AssertionError):
        r.take_until(3)


@pytest.mark.parametrize(
    "data",
    [
        b"+OK\r\n",
        b"*0\r\n",
        b"*-1\r\n",
        b"*1\r\n:1\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$1\r\nab\r\n",
        b"*x\r\n",
    ],
)
def test_protocol_errors(data: bytes) -> None:
    r = LinkReader()
    r.feed(data)
    with pytest.raises(LinkProtocolError):
        r.next_command()


def test_bulk_limit_and_header_line_limit() -> None:
    r = LinkReader(bulk_max_bytes=10)
    r.feed(b"*1\r\n$11\r\n")
    with pytest.raises(LinkProtocolError):
        r.next_command()
    r = LinkReader()
    r.feed(b"*" + b"1" * (70 * 1024))
    with pytest.raises(LinkProtocolError):
        r.next_command()


def test_lines_and_raw_bytes() -> None:
    r = LinkReader()
    for piece in (b"\n", b"+FULLRE", b"SYNC x 1\r", b"\n$3\r\nabcREST"):
        r.feed(piece)
    assert r.read_line() == b""  # a bare keep-alive newline
    assert r.read_line() == b"+FULLRESYNC x 1"
    assert r.read_line() == b"$3"
    assert r.read_raw(3) == b"abc"
    assert r.find(b"ST") == 2
    assert r.read_raw(100) == b"REST" and r.read_line() is None


def test_large_feeds_keep_exact_positions() -> None:
    """The fast parser is fed in 32 KiB pieces: a multi-megabyte feed (the stream
    buffered during a full sync) yields every command with its exact end."""
    cmds = [[b"SET", b"k%d" % i, b"v" * (i % 97)] for i in range(40_000)]
    data = b"".join(encode_command(c) for c in cmds)
    got = parse(data, None)
    assert [argv for argv, _ in got] == cmds
    ends, end = [], 0
    for c in cmds:
        end += len(encode_command(c))
        ends.append(end)
    assert [e for _, e in got] == ends


def test_non_bulk_elements_fall_back_and_are_refused() -> None:
    """hiredis accepts an integer inside an array; a primary never sends one: the reader
    hands over to its own parser, which refuses it, after the good commands before it."""
    r = LinkReader()
    r.feed(encode_command([b"PING"]) + b"*2\r\n$3\r\nGET\r\n:5\r\n")
    assert r.next_command() == [b"PING"]
    with pytest.raises(LinkProtocolError):
        r.next_command()


@pytest.mark.parametrize(
    "weird",
    [
        b"*2\r\n$03\r\nGET\r\n$1\r\nk\r\n",  # a leading zero in a bulk length
        b"*02\r\n$3\r\nGET\r\n$1\r\nk\r\n",  # ... in the argument count
        b"*2\r\n$3\r\nGETXY$1\r\nk\r\n",  # no CRLF after the bytes
        b"*2\r\n+GET\r\n$1\r\nk\r\n",  # a status element
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",  # the one form (the control)
    ],
)
def test_other_framings_never_shift_positions(weird: bytes) -> None:
    """Any framing but the one form is either refused or read by the Python parser at its
    true length: the fast path never guesses a command's length."""
    good = encode_command([b"PING"])
    r = LinkReader()
    r.feed(good + weird + good)
    assert r.next_command() == [b"PING"] and r.command_end == len(good)
    try:
        argv = r.next_command()
    except LinkProtocolError:
        return
    assert argv == [b"GET", b"k"]
    assert r.command_end == len(good) + len(weird)
    assert r.next_command() == [b"PING"] and r.command_end == 2 * len(good) + len(weird)
