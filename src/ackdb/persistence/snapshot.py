"""The snapshot format: a versioned, checksummed image of every database plus metadata.

Owns: encoding the keyspace into bytes and decoding it back, with progress callbacks and
errors that name the byte offset of a fault. Never decides *when* to save or load (the
shell does) and never touches sockets. The layout is documented in docs/persistence.md:

    header   b"ACKDBSNP" + version (u32, big endian)                       12 bytes
    frames   length (u32) + crc32 of the payload (u32) + payload            repeated
    payload  one or more msgpack records:
               ["meta", {...}]           first: versions, time, replid, repl offset, keys
               ["db", index]             the records that follow belong to this database
               ["s", [k, v, k, v, ...]]  strings without a TTL (the common case, compact)
               ["k", [[k, type, value, expire_ms | nil], ...]]   every other key
               ["end", {"keys": n}]      last record of the last frame; nothing may follow

Every frame carries its own CRC, so corruption is found before a single record of that
frame is used and is reported with the frame's offset; a truncated file fails at the
frame it cuts; a file without the ``end`` record is truncated. Values: string = bytes,
hash = flat [field, value, ...], list = [item, ...], set = [member, ...], sorted set =
flat [member, score, ...], stream = ``keyspace.stream.to_plain`` (counters, nodes with
their deleted slots, groups with consumers and pending entries), leaderless record =
``keyspace.lww.to_plain`` (base version, kind and value, then its field cells).
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import msgpack

from ..keyspace import lww
from ..keyspace.stream import Stream
from ..keyspace.stream_plain import from_plain, to_plain
from ..keyspace.zset import ZSet

MAGIC = b"ACKDBSNP"
VERSION = 1
HEADER = struct.Struct(">8sI")
FRAME = struct.Struct(">II")
# A frame is closed once its payload passes this size (bytes).
FRAME_TARGET_BYTES = 1 << 20
# Largest frame a reader accepts (bytes): above every value a client may send.
FRAME_MAX_BYTES = (1 << 32) - 1
# Keys per record batch.
BATCH_KEYS = 1024
# How often the progress callback runs (keys).
PROGRESS_EVERY_KEYS = 65536

T_STRING, T_HASH, T_LIST, T_SET, T_ZSET = range(5)
T_STREAM = 5
# A leaderless record (keyspace/lww.py): its plain form.
T_LWW = 6


class SnapshotError(Exception):
    """A snapshot that cannot be loaded; ``offset`` is where the fault was found."""

    def __init__(self, msg: str, offset: int) -> None:
        super().__init__(f"{msg} (at byte offset {offset})")
        self.offset = offset


# -- encoding -----------------------------------------------------------------------------


def _encode_value(v: Any) -> tuple[int, Any]:
    cls = v.__class__
    if cls is bytes:
        return T_STRING, v
    if cls is dict:
        flat: list[bytes] = []
        for f, x in v.items():
            flat.append(f)
            flat.append(x)
        return T_HASH, flat
    if cls is deque:
        return T_LIST, list(v)
    if cls is set:
        return T_SET, list(v)
    if cls is ZSet:
        zflat: list[Any] = []
        for m, s in v:
            zflat.append(m)
            zflat.append(s)
        return T_ZSET, zflat
    if cls is Stream:
        return T_STREAM, to_plain(v)
    if cls is lww.Record:
        return T_LWW, lww.to_plain(v)
    raise TypeError(f"no snapshot encoding for {cls.__name__}")


class SnapshotWriter:
    """Writes the format to a binary file object; ``close()`` writes the end record."""

    def __init__(self, out: BinaryIO, meta: dict[str, Any]) -> None:
        self._out = out
        self._packer = msgpack.Packer(use_bin_type=True)
        self._buf: list[bytes] = []
        self._size = 0
        self.keys = 0
        self.bytes_written = 0
        self._write(HEADER.pack(MAGIC, VERSION))
        self._record(["meta", meta])

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self.bytes_written += len(data)

    def _record(self, rec: Any) -> None:
        data = self._packer.pack(rec)
        self._buf.append(data)
        self._size += len(data)
        if self._size >= FRAME_TARGET_BYTES:
            self._flush_frame()

    def _flush_frame(self) -> None:
        if not self._buf:
            return
        payload = b"".join(self._buf)
        self._buf = []
        self._size = 0
        self._write(FRAME.pack(len(payload), zlib.crc32(payload)))
        self._write(payload)

    def database(
        self,
        index: int,
        items: Iterable[tuple[bytes, Any]],
        expires: dict[bytes, int],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """All keys of one database; ``progress(keys so far)`` every few thousand keys."""
        self._record(["db", index])
        plain: list[bytes] = []
        other: list[list[Any]] = []
        next_progress = self.keys + PROGRESS_EVERY_KEYS
        for k, v in items:
            when = expires.get(k) if expires else None
            if v.__class__ is bytes and when is None:
                plain.append(k)
                plain.append(v)
                if len(plain) >= 2 * BATCH_KEYS:
                    self._record(["s", plain])
                    plain = []
            else:
                code, enc = _encode_value(v)
                other.append([k, code, enc, when])
                if len(other) >= BATCH_KEYS:
                    self._record(["k", other])
                    other = []
            self.keys += 1
            if progress is not None and self.keys >= next_progress:
                next_progress += PROGRESS_EVERY_KEYS
                progress(self.keys)
        if plain:
            self._record(["s", plain])
        if other:
            self._record(["k", other])

    def close(self) -> None:
        self._record(["end", {"keys": self.keys}])
        self._flush_frame()


# -- decoding -----------------------------------------------------------------------------


def _decode_value(code: int, enc: Any) -> Any:
    if code == T_STRING and enc.__class__ is bytes:
        return enc
    if enc.__class__ is not list or not enc:
        raise ValueError("bad value")
    if code == T_HASH:
        it = iter(enc)
        return dict(zip(it, it, strict=True))
    if code == T_LIST:
        return deque(enc)
    if code == T_SET:
        return set(enc)
    if code == T_ZSET:
        it = iter(enc)
        return ZSet((m, float(s)) for m, s in zip(it, it, strict=True))
    if code == T_STREAM:
        return from_plain(enc)
    if code == T_LWW:
        return lww.from_plain(enc)
    raise ValueError(f"unknown type {code}")


class LoadTarget:
    """Where decoded keys go; the shell's implementation fills the real databases."""

    def select(self, index: int) -> None:
        raise NotImplementedError

    def strings(self, flat: list[bytes]) -> None:
        """Plain string keys without TTL: [k, v, k, v, ...]."""
        raise NotImplementedError

    def key(self, key: bytes, value: Any, expire_ms: int | None) -> None:
        raise NotImplementedError


