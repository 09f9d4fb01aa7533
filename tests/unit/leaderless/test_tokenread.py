"""leaderless/tokenread.py: the steps of a read that presents a session token."""

from __future__ import annotations

from ackdb.keyspace import lww
from ackdb.keyspace.lww import Version
from ackdb.leaderless.actions import Done, LevelError, Receipt, TokenError
from ackdb.leaderless.levels import Level
from ackdb.leaderless.session import Token
from ackdb.leaderless.tokenread import (
    Answer,
    ReadFirst,
    Sleep,
    TokenRead,
    first_replicas,
    read_order,
)

NODES = ("n1", "n2", "n3")
V = Version(1_000, 0, 7)
WRITE = lww.string_write(V, b"new")
OLD = lww.string_write(Version(900, 0, 7), b"old")
TOKEN = Token.of_write(b"k", WRITE, ("n3", "n2"))
GRACE = 5_000


def _done(replica: int, rec: lww.Record | None) -> Done:
    return Done(Receipt((replica,), rec.newest() if rec else lww.ZERO), record=rec)


def _failed(replica: int) -> Done:
    return Done(Receipt((), lww.ZERO), error=LevelError("read", Level.ONE, 1, 0, 3))


def test_first_replicas_follow_the_token() -> None:
    assert first_replicas(TOKEN, NODES) == (2, 1)
    assert first_replicas(Token(b"k", V, "k", (), ("gone",)), NODES) == (0,)
    assert read_order(2, (0, 1, 2)) == (2, 0, 1)


def test_the_first_covering_read_is_the_answer() -> None:
    plan = TokenRead(TOKEN, NODES, deadline_ms=2_000, grace_ms=GRACE)
    assert plan.start() == ReadFirst(2)
    # n3 was unreachable: a spare answered the old value -> ask n2 first next.
    assert plan.on_done(_done(0, OLD), 1_010) == ReadFirst(1)
    newer = lww.string_write(Version(1_001, 0, 1), b"newer")
    d = _done(1, newer)
    assert plan.on_done(d, 1_020) == Answer(d) and plan.answered and plan.reads == 2


def test_waits_and_retries_until_the_deadline_then_tryagain() -> None:
    plan = TokenRead(TOKEN, NODES, deadline_ms=1_200, grace_ms=GRACE, retry_ms=50)
    assert plan.start() == ReadFirst(2)
    assert plan.on_done(_done(0, OLD), 1_010) == ReadFirst(1)
    assert plan.on_done(_done(0, OLD), 1_020) == Sleep(50)
    assert plan.resume() == ReadFirst(2) and plan.rounds == 2
    assert plan.on_done(_done(0, OLD), 1_080) == ReadFirst(1)
    d = _done(1, WRITE)  # the write arrived: the second round sees it
    assert plan.on_done(d, 1_090) == Answer(d)
    # Never covered: rounds until the deadline, then TRYAGAIN.
    plan = TokenRead(TOKEN, NODES, deadline_ms=1_200, grace_ms=GRACE, retry_ms=50)
    step = plan.start()
    now = 1_000
    while not isinstance(step, Answer):
        now += 10
        if isinstance(step, Sleep):
            now += step.ms
            step = plan.resume()
        else:
            step = plan.on_done(_done(0, OLD), now)
    assert isinstance(step.done.error, TokenError) and now <= 1_200 and plan.rounds > 2
    assert step.done.error.text().startswith("TRYAGAIN")


def test_a_failed_last_read_answers_its_error() -> None:
    plan = TokenRead(TOKEN, NODES, deadline_ms=2_000, grace_ms=GRACE)
    plan.start()
    assert plan.on_done(_failed(2), 1_010) == ReadFirst(1)
    d = _failed(1)
    assert plan.on_done(d, 1_020) == Answer(d)


def test_nothing_covers_only_from_a_token_replica_past_the_grace() -> None:
    deleted = Token.of_write(b"k", lww.delete_write(V), ("n3",))
    # Within the grace, nothing is not the delete: wait (the tombstone is not purgeable).
    plan = TokenRead(deleted, NODES, deadline_ms=V.ms + 10_000, grace_ms=GRACE)
    plan.start()
    assert plan.on_done(_done(2, None), V.ms + 100) == Sleep(plan.retry_ms)
    # Past it, nothing from n3 (which acknowledged the delete) is its purge ...
    plan = TokenRead(deleted, NODES, deadline_ms=V.ms + 10_000, grace_ms=GRACE)
    plan.start()
    d = _done(2, None)
    assert plan.on_done(d, V.ms + GRACE + 1) == Answer(d)
    # ... but nothing from a replica that never acknowledged it proves nothing.
    plan = TokenRead(deleted, NODES, deadline_ms=V.ms + GRACE + 100, grace_ms=GRACE)
    plan.start()
    step = plan.on_done(_done(0, None), V.ms + GRACE + 1)
    assert isinstance(step, Sleep)
    step = plan.resume()
    final = plan.on_done(_done(0, None), V.ms + GRACE + 80)
    assert isinstance(final, Answer) and isinstance(final.done.error, TokenError)
