"""Replication ids, the replication offset and the backlog of one node.

Owns: ``replid`` / ``replid2`` / ``second_repl_offset`` (the PSYNC2 history), the byte
offset of the stream (``master_repl_offset``: on a primary the bytes it produced, on a
replica the bytes it processed from its primary) and the optional ``Backlog``. Never
touches sockets, clocks or module-level randomness: ids come from the injected
``random.Random``, time from ``now_ms`` arguments.

Transitions (Redis replication.c, same names):
- ``change_replid``: a fresh random id (a new history begins).
- ``shift_replid``: promotion, or a replica told ``+CONTINUE <newid>``: the current id
  becomes ``replid2``, valid up to ``second_repl_offset = master_repl_offset + 1``.
- ``adopt_primary_history``: after a full sync the replica takes the primary's id and
  offset, forgets ``replid2`` and starts an empty backlog.
- ``maybe_free_backlog``: a primary without replicas for ``backlog_ttl_ms`` frees the
  backlog and takes a new id, so nobody can PSYNC into a history it no longer holds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .backlog import BACKLOG_DEFAULT_BYTES, Backlog

NULL_REPLID = "0" * 40
# Redis: repl-backlog-ttl default (3600 s), in ms.
BACKLOG_TTL_DEFAULT_MS = 3600 * 1000


def new_replid(rng: random.Random) -> str:
    """A fresh 40-hex-digit replication id."""
    return "%040x" % rng.getrandbits(160)


def is_replid(s: str) -> bool:
    return len(s) == 40 and all(c in "0123456789abcdef" for c in s)


@dataclass(frozen=True, slots=True)
class SavedHistory:
    """What a node persists with its data to resume replication after a restart: the
    history id, the offset its data reflects, and the db the stream had selected there
    (Redis RDB aux fields repl-id, repl-offset, repl-stream-db)."""

    replid: str
    offset: int
    stream_db: int = 0


class ReplicationState:
    """The replication history of one node: ids, offset, backlog."""

    def __init__(
        self,
        rng: random.Random,
        backlog_bytes_max: int = BACKLOG_DEFAULT_BYTES,
        backlog_ttl_ms: int = BACKLOG_TTL_DEFAULT_MS,
    ) -> None:
        self._rng = rng
        self.replid = new_replid(rng)
        self.replid2 = NULL_REPLID
        self.second_repl_offset = -1
        self.master_repl_offset = 0
        # ackdb: our data is known to belong to this history -- false after a start
        # with data but without a saved history (the shell knows whether it loaded
        # any), until a primary accepts our PSYNC (partial or full).
        # ACKDB.DIVERGED saves the whole dataset of a node whose history is unknown.
        self.history_known = False
        self.backlog: Backlog | None = None
        self.backlog_bytes_max = backlog_bytes_max
        # Redis: repl-backlog-ttl; 0 means never free the backlog.
        self.backlog_ttl_ms = backlog_ttl_ms
        self._no_replicas_since_ms: int | None = None
        # The run of keep-alive bytes (PING, REPLCONF GETACK) that ends the stream, as
        # (replid, first offset, end offset); ``write_offset`` leaves it out.
        self._keepalive = (NULL_REPLID, 0, -1)

    # -- ids --------------------------------------------------------------------------

    def change_replid(self) -> None:
        self.replid = new_replid(self._rng)

    def clear_replid2(self) -> None:
        self.replid2 = NULL_REPLID
        self.second_repl_offset = -1

    def shift_replid(self, new_id: str | None = None) -> None:
        """Keep the current history reachable as replid2 and start a new id.

        Redis shiftReplicationId: ``second_repl_offset`` is the first byte the *new*
        history may not share with the old one, so a replica of the old history asking
        for any offset up to it can continue partially.
        """
        self.replid2 = self.replid
        self.second_repl_offset = self.master_repl_offset + 1
        self.replid = new_replid(self._rng) if new_id is None else new_id
        assert self.replid != self.replid2

    def restore_as_primary(self, saved: SavedHistory) -> None:
        """At start-up as a primary, with the history persisted with our data.

        Redis (loadDataFromDisk): the saved id becomes replid2, valid up to the saved
        offset + 1, and a new id starts; an empty backlog lets replicas that stopped
        exactly where we did continue. Keeping the saved id instead would be unsafe: a
        replica that received bytes we lost would later be served different bytes at
        the same offsets.
        """
        assert is_replid(saved.replid) and saved.offset >= 0
        self.history_known = True
        self.master_repl_offset = saved.offset
        self.replid2 = saved.replid
        self.second_repl_offset = saved.offset + 1
        if self.replid == saved.replid:
            self.change_replid()
        self.backlog = Backlog(self.backlog_bytes_max, saved.offset + 1)

    def restore_as_replica(self, saved: SavedHistory) -> None:
        """At start-up as a replica: we follow the saved history and ask to continue it."""
        assert is_replid(saved.replid) and saved.offset >= 0
        self.history_known = True
        self.replid = saved.replid
        self.master_repl_offset = saved.offset
        self.clear_replid2()
        self.backlog = None

    def adopt_primary_history(self, replid: str, offset: int) -> None:
        """A full sync finished loading: our data is the primary's at ``offset``."""
        self.history_known = True
        self.replid = replid
        self.master_repl_offset = offset
        self.clear_replid2()
        self.backlog = Backlog(self.backlog_bytes_max, offset + 1)

    # -- stream -----------------------------------------------------------------------

    def append(self, data: bytes | bytearray | memoryview) -> int:
        """Count ``data`` into the stream (and the backlog when there is one)."""
        self.master_repl_offset += len(data)
        if self.backlog is not None:
            # On every write: the backlog's end_offset == offset + 1 (test_backlog.py).
            self.backlog.append(data)
        return self.master_repl_offset

    def keepalive_appended(self, start: int) -> None:
        """Bytes that carry no write (a PING, a REPLCONF GETACK) were just appended from
        offset ``start``: they extend the run of such bytes ending the stream, or begin
        one. Writes are not reported (none of their cost is added): a write moves the
        offset past the run's end, which ends the run."""
        replid, first, end = self._keepalive
        if replid != self.replid or end != start:
            first = start
        self._keepalive = (self.replid, first, self.master_repl_offset)

    @property
    def write_offset(self) -> int:
        """The offset after the stream's last byte that is not a keep-alive: what a
        client's last write offset (``woff``) could be, as PING and GETACK are never
        anybody's write. ACKDB.SYNCWOFF takes it (docs/proxy.md): a target ending in a
        keep-alive would make a WAIT wait for bytes no write needs -- replicas never
        acknowledge a GETACK in its own reply -- and, under ``appendfsync always``,
        compare against an AOF mark that keep-alives do not move. When the id changed
        since the run (a new history), the plain offset (never too low)."""
        replid, first, end = self._keepalive
        offset = self.master_repl_offset
        return first if end == offset and replid == self.replid else offset

    # -- backlog ----------------------------------------------------------------------

    def ensure_backlog(self, new_history: bool) -> bool:
        """Create the backlog when missing; True when it was created.

        A primary creating it for its first replica takes a fresh id (Redis syncCommand:
        "when we create the backlog from scratch, we always use a new replication ID"),
        because bytes counted while there was no backlog cannot be served to anyone.
        """
        if self.backlog is not None:
            return False
        if new_history:
            self.change_replid()
            self.clear_replid2()
        self.backlog = Backlog(self.backlog_bytes_max, self.master_repl_offset + 1)
        return True

    def free_backlog(self) -> None:
        self.backlog = None

    def resize_backlog(self, size_bytes: int) -> None:
        self.backlog_bytes_max = size_bytes
        if self.backlog is not None:
            self.backlog.resize(size_bytes)

    def maybe_free_backlog(self, now_ms: int, replica_count: int, is_primary: bool) -> bool:
        """repl-backlog-ttl: free the backlog of a primary alone for too long."""
        if replica_count or self.backlog is None or not is_primary:
            self._no_replicas_since_ms = None
            return False
        if self._no_replicas_since_ms is None:
            self._no_replicas_since_ms = now_ms
            return False
        if not self.backlog_ttl_ms or now_ms - self._no_replicas_since_ms <= self.backlog_ttl_ms:
            return False
        self.change_replid()
        self.clear_replid2()
        self.free_backlog()
        self._no_replicas_since_ms = None
        return True

    def info_fields(self) -> list[tuple[str, str]]:
        """The tail of INFO replication, in Redis's order."""
        b = self.backlog
        return [
            ("master_replid", self.replid),
            ("master_replid2", self.replid2),
            ("master_repl_offset", str(self.master_repl_offset)),
            ("second_repl_offset", str(self.second_repl_offset)),
            ("repl_backlog_active", "1" if b is not None else "0"),
            ("repl_backlog_size", str(self.backlog_bytes_max)),
            ("repl_backlog_first_byte_offset", str(b.first_byte_offset if b else 0)),
            ("repl_backlog_histlen", str(b.histlen if b else 0)),
        ]
