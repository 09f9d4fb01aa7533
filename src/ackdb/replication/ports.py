"""The ports the replication driver carries out the engine's actions through.

Owns: the small ``typing.Protocol`` interfaces between ``driver.ReplicationDriver`` and
its environment. The server (``server/replication.py``) implements them with asyncio
connections, forks and files; the simulator (``sim/replication.py``) with simulated
links, processes and disks. Both run the same driver: only the ports differ. Never holds
an implementation.

Reporting rule: a port that starts something slow (a connection, a snapshot written by a
child, a snapshot loaded in steps) reports its end to the driver later, through the
driver method its docstring names -- never from inside the call that started it.
"""

from __future__ import annotations

from typing import Protocol

from .actions import SnapshotBegin
from .primary import SnapshotStart


class Host(Protocol):
    """Clock, timers and log of the process."""

    def now_ms(self) -> int: ...

    def request_pass(self) -> None:
        """Run one more event-loop pass soon (its end calls ``driver.before_sleep``)."""

    def wake_at(self, deadline_ms: int) -> None:
        """Run a pass at ``deadline_ms`` (a WAIT's timeout), not only at the next tick."""

    def log_line(self, level: str, message: str) -> None: ...


class Links(Protocol):
    """Connections to our replicas (the server's client ids) and to our primary."""

    def replica_attached(self, conn: int) -> None:
        """``conn`` became a replica connection (its PSYNC was accepted)."""

    def send_to_replica(self, conn: int, data: bytes) -> None: ...

    def close_replica(self, conn: int, reason: str) -> None:
        """Close it after flushing; the driver already told the engine it is gone."""

    def replica_buffer_limit_bytes(self) -> int:
        """Hard output buffer limit of the replica class (0: none)."""

    def connect_primary(self, host: str, port: int) -> None:
        """Drop any link and open a new one; report ``link_established`` or
        ``link_failed``, then ``link_data`` and ``link_lost``."""

    def send_to_primary(self, data: bytes) -> None: ...

    def close_primary(self, reason: str) -> None:
        """Close the link (or forget a connection in progress) without reporting
        ``link_lost`` for it."""


class Dataset(Protocol):
    """The keyspace, seen from replication: the primary's client, role, pauses, clients."""

    def apply(self, cmds: list[list[bytes]], stream_db: int) -> None:
        """Run ``cmds`` as the primary's client (made, with ``stream_db`` selected, when
        there is none): no replies, no new effects."""

    def new_primary_client(self, db: int) -> None: ...

    def drop_primary_client(self) -> None: ...

    def discard_transaction(self) -> None:
        """Drop the primary client's queued MULTI (and its WATCHes)."""

    def role_changed(self, host: str | None, port: int) -> None:
        """Primary (``host`` None) or replica of host:port: key-blocked clients get the
        UNBLOCKED error on a demotion; the primary's client goes on a promotion."""

    def reply_to_client(self, client: int, data: bytes, close: bool) -> None: ...

    def pause_writes(self) -> None: ...

    def unpause_writes(self) -> None: ...

    def writes_paused(self) -> bool: ...

    def engine_changed(self) -> None:
        """After every batch of actions: refresh what the dataset caches of the engine
        (the command gate, whether effects are only counted)."""


class Aof(Protocol):
    def active(self) -> bool:
        """The AOF is on (its writes follow every pass)."""

    def fsynced_mark(self, offset: int) -> int | None:
        """The stream offset the AOF is fsynced to, or None while nothing counts (AOF
        off, or being created). ``offset`` is the current one: with everything appended
        on disk, offsets that moved without data count as fsynced too."""


class SnapshotServer(Protocol):
    """Full syncs served: a child writes the dataset as it is at ``start.offset``."""

    def serve(self, start: SnapshotStart) -> bool:
        """Start writing (False: could not start, e.g. fork failed); report
        ``snapshot_written(start.conns, payload or None)`` when done."""


class SnapshotReceiver(Protocol):
    """Full syncs received: the payload goes to a file, then replaces the dataset."""

    def begin(self, a: SnapshotBegin) -> None: ...

    def chunk(self, data: bytes) -> None: ...

    def abort(self, reason: str) -> None:
        """Discard a transfer in progress, if any."""

    def load(self) -> None:
        """Replace the dataset with the received snapshot (the primary's client goes
        first); report ``snapshot_loaded(stream_db)`` or ``snapshot_unusable()``."""

    def loaded(self) -> None:
        """The engine went on from the loaded snapshot (e.g. rebuild the AOF now)."""
