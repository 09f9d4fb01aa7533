"""Differential test of SORT, SORT_RO and LCS: seeded random command sequences against one
redis-server (the reference) and one ackdb, every reply compared exactly, and after each
SORT ... STORE the destination (TYPE, LRANGE) and the keyspace events compared.

Covers SORT over lists (repeated elements), sets and sorted sets, missing keys and other
types (WRONGTYPE); numeric weights from the elements, from string keys and hash fields
(``*`` and ``->`` patterns, missing ones), values strtod rejects; ALPHA; "nosort" BY
patterns (list and sorted-set order, ASC / DESC, LIMIT ranges past either end); GET ``#``,
key and hash-field patterns and patterns without ``*``; STORE (an empty result deletes);
SORT_RO refusing STORE; option errors. LCS over random strings with LEN, IDX,
MINMATCHLEN, WITHMATCHLEN and their errors, in RESP2 and RESP3.

Replies Redis leaves undefined are compared as multisets: a set sorted "nosort" without
STORE (hash order), and ALPHA BY whose weights tie (qsort's order); docs/compat.md lists them.

Replay one seed:  ACKDB_DIFF_SEED=4 python -m pytest tests/compat/test_differential_sort.py
"""

from __future__ import annotations

import random
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
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_DIFF", 150)
ELEMENTS = [
    b"1", b"2", b"3", b"10", b"-4", b"2.5", b"07", b" 5", b"1e2", b"0x1A", b"-0",
    b"abc", b"b", b"", b"inf", b"9007199254740993", b"5 ",
]  # fmt: skip
NUMERIC = [b"1", b"2", b"3", b"10", b"-4", b"2.5", b"07", b" 5", b"1e2", b"0x1A", b"-0", b""]
SORTED = [b"l1", b"l2", b"s1", b"z1", b"missing", b"str", b"h1"]
BY = [b"w_*", b"h_*->f", b"nosort", b"w_*->", b"k*x", b"#", b"h_*->g", b"w_\0*"]
GET = [b"#", b"w_*", b"h_*->f", b"nokey", b"h_*->", b"w_*x"]


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def element(self, numeric: bool) -> bytes:
        return self.rng.choice(NUMERIC if numeric else ELEMENTS)

    def fill(self) -> list[bytes]:
        r = self.rng
        numeric = r.random() < 0.7
        kind = r.random()
        els = [self.element(numeric) for _ in range(r.randrange(0, 8))]
        if kind < 0.3:
            return [b"RPUSH", r.choice([b"l1", b"l2"]), self.element(numeric), *els]
        if kind < 0.5:
            return [b"SADD", b"s1", self.element(numeric), *els]
        if kind < 0.65:
            pairs = [x for e in els for x in (b"%d" % r.randrange(-3, 4), e)]
            return [b"ZADD", b"z1", b"1", self.element(numeric), *pairs]
        if kind < 0.8:
            return [b"SET", b"w_" + self.element(True), self.element(r.random() < 0.9)]
        if kind < 0.9:
            e, v = self.element(True), self.element(r.random() < 0.9)
            return [b"HSET", b"h_" + e, r.choice([b"f", b"f", b"g"]), v]
        return [b"DEL", r.choice([b"l1", b"l2", b"s1", b"z1", b"w_1", b"h_2", b"dst"])]

    def sort(self) -> list[bytes]:
        r = self.rng
        ro = r.random() < 0.25
        argv = [b"SORT_RO" if ro else b"SORT", r.choice(SORTED)]
        for _ in range(r.choice([0, 1, 1, 2, 3, 4])):
            opt = r.random()
            if opt < 0.2:
                argv.append(r.choice([b"ASC", b"DESC", b"desc"]))
            elif opt < 0.35:
                argv.append(b"ALPHA")
            elif opt < 0.5:
                argv += [b"LIMIT", b"%d" % r.randrange(-2, 6), b"%d" % r.randrange(-2, 6)]
            elif opt < 0.65:
                argv += [b"BY", r.choice(BY)]
            elif opt < 0.85:
                argv += [b"GET", r.choice(GET)]
            elif opt < 0.97:
                argv += [b"STORE", r.choice([b"dst", b"l2"])]
            else:
                argv += r.choice([[b"LIMIT", b"x", b"1"], [b"BY"], [b"nope"], [b"LIMIT", b"1"]])
        return argv

    def lcs(self) -> list[bytes]:
        r = self.rng
        if r.random() < 0.3:
            key = r.choice([b"a", b"b"])
            n = r.choice([0, 1, 5, 20, 60])
            return [b"SET", key, bytes(r.choice(b"ACGT") for _ in range(n))]
        argv = [b"LCS", r.choice([b"a", b"b", b"a", b"missing", b"l1"]), r.choice([b"a", b"b"])]
        for _ in range(r.choice([0, 1, 2, 3])):
            argv += r.choice(
                [[b"LEN"], [b"IDX"], [b"WITHMATCHLEN"], [b"MINMATCHLEN", b"%d" % r.randrange(-1, 5)],
                 [b"MINMATCHLEN"], [b"MINMATCHLEN", b"z"], [b"bad"]]
            )  # fmt: skip
        return argv

    def next(self) -> list[bytes]:
        kind = self.rng.random()
        if kind < 0.4:
            return self.fill()
        if kind < 0.85:
            return self.sort()
        return self.lcs()


