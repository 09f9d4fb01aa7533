"""Pub/Sub in the session core, without sockets: where (un)subscribe requests go, the
client's frames and counts, waiting for the shards' confirmations, messages told apart
from replies, the RESP3 switch of a subscribed shard connection and back, the RESP2
subscribed-mode rule, renewal after a lost connection."""

from __future__ import annotations

from ackdb.cluster.databases import (
    Database,
    DbType,
    Instance,
    Persistence,
    Shard,
    Topology,
    slot_ranges,
)
from ackdb.cluster.keyslot import key_slot
from ackdb.proxy.pubsub import is_message
from ackdb.proxy.router import Router
from ackdb.proxy.session import Session
from ackdb.resp.request import encode_command

# {b} is slot 3300 (shard 0), {c} 7365 (shard 1), {a} 15495 (shard 2)


def session(cluster_api: bool = False) -> Session:
    shards = tuple(
        Shard(i, a, b, 1, Instance(f"n{i}", 30000 + i), ())
        for i, (a, b) in enumerate(slot_ranges(3))
    )
    db = Database(
        "d", 1, DbType.SHARDED, 12000, False, 0, Persistence.NONE, "", cluster_api, shards
    )
    hosts = {f"n{i}": f"127.0.0.{i + 1}" for i in range(3)}
    return Session(Router.of(Topology(1, db, hosts, "n0")), 1)


def cmd(*words: str) -> list[bytes]:
    return [w.encode() for w in words]


def sent(s: Session) -> dict[int, bytes]:
    return {shard: s.take(shard) for shard in s.take_touched()}


def out(s: Session) -> bytes:
    data = b"".join(s.out)
    s.out.clear()
    return data


def push(kind: str, *items: bytes | int) -> bytes:
    parts = [b"$%d\r\n%s\r\n" % (len(kind), kind.encode())]
    for i in items:
        parts.append(b":%d\r\n" % i if isinstance(i, int) else b"$%d\r\n%s\r\n" % (len(i), i))
    return b">%d\r\n" % len(parts) + b"".join(parts)


HELLO3_REPLY = b"%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n"


