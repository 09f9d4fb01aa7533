"""Random and blocking commands of lists, sets and sorted sets replicate as their effects.

SPOP with and without a count, SMOVE, LMOVE, ZPOPMIN/ZMPOP/LMPOP, the Z*STORE and S*STORE forms and
the blocking pops (BLPOP, BRPOP, BLMOVE, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP), served by
pushes from another client, run under a seeded load against a primary with an AOF and
one replica. Proves: at the end the replica's dataset equals the primary's (DEBUG DIGEST);
a replica added afterwards (full sync) and the primary restarted from its AOF hold the
same dataset too. A command whose result is
random would diverge here if it propagated as sent instead of as what it did.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest
import redis
from tests.conftest import ServerProcess, wait_until
from tests.e2e.repl_support import (
    BlockingLoad,
    client,
    digest,
    link_up,
    loaded,
    wait_caught_up,
)

Start = Callable[..., ServerProcess]

LOAD_COMMANDS = 3000  # commands of the main writer, at least
SERVED_MIN = 100  # the writer goes on until the blocking pops were served this often
BLOCKERS = 3  # clients looping on blocking pops
BLOCK_TIMEOUT_S = 0.05  # each blocking pop's timeout: many time out, many are served
LOAD_MAX_S = 60.0

LISTS = [f"l{i}" for i in range(4)]
SETS = [f"s{i}" for i in range(4)]
ZSETS = [f"z{i}" for i in range(4)]


@pytest.fixture
def start(start_node: Start) -> Start:
    return start_node


def _one_command(p: redis.client.Pipeline, rng: random.Random) -> None:
    lk, sk, zk = rng.choice(LISTS), rng.choice(SETS), rng.choice(ZSETS)
    m = str(rng.randrange(40))
    op = rng.randrange(22)
    if op == 0:
        p.lpush(lk, *[str(rng.randrange(100)) for _ in range(rng.randrange(1, 4))])
    elif op == 1:
        p.rpush(lk, m)
    elif op == 2:
        p.lmpop(2, lk, rng.choice(LISTS), direction=rng.choice(["LEFT", "RIGHT"]), count=2)
    elif op == 3:
        p.linsert(lk, rng.choice(["BEFORE", "AFTER"]), m, "ins")
    elif op == 4:
        p.lrem(lk, rng.randrange(-2, 3), m)
    elif op == 5:
        p.ltrim(lk, 0, rng.randrange(5, 30))
    elif op == 6:
        p.lmove(lk, rng.choice(LISTS), rng.choice(["LEFT", "RIGHT"]), rng.choice(["LEFT", "RIGHT"]))
    elif op == 7:
        p.sadd(sk, *[str(rng.randrange(60)) for _ in range(rng.randrange(1, 6))])
    elif op == 8:
        p.spop(sk)  # a random member: must go out as SREM of that member
    elif op == 9:
        p.spop(sk, rng.randrange(1, 5))
    elif op == 10:
        p.smove(sk, rng.choice(SETS), m)
    elif op == 11:
        p.sinterstore("s-inter", [sk, rng.choice(SETS)])
    elif op == 12:
        p.sunionstore(rng.choice(SETS), [sk, rng.choice(SETS)])
    elif op == 13:
        p.zadd(zk, {m: rng.choice([rng.random(), rng.randrange(10), float("inf")])})
    elif op == 14:
        p.zincrby(zk, rng.uniform(-2, 2), m)
    elif op == 15:
        p.zpopmin(zk, rng.randrange(1, 3))
    elif op == 16:
        p.zpopmax(zk)
    elif op == 17:
        lowest = rng.random() < 0.5
        p.zmpop(2, [zk, rng.choice(ZSETS)], min=lowest, max=not lowest, count=2)
    elif op == 18:
        p.zunionstore(rng.choice(ZSETS), [zk, rng.choice(ZSETS)], aggregate="MAX")
    elif op == 19:
        p.zremrangebyrank(zk, 0, 1)
    elif op == 20:
        p.expire(rng.choice(LISTS + SETS + ZSETS), 3600)
    else:
        p.srandmember(sk, -3)  # no effect at all
        p.zrandmember(zk, 2)


def _blocker(port: int, seed: int, done: threading.Event, served: list[int]) -> None:
    rng = random.Random(seed)
    r = client(port)
    try:
        while not done.is_set():
            op = rng.randrange(7)
            t = BLOCK_TIMEOUT_S
            if op == 0:
                got = r.blpop(rng.sample(LISTS, 2), timeout=t)
            elif op == 1:
                got = r.brpop([rng.choice(LISTS)], timeout=t)
            elif op == 2:
                got = r.blmove(rng.choice(LISTS), rng.choice(LISTS), t, "RIGHT", "LEFT")
            elif op == 3:
                got = r.blmpop(t, 2, *rng.sample(LISTS, 2), direction="LEFT", count=3)
            elif op == 4:
                got = r.bzpopmin(rng.sample(ZSETS, 2), timeout=t)
            elif op == 5:
                got = r.bzpopmax([rng.choice(ZSETS)], timeout=t)
            else:
                got = r.bzmpop(t, 2, rng.sample(ZSETS, 2), min=True, count=2)
            if got:
                served[0] += 1
    finally:
        r.close()


LOAD = BlockingLoad(
    _one_command, _blocker, LOAD_COMMANDS, SERVED_MIN, BLOCKERS, batch_max=10, max_s=LOAD_MAX_S
)


def test_random_and_blocking_commands_replicate_as_effects(start: Start) -> None:
    primary = start("p", "--appendonly", "yes", "--appendfsync", "everysec")
    replica = start("r", "--replicaof", "127.0.0.1", str(primary.port))
    pc, rc = client(primary.port), client(replica.port)
    wait_until(lambda: link_up(rc), 20)

    served = LOAD.run(primary.port, writer_seed=7, blocker_seed=100)
    assert served >= SERVED_MIN, "the blocking pops were hardly ever served: the load is wrong"

    wait_caught_up(pc, rc)
    want = digest(pc)
    assert want != b"0" * 40
    assert digest(rc) == want

    # A replica that joins now gets the same dataset by a full sync.
    late = start("late", "--replicaof", "127.0.0.1", str(primary.port))
    lc = client(late.port)
    wait_until(lambda: link_up(lc), 20)
    wait_caught_up(pc, lc)
    assert digest(lc) == want

    # The AOF carries the same effects: the primary restarted from it agrees.
    try:
        pc.shutdown()
    except redis.ConnectionError:
        pass
    primary.stop()
    again = start("p", "--appendonly", "yes", port=primary.port)
    ac = client(again.port)
    wait_until(lambda: loaded(ac), 30)
    assert digest(ac) == want
