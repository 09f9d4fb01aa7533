"""The message codec: round trips, and DecodeError (never another exception) on garbage."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.consensus import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    DecodeError,
    Entry,
    EntryKind,
    Message,
    MsgType,
    Snapshot,
    decode_conf_entry,
    decode_message,
    encode_conf_entry,
    encode_message,
)

node_ids = st.text(min_size=1, max_size=8)
u63 = st.integers(min_value=0, max_value=(1 << 63) - 1)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    index = draw(st.integers(min_value=0, max_value=1 << 40))
    n = draw(st.integers(min_value=0, max_value=4))
    ents = tuple(
        Entry(
            term=draw(u63),
            index=index + 1 + i,
            kind=draw(st.sampled_from(EntryKind)),
            data=draw(st.binary(max_size=20)),
        )
        for i in range(n)
    )
    snap = draw(
        st.none()
        | st.builds(
            Snapshot,
            index=u63,
            term=u63,
            conf=st.builds(
                ConfState, voters=st.lists(node_ids, unique=True).map(lambda v: tuple(sorted(v)))
            ),
            data=st.binary(max_size=20),
        )
    )
    return Message(
        type=draw(st.sampled_from(MsgType)),
        frm=draw(node_ids),
        to=draw(node_ids),
        term=draw(u63),
        log_term=draw(u63),
        index=index,
        entries=ents,
        commit=draw(u63),
        reject=draw(st.booleans()),
        reject_hint=draw(u63),
        snapshot=snap,
        context=draw(st.binary(max_size=16)),
    )


@given(messages())
def test_round_trip(m: Message) -> None:
    assert decode_message(encode_message(m)) == m


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_decode_error_only(data: bytes) -> None:
    try:
        decode_message(data)
    except DecodeError:
        pass


@given(messages(), st.data())
def test_truncated_and_flipped_messages_never_crash(m: Message, data: st.DataObject) -> None:
    raw = encode_message(m)
    cut = raw[: data.draw(st.integers(min_value=0, max_value=len(raw) - 1))]
    with pytest.raises(DecodeError):
        decode_message(cut)
    pos = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    flipped = raw[:pos] + bytes([raw[pos] ^ (1 << data.draw(st.integers(0, 7)))]) + raw[pos + 1 :]
    try:
        decode_message(flipped)
    except DecodeError:
        pass


def _pack(v: object) -> bytes:
    out = msgpack.packb(v, use_bin_type=True)
    assert isinstance(out, bytes)
    return out


GOOD = [1, 1, "a", "b", 1, 0, 0, [], 0, False, 0, None, b""]


@pytest.mark.parametrize(
    ("pos", "value"),
    [
        (0, 2),  # unknown version
        (1, 99),  # unknown type
        (2, ""),  # empty sender
        (3, 5),  # recipient not a string
        (4, -1),  # negative term
        (4, 1 << 63),  # term out of range
        (6, 1.5),  # float index
        (7, [[1, 2, 0, b""], [1, 9, 0, b""]]),  # entries not consecutive
        (7, [[1, 1, 7, b""]]),  # unknown entry kind
        (7, [[1, 1, 0, "text"]]),  # entry data not bytes
        (9, 1),  # reject not a bool
        (11, [1, 1, ["b", "a"], b""]),  # voters not sorted
        (12, "ctx"),  # context not bytes
    ],
)
def test_malformed_fields_are_rejected(pos: int, value: object) -> None:
    bad = list(GOOD)
    bad[pos] = value
    assert decode_message(_pack(GOOD)).frm == "a"
    with pytest.raises(DecodeError):
        decode_message(_pack(bad))


def test_size_bounds() -> None:
    m = Message(
        type=MsgType.APPEND,
        frm="a",
        to="b",
        term=1,
        entries=(Entry(term=1, index=1, data=b"x" * 1000),),
    )
    raw = encode_message(m)
    with pytest.raises(DecodeError):
        decode_message(raw, max_bytes=100)
    with pytest.raises(DecodeError):
        decode_message(b"\x91" * 100_000)  # deeply nested arrays
    with pytest.raises(DecodeError):
        decode_message(_pack({"a": 1}))


def test_conf_entry_round_trip_and_garbage() -> None:
    cc = ConfChange(ConfChangeKind.REMOVE_NODE, "n2", b"addr")
    conf = ConfState(("n1", "n3"))
    assert decode_conf_entry(encode_conf_entry(cc, conf)) == (cc, conf)
    assert decode_conf_entry(encode_conf_entry(None, conf)) == (None, conf)
    for garbage in (b"", b"\xc1", _pack([1, [5, "x", b""], []]), _pack([2, None, []])):
        with pytest.raises(DecodeError):
            decode_conf_entry(garbage)
