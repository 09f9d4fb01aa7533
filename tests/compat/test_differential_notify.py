"""Differential test of keyspace notifications: seeded random write sequences against one
redis-server (the reference) and one ackdb, both started with
``notify-keyspace-events KEAnm`` (``keymiss`` included: every read lookup that misses
publishes one); a raw-RESP ``PSUBSCRIBE *`` listener on each server
collects what every command publishes, and the ordered (channel, message) lists are
compared command by command (replies too, so a divergence in state shows where it starts).

Covers the string, generic, hash, list and set writes (zsets belong to their own module),
MULTI/EXEC, SELECT / MOVE / COPY across databases, SWAPDB and FLUSHDB, CONFIG SET of the
event classes mid-sequence, and blocked clients served by a later push. One seed in three
listens over RESP3.

Determinism: no TTL short enough to run out during a seed (expiry in the past deletes at
once, as a command's own effect); SPOP runs on a copy of its key that is deleted right
after (which members it pops is random, the events are not); blocking commands get a
10 ms timeout so a missing key times out instead of hanging.

After each command the command connection PUBLISHes a marker on ``zz:marker``: the
listener reads up to it, so each command's events are exactly the messages before it.

Replay one seed:  ACKDB_DIFF_SEED=4 python -m pytest tests/compat/test_differential_notify.py
Check the generator (both sides redis-server; must pass):
    ACKDB_DIFF_TARGET=redis python -m pytest tests/compat/test_differential_notify.py
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

import diff_harness as harness
import pytest
from resp_wire import Reply, RespConnection

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SEEDS = harness.seeds("ACKDB_DIFF", 12)
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_DIFF", 300)
HISTORY_SHOWN = harness.history_shown("ACKDB_DIFF", 12)
MARKER = b"zz:marker"
FLAGS = b"KEAnm"
BLOCK_TIMEOUT = b"0.01"

STRINGS = [b"a", b"b", b"c"]
NUMBERS = [b"n1", b"n2"]
LISTS = [b"l1", b"l2"]
SETS = [b"s1", b"s2"]
HASHES = [b"h1", b"h2"]
ALL_KEYS = [*STRINGS, *NUMBERS, *LISTS, *SETS, *HASHES, b"x"]
SCRATCH = b"__spop_copy"
VALUES = [b"v", b"w", b"1", b"2", b"", b"hello"]
FIELDS = [b"f1", b"f2", b"f3"]
MEMBERS = [b"m1", b"m2", b"m3", b"m4"]
FLAG_CHOICES = [b"KEAn", b"KEA", b"Kl", b"Eg$", b"Kshn", b"En", b"AK", b"", b"KEm", b"KEAnm"]


class Generator:
    """Yields command groups (a list of argvs run back to back: one command, or a
    MULTI ... EXEC block) for one seed; never looks at a reply."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.table: list[tuple[int, Callable[[Generator], list[list[bytes]]]]] = [
            (14, op_string),
            (6, op_counter),
            (10, op_generic),
            (8, op_expire),
            (10, op_hash),
            (14, op_list),
            (4, op_move),
            (3, op_blocking),
            (12, op_set),
            (3, op_multi),
            (1, op_admin),
            (1, op_config),
            (8, op_bits_hll_geo),
        ]
        self.total = sum(w for w, _ in self.table)

    def pick(self, typed: list[bytes]) -> bytes:
        return self.rng.choice(ALL_KEYS) if self.rng.random() < 0.15 else self.rng.choice(typed)

    def next(self) -> list[list[bytes]]:
        r = self.rng.randrange(self.total)
        for weight, fn in self.table:
            if r < weight:
                return fn(self)
            r -= weight
        raise AssertionError("unreachable")


def _b(x: object) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


def one(*args: object) -> list[list[bytes]]:
    return [[_b(a) for a in args]]


BITMAPS = [b"bm1", b"bm2"]
HLLS = [b"hl1", b"hl2"]
GEOS = [b"geo1", b"geo2"]
GEO_POINTS = [(b"13.36", b"38.11"), (b"15.08", b"37.50"), (b"2.35", b"48.85"), (b"-0.12", b"51.5")]


