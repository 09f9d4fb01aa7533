"""Reading AOF files: offsets, MULTI blocks, truncation told apart from corruption."""

from __future__ import annotations

import io

import pytest

from ackdb.persistence.aof import encode_command, select_command
from ackdb.persistence.aofread import AofFormatError, read_all


def _file(*cmds: list[bytes]) -> bytes:
    return select_command(0) + b"".join(encode_command(c) for c in cmds)


def _read(data: bytes):  # type: ignore[no-untyped-def]
    return read_all(io.BytesIO(data), len(data))


CMDS = [[b"SET", b"k%d" % i, b"v" * i] for i in range(50)]


def test_intact_file() -> None:
    data = _file(*CMDS)
    txs, r = _read(data)
    assert [t[0] for t in txs[1:]] == CMDS
    assert r.valid_bytes == len(data) and r.truncated_bytes == 0


def test_every_cut_inside_the_last_command_is_a_truncation() -> None:
    data = _file(*CMDS)
    last = len(encode_command(CMDS[-1]))
    for cut in range(1, last):
        txs, r = _read(data[: len(data) - cut])
        assert r.valid_bytes == len(data) - last
        assert r.truncated_bytes == last - cut
        assert len(txs) == len(CMDS)  # SELECT + all but the last


def test_zero_filled_tail_is_a_truncation() -> None:
    data = _file(*CMDS)
    txs, r = _read(data + b"\0" * 4096)
    assert r.valid_bytes == len(data) and r.truncated_bytes == 4096


def test_unfinished_multi_is_dropped_whole() -> None:
    head = _file(*CMDS[:3])
    data = head + encode_command([b"MULTI"]) + encode_command(CMDS[3]) + encode_command(CMDS[4])
    txs, r = _read(data)
    assert r.valid_bytes == len(head)
    assert [t[0] for t in txs[1:]] == CMDS[:3]


def test_multi_exec_is_one_transaction() -> None:
    data = _file(CMDS[0]) + b"".join(
        encode_command(c) for c in ([b"MULTI"], CMDS[1], CMDS[2], [b"EXEC"])
    )
    txs, r = _read(data)
    assert txs[-1] == [CMDS[1], CMDS[2]]
    assert r.truncated_bytes == 0


def test_garbage_in_the_middle_is_corruption_with_its_offset() -> None:
    head = _file(*CMDS[:10])
    data = head + b"garbage\r\n" + b"".join(encode_command(c) for c in CMDS[10:])
    with pytest.raises(AofFormatError) as e:
        _read(data)
    assert e.value.offset == len(head)


def test_damaged_length_that_swallows_later_commands_is_corruption() -> None:
    head = _file(*CMDS[:10])
    bad = encode_command(CMDS[10]).replace(b"$10\r\n", b"$99999\r\n", 1)
    data = head + bad + b"".join(encode_command(c) for c in CMDS[11:])
    with pytest.raises(AofFormatError) as e:
        _read(data)
    assert e.value.offset == len(head)


def test_non_command_reply_types_are_corruption() -> None:
    data = _file(CMDS[0]) + b"+OK\r\n" + encode_command(CMDS[1])
    with pytest.raises(AofFormatError):
        _read(data)


def test_exec_without_multi_is_corruption() -> None:
    with pytest.raises(AofFormatError, match="EXEC without MULTI"):
        _read(_file(CMDS[0]) + encode_command([b"EXEC"]))


def test_fast_path_keeps_every_command_before_a_zero_filled_tail() -> None:
    from ackdb.persistence.aofread import AofReader

    cmds = [[b"SET", b"k%d" % i, b"v"] for i in range(200)]
    data = b"".join(encode_command(c) for c in cmds) + b"\0" * 4096
    reader = AofReader(io.BytesIO(data), len(data))
    got = [argv for batch, _ in reader.batches() for argv in batch]
    assert got == cmds
    assert reader.truncated_bytes == 4096
