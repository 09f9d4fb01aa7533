"""Persistence in a running server: SAVE / BGSAVE, children, disk errors, INFO.

The shell around ``persistence.policy.PersistencePolicy`` (``self.policy``), which
decides when to save (``save`` rules, BGSAVE SCHEDULE, the retry after a failure), when
to rewrite the AOF (automatic, scheduled, recovery), and when to refuse writes
(MISCONF). This module feeds it ``now_ms`` (on the cron tick), the dirty counter, the
AOF's size and errors, children's ends and configuration, and carries out what it
decides: it forks and watches the children, saves, logs, refuses or allows writes, and
prepares shutdown. Start-up loading lives in ``server.loading``.

Layers (one object, three modules of under 400 lines): ``server.persist_files`` (paths,
snapshot writing, manifest and history files) <- ``server.persist_aof`` (the AOF's write
path, turning it on and off, rewrites; its fsync accounting is ``persistence.fsync``)
<- this module."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, assert_never

from ..engine import ports
from ..persistence import manifest as mf
from ..persistence.aof import AofWriter
from ..persistence.child import Child, Progress, fork
from ..persistence.files import DiskFaults
from ..persistence.policy import (
    AllowWrites,
    DenyWrites,
    PersistencePolicy,
    PolicySettings,
    Request,
    StartRewrite,
    StartSnapshot,
)
from .persist_aof import AofLife

# The settings the policy reads; a change of one reconfigures it.
_POLICY_SETTINGS = (
    "save",
    "stop-writes-on-bgsave-error",
    "auto-aof-rewrite-percentage",
    "auto-aof-rewrite-min-size",
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Persistence(AofLife):
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
        # (db index, key) of each key a primary dropped at start-up because its time had
        # passed: the replication stream tells replicas (node.py, once replication exists).
        self.expired_at_load: list[tuple[int, bytes]] = []
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

    # -- what the commands ask (the engine's Persistence port) -------------------------

    @property
    def lastsave_s(self) -> int:
        """LASTSAVE."""
        return self.policy.lastsave_s

    def save_allowed(self) -> bool:
        """SAVE: not while a BGSAVE runs."""
        return self.policy.save_allowed()

    def bgsave_request(self, schedule: bool) -> Request:
        """BGSAVE [SCHEDULE]: start, scheduled, in-progress or busy (the policy's)."""
        return self.policy.bgsave_request(schedule)

    def rewrite_request(self) -> Request:
        """BGREWRITEAOF: start, scheduled or in-progress (the policy's)."""
        return self.policy.rewrite_request()

    # -- refusing writes -------------------------------------------------------------------

    def refresh_denial(self) -> None:
        aof = self.aof
        if aof is None:
            gate = self.policy.write_gate()
        else:
            gate = self.policy.write_gate(aof.write_errno, aof.fsync_broken)
        match gate:
            case None:
                pass
            case DenyWrites(reason=reason):
                self.core.set_write_denied(reason)
            case AllowWrites():
                self.core.set_write_denied(None)
            case _:
                assert_never(gate)

    # -- cron ------------------------------------------------------------------------------

    def cron(self, now_ms: int) -> None:
        if self.child is not None:
            self._watch_child(now_ms)
        aof = self.aof
        if aof is not None:
            aof.tick(now_ms)
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
        match work:
            case StartSnapshot():
                self.start_bgsave()
            case StartRewrite():
                self.start_rewrite()
            case _:
                assert_never(work)

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
            for _ in loader.load_snapshot(
                self.snapshot_path, as_primary=not self.core.role_replica
            ):
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


if TYPE_CHECKING:

    def _conforms(p: Persistence) -> ports.Persistence:
        """mypy --strict proves the shell provides the engine's Persistence port."""
        return p
