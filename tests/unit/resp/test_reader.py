"""Request reader: fed whole and byte by byte, hiredis and Python paths agree, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.resp.reader import (
    _HUGE_AGGREGATE,
    RequestReader,
    _huge_aggregate,
    _parse_small,
    split_args,
)
from ackdb.resp.request import encode_command


def pack(*args: bytes) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def feed_all(data: bytes, step: int | None = None, **kw: object) -> tuple[list, object]:
    r = RequestReader(**kw)  # type: ignore[arg-type]
    out: list = []
    if step is None:
        out += r.feed(data)
    else:
        for i in range(0, len(data), step):
            out += r.feed(data[i : i + step])
    return out, r.error


def test_pipeline_whole_and_bytewise() -> None:
    data = pack(b"SET", b"k", b"v") + pack(b"GET", b"k") + b"PING\r\n" + pack(b"ECHO", b"")
    want = [[b"SET", b"k", b"v"], [b"GET", b"k"], [b"PING"], [b"ECHO", b""]]
    for step in (None, 1, 2, 3, 7):
        got, err = feed_all(data, step)
        assert err is None
        assert got == want


def test_inline_quotes() -> None:
    got, err = feed_all(b'set "a b" \'c\\\'d\' "\\x41\\n"\r\n')
    assert err is None
    assert got == [[b"set", b"a b", b"c'd", b"A\n"]]


def test_inline_unbalanced_quotes() -> None:
    got, err = feed_all(b'set "a b\r\n')
    assert got == []
    assert err.reply == "ERR Protocol error: unbalanced quotes in request"  # type: ignore[attr-defined]


def test_empty_lines_and_empty_multibulk_are_skipped() -> None:
    got, err = feed_all(b"\r\n\n*0\r\n*-1\r\n" + pack(b"PING"))
    assert err is None
    assert got == [[b"PING"]]


@pytest.mark.parametrize(
    ("data", "reply"),
    [
        (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*3000000000\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$abc\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n:5\r\n", "ERR Protocol error: expected '$', got ':'"),
        (b"*2\r\n$1\r\na\r\n*1\r\n", "ERR Protocol error: expected '$', got '*'"),
    ],
)
def test_protocol_errors(data: bytes, reply: str) -> None:
    for step in (None, 1):
        got, err = feed_all(pack(b"PING") + data, step)
        assert got == [[b"PING"]]
        assert err is not None and err.reply == reply  # type: ignore[attr-defined]


def test_bulk_over_proto_max_bulk_len() -> None:
    got, err = feed_all(b"*1\r\n$2000000\r\n", max_bulk_bytes=1024 * 1024)
    assert err.reply == "ERR Protocol error: invalid bulk length"  # type: ignore[attr-defined]
    # A complete frame through the fast path is checked too.
    big = pack(b"SET", b"k", b"x" * 2000)
    got, err = feed_all(big, max_bulk_bytes=1000)
    assert got == [] and err.reply == "ERR Protocol error: invalid bulk length"  # type: ignore[attr-defined]


def test_query_buffer_limit_closes_without_reply() -> None:
    r = RequestReader(max_query_bytes=10_000)
    r.feed(b"*1\r\n$100000\r\n")
    for _ in range(20):
        r.feed(b"x" * 1000)
    assert r.error is not None and r.error.reply is None
    assert "max query buffer" in r.error.log


def test_too_big_inline() -> None:
    got, err = feed_all(b"x" * 70000)
    assert err.reply == "ERR Protocol error: too big inline request"  # type: ignore[attr-defined]


def test_unauthenticated_limits() -> None:
    got, err = feed_all(b"*11\r\n", authenticated=False)
    assert err.reply == "ERR Protocol error: unauthenticated multibulk length"  # type: ignore[attr-defined]
    got, err = feed_all(b"*1\r\n$20000\r\n", authenticated=False)
    assert err.reply == "ERR Protocol error: unauthenticated bulk length"  # type: ignore[attr-defined]


def test_nothing_after_error() -> None:
    r = RequestReader()
    r.feed(b"*x\r\n")
    assert r.error is not None
    assert r.feed(pack(b"PING")) == []


def test_large_value_straddling_reads() -> None:
    value = bytes(range(256)) * 1000
    data = pack(b"SET", b"k", value) + pack(b"GET", b"k")
    got, err = feed_all(data, 4096)
    assert err is None
    assert got == [[b"SET", b"k", value], [b"GET", b"k"]]


args_st = st.lists(st.binary(max_size=40), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(args_st, min_size=1, max_size=8), st.integers(min_value=1, max_value=50))
def test_roundtrip_any_split(cmds: list[list[bytes]], step: int) -> None:
    data = b"".join(pack(*c) for c in cmds)
    whole, err1 = feed_all(data)
    split, err2 = feed_all(data, step)
    assert err1 is None and err2 is None
    assert whole == cmds
    assert split == cmds


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=30))
def test_arbitrary_bytes_never_raise(data: bytes, step: int) -> None:
    whole, err1 = feed_all(data)
    split, err2 = feed_all(data, step)
    for cmds in (whole, split):
        for cmd in cmds:
            assert cmd and all(type(a) is bytes for a in cmd)
    # The same commands come out however the bytes are split, and the same error.
    assert whole == split
    assert (err1 is None) == (err2 is None)
    if err1 is not None:
        assert err1.reply == err2.reply  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab c\"'\\xn", max_size=12), max_size=5))
def test_split_args_never_raises(words: list[str]) -> None:
    line = " ".join(words).encode()
    res = split_args(line)
    assert res is None or all(isinstance(a, bytes) for a in res)


def test_many_tiny_arguments_count_against_the_query_buffer_limit() -> None:
    r = RequestReader(max_query_bytes=100_000)
    r.feed(b"*2147483647\r\n")
    for _ in range(200):
        r.feed(b"$0\r\n\r\n" * 100)
        if r.error is not None:
            break
    assert r.error is not None and r.error.reply is None


def test_huge_aggregate_header_is_not_handed_to_hiredis() -> None:
    import time

    t0 = time.monotonic()
    got, err = feed_all(b"*2147483647\r\n$1\r\na\r\n")
    assert got == [] and err is None
    got, err = feed_all(b"*1\r\n*2147483647\r\n$1\r\na\r\n")
    assert got == [] and err.reply == "ERR Protocol error: expected '$', got '*'"  # type: ignore[attr-defined]
    assert time.monotonic() - t0 < 1.0


@given(st.lists(st.sampled_from([b"*", b"%", b"~", b">", b"|", b"-", b"$", b"\r\n", b"1",
                                 b"123456", b"0", b"a", b"99999"]), max_size=30))  # fmt: skip
@settings(max_examples=500)
def test_fast_huge_header_check_agrees_with_the_full_pattern(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert _huge_aggregate(data) == (_HUGE_AGGREGATE.search(data) is not None)


@pytest.mark.parametrize("head", [b"*", b"%", b"~", b">", b"|"])
def test_every_huge_aggregate_kind_is_caught(head: bytes) -> None:
    assert _huge_aggregate(b"*1\r\n$1\r\na\r\n" + head + b"1000000\r\n")
    assert _huge_aggregate(b"*1\r\n$1\r\na\r\n" + head + b"-100000\r\n")
    assert not _huge_aggregate(b"*1\r\n$1\r\na\r\n" + head + b"99999\r\n")


def test_at_boundary_is_false_while_a_multibulk_is_partly_read() -> None:
    """The endpoint forwards a read as it came only when it started and ended between
    commands; ``pending_bytes`` is 0 also when a command's first arguments are in."""
    req = b"*2\r\n$3\r\nGET\r\n$2\r\nbp\r\n"
    r = RequestReader()
    assert r.at_boundary()
    assert r.feed(req + b"*2\r\n$3\r\nGET\r\n") == [[b"GET", b"bp"]]
    assert not r.at_boundary()
    assert r.feed(b"$2\r\nbp\r\n") == [[b"GET", b"bp"]]
    assert r.at_boundary()
    stream = req * 5000
    pos = 0
    for k in (7, 22, 1000, 65536, 3, 200000):
        boundary = r.at_boundary()
        data = stream[pos : pos + k]
        cmds = r.feed(data)
        if cmds and boundary and r.at_boundary():
            assert data.count(b"*2\r\n") == len(cmds)
        pos += k


