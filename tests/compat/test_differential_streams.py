"""Differential test of the stream family: seeded random command sequences against one
redis-server (the reference) and one ackdb, every reply compared by TYPE and value; then
blocking reads served by other clients, compared the same way.

Covers XADD (explicit and ``ms-*`` ids, NOMKSTREAM, MAXLEN / MINID with ``=`` / ``~`` and
LIMIT, bad ids and options), XRANGE / XREVRANGE (exclusive bounds, COUNT), XLEN, XDEL,
XTRIM, XSETID, XREAD (``$``, ids, COUNT, several keys), XGROUP (CREATE with MKSTREAM and
ENTRIESREAD, SETID, CREATECONSUMER, DELCONSUMER, DESTROY), XREADGROUP (``>``, history,
NOACK, COUNT), XACK, XPENDING (summary, extended, IDLE, per consumer), XCLAIM (IDLE, TIME,
RETRYCOUNT, FORCE, JUSTID, LASTID), XAUTOCLAIM (COUNT, JUSTID, deleted entries), XINFO
STREAM [FULL], GROUPS, CONSUMERS, TYPE, OBJECT ENCODING, COPY, RENAME, wrong types and
wrong arity; a stream large enough for several nodes, so approximate trimming removes
whole nodes as Redis does. At the end every key is compared with XRANGE, XINFO STREAM and
DEBUG DIGEST-VALUE, and the dataset with DEBUG DIGEST. One seed in three runs over RESP3.

Time is kept out of the comparison: explicit ids only (``*`` is covered by the client and
replication tests); min-idle times are 0 or 10^9 ms; XCLAIM's TIME is a fixed instant;
idle times, and delivery / seen times near now, are replaced by a marker (``normalise``).

Accepted differences (the reference is redis-server 7.0; ackdb is Redis 7.2), each handled
where the comparison is made:
- XREADGROUP creates its consumer even when it serves nothing (7.2); 7.0 only when it
  serves. The generator creates each consumer (XGROUP CREATECONSUMER) before reading.
- Consumers carry 7.2's ``inactive`` (XINFO CONSUMERS) and ``active-time`` (FULL): removed.
- XSETID refuses an id below the stream's max deleted id (7.2): never sent.
- 7.0's "Unbalanced XREAD list of streams" text (7.2 names the command): both only
  compared as "ERR Unbalanced".

Replay one seed:  ACKDB_DIFF_SEED=4 python -m pytest tests/compat/test_differential_streams.py
Check the generator (both sides redis-server; must pass):
    ACKDB_DIFF_TARGET=redis python -m pytest tests/compat/test_differential_streams.py
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import diff_harness as harness
import pytest
import redis
from resp_wire import Reply

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SEEDS = harness.seeds("ACKDB_DIFF", 40)
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_DIFF", 400)

STREAM_KEYS = [b"s1", b"s2", b"big"]
ALL_KEYS = [*STREAM_KEYS, b"str", b"missing"]
GROUPS = [b"g1", b"g2"]
CONSUMERS = [b"alice", b"bob", b"carol"]
FIELDS = [b"a", b"b", b"c", b"n", b"12", b""]
VALUES = [b"1", b"2", b"x", b"hello", b"-5", b"3.5", b"", b"v" * 70]
BAD_IDS = [b"x", b"-1", b"1-x", b"1--1", b"18446744073709551616", b"", b"1-2-3", b"+", b"-"]
FIXED_TIME = b"1000000"  # XCLAIM TIME: a fixed instant long past
BIG_IDLE = b"1000000000"  # 10^9 ms: nothing delivered during the test is that idle
NOW_MIN = 10**12  # integers above this are times near now (ms): replaced by a marker


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("diff-streams")) as pair:
        yield pair


@dataclass(frozen=True, slots=True)
class Op:
    argv: list[bytes]
    mode: str = "exact"  # exact | consumers

    def text(self) -> str:
        return " ".join(a.decode("utf-8", "replace") for a in self.argv)


def _op(*args: object, mode: str = "exact") -> Op:
    return Op([a if isinstance(a, bytes) else str(a).encode() for a in args], mode)


class Generator:
    """Seeded command source; keeps per key the next id it adds (ms, seq)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_ms = {k: 1 for k in STREAM_KEYS}

    def key(self) -> bytes:
        return self.rng.choice(ALL_KEYS if self.rng.random() < 0.1 else STREAM_KEYS)

    def new_id(self, key: bytes) -> bytes:
        rng = self.rng
        ms = self.next_ms.get(key, 1)
        self.next_ms[key] = ms + rng.randrange(1, 3)
        return rng.choice([b"%d-%d" % (ms, rng.randrange(3)), b"%d" % ms, b"%d-*" % ms])

    def old_id(self, key: bytes) -> bytes:
        top = self.next_ms.get(key, 1)
        return b"%d-%d" % (self.rng.randrange(0, top + 2), self.rng.randrange(3))

    def bound(self, key: bytes) -> bytes:
        r = self.rng.random()
        if r < 0.15:
            return self.rng.choice([b"-", b"+"])
        if r < 0.3:
            return b"(" + self.old_id(key)
        if r < 0.35:
            return self.rng.choice(BAD_IDS)
        return (
            self.old_id(key)
            if r < 0.8
            else b"%d" % self.rng.randrange(self.next_ms.get(key, 1) + 1)
        )

    def fields(self) -> list[bytes]:
        n = self.rng.choice([1, 1, 2, 3])
        out: list[bytes] = []
        for _ in range(n):
            out += [self.rng.choice(FIELDS), self.rng.choice(VALUES)]
        return out

    def trim(self, key: bytes) -> list[bytes]:
        rng = self.rng
        how = rng.choice([b"MAXLEN", b"MINID", b"maxlen"])
        out = [how]
        if rng.random() < 0.6:
            out.append(rng.choice([b"~", b"="]))
        if how.upper() == b"MAXLEN":
            out.append(b"%d" % rng.choice([0, 1, 5, 50, 120, 250, rng.randrange(300), -1]))
        else:
            out.append(self.old_id(key) if rng.random() < 0.95 else rng.choice(BAD_IDS))
        if rng.random() < 0.2:
            out += [b"LIMIT", b"%d" % rng.choice([0, 1, 50, 100, 150, -1])]
        return out

    def next(self) -> list[Op]:
        rng = self.rng
        op = rng.randrange(100)
        key = self.key()
        g, con = rng.choice(GROUPS), rng.choice(CONSUMERS)
        if op < 30:
            argv = [b"XADD", key]
            if rng.random() < 0.1:
                argv.append(b"NOMKSTREAM")
            if rng.random() < 0.2:
                argv += self.trim(key)
            if key == b"big":  # grows past several nodes
                n = rng.randrange(1, 40)
                return [_op(*argv, self.new_id(key), *self.fields()) for _ in range(n)]
            sid = self.new_id(key) if rng.random() < 0.9 else rng.choice([*BAD_IDS, b"0-0"])
            fv = self.fields() if rng.random() < 0.97 else [b"odd"]
            return [_op(*argv, sid, *fv)]
        if op < 36:
            cmd = rng.choice([b"XRANGE", b"XREVRANGE"])
            argv = [cmd, key, self.bound(key), self.bound(key)]
            if rng.random() < 0.5:
                argv += [b"COUNT", b"%d" % rng.choice([0, 1, 3, 10, -1])]
            return [_op(*argv)]
        if op < 38:
            return [_op(b"XLEN", key)]
        if op < 42:
            return [_op(b"XDEL", key, *[self.old_id(key) for _ in range(rng.randrange(1, 4))])]
        if op < 45:
            return [_op(b"XTRIM", key, *self.trim(key))]
        if op < 46:
            top = self.next_ms.get(key, 1) + 5
            self.next_ms[key] = top + 5
            extra = [b"ENTRIESADDED", b"%d" % rng.randrange(0, 2000)] if rng.random() < 0.5 else []
            if rng.random() < 0.2:
                return [_op(b"XSETID", key, b"1-0", b"MAXDELETEDID", b"%d-0" % top)]
            return [_op(b"XSETID", key, b"%d-0" % top, *extra)]
        if op < 52:
            keys = rng.sample(STREAM_KEYS, rng.randrange(1, 3))
            ids = [rng.choice([b"$", b"0", self.old_id(k)]) for k in keys]
            argv = [b"XREAD"]
            if rng.random() < 0.5:
                argv += [b"COUNT", b"%d" % rng.choice([1, 2, 5])]
            return [_op(*argv, b"STREAMS", *keys, *ids)]
        if op < 57:
            sub = rng.randrange(6)
            if sub <= 1:
                argv = [b"XGROUP", b"CREATE", key, g, rng.choice([b"0", b"$", self.old_id(key)])]
                if rng.random() < 0.5:
                    argv.append(b"MKSTREAM")
                if rng.random() < 0.3:
                    argv += [b"ENTRIESREAD", b"%d" % rng.choice([-1, 0, 3, -2])]
                ops = [_op(*argv)]
                ops += [_op(b"XGROUP", b"CREATECONSUMER", key, g, c) for c in CONSUMERS]
                return ops
            if sub == 2:
                argv = [b"XGROUP", b"SETID", key, g, rng.choice([b"0", b"$", self.old_id(key)])]
                if rng.random() < 0.4:
                    argv += [b"ENTRIESREAD", b"%d" % rng.randrange(0, 10)]
                return [_op(*argv)]
            if sub == 3:
                return [
                    _op(b"XGROUP", b"DELCONSUMER", key, g, con),
                    _op(b"XGROUP", b"CREATECONSUMER", key, g, con),
                ]
            if sub == 4 and rng.random() < 0.3:
                return [_op(b"XGROUP", b"DESTROY", key, g)]
            return [_op(b"XGROUP", b"CREATECONSUMER", key, g, con)]
        if op < 67:
            keys = rng.sample(STREAM_KEYS, rng.randrange(1, 3))
            ids = [b">" if rng.random() < 0.75 else self.old_id(k) for k in keys]
            argv = [b"XREADGROUP", b"GROUP", g, con]
            if rng.random() < 0.6:
                argv += [b"COUNT", b"%d" % rng.choice([1, 2, 5])]
            if rng.random() < 0.15:
                argv.append(b"NOACK")
            pre = [_op(b"XGROUP", b"CREATECONSUMER", k, g, con) for k in keys]
            return [*pre, _op(*argv, b"STREAMS", *keys, *ids)]
        if op < 72:
            return [_op(b"XACK", key, g, *[self.old_id(key) for _ in range(rng.randrange(1, 4))])]
        if op < 78:
            if rng.random() < 0.3:
                return [_op(b"XPENDING", key, g)]
            argv = [b"XPENDING", key, g]
            if rng.random() < 0.3:
                argv += [b"IDLE", rng.choice([b"0", BIG_IDLE])]
            argv += [self.bound(key), self.bound(key), b"%d" % rng.choice([1, 5, 100, 0])]
            if rng.random() < 0.4:
                argv.append(con)
            return [_op(*argv)]
        if op < 84:
            ids = [self.old_id(key) for _ in range(rng.randrange(1, 4))]
            argv = [b"XCLAIM", key, g, con, rng.choice([b"0", BIG_IDLE]), *ids]
            for opt in rng.sample([b"TIME", b"RETRYCOUNT", b"FORCE", b"JUSTID", b"LASTID"], 2):
                if opt == b"TIME":
                    argv += [opt, FIXED_TIME]
                elif opt == b"RETRYCOUNT":
                    argv += [opt, b"%d" % rng.randrange(0, 5)]
                elif opt == b"LASTID":
                    argv += [opt, self.old_id(key)]
                else:
                    argv.append(opt)
            return [_op(*argv)]
        if op < 88:
            argv = [b"XAUTOCLAIM", key, g, con, rng.choice([b"0", BIG_IDLE]), self.bound(key)]
            if rng.random() < 0.5:
                argv += [b"COUNT", b"%d" % rng.choice([1, 2, 10, 0])]
            if rng.random() < 0.3:
                argv.append(b"JUSTID")
            return [_op(*argv)]
        if op < 91:
            return [_op(b"XINFO", b"GROUPS", key)]
        if op < 93:
            return [_op(b"XINFO", b"CONSUMERS", key, g, mode="consumers")]
        if op < 96:
            if rng.random() < 0.5:
                return [_op(b"XINFO", b"STREAM", key)]
            return [_op(b"XINFO", b"STREAM", key, b"FULL", b"COUNT", b"%d" % rng.choice([0, 3]))]
        if op < 97:
            return [_op(b"TYPE", key), _op(b"OBJECT", b"ENCODING", key)]
        if op < 98:
            dst = rng.choice(STREAM_KEYS)
            return [_op(b"COPY", key, dst, *([b"REPLACE"] if rng.random() < 0.5 else []))]
        if op < 99 and rng.random() < 0.3:
            return [_op(b"RENAME", b"s1", b"s2")]
        return [_op(b"SET", b"str", b"v"), _op(b"XLEN", b"str"), _op(b"XADD")]


