"""resp.argsplit: Redis sdssplitargs, fed whole; the inline reader fed byte by byte."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.resp.argsplit import split_args, split_args_text
from ackdb.resp.reader import RequestReader


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b"", []),
        (b" \t\v\f ", []),
        (b"set k v", [b"set", b"k", b"v"]),
        (b'"a b" c', [b"a b", b"c"]),
        (b'"\\x41\\x7a\\xzz"', [b"Azxzz"]),
        (b'"\\n\\r\\t\\b\\a\\q"', [b"\n\r\t\b\aq"]),
        (b"'it\\'s' '\\n'", [b"it's", b"\\n"]),
        (b'a"b c"', [b"ab c"]),
        (b"a\vb c\fd", [b"a\vb", b"c\fd"]),  # outside quotes VT and FF belong to the word
        (b'"a"\vb', [b"a", b"b"]),  # ... but a closing quote may be followed by any blank
        (b"a\0b c", [b"a"]),  # a C string: the NUL ends the line
        (b'"a\0b"', None),  # ... and leaves the quote open
        (b'"a"\0x', [b"a"]),
        (b'"ab', None),
        (b"'ab", None),
        (b'"a"b', None),
        (b"'a'b", None),
        (b'"ab\\', None),
    ],
)
def test_split_args(line: bytes, args: list[bytes] | None) -> None:
    assert split_args(line) == args


def test_split_args_text_keeps_non_utf8_as_surrogates() -> None:
    [arg] = split_args_text('"\\xff" ') or []
    assert arg.encode("utf-8", "surrogateescape") == b"\xff"
    assert split_args_text('"open') is None


@pytest.mark.parametrize("step", [None, 1, 2])
def test_inline_requests_split_across_reads(step: int | None) -> None:
    data = b"set \"a b\" 'c'\r\nPING\n  \r\nGET\vx k\r\n"
    r = RequestReader()
    out = []
    chunks = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        out += r.feed(chunk)
    assert r.error is None
    assert out == [[b"set", b"a b", b"c"], [b"PING"], [b"GET\vx", b"k"]]


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_unquoted_lines_split_on_space_tab_cr_lf(line: bytes) -> None:
    if b'"' in line or b"'" in line:
        return
    words = re.split(rb"[ \t\r\n]", line.split(b"\0")[0])
    assert split_args(line) == [w.lstrip(b"\v\f") for w in words if w.lstrip(b"\v\f")]


@pytest.mark.parametrize("line", [b"ECHO a\0b c\r\n", b'ECHO "a\0b"\r\n', b"\0\n"])
def test_inline_request_with_a_nul_waits_like_redis(line: bytes) -> None:
    # Redis (processInlineBuffer) finds the newline with strchr, which stops at the NUL:
    # no request, no reply, until the inline limit closes the connection.
    for step in (None, 1):
        r = RequestReader()
        chunks = [line] if step is None else [line[i : i + 1] for i in range(len(line))]
        assert [c for chunk in chunks for c in r.feed(chunk)] == []
        assert r.error is None
        assert r.feed(b"PING\r\n" * 12000) == []
        assert r.error is not None
        assert r.error.reply == "ERR Protocol error: too big inline request"
