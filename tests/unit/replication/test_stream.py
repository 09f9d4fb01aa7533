"""Stream encoding: the bytes each effect adds, SELECT only on a db change, constants."""

from __future__ import annotations

from ackdb.replication.stream import GETACK, PING, StreamEncoder, select_command


def test_constants_are_the_notes_bytes() -> None:
    # notes: keep-alive "*1\r\n$4\r\nping\r\n"; REPLCONF GETACK * is 37 bytes.
    assert PING == b"*1\r\n$4\r\nping\r\n"
    assert len(GETACK) == 37 and GETACK.startswith(b"*3\r\n$8\r\nREPLCONF\r\n")


def test_select_only_when_the_db_changes() -> None:
    e = StreamEncoder()
    first = e.encode(0, [b"SET", b"k", b"v"])
    assert first == b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
    assert e.encode(0, [b"DEL", b"k"]) == b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"
    assert e.encode(12, [b"DEL", b"k"]).startswith(b"*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n")


def test_force_select_after_a_full_sync() -> None:
    e = StreamEncoder()
    e.encode(3, [b"DEL", b"a"])
    e.force_select()
    assert e.encode(3, [b"DEL", b"a"]).startswith(select_command(3))


def test_large_db_numbers_and_binary_arguments() -> None:
    assert select_command(123) == b"*2\r\n$6\r\nSELECT\r\n$3\r\n123\r\n"
    e = StreamEncoder()
    e.selected_db = 0
    assert e.encode(0, [b"SET", b"\r\n", b""]) == b"*3\r\n$3\r\nSET\r\n$2\r\n\r\n\r\n$0\r\n\r\n"
