"""Differential test of the list family: seeded random list commands against one
redis-server (the reference) and one ackdb, every reply compared by TYPE and value.

Covers LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP / RPOP with and without count, LRANGE, LINDEX,
LSET, LINSERT, LREM, LTRIM, LLEN, LPOS (RANK, COUNT, MAXLEN), LMOVE, RPOPLPUSH, LMPOP, with
bad integers, bad options, wrong arity, WRONGTYPE against a string and a hash, lists
emptied and deleted, COPY / RENAME / EXPIRE of lists, MULTI/EXEC, TYPE, OBJECT ENCODING
and DEBUG DIGEST-VALUE. One seed in three runs over RESP3 (``HELLO 3``); one in four sets
``list-max-listpack-size`` to a small count on both servers first. At the end of each seed
the whole dataset is compared with ``DEBUG DIGEST`` and every key by TYPE, contents and
``DEBUG DIGEST-VALUE``. WATCH invalidation by each list command is compared too.

Accepted differences (the reference is redis-server 7.0; ackdb follows Redis 7.2):
- OBJECT ENCODING of a list: 7.0 always answers ``quicklist``; 7.2 (and ackdb) answer
  ``listpack`` for small lists. ackdb's answer must be what ``list_encoding`` gives the
  reference's contents (``Pair.check``).
- LPOS ... RANK -9223372036854775808: 7.0 overflows and treats it as -1, 7.2 answers an
  out-of-range error. The generator does not send it (a unit test covers the 7.2 reply).

Replay one seed (prints every command before the failing one):
    ACKDB_LIST_DIFF_SEED=3 python -m pytest tests/compat/test_differential_lists.py -k seed
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import diff_harness as harness
import pytest

from ackdb.commands.lists import list_encoding
from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SEEDS = harness.seeds("ACKDB_LIST_DIFF", 24)
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_LIST_DIFF", 600)

LIST_KEYS = [b"l1", b"l2", b"{t}l3"]
STRING_KEY = b"s"
HASH_KEY = b"h"
KEYS = LIST_KEYS + [STRING_KEY, HASH_KEY, b"missing"]
ELEMENTS = [
    b"a", b"b", b"c", b"a", b"", b"0", b"1", b"-5", b"127", b"128", b"-4097", b"40000",
    b"9223372036854775807", b"9223372036854775808", b"007", b"-0", b"x" * 70, b"A",
]  # fmt: skip
BIG_ELEMENT = b"y" * 3000  # three of them push a list past the 8 KiB listpack limit
BAD_INTS = [b"abc", b"1.5", b"", b" 1", b"9223372036854775808", b"-9223372036854775809"]
INT_EDGES = [b"9223372036854775807", b"-9223372036854775808", b"-9223372036854775807"]
ENDS = [b"LEFT", b"RIGHT", b"left", b"Right"]
DEFAULT_FILL = -2  # list-max-listpack-size


@dataclass(slots=True)
class Op:
    argv: list[bytes]
    mode: str = "exact"  # exact | encoding | hello

    def text(self) -> str:
        return " ".join(repr(a.decode("utf-8", "replace"))[1:-1] or "''" for a in self.argv)


class Generator:
    """Random list commands for one seed; never looks at a reply."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.in_multi = False
        self.table = [(w, f) for f, w in OPS.items()]
        self.total = sum(w for w, _ in self.table)

    def key(self) -> bytes:
        r = self.rng.random()
        return self.rng.choice(LIST_KEYS) if r < 0.8 else self.rng.choice(KEYS)

    def element(self) -> bytes:
        if self.rng.random() < 0.03:
            return BIG_ELEMENT
        return self.rng.choice(ELEMENTS)

    def elements(self, hi: int = 5) -> list[bytes]:
        return [self.element() for _ in range(self.rng.randint(1, hi))]

    def index(self) -> bytes:
        r = self.rng.random()
        if r < 0.05:
            return self.rng.choice(BAD_INTS)
        if r < 0.10:
            return self.rng.choice(INT_EDGES)
        return b"%d" % self.rng.randint(-12, 12)

    def count(self) -> bytes:
        r = self.rng.random()
        if r < 0.08:
            return self.rng.choice(BAD_INTS + [b"-1", b"-3"])
        if r < 0.12:
            return b"9223372036854775807"
        return b"%d" % self.rng.randint(0, 6)

    def next(self) -> Op:
        if self.in_multi and self.rng.random() < 0.3:
            self.in_multi = False
            return Op([b"EXEC"])
        r = self.rng.random() * self.total
        for w, f in self.table:
            r -= w
            if r < 0:
                op = f(self)
                break
        else:  # pragma: no cover - float rounding
            op = self.table[-1][1](self)
        if self.in_multi and op.mode == "encoding":
            return Op([b"LLEN", op.argv[-1]])
        if op.argv == [b"MULTI"]:
            if self.in_multi:
                return Op([b"PING"])
            self.in_multi = True
        return op

    def finish(self) -> list[Op]:
        return [Op([b"EXEC"])] if self.in_multi else []


