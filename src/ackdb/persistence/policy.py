"""The persistence policy: when to save, when to rewrite the AOF, when to refuse writes.

Owns every decision the server's persistence takes that is not I/O:

- the ``save`` rules (``save 3600 1 300 100``: save when at least N changes happened in
  S seconds) and the retry delay after a failed BGSAVE;
- automatic AOF rewrites (``auto-aof-rewrite-percentage`` / ``-min-size``);
- work scheduled while a child runs (BGSAVE SCHEDULE, a rewrite asked during a BGSAVE)
  and its priority once the child is gone;
- the retries of a rewrite that recovers from a failed fsync or creates the AOF;
- refusing writes (MISCONF) while the AOF cannot be written or fsynced, or after a
  failed BGSAVE under ``stop-writes-on-bgsave-error``, and allowing them again;
- the counters INFO persistence shows (last save, statuses, durations, rewrites).

Inputs: ``now_ms``, the dirty counter, the AOF's size and error state, the start, end
and failure of children, configuration (``configure``). Outputs: frozen actions
(``StartSnapshot``, ``StartRewrite``, ``DenyWrites`` / ``AllowWrites``) and answers.

Must never: touch files, processes, clocks, threads or the event loop; the shell
(``server.persist``) forks, writes, logs and carries out the actions. The AOF's fsync
accounting is its own core (``persistence.fsync``).

States: the child is ``None``, ``"save"`` or ``"rewrite"`` (one at a time); the AOF is
``off``, ``on``, or ``wait_rewrite`` (being turned on: its base is being written).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .rules import rewrite_growth_pct, save_rule_due

# Redis CONFIG_BGSAVE_RETRY_DELAY: after a failed BGSAVE the save rules try again only
# after this long (ms).
BGSAVE_RETRY_DELAY_MS = 5000
# After a failed AOF fsync (or a failed rewrite that turns the AOF on), how often a
# rewrite is tried again (ms).
AOF_RECOVERY_RETRY_MS = 1000
# How often a running child's progress is logged (ms).
CHILD_LOG_INTERVAL_MS = 2000

MISCONF_BGSAVE = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist "
    "to disk. Commands that may modify the data set are disabled, because this instance is "
    "configured to report errors during writes if RDB snapshotting fails "
    "(stop-writes-on-bgsave-error option). Please check the Redis logs for details about "
    "the RDB error."
)

ChildKind = Literal["save", "rewrite"]
# What BGSAVE / BGREWRITEAOF do now: start the child, schedule it for when the running
# child is gone, or refuse (the same kind is running; BGSAVE without SCHEDULE: another).
Request = Literal["start", "scheduled", "in-progress", "busy"]
# How a rewrite starts: a fresh AOF beside a closed one (``detached``), the creation of
# an AOF still without a base started over (``recreate``), or a switch to a new
# incremental file of the open AOF (``switch``).
RewritePlan = Literal["detached", "recreate", "switch"]
AofState = Literal["off", "on", "wait_rewrite"]
SaveRule = tuple[int, int]  # (seconds, changes)


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The configuration the policy reads (``save``, ``stop-writes-on-bgsave-error``,
    ``auto-aof-rewrite-percentage``, ``auto-aof-rewrite-min-size``)."""

    save_rules: tuple[SaveRule, ...] = ()
    stop_writes_on_bgsave_error: bool = True
    rewrite_percentage: int = 100
    rewrite_min_size: int = 64 << 20


@dataclass(frozen=True, slots=True)
class StartSnapshot:
    """Fork a BGSAVE. ``reason``: ``scheduled`` or ``save-rule``; ``notice``: the line
    to log first, if any."""

    reason: str
    notice: str | None = None


@dataclass(frozen=True, slots=True)
class StartRewrite:
    """Start an AOF rewrite. ``reason``: ``scheduled``, ``auto``, ``fsync-recovery`` or
    ``aof-creation``; ``notice``: the line to log first, if any."""

    reason: str
    notice: str | None = None


@dataclass(frozen=True, slots=True)
class DenyWrites:
    """Refuse commands that write, with this error."""

    reason: str


@dataclass(frozen=True, slots=True)
class AllowWrites:
    """Writes are allowed again."""


Background = StartSnapshot | StartRewrite
WriteGate = DenyWrites | AllowWrites
ALLOW_WRITES = AllowWrites()


