"""Pub/Sub through database endpoints: a subscriber on one node's endpoint, a publisher on
another's, channels of every shard, patterns, shard channels; the (un)subscribe replies
and counts one Redis would send (RESP2 arrays and RESP3 pushes), PUBLISH's receiver count,
PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB merged over the shards,
the RESP2 subscribed-mode rule; with the cluster API, SSUBSCRIBE's MOVED and CROSSSLOT."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import redis
from tests.compat.resp_wire import Incomplete, Reply, parse_reply
from tests.e2e.cluster_api_support import ShardedDb, start_db

from ackdb.cluster.keyslot import key_slot
from ackdb.resp.request import encode_command

pytestmark = pytest.mark.e2e

DEADLINE_S = 10.0
# Channels on each of the three shards (slots 0-5460, 5461-10922, 10923-16383).
CHANNELS = [b"news", b"sport", b"{b}x", b"{c}y", b"{a}z"]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedDb]:
    db = start_db(tmp_path_factory.mktemp("pubsub_plain"), cluster_api=False)
    yield db
    db.stop()


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedDb]:
    db = start_db(tmp_path_factory.mktemp("pubsub_cluster"), cluster_api=True)
    yield db
    db.stop()


class Conn:
    """A raw connection that keeps every frame's type (pushes vs arrays)."""

    def __init__(self, db: ShardedDb, node: int) -> None:
        self.sock = socket.create_connection((f"127.0.0.{node + 1}", db.port), timeout=10)
        self.buf = bytearray()

    def send(self, *args: bytes | str) -> None:
        self.sock.sendall(encode_command([a if isinstance(a, bytes) else a.encode() for a in args]))

    def read(self) -> Reply:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            if self.buf:
                try:
                    reply, pos = parse_reply(self.buf, 0)
                except Incomplete:
                    pass
                else:
                    del self.buf[:pos]
                    return reply
            assert time.monotonic() < deadline, "no frame"
            chunk = self.sock.recv(1 << 16)
            assert chunk, "closed"
            self.buf += chunk

    def call(self, *args: bytes | str, frames: int = 1) -> list[Reply]:
        self.send(*args)
        return [self.read() for _ in range(frames)]

    def close(self) -> None:
        self.sock.close()


def frame(kind: str, t: str, *items: bytes | int | None) -> Reply:
    out: list[Reply] = [("$", t.encode())]
    for i in items:
        if isinstance(i, int):
            out.append((":", i))
        elif i is None:
            out.append(("_", None) if kind == ">" else ("$", None))
        else:
            out.append(("$", i))
    return (kind, out)


def shards_of(chans: list[bytes]) -> set[int]:
    return {0 if s <= 5460 else 1 if s <= 10922 else 2 for s in map(key_slot, chans)}


@pytest.mark.parametrize("protocol", [2, 3])
def test_subscriber_on_one_endpoint_publisher_on_another(plain: ShardedDb, protocol: int) -> None:
    assert shards_of(CHANNELS) == {0, 1, 2}
    k = ">" if protocol == 3 else "*"
    sub, pub = Conn(plain, 0), Conn(plain, 1)
    try:
        if protocol == 3:
            sub.call("HELLO", "3")
        got = sub.call("SUBSCRIBE", *CHANNELS, frames=len(CHANNELS))
        assert got == [frame(k, "subscribe", ch, i + 1) for i, ch in enumerate(CHANNELS)]
        assert sub.call("PSUBSCRIBE", "n*") == [frame(k, "psubscribe", b"n*", 6)]
        for ch in CHANNELS:
            expected = 2 if ch.startswith(b"n") else 1
            assert pub.call("PUBLISH", ch, b"hi " + ch) == [(":", expected)]
            assert sub.read() == frame(k, "message", ch, b"hi " + ch)
            if ch.startswith(b"n"):
                assert sub.read() == (
                    k,
                    [("$", b"pmessage"), ("$", b"n*"), ("$", ch), ("$", b"hi " + ch)],
                )
        assert pub.call("PUBLISH", "nobody", "x") == [(":", 1)]  # the pattern
        assert sub.read() == (k, [("$", b"pmessage"), ("$", b"n*"), ("$", b"nobody"), ("$", b"x")])
        # PUBSUB through a third endpoint: merged over the shards
        other = Conn(plain, 2)
        kind, chans = other.call("PUBSUB", "CHANNELS")[0]
        assert kind == "*" and sorted(c[1] for c in chans) == sorted(CHANNELS)  # type: ignore[union-attr, index]
        numsub = other.call("PUBSUB", "NUMSUB", *CHANNELS, "nobody")[0]
        assert numsub == (
            "*",
            [x for ch in CHANNELS for x in (("$", ch), (":", 1))] + [("$", b"nobody"), (":", 0)],
        )
        assert other.call("PUBSUB", "NUMPAT") == [(":", 1)]
        other.close()
        # RESP2 subscribed mode: only the subscribe family, PING, QUIT, RESET
        if protocol == 2:
            assert sub.call("GET", "k") == [
                (
                    "-",
                    b"ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                    b"QUIT / RESET are allowed in this context",
                )
            ]
            assert sub.call("PING") == [("*", [("$", b"pong"), ("$", b"")])]
        else:
            assert sub.call("GET", "k") == [("_", None)]
            assert sub.call("PING") == [("+", b"PONG")]
        got = sub.call("UNSUBSCRIBE", frames=len(CHANNELS))
        assert got == [
            frame(k, "unsubscribe", ch, len(CHANNELS) - i) for i, ch in enumerate(CHANNELS)
        ]
        assert sub.call("PUNSUBSCRIBE") == [frame(k, "punsubscribe", b"n*", 0)]
        assert sub.call("UNSUBSCRIBE") == [frame(k, "unsubscribe", None, 0)]
        assert pub.call("PUBLISH", "news", "late") == [(":", 0)]
        # back to normal on every shard connection: commands and replies in order
        assert sub.call("SET", "{b}k", "v") == [("+", b"OK")]
        assert sub.call("GET", "{b}k") == [("$", b"v")]
    finally:
        sub.close()
        pub.close()


