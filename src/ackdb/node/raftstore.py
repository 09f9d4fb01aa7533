"""RaftStore: the durable Raft state of one member -- hard state, log and snapshot on disk.

Owns: the directory given to ``open``: ``raft.wal`` (an append-only log of checksummed
records: hard states, entry batches, snapshot markers) and ``snap-<index>-<term>.snap``
files (one snapshot each, written atomically). Never decides anything about Raft: it
writes what a Ready says, in the order it says, and reads it back into a MemoryStorage.
Never uses pickle; records are msgpack inside a checksummed frame. The record format is
documented in docs/consensus.md ("Durable storage").

Use (the shell's side of the Ready rule):
    store, storage = RaftStore.open(path)           # load; a torn tail is truncated
    store.save(rd.hard_state, rd.entries, rd.snapshot)
    if rd.must_sync: store.sync()                  # fsync BEFORE sending rd.messages
    ... after RawNode.compact(): store.save_snapshot(snap)   # also drops the old log

States: open (writes append to ``raft.wal``), closed.

Crash behaviour: a crash may tear the records written since the last sync; ``open``
truncates such a tail (and logs how many bytes). A damaged record followed by an intact
one is not a torn write but corruption: ``open`` raises CorruptLogError naming the file and
offset rather than silently dropping acknowledged state. A damaged LAST record cannot be
told from a torn write and is truncated; fsync-before-send keeps that safe against
crashes, not against bit rot in the last synced record.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgpack

from ackdb.consensus import Entry, HardState, MemoryStorage, Snapshot
from ackdb.consensus.codec import (
    DecodeError,
    entry_from_wire,
    entry_to_wire,
    snapshot_from_wire,
    snapshot_to_wire,
)

WAL_NAME = "raft.wal"
WAL_MAGIC = b"ACKRWAL"
SNAP_MAGIC = b"ACKSNAP"
FORMAT_VERSION = 1
# Every record: marker (2 bytes), payload length (u32), CRC-32 of the payload (u32).
RECORD_MARKER = b"\xa7\xdb"
_HEADER = struct.Struct(">2sII")
# The largest record accepted (bytes); a longer length field is damage.
MAX_RECORD_BYTES = 256 << 20
# Entry batches are split into records of about this size (bytes).
ENTRIES_RECORD_BYTES = 4 << 20
# Checksum work spent looking for an intact record after a damaged one (bytes).
SCAN_BUDGET_BYTES = 64 << 20

REC_HARD_STATE, REC_ENTRIES, REC_SNAPSHOT = 1, 2, 3

_log = logging.getLogger("ackdb.raftstore")


class RaftStoreError(Exception):
    """The durable state cannot be read back."""


class CorruptLogError(RaftStoreError):
    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"{path}: corrupt record at offset {offset}: {reason}")
        self.path = path
        self.offset = offset


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(RECORD_MARKER, len(payload), zlib.crc32(payload)) + payload


def _pack(v: object) -> bytes:
    out = msgpack.packb(v, use_bin_type=True)
    assert isinstance(out, bytes)
    return out


def _file_header(magic: bytes) -> bytes:
    return magic + bytes([FORMAT_VERSION])


def _parse_one(buf: bytes, pos: int) -> tuple[bytes, int] | str:
    """The record at ``pos`` and the offset after it, or why there is none."""
    if len(buf) - pos < _HEADER.size:
        return "incomplete record header"
    marker, length, crc = _HEADER.unpack_from(buf, pos)
    if marker != RECORD_MARKER:
        return "bad record marker"
    if not 0 < length <= MAX_RECORD_BYTES:
        return f"bad record length {length}"
    end = pos + _HEADER.size + length
    if end > len(buf):
        return "incomplete record"
    payload = buf[pos + _HEADER.size : end]
    if zlib.crc32(payload) != crc:
        return "checksum mismatch"
    return payload, end


def _intact_record_after(buf: bytes, pos: int) -> int | None:
    """Offset of an intact record starting after ``pos`` (a sign of corruption rather than
    a torn tail), or None. Checksum work is bounded by SCAN_BUDGET_BYTES."""
    budget = SCAN_BUDGET_BYTES
    i = buf.find(RECORD_MARKER, pos + 1)
    while i != -1 and budget > 0:
        got = _parse_one(buf, i)
        if not isinstance(got, str):
            return i
        budget -= min(len(buf) - i, MAX_RECORD_BYTES)
        i = buf.find(RECORD_MARKER, i + 1)
    return i if i != -1 else None  # budget spent: cannot prove it is only a torn tail


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    """temp file, fsync, rename over ``path``, fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _snap_name(index: int, term: int) -> str:
    return f"snap-{index:020d}-{term:020d}.snap"


