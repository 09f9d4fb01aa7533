"""Frames of the cluster port (ackdb.node.peerframes): round trips and rejections."""

from __future__ import annotations

import pytest

from ackdb.consensus import Entry, Message, MsgType
from ackdb.node.peerframes import (
    Forward,
    FrameError,
    RaftFrame,
    Removed,
    encode_forward,
    encode_raft,
    encode_removed,
    parse_addr,
    parse_frame,
    valid_node_id,
)
from ackdb.resp.reader import RequestReader


def _read(data: bytes, byte_by_byte: bool = False) -> list[list[bytes]]:
    r = RequestReader()
    out: list[list[bytes]] = []
    if byte_by_byte:
        for i in range(len(data)):
            out.extend(r.feed(data[i : i + 1]))
    else:
        out.extend(r.feed(data))
    assert r.error is None
    return out


MSG = Message(
    type=MsgType.APPEND,
    frm="n1",
    to="n2",
    term=3,
    log_term=2,
    index=7,
    entries=(Entry(term=3, index=8, data=b"\r\n$5\r\nx"),),
    commit=6,
)


@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_round_trip_whole_and_split(byte_by_byte: bool) -> None:
    wire = encode_raft(MSG) + encode_forward(b"\x00cmd") + encode_removed("n3")
    frames = [parse_frame(a) for a in _read(wire, byte_by_byte)]
    assert frames == [
        RaftFrame(MSG),
        Forward(b"\x00cmd"),
        Removed("n3"),
    ]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        [b"PING"],
        [b"RAFT"],
        [b"RAFT", b"not msgpack at all"],
        [b"RAFT", b"\x93\x01\x02\x03"],
        [b"FWD"],
        [b"FWD", b"a", b"b"],
        [b"REMOVED"],
        [b"REMOVED", b"bad id"],
        [b"HELLO", b"n1", b"127.0.0.1:1"],  # the handshake's (peerauth), never a frame
    ],
)
def test_rejects_bad_frames(argv: list[bytes]) -> None:
    with pytest.raises(FrameError):
        parse_frame(argv)


def test_parse_addr() -> None:
    assert parse_addr("127.0.0.1:7000") == ("127.0.0.1", 7000)
    assert parse_addr("[::1]:7000") == ("::1", 7000)
    assert parse_addr("db.example:1") == ("db.example", 1)
    for bad in ("7000", ":7000", "h:", "h:0", "h:x", "h:70000"):
        with pytest.raises(ValueError):
            parse_addr(bad)


def test_node_ids() -> None:
    assert valid_node_id("n1") and valid_node_id("node-a.b_c")
    for bad in ("", "-n", "a b", "x" * 65, "n\n"):
        assert not valid_node_id(bad)