def normalise(reply: Reply, sut: bool, mode: str) -> Reply:
    """Times near now become "T"; 7.2-only consumer fields go; the Unbalanced text."""
    kind, payload = reply
    if kind in ":(" and isinstance(payload, int) and payload >= NOW_MIN:
        return (kind, "T")
    if kind == "-" and isinstance(payload, bytes) and payload.startswith(b"ERR Unbalanced"):
        return (kind, b"ERR Unbalanced")
    if kind in "*%~" and isinstance(payload, list):
        items = [normalise(x, sut, mode) for x in payload]
        if _is_map(items):
            items = _drop_fields(items, mode)
        return (kind, items)
    return reply


def _is_map(items: list[Reply]) -> bool:
    return len(items) >= 2 and len(items) % 2 == 0 and items[0] == ("$", b"name")


_DROP = {b"inactive", b"active-time", b"seen-time"}


def _drop_fields(items: list[Reply], mode: str) -> list[Reply]:
    out: list[Reply] = []
    for k, v in zip(items[::2], items[1::2], strict=True):
        if k[1] in _DROP:
            continue
        if mode == "consumers" and k[1] == b"idle":
            v = (v[0], "idle")
        out += [k, v]
    return out


class Pair(harness.Pair):
    module = "tests/compat/test_differential_streams.py"
    shown = harness.history_shown("ACKDB_DIFF", 15)

    def check(self, index: int, op: Op) -> None:
        self.note(index, op.text())
        ref, sut = self.call(op.argv)
        ref, sut = normalise(ref, False, op.mode), normalise(sut, True, op.mode)
        if ref != sut:
            self.fail(index, op.text(), ref, sut)


