"""RaftStore: durable hard state, log and snapshots; torn tails and corruption."""

from __future__ import annotations

import os
import random
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.consensus import ConfState, Entry, HardState, MemoryStorage, Snapshot
from ackdb.node import raftstore
from ackdb.node.raftstore import WAL_NAME, CorruptLogError, RaftStore


def ents(start: int, *terms: int) -> list[Entry]:
    return [Entry(term=t, index=start + i, data=b"e%d" % (start + i)) for i, t in enumerate(terms)]


def state(mem: MemoryStorage) -> tuple[object, ...]:
    return (mem.hard_state, mem.snapshot(), mem.all_entries())


def reopen(d: Path) -> tuple[RaftStore, MemoryStorage]:
    return RaftStore.open(d, warn=lambda _msg: None)


def test_round_trip(tmp_path: Path) -> None:
    store, mem = RaftStore.open(tmp_path)
    assert mem.last_index() == 0 and mem.hard_state == HardState()
    store.save(HardState(term=2, vote="n1", commit=0), ents(1, 1, 2), None)
    store.save(HardState(term=2, vote="n1", commit=2), [], None)
    store.sync()
    store.close()
    _, mem2 = reopen(tmp_path)
    assert mem2.hard_state == HardState(term=2, vote="n1", commit=2)
    assert mem2.all_entries() == ents(1, 1, 2)


def test_conflicting_entries_truncate_the_log_on_replay(tmp_path: Path) -> None:
    # Raft §5.3: appending at an existing index replaces that entry and all after it.
    store, _ = RaftStore.open(tmp_path)
    store.save(None, ents(1, 1, 1, 1, 1, 1), None)
    store.save(None, ents(3, 2, 2), None)
    store.close()
    _, mem = reopen(tmp_path)
    assert [(e.index, e.term) for e in mem.all_entries()] == [(1, 1), (2, 1), (3, 2), (4, 2)]


def _wal_with_three_records(d: Path) -> tuple[int, int, int]:
    """Three records; returns the file sizes after each."""
    store, _ = RaftStore.open(d)
    sizes = []
    for i in range(3):
        store.save(HardState(term=i + 1, vote=None, commit=0), ents(i + 1, i + 1), None)
        sizes.append((d / WAL_NAME).stat().st_size)
    store.close()
    return sizes[0], sizes[1], sizes[2]


@pytest.mark.parametrize("cut", [1, 5, 11, 20])
def test_torn_tail_is_truncated_and_logged(tmp_path: Path, cut: int) -> None:
    _, _, full = _wal_with_three_records(tmp_path)
    os.truncate(tmp_path / WAL_NAME, full - cut)
    lines: list[str] = []
    store, mem = RaftStore.open(tmp_path, warn=lines.append)
    # The last save wrote an entries record then a hard-state record; a cut inside the
    # hard-state record keeps the entries, a deeper cut loses both.
    hs_record = len(raftstore.frame(msgpack.packb([1, 3, None, 0])))
    if cut <= hs_record:
        assert (mem.last_index(), mem.hard_state.term) == (3, 2)
    else:
        assert (mem.last_index(), mem.hard_state.term) == (2, 2)
    assert store.truncated_bytes > 0
    assert len(lines) == 1 and f"{store.truncated_bytes} bytes" in lines[0]
    assert (tmp_path / WAL_NAME).stat().st_size == full - cut - store.truncated_bytes
    store.close()
    again, mem2 = reopen(tmp_path)  # the repair is durable and idempotent
    assert again.truncated_bytes == 0 and state(mem2) == state(mem)


RANDOM_TAIL = random.Random(7).randbytes(3000).replace(b"\xa7\xdb", b"\xa7\x00")


@pytest.mark.parametrize("tail", [b"\x00" * 4096, b"\xa7\xdb\x00\x00\x00\x05junk", RANDOM_TAIL])
def test_garbage_tail_is_truncated(tmp_path: Path, tail: bytes) -> None:
    _wal_with_three_records(tmp_path)
    with open(tmp_path / WAL_NAME, "ab") as f:
        f.write(tail)
    store, mem = reopen(tmp_path)
    assert store.truncated_bytes == len(tail)
    assert mem.last_index() == 3 and mem.hard_state.term == 3


