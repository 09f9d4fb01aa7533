"""Differential test of the bitmap family: seeded random command sequences against one
redis-server (the reference) and one ackdb, every reply compared exactly.

Covers SETBIT, GETBIT, BITCOUNT and BITPOS (BYTE / BIT ranges, negative and out-of-range
indexes), BITOP (AND, OR, XOR, NOT, missing and shorter sources, empty results), BITFIELD
(every type, ``#`` offsets, GET / SET / INCRBY, OVERFLOW WRAP / SAT / FAIL) and
BITFIELD_RO, bad offsets, bad types, wrong types; each seed ends comparing every key's value
and the DEBUG DIGEST.

Accepted difference (docs/compat.md): Redis 7.2 checks BITCOUNT's and BITPOS's arguments
before looking the key up (7.0, the reference, answers 0 / -1 for a missing key whatever
the arguments), so bad arguments are only sent to existing keys.

Replay one seed:  ACKDB_DIFF_SEED=4 python -m pytest tests/compat/test_differential_bitmaps.py
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import diff_harness as harness
import pytest
from resp_wire import Reply

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SEEDS = harness.seeds("ACKDB_DIFF", 30)
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_DIFF", 300)
KEYS = [b"b1", b"b2", b"b3", b"dst"]
ALL_KEYS = [*KEYS, b"list", b"missing"]
OFFSETS = [b"0", b"1", b"7", b"8", b"15", b"100", b"1000", b"-1", b"x", b"4294967296", b"1.5"]
INDEXES = [b"0", b"1", b"-1", b"-2", b"2", b"5", b"-100", b"100", b"3", b"-5", b"x"]
TYPES = [
    *(b"i%d" % n for n in (1, 2, 5, 8, 13, 16, 31, 32, 63, 64)),
    *(b"u%d" % n for n in (1, 3, 8, 16, 32, 62, 63)),
    b"u64", b"i65", b"i0", b"x8", b"I8", b"",
]  # fmt: skip
FIELD_VALUES = [
    b"0", b"1", b"-1", b"127", b"128", b"-129", b"255", b"256", b"65535", b"-32768",
    b"9223372036854775807", b"-9223372036854775808", b"4294967296", b"x", b"100",
]  # fmt: skip


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def key(self) -> bytes:
        return self.rng.choice(ALL_KEYS if self.rng.random() < 0.1 else KEYS)

    def next(self) -> list[bytes]:
        r = self.rng
        kind = r.random()
        if kind < 0.3:
            off = r.choice(OFFSETS) if r.random() < 0.2 else b"%d" % r.randrange(0, 300)
            bit = r.choice([b"0", b"1", b"1", b"2", b"x"]) if r.random() < 0.1 else b"1"
            return [b"SETBIT", self.key(), off, r.choice([bit, b"0"])]
        if kind < 0.4:
            return [b"GETBIT", self.key(), r.choice(OFFSETS + [b"%d" % r.randrange(300)])]
        if kind < 0.55:
            return self.ranged(b"BITCOUNT", [])
        if kind < 0.7:
            return self.ranged(b"BITPOS", [r.choice([b"0", b"1", b"1", b"0", b"2"])])
        if kind < 0.8:
            op = r.choice([b"AND", b"OR", b"XOR", b"NOT", b"not", b"nope"])
            n = 1 if op.lower() == b"not" and r.random() < 0.9 else r.randrange(1, 4)
            return [b"BITOP", op, r.choice(KEYS[2:]), *(self.key() for _ in range(n))]
        if kind < 0.95:
            return self.bitfield(r.random() < 0.2)
        return [b"SET", r.choice(KEYS), r.choice([b"", b"abc", b"\xff\x00\x0f", b"12"])]

    def ranged(self, name: bytes, extra: list[bytes]) -> list[bytes]:
        r = self.rng
        key = r.choice(KEYS[:2])  # see the accepted difference: never a missing key
        argv = [name, key, *extra]
        n = r.randrange(0, 4)
        if n >= 1:
            argv.append(r.choice(INDEXES))
        if n >= 2:
            argv.append(r.choice(INDEXES))
        if n >= 3:
            argv.append(r.choice([b"BIT", b"BYTE", b"bit", b"bad"]))
        return argv

    def bitfield(self, read_only: bool) -> list[bytes]:
        r = self.rng
        argv = [b"BITFIELD_RO" if read_only else b"BITFIELD", self.key()]
        for _ in range(r.randrange(0, 5)):
            sub = r.choice([b"GET", b"SET", b"INCRBY", b"OVERFLOW"] if not read_only else [b"GET"])
            if sub == b"OVERFLOW":
                argv += [sub, r.choice([b"WRAP", b"SAT", b"FAIL", b"fail", b"bad"])]
                continue
            typ = r.choice(TYPES[:17]) if r.random() < 0.95 else r.choice(TYPES)
            off = b"%d" % r.randrange(0, 100)
            if r.random() < 0.3:
                off = b"#%d" % r.randrange(0, 10)
            elif r.random() < 0.05:
                off = r.choice(OFFSETS)
            argv += [sub, typ, off]
            if sub != b"GET":
                argv.append(r.choice(FIELD_VALUES))
        if r.random() < 0.03:
            argv.append(b"GET")  # a syntax error
        return argv


WRITES = {b"SETBIT", b"BITOP", b"BITFIELD"}


class Pair(harness.Pair):
    module = "tests/compat/test_differential_bitmaps.py"
    shown = harness.history_shown("ACKDB_DIFF", 12)

    def check(self, index: int, argv: list[bytes]) -> None:
        text = " ".join(repr(a)[2:-1] for a in argv)
        self.note(index, text)
        ref, sut = self.call(argv)
        if ref != sut:
            self.fail(index, text, ref, sut)
        if argv[0] in WRITES:  # the values too, so a failure shows the write that diverged
            ref, sut = self.call([b"MGET", *KEYS])
            if ref != sut:
                self.fail(index, f"(values after) {text}", ref, sut)


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("differential-bitmaps")) as pair:
        yield pair


def _values(pair: Pair) -> tuple[Reply, Reply]:
    return pair.call([b"MGET", *KEYS])


@pytest.mark.timeout(harness.SEED_TIMEOUT_S)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_seed(ports: tuple[int, int], seed: int) -> None:
    pair = Pair(ports, seed)
    try:
        pair.check(-1, [b"FLUSHALL"])
        pair.check(-1, [b"RPUSH", b"list", b"a"])
        pair.check(-1, [b"MSET", b"b1", b"\x05", b"b2", b"ab"])  # never deleted
        if seed % 3 == 2:
            pair.protocol = 3
            pair.call([b"HELLO", b"3"])
        gen = Generator(seed)
        for index in range(COMMANDS_PER_SEED):
            pair.check(index, gen.next())
        pair.check(COMMANDS_PER_SEED, [b"MGET", *KEYS])
        pair.check(COMMANDS_PER_SEED + 1, [b"DEBUG", b"DIGEST"])
    finally:
        pair.close()


def test_generator_is_deterministic() -> None:
    a, b = Generator(5), Generator(5)
    assert [a.next() for _ in range(300)] == [b.next() for _ in range(300)]
