"""Bitmaps, HyperLogLogs and geo sets replicate and persist exactly.

A seeded load of SETBIT, BITFIELD (every overflow mode, FAIL included), BITOP, PFADD,
PFMERGE, PFCOUNT (whose cache update Redis propagates), PFDEBUG TODENSE, GEOADD (which
goes out as the ZADD it runs), GEOSEARCHSTORE and GEORADIUS ... STORE runs against a
primary with an AOF and one replica. Proves: the replica's dataset equals the primary's
(DEBUG DIGEST, which covers the HLL bytes and their cached cardinality); a replica added
afterwards (full sync) and the primary restarted from its AOF hold the same dataset.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import redis
from tests.conftest import ServerProcess, wait_until
from tests.e2e.repl_support import client, digest, link_up, wait_caught_up

Start = Callable[..., ServerProcess]

LOAD_COMMANDS = 2500
BITMAPS = [f"b{i}" for i in range(3)]
HLLS = [f"h{i}" for i in range(3)]
GEOS = [f"g{i}" for i in range(3)]


@pytest.fixture
def start(start_node: Start) -> Start:
    return start_node


def _bits(p: redis.client.Pipeline, rng: random.Random) -> None:
    k = rng.choice(BITMAPS)
    op = rng.randrange(5)
    if op == 0:
        p.setbit(k, rng.randrange(2000), rng.randrange(2))
    elif op == 1:
        f = p.bitfield(k)  # type: ignore[no-untyped-call]
        f.overflow(rng.choice(["WRAP", "SAT", "FAIL"]))
        f.incrby(
            rng.choice(["u4", "i8", "i17", "u63"]),
            f"#{rng.randrange(30)}",
            rng.randrange(-300, 300),
        )
        f.set("i5", rng.randrange(200), rng.randrange(-40, 40))
        p.execute_command(*f.command)
    elif op == 2:
        p.bitop(rng.choice(["AND", "OR", "XOR"]), rng.choice(BITMAPS), *rng.sample(BITMAPS, 2))
    elif op == 3:
        p.bitop("NOT", rng.choice(BITMAPS), k)
    else:
        p.bitcount(k)


def _hll(p: redis.client.Pipeline, rng: random.Random) -> None:
    k = rng.choice(HLLS)
    op = rng.randrange(5)
    if op == 0:
        n = rng.choice([1, 5, 50, 400])
        p.pfadd(k, *[f"e{rng.randrange(100000)}" for _ in range(n)])
    elif op == 1:
        p.pfmerge(rng.choice(HLLS), *rng.sample(HLLS, 2))
    elif op in (2, 3):
        p.pfcount(k)  # the first count after a change stores the cache: propagated
    else:
        p.execute_command("PFDEBUG", "TODENSE", k)


def _geo(p: redis.client.Pipeline, rng: random.Random) -> None:
    k = rng.choice(GEOS)
    op = rng.randrange(4)
    if op == 0:
        values: list[object] = []
        for _ in range(rng.randrange(1, 5)):
            values += [rng.uniform(-20, 40), rng.uniform(30, 60), f"m{rng.randrange(300)}"]
        p.geoadd(k, values, ch=rng.random() < 0.5)
    elif op == 1:
        p.geosearchstore(
            rng.choice(GEOS), k, longitude=10, latitude=45,
            radius=rng.choice([100, 1000, 3000]), unit="km",
            storedist=rng.random() < 0.5, count=rng.choice([None, 5]),
        )  # fmt: skip
    elif op == 2:
        p.georadius(k, 10, 45, 800, "km", store=rng.choice(GEOS))
    else:
        p.zrem(k, f"m{rng.randrange(300)}")


def _load(port: int, seed: int) -> None:
    rng = random.Random(seed)
    r = client(port)
    sent = 0
    try:
        while sent < LOAD_COMMANDS:
            with r.pipeline(transaction=rng.random() < 0.2) as p:
                for _ in range(rng.randrange(1, 10)):
                    rng.choice([_bits, _hll, _geo])(p, rng)
                    sent += 1
                p.execute(raise_on_error=False)
    finally:
        r.close()


def test_bits_hll_geo_replicate_and_persist(start: Start) -> None:
    primary = start("p", "--appendonly", "yes", "--appendfsync", "everysec")
    replica = start("r", "--replicaof", "127.0.0.1", str(primary.port))
    pc, rc = client(primary.port), client(replica.port)
    wait_until(lambda: link_up(rc), 20)

    _load(primary.port, 11)
    for k in HLLS:  # leave some caches valid, and a dense value among them
        pc.pfcount(k)

    wait_caught_up(pc, rc)
    want = digest(pc)
    assert want != b"0" * 40
    assert digest(rc) == want
    for k in HLLS:
        assert rc.get(k) == pc.get(k)  # the bytes themselves, cache included

    late = start("late", "--replicaof", "127.0.0.1", str(primary.port))
    lc = client(late.port)
    wait_until(lambda: link_up(lc), 20)
    wait_caught_up(pc, lc)
    assert digest(lc) == want

    keys = BITMAPS + HLLS + GEOS
    before = {k: pc.execute_command("DEBUG", "DIGEST-VALUE", k) for k in keys}
    try:
        pc.shutdown()
    except redis.ConnectionError:
        pass
    primary.stop()
    again = start("p", "--appendonly", "yes", port=primary.port)
    ac = client(again.port)
    # DEBUG is served while the AOF still loads (as in Redis): wait for the whole file.
    wait_until(lambda: ac.info("persistence").get("loading") == 0, 60)
    after = {k: ac.execute_command("DEBUG", "DIGEST-VALUE", k) for k in keys}
    assert after == before
    assert digest(ac) == want