def test_subscribe_goes_to_the_channels_shard_in_resp3_and_waits_for_it() -> None:
    s = session()
    assert key_slot(b"{b}x") == 3300 and key_slot(b"{a}x") == 15495
    s.commands([cmd("SUBSCRIBE", "{b}x", "{a}x")])
    assert sent(s) == {
        0: encode_command(cmd("HELLO", "3")) + encode_command(cmd("SUBSCRIBE", "{b}x")),
        2: encode_command(cmd("HELLO", "3")) + encode_command(cmd("SUBSCRIBE", "{a}x")),
    }
    assert s.proto == [3, 0, 3]
    s.replies(0, [HELLO3_REPLY, push("subscribe", b"{b}x", 1)])
    assert out(s) == b""  # shard 2 has not confirmed yet
    s.replies(2, [HELLO3_REPLY, push("subscribe", b"{a}x", 1)])
    # the client's frames: RESP2 arrays with its own counts
    assert out(s) == (
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\n{b}x\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$4\r\n{a}x\r\n:2\r\n"
    )
    # a message is told apart from the reply a shard owes, and reaches the client as an array
    s.commands([cmd("PING")])
    assert out(s) == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    s.commands([cmd("GET", "k")])
    assert out(s).startswith(b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE")
    s.replies(0, [push("message", b"{b}x", b"hi")])
    assert out(s) == b"*3\r\n$7\r\nmessage\r\n$4\r\n{b}x\r\n$2\r\nhi\r\n"


def test_unsubscribing_the_last_returns_the_connection_to_resp2() -> None:
    s = session()
    s.commands([cmd("SUBSCRIBE", "{b}x")])
    sent(s)
    s.replies(0, [HELLO3_REPLY, push("subscribe", b"{b}x", 1)])
    out(s)
    s.commands([cmd("UNSUBSCRIBE"), cmd("SET", "{b}k", "v")])
    assert sent(s) == {
        0: encode_command(cmd("UNSUBSCRIBE", "{b}x"))
        + encode_command(cmd("HELLO", "2"))
        + encode_command(cmd("SET", "{b}k", "v"))
    }
    assert s.pubsub is None and s.proto[0] == 2
    # a message published before the shard saw UNSUBSCRIBE still comes (as a push from the
    # shard), before the unsubscribe frame, as one Redis would send them
    s.replies(0, [push("message", b"{b}x", b"late"), push("unsubscribe", b"{b}x", 0)])
    s.replies(0, [b"*2\r\n$6\r\nserver\r\n$5\r\nredis\r\n", b"+OK\r\n"])
    assert out(s) == (
        b"*3\r\n$7\r\nmessage\r\n$4\r\n{b}x\r\n$4\r\nlate\r\n"
        b"*3\r\n$11\r\nunsubscribe\r\n$4\r\n{b}x\r\n:0\r\n+OK\r\n"
    )
    assert s.reusable(0)


def test_a_message_never_comes_before_its_subscribe_frame() -> None:
    s = session()
    s.commands([cmd("SUBSCRIBE", "{b}x", "{a}x")])
    sent(s)
    # shard 0 confirmed and already delivers; shard 2 has not confirmed: the message waits
    s.replies(0, [HELLO3_REPLY, push("subscribe", b"{b}x", 1), push("message", b"{b}x", b"m")])
    assert out(s) == b""
    s.replies(2, [HELLO3_REPLY, push("subscribe", b"{a}x", 1)])
    assert out(s).endswith(b":2\r\n*3\r\n$7\r\nmessage\r\n$4\r\n{b}x\r\n$1\r\nm\r\n")
    # once confirmed, a message in the same read as a reply comes after it
    s.commands([cmd("PSUBSCRIBE", "z*")])
    sent(s)
    for shard in range(3):
        raws = [push("psubscribe", b"z*", 2 if shard != 1 else 1)]
        if shard == 1:
            raws.insert(0, HELLO3_REPLY)
        s.replies(shard, raws + ([push("message", b"{a}x", b"n")] if shard == 2 else []))
    assert out(s) == (
        b"*3\r\n$10\r\npsubscribe\r\n$2\r\nz*\r\n:3\r\n"
        b"*3\r\n$7\r\nmessage\r\n$4\r\n{a}x\r\n$1\r\nn\r\n"
    )


def test_patterns_go_to_every_shard_and_count_once() -> None:
    s = session()
    s.protocol = 3
    s.commands([cmd("PSUBSCRIBE", "n*")])
    assert set(sent(s)) == {0, 1, 2}
    for shard in range(3):
        s.replies(shard, [HELLO3_REPLY, push("psubscribe", b"n*", 1)])
    assert out(s) == b">3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n"
    # RESP3: other commands run meanwhile, their replies kept apart from messages
    s.commands([cmd("GET", "{c}k")])
    sent(s)
    s.replies(1, [push("pmessage", b"n*", b"news", b"m"), b"$1\r\nv\r\n"])
    assert out(s) == (b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nm\r\n$1\r\nv\r\n")


def test_shard_channels_one_slot_and_cluster_ownership() -> None:
    s = session()
    s.commands([cmd("SSUBSCRIBE", "{b}1", "{c}1")])
    assert out(s) == b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    c = session(cluster_api=True)
    c.commands([cmd("SSUBSCRIBE", "{a}1")])
    assert out(c) == b"-MOVED 15495 127.0.0.3:12000\r\n"
    c.commands([cmd("SSUBSCRIBE", "{b}1", "{b}2")])
    assert set(sent(c)) == {0}
    c.replies(0, [HELLO3_REPLY, push("ssubscribe", b"{b}1", 1), push("ssubscribe", b"{b}2", 2)])
    assert out(c) == (
        b"*3\r\n$10\r\nssubscribe\r\n$4\r\n{b}1\r\n:1\r\n*3\r\n$10\r\nssubscribe\r\n$4\r\n{b}2\r\n:2\r\n"
    )


def test_a_lost_connection_renews_its_subscriptions() -> None:
    s = session()
    s.commands([cmd("SUBSCRIBE", "{b}x")])
    sent(s)
    s.replies(0, [HELLO3_REPLY, push("subscribe", b"{b}x", 1)])
    out(s)
    s.lost(0)
    assert sent(s) == {
        0: encode_command(cmd("HELLO", "3")) + encode_command(cmd("SUBSCRIBE", "{b}x"))
    }
    s.replies(0, [HELLO3_REPLY, push("subscribe", b"{b}x", 1)])
    assert out(s) == b""  # renewed quietly
    assert not s.reusable(0)


def test_publish_goes_to_the_channels_shard() -> None:
    s = session()
    s.commands([cmd("PUBLISH", "{a}x", "m")])
    assert sent(s) == {2: encode_command(cmd("PUBLISH", "{a}x", "m"))}


def test_is_message() -> None:
    assert is_message(push("message", b"c", b"m"))
    assert is_message(push("smessage", b"c", b"m"))
    assert is_message(push("pmessage", b"p", b"c", b"m"))
    assert not is_message(push("subscribe", b"c", 1))
    assert not is_message(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n")  # an array reply


def test_pubsub_and_cluster_commands_are_refused_in_a_transaction() -> None:
    s = session()
    s.commands([cmd("MULTI"), cmd("PUBLISH", "c", "m"), cmd("SUBSCRIBE", "c")])
    replies = out(s)
    assert replies.startswith(b"+OK\r\n-ERR 'publish' is not available inside a transaction")
    assert b"-ERR 'subscribe' is not available inside a transaction" in replies
