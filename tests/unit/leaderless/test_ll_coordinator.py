"""Per-request state machines of the coordinator (leaderless/coordinator.py)."""

from __future__ import annotations

import pytest

from ackdb.keyspace import lww
from ackdb.keyspace.lww import Record, Version
from ackdb.leaderless.coordinator import (
    ConflictError,
    Done,
    ReadRequest,
    RequestIds,
    ScanRequest,
    SendApply,
    SendRange,
    SendRead,
    StoreHint,
    WriteRequest,
)
from ackdb.leaderless.deletes import DeletionStrategy, conflict
from ackdb.leaderless.levels import Level

V1, V2 = Version(10, 0, 1), Version(20, 0, 2)
REC = lww.string_write(V1, b"a")


def _done(actions: list) -> Done | None:  # type: ignore[type-arg]
    found = [a for a in actions if isinstance(a, Done)]
    assert len(found) <= 1
    return found[0] if found else None


def test_write_sends_to_all_and_answers_at_quorum() -> None:
    w = WriteRequest(b"k", REC, (1, 2, 3), Level.QUORUM, deadline_ms=100)
    assert w.start() == [SendApply(r, b"k", REC) for r in (1, 2, 3)]
    assert w.on_ack(2) == []
    d = _done(w.on_ack(3))
    assert d is not None and d.error is None and d.receipt.answered == (2, 3)
    assert d.receipt.version == V1
    assert w.on_ack(3) == []  # duplicates ignored
    assert w.on_failure(1) == [StoreHint(1, b"k", REC)]  # late failure: a hint, no reply
    assert w.finished


def test_write_missing_its_level_says_how_many_applied_and_is_not_rolled_back() -> None:
    w = WriteRequest(b"k", REC, (1, 2, 3), Level.ALL, deadline_ms=100)
    w.start()
    w.on_ack(1)
    out = w.on_failure(2)
    assert out == [StoreHint(2, b"k", REC)]  # out of reach: the error waits for replica 3
    d = _done(w.on_ack(3))
    assert d is not None and d.error is not None
    text = d.error.text()
    assert "reached 2 of 3" in text and "3 required" in text and "not rolled back" in text
    assert w.on_ack(3) == []


def test_write_timeout_hints_the_silent_replicas() -> None:
    w = WriteRequest(b"k", REC, (1, 2, 3), Level.QUORUM, deadline_ms=100)
    w.start()
    w.on_ack(1)
    assert w.tick(99) == []
    out = w.tick(100)
    assert [a for a in out if isinstance(a, StoreHint)] == [
        StoreHint(2, b"k", REC),
        StoreHint(3, b"k", REC),
    ]
    d = _done(out)
    assert d is not None and d.error is not None and d.error.reached == 1


def test_read_one_full_plus_digests_agreeing() -> None:
    r = ReadRequest(b"k", (1, 2, 3), Level.QUORUM, deadline_ms=100)
    assert r.start() == [SendRead(1, b"k", True), SendRead(2, b"k", False)]
    assert r.on_digest(2, lww.digest(REC)) == []
    d = _done(r.on_record(1, REC))
    assert d is not None and d.record == REC and d.receipt.repaired == ()
    assert d.receipt.answered == (1, 2)


def test_read_repairs_stale_participant_before_replying() -> None:
    newer = lww.string_write(V2, b"b")
    r = ReadRequest(b"k", (1, 2, 3), Level.QUORUM, deadline_ms=100)
    r.start()
    r.on_record(1, REC)
    assert r.on_digest(2, lww.digest(newer)) == [SendRead(2, b"k", True)]
    assert r.on_record(2, newer) == [SendApply(1, b"k", newer, repair=True)]
    d = _done(r.on_repaired(1))
    assert d is not None and d.record == newer and d.receipt.repaired == (1,)
    assert d.receipt.version == V2


def test_read_of_missing_everywhere_is_none_and_repair_of_missing_replica() -> None:
    r = ReadRequest(b"k", (1, 2), Level.ALL, deadline_ms=100)
    r.start()
    r.on_record(1, None)
    d = _done(r.on_digest(2, b""))
    assert d is not None and d.record is None and d.error is None
    r = ReadRequest(b"k", (1, 2), Level.ALL, deadline_ms=100)
    r.start()
    r.on_record(1, None)
    r.on_digest(2, lww.digest(REC))
    assert r.on_record(2, REC) == [SendApply(1, b"k", REC, repair=True)]


def test_read_substitutes_a_failed_replica_then_fails_when_none_left() -> None:
    r = ReadRequest(b"k", (1, 2, 3), Level.QUORUM, deadline_ms=100)
    r.start()
    assert r.on_failure(1) == [SendRead(3, b"k", True)]
    r.on_digest(2, lww.digest(REC))
    d = _done(r.on_record(3, REC))
    assert d is not None and d.error is None and d.receipt.answered == (2, 3)
    r = ReadRequest(b"k", (1, 2), Level.ALL, deadline_ms=100)
    r.start()
    d = _done(r.on_failure(2))
    assert d is not None and d.error is not None and "read at ALL" in d.error.text()