def compare_datasets(pair: Pair, index: int) -> None:
    pair.check(index, Op([b"DBSIZE"]))
    for key in ALL_KEYS:
        pair.check(index, Op([b"TYPE", key]))
        if pair.ref.call(b"TYPE", key) == ("+", b"stream"):
            pair.check(index, Op([b"XRANGE", key, b"-", b"+"]))
            pair.check(index, Op([b"XINFO", b"STREAM", key, b"FULL", b"COUNT", b"0"]))
        pair.check(index, Op([b"DEBUG", b"DIGEST-VALUE", key]))
    pair.check(index, Op([b"DEBUG", b"DIGEST"]))


@pytest.mark.timeout(harness.SEED_TIMEOUT_S)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_seed(ports: tuple[int, int], seed: int) -> None:
    pair = Pair(ports, seed)
    try:
        pair.check(-1, Op([b"FLUSHALL"]))
        if seed % 3 == 2:
            pair.protocol = 3
            ref, sut = pair.call([b"HELLO", b"3"])
            assert ref[0] == sut[0] == "%", (ref, sut)
        gen = Generator(seed)
        index = 0
        while index < COMMANDS_PER_SEED:
            for op in gen.next():
                pair.check(index, op)
                index += 1
        compare_datasets(pair, index)
    finally:
        pair.close()


