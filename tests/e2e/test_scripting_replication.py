"""Scripts and functions on real processes: effects replication, persistence, -BUSY.

Proves: a script's writes reach a replica (as MULTI/EXEC-wrapped effects) and the AOF, so
the replica, a replica added later (full sync) and the primary restarted from its AOF hold
the same dataset (DEBUG DIGEST) and the same function libraries; libraries survive a
restart from a snapshot and from an AOF without a snapshot preamble; the script cache
survives nothing (EVALSHA after a restart: -NOSCRIPT); a script past busy-reply-threshold
makes other clients get -BUSY, SCRIPT KILL stops a read-only one, a script that wrote is
UNKILLABLE, and FUNCTION KILL stops a function.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from tests.conftest import ServerProcess, ackdb_argv, free_port, wait_until
from tests.e2e.repl_support import client, digest, link_up, wait_caught_up

Start = Callable[..., ServerProcess]

LIBRARY = """#!lua name=shop
local function buy(keys, args)
  local stock = tonumber(redis.call('hget', keys[1], 'stock') or '0')
  local want = tonumber(args[1])
  if stock < want then return redis.error_reply('OUT of stock') end
  redis.call('hincrby', keys[1], 'stock', -want)
  redis.call('rpush', keys[2], args[2])
  redis.call('incrby', keys[3], want)
  return stock - want
end
redis.register_function('buy', buy)
redis.register_function{function_name='stock', callback=function(keys)
  return redis.call('hget', keys[1], 'stock') end, flags={'no-writes'}}
