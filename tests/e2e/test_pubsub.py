"""Pub/Sub against a spawned ackdb with redis-py: RESP2 subscribed mode and RESP3 pushes."""

from __future__ import annotations

import socket
import time

import pytest

from conftest import ServerProcess, wait_until

pytestmark = pytest.mark.e2e


def get_message(ps, timeout_s: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = ps.get_message(timeout=0.1)
        if m is not None:
            return m
    raise TimeoutError("no message")


@pytest.mark.parametrize("protocol", [2, 3])
def test_subscribe_publish_patterns(ackdb: ServerProcess, protocol: int) -> None:
    sub = ackdb.client(protocol=protocol)
    pub = ackdb.client(protocol=protocol)
    ps = sub.pubsub()
    ps.subscribe("news")
    assert get_message(ps)["type"] == "subscribe"
    ps.psubscribe("n*")
    assert get_message(ps) == {"type": "psubscribe", "pattern": None, "channel": b"n*", "data": 2}
    wait_until(lambda: pub.pubsub_numsub("news") == [(b"news", 1)], 5)
    assert pub.pubsub_numpat() == 1
    assert pub.pubsub_channels() == [b"news"]
    assert pub.publish("news", "hello") == 2
    m1, m2 = get_message(ps), get_message(ps)
    assert m1 == {"type": "message", "pattern": None, "channel": b"news", "data": b"hello"}
    assert m2 == {"type": "pmessage", "pattern": b"n*", "channel": b"news", "data": b"hello"}
    assert pub.publish("other", "x") == 0
    ps.unsubscribe()
    ps.punsubscribe()
    assert get_message(ps)["type"] == "unsubscribe"
    assert get_message(ps)["type"] == "punsubscribe"
    wait_until(lambda: pub.pubsub_numpat() == 0, 5)
    ps.close()


def raw(port: int, payload: bytes, expect: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        data = b""
        while len(data) < expect:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_resp2_subscribed_mode_rules(ackdb: ServerProcess) -> None:
    want = (
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
        b"RESET are allowed in this context\r\n"
        b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n"
        b"$-1\r\n"
    )
    got = raw(ackdb.port, b"SUBSCRIBE c\r\nGET k\r\nPING\r\nUNSUBSCRIBE\r\nGET k\r\n", len(want))
    assert got == want


def test_resp3_subscriber_may_run_commands(ackdb: ServerProcess) -> None:
    tail = (
        b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n_\r\n"
        b">3\r\n$11\r\nunsubscribe\r\n$1\r\nx\r\n:1\r\n"
    )
    with socket.create_connection(("127.0.0.1", ackdb.port), timeout=5) as s:
        s.sendall(b"HELLO 3\r\nSUBSCRIBE c\r\nGET k\r\nUNSUBSCRIBE x\r\n")
        data = b""
        deadline = time.monotonic() + 5
        while not data.endswith(tail) and time.monotonic() < deadline:
            data += s.recv(65536)
    assert data.startswith(b"%7\r\n")
    assert data.endswith(tail)


def test_unsubscribe_without_subscriptions(ackdb: ServerProcess) -> None:
    want = b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
    assert raw(ackdb.port, b"UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\n", len(want)) == want