def write_snapshot_file(directory: Path, snap: Snapshot) -> Path:
    path = directory / _snap_name(snap.index, snap.term)
    _write_atomically(path, _file_header(SNAP_MAGIC) + frame(_pack(snapshot_to_wire(snap))))
    return path


def read_snapshot_file(path: Path) -> Snapshot:
    buf = path.read_bytes()
    head = _file_header(SNAP_MAGIC)
    if not buf.startswith(head):
        raise CorruptLogError(path, 0, "not a snapshot file of this version")
    got = _parse_one(buf, len(head))
    if isinstance(got, str):
        raise CorruptLogError(path, len(head), got)
    payload, end = got
    if end != len(buf):
        raise CorruptLogError(path, end, "trailing bytes")
    try:
        return snapshot_from_wire(msgpack.unpackb(payload, raw=False))
    except (DecodeError, ValueError, TypeError) as exc:
        raise CorruptLogError(path, len(head), f"bad snapshot: {exc}") from exc


class RaftStore:
    def __init__(self, directory: Path, fd: int, mem: MemoryStorage) -> None:
        self.dir = directory
        self._fd = fd
        self._mem = mem
        self.truncated_bytes = 0  # torn tail dropped at open
        self.syncs = 0

    # -- opening --

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str], warn: Callable[[str], None] | None = None
    ) -> tuple[RaftStore, MemoryStorage]:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for tmp in d.glob("*.tmp"):
            tmp.unlink()
        wal = d / WAL_NAME
        head = _file_header(WAL_MAGIC)
        if not wal.exists() or (
            wal.stat().st_size < len(head) and head.startswith(wal.read_bytes())
        ):
            _write_atomically(wal, head)  # new, or torn while being created
        buf = wal.read_bytes()
        if not buf.startswith(head):
            raise CorruptLogError(wal, 0, "not a Raft log of this version")
        records, end = cls._read_records(wal, buf, len(head))
        mem = MemoryStorage()
        referenced = _replay(d, wal, records, mem)
        truncated = len(buf) - end
        if truncated:
            os.truncate(wal, end)
            msg = f"{wal}: truncated a torn tail of {truncated} bytes at offset {end}"
            (warn or _log.warning)(msg)
        fd = os.open(wal, os.O_WRONLY | os.O_APPEND)
        if truncated:
            os.fsync(fd)
        store = cls(d, fd, mem)
        store.truncated_bytes = truncated
        # Every snapshot the log still names stays (a received snapshot is appended after
        # the marker a local one left at the log's head); only orphans go.
        store._remove_snapshots_but(referenced)
        return store, mem

    @staticmethod
    def _read_records(path: Path, buf: bytes, pos: int) -> tuple[list[tuple[int, bytes]], int]:
        records: list[tuple[int, bytes]] = []
        while pos < len(buf):
            got = _parse_one(buf, pos)
            if isinstance(got, str):
                later = _intact_record_after(buf, pos)
                if later is not None:
                    raise CorruptLogError(path, pos, f"{got} (an intact record follows at {later})")
                break  # a torn tail: everything from pos on is dropped
            payload, end = got
            records.append((pos, payload))
            pos = end
        return records, pos

    # -- writing --

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> None:
        """Write one Ready's durable part, in the Ready's order; not synced until sync()."""
        if snapshot is not None:
            # The snapshot file is durable before the marker that refers to it.
            write_snapshot_file(self.dir, snapshot)
        out = bytearray()
        if snapshot is not None:
            out += frame(_pack([REC_SNAPSHOT, snapshot.index, snapshot.term]))
        out += _entries_records(entries)
        if hard_state is not None:
            out += frame(
                _pack([REC_HARD_STATE, hard_state.term, hard_state.vote, hard_state.commit])
            )
        if out:
            _write_all(self._fd, bytes(out))

    def sync(self) -> None:
        """Make everything saved so far durable (fdatasync where available)."""
        sync = getattr(os, "fdatasync", os.fsync)
        sync(self._fd)
        self.syncs += 1

    def save_snapshot(self, snap: Snapshot) -> None:
        """A snapshot the application took (after RawNode.compact): write it atomically,
        then rewrite the log without the entries it covers, then drop older snapshots."""
        self.sync()
        write_snapshot_file(self.dir, snap)
        out = bytearray(_file_header(WAL_MAGIC))
        out += frame(_pack([REC_SNAPSHOT, snap.index, snap.term]))
        out += _entries_records([e for e in self._mem.all_entries() if e.index > snap.index])
        hs = self._mem.hard_state
        out += frame(_pack([REC_HARD_STATE, hs.term, hs.vote, hs.commit]))
        wal = self.dir / WAL_NAME
        _write_atomically(wal, bytes(out))
        os.close(self._fd)
        self._fd = os.open(wal, os.O_WRONLY | os.O_APPEND)
        self._remove_snapshots_but({_snap_name(snap.index, snap.term)})

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _remove_snapshots_but(self, keep: set[str]) -> None:
        for p in self.dir.glob("snap-*.snap"):
            if p.name not in keep:
                p.unlink()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _entries_records(entries: Sequence[Entry]) -> bytes:
    out = bytearray()
    batch: list[Any] = []
    size = 0
    for e in entries:
        batch.append(entry_to_wire(e))
        size += e.size()
        if size >= ENTRIES_RECORD_BYTES:
            out += frame(_pack([REC_ENTRIES, batch]))
            batch, size = [], 0
    if batch:
        out += frame(_pack([REC_ENTRIES, batch]))
    return bytes(out)


