"""Differential test of the HyperLogLog family: seeded random command sequences against one
redis-server (the reference) and one ackdb, every reply compared exactly, and after every
write the raw values (GET) compared byte for byte — the header, the cached cardinality,
the sparse opcodes and the dense registers must be Redis's.

Covers PFADD (new keys, no elements, many elements, the promotion to dense at
hll-sparse-max-bytes — each seed sets its own limit — and at a register over 32), PFCOUNT
of one key (the cache) and many, PFMERGE (sparse and dense sources, missing keys, the
destination among the sources), PFDEBUG (GETREG, DECODE, ENCODING, TODENSE, errors),
values moved with GET / SET between the servers (the reference's value is SET into ackdb
and read there), corrupted values (INVALIDOBJ), plain strings (WRONGTYPE ... HyperLogLog),
and other types.

Replay one seed:  ACKDB_DIFF_SEED=4 python -m pytest tests/compat/test_differential_hll.py
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

SEEDS = harness.seeds("ACKDB_DIFF", 20)
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_DIFF", 150)
KEYS = [b"h1", b"h2", b"h3", b"hd"]
OTHER = [b"str", b"list", b"missing", b"bad"]
WRITES = {b"PFADD", b"PFMERGE", b"PFCOUNT", b"PFDEBUG", b"SET", b"SETRANGE"}
LIMITS = [b"3000", b"200", b"50", b"0", b"12000"]


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.serial = 0

    def key(self) -> bytes:
        return self.rng.choice(OTHER if self.rng.random() < 0.08 else KEYS)

    def elements(self) -> list[bytes]:
        r = self.rng
        n = r.choice([0, 1, 1, 2, 5, 20, 100, 400])
        out = []
        for _ in range(n):
            self.serial += 1
            out.append(r.choice([b"e%d" % self.serial, b"%d" % r.randrange(1000), b""]))
        return out

    def next(self) -> list[bytes]:
        r = self.rng
        kind = r.random()
        if kind < 0.45:
            return [b"PFADD", self.key(), *self.elements()]
        if kind < 0.65:
            return [b"PFCOUNT", *(self.key() for _ in range(r.choice([1, 1, 1, 2, 3])))]
        if kind < 0.78:
            return [b"PFMERGE", self.key(), *(self.key() for _ in range(r.randrange(0, 3)))]
        if kind < 0.9:
            sub = r.choice([b"ENCODING", b"DECODE", b"TODENSE", b"GETREG", b"nope", b"encoding"])
            argv = [b"PFDEBUG", sub, self.key()]
            return argv + [b"x"] if r.random() < 0.05 else argv
        if kind < 0.95:
            # Corrupt a value: a byte of its registers or header overwritten.
            at = r.choice([3, 4, 15, 16, 17, 18, 20, 40, 100])
            return [b"SETRANGE", r.choice(KEYS), b"%d" % at, bytes([r.randrange(256)])]
        return [b"SET", b"bad", r.choice([b"HYLL", b"HYLL\x02" + bytes(20), b"x" * 30])]


class Pair(harness.Pair):
    module = "tests/compat/test_differential_hll.py"
    shown = harness.history_shown("ACKDB_DIFF", 12)

    def check(self, index: int, argv: list[bytes]) -> None:
        text = " ".join(repr(a)[2:-1] for a in argv[:8]) + (" ..." if len(argv) > 8 else "")
        self.note(index, text)
        ref, sut = self.call(argv)
        if ref != sut:
            self.fail(index, text, ref, sut)
        if argv[0] in WRITES:
            ref, sut = self.call([b"MGET", *KEYS])
            if ref != sut:
                self.fail(index, f"(values after) {text}", *_first_difference(ref, sut))

    def move_values(self, index: int) -> None:
        """SET the reference's values into ackdb: they must read and count the same."""
        reply = self.ref.call(b"MGET", *KEYS)
        assert reply[0] == "*" and isinstance(reply[1], list)
        for key, item in zip(KEYS, reply[1], strict=True):
            if item[0] == "$" and isinstance(item[1], bytes):
                self.sut.call(b"SET", key, item[1])
        self.check(index, [b"PFCOUNT", *KEYS])


def _first_difference(ref: Reply, sut: Reply) -> tuple[object, object]:
    """The first key whose value differs, with the bytes around the first difference."""
    if ref[0] != "*" or sut[0] != "*":
        return ref, sut
    assert isinstance(ref[1], list) and isinstance(sut[1], list)
    for key, a, b in zip(KEYS, ref[1], sut[1], strict=True):
        if a != b and isinstance(a[1], bytes) and isinstance(b[1], bytes):
            at = next((i for i, (x, y) in enumerate(zip(a[1], b[1], strict=False)) if x != y), None)
            if at is None:
                at = min(len(a[1]), len(b[1]))
            lo = max(at - 8, 0)
            return (key, len(a[1]), at, a[1][lo : at + 8]), (key, len(b[1]), at, b[1][lo : at + 8])
        if a != b:
            return (key, a), (key, b)
    return ref, sut


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("differential-hll")) as pair:
        yield pair


@pytest.mark.timeout(harness.SEED_TIMEOUT_S * 2)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_seed(ports: tuple[int, int], seed: int) -> None:
    pair = Pair(ports, seed)
    try:
        pair.check(-1, [b"FLUSHALL"])
        pair.check(-1, [b"RPUSH", b"list", b"a"])
        pair.check(-1, [b"SET", b"str", b"not an hll"])
        limit = LIMITS[seed % len(LIMITS)]
        pair.check(-1, [b"CONFIG", b"SET", b"hll-sparse-max-bytes", limit])
        gen = Generator(seed)
        for index in range(COMMANDS_PER_SEED):
            pair.check(index, gen.next())
            if index % 50 == 49:
                pair.move_values(index)
        pair.check(COMMANDS_PER_SEED, [b"DEBUG", b"DIGEST"])
    finally:
        pair.close()


def test_generator_is_deterministic() -> None:
    a, b = Generator(5), Generator(5)
    assert [a.next() for _ in range(300)] == [b.next() for _ in range(300)]
