"""The replica table: REPLCONF, PSYNC serving, acks, timeouts, min-replicas, INFO, ROLE."""

from __future__ import annotations

import random

import pytest

from ackdb.replication.actions import CloseReplica, SendToReplica, SnapshotNeeded
from ackdb.replication.primary import (
    ONLINE,
    SEND_BULK,
    WAIT_BGSAVE,
    ReplicaTable,
)
from ackdb.replication.state import ReplicationState


def table(**kw: int) -> ReplicaTable:
    return ReplicaTable(ReplicationState(random.Random(5)), **kw)


def attach(t: ReplicaTable, conn: int, port: int, now: int = 0, ip: str = "10.0.0.1") -> None:
    t.on_replconf(conn, [b"REPLCONF", b"listening-port", b"%d" % port], now, ip)
    t.on_replconf(conn, [b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"], now, ip)
    out = t.on_psync(conn, [b"PSYNC", b"?", b"-1"], now, ip, is_primary=True)
    assert out.reply is None and SnapshotNeeded() in out.actions
    t.begin_snapshot()
    t.on_bulk_sent(conn, now)


def ack(t: ReplicaTable, conn: int, off: int, now: int, fack: int | None = None) -> None:
    argv = [b"REPLCONF", b"ACK", b"%d" % off]
    if fack is not None:
        argv += [b"FACK", b"%d" % fack]
    assert t.on_replconf(conn, argv, now, "x").reply is None  # notes: ack gets no reply


@pytest.mark.parametrize(
    ("argv", "reply"),
    [
        ([b"REPLCONF"], b"+OK\r\n"),
        ([b"REPLCONF", b"listening-port"], b"-ERR syntax error\r\n"),
        (
            [b"REPLCONF", b"listening-port", b"x"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        ([b"REPLCONF", b"capa", b"whatever"], b"+OK\r\n"),
        ([b"REPLCONF", b"bogus", b"1"], b"-ERR Unrecognized REPLCONF option: bogus\r\n"),
        (
            [b"REPLCONF", b"ip-address", b"1" * 300],
            b"-ERR REPLCONF ip-address provided by replica instance is too long: 300 bytes\r\n",
        ),
    ],
)
def test_replconf_replies(argv: list[bytes], reply: bytes) -> None:
    # notes: options in pairs; unknown -> ERR Unrecognized REPLCONF option: <opt>.
    assert table().on_replconf(1, argv, 0, "ip").reply == reply


def test_ack_from_a_non_replica_is_ignored_silently() -> None:
    t = table()
    out = t.on_replconf(9, [b"REPLCONF", b"ACK", b"5"], 0, "ip")
    assert out.reply is None and not t.replicas


def test_getack_asks_the_node_to_ack_upstream() -> None:
    out = table().on_replconf(9, [b"REPLCONF", b"GETACK", b"*"], 0, "ip")
    assert out.reply is None and out.send_ack


def test_full_sync_flow_states_and_stream_order() -> None:
    t = table()
    t.on_replconf(1, [b"REPLCONF", b"listening-port", b"6380"], 0, "1.2.3.4")
    out = t.on_psync(1, [b"PSYNC", b"?", b"-1"], 0, "1.2.3.4", is_primary=True)
    assert t.replicas[1].state == WAIT_BGSAVE and t.snapshot_needed
    assert out.actions[-1] == SnapshotNeeded()
    t.feed(b"before")  # not sent to a replica waiting for its snapshot
    assert t.flush() == []
    start = t.begin_snapshot()
    assert start.conns == (1,) and start.offset == t.state.master_repl_offset == 6
    line = b"+FULLRESYNC %s 6\r\n" % t.state.replid.encode()
    assert start.actions == [SendToReplica(1, line)]
    assert t.replicas[1].state == SEND_BULK
    t.feed(b"after")  # follows the snapshot on the same connection
    assert t.flush() == [SendToReplica(1, b"after")]
    t.on_bulk_sent(1, 50)
    assert t.replicas[1].state == ONLINE and t.replicas[1].ack_time_ms == 50
    assert (t.stats.sync_full, t.stats.sync_partial_err) == (1, 0)


def test_first_replica_creates_the_backlog_with_a_new_id() -> None:
    t = table()
    t.feed(b"x" * 10)  # counted while AOF was on and nobody listened
    old = t.state.replid
    attach(t, 1, 6380)
    assert t.state.replid != old and t.state.backlog is not None


def test_partial_resync_sends_what_was_missed_after_queued_bytes() -> None:
    t = table()
    attach(t, 1, 6380)
    t.feed(b"abc")
    t.flush()
    t.feed(b"def")  # queued, not flushed yet
    rid = t.state.replid.encode()
    t.on_replconf(2, [b"REPLCONF", b"capa", b"psync2"], 0, "ip")
    out = t.on_psync(2, [b"PSYNC", rid, b"2"], 10, "ip", is_primary=True)
    assert out.actions[0] == SendToReplica(1, b"def")
    assert out.actions[1] == SendToReplica(2, b"+CONTINUE " + rid + b"\r\nbcdef")
    assert t.replicas[2].state == ONLINE and t.stats.sync_partial_ok == 1


def test_continue_without_psync2_capa_has_no_id() -> None:
    t = table()
    attach(t, 1, 6380)
    out = t.on_psync(2, [b"PSYNC", t.state.replid.encode(), b"1"], 0, "ip", is_primary=True)
    assert SendToReplica(2, b"+CONTINUE\r\n") in out.actions


def test_refusal_comes_before_parsing() -> None:
    t = table()
    out = t.on_psync(3, [b"PSYNC", b"?", b"x"], 0, "ip", is_primary=False, refuse="NOMASTERLINK x")
    assert out.reply == b"-NOMASTERLINK x\r\n"
    out = t.on_psync(3, [b"PSYNC", b"?", b"x"], 0, "ip", is_primary=True)
    assert out.reply == b"-ERR value is not an integer or out of range\r\n"


def test_psync_from_an_attached_replica_is_ignored() -> None:
    t = table()
    attach(t, 1, 6380)
    out = t.on_psync(1, [b"PSYNC", b"?", b"-1"], 0, "ip", is_primary=True)
    assert out.reply is None and out.actions == []


def test_reconnecting_replica_replaces_its_old_entry() -> None:
    t = table()
    attach(t, 1, 6380)
    t.on_replconf(2, [b"REPLCONF", b"listening-port", b"6380"], 0, "10.0.0.1")
    out = t.on_psync(2, [b"PSYNC", b"?", b"-1"], 0, "10.0.0.1", is_primary=True)
    assert out.actions[0] == CloseReplica(1, "replaced by a new connection of the same replica")
    assert list(t.replicas) == [2]


def test_acks_only_move_forward_and_counting() -> None:
    t = table()
    attach(t, 1, 6380)
    attach(t, 2, 6381)
    ack(t, 1, 100, 5, fack=90)
    ack(t, 1, 80, 6, fack=10)
    ack(t, 2, 100, 7)
    r1 = t.replicas[1]
    assert (r1.ack_offset, r1.fack_offset, r1.ack_time_ms) == (100, 90, 6)
    # notes: WAIT counts ONLINE replicas with ack >= target; WAITAOF those with FACK >= target.
    assert (t.count_acked(100), t.count_acked(101), t.count_facked(90), t.count_facked(91)) == (
        2,
        0,
        1,
        0,
    )
    t.replicas[2].state = SEND_BULK
    assert t.count_acked(100) == 1


def test_repl_timeout_drops_silent_online_replicas() -> None:
    # notes: repl-timeout: primary drops a silent replica.
    t = table(repl_timeout_ms=60_000)
    attach(t, 1, 6380, now=0)
    assert t.cron(60_000) == []
    out = t.cron(60_001)
    assert CloseReplica(1, "timeout") in out and not t.replicas


def test_presync_keepalive_newlines() -> None:
    t = table()
    t.on_psync(1, [b"PSYNC", b"?", b"-1"], 0, "ip", is_primary=True)
    assert t.cron(999) == []
    assert t.cron(1000) == [SendToReplica(1, b"\n")]


def test_min_replicas_to_write() -> None:
    # notes: good = online and last ACK at most min-replicas-max-lag seconds old.
    t = table(min_replicas_to_write=2, min_replicas_max_lag_s=10)
    attach(t, 1, 6380)
    attach(t, 2, 6381)
    ack(t, 1, 1, 0)
    ack(t, 2, 1, 5000)
    assert not t.write_refused(10_999)
    assert t.write_refused(11_000)
    assert not table().write_refused(0)  # off by default


def test_info_and_role() -> None:
    t = table(min_replicas_to_write=1)
    attach(t, 1, 6380, ip="10.0.0.9")
    t.on_replconf(1, [b"REPLCONF", b"ip-address", b"replica.example"], 0, "x")
    t.feed(b"x" * 40)
    ack(t, 1, 30, 1000)
    fields = dict(t.info_fields(3500))
    assert fields["connected_slaves"] == "1" and fields["min_slaves_good_slaves"] == "1"
    assert fields["slave0"] == (
        "ip=replica.example,port=6380,state=online,offset=30,lag=2,lag_bytes=10"
    )
    assert t.role_entries() == [("replica.example", "6380", "30")]
    assert t.find("REPLICA.example", 6380) is t.replicas[1] and t.find("x", 1) is None


def test_getack_and_ping_are_keepalives_left_out_of_the_write_offset() -> None:
    # ACKDB.SYNCWOFF takes ``write_offset``: a WAIT after it must not wait for a GETACK
    # (the replica's ACK answering it leaves it out) -- issue 14's stall.
    t = table()
    attach(t, 1, 7000)
    t.feed(b"*1\r\n$4\r\nincr\r\n")
    after_write = t.state.master_repl_offset
    t.feed_getack(0)
    t.feed_keepalive(b"*1\r\n$4\r\nping\r\n")
    assert t.state.master_repl_offset == after_write + 37 + 14
    assert t.state.write_offset == after_write
    assert [a.data for a in t.flush() if isinstance(a, SendToReplica)][0].endswith(b"ping\r\n")