def test_shard_channels_and_redis_py(plain: ShardedDb) -> None:
    sub = Conn(plain, 2)
    try:
        assert sub.call("SSUBSCRIBE", "{b}1", "{b}2", frames=2) == [
            frame("*", "ssubscribe", b"{b}1", 1),
            frame("*", "ssubscribe", b"{b}2", 2),
        ]
        assert sub.call("SSUBSCRIBE", "{b}3", "{c}1") == [
            ("-", b"CROSSSLOT Keys in request don't hash to the same slot")
        ]
        assert sub.call("SUBSCRIBE", "plain") == [frame("*", "subscribe", b"plain", 1)]
        pub = redis.Redis(host="127.0.0.2", port=plain.port, socket_timeout=10)
        assert pub.spublish("{b}1", "one") == 1
        assert sub.read() == frame("*", "smessage", b"{b}1", b"one")
        assert pub.publish("{b}1", "classic") == 0  # another namespace
        assert sorted(pub.execute_command("PUBSUB", "SHARDCHANNELS")) == [b"{b}1", b"{b}2"]
        assert pub.execute_command("PUBSUB", "SHARDNUMSUB", "{b}1", "{c}9") == [
            b"{b}1",
            1,
            b"{c}9",
            0,
        ]
        assert sub.call("SUNSUBSCRIBE", frames=2) == [
            frame("*", "sunsubscribe", b"{b}1", 1),
            frame("*", "sunsubscribe", b"{b}2", 0),
        ]
        assert sub.call("GET", "x")[0][0] == "-"  # still subscribed to "plain"
        # redis-py's PubSub object through two endpoints
        r = redis.Redis(host="127.0.0.1", port=plain.port, socket_timeout=10)
        p = r.pubsub(ignore_subscribe_messages=True)
        p.subscribe("news", "{a}z")
        p.psubscribe("s*")
        wait_subscribed(pub, "news")
        pub.publish("news", "1")
        pub.publish("{a}z", "2")
        pub.publish("sport", "3")
        got = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < 3 and time.monotonic() < deadline:
            m = p.get_message(timeout=0.2)
            if m is not None:
                got.append((m["type"], m["channel"], m["data"]))
        assert got == [
            ("message", b"news", b"1"),
            ("message", b"{a}z", b"2"),
            ("pmessage", b"sport", b"3"),
        ]
        p.close()
        pub.close()
    finally:
        sub.close()


def wait_subscribed(r: redis.Redis, channel: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while r.pubsub_numsub(channel)[0][1] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_cluster_api_shard_channels_are_owned(clustered: ShardedDb) -> None:
    sub = Conn(clustered, 0)
    try:
        # {b} (slot 3300) is node 0's; {a} (15495) node 2's
        assert sub.call("SSUBSCRIBE", "{a}1") == [
            ("-", b"MOVED 15495 127.0.0.3:%d" % clustered.port)
        ]
        assert sub.call("SSUBSCRIBE", "{b}1", "{f}1")[0][1].startswith(b"CROSSSLOT")  # type: ignore[union-attr]
        assert sub.call("SSUBSCRIBE", "{b}1") == [frame("*", "ssubscribe", b"{b}1", 1)]
        pub = Conn(clustered, 1)
        assert pub.call("SPUBLISH", "{b}1", "m") == [
            ("-", b"MOVED 3300 127.0.0.1:%d" % clustered.port)
        ]
        owner = Conn(clustered, 0)
        assert owner.call("SPUBLISH", "{b}1", "m") == [(":", 1)]
        assert sub.read() == frame("*", "smessage", b"{b}1", b"m")
        # classic Pub/Sub crosses nodes, as in a Redis Cluster
        assert sub.call("SUBSCRIBE", "{a}news") == [frame("*", "subscribe", b"{a}news", 1)]
        assert pub.call("PUBLISH", "{a}news", "x") == [(":", 1)]
        assert sub.read() == frame("*", "message", b"{a}news", b"x")
        pub.close()
        owner.close()
    finally:
        sub.close()


def test_a_client_leaving_frees_its_subscriptions(plain: ShardedDb) -> None:
    sub = Conn(plain, 0)
    sub.call("SUBSCRIBE", "gone", "{b}gone", frames=2)
    sub.call("PSUBSCRIBE", "g*")
    r = redis.Redis(host="127.0.0.3", port=plain.port, socket_timeout=10)
    assert r.publish("gone", "x") == 2
    sub.close()
    deadline = time.monotonic() + DEADLINE_S
    while r.publish("gone", "x") != 0 or r.execute_command("PUBSUB", "NUMPAT") != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r.close()