"""
TRANSFER = """
local a = tonumber(redis.call('get', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if a < n then return 0 end
redis.call('decrby', KEYS[1], n)
redis.call('incrby', KEYS[2], n)
if ARGV[2] == 'ttl' then redis.call('pexpire', KEYS[2], 3600000) end
redis.call('select', 1)
redis.call('lpush', 'audit', KEYS[1] .. '>' .. KEYS[2])
return 1
"""


@pytest.fixture
def start(start_node: Start) -> Start:
    return start_node


def _load(r: redis.Redis, seed: int, n: int) -> None:
    rng = random.Random(seed)
    transfer = r.register_script(TRANSFER)
    for i in range(1, 5):
        r.set(f"acct{i}", 1000)
        r.hset(f"item{i}", "stock", 50)
    for _ in range(n):
        pick = rng.random()
        if pick < 0.5:
            a, b = rng.sample(range(1, 5), 2)
            transfer(
                keys=[f"acct{a}", f"acct{b}"], args=[rng.randrange(1, 100), rng.choice(["", "ttl"])]
            )
        elif pick < 0.9:
            try:
                r.fcall(
                    "buy",
                    3,
                    f"item{rng.randrange(1, 5)}",
                    "orders",
                    "sold",
                    rng.randrange(1, 4),
                    "o",
                )
            except redis.ResponseError as e:
                assert "OUT of stock" in str(e)
        else:
            r.eval(
                "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])",
                1,
                "last",
                str(rng.random()),
            )


def _libraries(r: redis.Redis) -> list[bytes]:
    return sorted(
        lib[b"library_code"]
        for lib in (
            dict(zip(x[::2], x[1::2], strict=True))
            for x in r.execute_command("FUNCTION", "LIST", "WITHCODE")
        )
    )


def test_scripts_and_functions_replicate_and_persist(start: Start) -> None:
    primary = start("p", "--appendonly", "yes", "--appendfsync", "everysec")
    replica = start("r", "--replicaof", "127.0.0.1", str(primary.port))
    pc, rc = client(primary.port), client(replica.port)
    wait_until(lambda: link_up(rc), 20)
    assert pc.function_load(LIBRARY) == b"shop"
    sha = pc.script_load("return 1")
    _load(pc, 3, 300)

    wait_caught_up(pc, rc)
    want = digest(pc)
    assert want != b"0" * 40
    assert digest(rc) == want
    assert _libraries(rc) == _libraries(pc) == [LIBRARY.encode()]
    assert rc.fcall_ro("stock", 1, "item1") == pc.fcall_ro("stock", 1, "item1")
    with pytest.raises(redis.ResponseError, match="read only replica"):
        rc.fcall("buy", 3, "item1", "orders", "sold", 1, "o")

    late = start("late", "--replicaof", "127.0.0.1", str(primary.port))
    lc = client(late.port)
    wait_until(lambda: link_up(lc), 20)
    wait_caught_up(pc, lc)
    assert digest(lc) == want
    assert _libraries(lc) == [LIBRARY.encode()]

    pc.bgrewriteaof()
    wait_until(lambda: pc.info("persistence")["aof_rewrite_in_progress"] == 0, 30)
    _load(pc, 4, 50)  # after the rewrite: in the incremental file
    want = digest(pc)
    try:
        pc.shutdown()
    except redis.ConnectionError:
        pass
    primary.stop()
    again = start("p", "--appendonly", "yes", port=primary.port)
    ac = client(again.port)
    wait_until(lambda: ac.info("persistence").get("loading") == 0, 60)
    assert digest(ac) == want
    assert _libraries(ac) == [LIBRARY.encode()]
    assert ac.script_exists(sha) == [False]
    with pytest.raises(redis.exceptions.NoScriptError):
        ac.evalsha(sha, 0)


@pytest.mark.parametrize("mode", ["snapshot", "aof-resp"])
def test_libraries_survive_a_restart(start: Start, mode: str) -> None:
    args = ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"] if mode == "aof-resp" else []
    s = start("s", *args)
    r = client(s.port)
    r.function_load(LIBRARY)
    _load(r, 5, 40)
    if mode == "aof-resp":
        r.bgrewriteaof()
        wait_until(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0, 30)
    else:
        r.save()
    want = digest(r)
    try:
        r.shutdown(nosave=mode == "aof-resp")
    except redis.ConnectionError:
        pass
    s.stop()
    again = start("s", *args, port=s.port)
    ac = client(again.port)
    wait_until(lambda: ac.info("persistence").get("loading") == 0, 60)
    assert digest(ac) == want
    assert _libraries(ac) == [LIBRARY.encode()]
    assert ac.fcall_ro("stock", 1, "item1") is not None


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["reply"] = fn()
        except Exception as e:  # noqa: BLE001 - the test inspects it
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_busy_script_answers_busy_and_is_killed(start: Start) -> None:
    s = start("b", "--busy-reply-threshold", "100")
    runner, other = client(s.port, timeout_s=30), client(s.port)
    other.ping()
    t, out = _in_thread(lambda: runner.eval("local i = 0 while true do i = i + 1 end", 0))

    def busy() -> bool:
        try:
            other.get("k")
        except redis.ResponseError as e:
            assert str(e).startswith(
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL"
            )
            return True
        return False

    wait_until(busy, 10)
    with pytest.raises(redis.ResponseError, match="BUSY"):
        other.function_kill()
    # A connection opened while the script is busy is served too (HELLO, then -BUSY),
    # and stays usable after.
    fresh = redis.Redis(port=s.port, socket_timeout=10, protocol=3)
    with pytest.raises(redis.ResponseError, match="BUSY"):
        fresh.get("k")
    assert other.script_kill() is True
    t.join(10)
    assert "Script killed by user with SCRIPT KILL" in str(out["error"])
    assert other.ping() is True
    assert fresh.set("k", "v") is True
    assert fresh.get("k") == b"v"
    fresh.close()

    t, out = _in_thread(
        lambda: runner.eval(
            "redis.call('set','w','1') local i = 0 while i < 3e7 do i = i + 1 end return 7", 0
        )
    )
    wait_until(busy, 10)
    with pytest.raises(redis.ResponseError, match="UNKILLABLE"):
        other.script_kill()
    t.join(60)
    assert out["reply"] == 7

    runner.function_load(
        "#!lua name=spin\nredis.register_function{function_name='spin', callback=function() while true do end end, flags={'no-writes'}}"
    )
    t, out = _in_thread(lambda: runner.fcall("spin", 0))

    def busy_function() -> bool:
        try:
            other.get("k")
        except redis.ResponseError as e:
            return "FUNCTION KILL" in str(e)
        return False

    wait_until(busy_function, 10)
    stats = other.execute_command("FUNCTION", "STATS")
    assert stats[1][1] == b"spin"
    assert other.function_kill() in (True, b"OK")
    t.join(10)
    assert "killed" in str(out["error"])
    assert runner.ping() is True


def test_wait_and_waitaof_in_a_script_never_block(tmp_path: Path) -> None:
    # Redis 7.2.5+ (#12977): allowed in scripts, answered at once with the count reached.
    port = free_port()
    srv = ServerProcess(ackdb_argv(port, "--appendonly", "yes"), port, tmp_path, "ackdb")
    try:
        with redis.Redis(port=port) as r:
            t0 = time.monotonic()
            assert r.eval("return redis.call('WAIT', 1, 0)", 0) == 0  # no replica: at once
            assert r.eval("redis.call('SET', KEYS[1], 'v'); return 1", 1, "k") == 1
            assert r.eval("return redis.call('WAITAOF', 1, 1, 0)", 0) == [1, 0]
            assert time.monotonic() - t0 < 5
    finally:
        srv.stop()
