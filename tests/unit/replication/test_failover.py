"""FAILOVER: argument errors in Redis's order, the three states, FORCE, TIMEOUT, ABORT."""

from __future__ import annotations

import random

import pytest

from ackdb.replication.actions import Log, PauseWrites, UnpauseWrites
from ackdb.replication.failover import (
    IN_PROGRESS,
    NO_FAILOVER,
    WAITING_FOR_SYNC,
    Demote,
    Failover,
    RestorePrimary,
)
from ackdb.replication.primary import SEND_BULK, ReplicaTable
from ackdb.replication.state import ReplicationState


def table_with(*ports: int) -> ReplicaTable:
    t = ReplicaTable(ReplicationState(random.Random(2)))
    for i, port in enumerate(ports):
        t.on_replconf(i, [b"REPLCONF", b"listening-port", b"%d" % port], 0, "10.0.0.%d" % i)
        t.on_psync(i, [b"PSYNC", b"?", b"-1"], 0, "10.0.0.%d" % i, is_primary=True)
    t.begin_snapshot()
    for i in range(len(ports)):
        t.on_bulk_sent(i, 0)
    return t


def cmd(
    f: Failover, args: bytes, t: ReplicaTable, now: int = 0, replica: bool = False
) -> tuple[bytes, list]:
    return f.command([b"FAILOVER", *args.split()], now, is_replica=replica, table=t)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (b"TIMEOUT 0", "ERR FAILOVER timeout must be greater than 0"),
        (b"TIMEOUT x", "ERR value is not an integer or out of range"),
        (b"TO h x", "ERR value is not an integer or out of range"),
        (b"TO h", "ERR syntax error"),
        (b"FORCE FORCE", "ERR syntax error"),
        (b"ABORT TIMEOUT 5", "ERR syntax error"),
        (b"TIMEOUT 5 TIMEOUT 6", "ERR syntax error"),
        (
            b"FORCE",
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        ),
        (
            b"TO 10.0.0.0 6380 FORCE",
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        ),
        (b"TO 10.0.0.9 6380", "ERR FAILOVER target HOST and PORT is not a replica."),
        (b"ABORT", "ERR No failover in progress."),
    ],
)
def test_errors(args: bytes, error: str) -> None:
    reply, actions = cmd(Failover(), args, table_with(6380))
    assert reply == b"-" + error.encode() + b"\r\n" and actions == []


def test_role_and_replicas_are_checked_after_the_syntax() -> None:
    f = Failover()
    assert (
        cmd(f, b"", table_with(6380), replica=True)[0]
        == b"-ERR FAILOVER is not valid when server is a replica.\r\n"
    )
    assert cmd(f, b"", table_with())[0] == b"-ERR FAILOVER requires connected replicas.\r\n"
    assert cmd(f, b"BOGUS", table_with(), replica=True)[0] == b"-ERR syntax error\r\n"
    t = table_with(6380)
    t.replicas[0].state = SEND_BULK
    assert cmd(f, b"TO 10.0.0.0 6380", t)[0] == b"-ERR FAILOVER target replica is not online.\r\n"


def test_to_any_replica_waits_for_an_exact_ack() -> None:
    # notes: pause writes, wait until a replica's ACK equals the primary offset, demote.
    t = table_with(6380, 6381)
    f = Failover()
    reply, actions = cmd(f, b"", t)
    assert reply == b"+OK\r\n" and PauseWrites() in actions and f.state == WAITING_FOR_SYNC
    assert cmd(f, b"", t)[0] == b"-ERR FAILOVER already in progress.\r\n"
    t.state.append(b"x" * 50)
    t.replicas[0].ack_offset = 49
    assert f.update(10, 50, t) == []
    t.replicas[1].ack_offset = 50
    out = f.update(20, 50, t)
    assert out[-1] == Demote("10.0.0.1", 6381) and f.state == IN_PROGRESS
    assert f.on_psync_reply(True) == [UnpauseWrites()] and f.state == NO_FAILOVER


def test_timeout_without_force_aborts() -> None:
    t = table_with(6380)
    f = Failover()
    cmd(f, b"TIMEOUT 100", t, now=1000)
    assert f.update(1099, 5, t) == []
    out = f.update(1100, 5, t)
    assert out[-1] == UnpauseWrites() and f.state == NO_FAILOVER
    assert isinstance(out[0], Log) and "never caught up" in out[0].message


def test_force_fails_over_on_timeout_anyway() -> None:
    t = table_with(6380)
    f = Failover()
    assert cmd(f, b"TO 10.0.0.0 6380 TIMEOUT 50 FORCE", t, now=0)[0] == b"+OK\r\n"
    out = f.update(50, 999, t)
    assert out[-1] == Demote("10.0.0.0", 6380) and f.state == IN_PROGRESS


def test_rejected_psync_or_abort_in_progress_restores_the_primary() -> None:
    t = table_with(6380)
    f = Failover()
    cmd(f, b"", t)
    f.update(0, 0, t)
    assert f.state == IN_PROGRESS
    out = f.on_psync_reply(False)
    assert RestorePrimary() in out and out[-1] == UnpauseWrites()
    cmd(f, b"", t)
    reply, out = cmd(f, b"ABORT", t)
    assert reply == b"+OK\r\n" and RestorePrimary() not in out and UnpauseWrites() in out


def test_replicaof_refused_while_failing_over() -> None:
    f = Failover()
    assert f.replicaof_refusal() is None
    cmd(f, b"", table_with(6380))
    assert f.replicaof_refusal() == b"-ERR REPLICAOF not allowed while failing over.\r\n"
