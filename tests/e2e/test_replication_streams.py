"""Streams and their consumer groups replicate, persist and full-sync as Redis's effects.

A seeded load of XADD (``*``, ``ms-*`` and explicit ids, MAXLEN / MINID with ``=`` and
``~`` and LIMIT, NOMKSTREAM), XDEL, XTRIM, XSETID, XGROUP (CREATE with MKSTREAM and
ENTRIESREAD, SETID, CREATECONSUMER, DELCONSUMER, DESTROY), XREADGROUP (``>``, NOACK),
XACK, XCLAIM (IDLE, TIME, RETRYCOUNT, FORCE, JUSTID, LASTID) and XAUTOCLAIM runs against a
primary with an AOF and one replica, while other clients loop on XREAD / XREADGROUP BLOCK
served by the writer. Proves: the replica's dataset equals the primary's (DEBUG DIGEST,
which covers the entries) and so does every group's state (``groups_state``: last id,
read counter, pending entries with their absolute delivery times and counts, the
consumers holding them); a replica added afterwards (full sync) and the primary restarted
from its AOF (snapshot preamble) and again from a RESP-only rewrite agree too.

Reads of a consumer's history (an id instead of ``>``) are left out: Redis does not
propagate the delivery counts they bump, so replicas differ there by design.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

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

LOAD_COMMANDS = 2500
SERVED_MIN = 50
BLOCKERS = 3
BLOCK_MS = 50
LOAD_MAX_S = 60.0

STREAMS = [f"st{i}" for i in range(3)]
GROUPS = ["ga", "gb"]
CONSUMERS = ["c1", "c2", "c3"]


@pytest.fixture
def start(start_node: Start) -> Start:
    return start_node


def _sid(rng: random.Random) -> str:
    return f"{rng.randrange(1, 50)}-{rng.randrange(0, 3)}"


def _one_command(p: redis.client.Pipeline, rng: random.Random) -> None:
    k = rng.choice(STREAMS)
    g = rng.choice(GROUPS)
    con = rng.choice(CONSUMERS)
    op = rng.randrange(20)
    fields = {f"f{rng.randrange(3)}": str(rng.randrange(100))}
    if op <= 4:
        trim: dict[str, Any] = {}
        t = rng.randrange(5)
        if t == 1:
            trim = {"maxlen": rng.randrange(0, 300), "approximate": rng.random() < 0.5}
        elif t == 2:
            trim = {"maxlen": rng.randrange(50, 300), "approximate": True, "limit": 100}
        elif t == 3:
            trim = {"minid": f"{int(time.time() * 1000) - rng.randrange(0, 5000)}-0"}
        p.xadd(k, fields, nomkstream=rng.random() < 0.1, **trim)
    elif op == 5:
        p.execute_command("XADD", k, f"{int(time.time() * 1000) + 10}-*", "f", "v")
    elif op == 6:
        p.xdel(k, *[_sid(rng) for _ in range(2)])
    elif op == 7:
        p.execute_command("XTRIM", k, "MAXLEN", "~", rng.randrange(0, 400))
    elif op == 8:
        p.xgroup_create(k, g, id=rng.choice(["0", "$"]), mkstream=True)
    elif op == 9:
        p.execute_command("XGROUP", "SETID", k, g, rng.choice(["0", "$"]), "ENTRIESREAD", "1")
    elif op == 10:
        p.xgroup_createconsumer(k, g, con)
    elif op == 11 and rng.random() < 0.2:
        p.xgroup_delconsumer(k, g, con)
    elif op == 12 and rng.random() < 0.05:
        p.xgroup_destroy(k, g)
    elif op <= 14:
        p.xreadgroup(g, con, {k: ">"}, count=rng.randrange(1, 5), noack=rng.random() < 0.2)
    elif op == 15:
        p.execute_command("XACK", k, g, *[f"{int(time.time() * 1000) - rng.randrange(500)}-0"])
    elif op == 16:
        p.xautoclaim(k, g, con, min_idle_time=rng.randrange(0, 30), count=3)
    elif op == 17:
        sid = f"{int(time.time() * 1000) - rng.randrange(300)}-0"
        if rng.random() < 0.5:
            p.xclaim(k, g, con, 0, [sid], retrycount=4, force=True, justid=rng.random() < 0.5)
        else:  # redis-py has no LASTID (and parses a raw JUSTID reply as entries)
            p.execute_command("XCLAIM", k, g, con, "0", sid, "IDLE", "5", "LASTID", "1-0")
    elif op == 18:
        p.xtrim(k, minid=f"{int(time.time() * 1000) - rng.randrange(1000, 20000)}-0")
    else:
        p.xlen(k)


def _blocker(port: int, seed: int, done: threading.Event, served: list[int]) -> None:
    rng = random.Random(seed)
    r = client(port)
    try:
        while not done.is_set():
            k = rng.choice(STREAMS)
            try:
                if rng.random() < 0.5:
                    got = r.xread({k: "$"}, block=BLOCK_MS, count=2)
                else:
                    got = r.xreadgroup(
                        rng.choice(GROUPS), rng.choice(CONSUMERS), {k: ">"}, count=2, block=BLOCK_MS
                    )
            except redis.ResponseError:
                continue  # NOGROUP: the group is not there (yet)
            if got:
                served[0] += 1
    finally:
        r.close()


def groups_state(r: redis.Redis, live_only: bool = False) -> dict[str, Any]:
    """Every stream's counters and groups, without the consumers' seen / active times
    (local to each server) and without consumers that hold nothing (an XREADGROUP that
    found nothing creates its consumer on the primary only, as in Redis). ``live_only``
    leaves out pending entries whose entry left the stream: a RESP rewrite claims them
    with XCLAIM, which drops such an entry when loaded (Redis's rewrite does the same)."""
    out: dict[str, Any] = {}
    for k in STREAMS:
        if r.type(k) != b"stream":
            continue
        full = r.execute_command("XINFO", "STREAM", k, "FULL", "COUNT", "0")
        info = dict(zip(full[::2], full[1::2], strict=True))
        live = {e[0] for e in info[b"entries"]}
        groups = []
        for g in info[b"groups"]:
            gd = dict(zip(g[::2], g[1::2], strict=True))
            consumers = []
            for con in gd[b"consumers"]:
                cd = dict(zip(con[::2], con[1::2], strict=True))
                pending = [x for x in cd[b"pending"] if not live_only or x[0] in live]
                if pending:
                    consumers.append((cd[b"name"], pending))
            if live_only:
                gd[b"pending"] = [x for x in gd[b"pending"] if x[0] in live]
            groups.append(
                (
                    gd[b"name"],
                    gd[b"last-delivered-id"],
                    gd[b"entries-read"],
                    gd[b"pending"],
                    consumers,
                )
            )
        out[k] = (
            info[b"length"],
            info[b"last-generated-id"],
            info[b"max-deleted-entry-id"],
            info[b"entries-added"],
            info[b"recorded-first-entry-id"],
            groups,
        )
    return out


LOAD = BlockingLoad(
    _one_command, _blocker, LOAD_COMMANDS, SERVED_MIN, BLOCKERS, batch_max=8, max_s=LOAD_MAX_S
)


def test_streams_replicate_persist_and_full_sync(start: Start) -> None:
    primary = start("p", "--appendonly", "yes", "--appendfsync", "everysec")
    replica = start("r", "--replicaof", "127.0.0.1", str(primary.port))
    pc, rc = client(primary.port), client(replica.port)
    wait_until(lambda: link_up(rc), 20)

    served = LOAD.run(primary.port, writer_seed=11, blocker_seed=200)
    assert served >= SERVED_MIN, "the blocking reads were hardly ever served"

    wait_caught_up(pc, rc)
    want, want_groups = digest(pc), groups_state(pc)
    assert want != b"0" * 40
    assert any(g for *_, g in want_groups.values()), "no consumer group survived the load"
    assert digest(rc) == want
    assert groups_state(rc) == want_groups

    late = start("late", "--replicaof", "127.0.0.1", str(primary.port))
    lc = client(late.port)
    wait_until(lambda: link_up(lc), 20)
    wait_caught_up(pc, lc)
    assert digest(lc) == want
    assert groups_state(lc) == want_groups

    # The AOF carries the same effects: the primary restarted from it agrees ...
    try:
        pc.shutdown()
    except redis.ConnectionError:
        pass
    primary.stop()
    again = start("p", "--appendonly", "yes", port=primary.port)
    ac = client(again.port)
    wait_until(lambda: loaded(ac), 20)
    assert digest(ac) == want
    assert groups_state(ac) == want_groups
    want_live = groups_state(ac, live_only=True)

    # ... and so does a RESP-only rewrite of it (XADD, XSETID, XGROUP CREATE, XCLAIM).
    ac.config_set("aof-use-rdb-preamble", "no")
    ac.bgrewriteaof()
    wait_until(lambda: ac.info("persistence")["aof_rewrite_in_progress"] == 0, 20)
    time.sleep(0.2)
    try:
        ac.shutdown()
    except redis.ConnectionError:
        pass
    again.stop()
    third = start("p", "--appendonly", "yes", port=primary.port)
    tc = client(third.port)
    wait_until(lambda: loaded(tc), 20)
    assert digest(tc) == want
    assert groups_state(tc, live_only=True) == want_live