def op_bits_hll_geo(g: Generator) -> list[list[bytes]]:
    """Bitmap, HyperLogLog and geo writes (their events: setbit, set / del for BITOP,
    pfadd for PFADD and PFMERGE, zadd for GEOADD, geo*store / del for the STORE forms)."""
    rng = g.rng
    choice = rng.randrange(8)
    if choice == 0:
        return one(b"SETBIT", g.pick(BITMAPS), rng.randrange(40), rng.choice([0, 1]))
    if choice == 1:
        args = rng.choice([[b"SET", b"u8", 0, 7], [b"INCRBY", b"i5", b"#1", 3], [b"GET", b"u4", 0]])
        return one(b"BITFIELD", g.pick(BITMAPS), *args)
    if choice == 2:
        return one(b"BITOP", rng.choice([b"OR", b"AND"]), g.pick(BITMAPS), b"bm1", b"nokey")
    if choice == 3:
        return one(b"PFADD", g.pick(HLLS), *rng.sample([b"a", b"b", b"c", b"d"], rng.randrange(3)))
    if choice == 4:
        return one(b"PFMERGE", g.pick(HLLS), *rng.sample(HLLS, rng.randrange(3)))
    if choice == 5:
        lon, lat = rng.choice(GEO_POINTS)
        return one(b"GEOADD", g.pick(GEOS), *rng.sample([b"NX", b"XX", b"CH"], 1), lon, lat, b"p")
    if choice == 6:
        return one(b"PFCOUNT", g.pick(HLLS))
    dst, src = rng.choice(GEOS), g.pick(GEOS)
    if rng.random() < 0.5:
        return one(b"GEOSEARCHSTORE", dst, src, b"FROMLONLAT", 13, 38, b"BYRADIUS", 500, b"km")
    return one(b"GEORADIUS", src, 13, 38, rng.choice([10, 5000]), b"km", b"STORE", dst)


def op_string(g: Generator) -> list[list[bytes]]:
    rng = g.rng
    k, v = g.pick(STRINGS), rng.choice(VALUES)
    choice = rng.randrange(11)
    if choice == 0:
        opts: list[object] = []
        if rng.random() < 0.3:
            opts.append(rng.choice([b"NX", b"XX"]))
        if rng.random() < 0.3:
            opts.append(b"GET")
        opts += rng.choice([[], [b"EX", 100], [b"PX", 100000], [b"KEEPTTL"], [b"EXAT", 4 * 10**9]])
        return one(b"SET", k, v, *opts)
    if choice == 1:
        return one(b"SETNX", k, v)
    if choice == 2:
        return one(rng.choice([b"SETEX", b"PSETEX"]), k, 100000, v)
    if choice == 3:
        return one(b"GETSET", k, v)
    if choice == 4:
        return one(b"GETDEL", k)
    if choice == 5:
        return one(b"GETEX", k, *rng.choice([[], [b"EX", 100], [b"PERSIST"], [b"EXAT", 1]]))
    if choice == 6:
        pairs = [x for _ in range(rng.randint(1, 3)) for x in (g.pick(STRINGS), rng.choice(VALUES))]
        return one(rng.choice([b"MSET", b"MSETNX"]), *pairs)
    if choice == 7:
        return one(b"APPEND", k, v)
    if choice == 8:
        return one(b"SETRANGE", k, rng.randint(0, 6), v)
    if choice == 9:
        return one(b"GET", k)
    return one(b"STRLEN", k)


def op_counter(g: Generator) -> list[list[bytes]]:
    rng = g.rng
    k = g.pick(NUMBERS)
    return rng.choice(
        [
            one(b"INCR", k),
            one(b"DECR", k),
            one(b"INCRBY", k, rng.randint(-5, 5)),
            one(b"DECRBY", k, rng.randint(-5, 5)),
            one(b"INCRBYFLOAT", k, rng.choice([b"1.5", b"-0.25", b"3"])),
        ]
    )


def op_generic(g: Generator) -> list[list[bytes]]:
    rng = g.rng
    k1, k2 = rng.choice(ALL_KEYS), rng.choice(ALL_KEYS)
    choice = rng.randrange(5)
    if choice == 0:
        keys = [rng.choice(ALL_KEYS) for _ in range(rng.randint(1, 3))]
        return one(rng.choice([b"DEL", b"UNLINK"]), *keys)
    if choice == 1:
        return one(rng.choice([b"RENAME", b"RENAMENX"]), k1, k2)
    if choice == 2:
        opts = rng.choice([[], [b"REPLACE"], [b"DB", 1], [b"DB", 1, b"REPLACE"]])
        return one(b"COPY", k1, k2, *opts)
    if choice == 3:
        return one(b"PERSIST", k1)
    return one(b"EXISTS", k1, k2)