class PersistencePolicy:
    """The state and decisions of persistence in one server (see the module docstring)."""

    def __init__(self, now_ms: int, strerror: Callable[[int], str] = str) -> None:
        self.settings = PolicySettings()
        self._strerror = strerror  # errno -> text, for MISCONF (the shell injects it)
        # snapshots
        self.lastsave_s = now_ms // 1000
        self.dirty_at_last_save = 0
        self.bgsave_ok = True
        self.last_bgsave_try_ms = 0
        self.last_bgsave_time_s = -1
        self.rdb_saves = 0
        self.bgsave_scheduled = False
        # the child
        self.child: ChildKind | None = None
        self.child_started_ms = 0
        self._child_dirty = 0
        self._child_logged_ms = 0
        # the AOF
        self.aof_state: AofState = "off"
        self.rewrite_scheduled = False
        self.rewrite_ok = True
        self.rewrites = 0
        self.rewrite_failures = 0
        self.last_rewrite_time_s = -1
        self.rewrite_base_size = 0
        self._recovery_try_ms = 0
        # writes
        self.deny_reason: str | None = None

    def configure(self, settings: PolicySettings) -> None:
        self.settings = settings

    # -- what to start ----------------------------------------------------------------------

    def recovery_due(self, now_ms: int, fsync_broken: bool) -> StartRewrite | None:
        """With the AOF open and no child: a rewrite that repairs a failed fsync, or that
        retries turning the AOF on (until one succeeds there is no AOF on disk; Redis
        reschedules it too), at most once per ``AOF_RECOVERY_RETRY_MS``."""
        if self.child is not None or now_ms - self._recovery_try_ms < AOF_RECOVERY_RETRY_MS:
            return None
        if fsync_broken:
            self._recovery_try_ms = now_ms
            return StartRewrite(
                "fsync-recovery", "Rewriting the AOF to recover from the failed fsync"
            )
        if self.aof_state == "wait_rewrite":
            self._recovery_try_ms = now_ms
            return StartRewrite("aof-creation", "Retrying the AOF rewrite that turns the AOF on")
        return None

    def background_due(self, now_ms: int, dirty: int, aof_size: int | None) -> Background | None:
        """With no child: what to start now, in Redis serverCron's order -- a scheduled
        BGSAVE, a scheduled rewrite, a save rule, an automatic rewrite. ``aof_size`` is
        the AOF's current size, None without an AOF."""
        if self.child is not None:
            return None
        if self.bgsave_scheduled:
            self.bgsave_scheduled = False
            return StartSnapshot("scheduled")
        if self.rewrite_scheduled:
            self.rewrite_scheduled = False
            return StartRewrite("scheduled")
        s = self.settings
        rule = save_rule_due(
            s.save_rules,
            dirty - self.dirty_at_last_save,
            now_ms // 1000 - self.lastsave_s,
            self.bgsave_ok or now_ms - self.last_bgsave_try_ms >= BGSAVE_RETRY_DELAY_MS,
        )
        if rule is not None:
            seconds, needed = rule
            return StartSnapshot("save-rule", f"{needed} changes in {seconds} seconds. Saving...")
        if aof_size is not None and self.aof_state == "on":
            growth = rewrite_growth_pct(
                aof_size, self.rewrite_base_size, s.rewrite_percentage, s.rewrite_min_size
            )
            if growth is not None:
                return StartRewrite(
                    "auto", f"Starting automatic rewriting of AOF on {growth}% growth"
                )
        return None

    def progress_log_due(self, now_ms: int, total: int) -> bool:
        """Whether to log the running child's progress now (every CHILD_LOG_INTERVAL_MS
        once it reported a total)."""
        if total and now_ms - self._child_logged_ms >= CHILD_LOG_INTERVAL_MS:
            self._child_logged_ms = now_ms
            return True
        return False

    # -- commands --------------------------------------------------------------------------------

    def bgsave_request(self, schedule: bool) -> Request:
        """BGSAVE [SCHEDULE] (Redis bgsaveCommand): refused while a BGSAVE runs; while a
        rewrite runs, scheduled with SCHEDULE, else refused."""
        if self.child == "save":
            return "in-progress"
        if self.child is not None:
            if not schedule:
                return "busy"
            self.bgsave_scheduled = True
            return "scheduled"
        return "start"

    def rewrite_request(self) -> Request:
        """BGREWRITEAOF (Redis bgrewriteaofCommand): refused while a rewrite runs;
        scheduled while a BGSAVE runs."""
        if self.child == "rewrite":
            return "in-progress"
        if self.child is not None:
            self.rewrite_scheduled = True
            return "scheduled"
        return "start"

    def save_allowed(self) -> bool:
        """SAVE (Redis saveCommand): not while a BGSAVE runs."""
        return self.child != "save"

    # -- children ------------------------------------------------------------------------------

    def snapshot_attempted(self, now_ms: int) -> None:
        """A BGSAVE is about to fork (the retry delay counts from here)."""
        self.last_bgsave_try_ms = now_ms

    def snapshot_fork_failed(self) -> None:
        self.bgsave_ok = False

    def rewrite_fork_failed(self) -> None:
        self.rewrite_ok = False

    def child_started(self, kind: ChildKind, now_ms: int, dirty: int) -> None:
        assert self.child is None, "one child at a time"
        self.child = kind
        self.child_started_ms = now_ms
        if kind == "save":
            self._child_dirty = dirty  # the changes the snapshot will hold

    def child_gone(self) -> None:
        """The child was killed (shutdown, AOF turned off): nothing of it counts."""
        self.child = None

    def child_exited(self, ok: bool, now_ms: int) -> ChildKind:
        """The child ended (``ok``: exit status 0); returns its kind. A snapshot's end is
        recorded here; a rewrite's once the shell installed it (``rewrite_finished``)."""
        kind = self.child
        assert kind is not None
        self.child = None
        elapsed_s = (now_ms - self.child_started_ms) // 1000
        if kind == "save":
            self.last_bgsave_time_s = elapsed_s
            if ok:
                self._saved(now_ms, self._child_dirty)
            else:
                self.bgsave_ok = False
        else:
            self.last_rewrite_time_s = elapsed_s
        return kind

    def current_child_time_s(self, kind: ChildKind, now_ms: int) -> int:
        """INFO rdb_current_bgsave_time_sec / aof_current_rewrite_time_sec."""
        return (now_ms - self.child_started_ms) // 1000 if self.child == kind else -1

    # -- saves ---------------------------------------------------------------------------------

    def _saved(self, now_ms: int, dirty: int) -> None:
        self.lastsave_s = now_ms // 1000
        self.dirty_at_last_save = dirty
        self.bgsave_ok = True
        self.rdb_saves += 1

    def foreground_saved(self, ok: bool, now_ms: int, dirty_before: int) -> None:
        """SAVE (or a save at shutdown / DEBUG RELOAD) ended; ``dirty_before``: the
        dirty counter when it began."""
        if ok:
            self._saved(now_ms, dirty_before)
        else:
            self.bgsave_ok = False

    def changes_since_save(self, dirty: int) -> int:
        return dirty - self.dirty_at_last_save

    def shutdown_saves(self, mode: str) -> bool:
        """SHUTDOWN [SAVE|NOSAVE]: whether to save the final snapshot (Redis: with save
        rules configured, or when asked to)."""
        return mode == "save" or (mode != "nosave" and bool(self.settings.save_rules))

    # -- the AOF --------------------------------------------------------------------------------

    def aof_opened(self, size: int) -> None:
        """The AOF is on; its current size is the base of the next automatic rewrite."""
        self.aof_state = "on"
        self.rewrite_base_size = size

    def aof_waits_for_base(self) -> None:
        """The AOF is being turned on: a rewrite writes its base."""
        self.aof_state = "wait_rewrite"

    def aof_closed(self) -> None:
        self.aof_state = "off"

    def rewrite_plan(self, aof_open: bool) -> RewritePlan:
        """How to start a rewrite now. While the AOF is being turned on it has no base:
        switching files would list incremental files without a base in the manifest,
        which a restart would load as the whole dataset, so its creation starts over."""
        if not aof_open:
            return "detached"
        return "recreate" if self.aof_state == "wait_rewrite" else "switch"

    def rewrite_recovers(self, fsync_broken: bool) -> bool:
        """Whether a finished rewrite must also fsync the incremental file and forgive a
        failed fsync: it does when one failed, or when the rewrite wrote the first base
        of the AOF being turned on (its writes were not counted fsynced until now)."""
        return fsync_broken or self.aof_state == "wait_rewrite"

    def rewrite_finished(self, ok: bool, aof_size: int | None) -> None:
        """A rewrite ended: ``ok`` when its base was written and installed; ``aof_size``:
        the open AOF's size after the install (None: the AOF is off)."""
        if not ok:
            self.rewrite_ok = False
            self.rewrite_failures += 1
            return
        if aof_size is not None:
            self.aof_opened(aof_size)
        self.rewrite_ok = True
        self.rewrite_failures = 0
        self.rewrites += 1

    # -- writes -----------------------------------------------------------------------------------

    def write_gate(self, write_errno: int = 0, fsync_errno: int = 0) -> WriteGate | None:
        """Whether writes must be refused, when that changed (else None): the AOF's
        write error, else its failed fsync (both errnos, 0 for none), else a failed
        BGSAVE under ``stop-writes-on-bgsave-error`` with save rules (Redis
        writeCommandsDeniedByDiskError)."""
        reason = None
        aof_errno = write_errno or fsync_errno
        if aof_errno:
            reason = f"MISCONF Errors writing to the AOF file: {self._strerror(aof_errno)}"
        elif (
            not self.bgsave_ok
            and self.settings.stop_writes_on_bgsave_error
            and self.settings.save_rules
        ):
            reason = MISCONF_BGSAVE
        if reason == self.deny_reason:
            return None
        self.deny_reason = reason
        return ALLOW_WRITES if reason is None else DenyWrites(reason)
