"""The AOF's fsync accounting core: appendfsync policies, marks, errors."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ackdb.persistence.fsync import (
    EVERYSEC_INTERVAL_MS,
    FSYNC_NOW,
    FSYNC_POSTPONE_MAX_MS,
    POSTPONE,
    WRITE_DELAYED,
    WRITE_NOW,
    Fsync,
    FsyncAccounting,
)

T0 = 1_700_000_000_000


def written(policy: str, mark: int, nbytes: int) -> FsyncAccounting:
    a = FsyncAccounting(policy)
    a.mark = mark
    assert a.write_decision(T0, force=False) == WRITE_NOW
    a.on_written(nbytes)
    return a


def test_a_write_moves_the_written_mark_not_the_fsynced_one() -> None:
    a = written("always", 40, 30)
    assert (a.written_mark, a.aof_offset, a.fsynced_mark) == (40, 30, 0)
    assert a.fsync_needed


def test_always_fsync_covers_everything_written() -> None:
    # Redis redis.conf "appendfsync always": fsync after every write to the AOF.
    a = written("always", 40, 30)
    a.fsynced_all_written()
    assert (a.fsynced_mark, a.fsynced_offset, a.fsync_needed) == (40, 30, False)


def test_everysec_starts_one_background_fsync_a_second() -> None:
    # Redis redis.conf "appendfsync everysec": fsync once a second, in the background.
    a = written("everysec", 40, 30)
    assert a.everysec(T0) == (0, Fsync(40, 30))
    a.mark = 50
    a.on_written(10)
    assert a.everysec(T0 + 5000) == (0, None)  # one at a time
    a.background_fsync_finished(40, 30, 0)
    assert a.fsynced_mark == 40
    assert a.everysec(T0 + EVERYSEC_INTERVAL_MS - 1) == (0, None)
    assert a.everysec(T0 + EVERYSEC_INTERVAL_MS) == (0, Fsync(50, 40))


def test_everysec_with_nothing_new_starts_nothing() -> None:
    a = FsyncAccounting("everysec")
    assert a.everysec(T0) == (0, None)


def test_everysec_write_waits_for_a_slow_fsync_at_most_two_seconds() -> None:
    # Redis flushAppendOnlyFile: postpone while a background fsync runs, for up to 2 s,
    # then write anyway and count aof_delayed_fsync.
    a = written("everysec", 1, 1)
    a.everysec(T0)
    assert a.write_decision(T0 + 10, force=False) == POSTPONE
    assert a.write_decision(T0 + 10 + FSYNC_POSTPONE_MAX_MS - 1, force=False) == POSTPONE
    assert a.write_decision(T0 + 10 + FSYNC_POSTPONE_MAX_MS, force=False) == WRITE_DELAYED
    assert a.delayed_fsync == 1
    assert a.write_decision(T0 + 10 + FSYNC_POSTPONE_MAX_MS, force=True) == WRITE_NOW


def test_other_policies_never_postpone() -> None:
    for policy in ("always", "no"):
        a = FsyncAccounting(policy)
        a.fsync_in_progress = True
        assert a.write_decision(T0, force=False) == WRITE_NOW


def test_write_error_is_logged_once_and_cleared_by_a_good_write() -> None:
    # Redis: aof_last_write_status err until a write succeeds ("AOF write error looks
    # solved").
    a = FsyncAccounting("everysec")
    assert a.on_write_failed(28) is True
    assert a.on_write_failed(28) is False
    assert a.write_errno == 28
    assert a.on_written(5) is True and a.write_errno == 0
    assert a.on_write_failed(0) is True and a.write_errno == 5  # EIO when unknown


def test_failed_fsync_freezes_the_marks_until_recovered() -> None:
    # Linux "fsyncgate": after a failed fsync nothing written since may be on disk.
    a = written("always", 40, 30)
    assert a.on_fsync_failed(5) is True
    assert a.on_fsync_failed(5) is False
    a.fsynced_all_written()
    a.on_fsynced(100, 100)
    a.on_closed()
    assert (a.fsynced_mark, a.healthy) == (0, False)
    assert a.on_recovered() is True
    assert (a.fsynced_mark, a.fsynced_offset, a.fsync_broken) == (40, 30, 0)
    assert a.on_recovered() is False


def test_background_fsync_error_is_applied_by_the_next_tick() -> None:
    a = written("everysec", 40, 30)
    a.everysec(T0)
    a.background_fsync_finished(40, 30, 5)
    assert a.fsynced_mark == 0 and a.fsync_broken == 0  # the thread only reports
    broke, fsync = a.everysec(T0 + 10)
    assert (broke, a.fsync_broken, a.fsync_in_progress) == (5, 5, False)
    assert fsync is None


def test_follow_moves_every_mark() -> None:
    a = FsyncAccounting("no")
    a.follow(77)
    assert (a.mark, a.written_mark, a.fsynced_mark) == (77, 77, 77)


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100), st.booleans()), max_size=30))
def test_fsynced_marks_never_go_back(steps: list[tuple[int, int, bool]]) -> None:
    # WAITAOF counts on the fsynced mark: it only grows while the AOF is healthy.
    a = FsyncAccounting("everysec")
    last = (0, 0)
    for mark, offset, ok in steps:
        if ok:
            a.on_fsynced(mark, offset)
        else:
            a.background_fsync_finished(mark, offset, 0)
        now = (a.fsynced_mark, a.fsynced_offset)
        assert now[0] >= last[0] and now[1] >= last[1]
        assert now == (max(last[0], mark), max(last[1], offset))
        last = now


def test_each_policy_ticks_its_own_fsync() -> None:
    # Redis redis.conf appendfsync: always (in the loop), everysec (background), no.
    always, everysec, no = written("always", 9, 9), written("everysec", 9, 9), written("no", 9, 9)
    assert always.tick(T0) == (0, FSYNC_NOW)
    assert everysec.tick(T0) == (0, Fsync(9, 9))
    assert no.tick(T0) == (0, None)
    assert (always.durable_mark(), everysec.durable_mark()) == (0, None)
    assert always.fsync_before_replies and not everysec.fsync_before_replies


def test_switching_to_always_fsyncs_at_once() -> None:
    # CONFIG SET appendfsync always: from then on replies wait for the fsynced mark.
    a = FsyncAccounting("everysec")
    assert a.set_policy("always") is True
    assert a.set_policy("no") is False
    assert a.durable_mark() is None