def op_push(g: Generator) -> Op:
    name = g.rng.choice([b"LPUSH", b"RPUSH", b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX"])
    return Op([name, g.key(), *g.elements()])


def op_pop(g: Generator) -> Op:
    name = g.rng.choice([b"LPOP", b"RPOP"])
    r = g.rng.random()
    if r < 0.5:
        return Op([name, g.key()])
    if r < 0.95:
        return Op([name, g.key(), g.count()])
    return Op([name, g.key(), b"1", b"2"])


def op_lrange(g: Generator) -> Op:
    return Op([b"LRANGE", g.key(), g.index(), g.index()])


def op_lindex(g: Generator) -> Op:
    return Op([b"LINDEX", g.key(), g.index()])


def op_lset(g: Generator) -> Op:
    return Op([b"LSET", g.key(), g.index(), g.element()])


def op_linsert(g: Generator) -> Op:
    side = g.rng.choice([b"BEFORE", b"AFTER", b"after", b"Before", b"middle"])
    return Op([b"LINSERT", g.key(), side, g.element(), g.element()])


def op_lrem(g: Generator) -> Op:
    r = g.rng.random()
    count = g.rng.choice(BAD_INTS) if r < 0.05 else b"%d" % g.rng.randint(-3, 3)
    return Op([b"LREM", g.key(), count, g.element()])


def op_ltrim(g: Generator) -> Op:
    return Op([b"LTRIM", g.key(), g.index(), g.index()])


def op_llen(g: Generator) -> Op:
    return Op([b"LLEN", g.key()])


def op_lpos(g: Generator) -> Op:
    argv = [b"LPOS", g.key(), g.element()]
    for _ in range(g.rng.randint(0, 3)):
        opt = g.rng.choice([b"RANK", b"COUNT", b"MAXLEN", b"rank", b"count", b"BOGUS"])
        if opt.upper() == b"RANK":
            r = g.rng.random()
            if r < 0.05:
                val = g.rng.choice(BAD_INTS[:4] + [b"-9223372036854775807"])
            else:
                val = b"%d" % g.rng.choice([-3, -2, -1, 0, 1, 1, 2, 3])
        elif opt == b"BOGUS":
            val = b"1"
        else:
            val = g.count()
        argv += [opt, val]
    if g.rng.random() < 0.05:
        argv.append(b"RANK")  # option without its value
    return Op(argv)


def op_lmove(g: Generator) -> Op:
    r = g.rng.random()
    if r < 0.3:
        return Op([b"RPOPLPUSH", g.key(), g.key()])
    ends = [g.rng.choice(ENDS) for _ in range(2)]
    if r < 0.34:
        ends[g.rng.randrange(2)] = b"UP"
    return Op([b"LMOVE", g.key(), g.key(), *ends])


def op_lmpop(g: Generator) -> Op:
    keys = [g.key() for _ in range(g.rng.randint(1, 3))]
    r = g.rng.random()
    numkeys = b"%d" % len(keys)
    if r < 0.04:
        numkeys = g.rng.choice([b"0", b"-1", b"x", b"%d" % (len(keys) + 2)])
    argv = [b"LMPOP", numkeys, *keys, g.rng.choice(ENDS + [b"UP"] if r < 0.08 else ENDS)]
    r = g.rng.random()
    if r < 0.5:
        argv += [b"COUNT", g.rng.choice([b"1", b"2", b"5", b"0", b"-1", b"x", b"100"])]
    elif r < 0.55:
        argv += g.rng.choice([[b"COUNT"], [b"COUNT", b"1", b"COUNT", b"2"], [b"FOO"]])
    return Op(argv)


def op_other_type(g: Generator) -> Op:
    """Turn a list key into a string or hash (WRONGTYPE afterwards), or delete it."""
    key = g.rng.choice(LIST_KEYS)
    if g.rng.random() < 0.6:
        return Op([b"DEL", key])
    return g.rng.choice(
        [
            Op([b"SET", key, b"v"]),
            Op([b"HSET", key, b"f", b"v"]),
            Op([b"GET", key]),
            Op([b"HGET", key, b"f"]),
        ]
    )


def op_keyspace(g: Generator) -> Op:
    a, b = g.rng.choice(LIST_KEYS), g.rng.choice(LIST_KEYS)
    return g.rng.choice(
        [
            Op([b"COPY", a, b, b"REPLACE"]),
            Op([b"COPY", a, b]),
            Op([b"RENAME", a, b]),
            Op([b"EXPIRE", a, b"100000"]),
            Op([b"PERSIST", a]),
            Op([b"TYPE", g.key()]),
            Op([b"EXISTS", a, b]),
            Op([b"DEBUG", b"DIGEST-VALUE", a, b]),
            Op([b"OBJECT", b"ENCODING", g.key()], "encoding"),
        ]
    )


def op_arity(g: Generator) -> Op:
    name = g.rng.choice([b"LPUSH", b"LRANGE", b"LINDEX", b"LSET", b"LINSERT", b"LREM",
                         b"LTRIM", b"LLEN", b"LPOS", b"LMOVE", b"RPOPLPUSH", b"LMPOP",
                         b"LPOP", b"RPUSHX"])  # fmt: skip
    return Op([name, *([g.key()] if g.rng.random() < 0.5 else [])])


def op_multi(g: Generator) -> Op:
    return Op([b"MULTI"])


OPS = {
    op_push: 30,
    op_pop: 12,
    op_lrange: 10,
    op_lindex: 5,
    op_lset: 5,
    op_linsert: 5,
    op_lrem: 6,
    op_ltrim: 4,
    op_llen: 3,
    op_lpos: 8,
    op_lmove: 8,
    op_lmpop: 6,
    op_other_type: 3,
    op_keyspace: 6,
    op_arity: 1,
    op_multi: 2,
}


# -- servers and comparison ------------------------------------------------------------


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    # Always ackdb: this test models ackdb's list encodings (no redis-on-both-sides mode).
    with server_pair(tmp_path_factory.mktemp("differential-lists"), check_target=False) as pair:
        yield pair


class Pair(harness.Pair):
    module = "tests/compat/test_differential_lists.py"
    env = "ACKDB_LIST_DIFF"
    shown = harness.history_shown("ACKDB_LIST_DIFF", 15)

    def __init__(self, ports: tuple[int, int], seed: int) -> None:
        super().__init__(ports, seed)
        self.fill = DEFAULT_FILL

    def check(self, index: int, op: Op) -> None:
        self.note(index, op.text())
        ref, sut = self.call(op.argv)
        if op.mode == "hello":
            ok = ref[0] == sut[0]
        elif op.mode == "encoding" and ref == ("$", b"quicklist"):
            ok = sut == ("$", self.expected_encoding(op.argv[-1]))
        else:
            ok = ref == sut
        if not ok:
            self.fail(index, op.text(), ref, sut)

    def expected_encoding(self, key: bytes) -> bytes:
        """What Redis 7.2 gives the reference's list written afresh (module docstring)."""
        items = self.ref.call(b"LRANGE", key, b"0", b"-1")[1]
        assert isinstance(items, list)
        value = deque(item[1] for item in items)  # type: ignore[index]
        return list_encoding(value, {"list-max-listpack-size": self.fill})


def compare_datasets(pair: Pair, index: int) -> None:
    pair.check(index, Op([b"DEBUG", b"DIGEST"]))
    ref_keys, _ = pair.call([b"KEYS", b"*"])
    assert ref_keys[0] == "*" and isinstance(ref_keys[1], list), ref_keys
    keys: list[bytes] = sorted(k[1] for k in ref_keys[1])  # type: ignore[misc]
    pair.check(index, Op([b"DBSIZE"]))
    for key in keys:
        pair.check(index, Op([b"TYPE", key]))
        pair.check(index, Op([b"DEBUG", b"DIGEST-VALUE", key]))
        if pair.ref.call(b"TYPE", key) == ("+", b"list"):
            pair.check(index, Op([b"LRANGE", key, b"0", b"-1"]))
            pair.check(index, Op([b"OBJECT", b"ENCODING", key], "encoding"))


@pytest.mark.timeout(harness.SEED_TIMEOUT_S)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_seed(ports: tuple[int, int], seed: int) -> None:
    pair = Pair(ports, seed)
    try:
        pair.check(-1, Op([b"FLUSHALL"]))
        if seed % 3 == 2:
            pair.protocol = 3
            pair.check(-1, Op([b"HELLO", b"3"], "hello"))
        pair.fill = 4 if seed % 4 == 3 else DEFAULT_FILL
        pair.check(-1, Op([b"CONFIG", b"SET", b"list-max-listpack-size", b"%d" % pair.fill]))
        pair.check(-1, Op([b"SET", STRING_KEY, b"v"]))
        pair.check(-1, Op([b"HSET", HASH_KEY, b"f", b"v"]))
        gen = Generator(seed)
        for index in range(COMMANDS_PER_SEED):
            pair.check(index, gen.next())
        for index, op in enumerate(gen.finish(), start=COMMANDS_PER_SEED):
            pair.check(index, op)
        compare_datasets(pair, COMMANDS_PER_SEED + 10)
    finally:
        try:
            pair.call([b"CONFIG", b"SET", b"list-max-listpack-size", b"%d" % DEFAULT_FILL])
        finally:
            pair.close()


def test_generator_is_deterministic() -> None:
    a, b = Generator(5), Generator(5)
    assert [a.next().argv for _ in range(500)] == [b.next().argv for _ in range(500)]


# Does a list command on a WATCHed key make EXEC fail? Keys before each case:
# l = [a, b, c], s = "v" (Redis "Transactions": a watched key modified fails the EXEC).
WATCH_CASES = [
    ("l", "LPUSH l x"), ("l", "RPUSH l x"), ("l", "LPUSHX l x"), ("m", "LPUSHX m x"),
    ("m", "RPUSH m x"), ("l", "LPOP l"), ("l", "RPOP l 2"), ("l", "LPOP l 0"),
    ("l", "LPOP l 5"), ("m", "LPOP m"), ("l", "LSET l 0 a"), ("l", "LSET l 9 a"),
    ("l", "LINSERT l BEFORE b x"), ("l", "LINSERT l BEFORE zz x"), ("l", "LREM l 0 a"),
    ("l", "LREM l 0 zz"), ("l", "LTRIM l 0 -1"), ("l", "LTRIM l 1 0"), ("l", "LTRIM l 0 0"),
    ("m", "LTRIM m 0 1"), ("l", "LMOVE l m LEFT RIGHT"), ("m", "LMOVE l m LEFT RIGHT"),
    ("l", "LMOVE l l LEFT RIGHT"), ("m", "LMOVE m l LEFT RIGHT"), ("l", "RPOPLPUSH l l"),
    ("l", "LMOVE l s LEFT LEFT"), ("l", "LMPOP 2 m l LEFT"), ("m", "LMPOP 2 m l LEFT COUNT 3"),
    ("l", "LRANGE l 0 -1"), ("l", "LINDEX l 0"), ("l", "LLEN l"), ("l", "LPOS l a"),
]  # fmt: skip


@pytest.mark.parametrize(("watched", "command"), WATCH_CASES, ids=[c for _, c in WATCH_CASES])
def test_watch_invalidation_matches_redis(
    ports: tuple[int, int], watched: str, command: str
) -> None:
    setup = [[b"RPUSH", b"l", b"a", b"b", b"c"], [b"SET", b"s", b"v"]]
    argv = [a.encode() for a in command.split()]
    harness.check_watch_case(ports, setup, watched.encode(), argv)
