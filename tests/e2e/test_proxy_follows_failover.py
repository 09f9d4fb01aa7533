"""The endpoint following a failover (issue 15 item 5) with real processes: two ``ackdb
server`` shards (shard 0 with a replica) behind ``ackdb proxy``, whose topology comes from
a fake node (``FakeMeta``). The test plays the metadata's part: it marks shard 0
FAILING, promotes the replica by hand (REPLICAOF NO ONE, the old primary REPLICAOF the new
one) and publishes the new primary. Checked: a write sent while the shard fails waits and
runs on the new primary; a client blocked on the old primary gets -TRYAGAIN and keeps
its connection; the other shard is served meanwhile; a stale topology's -READONLY makes
the endpoint re-read the topology at once and send the write again to the new primary (no
client error); a shard failing past the bound answers -TRYAGAIN. The session-level cases (reads retried, WAIT counts...) are in
tests/unit/proxy/test_proxy_failover.py."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
import redis

from ackdb.cluster.databases import Fence, Instance, ShardState, Topology
from ackdb.cluster.keyslot import key_slot
from conftest import wait_until
from proxy_support import FakeMeta, ShardedDb

pytestmark = pytest.mark.e2e


def _key_on(db: ShardedDb, shard: int) -> bytes:
    topo = db.topology().db
    i = 0
    while topo.shard_of_slot(key_slot(b"k%d" % i)).index != shard:
        i += 1
    return b"k%d" % i


def _with_shard0(db: ShardedDb, version: int, failing: bool) -> Topology:
    """``db``'s topology (its current primaries), shard 0 failing or not."""
    topo = db.topology()
    s0 = topo.db.shards[0]
    s0 = dataclasses.replace(
        s0,
        epoch=version,
        state=ShardState.FAILING if failing else ShardState.OK,
        fence=Fence(version, s0.primary, False, "", "test") if failing else None,
        replicas=tuple(Instance("n1", r.port) for r in db.replicas[0]),
    )
    shards = (s0, *topo.db.shards[1:])
    return dataclasses.replace(
        topo, version=version, db=dataclasses.replace(topo.db, shards=shards)
    )


def _swap(db: ShardedDb) -> None:
    """Promote shard 0's replica, demote its primary (what the agents would do)."""
    new, old = db.replicas[0][0], db.primaries[0]
    db.shard_client(new.port).execute_command("REPLICAOF", "NO", "ONE")
    db.shard_client(old.port).execute_command("REPLICAOF", "127.0.0.1", str(new.port))
    db.primaries[0], db.replicas[0] = new, [old]


def _version(r: redis.Redis) -> int:
    return int(r.info("server")["topology_version"])


def test_the_endpoint_follows_a_failover(tmp_path: Path) -> None:
    meta = FakeMeta()
    try:
        with ShardedDb(tmp_path, shards=2, replicas={0: 1}, meta=meta) as db:
            _follow(db, meta)
    finally:
        meta.close()


def _follow(db: ShardedDb, meta: FakeMeta) -> None:  # noqa: PLR0915 - one scenario
    k0, k1 = _key_on(db, 0), _key_on(db, 1)
    r = db.client()
    r.set(k0, "v0")
    assert r.wait(1, 2000) == 1
    # A client blocked on shard 0's primary.
    blocked = db.client()
    outcome: dict[str, object] = {}

    def blpop() -> None:
        try:
            outcome["blpop"] = blocked.blpop([b"{%s}list" % k0], 0)
        except redis.ResponseError as e:
            outcome["blpop"] = e

    threading.Thread(target=blpop, daemon=True).start()
    old = db.shard_client(db.primaries[0].port)
    wait_until(lambda: old.info("clients")["blocked_clients"] == 1, 5)

    # Shard 0 fails: a write for it waits, shard 1 is served meanwhile.
    meta.publish(_with_shard0(db, 2, failing=True))
    wait_until(lambda: _version(r) == 2, 5)
    writer = db.client()

    def write() -> None:
        t0 = time.monotonic()
        try:
            outcome["set"] = writer.set(k0, "v1")
        except redis.ResponseError as e:
            outcome["set"] = e
        outcome["set_s"] = time.monotonic() - t0

    t = threading.Thread(target=write, daemon=True)
    t.start()
    time.sleep(0.3)
    assert "set" not in outcome  # parked
    t0 = time.monotonic()
    assert r.set(k1, "x") and r.get(k1) == b"x"
    assert time.monotonic() - t0 < 1.5  # not held behind the failing shard

    # The new primary is published: the parked write runs there.
    _swap(db)
    meta.publish(_with_shard0(db, 3, failing=False))
    t.join(5)
    assert outcome["set"] is True and outcome["set_s"] < 2.0, outcome  # type: ignore[operator]
    assert db.shard_client(db.primaries[0].port).get(k0) == b"v1"
    wait_until(lambda: "blpop" in outcome, 5)
    # -TRYAGAIN when the endpoint dropped the connection to the old primary first, the
    # shard's own -UNBLOCKED when its demotion (REPLICAOF) unblocked it first.
    err = outcome["blpop"]
    assert isinstance(err, redis.ResponseError), outcome
    assert isinstance(err, redis.exceptions.TryAgainError) or str(err).startswith("UNBLOCKED")
    assert blocked.ping() and writer.get(k0) == b"v1"  # connections kept

    # A stale topology: the primary was demoted behind the endpoint's back. Its -READONLY
    # (the write did not run) makes the endpoint re-read the topology at once (the long
    # poll is not woken: only the hint makes it look) and send the write again to the new
    # primary: the client sees no error, only the pause.
    _swap(db)
    with meta.cond:
        meta.topology = _with_shard0(db, 4, failing=False)
    t0 = time.monotonic()
    assert r.set(k0, "v2") is True
    assert time.monotonic() - t0 < 2.0
    assert _version(r) == 4 and r.get(k0) == b"v2"
    assert db.shard_client(db.primaries[0].port).get(k0) == b"v2"

    # Failing past the bound (2 s, the high profile): -TRYAGAIN; and what was in flight to
    # the old primary (a blocked client here) is cut off then too.
    del outcome["blpop"]
    threading.Thread(target=blpop, daemon=True).start()
    primary = db.shard_client(db.primaries[0].port)
    wait_until(lambda: primary.info("clients")["blocked_clients"] == 1, 5)
    meta.publish(_with_shard0(db, 5, failing=True))
    wait_until(lambda: _version(r) == 5, 5)
    t0 = time.monotonic()
    with pytest.raises(redis.exceptions.TryAgainError):
        r.get(k0)
    assert 1.9 < time.monotonic() - t0 < 4
    assert r.get(k1) == b"x"
    wait_until(lambda: "blpop" in outcome, 3)
    assert isinstance(outcome["blpop"], redis.exceptions.TryAgainError), outcome
    for c in (r, blocked, writer):
        c.close()
