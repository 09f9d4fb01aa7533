"""WAIT / WAITAOF: errors in Redis's order, immediate answers, parking, timeouts, GETACK."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ackdb.replication.actions import ReplyToClient
from ackdb.replication.waiters import (
    ERR_WAIT_REPLICA,
    ERR_WAITAOF_NO_AOF,
    ERR_WAITAOF_REPLICA,
    UNBLOCKED,
    Waiters,
)


@dataclass
class Acks:
    acks: list[int] = field(default_factory=list)
    facks: list[int] = field(default_factory=list)

    def count_acked(self, offset: int) -> int:
        return sum(1 for a in self.acks if a >= offset)

    def count_facked(self, offset: int) -> int:
        return sum(1 for a in self.facks if a >= offset)


def err(msg: str) -> bytes:
    return b"-" + msg.encode() + b"\r\n"


def wait(
    w: Waiters,
    argv: list[bytes],
    acks: Acks,
    *,
    target: int = 100,
    now: int = 0,
    replica: bool = False,
    block: bool = True,
    client: int = 1,
) -> bytes | None:
    return w.wait(
        client,
        [b"WAIT", *argv],
        target_offset=target,
        now_ms=now,
        is_replica=replica,
        can_block=block,
        acks=acks,
    )


def waitaof(
    w: Waiters,
    argv: list[bytes],
    acks: Acks,
    *,
    target: int = 100,
    now: int = 0,
    replica: bool = False,
    block: bool = True,
    aof: bool = True,
    fsynced: int = 0,
    client: int = 1,
) -> bytes | None:
    return w.waitaof(
        client,
        [b"WAITAOF", *argv],
        target_offset=target,
        now_ms=now,
        is_replica=replica,
        can_block=block,
        acks=acks,
        aof_enabled=aof,
        fsynced_offset=fsynced,
    )


@pytest.mark.parametrize(
    ("argv", "reply"),
    [
        ([b"x", b"0"], b"-ERR value is not an integer or out of range\r\n"),
        ([b"1", b"-1"], b"-ERR timeout is negative\r\n"),
        ([b"1", b"1.5"], b"-ERR timeout is not an integer or out of range\r\n"),
        ([b"1", b"9223372036854775807"], b"-ERR timeout is out of range\r\n"),
        ([b"-3", b"0"], b":0\r\n"),  # a negative count is reached at once
    ],
)
def test_wait_argument_errors(argv: list[bytes], reply: bytes) -> None:
    assert wait(Waiters(), argv, Acks(), now=5) == reply


def test_wait_on_a_replica_checks_the_role_before_the_arguments() -> None:
    # Redis waitCommand: the role first (WAITAOF does it the other way round).
    assert wait(Waiters(), [b"x", b"y"], Acks(), replica=True) == err(ERR_WAIT_REPLICA)


@pytest.mark.parametrize(
    ("argv", "reply"),
    [
        ([b"2", b"0", b"0"], b"-ERR value is out of range, value must between 0 and 1\r\n"),
        ([b"a", b"0", b"0"], b"-ERR value is not an integer or out of range\r\n"),
        ([b"0", b"-1", b"0"], b"-ERR value is out of range, must be positive\r\n"),
        ([b"0", b"b", b"0"], b"-ERR value is not an integer or out of range\r\n"),
        ([b"0", b"0", b"-5"], b"-ERR timeout is negative\r\n"),
    ],
)
def test_waitaof_argument_errors_before_the_role(argv: list[bytes], reply: bytes) -> None:
    # notes: arguments are checked before the role.
    assert waitaof(Waiters(), argv, Acks(), replica=True) == reply


def test_waitaof_role_then_aof() -> None:
    w = Waiters()
    assert waitaof(w, [b"1", b"0", b"0"], Acks(), replica=True, aof=False) == err(
        ERR_WAITAOF_REPLICA
    )
    assert waitaof(w, [b"1", b"0", b"0"], Acks(), aof=False) == err(ERR_WAITAOF_NO_AOF)
    assert waitaof(w, [b"0", b"0", b"0"], Acks(), aof=False, fsynced=-1) == b"*2\r\n:0\r\n:0\r\n"


def test_wait_reached_at_once_and_never_blocking_contexts() -> None:
    w = Waiters()
    assert wait(w, [b"1", b"0"], Acks([100, 50])) == b":1\r\n"
    # notes: never blocks inside MULTI/EXEC or scripts: the count so far.
    assert wait(w, [b"2", b"0"], Acks([100, 50]), block=False) == b":1\r\n"
    # notes: a client that never wrote gets the current count at once.
    assert wait(w, [b"5", b"0"], Acks([0, 50]), target=0) == b":2\r\n"
    assert len(w) == 0 and not w.needs_getack


def test_wait_parks_then_answers_when_acks_arrive() -> None:
    w, acks = Waiters(), Acks([10])
    assert wait(w, [b"1", b"0"], acks) is None
    assert w.needs_getack and 1 in w
    assert w.process(10, acks, fsynced_offset=0, aof_enabled=False) == []
    acks.acks = [100]
    assert w.process(20, acks, fsynced_offset=0, aof_enabled=False) == [ReplyToClient(1, b":1\r\n")]
    assert len(w) == 0


def test_wait_timeout_replies_the_count_reached() -> None:
    # notes: on timeout the reply is the count reached so far; 0 = forever.
    w, acks = Waiters(), Acks([100, 0])
    assert wait(w, [b"2", b"50"], acks, now=1000, client=1) is None
    assert wait(w, [b"2", b"0"], acks, now=1000, client=2) is None
    assert w.next_deadline_ms() == 1050
    assert w.process(1049, acks, fsynced_offset=0, aof_enabled=False) == []
    assert w.process(1050, acks, fsynced_offset=0, aof_enabled=False) == [
        ReplyToClient(1, b":1\r\n")
    ]
    assert w.process(10**9, acks, fsynced_offset=0, aof_enabled=False) == []
    assert 2 in w and w.next_deadline_ms() is None


def test_waitaof_counts_local_fsync_and_facks() -> None:
    # notes: local = own fsynced offset >= target; replicas = ONLINE replicas whose FACK >= target.
    w, acks = Waiters(), Acks(facks=[100, 99])
    assert waitaof(w, [b"1", b"1", b"0"], acks, fsynced=100) == b"*2\r\n:1\r\n:1\r\n"
    assert waitaof(w, [b"1", b"2", b"10"], acks, fsynced=99) is None
    assert w.process(5, acks, fsynced_offset=100, aof_enabled=True) == []
    assert w.process(10, acks, fsynced_offset=100, aof_enabled=True) == [
        ReplyToClient(1, b"*2\r\n:1\r\n:1\r\n")
    ]


def test_waitaof_inside_multi_still_answers_an_array() -> None:
    assert (
        waitaof(Waiters(), [b"1", b"3", b"0"], Acks(), block=False, fsynced=5)
        == b"*2\r\n:0\r\n:0\r\n"
    )


def test_aof_switched_off_while_waiting() -> None:
    # notes: the WAITAOF error is also sent to waiters if AOF is switched off.
    w, acks = Waiters(), Acks()
    assert waitaof(w, [b"1", b"0", b"0"], acks, client=1) is None
    assert waitaof(w, [b"0", b"1", b"0"], acks, client=2) is None
    out = w.process(0, acks, fsynced_offset=-1, aof_enabled=False)
    assert out == [ReplyToClient(1, err(ERR_WAITAOF_NO_AOF))]
    assert 2 in w


def test_demotion_unblocks_everyone_and_closes() -> None:
    # notes: blocked clients get -UNBLOCKED ... and are disconnected.
    w, acks = Waiters(), Acks()
    wait(w, [b"1", b"0"], acks, client=1)
    waitaof(w, [b"0", b"1", b"0"], acks, client=2)
    out = w.unblock_all()
    assert out == [
        ReplyToClient(1, err(UNBLOCKED), close=True),
        ReplyToClient(2, err(UNBLOCKED), close=True),
    ]
    assert len(w) == 0


def test_one_getack_per_iteration_and_none_while_paused() -> None:
    # notes: one GETACK per loop iteration, batched; never while writes are paused.
    w, acks = Waiters(), Acks()
    for client in (1, 2, 3):
        wait(w, [b"1", b"0"], acks, client=client)
    assert not w.take_getack(writes_paused=True)
    assert w.take_getack(writes_paused=False)
    assert not w.take_getack(writes_paused=False)


def test_cancel() -> None:
    w, acks = Waiters(), Acks()
    wait(w, [b"1", b"0"], acks)
    w.cancel(1)
    w.cancel(1)
    assert len(w) == 0
