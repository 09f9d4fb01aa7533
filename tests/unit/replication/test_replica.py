"""The replica link: handshake, PSYNC replies, snapshot transfer, the stream's offsets,
ACK/FACK, MULTI, timeouts and reconnection. Byte streams are fed whole and byte by byte."""

from __future__ import annotations

import random

import pytest

from ackdb.replication.actions import (
    Apply,
    ClosePrimaryLink,
    ConnectPrimary,
    DiscardTransaction,
    SendToPrimary,
    SnapshotAbort,
    SnapshotBegin,
    SnapshotChunk,
    SnapshotEnd,
)
from ackdb.replication.handshake import ReplicaConfig
from ackdb.replication.introspection import link_info
from ackdb.replication.replica import (
    CONNECT,
    CONNECTED,
    HANDSHAKE,
    SYNC,
    DisconnectReplicas,
    Forward,
    LinkAction,
    PsyncReplied,
    ReplicaLink,
)
from ackdb.replication.state import ReplicationState
from ackdb.replication.stream import GETACK, PING
from ackdb.replication.util import encode_command

PRIMARY_ID = "ab" * 20


def applied(out: list[object]) -> list[list[bytes]]:
    """The commands the actions ``out`` apply, in order."""
    return [argv for a in out if isinstance(a, Apply) for argv in a.argvs]


def link(**kw: object) -> ReplicaLink:
    config = ReplicaConfig(listening_port=6380, **kw)  # type: ignore[arg-type]
    return ReplicaLink(ReplicationState(random.Random(1)), config)


def feed(lk: ReplicaLink, data: bytes, step: int | None, now: int = 0) -> list[LinkAction]:
    out: list[LinkAction] = []
    if step is None:
        return lk.receive_data(data, now)
    for i in range(0, len(data), step):
        out += lk.receive_data(data[i : i + step], now)
    return out


def sent(actions: list[LinkAction]) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, SendToPrimary))


def to_handshake(lk: ReplicaLink) -> None:
    assert [a for a in lk.replicaof("h", 6379, 0) if isinstance(a, ConnectPrimary)] == [
        ConnectPrimary("h", 6379)
    ]
    assert sent(lk.on_link_established(0)) == encode_command([b"PING"])


def to_psync(lk: ReplicaLink, step: int | None = None) -> bytes:
    to_handshake(lk)
    out = sent(feed(lk, b"+PONG\r\n", step))
    out += sent(feed(lk, b"+OK\r\n+OK\r\n", step))
    return out


def test_handshake_commands_in_order() -> None:
    # notes: PING; pipelined AUTH, listening-port, [ip-address], capa; then PSYNC ? -1.
    lk = link(masterauth="pw", masteruser="u", announce_ip="10.1.1.1")
    to_handshake(lk)
    out = sent(lk.receive_data(b"-NOAUTH Authentication required.\r\n", 0))
    assert out == (
        encode_command([b"AUTH", b"u", b"pw"])
        + encode_command([b"REPLCONF", b"listening-port", b"6380"])
        + encode_command([b"REPLCONF", b"ip-address", b"10.1.1.1"])
        + encode_command([b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])
    )
    assert sent(lk.receive_data(b"+OK\r\n+OK\r\n+OK\r\n", 0)) == b""
    # An error to REPLCONF capa is not critical.
    assert sent(lk.receive_data(b"-ERR nope\r\n", 0)) == encode_command([b"PSYNC", b"?", b"-1"])
    assert lk.state == HANDSHAKE


@pytest.mark.parametrize(
    "reply", [b"+PONG", b"-NOAUTH x", b"-NOPERM y", b"-ERR operation not permitted"]
)
def test_ping_replies_that_continue(reply: bytes) -> None:
    lk = link()
    to_handshake(lk)
    assert b"listening-port" in sent(lk.receive_data(reply + b"\r\n", 0))


def test_other_ping_errors_and_auth_errors_drop_the_link() -> None:
    lk = link()
    to_handshake(lk)
    out = lk.receive_data(b"-ERR unknown\r\n", 0)
    assert any(isinstance(a, ClosePrimaryLink) for a in out) and lk.state == CONNECT
    lk = link(masterauth="pw")
    to_handshake(lk)
    lk.receive_data(b"+PONG\r\n", 0)
    out = lk.receive_data(b"-WRONGPASS\r\n", 0)
    assert any(isinstance(a, ClosePrimaryLink) for a in out)


def full_sync_bytes(payload: bytes, eof: bool, offset: int = 500) -> bytes:
    head = b"\n\n+FULLRESYNC %s %d\r\n\n" % (PRIMARY_ID.encode(), offset)
    if eof:
        mark = b"m" * 39 + b"!"
        return head + b"$EOF:" + mark + b"\r\n" + payload + mark
    return head + b"$%d\r\n" % len(payload) + payload


