"""redis-py's script helpers against redis-server and ackdb: ``Script`` /
``register_script`` (EVALSHA, falling back to EVAL on -NOSCRIPT, in pipelines too) and
``lock()`` (Redlock-style acquire, extend, reacquire, release, all Lua), with the same
outcomes on both servers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import LockNotOwnedError

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    workdir: Path = tmp_path_factory.mktemp("scriptclients")
    with server_pair(workdir) as (ref, sut):
        a, b = redis.Redis(port=ref), redis.Redis(port=sut)
        yield a, b
        a.close()
        b.close()


def _script_story(r: redis.Redis) -> list[object]:
    r.flushall()
    r.script_flush()
    out: list[object] = []
    incr = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    out.append(incr(keys=["n"], args=[5]))  # NOSCRIPT, then EVAL
    out.append(incr(keys=["n"], args=[2]))  # EVALSHA
    out.append(r.script_exists(incr.sha))
    r.script_flush()
    with r.pipeline() as p:
        incr(keys=["n"], args=[1], client=p)
        incr(keys=["m"], args=[1], client=p)
        out.append(p.execute())
    multi = r.register_script(
        "local t = {} for i, k in ipairs(KEYS) do t[i] = redis.call('get', k) end return t"
    )
    out.append(multi(keys=["n", "m", "none"]))
    return out


def test_register_script_behaves_the_same(clients: tuple[redis.Redis, redis.Redis]) -> None:
    ref, sut = clients
    assert _script_story(sut) == _script_story(ref)


def _lock_story(r: redis.Redis) -> list[object]:
    r.flushall()
    out: list[object] = []
    lock = r.lock("resource", timeout=5)
    out.append(lock.acquire(blocking=False))
    other = r.lock("resource", timeout=5)
    out.append(other.acquire(blocking=False))
    out.append(lock.owned())
    out.append(lock.extend(10))
    out.append(1000 < r.pttl("resource") <= 15000)
    out.append(lock.reacquire())
    out.append(lock.locked())
    lock.release()
    out.append(lock.locked())
    try:
        lock.release()
    except redis.exceptions.LockError as e:
        out.append(type(e).__name__)
    short = r.lock("short", timeout=0.05)
    short.acquire()
    time.sleep(0.1)
    try:
        short.extend(1)
    except LockNotOwnedError as e:
        out.append(type(e).__name__)
    with r.lock("ctx", timeout=2, blocking_timeout=1):
        out.append(r.exists("ctx"))
    out.append(r.exists("ctx"))
    return out


def test_lock_behaves_the_same(clients: tuple[redis.Redis, redis.Redis]) -> None:
    ref, sut = clients
    assert _lock_story(sut) == _lock_story(ref)