def op_expire(g: Generator) -> list[list[bytes]]:
    rng = g.rng
    k = rng.choice(ALL_KEYS)
    cmd, when = rng.choice(
        [
            (b"EXPIRE", rng.choice([100, 200, 0, -1])),
            (b"PEXPIRE", rng.choice([100000, 300000, -5])),
            (b"EXPIREAT", rng.choice([4000000000, 4100000000, 1])),
            (b"PEXPIREAT", rng.choice([4000000000000, 1])),
        ]
    )
    cond = [rng.choice([b"NX", b"XX", b"GT", b"LT"])] if rng.random() < 0.3 else []
    return one(cmd, k, when, *cond)


def op_hash(g: Generator) -> list[list[bytes]]:
    rng = g.rng
    k, f, v = g.pick(HASHES), rng.choice(FIELDS), rng.choice(VALUES)
    choice = rng.randrange(6)
    if choice == 0:
        pairs = [x for _ in range(rng.randint(1, 2)) for x in (rng.choice(FIELDS), v)]
        return one(rng.choice([b"HSET", b"HMSET"]), k, *pairs)
    if choice == 1:
        return one(b"HSETNX", k, f, v)
    if choice == 2:
        return one(b"HDEL", k, *rng.sample(FIELDS, rng.randint(1, 3)))
    if choice == 3:
        return one(b"HINCRBY", k, f, rng.randint(-3, 3))
    if choice == 4:
        return one(b"HINCRBYFLOAT", k, f, rng.choice([b"1.5", b"-2"]))
    return one(b"HGET", k, f)