@pytest.mark.parametrize("eof", [False, True])
@pytest.mark.parametrize("step", [None, 1, 3, 41])
def test_full_sync_whole_and_bytewise(eof: bool, step: int | None) -> None:
    lk = link()
    assert to_psync(lk).endswith(encode_command([b"PSYNC", b"?", b"-1"]))
    payload = b"snapshot-bytes" * 10
    stream = encode_command([b"SET", b"k", b"v"])
    out = feed(lk, full_sync_bytes(payload, eof) + stream, step)
    assert PsyncReplied(True) in out
    assert b"".join(a.data for a in out if isinstance(a, SnapshotChunk)) == payload
    begin = next(a for a in out if isinstance(a, SnapshotBegin))
    assert begin == SnapshotBegin(PRIMARY_ID, 500, -1 if eof else len(payload))
    assert out[-1] == SnapshotEnd() and lk.state == SYNC and lk.loading
    # The stream waits until the shell has loaded the snapshot.
    after = lk.snapshot_loaded(2, 10)
    assert after[0] == DisconnectReplicas("full sync with our primary")
    assert lk.state == CONNECTED and lk.repl.replid == PRIMARY_ID
    assert [b"SET", b"k", b"v"] in applied(after) and Forward(stream) in after
    assert lk.repl.master_repl_offset == 500 + len(stream) and lk.stream_db == 2
    assert lk.can_psync


def test_ack_answering_getack_excludes_the_getack() -> None:
    # notes: the ACK answering a GETACK does not count the GETACK's own 37 bytes.
    lk = link()
    to_psync(lk)
    lk.receive_data(full_sync_bytes(b"", False, offset=1000), 0)
    lk.snapshot_loaded(0, 0)
    data = PING + GETACK + PING
    for step in (None, 1, 5):
        start = lk.repl.master_repl_offset
        out = feed(lk, data, step)
        acks = [a.data for a in out if isinstance(a, SendToPrimary)]
        answer = encode_command([b"REPLCONF", b"ACK", b"%d" % (start + len(PING))])
        assert answer in acks
        # ackdb also acknowledges what each read made it process, at the end of the read.
        assert acks[-1] == encode_command([b"REPLCONF", b"ACK", b"%d" % (start + len(data))])
        assert lk.repl.master_repl_offset == start + len(data)
        assert b"".join(a.data for a in out if isinstance(a, Forward)) == data
        assert [b"ping"] in applied(out)


def test_transaction_counts_and_forwards_whole() -> None:
    lk = link()
    to_psync(lk)
    lk.receive_data(full_sync_bytes(b"", False, offset=0), 0)
    lk.snapshot_loaded(0, 0)
    multi = encode_command([b"MULTI"]) + encode_command([b"SET", b"a", b"1"])
    exe = encode_command([b"EXEC"])
    out = lk.receive_data(multi + exe[:3], 0)
    assert lk.repl.master_repl_offset == 0 and not any(isinstance(a, Forward) for a in out)
    assert applied(out) == [[b"MULTI"], [b"SET", b"a", b"1"]]
    out = lk.receive_data(exe[3:], 0)
    assert Forward(multi + exe) in out and lk.repl.master_repl_offset == len(multi + exe)


def test_link_lost_inside_multi_discards_and_resumes_before_it() -> None:
    lk = link()
    to_psync(lk)
    lk.receive_data(full_sync_bytes(b"", False, offset=0), 0)
    lk.snapshot_loaded(0, 0)
    lk.receive_data(encode_command([b"SELECT", b"3"]) + encode_command([b"MULTI"]), 0)
    out = lk.on_link_lost(100)
    assert DiscardTransaction() in out and lk.state == CONNECT
    offset = lk.repl.master_repl_offset
    assert offset == len(encode_command([b"SELECT", b"3"])) and lk.stream_db == 3
    # Reconnect: PSYNC continues right after the last whole unit and re-selects the db.
    tick = lk.tick(100 + lk.config.reconnect_min_ms)
    assert ConnectPrimary("h", 6379) in tick
    lk.on_link_established(200)
    lk.receive_data(b"+PONG\r\n", 200)
    out = lk.receive_data(b"+OK\r\n+OK\r\n", 200)
    assert sent(out) == encode_command([b"PSYNC", PRIMARY_ID.encode(), b"%d" % (offset + 1)])
    out = lk.receive_data(b"+CONTINUE " + PRIMARY_ID.encode() + b"\r\n", 200)
    assert [b"SELECT", b"3"] in applied(out) and lk.state == CONNECTED


def test_continue_with_a_new_id_shifts_and_drops_sub_replicas() -> None:
    # notes: a replica receiving +CONTINUE <newid> with a different id shifts.
    lk = link()
    lk.repl.adopt_primary_history(PRIMARY_ID, 700)
    lk.can_psync = True
    out = to_psync(lk)
    assert out.endswith(encode_command([b"PSYNC", PRIMARY_ID.encode(), b"701"]))
    new = "cd" * 20
    acts = lk.receive_data(b"+CONTINUE " + new.encode() + b"\r\n", 0)
    assert DisconnectReplicas("primary replication id changed") in acts
    st = lk.repl
    assert (st.replid, st.replid2, st.second_repl_offset) == (new, PRIMARY_ID, 701)