def frames(inp: BinaryIO, start_offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """(offset, payload) of each frame after the header, CRC checked."""
    offset = start_offset
    while True:
        head = inp.read(FRAME.size)
        if not head:
            return
        if len(head) < FRAME.size:
            raise SnapshotError("truncated snapshot: frame header cut short", offset)
        length, crc = FRAME.unpack(head)
        if length > FRAME_MAX_BYTES:
            raise SnapshotError("corrupt snapshot: frame length out of range", offset)
        payload = inp.read(length)
        if len(payload) < length:
            raise SnapshotError("truncated snapshot: frame cut short", offset)
        if zlib.crc32(payload) != crc:
            raise SnapshotError("snapshot checksum mismatch", offset)
        yield offset, payload
        offset += FRAME.size + length


def read_header(inp: BinaryIO) -> None:
    head = inp.read(HEADER.size)
    if len(head) < HEADER.size or head[:8] != MAGIC:
        raise SnapshotError("not an ackdb snapshot (bad magic)", 0)
    (version,) = struct.unpack(">I", head[8:])
    if version != VERSION:
        raise SnapshotError(
            f"snapshot format version {version} is not supported (this ackdb reads "
            f"version {VERSION})",
            8,
        )


class Loader:
    """Decodes a whole snapshot into a target (None: only verify), one frame per step.

    ``for bytes_read, keys in loader.steps(): ...`` lets the caller serve clients between
    frames and log progress; ``meta`` holds the metadata once the steps are done. Raises
    SnapshotError for anything but a complete, intact file.
    """

    def __init__(self, inp: BinaryIO, target: LoadTarget | None) -> None:
        self.inp = inp
        self.target = target
        self.meta: dict[str, Any] = {}
        self.keys = 0

    def steps(self) -> Iterator[tuple[int, int]]:
        inp = self.inp
        read_header(inp)
        meta: dict[str, Any] | None = None
        ended = False
        for offset, payload in frames(inp, HEADER.size):
            if ended:
                raise SnapshotError("data after the end record", offset)
            unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=0)
            unpacker.feed(payload)
            try:
                for rec in unpacker:
                    if ended:
                        raise SnapshotError("data after the end record", offset)
                    if meta is None:
                        if not (isinstance(rec, list) and rec[:1] == ["meta"] and len(rec) == 2):
                            raise SnapshotError("the first record is not the metadata", offset)
                        meta = dict(rec[1])
                        continue
                    self.keys, ended = _apply(rec, self.target, self.keys, offset)
            except SnapshotError:
                raise
            except Exception as e:
                raise SnapshotError(
                    f"corrupt snapshot record ({type(e).__name__}: {e})", offset
                ) from e
            yield offset + FRAME.size + len(payload), self.keys
        if not ended or meta is None:
            raise SnapshotError("truncated snapshot: no end record", inp.tell())
        self.meta = meta


def load(inp: BinaryIO, target: LoadTarget | None) -> dict[str, Any]:
    """Decode a whole snapshot at once; returns its metadata (see ``Loader``)."""
    loader = Loader(inp, target)
    for _ in loader.steps():
        pass
    return loader.meta


def _apply(rec: Any, target: LoadTarget | None, keys: int, offset: int) -> tuple[int, bool]:
    kind = rec[0]
    if kind == "s":
        flat = rec[1]
        if len(flat) % 2:
            raise ValueError("odd string batch")
        if target is not None:
            target.strings(flat)
        return keys + len(flat) // 2, False
    if kind == "k":
        for k, code, enc, when in rec[1]:
            value = _decode_value(code, enc)
            if k.__class__ is not bytes or (when is not None and when.__class__ is not int):
                raise ValueError("bad key record")
            if target is not None:
                target.key(k, value, when)
        return keys + len(rec[1]), False
    if kind == "db":
        if target is not None:
            target.select(int(rec[1]))
        return keys, False
    if kind == "end":
        if rec[1].get("keys") != keys:
            raise SnapshotError(
                f"key count mismatch: end record says {rec[1].get('keys')}, read {keys}", offset
            )
        return keys, True
    raise ValueError(f"unknown record {kind!r}")
