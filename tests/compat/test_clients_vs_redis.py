"""Client-level differential test: the same redis-py and redis-cli scripts against one
redis-server (the reference) and one ackdb; the Python results and redis-cli's stdout are
compared exactly (issue 6: "redis-py's and redis-cli's usual operations on lists, sets,
sorted sets, pub/sub and blocking commands behave as against Redis").

The raw-RESP differential tests (test_differential_{lists,sets,zsets,notify}.py) check the
replies byte by byte; this file checks what a user sees through the clients' high-level
API: redis-py's response callbacks (RESP2 and RESP3 shapes, ``decode_responses``), its
PubSub object (subscribe replies, messages as RESP2 arrays or RESP3 pushes, PING while
subscribed), pipelines with and without MULTI, exception classes and texts; and redis-cli's
output formatting (raw, ``--no-raw``, ``-3``, ``--scan``).

Each redis-py script runs on a fresh dataset (FLUSHALL) with four client settings:
protocol 2 and 3, ``decode_responses`` off and on. A ``Tape`` records every call's result or
error; the two tapes must be equal entry by entry.

Comparison rules (the order or the pick is unspecified, not a difference):
- unordered results (SMEMBERS as a list, PUBSUB CHANNELS, a whole SSCAN/ZSCAN, the set
  algebra as lists) are compared sorted;
- random picks (SRANDMEMBER, SPOP, ZRANDMEMBER): only the shape, count, distinctness where
  Redis promises it, and membership (with the right score) are compared; SPOP runs on a
  copy and the union of popped and remaining members is compared.

Accepted differences (docs/compat.md; the reference is redis-server 7.0.15, ackdb targets
Redis 7.2), each compared so that exactly that difference passes:
- doubles: 7.0 prints ``%.17g`` (``0.10000000000000001``, ``1.0000000000000001e+300``), 7.2
  the shortest round-trip form. redis-py turns both into the same float; where the text
  shows (RESP2 ``score_cast_func=str``, redis-cli) the reference's doubles are re-rendered
  with ``format_double_72`` before comparing (rule ``doubles72``);
- ZRANK / ZREVRANK WITHSCORE is 7.2: the reference answers the 7.0 arity error, ackdb must
  answer the 7.2 reply built from the reference's ZRANK and ZSCORE (rule ``redis72``);
- blocking timeouts above LLONG_MAX ms (``inf``, ``1e400``, ``9.3e15`` seconds): 7.2 answers
  "timeout is out of range" (redis#11338), 7.0 overflows into "timeout is negative" (rule
  ``redis72``);
- OBJECT ENCODING is not asked here (7.0 has no listpack lists or sets; the raw-RESP tests
  compare it with their own rule).

Check the test itself (both sides redis-server; must pass):
    ACKDB_DIFF_TARGET=redis python -m pytest tests/compat/test_clients_vs_redis.py
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ackdb.keyspace.numbers import format_double_72
from conftest import REDIS_CLI, REDIS_SERVER, server_pair, wait_until

redis = pytest.importorskip("redis")

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SUT_IS_REDIS = os.environ.get("ACKDB_DIFF_TARGET") == "redis"  # checks this test itself
CLIENT_MODES = [(2, False), (2, True), (3, False), (3, True)]
MODE_IDS = [f"resp{p}-{'str' if d else 'bytes'}" for p, d in CLIENT_MODES]
SOCKET_TIMEOUT_S = 10.0
EXPIRE_S = 0.05  # a blocking call that must time out
SERVE_S = 5.0  # a blocking call that must be served
DEADLINE_S = 5.0  # waiting for a message or for a client to block
POLL_S = 0.005
CLI_TIMEOUT_S = 10.0

# The doubles of the reference's text: re-rendered in 7.2's form (module docstring).
DOUBLE_70 = re.compile(r"-?(?:inf|[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]+)?)")

SPECIAL_SCORES = {
    "s-one-half": 1.5,
    "s-neg-zero": -0.0,
    "s-pos-inf": math.inf,
    "s-neg-inf": -math.inf,
    "s-huge": 1e300,
    "s-sum": 0.1 + 0.2,
    "s-tenth": 0.1,
    "s-int": 3.0,
}


# -- recording -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    label: str
    value: object
    rule: str = "exact"  # "exact", "doubles72", "redis72"
    expected: object = None  # rule "redis72": ackdb's 7.2 result
    reference: object = None  # rule "redis72": the reference's 7.0 result


def raised(e: BaseException) -> tuple[str, str, str]:
    return ("raised", type(e).__name__, str(e))


def error(text: str) -> tuple[str, str, str]:
    return ("raised", "ResponseError", text)


def plain(x: object) -> object:
    """A comparable copy: exceptions (pipeline results) as tuples, floats by repr (-0.0)."""
    if isinstance(x, BaseException):
        return raised(x)
    if isinstance(x, float):
        return ("float", repr(x))
    if isinstance(x, list):
        return [plain(i) for i in x]
    if isinstance(x, tuple):
        return tuple(plain(i) for i in x)
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return x


class Tape:
    """redis-py calls on one server; each call's result or error is recorded in order.

    ``t.lpush(...)`` runs ``r.lpush(...)`` on the tape's client and records it."""

    def __init__(self, port: int, protocol: int, decode: bool) -> None:
        self.port, self.protocol, self.decode = port, protocol, decode
        self.entries: list[Entry] = []
        self.clients: list[Any] = []
        self.r = self.client()

    def client(self) -> Any:
        c = redis.Redis(
            port=self.port,
            protocol=self.protocol,
            decode_responses=self.decode,
            socket_timeout=SOCKET_TIMEOUT_S,
        )
        self.clients.append(c)
        return c

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def s(self, text: str) -> Any:
        """``text`` as the client returns it (str or bytes)."""
        return text if self.decode else text.encode()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.r, name)

        def call(*args: object, **kwargs: object) -> Any:
            return self.record(name, lambda: method(*args, **kwargs))

        return call

    def record(
        self,
        label: str,
        fn: Callable[[], object],
        norm: Callable[[Any], object] | None = None,
        rule: str = "exact",
        expected: object = None,
        reference: object = None,
    ) -> Any:
        try:
            value = fn()
        except redis.RedisError as e:
            self.entries.append(Entry(label, raised(e), rule, expected, reference))
            return None
        shown = plain(norm(value) if norm else value)
        self.entries.append(Entry(label, shown, rule, expected, reference))
        return value

    def redis72(self, label: str, fn: Callable[[], object], v72: object, v70: object) -> None:
        """A call whose result changed from Redis 7.0 (``v70``, the reference) to 7.2
        (``v72``, ackdb's target); both are checked (module docstring)."""
        self.record(label, fn, rule="redis72", expected=plain(v72), reference=plain(v70))

    def note(self, label: str, value: object) -> None:
        self.entries.append(Entry(label, plain(value)))


