"""Replication in a running server: the asyncio ports of ``replication.ReplicationDriver``.

Owns: the I/O ports of the driver (``replication/ports.py``) in a running server -- the
clock, the wake-up timer and the log (``Host``), the TCP link to our primary (``Links``;
replicas are the core's clients, ``replication_core.py``), the AOF's fsync marks
(``Aof``) and the snapshot ports (forked children and files, ``replication_sync.py``) --
and wiring them to the node. Every decision is the engine's or the driver's; the part
shared with the simulator (the core's entry points, the ``Dataset`` port) is
``replication_core.CoreReplication``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from ..commands.base import CommandError
from ..persistence.files import atomic_write
from ..replication.fencing import DivergedRange, count_commands
from ..replication.ports import Aof, Host, Links
from ..replication.state import SavedHistory
from .replication_core import CoreReplication
from .replication_sync import ForkedSnapshots, ReceivedSnapshot

# Longest wait for the TCP connection to a primary (s).
CONNECT_TIMEOUT_S = 5.0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _mono_ms() -> int:
    return int(time.monotonic() * 1000)


def saved_history_from(meta: dict[str, Any]) -> SavedHistory | None:
    """The replication history stored in a snapshot's metadata, if any."""
    replid, offset = meta.get("replid"), meta.get("repl_offset")
    if not isinstance(replid, str) or len(replid) != 40 or not isinstance(offset, int):
        return None
    db = meta.get("stream_db", 0)
    return SavedHistory(replid, offset, db if isinstance(db, int) else 0)


class _LinkProtocol(asyncio.Protocol):
    """The TCP connection to our primary."""

    def __init__(self, shell: ReplicationShell, seq: int) -> None:
        self.shell = shell
        self.seq = seq
        self.transport: Any = None
        self.fd = -1

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1

    def data_received(self, data: bytes) -> None:
        if self is self.shell.link:
            self.shell.core.stat_net_repl_input += len(data)
            self.shell.driver.link_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self is self.shell.link:  # else closed on the driver's request, or older
            self.shell.link = None
            self.shell.driver.link_lost()


