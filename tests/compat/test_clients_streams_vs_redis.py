"""redis-py's stream helpers against redis-server (the reference) and ackdb: the same script,
its results recorded on a ``Tape`` (tests/compat/test_clients_vs_redis.py) and compared
entry by entry, in RESP2 and RESP3, with ``decode_responses`` off and on.

Covers xadd (``*``, explicit and ``ms-*`` ids, maxlen / minid / approximate / limit,
nomkstream), xrange / xrevrange, xlen, xdel, xtrim, xread (``$``, count, block served by a
second client, block timing out), xgroup_create / setid / createconsumer / delconsumer /
destroy, xreadgroup (``>``, history, noack, block served by a second client), xack,
xpending / xpending_range (idle, consumer), xclaim (justid, force, retrycount, time),
xautoclaim (justid), xinfo_stream (full), xinfo_groups, xinfo_consumers.

Time is kept out of the comparison: ids the servers generate (``*``) are compared by
shape and order (``auto_ids``); idle and delivery times near now by a marker (``timeless``).
Redis 7.2 fields absent from the 7.0 reference (``inactive``, ``active-time``) and the
consumers' seen times are dropped before comparing.

Check the test itself (both sides redis-server; must pass):
    ACKDB_DIFF_TARGET=redis python -m pytest tests/compat/test_clients_streams_vs_redis.py
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from test_clients_vs_redis import (
    CLIENT_MODES,
    MODE_IDS,
    SERVE_S,
    Tape,
    compare_entries,
    served_by_push,
)

from conftest import REDIS_SERVER, server_pair

redis = pytest.importorskip("redis")

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

NOW_MIN = 10**12  # ms: integers above this are times near now
AUTO_ID = re.compile(r"^[0-9]{13}-[0-9]+$")
_DROP = {"inactive", "active-time", "seen-time", "idle"}


def timeless(x: Any) -> object:
    """Times near now as "T"; generated ids as "ID"; 7.2-only and seen-time fields out."""
    if isinstance(x, bool):
        return x
    if isinstance(x, int) and x >= NOW_MIN:
        return "T"
    if isinstance(x, bytes):
        return "ID" if AUTO_ID.match(x.decode("latin-1")) else x
    if isinstance(x, str):
        return "ID" if AUTO_ID.match(x) else x
    if isinstance(x, dict):
        return {
            timeless(k): timeless(v)  # type: ignore[misc]
            for k, v in x.items()
            if (k.decode() if isinstance(k, bytes) else k) not in _DROP
        }
    if isinstance(x, list | tuple):
        return [timeless(i) for i in x]
    return x


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("clients-streams")) as pair:
        yield pair


def script_streams(t: Tape) -> None:
    r = t.r
    rec = t.record
    for i in range(3):
        rec(f"xadd auto {i}", lambda i=i: r.xadd("auto", {"n": i}), timeless)
    rec("xrange auto", lambda: r.xrange("auto"), timeless)
    t.xadd("s", {"a": 1, "b": "two"}, id="1-1")
    t.xadd("s", {"a": 2}, id="2-*")
    t.xadd("s", {"a": 3}, id="3")
    t.xadd("s", {"a": 4}, id="1-0")  # too small
    t.xadd("s", {"x": "y"}, id="5-0", maxlen=10, approximate=False)
    t.xadd("s", {"x": "y"}, id="6-0", minid="0", approximate=True, limit=5)
    t.xadd("none", {"x": "y"}, nomkstream=True)
    t.exists("none")
    t.xlen("s")
    t.xrange("s")
    t.xrange("s", min="(1-1", max="+", count=2)
    t.xrevrange("s", max="+", min="-", count=3)
    t.xdel("s", "2-0", "9-9")
    t.xtrim("s", maxlen=3)
    t.xtrim("s", minid="4-0")
    t.xtrim("s", maxlen=0, approximate=True)
    t.xrange("s")
    for i in range(7, 260):
        r.xadd("big", {"f": i}, id=f"{i}-0")
    t.xadd("big", {"f": "last"}, id="300-0", maxlen=100, approximate=True)
    t.xlen("big")
    t.xtrim("big", maxlen=10, approximate=True)
    t.xlen("big")
    # XREAD
    t.xread({"s": "0", "big": "250-0"}, count=2)
    t.xread({"s": "$"})
    t.xread({"nope": "0"}, block=50)
    served_by_push(
        t,
        "xread block $",
        lambda: r.xread({"w1": "$", "s": "$"}, block=int(SERVE_S * 1000)),
        lambda p: p.xadd("w1", {"k": "v"}, id="1-1"),
    )
    # Groups
    t.xgroup_create("s", "g", id="0")
    t.xgroup_create("s", "g", id="0")
    t.xgroup_create("fresh", "g", id="$", mkstream=True)
    t.xgroup_create("s", "g2", id="$", entries_read=1)
    t.xgroup_createconsumer("s", "g", "alice")
    t.xgroup_createconsumer("s", "g", "bob")
    t.xreadgroup("g", "alice", {"s": ">"}, count=1)
    t.xreadgroup("g", "bob", {"s": ">"})
    t.xreadgroup("g", "alice", {"s": "0"})
    # 7.0 creates a reading consumer only when it serves it, 7.2 always: created first.
    t.xgroup_createconsumer("s", "g2", "bob")
    t.xreadgroup("g2", "bob", {"s": ">"}, noack=True)
    rec("xpending", lambda: r.xpending("s", "g"), timeless)
    rec("xpending_range", lambda: r.xpending_range("s", "g", "-", "+", 10), timeless)
    rec(
        "xpending_range idle",
        lambda: r.xpending_range("s", "g", "-", "+", 10, consumername="bob", idle=0),
        timeless,
    )
    t.xack("s", "g", "1-1", "9-9")
    rec(
        "xclaim justid",
        lambda: r.xclaim("s", "g", "carol", 0, ["5-0", "6-0"], justid=True),
        timeless,
    )
    rec(
        "xclaim",
        lambda: r.xclaim("s", "g", "alice", 0, ["6-0"], retrycount=7, time=1000000),
        timeless,
    )
    rec("xclaim force", lambda: r.xclaim("s", "g", "dave", 0, ["3-0"], force=True), timeless)
    rec("xautoclaim", lambda: r.xautoclaim("s", "g", "erin", 0, "0-0", count=2), timeless)
    rec(
        "xautoclaim justid",
        lambda: r.xautoclaim("s", "g", "erin", 0, "0-0", justid=True),
        timeless,
    )
    rec("xinfo_groups", lambda: r.xinfo_groups("s"), timeless)
    rec("xinfo_consumers", lambda: r.xinfo_consumers("s", "g"), timeless)
    rec("xinfo_stream", lambda: r.xinfo_stream("s"), timeless)
    rec("xinfo_stream full", lambda: r.xinfo_stream("s", full=True), timeless)
    t.xgroup_setid("s", "g", "0", entries_read=0)
    t.xgroup_delconsumer("s", "g", "alice")
    served_by_push(
        t,
        "xreadgroup block >",
        lambda: r.xreadgroup("g2", "zed", {"s": ">"}, block=int(SERVE_S * 1000)),
        lambda p: p.xadd("s", {"late": 1}, id="20-0"),
    )
    t.xgroup_destroy("s", "g2")
    t.xgroup_destroy("s", "g2")
    t.set("str", "v")
    t.xadd("str", {"a": 1})
    t.xlen("str")
    t.type("s")


SCRIPTS = {"streams": script_streams}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("protocol", "decode"), CLIENT_MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_redis_py_stream_helpers_match_redis(
    ports: tuple[int, int], name: str, protocol: int, decode: bool
) -> None:
    tapes = []
    for port in ports:
        tape = Tape(port, protocol, decode)
        try:
            tape.r.flushall()
            SCRIPTS[name](tape)
        finally:
            tape.close()
        tapes.append(tape.entries)
    compare_entries(*tapes)
