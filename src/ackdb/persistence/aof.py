"""The append-only file as it is written: buffer, write, fsync policies, fsynced mark.

Owns: turning each effect ``(db, argv)`` into RESP bytes (with SELECT when the database
changes), writing them to the current incremental file once per event-loop pass, the
three ``appendfsync`` policies, the marks that say how far data is written and fsynced,
the background fsync thread of ``everysec``, write/fsync errors, and the file moves of
a rewrite (a new incremental file at its start, the new manifest at its end).

Decisions (the ``appendfsync`` policy, postponing writes behind a slow fsync, what an
fsync covers, the error states) are taken by ``persistence.fsync.FsyncAccounting``
(``self.acct``); this class carries them out: it owns the buffer, the file descriptors,
the fsync thread and the log lines.

Marks: the server stamps every effect it feeds with ``acct.mark``, the replication
offset the effect ends at (``server.persist_aof``: the replication stream hands it over,
whatever the order of the core's feeds), so ``fsynced_mark`` answers WAITAOF's question
directly: everything up to that offset is on disk. ``aof_offset`` counts the bytes appended by this
process across files.

Errors: a failed or short write truncates the file back to the last good size and keeps
the buffer; ``write_errno`` is set until a retry succeeds (the server refuses writes
meanwhile). A failed fsync is worse: ``fsync_broken`` stays set until a rewrite has
written the whole dataset again (see ``persistence.fsync``).

Threads: only ``_fsync_thread`` runs outside the event loop; it reads ``_fsync_request``
and reports through ``FsyncAccounting.background_fsync_finished`` (single stores, safe
under the GIL), and never touches the buffer or the file's position.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..resp.request import encode_command as encode_command
from ..resp.request import select_command as select_command
from . import manifest as mf
from .files import NO_FAULTS, DiskFaults, atomic_write, fsync_dir
from .fsync import EIO, Fsync, FsyncAccounting, FsyncNow, Postpone


class AofWriter:
    def __init__(
        self,
        dirpath: str,
        prefix: str,
        manifest: mf.Manifest,
        policy: str,
        log: Any,
        faults: DiskFaults = NO_FAULTS,
    ) -> None:
        self.dir = dirpath
        self.prefix = prefix
        self.manifest = manifest
        self.acct = FsyncAccounting(policy)
        self.log = log
        self.faults = faults
        self._buf: list[bytes] = []
        self.buf_bytes = 0
        self.sel_db = -1
        self.fd = -1
        self.incr_size = 0
        self.sizes: dict[str, int] = {}
        self._fsync_lock = threading.Lock()
        self._fsync_wanted = threading.Event()
        self._fsync_request: tuple[int, int, int] = (-1, 0, 0)
        self._closing = False
        self._thread: threading.Thread | None = None
        self._open_last_incr()

    # -- the accounting's answers, read by the server and replication ---------------------

    @property
    def policy(self) -> str:
        return self.acct.policy

    def set_policy(self, policy: str, now_ms: int) -> None:
        """CONFIG SET appendfsync."""
        if self.acct.set_policy(policy):
            self.write(now_ms, force=True)
            self.fsync_now()

    @property
    def mark(self) -> int:
        """The replication offset after the last effect buffered."""
        return self.acct.mark

    @property
    def written_mark(self) -> int:
        return self.acct.written_mark

    @property
    def fsynced_mark(self) -> int:
        """Everything up to this replication offset is on disk (WAITAOF's answer)."""
        return self.acct.fsynced_mark

    @property
    def write_errno(self) -> int:
        return self.acct.write_errno

    @property
    def fsync_broken(self) -> int:
        return self.acct.fsync_broken

    @property
    def delayed_fsync(self) -> int:
        return self.acct.delayed_fsync

    @property
    def fsync_in_progress(self) -> bool:
        return self.acct.fsync_in_progress

    def follow(self, offset: int) -> None:
        """The offsets' numbering moved to ``offset``; nothing is buffered."""
        self.acct.follow(offset)

    # -- files --------------------------------------------------------------------------

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _open_last_incr(self) -> None:
        for f in self.manifest.files:
            try:
                self.sizes[f.name] = os.path.getsize(self.path(f.name))
            except OSError:
                self.sizes[f.name] = 0
        if not self.manifest.incrs:
            raise ValueError("an AOF needs an incremental file")
        name = self.manifest.incrs[-1].name
        self.fd = os.open(self.path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.incr_size = os.fstat(self.fd).st_size
        self.sizes[name] = self.incr_size

    @property
    def current_size(self) -> int:
        return sum(self.sizes.values())

    @property
    def base_size(self) -> int:
        b = self.manifest.base
        return self.sizes.get(b.name, 0) if b else 0

    def save_manifest(self) -> None:
        text = self.manifest.dump().encode()
        name = f"{self.prefix}.manifest"
        atomic_write(self.path(name), lambda f: f.write(text))

    # -- appending ------------------------------------------------------------------------

    def feed(self, db: int, argv: list[bytes]) -> int:
        """Buffer one effect (after a SELECT when the database changes); returns the
        bytes buffered. The caller stamps ``acct.mark`` with the offset it ends at."""
        nbytes = 0
        if db != self.sel_db:
            sel = select_command(db)
            self._buf.append(sel)
            nbytes = len(sel)
            self.sel_db = db
        data = encode_command(argv)
        self._buf.append(data)
        nbytes += len(data)
        self.buf_bytes += nbytes
        return nbytes

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def write(self, now_ms: int, force: bool = False) -> bool:
        """Write the buffer to the file; False when it stays buffered (error or postponed)."""
        if not self._buf:
            return True
        acct = self.acct
        decision = acct.write_decision(now_ms, force)
        if isinstance(decision, Postpone):
            return False
        if decision.delayed:
            self.log.notice(
                "Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF "
                "buffer without waiting for fsync to complete, this may slow down ackdb."
            )
        data = b"".join(self._buf)
        try:
            self._write_all(data)
        except OSError as e:
            if acct.on_write_failed(e.errno or EIO):
                self.log.warning(f"Error writing to the AOF file: {e.strerror}")
            return False
        self._buf = []
        self.buf_bytes = 0
        if acct.on_written(len(data)):
            self.log.warning("AOF write error looks solved, ackdb can write again.")
        return True

    def _write_all(self, data: bytes) -> None:
        start = self.incr_size
        try:
            self.faults.check("aof-write")
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
                self.incr_size += n
        except OSError:
            # Leave no half record behind: cut back to the last good size.
            if self.incr_size != start:
                try:
                    os.ftruncate(self.fd, start)
                    self.incr_size = start
                except OSError:
                    self.log.warning("Could not remove the short write from the AOF file")
            raise
        finally:
            self.sizes[self.manifest.incrs[-1].name] = self.incr_size

    # -- fsync ----------------------------------------------------------------------------

    def fsync_now(self) -> bool:
        """fsync in the caller's thread (``always``); True when everything written is safe."""
        acct = self.acct
        if not acct.fsync_needed:
            return acct.healthy
        try:
            self.faults.check("aof-fsync")
            os.fdatasync(self.fd)
        except OSError as e:
            self._on_fsync_error(e.errno or EIO)
            return False
        acct.fsynced_all_written()
        return acct.healthy

    def _on_fsync_error(self, code: int) -> None:
        if self.acct.on_fsync_failed(code):
            self._log_fsync_broken(code)

    def _log_fsync_broken(self, code: int) -> None:
        self.log.warning(
            f"Error syncing the AOF file: {os.strerror(code)}. What was written since the "
            "last successful fsync cannot be trusted: writes are refused until an AOF "
            "rewrite has saved the dataset again."
        )

    def tick(self, now_ms: int) -> None:
        """Every cron tick: write what is buffered (or retry a failed write), then the
        policy's fsync: in the loop (``always``) or in the background (``everysec``,
        once a second)."""
        if self._buf or self.acct.write_errno:
            self.write(now_ms)
        broke, work = self.acct.tick(now_ms)
        if broke:
            self._log_fsync_broken(broke)
        if isinstance(work, FsyncNow):
            self.fsync_now()
        elif work is not None:
            self._start_background_fsync(work)

    def _start_background_fsync(self, fsync: Fsync) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._fsync_thread, name="aof-fsync", daemon=True
            )
            self._thread.start()
        self._fsync_request = (self.fd, fsync.mark, fsync.offset)
        self._fsync_wanted.set()

    def _fsync_thread(self) -> None:
        while True:
            self._fsync_wanted.wait()
            self._fsync_wanted.clear()
            if self._closing:
                return
            with self._fsync_lock:
                # Read under the lock: a rewrite may have switched files and closed this
                # descriptor meanwhile (after fsyncing it, which covers this request), and
                # its number may already belong to another file or a socket.
                fd, mark, offset = self._fsync_request
                code = 0
                try:
                    self.faults.check("aof-fsync")
                    if fd == self.fd:
                        os.fdatasync(fd)
                except OSError as e:
                    code = e.errno or EIO
                self.acct.background_fsync_finished(mark, offset, code)

    def recover_after_rewrite(self) -> bool:
        """A rewrite saved the dataset again: once the current incremental file is
        fsynced too, everything written is on disk and a broken fsync is forgiven."""
        self.write(0, force=True)
        try:
            self.faults.check("aof-fsync")
            os.fdatasync(self.fd)
        except OSError as e:
            self._on_fsync_error(e.errno or EIO)
            return False
        if self.acct.on_recovered():
            self.log.warning("AOF fsync error looks solved, ackdb can write again.")
        return True

    # -- rewrite ----------------------------------------------------------------------------

    def switch_to_new_incr(self) -> str:
        """Start a new incremental file (a rewrite begins): the old one is written out and
        fsynced, the manifest lists the new file at once so a crash loses nothing."""
        self.write(0, force=True)
        with self._fsync_lock:
            try:
                os.fdatasync(self.fd)
            except OSError as e:
                self._on_fsync_error(e.errno or EIO)
            old_fd = self.fd
            seq = self.manifest.next_seq("i")
            name = mf.incr_name(self.prefix, seq)
            fd = os.open(
                self.path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644
            )
            self.manifest.incrs.append(mf.AofFile(name, seq, "i"))
            self.save_manifest()
            self.fd = fd
            self.incr_size = 0
            self.sizes[name] = 0
            self.sel_db = -1
            os.close(old_fd)
        return name

    def install_base(self, base_name: str, first_incr: str) -> list[str]:
        """A rewrite finished: ``base_name`` holds the dataset as of the switch to
        ``first_incr``. The manifest drops the older base and incrs in one atomic
        replacement; returns the files to delete."""
        m = self.manifest
        dropped = mf.install_base(m, base_name, first_incr)
        self.save_manifest()
        for f in dropped:
            self.sizes.pop(f.name, None)
        self.sizes[base_name] = os.path.getsize(self.path(base_name))
        return [f.name for f in m.history]

    def forget_history(self) -> None:
        """Delete the history files and drop them from the manifest."""
        for f in self.manifest.history:
            try:
                os.unlink(self.path(f.name))
            except FileNotFoundError:
                pass
        if self.manifest.history:
            self.manifest.history = []
            self.save_manifest()
            fsync_dir(self.dir)

    def close(self) -> None:
        """Write, fsync and close (shutdown, or AOF turned off)."""
        self.write(0, force=True)
        self._closing = True
        self._fsync_wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            os.fdatasync(self.fd)
            self.acct.on_closed()
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1
