"""Receiving a full sync's snapshot: ``$<len>\\r\\n<bytes>`` or ``$EOF:<40-byte mark>\\r\\n
<bytes><mark>`` (the form a diskless primary sends to replicas with ``capa eof``).

Owns: the header (bare ``\\n`` keep-alives skipped, a ``-`` line is the primary giving up),
the payload as ``SnapshotChunk`` actions with progress counters, and detecting its end --
by length, or by finding the mark even when it is split across reads. Never touches
sockets or files; never interprets the payload (the shell's snapshot format). Bytes after
the payload stay in the ``LinkReader`` for the stream.

States: header -> payload -> done.
"""

from __future__ import annotations

from .actions import Action, SnapshotBegin, SnapshotChunk, SnapshotEnd
from .util import parse_ll
from .wire import LinkProtocolError, LinkReader

EOF_MARK_BYTES = 40


class PrimaryAborted(Exception):
    """The primary sent an error line instead of the snapshot."""


class SnapshotTransfer:
    """One snapshot arriving for history ``replid`` at ``offset``."""

    def __init__(self, replid: str, offset: int) -> None:
        self.replid = replid
        self.offset = offset
        self.started = False
        self.done = False
        self.total_bytes = 0  # -1 for the EOF-marked form (size unknown)
        self.read_bytes = 0
        self._left = 0  # -1: EOF-marked
        self._mark = b""

    def step(self, reader: LinkReader) -> list[Action]:
        """Consume what can be consumed now; raises LinkProtocolError, PrimaryAborted."""
        if not self.started:
            return self._header(reader)
        if self._left >= 0:
            chunk = reader.read_raw(self._left)
            self._left -= len(chunk)
            finished = self._left == 0
        else:
            at = reader.find(self._mark)
            if at >= 0:
                chunk = reader.read_raw(at)
                reader.read_raw(EOF_MARK_BYTES)
                finished = True
            else:
                # Keep the last bytes back: they may be the start of the mark.
                chunk = reader.read_raw(max(0, reader.buffered - EOF_MARK_BYTES + 1))
                finished = False
        actions: list[Action] = []
        if chunk:
            self.read_bytes += len(chunk)
            actions.append(SnapshotChunk(chunk))
        if finished:
            self.done = True
            actions.append(SnapshotEnd())
        return actions

    def _header(self, reader: LinkReader) -> list[Action]:
        line = reader.read_line()
        if line is None or not line:
            return []  # keep-alive newlines may precede the payload
        if line.startswith(b"-"):
            raise PrimaryAborted(line.decode("latin-1"))
        if not line.startswith(b"$"):
            raise LinkProtocolError(
                f"bad protocol from PRIMARY, the first byte is not '$': {line!r}"
            )
        if line.startswith(b"$EOF:") and len(line) == 5 + EOF_MARK_BYTES:
            self._mark, self._left, self.total_bytes = line[5:], -1, -1
        else:
            size = parse_ll(line[1:])
            if size is None or size < 0:
                raise LinkProtocolError(f"bad snapshot length: {line!r}")
            self._left = self.total_bytes = size
        self.started = True
        actions: list[Action] = [SnapshotBegin(self.replid, self.offset, self.total_bytes)]
        if self._left == 0:
            self.done = True
            actions.append(SnapshotEnd())
        return actions

    def info_fields(self, idle_s: int) -> list[tuple[str, str]]:
        """INFO's transfer lines while syncing."""
        total = self.total_bytes
        left = total - self.read_bytes if total >= 0 else -1
        perc = self.read_bytes * 100 / total if total > 0 else 0.0
        return [
            ("master_sync_total_bytes", str(total)),
            ("master_sync_read_bytes", str(self.read_bytes)),
            ("master_sync_left_bytes", str(left)),
            ("master_sync_perc", f"{perc:.2f}"),
            ("master_sync_last_io_seconds_ago", str(idle_s)),
        ]