def _replay(d: Path, wal: Path, records: list[tuple[int, bytes]], mem: MemoryStorage) -> set[str]:
    """Apply the records to ``mem`` in order; returns the names of the snapshot files the
    log refers to (every one must stay: the next open reads them all again)."""
    referenced: set[str] = set()
    for offset, payload in records:
        try:
            rec = msgpack.unpackb(payload, raw=False)
            kind = rec[0]
            if kind == REC_HARD_STATE:
                _, term, vote, commit = rec
                mem.set_hard_state(HardState(term=term, vote=vote, commit=commit))
            elif kind == REC_ENTRIES:
                ents = [entry_from_wire(v) for v in rec[1]]
                if ents and ents[0].index > mem.last_index() + 1:
                    raise CorruptLogError(wal, offset, f"gap before entry {ents[0].index}")
                mem.append(ents)
            elif kind == REC_SNAPSHOT:
                _, index, term = rec
                name = _snap_name(index, term)
                snap = read_snapshot_file(d / name)
                if snap.index > mem.snapshot().index:
                    mem.apply_snapshot(snap)
                referenced.add(name)
            else:
                raise CorruptLogError(wal, offset, f"unknown record type {kind!r}")
        except CorruptLogError:
            raise
        except FileNotFoundError as exc:
            raise CorruptLogError(wal, offset, f"snapshot file missing: {exc.filename}") from exc
        except (ValueError, TypeError, IndexError, KeyError, AssertionError) as exc:
            raise CorruptLogError(wal, offset, f"undecodable record: {exc!r}") from exc
    return referenced
