"""The PSYNC decision (notes: "When a partial resync is allowed") and its counters."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from ackdb.replication.psync import (
    Continue,
    FullResync,
    PsyncError,
    PsyncRequest,
    SyncStats,
    decide,
    parse_psync,
)
from ackdb.replication.state import ReplicationState


def primary(stream: int = 1000) -> ReplicationState:
    s = ReplicationState(random.Random(3))
    s.ensure_backlog(new_history=True)
    s.append(b"z" * stream)
    return s


def test_same_id_inside_backlog_continues() -> None:
    s = primary()
    assert decide(s, s.replid, 500) == Continue(s.replid, 500)


def test_asking_exactly_the_next_byte_is_allowed() -> None:
    # notes: asking for exactly the next byte is allowed and sends nothing.
    s = primary()
    assert isinstance(decide(s, s.replid, 1001), Continue)
    assert s.backlog is not None and s.backlog.read_from(1001) == b""
    assert isinstance(decide(s, s.replid, 1002), FullResync)


def test_below_the_backlog_is_a_full_resync() -> None:
    s = ReplicationState(random.Random(3), backlog_bytes_max=16384)
    s.ensure_backlog(new_history=True)
    s.append(b"z" * 20000)
    assert s.backlog is not None
    first = s.backlog.first_byte_offset
    assert isinstance(decide(s, s.replid, first), Continue)
    d = decide(s, s.replid, first - 1)
    assert isinstance(d, FullResync) and d.partial_err


def test_unknown_id_or_question_mark() -> None:
    s = primary()
    d = decide(s, "f" * 40, 10)
    assert isinstance(d, FullResync) and d.partial_err
    d = decide(s, "?", -1)
    assert isinstance(d, FullResync) and not d.partial_err
    assert d.offset == s.master_repl_offset and d.replid == s.replid


def test_replid2_valid_up_to_second_repl_offset() -> None:
    # notes: == replid2 with offset <= second_repl_offset.
    s = primary(1000)
    old = s.replid
    s.shift_replid()  # second_repl_offset = 1001
    s.append(b"n" * 50)
    assert decide(s, old, 1001) == Continue(s.replid, 1001)
    assert isinstance(decide(s, old, 1002), FullResync)
    assert isinstance(decide(s, old, 900), Continue)


def test_no_backlog_means_full_resync() -> None:
    s = ReplicationState(random.Random(3))
    assert isinstance(decide(s, s.replid, 1), FullResync)


def test_counters() -> None:
    # notes: sync_full, sync_partial_ok, sync_partial_err (not bumped for "?").
    s = primary()
    stats = SyncStats()
    for rid, off in ((s.replid, 10), ("?", -1), ("e" * 40, 5)):
        stats.record(decide(s, rid, off))
    assert (stats.sync_full, stats.sync_partial_ok, stats.sync_partial_err) == (2, 1, 1)


def test_parse() -> None:
    assert parse_psync([b"PSYNC", b"?", b"-1"]) == PsyncRequest("?", -1, False)
    assert parse_psync([b"psync", b"a" * 40, b"7", b"failover"]) == PsyncRequest("a" * 40, 7, True)
    assert parse_psync([b"PSYNC", b"x", b"1.5"]) == PsyncError(
        "ERR value is not an integer or out of range"
    )


@given(
    stream=st.integers(0, 50_000),
    shift_at=st.integers(0, 50_000),
    after=st.integers(0, 5_000),
    ask=st.integers(-5, 60_000),
    which=st.sampled_from(["replid", "replid2", "other"]),
)
def test_rule_against_the_notes(
    stream: int, shift_at: int, after: int, ask: int, which: str
) -> None:
    s = ReplicationState(random.Random(1), backlog_bytes_max=16384)
    s.ensure_backlog(new_history=True)
    s.append(b"a" * min(stream, shift_at))
    old = s.replid
    s.shift_replid()
    s.append(b"b" * after)
    rid = {"replid": s.replid, "replid2": old, "other": "9" * 40}[which]
    b = s.backlog
    assert b is not None
    id_ok = rid == s.replid or (rid == s.replid2 and ask <= s.second_repl_offset)
    range_ok = b.first_byte_offset <= ask <= b.first_byte_offset + b.histlen
    d = decide(s, rid, ask)
    assert isinstance(d, Continue) == (id_ok and range_ok)
