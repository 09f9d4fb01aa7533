"""Differential test of DUMP and RESTORE: seeded random sequences against one redis-server
(the reference) and one ackdb. The payloads differ by design (ackdb's own format), so each
server RESTOREs what it DUMPed itself; every reply is compared (a payload only as "a
bulk" or "nil"), and after each RESTORE the restored value (DEBUG DIGEST-VALUE), TYPE and
TTL. Each server must refuse the other's payload, and a corrupted or truncated one, with
Redis's "DUMP payload version or checksum are wrong".

Covers every type (strings, hashes, lists, sets, sorted sets, streams with groups),
REPLACE, ABSTTL, IDLETIME, FREQ (and their exclusion), TTLs relative, absolute and past,
BUSYKEY, bad TTLs and option errors; the keyspace events compared at the end.

Replay one seed:  ACKDB_DIFF_SEED=4 python -m pytest tests/compat/test_differential_dump.py
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import diff_harness as harness
import pytest
from resp_wire import Reply, RespConnection

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SEEDS = harness.seeds("ACKDB_DIFF", 20)
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_DIFF", 120)
KEYS = [b"k1", b"k2", b"k3", b"k4"]
SLOT = b"<payload>"  # stands for the payload the server itself DUMPed


class Generator:
    def __init__(self, seed: int, base_ms: int) -> None:
        self.rng = random.Random(seed)
        self.base_ms = base_ms
        self.serial = 0

    def fill(self) -> list[bytes]:
        r = self.rng
        k = r.choice(KEYS)
        n = r.choice([1, 2, 5, 40, 200])
        items = [b"%d" % r.randrange(n * 2) if r.random() < 0.5 else b"m%d" % i for i in range(n)]
        kind = r.randrange(6)
        if kind == 0:
            return [b"SET", k, r.choice([b"1", b"-7", b"x" * r.randrange(0, 60)])]
        if kind == 1:
            return [b"HSET", k, *(x for i, e in enumerate(items) for x in (b"f%d" % i, e))]
        if kind == 2:
            return [b"RPUSH", k, *items]
        if kind == 3:
            return [b"SADD", k, *items]
        if kind == 4:
            return [b"ZADD", k, *(x for e in items for x in (b"%d" % r.randrange(-9, 9), e))]
        self.serial += 1
        return [b"XADD", k, b"%d-1" % self.serial, b"f", items[0]]

    def restore(self) -> list[bytes]:
        r = self.rng
        argv = [b"RESTORE", r.choice([*KEYS, b"dst"])]
        ttl = r.choice([b"0", b"0", b"100000", b"-1", b"x", b"ABS", b"PAST"])
        absttl = False
        if ttl == b"ABS":
            ttl, absttl = b"%d" % (self.base_ms + 500_000), True
        elif ttl == b"PAST":
            ttl, absttl = b"%d" % (self.base_ms - 1000), True
        argv += [ttl, SLOT]
        opts = [[b"REPLACE"], [b"ABSTTL"], [b"IDLETIME", b"5"], [b"FREQ", b"7"],
                [b"IDLETIME", b"-1"], [b"FREQ", b"256"], [b"FREQ"], [b"nope"]]  # fmt: skip
        if absttl:
            argv.append(b"ABSTTL")
        for _ in range(r.choice([0, 0, 1, 1, 2])):
            argv += r.choice(opts)
        return argv

    def next(self) -> list[bytes]:
        r = self.rng
        kind = r.random()
        if kind < 0.35:
            return self.fill()
        if kind < 0.55:
            return [b"DUMP", r.choice([*KEYS, b"missing"])]
        if kind < 0.9:
            return self.restore()
        if kind < 0.95:
            return [b"DEL", r.choice(KEYS)]
        return [b"XGROUP", b"CREATE", r.choice(KEYS), b"g%d" % r.randrange(3), b"0", b"MKSTREAM"]


def _shape(reply: Reply) -> Reply:
    return (reply[0], None if reply[1] is None else b"<payload>")


class Pair(harness.Pair):
    module = "tests/compat/test_differential_dump.py"
    shown = harness.history_shown("ACKDB_DIFF", 12)

    def __init__(self, ports: tuple[int, int], seed: int) -> None:
        super().__init__(ports, seed)
        self.payloads: tuple[bytes, bytes] | None = None
        self.rng = random.Random(seed * 7 + 1)

    def compare(self, index: int, text: str, argv: list[bytes]) -> None:
        ref, sut = self.call(argv)
        if ref != sut:
            self.fail(index, text, ref, sut)

    def check(self, index: int, argv: list[bytes]) -> None:
        text = " ".join(repr(a)[2:-1] for a in argv[:10])
        self.note(index, text)
        if argv[0] == b"DUMP":
            ref, sut = self.call(argv)
            if _shape(ref) != _shape(sut):
                self.fail(index, text, ref, sut)
            if isinstance(ref[1], bytes) and isinstance(sut[1], bytes):
                self.payloads = (ref[1], sut[1])
            return
        if argv[0] != b"RESTORE":
            self.compare(index, text, argv)
            return
        if self.payloads is None:
            return
        theirs, ours = self.payloads
        swap = self.rng.random()
        if swap < 0.1:  # each server gets the other's payload
            theirs, ours = ours, theirs
        elif swap < 0.15:
            at = self.rng.randrange(len(theirs)), self.rng.randrange(len(ours))
            theirs = theirs[: at[0]] + bytes([theirs[at[0]] ^ 0x20]) + theirs[at[0] + 1 :]
            ours = ours[: at[1]] + bytes([ours[at[1]] ^ 0x20]) + ours[at[1] + 1 :]
        elif swap < 0.18:
            theirs, ours = theirs[:-3], ours[:-3]
        at = argv.index(SLOT)
        self.ref.send(argv[:at] + [theirs] + argv[at + 1 :])
        self.sut.send(argv[:at] + [ours] + argv[at + 1 :])
        ref, sut = self.ref.read(), self.sut.read()
        if ref != sut:
            self.fail(index, text, ref, sut)
        key = argv[1]
        for probe in ([b"DEBUG", b"DIGEST-VALUE", key], [b"TYPE", key]):
            self.compare(index, f"({probe[0]!r} after) {text}", probe)
        ref, sut = self.call([b"PTTL", key])
        assert isinstance(ref[1], int) and isinstance(sut[1], int)
        if (ref[1] < 0 or sut[1] < 0) and ref != sut or abs(ref[1] - sut[1]) > 2000:
            self.fail(index, f"(PTTL after) {text}", ref, sut)


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("differential-dump")) as pair:
        yield pair


@pytest.mark.timeout(harness.SEED_TIMEOUT_S * 2)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_seed(ports: tuple[int, int], seed: int) -> None:
    pair = Pair(ports, seed)
    try:
        pair.check(-1, [b"FLUSHALL"])
        gen = Generator(seed, int(time.time() * 1000))
        for index in range(COMMANDS_PER_SEED):
            pair.check(index, gen.next())
        pair.check(COMMANDS_PER_SEED, [b"DEBUG", b"DIGEST"])
    finally:
        pair.close()


def test_generator_is_deterministic() -> None:
    a, b = Generator(5, 1), Generator(5, 1)
    assert [a.next() for _ in range(300)] == [b.next() for _ in range(300)]


def _events(conn: RespConnection) -> list[tuple[object, object]]:
    """The keyevent messages up to the ``set`` of the key "end"."""
    events = []
    while True:
        msg = conn.read()
        assert isinstance(msg[1], list)
        events.append((msg[1][2][1], msg[1][3][1]))
        if events[-1] == (b"__keyevent@0__:set", b"end"):
            return events


def test_restore_events(ports: tuple[int, int]) -> None:
    """``restore`` (and ``new``) for a restored key; ``del`` for a replaced key whose
    absolute TTL has passed; nothing for one that did not exist."""
    conns = [RespConnection(p) for p in ports]
    subs = [RespConnection(p) for p in ports]
    try:
        for conn, sub in zip(conns, subs, strict=True):
            conn.call(b"FLUSHALL")
            conn.call(b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA")
            sub.call(b"PSUBSCRIBE", b"__keyevent@0__:*")
            conn.call(b"RPUSH", b"l", b"a", b"b")
            payload = conn.call(b"DUMP", b"l")[1]
            assert isinstance(payload, bytes)
            for argv in (
                [b"RESTORE", b"n", b"0", payload],
                [b"RESTORE", b"n", b"0", payload, b"REPLACE"],
                [b"RESTORE", b"n", b"1", payload, b"REPLACE", b"ABSTTL"],
                [b"RESTORE", b"m", b"1", payload, b"ABSTTL"],
                [b"SET", b"end", b"1"],
            ):
                assert conn.call(*argv) == ("+", b"OK"), argv
        assert _events(subs[0]) == _events(subs[1])
    finally:
        for conn in conns:
            conn.call(b"CONFIG", b"SET", b"notify-keyspace-events", b"")
        for c in conns + subs:
            c.close()