def test_read_fails_when_a_repair_cannot_reach_the_level() -> None:
    newer = lww.string_write(V2, b"b")
    r = ReadRequest(b"k", (1, 2), Level.ALL, deadline_ms=100)
    r.start()
    r.on_record(1, REC)
    r.on_digest(2, lww.digest(newer))
    r.on_record(2, newer)
    d = _done(r.on_failure(1))
    assert d is not None and d.error is not None and d.error.reached == 1


def test_read_timeout() -> None:
    r = ReadRequest(b"k", (1, 2, 3), Level.ONE, deadline_ms=50)
    r.start()
    d = _done(r.tick(50))
    assert d is not None and d.error is not None


def test_scan_merges_hides_tombstones_and_repairs() -> None:
    s = ScanRequest((1, 2, 3), Level.QUORUM, depth=4, lo=0, hi=16, deadline_ms=100)
    assert s.start() == [SendRange(1, 4, 0, 16), SendRange(2, 4, 0, 16)]
    dead = lww.delete_write(V2)
    assert s.on_range(1, {b"a": REC, b"b": REC}) == []
    out = s.on_range(2, {b"a": dead, b"c": REC})
    assert s.live_keys() == [b"b", b"c"]
    repairs = {(a.replica, a.key) for a in out if isinstance(a, SendApply)}
    assert repairs == {(1, b"a"), (1, b"c"), (2, b"b")}
    assert _done(out) is not None


def test_request_ids_reuse_the_first_version() -> None:
    ids = RequestIds(ids_max=2)
    assert ids.version_for(b"x", V1) == V1
    assert ids.version_for(b"x", V2) == V1
    ids.version_for(b"y", V2)
    ids.version_for(b"z", V2)
    assert ids.version_for(b"x", V2) == V2  # evicted: bounded


def test_receipt_of_a_write_is_the_version_written() -> None:
    rec = lww.fields_write(V2, {b"f": b"1"})
    w = WriteRequest(b"k", rec, (1,), Level.ONE, deadline_ms=1)
    w.start()
    d = _done(w.on_ack(1))
    assert d is not None and d.receipt.version == V2 and isinstance(d.record, type(None))
    assert Record() != rec


# -- deletion strategies (leaderless/deletes.py) -------------------------------------------


def _conflicting_read(strategy: DeletionStrategy) -> tuple[ReadRequest, list]:  # type: ignore[type-arg]
    live_newer = lww.string_write(V2, b"live")
    dead = lww.delete_write(V1)
    r = ReadRequest(
        b"k", (1, 2), Level.ALL, deadline_ms=100, strategy=strategy, stamp=Version(15, 0, 9)
    )
    r.start()
    r.on_record(1, dead)
    r.on_digest(2, lww.digest(live_newer))
    return r, r.on_record(2, live_newer)


def test_time_based_resolution_newest_wins() -> None:
    r, out = _conflicting_read(DeletionStrategy.TIME_BASED_RESOLUTION)
    assert out == [SendApply(1, b"k", lww.string_write(V2, b"live"), repair=True)]


def test_no_automated_resolution_is_an_error_and_repairs_nothing() -> None:
    r, out = _conflicting_read(DeletionStrategy.NO_AUTOMATED_RESOLUTION)
    d = _done(out)
    assert d is not None and isinstance(d.error, ConflictError)
    assert d.error.text().startswith("CONFLICT")
    assert not [a for a in out if isinstance(a, SendApply)]


def test_delete_on_conflict_writes_a_tombstone_above_everything_read() -> None:
    r, out = _conflicting_read(DeletionStrategy.DELETE_ON_CONFLICT)
    applies = [a for a in out if isinstance(a, SendApply)]
    assert {a.replica for a in applies} == {1, 2}
    tomb = applies[0].record
    assert tomb.view() == ("deleted", Version(20, 1, 9))  # above V2, the stamp's node
    d = _done(r.on_repaired(1) + r.on_repaired(2))
    assert d is not None and d.record is not None and d.record.view()[0] == "deleted"


def test_conflict_definition_and_strategy_names() -> None:
    live, dead = lww.string_write(V1, b"x"), lww.delete_write(V2)
    assert conflict([live, dead]) and not conflict([live, None]) and not conflict([dead, None])
    assert DeletionStrategy.parse(b"deleteonconflict") is DeletionStrategy.DELETE_ON_CONFLICT
    with pytest.raises(ValueError):
        DeletionStrategy.parse(b"whatever")
