"""Database: SCAN's guarantee under churn and compaction, RANDOMKEY, expiry heap."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.keyspace import db as dbmod
from ackdb.keyspace.db import Database


class Owner:
    role_replica = False
    applying = False

    def __init__(self) -> None:
        self.now = 1_000
        self.expired: list[bytes] = []

    def now_ms(self) -> int:
        return self.now

    def on_expired(self, db: Database, key: bytes) -> None:
        self.expired.append(key)

    def on_watched_touched(
        self, db: Database, key: bytes, clients: set[Any], expiring: bool
    ) -> None:
        pass


def full_scan(db: Database, count: int, between: Any = None) -> list[bytes]:
    seen: list[bytes] = []
    cursor = 0
    for _ in range(100_000):
        cursor, keys = db.scan(cursor, count)
        seen += keys
        if cursor == 0:
            return seen
        if between is not None:
            between()
    raise AssertionError("scan did not finish")


def test_scan_returns_everything_once_without_churn() -> None:
    db = Database(0, Owner())
    for i in range(5000):
        db.set(b"k%d" % i, b"v")
    got = full_scan(db, 37)
    assert sorted(got) == sorted(db.data)
    assert len(got) == len(set(got))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 50))
def test_scan_guarantee_under_churn_and_compaction(seed: int, count: int) -> None:
    """Keys present for the whole iteration are returned, while others come and go
    (enough deletions to force compactions mid-scan)."""
    rng = random.Random(seed)
    db = Database(0, Owner())
    stable = {b"s%d" % i for i in range(300)}
    churn = [b"c%d" % i for i in range(3000)]
    for k in stable:
        db.set(k, b"v")
    for k in churn:
        db.set(k, b"v")

    def mutate() -> None:
        for _ in range(rng.randint(0, 400)):
            k = rng.choice(churn)
            if rng.random() < 0.6:
                db.delete(k)
            else:
                db.set(k, b"v")

    got = set(full_scan(db, count, mutate))
    assert stable <= got


def test_compaction_keeps_cursor_valid(monkeypatch: Any) -> None:
    monkeypatch.setattr(dbmod, "ORDER_STALE_MIN", 10)
    db = Database(0, Owner())
    keys = [b"k%05d" % i for i in range(2000)]
    for k in keys:
        db.set(k, b"v")
    cursor, first = db.scan(0, 1000)
    for k in keys[:1500]:
        if k not in first:
            continue
        db.delete(k)  # forces compactions: stale slots > live keys
    rest = full_scan_from(db, cursor, 100)
    assert set(keys[1000:]) <= set(rest)


def full_scan_from(db: Database, cursor: int, count: int) -> list[bytes]:
    out: list[bytes] = []
    while True:
        cursor, keys = db.scan(cursor, count)
        out += keys
        if cursor == 0:
            return out


def test_reinserted_key_survives_compaction(monkeypatch: Any) -> None:
    monkeypatch.setattr(dbmod, "ORDER_STALE_MIN", 4)
    db = Database(0, Owner())
    db.scan(0, 1)  # the order exists from here on: the churn below compacts it
    for i in range(50):
        db.set(b"k%d" % i, b"v")
    for _ in range(3):
        for i in range(40):
            db.delete(b"k%d" % i)
            db.set(b"k%d" % i, b"w")
    for i in range(45):
        db.delete(b"k%d" % i)
    assert sorted(full_scan(db, 7)) == sorted(db.data)
    assert db._order is not None and len(db._order) <= 2 * len(db.data) + 4


def test_order_exists_only_once_scanned_and_change_mark_moves_on_every_change() -> None:
    """The SCAN order costs a pointer a key, so only a SCAN or RANDOMKEY builds it and
    FLUSHDB drops it; change_mark moves on each key added or deleted either way, and
    never returns to a value it gave before the order was built."""
    db = Database(0, Owner())
    marks = [db.change_mark()]

    def step(op: Any) -> None:
        op()
        mark = db.change_mark()
        assert mark not in marks, "change_mark repeated a value"
        marks.append(mark)

    for i in range(20):
        step(lambda i=i: db.set(b"k%d" % i, b"v"))
    for i in range(5):
        step(lambda i=i: db.delete(b"k%d" % i))
    step(lambda: db.set(b"k0", b"again"))
    db.set(b"k0", b"replaced")  # a value replaced in place is no key added
    assert db.change_mark() == marks[-1]
    assert db._order is None
    before = db.change_mark()
    cursor, keys = db.scan(0, 100)
    assert db._order is not None and cursor == 0
    # Insertion order, as the dict keeps it (k0 was deleted and added again: last).
    assert keys == [b"k%d" % i for i in range(5, 20)] + [b"k0"]
    assert db.change_mark() != before
    marks.append(db.change_mark())
    for i in range(5):
        step(lambda i=i: db.delete(b"k%d" % (i + 5)))
    for i in range(5):
        step(lambda i=i: db.set(b"k%d" % (i + 5), b"v"))
    assert db.clear() == 16 and db._order is None
    db.set(b"x", b"1")
    assert db.random_key(random.Random(3)) == b"x"
    assert db._order == [b"x"]


def test_random_key_and_lazy_expiry() -> None:
    owner = Owner()
    db = Database(0, owner)
    rng = random.Random(1)
    assert db.random_key(rng) is None
    db.set(b"a", b"1")
    db.set(b"b", b"1")
    db.set_expire(b"b", 500)  # already past
    assert db.random_key(rng) == b"a"
    assert db.lookup(b"b") is None
    assert owner.expired == [b"b"]


def test_expire_cycle_skips_stale_heap_entries() -> None:
    owner = Owner()
    db = Database(0, owner)
    db.set(b"k", b"v")
    db.set_expire(b"k", 2000)
    db.set_expire(b"k", 9000)  # the 2000 entry is now stale
    assert db.expire_cycle(5000, 100) == 0
    assert db.lookup(b"k") == b"v"
    assert db.expire_cycle(9000, 100) == 1
    assert db.data == {}
    db.set(b"p", b"v")
    db.set_expire(b"p", 100)
    db.persist(b"p")
    assert db.expire_cycle(10_000, 100) == 0
    assert db.lookup(b"p") == b"v"
