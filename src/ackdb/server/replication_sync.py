"""Full syncs in a running server: the snapshot ports of the replication driver.

Owns: ``ForkedSnapshots`` (``ports.SnapshotServer``): a child forked right after the
engine's ``begin_snapshot`` sees the dataset exactly at the snapshot's offset and writes
it to a temporary file; once the child is done the payload goes to the driver
(``snapshot_written``), which frames it for the replicas. ``ReceivedSnapshot``
(``ports.SnapshotReceiver``): the payload goes to a temporary file; at its end the
dataset is replaced by loading it in steps (clients get -LOADING meanwhile), then the
driver goes on (``snapshot_loaded`` / ``snapshot_unusable``); with the AOF on, the AOF
is rebuilt from the new dataset (Redis does the same). Decides nothing about replication.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from typing import Any, BinaryIO

from ..persistence.child import Child, Progress, fork
from ..replication.actions import SnapshotBegin
from ..replication.primary import SnapshotStart
from .loading import Loader

# How often a full sync in progress is logged (ms).
SYNC_LOG_INTERVAL_MS = 2000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@dataclasses.dataclass
class _ServedSync:
    """A snapshot being written by a child for replicas in a full sync."""

    child: Child
    path: str
    conns: tuple[int, ...]
    offset: int
    logged_ms: int


class ForkedSnapshots:
    """Snapshots for replicas, written by forked children."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._serving: list[_ServedSync] = []
        self._seq = 0

    def serve(self, start: SnapshotStart) -> bool:
        shell = self.shell
        p = shell.persist
        # One file per full sync: two at the same offset (replicas attaching one after
        # another with no write between) must not share one, or the first to finish
        # deletes the other's file under it.
        self._seq += 1
        path = os.path.join(p.dir, f"temp-{os.getpid()}-sync-{self._seq}-{start.offset}.ackdb")
        meta = {"replid": start.replid, "repl_offset": start.offset, "stream_db": start.stream_db}

        def work(progress: Progress) -> None:
            p.write_snapshot_to(path, progress, meta)
            progress.report(1, 1, force=True)

        now = _now_ms()
        try:
            child = fork("replsync", work, now)
        except OSError as e:
            shell.log.warning(f"Can't fork for the replicas' full sync: {e.strerror}")
            return False
        shell.core.count_fork(child.fork_usec)
        shell.log.notice(f"Full sync snapshot written by pid {child.pid}")
        job = _ServedSync(child, path, start.conns, start.offset, now)
        self._serving.append(job)
        loop = shell.node.loop
        if loop is not None:
            # The child's end closes its progress pipe: deliver at once, not at the next
            # cron tick.
            loop.add_reader(child.read_fd, self._child_readable, job)
        return True

    def _child_readable(self, job: _ServedSync) -> None:
        if job in self._serving:
            job.child.poll_progress()
            self._try_finish(job)

    def _try_finish(self, job: _ServedSync) -> None:
        loop = self.shell.node.loop
        if loop is not None:
            loop.remove_reader(job.child.read_fd)  # before reap() closes it
        code = job.child.reap()
        if code is None:
            if loop is not None:
                loop.add_reader(job.child.read_fd, self._child_readable, job)
            return
        self._serving.remove(job)
        self._deliver(job, code == 0)

    def cron(self, now_ms: int) -> None:
        for job in list(self._serving):
            child = job.child
            child.poll_progress()
            if child.total and now_ms - job.logged_ms >= SYNC_LOG_INTERVAL_MS:
                job.logged_ms = now_ms
                self.shell.log.notice(
                    f"Full sync snapshot: {child.done} of {child.total} keys "
                    f"({100 * child.done // max(child.total, 1)}%)"
                )
            self._try_finish(job)

    def _deliver(self, job: _ServedSync, ok: bool) -> None:
        payload: bytes | None = None
        if ok:
            try:
                with open(job.path, "rb") as f:
                    payload = f.read()
            except OSError as e:
                self.shell.log.warning(f"Full sync snapshot unreadable: {e.strerror}")
        _unlink(job.path)
        self.shell.driver.snapshot_written(job.conns, payload)

    def stop(self) -> None:
        loop = self.shell.node.loop
        for job in self._serving:
            if loop is not None:
                loop.remove_reader(job.child.read_fd)
            job.child.kill()
            _unlink(job.path)
        self._serving = []