def doubles_72(text: object) -> object:
    """``text`` with every double in the reference's %.17g form re-rendered as 7.2 does."""
    if isinstance(text, bytes):
        return str(doubles_72(text.decode())).encode()
    if isinstance(text, str):
        return DOUBLE_70.sub(lambda m: format_double_72(float(m.group())).decode(), text)
    if isinstance(text, list):
        return [doubles_72(i) for i in text]
    if isinstance(text, tuple):
        return tuple(doubles_72(i) for i in text)
    return text


def compare_entries(ref: list[Entry], sut: list[Entry]) -> None:
    labels = [e.label for e in ref]
    assert labels == [e.label for e in sut], "the scripts diverged"
    mismatches = []
    for index, (theirs, ours) in enumerate(zip(ref, sut, strict=True)):
        want = theirs.value
        if theirs.rule == "doubles72" and not SUT_IS_REDIS:
            want = doubles_72(theirs.value)
        elif theirs.rule == "redis72" and not SUT_IS_REDIS:
            assert theirs.value == theirs.reference, theirs
            want = theirs.expected
        if ours.value != want:
            mismatches.append(
                f"entry {index} {theirs.label}: redis {want!r} != ackdb {ours.value!r}"
            )
    assert not mismatches, "\n".join(mismatches)


# -- the two servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("clients-vs-redis")) as pair:
        yield pair


def run_both(
    ports: tuple[int, int], script: Callable[[Tape], None], protocol: int, decode: bool
) -> None:
    tapes = []
    for port in ports:
        tape = Tape(port, protocol, decode)
        try:
            tape.r.flushall()
            script(tape)
        finally:
            tape.close()
        tapes.append(tape.entries)
    compare_entries(*tapes)


# -- normalisers ---------------------------------------------------------------------------------


def unordered(x: Any) -> object:
    return sorted(x) if isinstance(x, list | set) else x


def picks(pool: set[Any], distinct: bool) -> Callable[[Any], object]:
    """A random pick's comparable part: type, count, membership (and distinctness)."""

    def norm(x: Any) -> object:
        if x is None or not isinstance(x, list | set):
            return (type(x).__name__, x is None or x in pool)
        items = list(x)
        unique = len(set(items)) == len(items) if distinct else None
        return (type(x).__name__, len(items), set(items) <= pool, unique)

    return norm


def scored_picks(scores: dict[Any, float], distinct: bool) -> Callable[[Any], object]:
    """ZRANDMEMBER WITHSCORES: RESP2 flat [m, s, ...] or RESP3 [[m, s], ...]; the scores
    must be the members' own."""

    def norm(x: Any) -> object:
        assert isinstance(x, list), x
        if x and isinstance(x[0], list):
            pairs = [(m, float(s)) for m, s in x]
        else:
            pairs = [(m, float(s)) for m, s in zip(x[0::2], x[1::2], strict=True)]
        ok = all(m in scores and scores[m] == s for m, s in pairs)
        shapes = sorted({type(i).__name__ for i in x})
        unique = len({m for m, _ in pairs}) == len(pairs) if distinct else None
        return (shapes, len(pairs), ok, unique)

    return norm


def without_order(messages: list[dict[str, Any]]) -> object:
    return sorted(repr({**m, "data": None}) for m in messages), sorted(m["data"] for m in messages)


def drain(p: Any, n: int) -> list[object]:
    """The next ``n`` messages of PubSub ``p`` (fewer if they do not come within DEADLINE_S);
    with ``ignore_subscribe_messages`` the (un)subscribe replies read on the way are not
    counted."""
    got: list[object] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < n and time.monotonic() < deadline:
        m = p.get_message(timeout=0.1)
        if m is not None:
            got.append(m)
    return got


def settle(p: Any) -> list[object]:
    """The messages of PubSub ``p`` until redis-py has read the reply that ends its last
    subscription (every subscription must be gone by then)."""
    got: list[object] = []
    deadline = time.monotonic() + DEADLINE_S
    while p.subscribed and time.monotonic() < deadline:
        m = p.get_message(timeout=0.1)
        if m is not None:
            got.append(m)
    return [*got, ("subscribed", p.subscribed)]


def blocked_clients(r: Any) -> int:
    return int(r.info("clients")["blocked_clients"])


def served_by_push(
    t: Tape, label: str, block: Callable[[], object], push: Callable[[Any], object]
) -> None:
    """``block`` (a blocking call) is served by ``push`` from a second client, sent from a
    thread once the server reports the first client blocked."""
    pusher = t.client()
    pushed: dict[str, object] = {}

    def run_push() -> None:
        try:
            wait_until(lambda: blocked_clients(pusher) >= 1, DEADLINE_S, POLL_S)
            pushed["reply"] = plain(push(pusher))
        except Exception as e:  # reported through the tape, as a mismatch
            pushed["reply"] = raised(e)

    thread = threading.Thread(target=run_push, daemon=True)
    thread.start()
    t.record(label, block)
    thread.join(DEADLINE_S)
    assert not thread.is_alive(), label
    t.note(f"{label} push", pushed.get("reply"))
    t.record(f"{label} blocked after", lambda: blocked_clients(pusher))


# -- redis-py scripts ----------------------------------------------------------------------------


