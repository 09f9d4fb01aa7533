"""Replication ids and offsets: fresh ids, promotion shifts, restarts, backlog TTL."""

from __future__ import annotations

import random

from ackdb.replication.state import (
    NULL_REPLID,
    ReplicationState,
    SavedHistory,
    is_replid,
    new_replid,
)


def make(**kw: int) -> ReplicationState:
    return ReplicationState(random.Random(7), **kw)


def test_fresh_ids() -> None:
    # notes: fresh backlog: random 40-hex replid, replid2 = 40 zeros, second offset -1.
    st = make()
    assert is_replid(st.replid) and st.replid != NULL_REPLID
    assert (st.replid2, st.second_repl_offset, st.master_repl_offset) == (NULL_REPLID, -1, 0)
    assert st.backlog is None


def test_ids_come_from_the_injected_rng() -> None:
    assert new_replid(random.Random(1)) == new_replid(random.Random(1))
    assert new_replid(random.Random(1)) != new_replid(random.Random(2))


def test_shift_on_promotion() -> None:
    # notes: promotion: replid2 = replid, second_repl_offset = master_repl_offset + 1, new id.
    st = make()
    st.ensure_backlog(new_history=False)
    st.append(b"x" * 100)
    old = st.replid
    st.shift_replid()
    assert st.replid2 == old and st.replid != old and is_replid(st.replid)
    assert st.second_repl_offset == 101


def test_shift_to_a_given_id() -> None:
    # notes: a replica receiving +CONTINUE <newid> shifts the same way.
    st = make()
    st.append(b"y" * 7)
    old = st.replid
    st.shift_replid("a" * 40)
    assert (st.replid, st.replid2, st.second_repl_offset) == ("a" * 40, old, 8)


def test_offset_counts_every_byte_with_or_without_backlog() -> None:
    st = make()
    st.append(b"abc")  # no backlog: counted anyway (AOF needs it)
    assert st.master_repl_offset == 3
    st.ensure_backlog(new_history=False)
    assert st.backlog is not None and st.backlog.first_byte_offset == 4
    st.append(b"defg")
    assert st.master_repl_offset == 7 and st.backlog.read_from(4) == b"defg"


def test_first_backlog_of_a_primary_starts_a_new_history() -> None:
    st = make()
    old = st.replid
    assert st.ensure_backlog(new_history=True)
    assert st.replid != old and st.replid2 == NULL_REPLID
    assert not st.ensure_backlog(new_history=True)  # already there: nothing changes


def test_adopt_primary_history_after_full_sync() -> None:
    st = make()
    st.shift_replid()
    st.adopt_primary_history("b" * 40, 5000)
    assert (st.replid, st.master_repl_offset) == ("b" * 40, 5000)
    assert (st.replid2, st.second_repl_offset) == (NULL_REPLID, -1)
    assert st.backlog is not None and st.backlog.end_offset == 5001


def test_backlog_ttl_frees_with_a_new_id() -> None:
    # notes: freed after repl-backlog-ttl without replicas, with a new replid.
    st = make(backlog_ttl_ms=1000)
    st.ensure_backlog(new_history=False)
    old = st.replid
    assert not st.maybe_free_backlog(0, replica_count=0, is_primary=True)
    assert not st.maybe_free_backlog(1000, replica_count=0, is_primary=True)
    assert st.maybe_free_backlog(1001, replica_count=0, is_primary=True)
    assert st.backlog is None and st.replid != old and st.replid2 == NULL_REPLID


def test_backlog_ttl_clock_restarts_with_replicas_and_skips_replicas() -> None:
    st = make(backlog_ttl_ms=1000)
    st.ensure_backlog(new_history=False)
    st.maybe_free_backlog(0, replica_count=0, is_primary=True)
    st.maybe_free_backlog(900, replica_count=1, is_primary=True)  # a replica came and went
    assert not st.maybe_free_backlog(1500, replica_count=0, is_primary=True)
    assert not st.maybe_free_backlog(9999, replica_count=0, is_primary=False)
    assert st.backlog is not None


def test_restore_as_primary_keeps_the_saved_history_as_replid2() -> None:
    # Redis loadDataFromDisk: a restarted primary continues under a new id.
    st = make()
    st.restore_as_primary(SavedHistory("c" * 40, 900))
    assert (st.replid2, st.second_repl_offset, st.master_repl_offset) == ("c" * 40, 901, 900)
    assert st.replid != "c" * 40
    assert st.backlog is not None and st.backlog.contains(901) and not st.backlog.contains(900)


def test_restore_as_replica_asks_for_the_saved_history() -> None:
    st = make()
    st.restore_as_replica(SavedHistory("d" * 40, 77, stream_db=3))
    assert (st.replid, st.master_repl_offset, st.replid2) == ("d" * 40, 77, NULL_REPLID)


def test_info_fields_order() -> None:
    st = make()
    names = [k for k, _ in st.info_fields()]
    assert names == [
        "master_replid",
        "master_replid2",
        "master_repl_offset",
        "second_repl_offset",
        "repl_backlog_active",
        "repl_backlog_size",
        "repl_backlog_first_byte_offset",
        "repl_backlog_histlen",
    ]


# -- write_offset: the offset less the keep-alives ending the stream (issue 14, WAIT stall) --


def test_write_offset_leaves_out_the_keepalives_that_end_the_stream() -> None:
    st = make()
    st.append(b"w" * 40)  # a write
    assert st.write_offset == 40
    st.append(b"p" * 14)  # a PING
    st.keepalive_appended(40)
    assert (st.master_repl_offset, st.write_offset) == (54, 40)
    st.append(b"g" * 37)  # a GETACK right after it: one run
    st.keepalive_appended(54)
    assert (st.master_repl_offset, st.write_offset) == (91, 40)
    st.append(b"w" * 10)  # a write ends the run
    assert st.write_offset == st.master_repl_offset == 101
    st.append(b"g" * 37)  # a new run starts after the write
    st.keepalive_appended(101)
    assert st.write_offset == 101


def test_write_offset_is_the_offset_after_a_new_history() -> None:
    # A run noted under another id says nothing of this history: never too low.
    st = make()
    st.append(b"w" * 40)
    st.append(b"p" * 14)
    st.keepalive_appended(40)
    st.change_replid()
    assert st.write_offset == st.master_repl_offset == 54
    st.adopt_primary_history(new_replid(random.Random(3)), 54)
    assert st.write_offset == 54
