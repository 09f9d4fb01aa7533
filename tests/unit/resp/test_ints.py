"""resp.ints.parse_ll: Redis string2ll (util.c), against a naive transcription of it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.resp.ints import INT64_MAX, INT64_MIN, parse_ll, parse_ll_text
from ackdb.resp.reader import RequestReader


def string2ll_reference(s: bytes) -> int | None:
    """util.c string2ll step by step: length, "0", '-', first digit 1-9, digits with
    overflow checks against ULLONG_MAX, then the signed range."""
    if len(s) == 0 or len(s) >= 21:  # LONG_STR_SIZE
        return None
    if s == b"0":
        return 0
    p = 0
    negative = False
    if s[0:1] == b"-":
        negative = True
        p = 1
        if p == len(s):
            return None
    if not (0x31 <= s[p] <= 0x39):
        return None
    v = s[p] - 0x30
    p += 1
    while p < len(s) and 0x30 <= s[p] <= 0x39:
        if v > (2**64 - 1) // 10:
            return None
        v *= 10
        if v > (2**64 - 1) - (s[p] - 0x30):
            return None
        v += s[p] - 0x30
        p += 1
    if p < len(s):
        return None
    if negative:
        return -v if v <= 2**63 else None
    return v if v <= 2**63 - 1 else None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"0", 0),
        (b"1", 1),
        (b"-1", -1),
        (b"9223372036854775807", INT64_MAX),
        (b"-9223372036854775808", INT64_MIN),
        (b"9223372036854775808", None),
        (b"-9223372036854775809", None),
        (b"-0", None),  # string2ll: "-" then a first digit of 1-9
        (b"00", None),
        (b"01", None),
        (b"-01", None),
        (b"+1", None),
        (b" 1", None),
        (b"1 ", None),
        (b"", None),
        (b"-", None),
        (b"1e3", None),
        (b"\xd9\xa1", None),  # Arabic-Indic one: not an ASCII digit
        (b"1" * 20, None),
        (b"-" + b"1" * 19, -1111111111111111111),  # 20 characters: the longest allowed
        (b"-" + b"1" * 20, None),  # 21 characters: refused by length alone
    ],
)
def test_parse_ll(text: bytes, value: int | None) -> None:
    assert parse_ll(text) == value
    assert string2ll_reference(text) == value
    assert parse_ll_text(text.decode("utf-8", "replace")) == value


_digits = st.text(alphabet="-0123456789", max_size=22).map(str.encode)
_near_limits = st.integers(min_value=-(2**64), max_value=2**64).map(lambda n: b"%d" % n)


@settings(max_examples=1000)
@given(st.one_of(_digits, _near_limits, st.binary(max_size=22)))
def test_parse_ll_matches_string2ll(text: bytes) -> None:
    assert parse_ll(text) == string2ll_reference(text)


@given(st.text(max_size=22))
def test_parse_ll_text_matches_bytes(text: str) -> None:
    want = parse_ll(text.encode("utf-8", "surrogatepass")) if text.isascii() else None
    assert parse_ll_text(text) == want


@pytest.mark.parametrize("header", [b"*-0\r\n", b"*01\r\n", b"*+1\r\n"])
def test_request_counts_are_string2ll(header: bytes) -> None:
    # Redis processMultibulkBuffer: string2ll fails -> "invalid multibulk length"; the
    # reader once took "-0" as an empty request.
    for step in (None, 1):
        r = RequestReader()
        data = header + b"$4\r\nPING\r\n"
        out = r.feed(data) if step is None else [c for b in data for c in r.feed(bytes([b]))]
        assert out == []
        assert r.error is not None
        assert r.error.reply == "ERR Protocol error: invalid multibulk length"


@pytest.mark.parametrize("length", [b"-0", b"01", b"+4"])
def test_bulk_lengths_are_string2ll(length: bytes) -> None:
    r = RequestReader()
    assert r.feed(b"*1\r\n$" + length + b"\r\nPING\r\n") == []
    assert r.error is not None and r.error.reply == "ERR Protocol error: invalid bulk length"