def script_lists(t: Tape) -> None:
    t.rpush("l", "a", "b", "c", "a", "b", "a")
    t.lpush("l", "z", "y")
    t.lrange("l", 0, -1)
    t.lrange("l", -3, 100)
    t.lrange("l", 5, 2)
    t.lrange("missing", 0, -1)
    t.lindex("l", 0)
    t.lindex("l", -1)
    t.lindex("l", 99)
    t.lset("l", 0, "Y")
    t.lset("l", 99, "x")
    t.lset("missing", 0, "x")
    t.linsert("l", "BEFORE", "c", "pre-c")
    t.linsert("l", "after", "c", "post-c")
    t.linsert("l", "AFTER", "nope", "x")
    t.linsert("missing", "BEFORE", "a", "b")
    t.lrange("l", 0, -1)
    t.lrem("l", 1, "a")
    t.lrem("l", -1, "b")
    t.lrem("l", 0, "nope")
    t.lrem("missing", 0, "a")
    t.rpush("p", "a", "b", "c", "a", "b", "c", "a")
    t.lpos("p", "a")
    t.lpos("p", "c")
    t.lpos("p", "nope")
    t.lpos("p", "a", rank=2)
    t.lpos("p", "a", rank=-1)
    t.lpos("p", "a", rank=-2, count=2)
    t.lpos("p", "a", count=0)
    t.lpos("p", "b", count=1)
    t.lpos("p", "nope", count=3)
    t.lpos("p", "a", count=0, maxlen=4)
    t.lpos("p", "c", maxlen=2)
    t.lpos("missing", "a")
    t.lpos("missing", "a", count=2)
    t.rpush("t", *range(10))
    t.ltrim("t", 2, -3)
    t.lrange("t", 0, -1)
    t.ltrim("t", 5, 1)
    t.exists("t")
    t.rpush("src", 1, 2, 3)
    t.lmove("src", "dst")
    t.lmove("src", "dst", "RIGHT", "LEFT")
    t.lmove("src", "src", "LEFT", "RIGHT")
    t.lmove("missing", "dst")
    t.lrange("dst", 0, -1)
    t.lmpop(2, "missing", "dst", direction="LEFT")
    t.lmpop(2, "missing", "src", direction="RIGHT", count=10)
    t.lmpop(1, "missing", direction="LEFT")
    t.exists("src")
    t.lpop("l")
    t.rpop("l")
    t.lpop("l", 2)
    t.lpop("l", 0)
    t.rpop("l", 100)
    t.lpop("l")
    t.lpop("missing", 2)
    t.rpop("missing")
    t.llen("l")
    t.lpushx("missing", "a")
    t.rpushx("dst", "b", "c")
    t.rpush("u", "héllo", "ünïcode", "", "123", "-0", "3.14")
    t.lrange("u", 0, -1)
    t.rpush("n", 1, 2.5, -3, 10**20)
    t.lrange("n", 0, -1)
    if not t.decode:
        t.rpush("bin", b"\x00\xff\r\n", b"\xfe")
        t.lrange("bin", 0, -1)
        t.lpos("bin", b"\xfe")
    t.type("l")


def script_blocking(t: Tape) -> None:
    # Served at once.
    t.rpush("q1", "a", "b", "c")
    t.blpop(["nope", "q1"], timeout=1)
    t.brpop(["q1"], timeout=1)
    t.blpop("q1", timeout=0)
    t.rpush("q2", "x", "y", "z")
    t.blmove("q2", "q3", 1, "RIGHT", "LEFT")
    t.blmpop(1, 2, "nope", "q2", direction="LEFT", count=5)
    t.zadd("bz", {"a": 1, "b": 2.5, "c": 3, "d": -math.inf})
    t.bzpopmin(["nope", "bz"], timeout=1)
    t.bzpopmax("bz", timeout=1)
    t.bzmpop(1, 2, ["nope", "bz"], min=True, count=5)
    t.set("str", "v")
    t.blpop(["str"], timeout=1)
    t.bzpopmin(["str"], timeout=1)
    # Timing out.
    t.blpop(["empty1", "empty2"], timeout=EXPIRE_S)
    t.brpop("empty1", timeout=EXPIRE_S)
    t.blmove("empty1", "empty2", EXPIRE_S, "LEFT", "RIGHT")
    t.blmpop(EXPIRE_S, 1, "empty1", direction="RIGHT", count=2)
    t.bzpopmin("empty1", timeout=EXPIRE_S)
    t.bzpopmax(["empty1"], timeout=EXPIRE_S)
    t.bzmpop(EXPIRE_S, 1, ["empty1"], max=True)
    t.exists("empty1", "empty2")
    # Served by a push from a second client.
    r = t.r
    served_by_push(
        t, "blpop", lambda: r.blpop(["w1", "w2"], SERVE_S), lambda p: p.rpush("w2", 1, 2)
    )
    served_by_push(t, "brpop", lambda: r.brpop("w3", SERVE_S), lambda p: p.lpush("w3", "a", "b"))
    served_by_push(
        t,
        "blmove",
        lambda: r.blmove("w4", "w5", SERVE_S, "LEFT", "LEFT"),
        lambda p: p.rpush("w4", "m", "n"),
    )
    served_by_push(
        t,
        "blmpop",
        lambda: r.blmpop(SERVE_S, 2, "w6", "w7", direction="RIGHT", count=3),
        lambda p: p.rpush("w7", "p", "q"),
    )
    served_by_push(
        t, "bzpopmin", lambda: r.bzpopmin(["z1"], SERVE_S), lambda p: p.zadd("z1", {"m": 1.5})
    )
    served_by_push(
        t,
        "bzpopmax",
        lambda: r.bzpopmax(["z2", "z3"], SERVE_S),
        lambda p: p.zadd("z3", {"a": 1, "b": math.inf}),
    )
    served_by_push(
        t,
        "bzmpop",
        lambda: r.bzmpop(SERVE_S, 1, ["z4"], min=True, count=10),
        lambda p: p.zadd("z4", {"x": 0.1 + 0.2, "y": -1}),
    )
    for key in ("w1", "w2", "w3", "w5", "w7", "z3", "z4"):
        t.record(f"after {key}", lambda k=key: r.type(k))
    t.lrange("w2", 0, -1)
    t.lrange("w5", 0, -1)