@pytest.mark.parametrize("reply", [b"-NOMASTERLINK Can't SYNC", b"-LOADING x", b"-ERR bad"])
def test_psync_refused_retries_later(reply: bytes) -> None:
    lk = link()
    to_psync(lk)
    out = lk.receive_data(reply + b"\r\n", 0)
    assert PsyncReplied(False) in out and lk.state == CONNECT


def test_failover_psync_argument() -> None:
    lk = link()
    lk.failover_psync = True
    assert to_psync(lk).endswith(encode_command([b"PSYNC", b"?", b"-1", b"FAILOVER"]))


def test_periodic_ack_with_fack_and_fsync_triggered_ack() -> None:
    # notes: ACK once a second; FACK only when the AOF is on.
    lk = link()
    to_psync(lk)
    lk.receive_data(full_sync_bytes(b"", False, offset=10), 0)
    assert sent(lk.snapshot_loaded(0, 0)) == encode_command([b"REPLCONF", b"ACK", b"10"])
    assert lk.tick(999) == []
    assert sent(lk.tick(1000)) == encode_command([b"REPLCONF", b"ACK", b"10"])
    lk.fsynced_offset = 4
    assert sent(lk.tick(2000)) == encode_command([b"REPLCONF", b"ACK", b"10", b"FACK", b"4"])
    # The fsync reaching the processed offset is acknowledged at once.
    assert sent(lk.on_fsynced(10, 2100)) == encode_command(
        [b"REPLCONF", b"ACK", b"10", b"FACK", b"10"]
    )
    assert lk.on_fsynced(10, 2200) == []


def test_timeouts_per_state() -> None:
    # notes: repl-timeout: a replica drops a silent primary.
    lk = link(repl_timeout_ms=1000)
    lk.replicaof("h", 1, 0)
    out = lk.tick(1001)
    assert any(isinstance(a, ClosePrimaryLink) for a in out) and lk.state == CONNECT
    lk = link(repl_timeout_ms=1000)
    to_psync(lk)
    lk.receive_data(full_sync_bytes(b"xx", False)[:-1], 0)
    out = lk.tick(1001)
    assert SnapshotAbort("link lost during the transfer") in out
    lk = link(repl_timeout_ms=1000)
    to_psync(lk)
    lk.receive_data(full_sync_bytes(b"", False), 0)
    lk.snapshot_loaded(0, 0)
    lk.receive_data(PING, 500)
    assert not any(isinstance(a, ClosePrimaryLink) for a in lk.tick(1500))
    assert any(isinstance(a, ClosePrimaryLink) for a in lk.tick(1501))


def test_reconnect_back_off_doubles_up_to_the_cap() -> None:
    lk = link(reconnect_min_ms=100, reconnect_max_ms=350)
    lk.replicaof("h", 1, 0)
    now, waits = 0, []
    for _ in range(4):
        lk.on_link_failed(now)
        start = now
        while not any(isinstance(a, ConnectPrimary) for a in lk.tick(now)):
            now += 10
        waits.append(now - start)
    assert waits == [100, 200, 350, 350]


def test_protocol_error_in_stream_drops_the_link() -> None:
    lk = link()
    to_psync(lk)
    lk.receive_data(full_sync_bytes(b"", False), 0)
    lk.snapshot_loaded(0, 0)
    out = lk.receive_data(b"+OK\r\n", 0)
    assert any(isinstance(a, ClosePrimaryLink) for a in out) and lk.state == CONNECT


def test_info_fields_while_syncing_and_down() -> None:
    lk = link()
    to_psync(lk)
    lk.receive_data(b"+FULLRESYNC " + PRIMARY_ID.encode() + b" 5\r\n$100\r\n" + b"x" * 25, 2000)
    f = dict(link_info(lk, 4500))
    assert f["master_link_status"] == "down" and f["master_sync_in_progress"] == "1"
    assert (
        f["master_sync_total_bytes"],
        f["master_sync_read_bytes"],
        f["master_sync_left_bytes"],
    ) == ("100", "25", "75")
    assert f["master_sync_perc"] == "25.00" and f["master_sync_last_io_seconds_ago"] == "2"
    assert f["master_link_down_since_seconds"] == "4"


def test_a_read_applies_as_one_run_and_a_getack_splits_it() -> None:
    """One Apply per run of consecutive commands; the ACK answering a GETACK sits
    between the commands before it and those after it."""
    lk = link()
    to_psync(lk)
    lk.receive_data(full_sync_bytes(b"", False, offset=0), 0)
    lk.snapshot_loaded(0, 0)
    set_a = encode_command([b"SET", b"a", b"1"])
    out = lk.receive_data(set_a + PING + GETACK + PING + set_a, 0)
    kinds = [type(a).__name__ for a in out if isinstance(a, Apply | SendToPrimary)]
    assert kinds[:3] == ["Apply", "SendToPrimary", "Apply"]
    runs = [a.argvs for a in out if isinstance(a, Apply)]
    assert runs == [[[b"SET", b"a", b"1"], [b"ping"]], [[b"ping"], [b"SET", b"a", b"1"]]]
