"""Scripts and functions through a sharded database's endpoint (Redis Enterprise's
rules): a script whose keys share a slot runs on that slot's shard, keys over several
slots get CROSSSLOT; FUNCTION LOAD / DELETE / FLUSH reach every shard, so FCALL works for
keys on any shard; redis-py's register_script and lock() work through the endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ackdb.cluster.keyslot import key_slot
from proxy_support import ShardedDb

pytestmark = pytest.mark.e2e

LIB = "#!lua name=ctr\nredis.register_function('bump', function(keys) return redis.call('incr', keys[1]) end)"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedDb]:
    with ShardedDb(Path(tmp_path_factory.mktemp("proxyscripts")), shards=3) as d:
        yield d


def _keys(db: ShardedDb) -> list[bytes]:
    topo = db.topology().db
    found: dict[int, bytes] = {}
    i = 0
    while len(found) < len(topo.shards):
        k = b"k:%d" % i
        found.setdefault(topo.shard_of_slot(key_slot(k)).index, k)
        i += 1
    return [found[s] for s in sorted(found)]


def test_scripts_and_functions_through_the_endpoint(db: ShardedDb) -> None:
    r = db.client()
    r.flushall()
    keys = _keys(db)
    for k in keys:
        assert r.eval("return redis.call('set', KEYS[1], ARGV[1])", 1, k, "v") == b"OK"
        assert r.get(k) == b"v"
    with pytest.raises(redis.ResponseError, match="don't hash to the same slot"):
        r.eval("return 1", 2, keys[0], keys[1])
    assert r.eval("return redis.call('mget', KEYS[1], KEYS[2])", 2, "{t}a", "{t}b") == [None, None]
    incr = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    r.flushall()
    assert [incr(keys=[k], args=[2]) for k in keys] == [2, 2, 2]

    assert r.function_load(LIB) == b"ctr"
    assert [r.fcall("bump", 1, k) for k in keys] == [3, 3, 3]
    for shard in db.primaries:
        direct = redis.Redis(port=shard.port, password=db.shard_password)
        (lib,) = direct.function_list()
        assert lib[1] == b"ctr"  # [library_name, ctr, engine, LUA, ...]
        direct.close()
    assert r.function_delete("ctr") in (True, b"OK")
    with pytest.raises(redis.ResponseError, match="Function not found"):
        r.fcall("bump", 1, keys[1])

    lock = r.lock("{res}lock", timeout=5)
    assert lock.acquire(blocking=False)
    assert lock.extend(5)
    lock.release()
    assert not lock.locked()
    r.close()