def test_bit_flip_before_the_tail_is_an_error_naming_file_and_offset(tmp_path: Path) -> None:
    first, _, _ = _wal_with_three_records(tmp_path)
    wal = tmp_path / WAL_NAME
    buf = bytearray(wal.read_bytes())
    buf[first + 14] ^= 0x10  # inside the second write's first record
    wal.write_bytes(bytes(buf))
    with pytest.raises(CorruptLogError) as exc:
        reopen(tmp_path)
    assert str(wal) in str(exc.value)
    assert exc.value.offset == first
    assert "checksum" in str(exc.value)


def test_bit_flip_in_the_last_record_looks_like_a_torn_tail(tmp_path: Path) -> None:
    # Documented limit: the last record cannot be told apart from a torn write.
    _, second, full = _wal_with_three_records(tmp_path)
    wal = tmp_path / WAL_NAME
    buf = bytearray(wal.read_bytes())
    buf[full - 2] ^= 0x01
    wal.write_bytes(bytes(buf))
    store, mem = reopen(tmp_path)
    assert store.truncated_bytes > 0 and mem.last_index() == 3 and mem.hard_state.term == 2


def test_not_a_raft_log_is_an_error(tmp_path: Path) -> None:
    (tmp_path / WAL_NAME).write_bytes(b"hello world, not a log")
    with pytest.raises(CorruptLogError):
        reopen(tmp_path)
    (tmp_path / WAL_NAME).write_bytes(b"ACKRWAL\x09")  # a future format version
    with pytest.raises(CorruptLogError):
        reopen(tmp_path)


def test_torn_header_of_a_new_log_is_recreated(tmp_path: Path) -> None:
    (tmp_path / WAL_NAME).write_bytes(b"ACKR")
    store, mem = reopen(tmp_path)
    assert mem.last_index() == 0
    store.save(HardState(term=1), [], None)
    store.close()
    assert reopen(tmp_path)[1].hard_state.term == 1


SNAP = Snapshot(index=5, term=3, conf=ConfState(("n1", "n2")), data=b"state")


def test_installed_snapshot_replaces_the_log(tmp_path: Path) -> None:
    store, _ = RaftStore.open(tmp_path)
    store.save(HardState(term=3), ents(1, 1, 1, 2), None)
    store.save(HardState(term=3, commit=5), ents(6, 3), SNAP)
    store.sync()
    store.close()
    _, mem = reopen(tmp_path)
    assert mem.snapshot() == SNAP
    assert [e.index for e in mem.all_entries()] == [6]
    assert mem.hard_state.commit == 5


def test_save_snapshot_compacts_the_log(tmp_path: Path) -> None:
    store, mem = RaftStore.open(tmp_path)
    for i in range(1, 9):
        e = ents(i, 1)
        store.save(HardState(term=1, commit=i), e, None)
        mem.append(e)
        mem.set_hard_state(HardState(term=1, commit=i))
    size_before = (tmp_path / WAL_NAME).stat().st_size
    snap = mem.create_snapshot(6, ConfState(("n1",)), b"six")
    mem.compact(6)
    store.save_snapshot(snap)
    assert (tmp_path / WAL_NAME).stat().st_size < size_before
    store.save(HardState(term=1, commit=9), ents(9, 1), None)
    store.close()
    _, mem2 = reopen(tmp_path)
    assert mem2.snapshot() == snap
    assert [e.index for e in mem2.all_entries()] == [7, 8, 9]
    assert mem2.hard_state.commit == 9
    # A later snapshot replaces the older file.
    store2, mem3 = reopen(tmp_path)
    snap2 = mem3.create_snapshot(8, ConfState(("n1",)), b"eight")
    mem3.compact(8)
    store2.save_snapshot(snap2)
    store2.close()
    assert sorted(p.name for p in tmp_path.glob("snap-*")) == [
        "snap-00000000000000000008-00000000000000000001.snap"
    ]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_received_snapshot_after_a_local_one_survives_two_restarts(tmp_path: Path) -> None:
    """Found by the guarantees harness (a member that could not start after a SIGKILL):
    a local snapshot rewrites the log with its marker first; a snapshot received later is
    appended as a second marker. Opening the store kept only the last snapshot's file, so
    the next open found the first marker's file gone ("snapshot file missing")."""
    store, mem = RaftStore.open(tmp_path)
    for i in range(1, 7):
        e = ents(i, 1)
        store.save(HardState(term=1, commit=i), e, None)
        mem.append(e)
        mem.set_hard_state(HardState(term=1, commit=i))
    local = mem.create_snapshot(4, ConfState(("n1",)), b"four")
    mem.compact(4)
    store.save_snapshot(local)
    received = Snapshot(index=20, term=2, conf=ConfState(("n1",)), data=b"twenty")
    store.save(HardState(term=2, commit=20), [], received)
    store.sync()
    store.close()
    for _ in range(3):
        store2, mem2 = reopen(tmp_path)
        assert mem2.snapshot() == received and mem2.hard_state.commit == 20
        store2.close()


