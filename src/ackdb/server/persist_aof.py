"""The AOF in a running server: its write path, turning it on and off, rewrites.

Owns: feeding effects to the open ``AofWriter`` (stamped with replication offsets),
the end-of-pass write and the group commit of ``appendfsync always``
(``before_replies``), creating the AOF for the current dataset (at start-up or by
CONFIG SET appendonly yes), closing it, and carrying out rewrites: the switch to a new
incremental file, the forked child writing the base, installing the result. When to
rewrite is decided by the policy (``persistence.policy``), what is fsynced by the AOF's
accounting (``persistence.fsync``); this module does what they decide.

Never decides when to save or whether writes are refused (``server.persist``).
"""

from __future__ import annotations

import os
import time
from typing import Any

from ..persistence import manifest as mf
from ..persistence.aof import AofWriter
from ..persistence.child import Child, Progress, fork
from ..persistence.files import fsync_dir
from ..persistence.policy import PersistencePolicy
from .persist_files import PersistenceFiles


def _now_ms() -> int:
    return int(time.time() * 1000)


class AofLife(PersistenceFiles):
    policy: PersistencePolicy
    child: Child | None
    aof: AofWriter | None
    _child_tmp: str
    _rewrite_first_incr: str
    _detached_manifest: mf.Manifest

    def refresh_denial(self) -> None:
        raise NotImplementedError  # server.persist.Persistence

    @property
    def aof_state(self) -> str:
        return self.policy.aof_state

    # -- the write path --------------------------------------------------------------------

    def _feed(self, db: int, argv: list[bytes]) -> None:
        """The core's feed: buffer one effect and stamp it with the offset it ends at."""
        aof = self.aof
        if aof is None:
            return
        nbytes = aof.feed(db, argv)
        core = self.core
        if core.repl is None:  # no replication engine (a bare core): the AOF numbers it
            core.master_repl_offset += nbytes
        # With one, its feed numbers the effect and hands the offset to ``aof_numbered``,
        # before or after this (on a replica, which streams nothing of its own, the
        # offset is the applied stream's).
        aof.acct.mark = core.master_repl_offset

    def aof_numbered(self, offset: int) -> None:
        """The replication stream numbered an effect: it ends at ``offset``. Called by
        the replication feed, so the AOF's mark does not depend on the order of the
        core's feeds: run before this one, the AOF's feed stamped the previous offset
        and this corrects it; run after, it stamps this same offset again."""
        aof = self.aof
        if aof is not None:
            aof.acct.mark = offset

    def aof_marks_follow(self, offset: int) -> None:
        """The offsets numbering changed hands (the replication engine took over at
        start-up): nothing is buffered, so every mark is ``offset``."""
        aof = self.aof
        if aof is not None:
            aof.follow(offset)

    def before_replies(self) -> None:
        """Once per event-loop pass, before replies leave: write the AOF buffer and, under
        ``always``, fsync it (one fsync for every write of the pass: group commit)."""
        aof = self.aof
        if aof is None:
            return
        if aof.pending:
            aof.write(_now_ms())
        if aof.acct.fsync_before_replies:
            aof.fsync_now()
        self.refresh_denial()

    def sync_now(self) -> None:
        """Write and fsync now (a closing client's reply must not leave unsynced)."""
        aof = self.aof
        if aof is not None:
            aof.write(_now_ms(), force=True)
            aof.fsync_now()

    def durable_mark(self) -> int | None:
        """Under ``always``: replies to writes past this mark must wait; else None.

        Once every effect appended is fsynced (nothing buffered, the fsynced mark at the
        last effect's), the whole stream offset counts: bytes that moved it without
        reaching the AOF -- keep-alives, GETACK, PUBLISH -- hold nothing to wait for, and
        a client's last write offset past the last effect (ACKDB.SYNCWOFF's) must not
        wait for a write that may never come.
        """
        aof = self.aof
        if aof is None:
            return None
        acct = aof.acct
        mark = acct.durable_mark()
        if mark is not None and mark >= acct.mark and not aof.pending:
            return max(mark, int(self.core.master_repl_offset))
        return mark

    # -- turning the AOF on and off, rewrites ----------------------------------------------

    def open_aof(self, m: mf.Manifest) -> None:
        """Start appending to the last incremental file of a loaded (or new) AOF."""
        self.aof = AofWriter(
            self.aof_dir,
            self.aof_prefix,
            m,
            self.config.get("appendfsync"),
            self.log,
            self.faults,
        )
        # The marks continue the server's numbering: after the AOF was off and on again,
        # a client's last write offset (``woff``) lies beyond 0 and must count as
        # durable, or its replies would wait under ``always`` for a write of another client.
        self.aof.follow(int(self.core.master_repl_offset))
        self.policy.aof_opened(self.aof.current_size)
        if self._feed not in self.core.feeds:
            self.core.add_feed(self._feed)
        if self.core.repl is not None:
            self.core.repl.aof_changed(True)

    def create_aof(self) -> None:
        """A new AOF for the current dataset: written now if the dataset is empty, else
        by a background rewrite (the AOF is on, waiting for its base, meanwhile)."""
        os.makedirs(self.aof_dir, exist_ok=True)
        # The files of an earlier AOF in this directory (the AOF was on before) become
        # history: the new files take the next sequence numbers, and the old ones are
        # deleted once the new manifest is installed. Reusing their names would append to
        # old commands, which the next load would replay over newer data.
        old = self._read_manifest_or_empty()
        m = mf.Manifest(history=[mf.AofFile(f.name, f.seq, "h") for f in old.history + old.files])
        seq = m.next_seq("i")
        incr = mf.incr_name(self.aof_prefix, seq)
        m.incrs.append(mf.AofFile(incr, seq, "i"))
        if not any(db.data for db in self.core.dbs):
            bseq = m.next_seq("b")
            base = mf.base_name(self.aof_prefix, bseq, self.config.get("aof-use-rdb-preamble"))
            self._write_snapshot(os.path.join(self.aof_dir, base), None, aof_base=True)
            m.base = mf.AofFile(base, bseq, "b")
            open(os.path.join(self.aof_dir, incr), "wb").close()
            self.open_aof(m)
            self.aof.save_manifest()  # type: ignore[union-attr]
            fsync_dir(self.aof_dir)
            self.aof.forget_history()  # type: ignore[union-attr]
            self.log.notice(f"Creating AOF base file {base} on server start")
            return
        open(os.path.join(self.aof_dir, incr), "wb").close()
        self.open_aof(m)
        self.policy.aof_waits_for_base()
        self._rewrite_first_incr = incr
        if self._fork_rewrite() is not None:
            self.stop_aof()
            raise OSError("Unable to turn on AOF: the background rewrite could not start")

    def stop_aof(self) -> None:
        if self.child is not None and self.child.kind == "rewrite":
            self.child.kill()
            self._remove_temp(self.child, self._child_tmp)
            self.child = None
            self.policy.child_gone()
        if self.aof is not None:
            self.aof.close()
        if self._feed in self.core.feeds:
            self.core.feeds.remove(self._feed)
        self.aof = None
        self.policy.aof_closed()
        if self.core.repl is not None:
            self.core.repl.aof_changed(False)
        self.refresh_denial()

    def _on_appendfsync(self, name: str, old: Any, new: Any) -> None:
        if self.aof is not None:
            self.aof.set_policy(new, _now_ms())

    def start_rewrite(self) -> str | None:
        """BGREWRITEAOF now: a new incremental file takes the writes from this instant,
        and a child writes the dataset as of this instant as the new base."""
        if self.child is not None:
            return "busy"
        plan = self.policy.rewrite_plan(self.aof is not None)
        if plan == "detached":
            return self._rewrite_without_aof()
        if plan == "recreate":
            return self._restart_aof_creation()
        assert self.aof is not None
        self._rewrite_first_incr = self.aof.switch_to_new_incr()
        return self._fork_rewrite()

    def _restart_aof_creation(self) -> str | None:
        """The AOF is being turned on and has no base yet: start over with a new fork.
        Switching files here would list incremental files without a base in the
        manifest, which a restart would load as the whole dataset; instead the new AOF,
        listed nowhere yet, is created again (its incremental file restarts empty: the
        new fork's dataset holds everything written to it)."""
        self.stop_aof()
        try:
            self.create_aof()
        except OSError as e:
            self.log.warning(f"Unable to turn on AOF: {e.strerror or e}")
            return f"ERR {e.strerror or e}"
        return None

    def _fork_rewrite(self) -> str | None:
        m = self.aof.manifest if self.aof is not None else self._detached_manifest
        seq = m.next_seq("b")
        name = mf.base_name(self.aof_prefix, seq, self.config.get("aof-use-rdb-preamble"))
        path = os.path.join(self.aof_dir, name)
        self._child_tmp = name

        def work(progress: Progress) -> None:
            self._write_snapshot(path, progress, aof_base=True)
            progress.report(1, 1, force=True)

        try:
            self.child = fork("rewrite", work, _now_ms())
        except OSError as e:
            self.log.warning(f"Can't rewrite append only file in background: fork: {e.strerror}")
            self.policy.rewrite_fork_failed()
            return f"ERR Can't rewrite append only file in background: fork: {e.strerror}"
        self.policy.child_started("rewrite", self.child.started_ms, self.core.dirty)
        self.core.count_fork(self.child.fork_usec)
        self.log.notice(f"Background append only file rewriting started by pid {self.child.pid}")
        return None

    def _rewrite_without_aof(self) -> str | None:
        """BGREWRITEAOF with the AOF off: write a fresh AOF (base + empty incr) that a
        later start with ``appendonly yes`` loads; nothing is appended to it."""
        os.makedirs(self.aof_dir, exist_ok=True)
        m = self._read_manifest_or_empty()
        seq = m.next_seq("i")
        incr = mf.incr_name(self.aof_prefix, seq)
        open(os.path.join(self.aof_dir, incr), "wb").close()
        self._rewrite_first_incr = incr
        m.incrs.append(mf.AofFile(incr, seq, "i"))
        self._detached_manifest = m
        return self._fork_rewrite()

    def _rewrite_done(self, ok: bool) -> None:
        name = self._child_tmp
        if not ok:
            self.log.warning("Background AOF rewrite terminated with error")
            self.policy.rewrite_finished(False, None)
            return
        aof = self.aof
        try:
            if aof is not None:
                aof.install_base(name, self._rewrite_first_incr)
                aof.forget_history()
                if self.policy.rewrite_recovers(bool(aof.fsync_broken)):
                    aof.recover_after_rewrite()
            else:
                self._install_detached(self._detached_manifest, name, self._rewrite_first_incr)
        except OSError as e:
            self.log.warning(f"Background AOF rewrite could not be installed: {e.strerror or e}")
            self.policy.rewrite_finished(False, None)
            return
        self.policy.rewrite_finished(True, aof.current_size if aof is not None else None)
        self.log.notice("Background AOF rewrite terminated with success")
        self.log.notice("Background AOF rewrite finished successfully")
        self.refresh_denial()