def script_sets(t: Tape) -> None:
    s = t.s
    t.sadd("s1", "a", "b", "c", "d", "1", "2")
    t.sadd("s1", "a", "e")
    t.sadd("s2", "c", "d", "e", "f")
    t.sadd("ints", 3, 1, 2, 10, -5, 1)
    t.srem("s1", "e", "nope")
    t.srem("missing", "a")
    t.smembers("s1")
    t.smembers("ints")
    t.smembers("missing")
    t.sismember("s1", "a")
    t.sismember("s1", "nope")
    t.smismember("s1", ["a", "nope", "d"])
    t.smismember("missing", "a", "b")
    t.scard("s1")
    pool = {s(m) for m in ("a", "b", "c", "d", "1", "2")}
    srandmember = t.r.srandmember
    t.record("srandmember", lambda: srandmember("s1"), picks(pool, True))
    t.record("srandmember 3", lambda: srandmember("s1", 3), picks(pool, True))
    t.record("srandmember 10", lambda: srandmember("s1", 10), picks(pool, True))
    t.record("srandmember -10", lambda: srandmember("s1", -10), picks(pool, False))
    t.record("srandmember 0", lambda: srandmember("s1", 0), picks(pool, True))
    t.srandmember("missing")
    t.srandmember("missing", 3)
    t.srandmember("missing", -3)
    t.sunionstore("pop", ["s1"])
    spop = t.r.spop
    popped: list[Any] = []
    for label, count in (("spop", None), ("spop 2", 2), ("spop 0", 0), ("spop 100", 100)):
        got = t.record(label, lambda c=count: spop("pop", c), picks(pool, True))
        if got is not None:
            popped.extend([got] if count is None else got)
    t.note("spop union", sorted(popped) == sorted(pool))
    t.exists("pop")
    t.spop("missing")
    t.spop("missing", 2)
    t.smove("s1", "s2", "a")
    t.smove("s1", "s2", "nope")
    t.smove("missing", "s2", "a")
    t.smove("s1", "fresh", "b")
    t.smembers("fresh")
    t.sinter("s1", "s2")
    t.sinter(["s1", "s2", "missing"])
    t.sunion("s1", "s2", "ints")
    t.sdiff("s2", "s1")
    t.sdiff("missing", "s1")
    t.sinterstore("d1", ["s1", "s2"])
    t.sunionstore("d2", "s1", "ints")
    t.sdiffstore("d3", ["s2", "s1"])
    t.sinterstore("d1", ["s1", "missing"])
    t.exists("d1")
    t.smembers("d2")
    t.smembers("d3")
    t.sintercard(2, ["s1", "s2"])
    t.sintercard(3, ["s1", "s2", "d2"], limit=1)
    t.sintercard(2, ["s1", "s2"], limit=0)
    t.sintercard(1, ["missing"])
    t.sadd("big", *range(200))
    sscan = t.r.sscan_iter
    t.record("sscan s2", lambda: list(sscan("s2")), unordered)
    t.record("sscan big", lambda: list(sscan("big", count=7)), unordered)
    t.record("sscan match", lambda: list(sscan("big", match="1?5")), unordered)
    t.record("sscan ints", lambda: list(sscan("ints")), unordered)
    t.record("sscan missing", lambda: list(sscan("missing")), unordered)
    t.sscan("ints", 0)
    t.type("s1")


