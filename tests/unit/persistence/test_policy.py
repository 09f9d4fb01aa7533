"""The persistence policy core: one test per rule, each with its source.

The policy is pure (tests/unit/test_layering.py keeps it sans-IO): every test drives
it with ``now_ms``, dirty counters, sizes and children's ends, and reads its actions and
answers; no process, file or clock.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ackdb.persistence.policy import (
    ALLOW_WRITES,
    AOF_RECOVERY_RETRY_MS,
    BGSAVE_RETRY_DELAY_MS,
    CHILD_LOG_INTERVAL_MS,
    MISCONF_BGSAVE,
    AllowWrites,
    DenyWrites,
    PersistencePolicy,
    PolicySettings,
    StartRewrite,
    StartSnapshot,
)
from ackdb.persistence.rules import rewrite_growth_pct, save_rule_due

T0 = 1_700_000_000_000  # ms; a whole second
REDIS_DEFAULT_SAVE = ((3600, 1), (300, 100), (60, 10000))


def policy(
    save: tuple[tuple[int, int], ...] = REDIS_DEFAULT_SAVE,
    stop_writes: bool = True,
    percentage: int = 100,
    min_size: int = 64 << 20,
) -> PersistencePolicy:
    p = PersistencePolicy(T0, strerror=lambda code: f"errno {code}")
    p.configure(PolicySettings(save, stop_writes, percentage, min_size))
    return p


# -- save rules -----------------------------------------------------------------------------


def test_save_rule_needs_both_its_changes_and_its_seconds() -> None:
    # Redis redis.conf "save <seconds> <changes>": save if both are reached.
    p = policy(save=((60, 10),))
    assert p.background_due(T0 + 59_999, 10, None) is None  # 59 s
    assert p.background_due(T0 + 60_000, 9, None) is None  # 9 changes
    assert p.background_due(T0 + 60_000, 10, None) == StartSnapshot(
        "save-rule", "10 changes in 60 seconds. Saving..."
    )


def test_the_first_rule_met_names_the_save() -> None:
    # Redis serverCron: the rules are checked in order, the first met starts the BGSAVE.
    p = policy()
    a = p.background_due(T0 + 3600_000, 20_000, None)
    assert a == StartSnapshot("save-rule", "1 changes in 3600 seconds. Saving...")


def test_no_save_rules_never_save() -> None:
    # Redis redis.conf: `save ""` disables snapshotting.
    p = policy(save=())
    assert p.background_due(T0 + 10**9, 10**9, None) is None


def test_seconds_count_from_the_last_successful_save() -> None:
    # Redis serverCron: server.unixtime - server.lastsave > seconds.
    p = policy(save=((10, 1),))
    p.snapshot_attempted(T0 + 20_000)
    p.child_started("save", T0 + 20_000, 5)
    assert p.child_exited(True, T0 + 21_000) == "save"
    assert p.lastsave_s == (T0 + 21_000) // 1000
    assert p.background_due(T0 + 30_000, 6, None) is None
    assert p.background_due(T0 + 31_000, 6, None) is not None


def test_changes_count_from_the_dirty_counter_when_the_child_forked() -> None:
    # Redis rdbSaveBackground: dirty_before_bgsave; writes made while the child runs are
    # not in the snapshot and still count as changes.
    p = policy(save=((1, 1),))
    p.child_started("save", T0, 100)
    p.child_exited(True, T0 + 5_000)
    assert p.changes_since_save(130) == 30
    assert p.rdb_saves == 1 and p.bgsave_ok


def test_failed_bgsave_is_retried_after_the_retry_delay() -> None:
    # Redis serverCron bgsave retry: CONFIG_BGSAVE_RETRY_DELAY (5 s) after the last try.
    p = policy(save=((1, 1),))
    p.snapshot_attempted(T0 + 10_000)
    p.child_started("save", T0 + 10_000, 1)
    p.child_exited(False, T0 + 11_000)
    assert not p.bgsave_ok
    assert p.background_due(T0 + 10_000 + BGSAVE_RETRY_DELAY_MS - 1, 50, None) is None
    assert p.background_due(T0 + 10_000 + BGSAVE_RETRY_DELAY_MS, 50, None) is not None


def test_fork_failure_counts_as_a_failed_bgsave() -> None:
    # Redis rdbSaveBackground: a failed fork sets lastbgsave_status to C_ERR.
    p = policy()
    p.snapshot_attempted(T0)
    p.snapshot_fork_failed()
    assert not p.bgsave_ok


def test_foreground_save_records_the_dirty_counter_at_its_start() -> None:
    # Redis rdbSave: server.dirty = 0 and lastsave = now on success; failure: status err.
    p = policy()
    p.foreground_saved(True, T0 + 7_000, 42)
    assert (p.lastsave_s, p.changes_since_save(50), p.rdb_saves) == ((T0 + 7_000) // 1000, 8, 1)
    p.foreground_saved(False, T0 + 9_000, 50)
    assert not p.bgsave_ok and p.lastsave_s == (T0 + 7_000) // 1000


@given(
    rules=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), max_size=5).map(
        tuple
    ),
    changes=st.integers(0, 20_000),
    elapsed_s=st.integers(0, 20_000),
    retry=st.booleans(),
)
def test_save_rule_matching_against_a_naive_reference(
    rules: tuple[tuple[int, int], ...], changes: int, elapsed_s: int, retry: bool
) -> None:
    # Redis serverCron "save" loop, written out as plainly as possible.
    expected = None
    if retry:
        met = [r for r in rules if changes >= r[1] and elapsed_s >= r[0]]
        expected = met[0] if met else None
    assert save_rule_due(rules, changes, elapsed_s, retry) == expected


@given(
    lastsave_ms=st.integers(0, 10**6),
    now_ms=st.integers(0, 2 * 10**6),
    dirty=st.integers(0, 1000),
    seconds=st.integers(0, 2000),
    needed=st.integers(0, 1000),
)
def test_policy_save_decision_against_a_naive_reference(
    lastsave_ms: int, now_ms: int, dirty: int, seconds: int, needed: int
) -> None:
    # Redis redis.conf "save": whole seconds since the last save, changes since it.
    p = PersistencePolicy(lastsave_ms)
    p.configure(PolicySettings(save_rules=((seconds, needed),)))
    due = p.background_due(now_ms, dirty, None)
    naive = dirty >= needed and (now_ms // 1000 - lastsave_ms // 1000) >= seconds
    assert (due is not None) == naive


# -- automatic AOF rewrites ---------------------------------------------------------------------


def test_auto_rewrite_on_growth_over_the_last_rewrite() -> None:
    # Redis redis.conf "auto-aof-rewrite-percentage 100": rewrite when the AOF doubled.
    p = policy(save=(), min_size=1000)
    p.aof_opened(1000)
    assert p.background_due(T0, 0, 1999) is None
    assert p.background_due(T0, 0, 2000) == StartRewrite(
        "auto", "Starting automatic rewriting of AOF on 100% growth"
    )


def test_auto_rewrite_not_below_the_min_size() -> None:
    # Redis redis.conf "auto-aof-rewrite-min-size".
    p = policy(save=(), min_size=64 << 20)
    p.aof_opened(1)
    assert p.background_due(T0, 0, (64 << 20) - 1) is None
    assert p.background_due(T0, 0, 64 << 20) is not None


def test_auto_rewrite_disabled_by_zero_percentage() -> None:
    # Redis redis.conf: "Specify a percentage of zero in order to disable".
    p = policy(save=(), percentage=0, min_size=0)
    p.aof_opened(1)
    assert p.background_due(T0, 0, 10**12) is None


def test_no_auto_rewrite_while_the_aof_waits_for_its_base() -> None:
    # Redis serverCron: only with aof_state == AOF_ON.
    p = policy(save=(), min_size=0)
    p.aof_opened(1)
    p.aof_waits_for_base()
    assert p.background_due(T0, 0, 10**9) is None


def test_a_rewrite_sets_the_base_of_the_next() -> None:
    # Redis backgroundRewriteDoneHandler: aof_rewrite_base_size = the new size.
    p = policy(save=(), min_size=0)
    p.aof_opened(100)
    p.child_started("rewrite", T0, 0)
    p.child_exited(True, T0 + 3000)
    p.rewrite_finished(True, 500)
    assert (p.rewrite_base_size, p.rewrites, p.last_rewrite_time_s) == (500, 1, 3)
    assert p.background_due(T0, 0, 999) is None
    assert p.background_due(T0, 0, 1000) is not None


@given(
    size=st.integers(0, 10**7),
    base=st.integers(0, 10**7),
    perc=st.integers(0, 1000),
    min_size=st.integers(0, 10**7),
)
def test_growth_against_a_naive_reference(size: int, base: int, perc: int, min_size: int) -> None:
    # Redis serverCron: growth = (current - base) * 100 / base, base 1 when unknown.
    b = base if base else 1
    growth = (size - b) * 100 // b
    expected = growth if perc and size >= min_size and growth >= perc else None
    assert rewrite_growth_pct(size, base, perc, min_size) == expected


def test_failed_rewrite_counts_consecutive_failures() -> None:
    # Redis INFO aof_rewrites_consecutive_failures / aof_last_bgrewrite_status.
    p = policy()
    p.rewrite_finished(False, None)
    p.rewrite_finished(False, None)
    assert (p.rewrite_ok, p.rewrite_failures) == (False, 2)
    p.rewrite_finished(True, None)  # the AOF is off: its state stays
    assert (p.rewrite_ok, p.rewrite_failures, p.rewrites, p.aof_state) == (True, 0, 1, "off")


# -- scheduling -------------------------------------------------------------------------------------


def test_nothing_starts_while_a_child_runs() -> None:
    # Redis serverCron: hasActiveChildProcess() gates every background start.
    p = policy(save=((0, 0),))
    p.child_started("rewrite", T0, 0)
    p.bgsave_scheduled = True
    assert p.background_due(T0 + 10**6, 10**6, None) is None
    assert p.recovery_due(T0 + 10**6, True) is None


def test_scheduled_bgsave_runs_before_a_scheduled_rewrite_then_the_rewrite() -> None:
    # Redis BGSAVE SCHEDULE (rdb_bgsave_scheduled) and BGREWRITEAOF during a child
    # (aof_rewrite_scheduled): serverCron starts the scheduled save first.
    p = policy(save=((0, 0),))
    p.bgsave_scheduled = p.rewrite_scheduled = True
    assert p.background_due(T0, 0, None) == StartSnapshot("scheduled")
    assert not p.bgsave_scheduled
    assert p.background_due(T0, 0, None) == StartRewrite("scheduled")
    assert not p.rewrite_scheduled


def test_scheduled_work_comes_before_the_save_rules() -> None:
    # Redis serverCron: a scheduled rewrite is started before the save points are checked.
    p = policy(save=((0, 0),))
    p.rewrite_scheduled = True
    assert p.background_due(T0, 10, None) == StartRewrite("scheduled")


def test_bgsave_requests() -> None:
    # Redis bgsaveCommand: "Background save already in progress"; during a rewrite,
    # SCHEDULE schedules it, else "Another child process is active".
    p = policy()
    assert p.bgsave_request(schedule=False) == "start"
    p.child_started("rewrite", T0, 0)
    assert p.bgsave_request(schedule=False) == "busy" and not p.bgsave_scheduled
    assert p.bgsave_request(schedule=True) == "scheduled" and p.bgsave_scheduled
    p.child_gone()
    p.child_started("save", T0, 0)
    assert p.bgsave_request(schedule=True) == "in-progress"
    assert not p.save_allowed()


def test_rewrite_requests() -> None:
    # Redis bgrewriteaofCommand: refused during a rewrite, scheduled during a BGSAVE.
    p = policy()
    assert p.rewrite_request() == "start"
    p.child_started("save", T0, 0)
    assert p.rewrite_request() == "scheduled" and p.rewrite_scheduled
    assert p.save_allowed() is False
    p.child_gone()
    p.child_started("rewrite", T0, 0)
    assert p.rewrite_request() == "in-progress"
    assert p.save_allowed()


def test_one_child_at_a_time() -> None:
    p = policy()
    p.child_started("save", T0, 0)
    with pytest.raises(AssertionError):
        p.child_started("rewrite", T0, 0)
    p.child_gone()
    p.child_started("rewrite", T0, 0)
    assert p.child == "rewrite"


def test_current_child_time_only_for_its_kind() -> None:
    # Redis INFO rdb_current_bgsave_time_sec / aof_current_rewrite_time_sec: -1 if none.
    p = policy()
    p.child_started("save", T0, 0)
    assert p.current_child_time_s("save", T0 + 2_500) == 2
    assert p.current_child_time_s("rewrite", T0 + 2_500) == -1


def test_progress_is_logged_every_interval_once_a_total_is_known() -> None:
    p = policy()
    p.child_started("save", T0, 0)
    assert not p.progress_log_due(T0 + 10_000, 0)
    assert p.progress_log_due(T0 + 10_000, 5)
    assert not p.progress_log_due(T0 + 10_000 + CHILD_LOG_INTERVAL_MS - 1, 5)
    assert p.progress_log_due(T0 + 10_000 + CHILD_LOG_INTERVAL_MS, 5)


# -- recovery rewrites ---------------------------------------------------------------------------------


def test_failed_fsync_triggers_a_rewrite_retried_every_second() -> None:
    # ackdb (docs/persistence.md): after a failed fsync only a rewrite makes the AOF
    # trustworthy again; Redis retries failed AOF work from serverCron too.
    p = policy()
    p.aof_opened(0)
    a = p.recovery_due(T0, True)
    assert a == StartRewrite("fsync-recovery", "Rewriting the AOF to recover from the failed fsync")
    assert p.recovery_due(T0 + AOF_RECOVERY_RETRY_MS - 1, True) is None
    assert p.recovery_due(T0 + AOF_RECOVERY_RETRY_MS, True) is not None
    assert p.recovery_due(T0 + 10 * AOF_RECOVERY_RETRY_MS, False) is None


def test_aof_creation_is_retried_until_a_rewrite_succeeds() -> None:
    # Redis: a failed rewrite while turning the AOF on is rescheduled (serverCron,
    # aof_rewrite_scheduled after a failure in AOF_WAIT_REWRITE).
    p = policy()
    p.aof_opened(0)
    p.aof_waits_for_base()
    assert p.recovery_due(T0, False) == StartRewrite(
        "aof-creation", "Retrying the AOF rewrite that turns the AOF on"
    )
    p.rewrite_finished(True, 10)
    assert p.aof_state == "on"
    assert p.recovery_due(T0 + 10**6, False) is None


def test_rewrite_plans_follow_the_aof_state() -> None:
    # Redis rewriteAppendOnlyFileBackground: a new incremental file opens at the start;
    # BGREWRITEAOF with the AOF off writes a fresh AOF; ackdb restarts a creation that
    # has no base yet instead of listing incremental files without one.
    p = policy()
    assert p.rewrite_plan(aof_open=False) == "detached"
    p.aof_opened(0)
    assert p.rewrite_plan(aof_open=True) == "switch"
    assert not p.rewrite_recovers(fsync_broken=False)
    assert p.rewrite_recovers(fsync_broken=True)
    p.aof_waits_for_base()
    assert p.rewrite_plan(aof_open=True) == "recreate"
    assert p.rewrite_recovers(fsync_broken=False)


# -- refusing writes ----------------------------------------------------------------------------------


def test_failed_bgsave_denies_writes_with_save_rules_and_stop_writes() -> None:
    # Redis redis.conf "stop-writes-on-bgsave-error yes" (writeCommandsDeniedByDiskError).
    p = policy()
    assert p.write_gate() is None  # allowed from the start: no change
    p.snapshot_fork_failed()
    assert p.write_gate() == DenyWrites(MISCONF_BGSAVE)
    assert p.write_gate() is None  # reported once
    p.foreground_saved(True, T0, 0)
    assert p.write_gate() == ALLOW_WRITES


@pytest.mark.parametrize("save,stop", [((), True), (REDIS_DEFAULT_SAVE, False)])
def test_failed_bgsave_allows_writes_without_rules_or_stop_writes(
    save: tuple[tuple[int, int], ...], stop: bool
) -> None:
    # Redis writeCommandsDeniedByDiskError: needs stop_writes_on_bgsave_err and saveparams.
    p = policy(save=save, stop_writes=stop)
    p.snapshot_fork_failed()
    assert p.write_gate() is None


def test_aof_errors_deny_writes_first_write_then_fsync() -> None:
    # Redis writeCommandsDeniedByDiskError: aof_last_write_status is C_ERR (a failed
    # write; ackdb also a failed fsync) -> "-MISCONF Errors writing to the AOF file: ...".
    p = policy()
    assert p.write_gate(28, 5) == DenyWrites("MISCONF Errors writing to the AOF file: errno 28")
    assert p.write_gate(0, 5) == DenyWrites("MISCONF Errors writing to the AOF file: errno 5")
    p.snapshot_fork_failed()
    assert p.write_gate(0, 5) is None  # the AOF's error still comes first
    assert p.write_gate() == DenyWrites(MISCONF_BGSAVE)
    p.configure(PolicySettings(save_rules=()))  # CONFIG SET save ""
    assert isinstance(p.write_gate(), AllowWrites)


def test_shutdown_saves_with_rules_or_when_asked() -> None:
    # Redis SHUTDOWN: SAVE forces a save, NOSAVE prevents it, default saves with rules.
    assert policy().shutdown_saves("default")
    assert not policy(save=()).shutdown_saves("default")
    assert policy(save=()).shutdown_saves("save")
    assert not policy().shutdown_saves("nosave")
