"""PUBLISH and SPUBLISH on a primary reach subscribers on its replicas (Redis 7.0
standalone propagates both to the replication stream, never to the AOF), also from inside
a transaction, in order."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from tests.conftest import ServerProcess, wait_until
from tests.e2e.repl_support import client, link_up, wait_caught_up


def _messages(
    p: redis.client.PubSub, n: int, timeout_s: float = 10.0, kind: str = "message"
) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        m = p.get_message(timeout=0.2)
        if m is not None and m["type"] == kind:
            got.append(m["data"])
    return got


def test_publish_reaches_subscribers_on_replicas(start_ackdb: Callable[..., ServerProcess]) -> None:
    primary = start_ackdb("--appendonly", "yes")
    replica = start_ackdb("--replicaof", "127.0.0.1", str(primary.port))
    pc, rc = client(primary.port), client(replica.port)
    wait_until(lambda: link_up(rc), 20)
    sub = rc.pubsub()
    sub.subscribe("news")
    wait_until(lambda: (sub.get_message(timeout=0.1) or {}).get("type") == "subscribe", 5)
    assert pc.publish("news", "one") == 0  # nobody subscribed on the primary
    pipe = pc.pipeline(transaction=True)
    pipe.set("k", "v")
    pipe.publish("news", "two")
    pipe.execute()
    assert _messages(sub, 2) == [b"one", b"two"]
    wait_caught_up(pc, rc)
    assert rc.get("k") == b"v"
    # Never in the AOF: a restart replays no PUBLISH (it would be lost anyway).
    aof = b"".join(f.read_bytes() for f in (primary.cwd / "appendonlydir").glob("*.incr.aof"))
    assert b"PUBLISH" not in aof.upper() and b"SET" in aof.upper()
    sub.close()


def test_spublish_reaches_shard_subscribers_on_replicas(
    start_ackdb: Callable[..., ServerProcess],
) -> None:
    primary = start_ackdb("--appendonly", "yes")
    replica = start_ackdb("--replicaof", "127.0.0.1", str(primary.port))
    pc, rc = client(primary.port), client(replica.port)
    wait_until(lambda: link_up(rc), 20)
    sub = rc.pubsub()
    sub.ssubscribe("orders")
    wait_until(lambda: (sub.get_message(timeout=0.1) or {}).get("type") == "ssubscribe", 5)
    assert pc.spublish("orders", "one") == 0
    pipe = pc.pipeline(transaction=True)
    pipe.spublish("orders", "two")
    pipe.set("k", "v")
    pipe.execute()
    assert _messages(sub, 2, kind="smessage") == [b"one", b"two"]
    wait_caught_up(pc, rc)
    aof = b"".join(f.read_bytes() for f in (primary.cwd / "appendonlydir").glob("*.incr.aof"))
    assert b"SPUBLISH" not in aof.upper() and b"SET" in aof.upper()
    sub.close()