def script_zsets(t: Tape) -> None:
    s, r = t.s, t.r
    t.zadd("z", {"a": 1, "b": 2, "c": 3})
    t.zadd("z", {"a": 5, "d": 4}, nx=True)
    t.zadd("z", {"a": 5, "zz": 1}, xx=True)
    t.zadd("z", {"a": 4, "b": 3}, gt=True, ch=True)
    t.zadd("z", {"a": 0.5, "c": 9}, lt=True, ch=True)
    t.zadd("z", {"c": 2.5}, incr=True)
    t.zadd("z", {"c": 1}, incr=True, nx=True)
    t.zadd("z", {"new": 1}, incr=True, xx=True)
    t.zadd("z", {"c": -100}, incr=True, gt=True)
    t.zincrby("z", 0.1, "a")
    t.zincrby("z", -2, "fresh")
    t.zrange("z", 0, -1, withscores=True)
    t.zscore("z", "a")
    t.zscore("z", "nope")
    t.zscore("missing", "a")
    t.zmscore("z", ["a", "nope", "b"])
    t.zmscore("missing", ["a"])
    t.zrank("z", "b")
    t.zrevrank("z", "b")
    t.zrank("z", "nope")
    for cmd in ("zrank", "zrevrank"):  # WITHSCORE is 7.2; 7.0's arity is 3
        for member in ("b", "nope"):
            rank = getattr(r, cmd)("z", member)
            score = r.zscore("z", member)
            t.redis72(
                f"{cmd} {member} withscore",
                lambda c=cmd, m=member: getattr(r, c)("z", m, withscore=True),
                None if rank is None else [rank, score],
                error(f"wrong number of arguments for '{cmd}' command"),
            )
    t.zcount("z", "-inf", "+inf")
    t.zcount("z", "(1", 3)
    t.zcard("z")
    t.zadd("sp", SPECIAL_SCORES)
    t.zrange("sp", 0, -1, withscores=True)
    for member in SPECIAL_SCORES:
        t.zscore("sp", member)
    t.zmscore("sp", list(SPECIAL_SCORES))
    t.zincrby("sp", 1e300, "s-huge")
    t.zincrby("sp", -0.0, "s-neg-zero")
    t.zincrby("sp", 1, "s-pos-inf")
    t.zincrby("sp", -math.inf, "s-pos-inf")
    t.zincrby("sp", 0.2, "s-tenth")
    t.zrange("sp", "-inf", "+inf", byscore=True, withscores=True)
    t.zrange("sp", "(0", "(inf", byscore=True)
    t.zrange("sp", "+inf", "-inf", byscore=True, desc=True, offset=1, num=3, withscores=True)
    t.zrange("sp", 0, 2, desc=True, withscores=True)
    t.zrange("sp", -2, -1)
    zrangebyscore = r.zrangebyscore
    t.record(
        "zrangebyscore cast int",
        lambda: zrangebyscore("sp", 1, "(inf", withscores=True, score_cast_func=int),
    )
    t.record(
        "zrangebyscore cast str",
        lambda: zrangebyscore("sp", "-inf", "+inf", withscores=True, score_cast_func=str),
        rule="doubles72" if t.protocol == 2 else "exact",  # RESP3 casts a parsed float
    )
    t.zrangebyscore("sp", "(1.5", 3, start=0, num=1)
    t.zrevrangebyscore("sp", "+inf", "-inf", start=1, num=2, withscores=True)
    t.zrevrangebyscore("sp", 3, "(1.5")
    t.zadd("lex", {m: 0 for m in ("a", "b", "c", "d", "e", "f", "g")})
    t.zlexcount("lex", "-", "+")
    t.zlexcount("lex", "[b", "(e")
    t.zrange("lex", "[b", "+", bylex=True, offset=1, num=2)
    t.zrange("lex", "+", "(c", bylex=True, desc=True)
    t.zrangebylex("lex", "-", "[c")
    t.zrevrangebylex("lex", "[f", "(a", start=0, num=3)
    t.zrangestore("dst", "sp", 0, 2)
    t.zrangestore("dst2", "sp", "(1", "inf", byscore=True, desc=False, offset=0, num=2)
    t.zrangestore("dst3", "lex", "[c", "[e", bylex=True)
    t.zrangestore("dst4", "missing", 0, -1)
    t.zrange("dst2", 0, -1, withscores=True)
    t.zadd("rm", {m: i for i, m in enumerate("abcdefghij")})
    t.zremrangebyrank("rm", 0, 1)
    t.zremrangebyscore("rm", "(7", "+inf")
    t.zremrangebyscore("rm", 100, 200)
    t.zadd("rmlex", {m: 0 for m in "abcdef"})
    t.zremrangebylex("rmlex", "[b", "(d")
    t.zrange("rm", 0, -1, withscores=True)
    t.zrange("rmlex", 0, -1)
    t.zpopmin("rm")
    t.zpopmin("rm", 2)
    t.zpopmax("rm", 1)
    t.zpopmax("rm", 100)
    t.zpopmin("missing")
    t.zpopmax("missing", 3)
    t.zadd("mp", {"a": 1, "b": 2, "c": 3})
    t.zmpop(2, ["missing", "mp"], min=True)
    t.zmpop(1, ["mp"], max=True, count=5)
    t.zmpop(1, ["mp"], min=True)
    t.zadd("u1", {"a": 1, "b": 2, "c": math.inf})
    t.zadd("u2", {"b": 3, "c": 1, "d": 0.1})
    t.sadd("plain", "a", "d")
    t.zunion(["u1", "u2"])
    t.zunion(["u1", "u2"], withscores=True)
    t.zunion({"u1": 2, "u2": 0.5}, aggregate="MAX", withscores=True)
    t.zunion({"u1": 0, "u2": 1}, aggregate="MIN", withscores=True)
    t.zinter(["u1", "u2"], withscores=True)
    t.zinter({"u1": 1, "u2": -1}, aggregate="SUM", withscores=True)
    t.zinter(["u1", "plain"], withscores=True)
    t.zdiff(["u1", "u2"], withscores=True)
    t.zdiff(["u2", "plain"])
    t.zunionstore("us", {"u1": 1, "u2": 2}, aggregate="MAX")
    t.zinterstore("is", ["u1", "u2"], aggregate="MIN")
    t.zdiffstore("ds", ["u1", "u2"])
    t.zdiffstore("ds2", ["u1", "u1"])
    t.zrange("us", 0, -1, withscores=True)
    t.zrange("is", 0, -1, withscores=True)
    t.zrange("ds", 0, -1, withscores=True)
    t.exists("ds2")
    scores = {s("a"): 1.0, s("b"): 2.0, s("c"): math.inf}
    zrandmember = r.zrandmember
    t.record("zrandmember", lambda: zrandmember("u1"), picks(set(scores), True))
    t.record("zrandmember 2", lambda: zrandmember("u1", 2), picks(set(scores), True))
    t.record("zrandmember 5", lambda: zrandmember("u1", 5), picks(set(scores), True))
    t.record("zrandmember -5", lambda: zrandmember("u1", -5), picks(set(scores), False))
    t.record(
        "zrandmember 2 ws",
        lambda: zrandmember("u1", 2, withscores=True),
        scored_picks(scores, True),
    )
    t.record(
        "zrandmember -4 ws",
        lambda: zrandmember("u1", -4, withscores=True),
        scored_picks(scores, False),
    )
    t.zrandmember("missing")
    t.zrandmember("missing", 3)
    t.zadd("big", {f"m{i}": i / 4 for i in range(300)})
    zscan = r.zscan_iter
    t.record("zscan u2", lambda: list(zscan("u2")), unordered)
    t.record("zscan big", lambda: list(zscan("big", count=9)), unordered)
    t.record("zscan match", lambda: list(zscan("big", match="m1?")), unordered)
    t.record("zscan cast", lambda: list(zscan("u2", score_cast_func=int)), unordered)
    t.record("zscan missing", lambda: list(zscan("missing")), unordered)
    t.type("z")