def test_generator_is_deterministic() -> None:
    a, b = Generator(5), Generator(5)
    assert [[o.argv for o in a.next()] for _ in range(300)] == [
        [o.argv for o in b.next()] for _ in range(300)
    ]


# -- blocking reads served by other clients -------------------------------------------------

BLOCK_SEEDS = harness.seeds("ACKDB_DIFF_BLOCK", 8)


def _blocking_run(port: int, seed: int) -> list[object]:
    """Blocked XREAD / XREADGROUP clients (one thread each, started in a fixed order),
    then a writer's XADDs / XGROUP DESTROY; returns what each reader got, in order."""
    rng = random.Random(seed)
    r = redis.Redis(port=port)
    r.flushall()
    r.xadd("k1", {"f": "0"}, id="1-0")
    r.xgroup_create("k1", "g", id="$")
    r.xgroup_create("k2", "g", id="$", mkstream=True)
    for c in CONSUMERS:
        for k in ("k1", "k2"):
            r.xgroup_createconsumer(k, "g", c.decode())
    readers = []
    for i in range(rng.randrange(2, 6)):
        keys = rng.sample(["k1", "k2", "k3"], rng.randrange(1, 3))
        group = rng.random() < 0.5 and "k3" not in keys
        count = rng.choice([None, 1, 2])
        if group:
            name = rng.choice(CONSUMERS).decode()
            spec = ("group", name, {k: ">" for k in keys}, count)
        else:
            spec = ("read", "", {k: rng.choice(["$", "0-0", "1-0"]) for k in keys}, count)
        readers.append((i, spec))
    results: list[object] = [None] * len(readers)
    threads = []

    def read(i: int, spec: tuple[str, str, dict[str, str], int | None]) -> None:
        c = redis.Redis(port=port)
        kind, name, streams, count = spec
        try:
            if kind == "group":
                results[i] = c.xreadgroup("g", name, streams, count=count, block=1500)
            else:
                results[i] = c.xread(streams, count=count, block=1500)
        except redis.ResponseError as e:
            results[i] = ("error", str(e)[:7])
        finally:
            c.close()

    for i, spec in readers:
        t = threading.Thread(target=read, args=(i, spec))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 5  # each reader blocks (or is served) before the next
        while _blocked(r) + sum(x is not None for x in results) < i + 1:
            assert time.monotonic() < deadline, "a reader neither blocked nor was served"
            time.sleep(0.005)
    ms = 10
    for _ in range(rng.randrange(1, 5)):
        k = rng.choice(["k1", "k2", "k3"])
        with r.pipeline(transaction=True) as p:
            for _ in range(rng.randrange(1, 3)):
                p.xadd(k, {"f": str(ms)}, id=f"{ms}-0")
                ms += 1
            p.execute()
    for t in threads:
        t.join(10)
    r.close()
    return results


def _blocked(r: redis.Redis) -> int:
    return int(r.info("clients")["blocked_clients"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", BLOCK_SEEDS, ids=[f"seed{s}" for s in BLOCK_SEEDS])
def test_blocking_reads_served_in_redis_order(ports: tuple[int, int], seed: int) -> None:
    ref = _blocking_run(ports[0], seed)
    sut = _blocking_run(ports[1], seed)
    assert ref == sut, f"seed {seed}: redis {ref!r} ackdb {sut!r}"
