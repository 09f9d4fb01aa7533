"""Persistence in a running server: SAVE / BGSAVE, the AOF's life, disk errors, INFO.

The shell around ``persistence.policy.PersistencePolicy`` (``self.policy``), which
decides when to save (``save`` rules, BGSAVE SCHEDULE, the retry after a failure), when
to rewrite the AOF (automatic, scheduled, recovery), and when to refuse writes
(MISCONF); the AOF's fsync accounting is ``persistence.fsync`` inside ``AofWriter``.
This module feeds them ``now_ms``, the dirty counter, sizes, children's ends and
configuration, and carries out what they decide: it forks the children, writes the
files, logs, and turns the AOF on and off (also at runtime). It runs the group commit
of ``appendfsync always`` (``before_replies``, called by the shell once per event-loop
pass before any reply leaves). Start-up loading lives in ``server.loading``.

Paths, snapshot writing and the AOF's manifest and history files are in the base class
``server.persist_files.PersistenceFiles``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ..persistence import manifest as mf
from ..persistence.aof import AofWriter
from ..persistence.child import Child, Progress, fork
from ..persistence.files import DiskFaults, fsync_dir
from ..persistence.policy import (
    AllowWrites,
    PersistencePolicy,
    PolicySettings,
    StartRewrite,
    StartSnapshot,
)
from .persist_files import PersistenceFiles

# The settings the policy reads; a change of one reconfigures it.
_POLICY_SETTINGS = (
    "save",
    "stop-writes-on-bgsave-error",
    "auto-aof-rewrite-percentage",
    "auto-aof-rewrite-min-size",
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Persistence(PersistenceFiles):
    def __init__(self, core: Any, config: Any, log: Any) -> None:
        self.core = core
        self.config = config
        self.log = log
        self.faults = DiskFaults()
        self.policy = PersistencePolicy(_now_ms(), os.strerror)
        self.child: Child | None = None
        self._child_tmp = ""
        self.aof: AofWriter | None = None
        self._rewrite_first_incr = ""
        self._detached_manifest = mf.Manifest()  # BGREWRITEAOF while the AOF is off
        self.loaded_meta: dict[str, Any] = {}
        self.last_load_keys = 0
        self.last_load_expired = 0
        core.persist = self
        config.on_change("appendfsync", self._on_appendfsync)
        self._configure_policy()
        for name in _POLICY_SETTINGS:
            config.on_change(name, self._configure_policy)

    def _configure_policy(self, *_: Any) -> None:
        get = self.config.get
        self.policy.configure(
            PolicySettings(
                save_rules=tuple(get("save") or ()),
                stop_writes_on_bgsave_error=bool(get("stop-writes-on-bgsave-error")),
                rewrite_percentage=get("auto-aof-rewrite-percentage"),
                rewrite_min_size=get("auto-aof-rewrite-min-size"),
            )
        )

    # -- the policy's state, as the commands and other shells read it --------------------

    @property
    def lastsave_s(self) -> int:
        return self.policy.lastsave_s

    @property
    def aof_state(self) -> str:
        return self.policy.aof_state

    @property
    def bgsave_scheduled(self) -> bool:
        return self.policy.bgsave_scheduled

    @bgsave_scheduled.setter
    def bgsave_scheduled(self, value: bool) -> None:  # BGSAVE SCHEDULE during a child
        self.policy.bgsave_scheduled = value

    @property
    def rewrite_scheduled(self) -> bool:
        return self.policy.rewrite_scheduled

    @rewrite_scheduled.setter
    def rewrite_scheduled(self, value: bool) -> None:  # BGREWRITEAOF during a child
        self.policy.rewrite_scheduled = value

    # -- the write path --------------------------------------------------------------------

    def _advance(self, nbytes: int) -> int:
        core = self.core
        if core.repl is None:  # no replication engine (a bare core): the AOF numbers it
            core.master_repl_offset += nbytes
        # With one, its feed already moved the offset past this effect.
        return int(core.master_repl_offset)

    def _feed(self, db: int, argv: list[bytes]) -> None:
        aof = self.aof
        if aof is not None:
            aof.feed(db, argv, self._advance)

    def aof_marks_follow(self, offset: int) -> None:
        """The offsets numbering changed hands (the replication engine took over at
        start-up): nothing is buffered, so every mark is ``offset``."""
        aof = self.aof
        if aof is not None:
            aof.follow(offset)

    @property
    def always(self) -> bool:
        return self.aof is not None and self.aof.policy == "always"

    def before_replies(self) -> None:
        """Once per event-loop pass, before replies leave: write the AOF buffer and, under
        ``always``, fsync it (one fsync for every write of the pass: group commit)."""
        aof = self.aof
        if aof is None:
            return
        if aof.pending:
            aof.write(_now_ms())
        if aof.policy == "always":
            aof.fsync_now()
        self.refresh_denial()

    def sync_now(self) -> None:
        """Write and fsync now (a closing client's reply must not leave unsynced)."""
        aof = self.aof
        if aof is not None:
            aof.write(_now_ms(), force=True)
            aof.fsync_now()

    def durable_mark(self) -> int | None:
        """Under ``always``: replies to writes past this mark must wait; else None."""
        aof = self.aof
        if aof is None or aof.policy != "always":
            return None
        return aof.fsynced_mark

    def refresh_denial(self) -> None:
        aof = self.aof
        if aof is None:
            gate = self.policy.write_gate()
        else:
            gate = self.policy.write_gate(aof.write_errno, aof.fsync_broken)
        if gate is not None:
            self.core.set_write_denied(None if isinstance(gate, AllowWrites) else gate.reason)

    # -- cron ------------------------------------------------------------------------------

    def cron(self, now_ms: int) -> None:
        if self.child is not None:
            self._watch_child(now_ms)
        aof = self.aof
        if aof is not None:
            if aof.pending or aof.write_errno:
                aof.write(now_ms)
            if aof.policy == "everysec":
                aof.everysec(now_ms)
            elif aof.policy == "always":
                aof.fsync_now()
            recovery = self.policy.recovery_due(now_ms, bool(aof.fsync_broken))
            if recovery is not None:
                self._start(recovery)
        if self.child is None:
            aof = self.aof
            size = aof.current_size if aof is not None else None
            work = self.policy.background_due(now_ms, self.core.dirty, size)
            if work is not None:
                self._start(work)
        self.refresh_denial()

    def _start(self, work: StartSnapshot | StartRewrite) -> None:
        """Carry out the policy's decision to start a child."""
        if work.notice is not None:
            self.log.notice(work.notice)
        if isinstance(work, StartSnapshot):
            self.start_bgsave()
        else:
            self.start_rewrite()

    def _watch_child(self, now_ms: int) -> None:
        child = self.child
        assert child is not None
        child.poll_progress()
        if self.policy.progress_log_due(now_ms, child.total):
            what = "Background saving" if child.kind == "save" else "Background AOF rewrite"
            self.log.notice(
                f"{what}: {child.done} of {child.total} keys "
                f"({100 * child.done // max(child.total, 1)}%)"
            )
        code = child.reap()
        if code is None:
            return
        self.child = None
        if code != 0:
            self._remove_temp(child, self._child_tmp)
        if self.policy.child_exited(code == 0, _now_ms()) == "save":
            self._save_done(code == 0)
        else:
            self._rewrite_done(code == 0)

    # -- snapshots ---------------------------------------------------------------------------

    def save(self) -> bool:
        """SAVE: write the snapshot in this process (clients wait)."""
        dirty = self.core.dirty
        try:
            self._write_snapshot(self.snapshot_path, None)
        except OSError as e:
            self.log.warning(f"Failed saving the DB: {e.strerror or e}")
            self.policy.foreground_saved(False, _now_ms(), dirty)
            self.refresh_denial()
            return False
        self.log.notice("DB saved on disk")
        self.policy.foreground_saved(True, _now_ms(), dirty)
        self.refresh_denial()
        return True

    def start_bgsave(self) -> str | None:
        """Fork a child that writes the snapshot; returns an error text or None."""
        if self.child is not None:
            return "busy"
        now = _now_ms()
        self.policy.snapshot_attempted(now)
        path = self.snapshot_path

        def work(progress: Progress) -> None:
            self._write_snapshot(path, progress)
            progress.report(1, 1, force=True)

        try:
            self.child = fork("save", work, now)
        except OSError as e:
            self.log.warning(f"Can't save in background: fork: {e.strerror}")
            self.policy.snapshot_fork_failed()
            return f"ERR Can't save in background: fork: {e.strerror}"
        self.policy.child_started("save", self.child.started_ms, self.core.dirty)
        self.core.count_fork(self.child.fork_usec)
        self.log.notice(f"Background saving started by pid {self.child.pid}")
        return None

    def _save_done(self, ok: bool) -> None:
        if ok:
            self.log.notice("Background saving terminated with success")
        else:
            self.log.warning("Background saving error")
        self.refresh_denial()

    # -- the AOF -------------------------------------------------------------------------------

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
            self.aof.policy = new
            if new == "always":
                self.aof.write(_now_ms(), force=True)
                self.aof.fsync_now()

    def start_rewrite(self) -> str | None:
        """BGREWRITEAOF now: a new incremental file takes the writes from this instant,
        and a child writes the dataset as of this instant as the new base."""
        if self.child is not None:
            return "busy"
        if self.aof is None:
            return self._rewrite_without_aof()
        if self.aof_state == "wait_rewrite":
            return self._restart_aof_creation()
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
                if aof.fsync_broken or self.aof_state == "wait_rewrite":
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

    def debug_reload(self, save: bool, flush: bool) -> bool:
        """DEBUG RELOAD: save the snapshot (unless NOSAVE), flush (unless NOFLUSH or
        MERGE), load the snapshot back in this process."""
        from .loading import Loader, LoadFailure

        if save and not self.save():
            return False
        if flush:
            for db in self.core.dbs:
                db.clear()
        loader = Loader(self)
        try:
            for _ in loader.load_snapshot(self.snapshot_path):
                pass
        except (LoadFailure, OSError) as e:
            self.log.warning(f"DEBUG RELOAD failed: {e}")
            return False
        self.log.notice("DB reloaded by DEBUG RELOAD")
        return True

    # -- shutdown --------------------------------------------------------------------------

    def prepare_shutdown(self, mode: str) -> bool:
        """Before exiting: stop the child, save the snapshot when save rules exist (or
        SHUTDOWN SAVE), then write, fsync and close the AOF. False when the save failed:
        the server keeps running, with its AOF untouched (Redis does the same)."""
        if self.child is not None:
            self.log.warning("There is a child saving a snapshot or rewriting the AOF. Killing it!")
            self.child.kill()
            self._remove_temp(self.child, self._child_tmp)
            self.child = None
            self.policy.child_gone()
        if self.policy.shutdown_saves(mode):
            self.log.notice("Saving the final snapshot before exiting.")
            if not self.save():
                self.log.warning("Error trying to save the DB, can't exit.")
                return False
        if self.aof is not None:
            self.log.notice("Calling fsync() on the AOF file.")
            self.aof.close()
            self._save_aof_history(self.aof)
            self.aof = None
        return True

    # -- INFO persistence --------------------------------------------------------------------

    def info_fields(self) -> list[tuple[str, Any]]:
        c = self.child
        pol = self.policy
        now = _now_ms()
        saving = c is not None and c.kind == "save"
        rewriting = c is not None and c.kind == "rewrite"
        aof = self.aof
        fields: list[tuple[str, Any]] = [
            ("current_save_keys_processed", c.done if c else 0),
            ("current_save_keys_total", c.total if c else 0),
            ("rdb_changes_since_last_save", pol.changes_since_save(self.core.dirty)),
            ("rdb_bgsave_in_progress", int(saving)),
            ("rdb_last_save_time", pol.lastsave_s),
            ("rdb_last_bgsave_status", "ok" if pol.bgsave_ok else "err"),
            ("rdb_last_bgsave_time_sec", pol.last_bgsave_time_s),
            ("rdb_current_bgsave_time_sec", pol.current_child_time_s("save", now)),
            ("rdb_saves", pol.rdb_saves),
            ("rdb_last_cow_size", 0),
            ("rdb_last_load_keys_expired", self.last_load_expired),
            ("rdb_last_load_keys_loaded", self.last_load_keys),
            ("aof_enabled", int(self.aof_state != "off")),
            ("aof_rewrite_in_progress", int(rewriting)),
            ("aof_rewrite_scheduled", int(pol.rewrite_scheduled)),
            ("aof_last_rewrite_time_sec", pol.last_rewrite_time_s),
            ("aof_current_rewrite_time_sec", pol.current_child_time_s("rewrite", now)),
            ("aof_last_bgrewrite_status", "ok" if pol.rewrite_ok else "err"),
            ("aof_rewrites", pol.rewrites),
            ("aof_rewrites_consecutive_failures", pol.rewrite_failures),
            ("aof_last_write_status", "err" if aof and aof.write_errno else "ok"),
            ("aof_last_cow_size", 0),
            ("module_fork_in_progress", 0),
            ("module_fork_last_cow_size", 0),
        ]
        if aof is not None:
            fields += [
                ("aof_current_size", aof.current_size),
                ("aof_base_size", aof.base_size),
                ("aof_pending_rewrite", int(pol.rewrite_scheduled)),
                ("aof_buffer_length", aof.buf_bytes),
                ("aof_pending_bio_fsync", int(aof.fsync_in_progress)),
                ("aof_delayed_fsync", aof.delayed_fsync),
                # ackdb: replication-offset marks (WAITAOF counts on the fsynced one).
                ("aof_written_offset", aof.written_mark),
                ("aof_fsynced_offset", aof.fsynced_mark),
                ("aof_last_fsync_status", "err" if aof.fsync_broken else "ok"),
            ]
        return fields