def script_pubsub(t: Tape) -> None:
    r = t.r
    p = r.pubsub()
    try:
        p.subscribe("news", "sport")
        t.note("subscribe", drain(p, 2))
        p.psubscribe("n*", "s?ort")
        t.note("psubscribe", drain(p, 2))
        t.publish("news", "hello")
        t.publish("sport", "ball")
        t.publish("nobody", "x")
        t.publish("nx", 42)
        if not t.decode:
            t.publish("news", b"\x00\xff")
        t.note("messages", drain(p, 6 if t.decode else 8))
        t.record("channels", lambda: r.pubsub_channels(), unordered)
        t.record("channels n*", lambda: r.pubsub_channels("n*"), unordered)
        t.pubsub_numsub("news", "sport", "nobody")
        t.pubsub_numsub()
        t.pubsub_numpat()
        if not (t.protocol == 3 and t.decode):  # redis-py 8.1 indexes a decoded "PONG"
            p.ping()
            p.ping("hi")
            t.note("ping", drain(p, 2))
        p.unsubscribe("news")
        t.note("unsubscribe news", drain(p, 1))
        t.publish("news", "late")
        t.note("pattern only", drain(p, 1))
        p.punsubscribe("n*")
        t.note("punsubscribe n*", drain(p, 1))
        p.subscribe("a1", "a2")
        t.note("subscribe again", drain(p, 2))
        p.unsubscribe()
        # The order of an UNSUBSCRIBE without arguments is unspecified (a hash table in
        # Redis), and so are the counts each message carries: compare them as sets.
        t.record("unsubscribe all", lambda: drain(p, 3), without_order)
        p.punsubscribe()
        t.note("punsubscribe all", drain(p, 1))
        t.note("settled", settle(p))
        t.pubsub_numpat()
        t.record("channels after", lambda: r.pubsub_channels(), unordered)
    finally:
        p.close()
    # ignore_subscribe_messages, and a pattern and a channel both matching one message.
    q = r.pubsub(ignore_subscribe_messages=True)
    try:
        q.subscribe("evt")
        q.psubscribe("e*")
        t.publish("evt", "one")
        t.note("ignored subscribes", drain(q, 2))
        q.unsubscribe()
        q.punsubscribe()
        t.note("settled again", settle(q))
        t.pubsub_numsub("evt")
    finally:
        q.close()


def script_subscribed_connection(t: Tape) -> None:
    """One connection that subscribes and keeps sending commands, through redis-py's
    connection API: in RESP2 the messages come inline and most commands are refused; in
    RESP3 the messages are pushes, handed to the push handler while replies stay in order.
    """
    conn = t.r.connection_pool.get_connection()
    pushes: list[object] = []
    if t.protocol == 3:
        conn._parser.set_pubsub_push_handler(pushes.append)

    def step(label: str, commands: list[tuple[str, ...]], reads: int, norm: Any = None) -> None:
        def run() -> object:
            for argv in commands:
                conn.send_command(*argv)
            replies = [conn.read_response() for _ in range(reads)]
            seen = list(pushes)
            pushes.clear()
            return replies, seen

        t.record(label, run, norm)

    def loose(messages: list[Any]) -> object:
        # After UNSUBSCRIBE without arguments: any order, so any counts (see without_order).
        lists = [m for m in messages if isinstance(m, list)]
        others = [m for m in messages if not isinstance(m, list)]
        return others, sorted(repr(m[:-1]) for m in lists), sorted(m[-1] for m in lists)

    def unordered_pair(x: Any) -> object:
        replies, seen = x
        return loose(replies), loose(seen)

    try:
        publisher = t.client()
        if t.protocol == 2:
            step("subscribe", [("SUBSCRIBE", "a", "b")], 2)
            t.record("publish", lambda: publisher.publish("a", "other"))
            step("message", [], 1)
            step("publish to itself", [("PUBLISH", "a", "self")], 2)
            step("get refused", [("GET", "a")], 1)
            step("ping", [("PING",), ("PING", "x")], 2)
            step("unsubscribe all", [("UNSUBSCRIBE",)], 2, unordered_pair)
        else:
            step("subscribe", [("SUBSCRIBE", "a", "b"), ("PING",)], 1)
            t.record("publish", lambda: publisher.publish("a", "other"))
            step("message", [("PING", "x")], 1)
            step("publish to itself", [("PUBLISH", "a", "self")], 1)
            step("get", [("SET", "a", "1"), ("GET", "a")], 2)
            step("unsubscribe all", [("UNSUBSCRIBE",), ("PING",)], 1, unordered_pair)
        step("ping after", [("PING",)], 1)
    finally:
        conn.disconnect()
        t.r.connection_pool.release(conn)


def script_pipelines(t: Tape) -> None:
    r = t.r
    t.set("str", "v")
    for transaction in (True, False):
        pipe = r.pipeline(transaction=transaction)
        pipe.rpush("pl", 1, 2, 3).lrange("pl", 0, -1).lpop("pl", 2)
        pipe.sadd("ps", "a", "b").smembers("ps").sismember("ps", "a")
        pipe.zadd("pz", {"a": 1.5, "b": math.inf}).zincrby("pz", 2, "a")
        pipe.zrange("pz", 0, -1, withscores=True).zpopmax("pz")
        pipe.lpush("str", "x").zscore("pz", "a").blpop("pl", 1).bzpopmin("pz", 1)
        pipe.sintercard(1, ["ps"]).lpos("pl", "3").zmpop(1, ["pz"], min=True)
        t.record(f"pipeline transaction={transaction}", lambda p=pipe: p.execute(False))
        t.record(
            f"pipeline raise transaction={transaction}",
            lambda tr=transaction: r.pipeline(transaction=tr).lpush("str", 1).llen("pl").execute(),
        )
        t.record(
            f"pipeline queued error transaction={transaction}",
            lambda tr=transaction: (
                r.pipeline(transaction=tr)
                .rpush("q", 1)
                .execute_command("LPUSH", "q")
                .llen("q")
                .execute()
            ),
        )
        t.delete("pl", "ps", "pz", "q")