class ReceivedSnapshot:
    """The snapshot a replica receives: a temporary file, then loaded in steps."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._file: BinaryIO | None = None
        self._path = ""
        self._bytes = 0
        self._size = -1
        self._logged_ms = 0
        self._aof_wanted = False

    def begin(self, a: SnapshotBegin) -> None:
        self._path = os.path.join(self.shell.persist.dir, f"temp-{os.getpid()}-sync-in.ackdb")
        self._file = open(self._path, "wb")  # noqa: SIM115 - closed by end or abort
        self._bytes = 0
        self._size = a.size_bytes
        self._logged_ms = _now_ms()
        size = "unknown size" if a.size_bytes < 0 else f"{a.size_bytes} bytes"
        self.shell.log.notice(
            f"PRIMARY <-> REPLICA sync: receiving the snapshot of {a.replid}:{a.offset} ({size})"
        )

    def chunk(self, data: bytes) -> None:
        f = self._file
        if f is None:
            return
        f.write(data)
        self._bytes += len(data)
        now = _now_ms()
        if now - self._logged_ms >= SYNC_LOG_INTERVAL_MS:
            self._logged_ms = now
            total = f" of {self._size}" if self._size >= 0 else ""
            self.shell.log.notice(f"PRIMARY <-> REPLICA sync: received {self._bytes}{total} bytes")

    def abort(self, reason: str) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        f.close()
        _unlink(self._path)
        self.shell.log.warning(f"PRIMARY <-> REPLICA sync: transfer aborted ({reason})")

    def load(self) -> None:
        f, self._file = self._file, None
        assert f is not None
        f.flush()
        f.close()
        self.shell.log.notice(
            f"PRIMARY <-> REPLICA sync: received {self._bytes} bytes; "
            "flushing the old data and loading the snapshot"
        )
        loop = self.shell.node.loop
        assert loop is not None
        loop.create_task(self._load(self._path))

    async def _load(self, path: str) -> None:
        shell = self.shell
        core, p = shell.core, shell.persist
        shell.dataset.drop_primary_client()
        self._aof_wanted = p.aof is not None
        if self._aof_wanted:
            p.stop_aof()  # rebuilt from the new dataset after (Redis restarts it too)
        for db in core.dbs:
            db.clear()
        for c in core.clients.values():
            c.woff = 0
        loader = Loader(p)
        core.loader = loader
        core.loading = True
        ok = True
        t0 = time.monotonic()
        try:
            for _ in loader.load_snapshot(path, as_primary=False):
                await asyncio.sleep(0)
        except Exception as e:  # noqa: BLE001 - a bad payload must not take the node down
            shell.log.warning(f"PRIMARY <-> REPLICA sync: the received snapshot is unusable: {e}")
            ok = False
            for db in core.dbs:
                db.clear()
        finally:
            core.loading = False
            core.loader = None
            _unlink(path)
        if not ok:
            shell.driver.snapshot_unusable()
            return
        shell.log.notice(
            f"PRIMARY <-> REPLICA sync: snapshot loaded in {time.monotonic() - t0:.3f} s"
        )
        meta = p.loaded_meta
        stream_db = meta.get("stream_db", 0) if isinstance(meta.get("stream_db"), int) else 0
        shell.driver.snapshot_loaded(stream_db)

    def loaded(self) -> None:
        if not self._aof_wanted:
            return
        self._aof_wanted = False
        try:
            self.shell.persist.create_aof()
        except OSError as e:
            self.shell.log.warning(
                f"Failed to restart the AOF after a full sync: {e.strerror or e}"
            )
