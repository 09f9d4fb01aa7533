"""The replication backlog: the most recent bytes of the replication stream.

Owns: a bounded window of the stream, addressed by byte-exact replication offsets, so a
replica that lost its link can be sent exactly what it missed (partial resync). Never
touches sockets, clocks or randomness; never decides whether a resync is partial (that is
``psync.decide``).

Offsets follow Redis: the stream's bytes are numbered from 1; ``first_byte_offset`` is the
offset of the oldest byte held, ``histlen`` how many bytes are held, so the next byte
appended gets offset ``end_offset == first_byte_offset + histlen`` (one past the newest).
An empty backlog created when the stream stands at offset O starts with
``first_byte_offset == O + 1`` and ``histlen == 0``.

Storage: sealed chunks of at most ``CHUNK_BYTES`` in a deque plus one open ``bytearray``
being filled, so many small appends cost O(1) amortised and little per-append memory; the
window is trimmed to exactly ``size_bytes`` after every append (whole chunks popped, the
first chunk skipped into by ``_skip``), so memory stays below ``size_bytes + CHUNK_BYTES``.
Redis 7's block list may hold slightly more than the configured size; ackdb holds exactly
the configured window, which makes ``histlen`` a pure function of the bytes appended.
"""

from __future__ import annotations

from collections import deque

# Redis: CONFIG_REPL_BACKLOG_MIN_SIZE, the smallest backlog accepted (bytes).
BACKLOG_MIN_BYTES = 16 * 1024
# Redis: repl-backlog-size default (bytes).
BACKLOG_DEFAULT_BYTES = 1024 * 1024
# Appends are packed into chunks of this size (bytes); bigger appends stay whole.
CHUNK_BYTES = 16 * 1024


class Backlog:
    """A bounded, offset-addressed window of the replication stream."""

    __slots__ = ("_size", "_chunks", "_open", "_skip", "_held", "first_byte_offset")

    def __init__(self, size_bytes: int, start_offset: int) -> None:
        assert start_offset >= 1, "stream offsets are numbered from 1"
        self._size = max(size_bytes, BACKLOG_MIN_BYTES)
        self._chunks: deque[bytes] = deque()
        self._open = bytearray()
        # Bytes of the first stored chunk (sealed or open) that fell out of the window.
        self._skip = 0
        # Bytes stored in chunks, counting the skipped prefix.
        self._held = 0
        self.first_byte_offset = start_offset

    @property
    def size_bytes(self) -> int:
        return self._size

    @property
    def histlen(self) -> int:
        return self._held - self._skip

    @property
    def held_bytes(self) -> int:
        """Stream bytes kept in memory: the window plus the already-skipped start of its
        oldest chunk, freed with that chunk (INFO mem_replication_backlog)."""
        return self._held

    @property
    def end_offset(self) -> int:
        """Offset the next appended byte will get (one past the newest byte held)."""
        return self.first_byte_offset + self.histlen

    def contains(self, offset: int) -> bool:
        """True when a replica asking to continue at ``offset`` can be served from here.

        Asking for exactly the next byte (``end_offset``) is allowed: nothing is sent.
        """
        return self.first_byte_offset <= offset <= self.end_offset

    def append(self, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        if not n:
            return
        if n >= CHUNK_BYTES:
            self._seal()
            self._chunks.append(bytes(data))
        else:
            if len(self._open) + n > CHUNK_BYTES:
                self._seal()
            self._open += data
        self._held += n
        if self._held - self._skip > self._size:  # histlen past the window (inlined)
            self._trim()

    def resize(self, size_bytes: int) -> None:
        """Change the window size; shrinking drops the oldest bytes, growing keeps all."""
        self._size = max(size_bytes, BACKLOG_MIN_BYTES)
        self._trim()

    def read_from(self, offset: int) -> bytes:
        """The bytes from ``offset`` up to the newest byte (empty at ``end_offset``)."""
        assert self.contains(offset), (offset, self.first_byte_offset, self.end_offset)
        skip = self._skip + (offset - self.first_byte_offset)
        parts: list[bytes | bytearray] = []
        for chunk in self._stored():
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            parts.append(chunk[skip:] if skip else chunk)
            skip = 0
        out = b"".join(parts)
        assert len(out) == self.end_offset - offset
        return out

    def _stored(self) -> list[bytes | bytearray]:
        stored: list[bytes | bytearray] = list(self._chunks)
        if self._open:
            stored.append(self._open)
        return stored

    def _seal(self) -> None:
        if self._open:
            self._chunks.append(bytes(self._open))
            self._open = bytearray()

    def _trim(self) -> None:
        excess = self.histlen - self._size
        if excess <= 0:
            return
        self.first_byte_offset += excess
        self._skip += excess
        while self._chunks and self._skip >= len(self._chunks[0]):
            dropped = len(self._chunks.popleft())
            self._skip -= dropped
            self._held -= dropped
        if not self._chunks and self._skip and self._skip >= len(self._open) // 2:
            # The open chunk is the only one left and mostly outside the window.
            del self._open[: self._skip]
            self._held -= self._skip
            self._skip = 0
        assert 0 <= self._skip and self.histlen <= self._size
