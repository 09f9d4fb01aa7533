"""resp.request: the request encoder, read back by the request reader whole and byte by
byte."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ackdb.resp.reader import RequestReader
from ackdb.resp.request import encode_command, pack, select_command


def test_shapes() -> None:
    assert encode_command([b"PING"]) == b"*1\r\n$4\r\nPING\r\n"
    assert encode_command((b"GET", b"k")) == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert encode_command([b"SET", b"k", b""]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
    assert pack("META.SET", b"k\r\n", 5) == b"*3\r\n$8\r\nMETA.SET\r\n$3\r\nk\r\n\r\n$1\r\n5\r\n"
    assert select_command(12) == b"*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n"


@given(st.lists(st.lists(st.binary(max_size=8), min_size=1, max_size=5), max_size=6))
def test_reader_reads_back_what_the_encoder_wrote(cmds: list[list[bytes]]) -> None:
    data = b"".join(encode_command(c) for c in cmds)
    whole = RequestReader()
    assert whole.feed(data) == cmds if data else True
    bytewise = RequestReader()
    got = [c for i in range(len(data)) for c in bytewise.feed(data[i : i + 1])]
    assert got == cmds


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [0, 9, 10, 1023, 1024, 100_000])
def test_encoding_on_both_sides_of_the_header_table(n: int, size: int) -> None:
    """Lengths below 1024 take their ``$len`` line from a table, longer ones format it."""
    argv = [b"k" * (size if i == n - 1 else i) for i in range(n)]
    want = b"*%d\r\n" % n + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
    assert encode_command(argv) == want
    assert encode_command(tuple(argv)) == want