def script_errors(t: Tape) -> None:
    r = t.r
    t.set("str", "v")
    t.rpush("l", "a", "b")
    t.sadd("s", "a")
    t.zadd("z", {"a": math.inf})
    t.lpush("str", "x")
    t.lrange("s", 0, -1)
    t.sadd("l", "x")
    t.smembers("z")
    t.zadd("str", {"a": 1})
    t.zscore("l", "a")
    t.smove("l", "s", "a")
    t.sinterstore("d", ["s", "l"])
    t.zunion(["z", "str"])
    t.blpop("str", timeout=1)
    t.get("l")
    t.execute_command("LPUSH", "l")
    t.execute_command("SADD", "s")
    t.execute_command("ZADD", "z", "1")
    t.execute_command("LPOS")
    t.execute_command("BLPOP", "l")
    t.execute_command("SUBSCRIBE")
    t.execute_command("LMPOP", "1", "l")
    t.execute_command("NOSUCHCOMMAND", "x")
    t.zadd("z", {"a": "abc"})
    t.zadd("z", {"a": "nan"})
    t.zincrby("z", "1e400", "a")
    t.zincrby("z", -math.inf, "a")
    t.zrangebyscore("z", "abc", 1)
    t.zcount("z", "(", 1)
    t.zrangebylex("z", "a", "b")
    t.zunion({"z": "x"})
    t.execute_command("ZADD", "z", "NX", "XX", "1", "a")
    t.execute_command("ZADD", "z", "GT", "LT", "1", "a")
    t.execute_command("ZADD", "z", "NX", "GT", "1", "a")
    t.execute_command("ZADD", "z", "INCR", "1", "a", "2", "b")
    t.execute_command("ZRANGE", "z", "0", "-1", "LIMIT", "0", "1")
    t.execute_command("ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX")
    t.execute_command("ZUNIONSTORE", "d", "2", "z")
    t.execute_command("ZUNION", "0", "z")
    t.execute_command("ZINTER", "1", "z", "WEIGHTS", "1", "2")
    t.execute_command("ZINTER", "1", "z", "AGGREGATE", "AVG")
    t.execute_command("ZMPOP", "1", "z", "MIDDLE")
    t.execute_command("ZRANDMEMBER", "z", "1", "WITHSCORE")
    t.lset("l", 5, "x")
    t.lset("nope", 0, "x")
    t.lrange("l", "a", 1)
    t.lpos("l", "a", rank=0)
    t.lpos("l", "a", count=-1)
    t.lpos("l", "a", maxlen=-1)
    t.linsert("l", "MIDDLE", "a", "b")
    t.execute_command("LMOVE", "l", "l", "UP", "LEFT")
    t.lpop("l", -1)
    t.execute_command("LMPOP", "0", "l", "LEFT")
    t.execute_command("LMPOP", "1", "l", "LEFT", "COUNT", "0")
    t.blpop("nol", timeout=-1)
    t.execute_command("BLPOP", "nol", "abc")
    t.execute_command("BLPOP", "nol", "nan")
    t.execute_command("BLPOP", "nol", "1e-5000")  # underflows even a long double
    t.execute_command("BZPOPMIN", "nol", "-inf")
    t.execute_command("BLMPOP", "-1e400", "1", "nol", "LEFT")
    t.execute_command("BLPOP", "nol", "-0.0011")
    # Above LLONG_MAX ms: 7.2 says "out of range" (redis#11338), 7.0 overflows to negative.
    for timeout in ("inf", "1e400", "9.3e15"):
        t.redis72(
            f"bzpopmin {timeout}",
            lambda x=timeout: r.execute_command("BZPOPMIN", "nol", x),
            error("timeout is out of range"),
            error("timeout is negative"),
        )
    # Timeouts that round up to 0 (forever) or 1 ms (redis#11688), each answered at once
    # inside MULTI.
    pipe = r.pipeline(transaction=True)
    for timeout in ("-0.001", "-1e-400", "1e-400", "0x1p-10", "0.0001", "-0"):
        pipe.execute_command("BLPOP", "nol", timeout)
    t.record("tiny timeouts in multi", lambda: pipe.execute(False))
    t.spop("s", -1)
    t.sintercard(0, ["s"])
    t.execute_command("SINTERCARD", "1", "s", "LIMIT", "-1")
    t.execute_command("SINTERCARD", "2", "s")
    t.execute_command("SSCAN", "s", "abc")
    t.execute_command("SSCAN", "s", "0", "COUNT", "0")
    t.srandmember("s", "x")
    t.zadd("z", {"a": 1}, nx=True, xx=True)
    t.zadd("z", {"a": 1, "b": 2}, incr=True)
    t.lmpop(1, "l", direction="SIDEWAYS")