def test_orphan_snapshot_and_temp_files_are_removed(tmp_path: Path) -> None:
    # A crash after writing a snapshot file but before its marker: the log never
    # referred to it, so it is dropped (nothing depending on it was sent).
    store, _ = RaftStore.open(tmp_path)
    store.save(HardState(term=1), ents(1, 1), None)
    store.close()
    raftstore.write_snapshot_file(tmp_path, SNAP)
    (tmp_path / "raft.wal.tmp").write_bytes(b"half")
    _, mem = reopen(tmp_path)
    assert mem.snapshot().index == 0 and mem.last_index() == 1
    assert not list(tmp_path.glob("snap-*")) and not list(tmp_path.glob("*.tmp"))


def test_missing_or_corrupt_snapshot_file_is_an_error(tmp_path: Path) -> None:
    store, _ = RaftStore.open(tmp_path)
    store.save(None, [], SNAP)
    store.close()
    (snap_file,) = tmp_path.glob("snap-*")
    data = bytearray(snap_file.read_bytes())
    data[-1] ^= 0xFF
    snap_file.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as exc:
        reopen(tmp_path)
    assert snap_file.name in str(exc.value)
    snap_file.unlink()
    with pytest.raises(CorruptLogError) as exc2:
        reopen(tmp_path)
    assert "missing" in str(exc2.value)


def test_sync_is_separate_from_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append(fd))
    store, _ = RaftStore.open(tmp_path)
    store.save(HardState(term=1), ents(1, 1), None)
    assert calls == []
    store.sync()
    assert len(calls) == 1 and store.syncs == 1
    store.close()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.integers(0, 3), st.booleans()), min_size=1, max_size=8
    ),
    st.floats(0, 1),
)
def test_any_truncation_recovers_a_prefix_of_the_writes(
    tmp_path_factory: pytest.TempPathFactory, writes: list[tuple[int, int, bool]], cut: float
) -> None:
    # Crash model: the file keeps some prefix of its bytes. The recovered state must equal
    # the state after some prefix of the saves (never a mix, never an error).
    d = tmp_path_factory.mktemp("wal")
    store, _ = RaftStore.open(d)
    model = MemoryStorage()
    states = [state(model)]  # the state after each record written
    term = 1
    for start, n, with_hs in writes:
        start = min(start, model.last_index() + 1)
        new = ents(start, *([term] * n))
        hs = HardState(term=term, commit=0) if with_hs else None
        store.save(hs, new, None)
        if new:
            model.append(new)
            states.append(state(model))
        if hs is not None:
            model.set_hard_state(hs)
            states.append(state(model))
        term += 1
    store.close()
    wal = d / WAL_NAME
    size = wal.stat().st_size
    os.truncate(wal, 8 + int((size - 8) * cut))
    _, mem = reopen(d)
    assert state(mem) in states