def op_list(g: Generator) -> list[list[bytes]]:
    rng = g.rng
    k = g.pick(LISTS)
    elements = [rng.choice(VALUES[:3]) for _ in range(rng.randint(1, 3))]
    choice = rng.randrange(11) - 1
    if choice <= 1:
        return one(rng.choice([b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX"]), k, *elements)
    if choice == 2:
        count = [rng.randint(0, 3)] if rng.random() < 0.4 else []
        return one(rng.choice([b"LPOP", b"RPOP"]), k, *count)
    if choice == 3:
        count = [b"COUNT", rng.randint(1, 3)] if rng.random() < 0.5 else []
        keys = rng.sample(LISTS, 2)
        return one(b"LMPOP", 2, *keys, rng.choice([b"LEFT", b"RIGHT"]), *count)
    if choice == 4:
        return one(b"LSET", k, rng.randint(-2, 2), elements[0])
    if choice == 5:
        return one(b"LINSERT", k, rng.choice([b"BEFORE", b"AFTER"]), elements[0], b"ins")
    if choice == 6:
        return one(b"LREM", k, rng.randint(-2, 2), elements[0])
    if choice == 7:
        return one(b"LTRIM", k, rng.randint(-3, 2), rng.randint(-3, 3))
    if choice == 8:
        src, dst = g.pick(LISTS), g.pick(LISTS)
        if rng.random() < 0.5:
            return one(b"RPOPLPUSH", src, dst)
        ends = [rng.choice([b"LEFT", b"RIGHT"]) for _ in range(2)]
        return one(b"LMOVE", src, dst, *ends)
    return one(b"LRANGE", k, 0, -1)


def op_blocking(g: Generator) -> list[list[bytes]]:
    rng = g.rng
    src, dst = g.pick(LISTS), g.pick(LISTS)
    return rng.choice(
        [
            one(b"BLPOP", src, BLOCK_TIMEOUT),
            one(b"BRPOP", *LISTS, BLOCK_TIMEOUT),
            one(b"BLMOVE", src, dst, b"RIGHT", b"LEFT", BLOCK_TIMEOUT),
            one(b"BRPOPLPUSH", src, dst, BLOCK_TIMEOUT),
            one(b"BLMPOP", BLOCK_TIMEOUT, 1, src, b"LEFT", b"COUNT", 2),
        ]
    )


def op_move(g: Generator) -> list[list[bytes]]:
    rng = g.rng
    k = rng.choice(ALL_KEYS)
    if rng.random() < 0.7:
        return one(b"MOVE", k, 1)
    # Bring keys back from database 1 (and announce what happens there).
    return [[b"SELECT", b"1"], [b"MOVE", k, b"0"], [b"SELECT", b"0"]]


def op_set(g: Generator) -> list[list[bytes]]:
    """Set writes, SPOP included (on a copy: see the module docstring)."""
    if g.rng.randrange(6) == 0:
        count = [_b(g.rng.randint(0, 4))] if g.rng.random() < 0.6 else []
        return [
            [b"COPY", g.pick(SETS), SCRATCH, b"REPLACE"],
            [b"SPOP", SCRATCH, *count],
            [b"DEL", SCRATCH],
        ]
    return op_set_deterministic(g)


def op_set_deterministic(g: Generator) -> list[list[bytes]]:
    rng = g.rng
    k = g.pick(SETS)
    members = rng.sample(MEMBERS, rng.randint(1, 3))
    choice = rng.randrange(5)
    if choice <= 1:
        return one(b"SADD", k, *members)
    if choice == 2:
        return one(b"SREM", k, *members)
    if choice == 3:
        return one(b"SMOVE", g.pick(SETS), g.pick(SETS), members[0])
    store = rng.choice([b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"])
    dst = rng.choice([*SETS, b"x", b"a"])
    return one(store, dst, *rng.sample([*SETS, b"x"], rng.randint(1, 2)))


def op_multi(g: Generator) -> list[list[bytes]]:
    rng = g.rng
    body = [cmd for _ in range(rng.randint(1, 3)) for cmd in rng.choice(
        [op_string, op_hash, op_list, op_set_deterministic, op_counter, op_expire]
    )(g)]  # fmt: skip
    return [[b"MULTI"], *body, [b"EXEC"]]


def op_admin(g: Generator) -> list[list[bytes]]:
    return g.rng.choice([one(b"SWAPDB", 0, 1), one(b"SWAPDB", 0, 1), one(b"FLUSHDB")])


def op_config(g: Generator) -> list[list[bytes]]:
    return one(b"CONFIG", b"SET", b"notify-keyspace-events", g.rng.choice(FLAG_CHOICES))


# -- the two servers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    flags = ("--notify-keyspace-events", FLAGS.decode())
    with server_pair(tmp_path_factory.mktemp("differential-notify"), *flags) as pair:
        yield pair


Messages = list[tuple[bytes, bytes]]


class Side:
    """One server: a command connection and a listener subscribed to every channel."""

    def __init__(self, port: int, resp3: bool) -> None:
        self.cmd = RespConnection(port)
        self.listener = RespConnection(port)
        if resp3:
            assert self.listener.call(b"HELLO", b"3")[0] == "%"
        kind, _ = self.listener.call(b"PSUBSCRIBE", b"*")
        assert kind in "*>"
        self.marks = 0

    def close(self) -> None:
        self.cmd.close()
        self.listener.close()

    def messages(self) -> Messages:
        """What was published since the last call: publish a marker, read up to it."""
        self.marks += 1
        mark = b"%d" % self.marks
        assert self.cmd.call(b"PUBLISH", MARKER, mark)[0] == ":"
        out: Messages = []
        while True:
            kind, items = self.listener.read()
            assert kind in "*>" and isinstance(items, list), (kind, items)
            assert items[0][1] == b"pmessage", items
            channel, message = items[2][1], items[3][1]
            assert isinstance(channel, bytes) and isinstance(message, bytes)
            if channel == MARKER:
                assert message == mark, (message, mark)
                return out
            out.append((channel, message))


class Pair:
    def __init__(self, ports: tuple[int, int], seed: int) -> None:
        self.seed = seed
        resp3 = seed % 3 == 2
        self.ref = Side(ports[0], resp3)
        try:
            self.sut = Side(ports[1], resp3)
        except BaseException:
            self.ref.close()
            raise
        self.history: list[str] = []

    def close(self) -> None:
        self.ref.close()
        self.sut.close()

    def run(self, index: int, group: list[list[bytes]]) -> None:
        text = " ; ".join(_text(argv) for argv in group)
        self.history.append(f"{index:4}  {text}")
        for argv in group:
            self.ref.cmd.send(argv)
            self.sut.cmd.send(argv)
            ref, sut = self.ref.cmd.read(), self.sut.cmd.read()
            if not _replies_match(argv, ref, sut):
                self.fail(f"reply to {_text(argv)}", ref, sut)
        ref_msgs, sut_msgs = self.ref.messages(), self.sut.messages()
        if ref_msgs != sut_msgs:
            self.fail("events", ref_msgs, sut_msgs)

    def fail(self, what: str, ref: object, sut: object) -> None:
        shown = "\n".join(self.history[-HISTORY_SHOWN:])
        raise harness.Mismatch(
            f"{what} differ (seed={self.seed})\n  redis: {ref}\n  ackdb: {sut}\n"
            f"last commands:\n{shown}\n"
            f"replay: ACKDB_DIFF_SEED={self.seed} python -m pytest "
            f"tests/compat/test_differential_notify.py -k seed"
        )


def _text(argv: list[bytes]) -> str:
    return " ".join(a.decode("utf-8", "backslashreplace") or "''" for a in argv)


def _replies_match(argv: list[bytes], ref: Reply, sut: Reply) -> bool:
    if ref == sut:
        return True
    return argv[0] == b"SPOP" and ref[0] == sut[0]  # random members


@pytest.mark.timeout(harness.SEED_TIMEOUT_S)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_seed(ports: tuple[int, int], seed: int) -> None:
    pair = Pair(ports, seed)
    try:
        pair.run(-2, [[b"CONFIG", b"SET", b"notify-keyspace-events", FLAGS]])
        pair.run(-1, [[b"FLUSHALL"]])
        gen = Generator(seed)
        for index in range(COMMANDS_PER_SEED):
            pair.run(index, gen.next())
        # TTLs differ by the ms between the servers, so no DEBUG DIGEST: the key counts.
        pair.run(COMMANDS_PER_SEED, [[b"DBSIZE"], [b"SELECT", b"1"], [b"DBSIZE"]])
    finally:
        pair.close()


def test_generator_is_deterministic() -> None:
    a, b = Generator(5), Generator(5)
    assert [a.next() for _ in range(500)] == [b.next() for _ in range(500)]


# -- blocked clients served by a later write ----------------------------------------------

# (blocking commands of waiting clients, in blocking order; the write that serves them)
BLOCKED_CASES = [
    ([b"BLPOP bl 0"], b"RPUSH bl x y"),
    ([b"BLPOP bl 0"], b"RPUSH bl x"),
    ([b"BLMOVE bl dst LEFT RIGHT 0"], b"LPUSH bl x"),
    ([b"BRPOPLPUSH bl dst 0"], b"LPUSH bl x y"),
    ([b"BLMPOP 0 2 zz bl LEFT COUNT 5"], b"RPUSH bl x y"),
    ([b"BLPOP bl 0", b"BRPOP bl 0"], b"RPUSH bl x y z"),
    ([b"BLPOP bl 0"], b"LMOVE src bl LEFT LEFT"),
    ([b"BLMOVE bl bl2 LEFT LEFT 0", b"BLPOP bl2 0"], b"RPUSH bl x"),
]
BLOCKED_SETTLE_S = 0.05
BLOCKED_WAIT_S = 5.0


def _blocked_count(conn: RespConnection) -> int:
    kind, info = conn.call(b"INFO", b"clients")
    assert isinstance(info, bytes)
    for line in info.decode().splitlines():
        if line.startswith("blocked_clients:"):
            return int(line.split(":")[1])
    raise AssertionError(info)


def _blocked_events(port: int, waiters: list[bytes], write: bytes) -> Messages:
    side = Side(port, resp3=False)
    clients = []
    try:
        side.cmd.call(b"CONFIG", b"SET", b"notify-keyspace-events", FLAGS)
        side.cmd.call(b"FLUSHALL")
        side.cmd.call(b"RPUSH", b"src", b"s1")
        side.messages()
        for i, w in enumerate(waiters):
            client = RespConnection(port)
            clients.append(client)
            client.send(w.split())
            deadline = time.monotonic() + BLOCKED_WAIT_S
            while _blocked_count(side.cmd) < i + 1:  # blocking order is the test's order
                assert time.monotonic() < deadline, "client did not block"
                time.sleep(BLOCKED_SETTLE_S / 5)
        side.cmd.call(*write.split())
        for client in clients:
            client.read()
        return side.messages()
    finally:
        for client in clients:
            client.close()
        side.close()


@pytest.mark.parametrize(
    ("waiters", "write"), BLOCKED_CASES, ids=[w.decode() for _, w in BLOCKED_CASES]
)
def test_blocked_clients_served_after_the_write(
    ports: tuple[int, int], waiters: list[bytes], write: bytes
) -> None:
    ref = _blocked_events(ports[0], waiters, write)
    sut = _blocked_events(ports[1], waiters, write)
    assert ref == sut
    assert ref  # the case did publish something