SCRIPTS = {
    "lists": script_lists,
    "blocking": script_blocking,
    "sets": script_sets,
    "zsets": script_zsets,
    "pubsub": script_pubsub,
    "subscribed": script_subscribed_connection,
    "pipelines": script_pipelines,
    "errors": script_errors,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("protocol", "decode"), CLIENT_MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_redis_py_matches_redis(
    ports: tuple[int, int], name: str, protocol: int, decode: bool
) -> None:
    run_both(ports, SCRIPTS[name], protocol, decode)


# -- redis-cli -----------------------------------------------------------------------------------

CLI_NUMBER = re.compile(r"( *(?:[0-9]+[)~] )?)(.*)")  # "1) " / "1~ " (-3 sets) and a body
CLI_FLAGS = {"raw": [], "no-raw": ["--no-raw"], "resp3": ["-3"], "resp3-no-raw": ["-3", "--no-raw"]}


@dataclass(frozen=True, slots=True)
class CliStep:
    argv: list[str]
    mode: str = "exact"  # "exact", "sorted" (lines), "doubles72"
    label: str = field(default="")


def cli(*argv: str, mode: str = "exact") -> CliStep:
    return CliStep(list(argv), mode, " ".join(argv))


def cli_seed(r: Any) -> None:
    r.flushall()
    r.rpush("l", "a", "b", "c", "a", "héllo", "with space", "")
    r.sadd("s", "x", "y", "z", "multi word")
    r.sadd("ints", 3, 1, 2, -7)
    r.zadd("z", {"a": 1.5, "b": -0.0, "c": math.inf, "d": -math.inf, "e": 1e300})
    r.zadd("z", {"f": 0.1 + 0.2, "g": 0.1, "h": 3})
    r.zadd("z2", {"a": 2, "x": 7})
    r.zadd("lex", {m: 0 for m in "abcde"})
    r.sadd("one", "only")
    r.zadd("zone", {"only": 0.1})
    r.set("str", "v")
    for i in range(12):
        r.set(f"scan:{i}", i)


CLI_SCRIPT = [
    cli("LRANGE", "l", "0", "-1"),
    cli("LRANGE", "missing", "0", "-1"),
    cli("LINDEX", "l", "4"),
    cli("LINDEX", "l", "99"),
    cli("LLEN", "l"),
    cli("LPOS", "l", "a"),
    cli("LPOS", "l", "a", "COUNT", "0"),
    cli("LPOS", "l", "nope"),
    cli("LPOS", "l", "nope", "COUNT", "2"),
    cli("LPOS", "l", "a", "RANK", "-1", "COUNT", "2", "MAXLEN", "5"),
    cli("LINSERT", "l", "BEFORE", "b", "new"),
    cli("LPOP", "l", "2"),
    cli("LMPOP", "2", "missing", "l", "RIGHT", "COUNT", "2"),
    cli("SMEMBERS", "s", mode="sorted"),
    cli("SMEMBERS", "ints"),
    cli("SMEMBERS", "missing"),
    cli("SISMEMBER", "s", "x"),
    cli("SMISMEMBER", "s", "x", "nope"),
    cli("SINTERCARD", "2", "s", "ints", "LIMIT", "1"),
    cli("SUNION", "s", "ints", mode="sorted"),
    cli("SCARD", "s"),
    cli("SSCAN", "ints", "0"),
    cli("SRANDMEMBER", "one", "-3"),  # one member: the picks are known
    cli("SPOP", "one", "5"),
    cli("ZRANGE", "z", "0", "-1", "WITHSCORES", mode="doubles72"),
    cli("ZRANGE", "z", "0", "-1"),
    cli("ZRANGE", "z", "(1", "+inf", "BYSCORE", "LIMIT", "0", "2", "WITHSCORES", mode="doubles72"),
    cli("ZSCORE", "z", "c", mode="doubles72"),
    cli("ZSCORE", "z", "d", mode="doubles72"),
    cli("ZSCORE", "z", "b", mode="doubles72"),
    cli("ZSCORE", "z", "e", mode="doubles72"),
    cli("ZSCORE", "z", "f", mode="doubles72"),
    cli("ZSCORE", "z", "g", mode="doubles72"),
    cli("ZSCORE", "z", "nope"),
    cli("ZMSCORE", "z", "a", "nope", "c", mode="doubles72"),
    cli("ZRANK", "z", "a"),
    cli("ZREVRANK", "z", "nope"),
    cli("ZCOUNT", "z", "-inf", "+inf"),
    cli("ZINCRBY", "z", "1", "a", mode="doubles72"),
    cli("ZINCRBY", "z", "0.1", "a", mode="doubles72"),
    cli("ZUNION", "2", "z", "z2", "WEIGHTS", "1", "2", "WITHSCORES", mode="doubles72"),
    cli("ZINTER", "2", "z", "z2", "AGGREGATE", "MAX", "WITHSCORES", mode="doubles72"),
    cli("ZPOPMIN", "z", "2", mode="doubles72"),
    cli("ZMPOP", "1", "z", "MAX", "COUNT", "2", mode="doubles72"),
    cli("ZRANGESTORE", "z3", "z2", "0", "-1"),
    cli("ZADD", "z3", "GT", "CH", "INCR", "5", "a"),
    cli("ZADD", "z3", "NX", "INCR", "1", "a"),
    cli("ZRANGEBYLEX", "lex", "[b", "+", "LIMIT", "1", "2"),
    cli("ZRANDMEMBER", "zone", "-2", "WITHSCORES", mode="doubles72"),
    cli("ZSCAN", "zone", "0", mode="doubles72"),
    cli("BLPOP", "nolist", "0.05"),
    cli("BLPOP", "l", "1"),
    cli("BRPOP", "nolist", "l", "1"),
    cli("BLMOVE", "l", "l2", "LEFT", "RIGHT", "1"),
    cli("BLMPOP", "0.05", "1", "nolist", "LEFT"),
    cli("BZPOPMIN", "z2", "1", mode="doubles72"),
    cli("BZPOPMAX", "nozset", "0.05"),
    cli("BZMPOP", "1", "1", "z2", "MIN", "COUNT", "5", mode="doubles72"),
    cli("PUBLISH", "ch", "msg"),
    cli("PUBSUB", "NUMSUB", "ch", "other"),
    cli("PUBSUB", "NUMPAT"),
    cli("LPUSH", "str", "x"),
    cli("ZADD", "z", "abc", "m"),
    cli("LPUSH", "l"),
    cli("TYPE", "s"),
    CliStep(["--scan", "--pattern", "scan:1*"], "sorted", "--scan scan:1*"),
    CliStep(["--scan", "--pattern", "*"], "sorted", "--scan *"),
    CliStep(["--scan", "--pattern", "nomatch*"], "exact", "--scan nomatch*"),
]


def run_cli(port: int, flags: list[str], step: CliStep) -> tuple[int, str]:
    assert REDIS_CLI is not None
    done = subprocess.run(
        [REDIS_CLI, "-p", str(port), *flags, *step.argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    out = done.stdout.decode("utf-8", "backslashreplace")
    if step.mode == "sorted":
        out = sorted_lines(out)
    return done.returncode, out


def sorted_lines(out: str) -> str:
    """An unordered reply's lines sorted; the element numbers ("1) ", "2~ ") of the formatted
    output stay in place, in their order."""
    numbered = [CLI_NUMBER.match(line) for line in out.splitlines()]
    prefixes = [m[1] for m in numbered if m]
    bodies = sorted(m[2] for m in numbered if m)
    return "\n".join(p + b for p, b in zip(prefixes, bodies, strict=True))


def cli_transcript(port: int, flags: list[str]) -> list[tuple[str, int, str]]:
    with redis.Redis(port=port, socket_timeout=SOCKET_TIMEOUT_S) as r:
        cli_seed(r)
    return [(step.label, *run_cli(port, flags, step)) for step in CLI_SCRIPT]


@pytest.mark.timeout(60)
@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli not on PATH")
@pytest.mark.parametrize("flags", list(CLI_FLAGS))
def test_redis_cli_matches_redis(ports: tuple[int, int], flags: str) -> None:
    ref, sut = (cli_transcript(port, CLI_FLAGS[flags]) for port in ports)
    for step, theirs, ours in zip(CLI_SCRIPT, ref, sut, strict=True):
        want = theirs
        if step.mode == "doubles72" and not SUT_IS_REDIS:
            want = (theirs[0], theirs[1], str(doubles_72(theirs[2])))
        assert ours == want, f"redis-cli {flags} {step.label}: redis {want!r} != ackdb {ours!r}"
