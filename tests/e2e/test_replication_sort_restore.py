"""SORT ... STORE and RESTORE replicate and persist exactly.

A seeded load of list / set / sorted-set / hash writes, SORT ... STORE (BY patterns, GET,
ALPHA, LIMIT; an empty result deletes the destination), DUMP + RESTORE with relative TTLs
(propagated as absolute, ABSTTL), REPLACE and TTLs already past runs against a primary with
an AOF and one replica. Proves: the replica's dataset and TTLs equal the primary's; a
replica added afterwards (full sync) and the primary restarted from its AOF hold the same.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import redis
from tests.conftest import ServerProcess, wait_until
from tests.e2e.repl_support import client, digest, link_up, wait_caught_up

Start = Callable[..., ServerProcess]

LOAD_COMMANDS = 1500
SOURCES = ["l1", "s1", "z1"]
DESTS = ["d1", "d2", "r1", "r2"]


@pytest.fixture
def start(start_node: Start) -> Start:
    return start_node


def _write(p: redis.client.Pipeline, rng: random.Random) -> None:
    e = str(rng.randrange(40))
    op = rng.randrange(5)
    if op == 0:
        p.rpush("l1", e)
    elif op == 1:
        p.sadd("s1", e)
    elif op == 2:
        p.zadd("z1", {e: rng.randrange(-5, 5)})
    elif op == 3:
        p.set(f"w_{e}", rng.randrange(100))
    else:
        p.hset(f"h_{e}", "f", rng.choice(["a", "b", "c", str(rng.randrange(9))]))


def _sort(p: redis.client.Pipeline, rng: random.Random) -> None:
    args: list[object] = ["SORT", rng.choice([*SOURCES, "missing"])]
    if rng.random() < 0.5:
        args += ["BY", rng.choice(["w_*", "h_*->f", "nosort"])]
    if rng.random() < 0.3:
        args += ["GET", "#", "GET", rng.choice(["w_*", "h_*->f"])]
    if rng.random() < 0.3:
        args += ["LIMIT", rng.randrange(5), rng.randrange(1, 10)]
    if rng.random() < 0.3:
        args.append("ALPHA")
    p.execute_command(*args, "STORE", rng.choice(DESTS[:2]))


def _restore(r: redis.Redis, p: redis.client.Pipeline, rng: random.Random) -> None:
    src = rng.choice([*SOURCES, *DESTS[:2]])
    payload = r.dump(src)
    if payload is None:
        return
    args: list[object] = ["RESTORE", rng.choice(DESTS[2:])]
    kind = rng.randrange(3)
    if kind == 0:
        args += [rng.choice([0, 50_000, 3_600_000]), payload]
    elif kind == 1:
        args += [int(r.time()[0]) * 1000 + rng.choice([-1000, 900_000]), payload, "ABSTTL"]
    else:
        args += [0, payload]
    p.execute_command(*args, "REPLACE")


def _load(port: int, seed: int) -> None:
    rng = random.Random(seed)
    r = client(port)
    sent = 0
    try:
        while sent < LOAD_COMMANDS:
            with r.pipeline(transaction=rng.random() < 0.2) as p:
                for _ in range(rng.randrange(1, 8)):
                    pick = rng.random()
                    if pick < 0.6:
                        _write(p, rng)
                    elif pick < 0.85:
                        _sort(p, rng)
                    else:
                        _restore(r, p, rng)
                    sent += 1
                p.execute(raise_on_error=False)
    finally:
        r.close()


def _ttls(r: redis.Redis) -> dict[str, int]:
    return {k: r.pexpiretime(k) for k in DESTS}


def test_sort_store_and_restore_replicate_and_persist(start: Start) -> None:
    primary = start("p", "--appendonly", "yes", "--appendfsync", "everysec")
    replica = start("r", "--replicaof", "127.0.0.1", str(primary.port))
    pc, rc = client(primary.port), client(replica.port)
    wait_until(lambda: link_up(rc), 20)

    _load(primary.port, 7)

    wait_caught_up(pc, rc)
    want = digest(pc)
    assert want != b"0" * 40
    assert digest(rc) == want
    assert _ttls(rc) == _ttls(pc)

    late = start("late", "--replicaof", "127.0.0.1", str(primary.port))
    lc = client(late.port)
    wait_until(lambda: link_up(lc), 20)
    wait_caught_up(pc, lc)
    assert digest(lc) == want

    ttls = _ttls(pc)
    try:
        pc.shutdown()
    except redis.ConnectionError:
        pass
    primary.stop()
    again = start("p", "--appendonly", "yes", port=primary.port)
    ac = client(again.port)
    wait_until(lambda: ac.info("persistence").get("loading") == 0, 60)
    assert digest(ac) == want
    assert _ttls(ac) == ttls