@pytest.mark.parametrize("authenticated", [True, False])
def test_at_boundary_only_between_commands(authenticated: bool) -> None:
    # pending_bytes() is 0 between a multibulk header and its bulks too: at_boundary()
    # is the one that tells (the peer links' handshake relies on it).
    r = RequestReader(authenticated=authenticated)
    assert r.at_boundary()
    for chunk, boundary in (
        (b"*2\r\n", False),
        (b"$3\r\nGET\r\n", False),
        (b"$1\r\nk", False),
        (b"\r\n", True),
        (b"PI", False),
        (b"NG\r\n", True),
    ):
        r.feed(chunk)
        assert r.at_boundary() is boundary, chunk


# -- the hand parser of small requests (used when the module runs compiled) -------------


def _exact(data: bytes) -> tuple[list[list[bytes]], bool, bool]:
    """What the exact path makes of ``data`` fed byte by byte (the fast paths never see a
    whole read then): commands, at a boundary, failed."""
    r = RequestReader()
    out: list[list[bytes]] = []
    for i in range(len(data)):
        out += r.feed(data[i : i + 1])
    return out, r.at_boundary(), r.error is not None


_small_piece = st.one_of(
    st.sampled_from([b"*", b"$", b"\r\n", b"\r", b"\n", b"0", b"1", b"2", b"3", b"-", b"+"]),
    st.binary(max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.binary(max_size=12), min_size=1, max_size=4), max_size=4))
def test_small_parser_reads_well_formed_requests(cmds: list[list[bytes]]) -> None:
    data = b"".join(encode_command(c) for c in cmds)
    assert _parse_small(data) == cmds


@settings(max_examples=1500, deadline=None)
@given(st.lists(_small_piece, max_size=24))
def test_small_parser_accepts_only_what_the_exact_path_reads_the_same(parts: list[bytes]) -> None:
    data = b"".join(parts)
    got = _parse_small(data)
    if got is not None:
        cmds, boundary, failed = _exact(data)
        assert not failed and boundary and cmds == got


@pytest.mark.parametrize(
    "data",
    [
        b"*01\r\n$4\r\nPING\r\n",  # leading zero in the count
        b"*1\r\n$04\r\nPING\r\n",  # and in a length
        b"*+1\r\n$4\r\nPING\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        b"*1\r\n$4\r\nPIN",  # partial
        b"*1\r\n$4\r\nPINGx\r\n",
        b"*1\r\n$4\r\nPING\n",
        b"*100\r\n",
        b"*1\r\n$1234567890\r\n",
        b"*1\r\n:4\r\n",
        b"PING\r\n",
    ],
)
def test_small_parser_leaves_odd_input_to_the_exact_path(data: bytes) -> None:
    assert _parse_small(data) is None
    r = RequestReader()
    r.feed(data)  # and the reader as a whole still takes it (the exact path answers)


def test_small_parser_keeps_a_zero_length_argument() -> None:
    assert _parse_small(b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n") == [[b"GET", b""]]