def _undefined_order(argv: list[bytes]) -> bool:
    """Does Redis leave the reply's order undefined? A set sorted "nosort" without STORE
    comes in hash order; ALPHA with a BY pattern orders tied weights by qsort's whim."""
    words = [a.lower() for a in argv]
    by = [argv[i + 1] for i, w in enumerate(words[:-1]) if w == b"by" and i >= 2]
    if not by:
        return False
    if any(b"*" not in b.split(b"\0")[0] for b in by):  # "nosort", for good
        return argv[1] == b"s1" and b"store" not in words
    return b"alpha" in words


def _limited(argv: list[bytes]) -> bool:
    return any(a.lower() == b"limit" for a in argv[2:])


def _multiset(reply: Reply) -> Reply:
    if reply[0] == "*" and isinstance(reply[1], list):
        return ("*", sorted(reply[1], key=repr))
    return reply


class Pair(harness.Pair):
    module = "tests/compat/test_differential_sort.py"
    shown = harness.history_shown("ACKDB_DIFF", 12)

    def check(self, index: int, argv: list[bytes]) -> None:
        text = " ".join(repr(a)[2:-1] for a in argv[:12]) + (" ..." if len(argv) > 12 else "")
        self.note(index, text)
        ref, sut = self.call(argv)
        if argv[0] in (b"SORT", b"SORT_RO") and _undefined_order(argv):
            if _limited(argv) or b"STORE" in argv:
                # Which elements fall in the range is undefined too; only the shape counts.
                ref, sut = (ref[0], None), (sut[0], None)
            ref, sut = _multiset(ref), _multiset(sut)
        if ref != sut:
            self.fail(index, text, ref, sut)
        if argv[0] == b"SORT" and b"STORE" in argv and _undefined_order(argv):
            self.call([b"DEL", b"dst", b"l2"])  # their contents differ: start again
        elif argv[0] == b"SORT" and b"STORE" in argv:
            for probe in ([b"TYPE", b"dst"], [b"LRANGE", b"dst", b"0", b"-1"]):
                ref, sut = self.call(probe)
                if ref != sut:
                    self.fail(index, f"({probe[0]!r} after) {text}", ref, sut)


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("differential-sort")) as pair:
        yield pair


@pytest.mark.timeout(harness.SEED_TIMEOUT_S * 2)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_seed(ports: tuple[int, int], seed: int) -> None:
    pair = Pair(ports, seed)
    try:
        pair.check(-1, [b"FLUSHALL"])
        if seed % 3 == 2:
            pair.protocol = 3
            pair.ref.call(b"HELLO", b"3")  # the server's name and version differ
            pair.sut.call(b"HELLO", b"3")
        pair.check(-1, [b"SET", b"str", b"x"])
        pair.check(-1, [b"HSET", b"h1", b"f", b"1"])
        gen = Generator(seed)
        for index in range(COMMANDS_PER_SEED):
            pair.check(index, gen.next())
        pair.check(COMMANDS_PER_SEED, [b"DEBUG", b"DIGEST"])
    finally:
        pair.close()


def test_sort_events_and_propagation(ports: tuple[int, int]) -> None:
    """SORT ... STORE sends ``sortstore`` (or ``del`` for an empty result) and is counted
    as a change (the keyspace events and the dirty counter that drives propagation)."""
    with RespConnection(ports[0]) as ref, RespConnection(ports[1]) as sut:
        for conn in (ref, sut):
            conn.call(b"FLUSHALL")
            conn.call(b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA")
        subs = [RespConnection(ports[0]), RespConnection(ports[1])]
        try:
            for s in subs:
                s.call(b"PSUBSCRIBE", b"__keyevent@0__:*")
            script = [
                [b"RPUSH", b"l", b"3", b"1", b"2"],
                [b"SORT", b"l", b"STORE", b"d"],
                [b"SORT", b"missing", b"STORE", b"d"],
                [b"SORT", b"missing", b"STORE", b"d"],
                [b"SET", b"end", b"1"],
            ]
            for step in script:
                assert ref.call(*step) == sut.call(*step), step
            seen = []
            for s in subs:
                events = []
                while True:
                    msg = s.read()
                    assert isinstance(msg[1], list)
                    events.append((msg[1][2][1], msg[1][3][1]))
                    if events[-1] == (b"__keyevent@0__:set", b"end"):
                        break
                seen.append(events)
            assert seen[0] == seen[1]
            assert (b"__keyevent@0__:sortstore", b"d") in seen[1]
        finally:
            for s in subs:
                s.close()
            for conn in (ref, sut):
                conn.call(b"CONFIG", b"SET", b"notify-keyspace-events", b"")


def test_generator_is_deterministic() -> None:
    a, b = Generator(5), Generator(5)
    assert [a.next() for _ in range(300)] == [b.next() for _ in range(300)]
