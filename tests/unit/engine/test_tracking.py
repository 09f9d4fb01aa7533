"""CLIENT TRACKING and CLIENT REPLY in the core, without a network (the byte-for-byte
comparison with Redis is tests/compat/test_tracking_vs_redis.py): what costs nothing while
unused stays unused, invalidations reach the right connection at the right time."""

from __future__ import annotations

from ackdb.engine.tracking import TRACKER
from ackdb.keyspace.db import TouchAll
from conftest import Harness

INVALIDATE_K = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"


def test_nothing_is_installed_while_nobody_tracks(harness: Harness) -> None:
    c = harness.client()
    harness.run(c, "SET", "k", "v")
    harness.run(c, "GET", "k")
    assert not c.gate and c.tracking is None
    assert all(not db.watched and db.watched.__class__ is dict for db in harness.server.dbs)


def test_a_read_key_is_invalidated_once_on_another_clients_write(harness: Harness) -> None:
    a, b = harness.client(), harness.client()
    harness.run(a, "HELLO", "3")
    harness.run(a, "CLIENT", "TRACKING", "on")
    assert a.gate
    harness.run(a, "GET", "k")
    assert all(TRACKER in db.watched[b"k"] for db in harness.server.dbs)
    harness.run(b, "SELECT", "3")
    harness.run(b, "SET", "k", "1")  # another database: the table has names only
    assert a.conn.written == [INVALIDATE_K]
    harness.run(b, "SET", "k", "2")
    assert a.conn.written == [INVALIDATE_K]  # forgotten until read again
    assert all(not db.watched for db in harness.server.dbs)
    harness.run(a, "CLIENT", "TRACKING", "off")
    assert not a.gate


def test_own_write_is_announced_after_the_reply_unless_noloop(harness: Harness) -> None:
    a = harness.client()
    harness.run(a, "HELLO", "3")
    harness.run(a, "CLIENT", "TRACKING", "on")
    harness.run(a, "GET", "k")
    assert harness.run(a, "SET", "k", "1") == b"+OK\r\n" + INVALIDATE_K
    harness.run(a, "CLIENT", "TRACKING", "on", "NOLOOP")
    harness.run(a, "GET", "k")
    assert harness.run(a, "SET", "k", "2") == b"+OK\r\n"


def test_bcast_maps_come_and_go(harness: Harness) -> None:
    a, b = harness.client(), harness.client()
    harness.run(a, "HELLO", "3")
    harness.run(a, "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "k")
    assert all(db.watched.__class__ is TouchAll for db in harness.server.dbs)
    harness.run(b, "SET", "k", "1")
    harness.run(b, "SET", "x", "1")
    assert a.conn.written == [INVALIDATE_K]
    harness.run(a, "CLIENT", "TRACKING", "off")
    assert all(db.watched.__class__ is dict for db in harness.server.dbs)


def test_client_reply_off_and_skip(harness: Harness) -> None:
    c = harness.client()
    assert harness.run(c, "CLIENT", "REPLY", "OFF") == b""
    assert harness.run(c, "PING") == b""
    assert harness.run(c, "CLIENT", "REPLY", "ON") == b"+OK\r\n"
    assert harness.run(c, "CLIENT", "REPLY", "SKIP") == b""
    assert harness.run(c, "PING") == b""
    assert harness.run(c, "PING") == b"+PONG\r\n"
    assert not c.gate