class ReplicationShell(CoreReplication):
    """The server's replication: ``CoreReplication`` with the asyncio ports."""

    def __init__(self, node: Any, saved: SavedHistory | None) -> None:
        self.node = node
        self.persist = node.persist
        self.link: _LinkProtocol | None = None
        self._link_seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0
        self.served = ForkedSnapshots(self)
        self.received = ReceivedSnapshot(self)
        super().__init__(
            node.core,
            node.config,
            node.log,
            saved,
            aof_enabled=self.persist.aof is not None,
            served=self.served,
            received=self.received,
        )
        self.dataset = self  # the Dataset port, as the snapshot ports call it
        if self.persist.aof is not None:
            self.persist.aof_marks_follow(self.core.master_repl_offset)
            self.aof_offsets = self.persist.aof_numbered
        self.driver.start(self.config.get("replicaof"))

    def cron(self, now_ms: int) -> None:
        self.served.cron(now_ms)
        self.driver.cron(now_ms)

    # -- Host ------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return _now_ms()

    def mono_ms(self) -> int:
        """The lease's clock (CLOCK_MONOTONIC, as the agent's)."""
        return _mono_ms()

    def request_pass(self) -> None:
        self.node.request_before_sleep()

    def poll_fds(self) -> list[int]:
        """The sockets of the replication links (server/busypoll.py): the replicas' and
        the one to our primary."""
        fds = []
        clients = self.core.clients
        for r in self.driver.engine.table.replicas.values():
            c = clients.get(r.conn)
            if c is not None and c.fd >= 0:
                fds.append(c.fd)
        link = self.link
        if link is not None and link.fd >= 0:
            fds.append(link.fd)
        return fds

    def wake_at(self, deadline_ms: int) -> None:
        """Wake up when the next WAIT times out (WAIT 1 50 answers after 50 ms, not at
        the next cron tick)."""
        loop = self.node.loop
        if loop is None or (self._timer is not None and self._timer_at <= deadline_ms):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline_ms
        delay_s = max(0, deadline_ms - _now_ms()) / 1000 + 0.001
        self._timer = loop.call_later(delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = 0
        self.node.request_before_sleep()

    def log_line(self, level: str, message: str) -> None:
        getattr(self.log, level, self.log.notice)(message)

    # -- Aof -------------------------------------------------------------------------------

    def aof_changed(self, enabled: bool) -> None:
        self.aof_offsets = self.persist.aof_numbered if enabled else None
        super().aof_changed(enabled)

    def active(self) -> bool:
        return self.persist.aof is not None

    def fsynced_mark(self, offset: int) -> int | None:
        p = self.persist
        aof = p.aof
        if aof is None or p.aof_state != "on":
            # While the AOF is being created its base is not on disk: nothing counts.
            return None
        mark: int = aof.fsynced_mark
        if aof.policy != "no" and mark >= aof.mark and not aof.pending:
            # Everything appended is on disk: offsets that moved without data (pings,
            # GETACK) count as fsynced too (notes: "the fsynced offset follows it").
            mark = max(mark, offset)
        return mark

    # -- Links: our primary ----------------------------------------------------------------

    def connect_primary(self, host: str, port: int) -> None:
        self._drop_link_transport()
        self._link_seq += 1
        loop = self.node.loop
        if loop is not None:
            loop.create_task(self._open_link(host, port, self._link_seq))

    async def _open_link(self, host: str, port: int, seq: int) -> None:
        loop = self.node.loop
        assert loop is not None
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: _LinkProtocol(self, seq), host, port),
                CONNECT_TIMEOUT_S,
            )
        except (TimeoutError, OSError) as e:
            if seq == self._link_seq:
                self.driver.link_failed(str(e))
            return
        if seq != self._link_seq:
            proto.transport.close()
            return
        self.link = proto
        self.driver.link_established()

    def send_to_primary(self, data: bytes) -> None:
        if self.link is not None and self.link.transport is not None:
            self.link.transport.write(data)

    def close_primary(self, reason: str) -> None:
        if self.link is not None:
            self.log.notice(f"Closing the link with the primary: {reason}")
        self._drop_link_transport()
        self._link_seq += 1

    def _drop_link_transport(self) -> None:
        link, self.link = self.link, None
        if link is not None and link.transport is not None:
            link.transport.close()

    def save_diverged(self, tag: str, rng: DivergedRange) -> tuple[int, str]:
        """ACKDB.DIVERGED: the diverged stream bytes, exactly, to ``diverged-<tag>.aof``
        in the data dir (fsynced, atomically); when the backlog no longer holds them,
        the whole dataset to ``diverged-<tag>.rdb`` (count -1). Logged as a warning."""
        st = self.engine.state
        if rng.first_offset:
            what = (
                f"stream bytes {rng.first_offset}..{rng.last_offset} "
                f"(master_replid {st.replid}, replid2 {st.replid2})"
            )
        else:
            what = f"the data of an unknown history (started without one; replid {st.replid})"
        if rng.data is not None:
            data = rng.data
            count = count_commands(data)
            if count is None:
                raise CommandError("ERR the diverged range does not parse as commands")
            path = os.path.join(self.persist.dir, f"diverged-{tag}.aof")
            self._write_file(path, lambda f: f.write(data))
            self.log.warning(f"Diverged writes saved: {count} commands, {what}, in {path}")
            return count, path
        path = os.path.join(self.persist.dir, f"diverged-{tag}.rdb")
        self._write_file(path, self.persist.write_dataset)
        self.log.warning(
            f"Diverged writes saved: {what} (not in the backlog): the whole dataset in {path}"
        )
        return -1, path

    def _write_file(self, path: str, produce: Callable[[BinaryIO], object]) -> None:
        try:
            atomic_write(path, produce)
        except OSError as e:
            self.log.warning(f"Saving diverged writes to {path} failed: {e.strerror or e}")
            raise CommandError(f"ERR saving {path} failed: {e.strerror or e}") from e

    def replica_buffer_limit_bytes(self) -> int:
        return int(self.node.output_limits.get("replica", (0, 0, 0))[0])

    def drop_link(self) -> None:
        if self.link is None:
            return
        self._drop_link_transport()
        self.driver.link_lost()

    def stop(self) -> None:
        self.served.stop()
        self.received.abort("shutdown")
        self._drop_link_transport()
        self._link_seq += 1
        if self._timer is not None:
            self._timer.cancel()


if TYPE_CHECKING:

    def _implements_the_ports(s: ReplicationShell) -> tuple[Host, Links, Aof]:
        return s, s, s
