"""Differential test of the set family: seeded random command sequences against one
redis-server (the reference) and one ackdb, every reply compared by TYPE and value.

Covers SADD, SREM, SISMEMBER, SMISMEMBER, SCARD, SMEMBERS, SMOVE, SINTER, SUNION, SDIFF and
their STORE forms, SINTERCARD, SPOP, SRANDMEMBER, SSCAN, OBJECT ENCODING, wrong types, wrong
arity and bad arguments, on small, integer-only and large sets. At the end of each seed the
dataset is compared with ``DEBUG DIGEST``, every key with ``DEBUG DIGEST-VALUE`` and its
sorted members. One seed in three runs over RESP3 (``HELLO 3``).

Comparison modes (``Op.mode``): ``exact``; ``sorted`` (unordered members: SMEMBERS, the
algebra, a whole-set SPOP); ``scan`` (the members of a whole SSCAN iteration);
``encoding`` (OBJECT ENCODING, see ``encoding_matches``); ``spop`` and ``srandmember``
(random results: only their shape, count and membership are compared; SPOP runs on a
copy of the key so both servers keep the same data).

Accepted differences (listed in the final report for docs/compat.md):
- OBJECT ENCODING: the reference is Redis 7.0, which has no listpack sets (7.2 does), and
  Redis never converts a set back (intset -> hashtable is sticky). ackdb answers the 7.2
  encoding of the current contents written afresh; accepted only when it is exactly that.
- Member order of unordered replies (compared sorted).

Replay one seed:  ACKDB_DIFF_SEED=4 python -m pytest tests/compat/test_differential_sets.py
Check the generator (both sides redis-server; must pass):
    ACKDB_DIFF_TARGET=redis python -m pytest tests/compat/test_differential_sets.py
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import diff_harness as harness
import pytest
from resp_wire import Reply

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SEEDS = harness.seeds("ACKDB_DIFF", 24)
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_DIFF", 250)

SET_KEYS = [b"s1", b"s2", b"s3", b"ints", b"big"]
ALL_KEYS = [*SET_KEYS, b"str", b"missing"]
SCRATCH = b"__spop_copy"  # SPOP runs on a copy of its key (see the module docstring)
MEMBERS = [
    *(b"%d" % i for i in range(-3, 12)),
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"01",
    b"+1",
    b"-0",
    b" 1",
    b"",
    *(bytes([ch]) for ch in b"abcdefgh"),
    b"member:long:" + b"x" * 60,  # over set-max-listpack-value (64)
]
BAD_INTS = [b"abc", b"1.5", b"", b" 1", b"9223372036854775808", b"-9223372036854775809"]
BAD_CURSORS = [b"abc", b"1.5", b" 1", b"1 ", b"18446744073709551616"]
PATTERNS = [b"*", b"a*", b"?", b"1*", b"*[0-9]", b"m*", b"-*", b"[a-c]"]

# Redis 7.2's fresh encoding of a set (what ackdb reports), at the default limits.
INTSET_ENTRIES, LISTPACK_ENTRIES, LISTPACK_VALUE_BYTES = 512, 128, 64
CANONICAL_INT = re.compile(rb"-?[1-9][0-9]{0,18}|0")


def is_int64(m: bytes) -> bool:
    return CANONICAL_INT.fullmatch(m) is not None and -(2**63) <= int(m) < 2**63


def fresh_encoding(members: list[bytes]) -> bytes:
    if len(members) <= INTSET_ENTRIES and all(is_int64(m) for m in members):
        return b"intset"
    if len(members) <= LISTPACK_ENTRIES and all(len(m) <= LISTPACK_VALUE_BYTES for m in members):
        return b"listpack"
    return b"hashtable"


@dataclass(slots=True)
class Op:
    argv: list[bytes]
    mode: str = "exact"

    def text(self) -> str:
        return " ".join(a.decode("utf-8", "backslashreplace")[:40] or "''" for a in self.argv)


def _b(x: object) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


class Generator:
    """Yields ``Op``s for one seed; never looks at a reply."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.table: list[tuple[int, Callable[[Generator], Op]]] = [
            (12, op_sadd),
            (4, op_sadd_many),
            (6, op_srem),
            (6, op_membership),
            (5, op_smembers),
            (4, op_smove),
            (8, op_algebra),
            (6, op_store),
            (4, op_sintercard),
            (6, op_spop),
            (5, op_srandmember),
            (3, op_sscan),
            (3, op_encoding),
            (2, op_generic),
            (3, op_bad),
        ]
        self.total = sum(w for w, _ in self.table)

    def key(self) -> bytes:
        return self.rng.choice(ALL_KEYS)

    def set_key(self) -> bytes:
        return self.rng.choice([*SET_KEYS, b"missing"])

    def keys(self, lo: int = 1, hi: int = 4) -> list[bytes]:
        return [self.key() if self.rng.random() < 0.15 else self.set_key() for _ in range(
            self.rng.randint(lo, hi)
        )]  # fmt: skip

    def member(self) -> bytes:
        return self.rng.choice(MEMBERS)

    def members(self, lo: int = 1, hi: int = 5) -> list[bytes]:
        return [self.member() for _ in range(self.rng.randint(lo, hi))]

    def next(self) -> Op:
        r = self.rng.randrange(self.total)
        for w, f in self.table:
            if r < w:
                return f(self)
            r -= w
        raise AssertionError("unreachable")


def _op(*args: object, mode: str = "exact") -> Op:
    return Op([_b(a) for a in args], mode)


def op_sadd(g: Generator) -> Op:
    key = g.key() if g.rng.random() < 0.1 else g.set_key()
    if key == b"ints":
        return _op(b"SADD", key, *(g.rng.randint(-50, 700) for _ in range(g.rng.randint(1, 4))))
    return _op(b"SADD", key, *g.members())


def op_sadd_many(g: Generator) -> Op:
    """Large sets: over 128 members or 512 integers (hashtable, SSCAN cursors)."""
    rng = g.rng
    if rng.random() < 0.5:
        start = rng.randint(-100, 400)
        return _op(b"SADD", b"ints", *range(start, start + rng.randint(50, 300)))
    n = rng.randint(60, 200)
    return _op(b"SADD", rng.choice([b"big", b"s3"]), *(f"m{rng.randint(0, 400)}" for _ in range(n)))


def op_srem(g: Generator) -> Op:
    key = g.set_key()
    if key in (b"ints", b"big") and g.rng.random() < 0.7:
        return _op(b"SREM", key, *(f"m{g.rng.randint(0, 400)}" for _ in range(20)),
                   *(g.rng.randint(-100, 700) for _ in range(20)))  # fmt: skip
    return _op(b"SREM", key, *g.members())


def op_membership(g: Generator) -> Op:
    key = g.key()
    r = g.rng.random()
    if r < 0.4:
        return _op(b"SISMEMBER", key, g.member())
    if r < 0.8:
        return _op(b"SMISMEMBER", key, *g.members())
    return _op(b"SCARD", key)


def op_smembers(g: Generator) -> Op:
    return _op(b"SMEMBERS", g.key(), mode="sorted")


def op_smove(g: Generator) -> Op:
    src = g.key() if g.rng.random() < 0.15 else g.set_key()
    dst = g.key() if g.rng.random() < 0.15 else g.set_key()
    return _op(b"SMOVE", src, dst, g.member())


def op_algebra(g: Generator) -> Op:
    name = g.rng.choice([b"SINTER", b"SUNION", b"SDIFF"])
    return _op(name, *g.keys(), mode="sorted")


def op_store(g: Generator) -> Op:
    name = g.rng.choice([b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"])
    dst = g.key() if g.rng.random() < 0.3 else g.rng.choice([b"dst", *SET_KEYS])
    return _op(name, dst, *g.keys())


def op_sintercard(g: Generator) -> Op:
    rng = g.rng
    keys = g.keys()
    numkeys: object = len(keys)
    if rng.random() < 0.1:
        numkeys = rng.choice([0, -1, len(keys) + 1, b"x", b"9223372036854775808"])
    opts: list[object] = []
    r = rng.random()
    if r < 0.4:
        opts = [b"LIMIT", rng.randint(0, 5)]
    elif r < 0.5:
        opts = rng.choice([[b"LIMIT"], [b"LIMIT", -1], [b"LIMIT", b"x"], [b"FOO", 1]])
    return _op(b"SINTERCARD", numkeys, *keys, *opts)


def op_spop(g: Generator) -> Op:
    rng = g.rng
    key = g.key()
    r = rng.random()
    if r < 0.3:
        return _op(b"SPOP", key, mode="spop")
    if r < 0.7:
        return _op(b"SPOP", key, rng.randint(0, 12), mode="spop")
    if r < 0.8:  # the whole set: deterministic, on the real key
        return _op(b"SPOP", key, 1000, mode="sorted")
    return _op(b"SPOP", key, *rng.choice([[-1], [b"x"], [1, 2], [0]]))


def op_srandmember(g: Generator) -> Op:
    rng = g.rng
    key = g.key()
    r = rng.random()
    if r < 0.2:
        return _op(b"SRANDMEMBER", key, mode="srandmember")
    if r < 0.9:
        return _op(b"SRANDMEMBER", key, rng.randint(-20, 20), mode="srandmember")
    return _op(b"SRANDMEMBER", key, *rng.choice([[b"x"], [1, 2], [b"-9223372036854775808"]]))


def op_sscan(g: Generator) -> Op:
    rng = g.rng
    key = g.key()
    opts: list[object] = []
    if rng.random() < 0.5:
        opts += [b"MATCH", rng.choice(PATTERNS)]
    if rng.random() < 0.5:
        opts += [b"COUNT", rng.randint(1, 50)]
    if rng.random() < 0.05:
        return _op(b"SSCAN", key, 0, *rng.choice([[b"COUNT", 0], [b"FOO", 1], [b"MATCH"]]))
    return _op(b"SSCAN", key, 0, *opts, mode="scan")


def op_encoding(g: Generator) -> Op:
    return _op(b"OBJECT", b"ENCODING", g.key(), mode="encoding")


def op_generic(g: Generator) -> Op:
    rng = g.rng
    r = rng.random()
    if r < 0.3:
        return _op(b"DEL", g.set_key())
    if r < 0.5:
        return _op(b"TYPE", g.key())
    if r < 0.7:
        return _op(b"EXPIRE", g.set_key(), 100_000)
    if r < 0.85:
        return _op(b"COPY", g.set_key(), g.set_key(), b"REPLACE")
    return _op(b"SET", b"str", g.member())


def op_bad(g: Generator) -> Op:
    rng = g.rng
    return rng.choice(
        [
            _op(b"SADD", g.key()),
            _op(b"SREM", g.key()),
            _op(b"SMOVE", g.key(), g.key()),
            _op(b"SISMEMBER", g.key()),
            _op(b"SCARD"),
            _op(b"SINTERCARD", 1),
            _op(b"SINTERSTORE", b"dst"),
            _op(b"SSCAN", g.key(), rng.choice(BAD_CURSORS)),
            _op(b"SPOP", g.key(), rng.choice(BAD_INTS)),
            _op(b"SRANDMEMBER", g.key(), rng.choice(BAD_INTS)),
        ]
    )


# -- the two servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("differential-sets")) as pair:
        yield pair


def _items(reply: Reply) -> list[bytes]:
    assert reply[0] in "*~" and isinstance(reply[1], list), reply
    return [item[1] for item in reply[1]]  # type: ignore[misc]


def _sorted(reply: Reply) -> object:
    kind, value = reply
    if kind in "*~" and isinstance(value, list):
        return kind, sorted(value)  # type: ignore[type-var]
    return reply


class Pair(harness.Pair):
    module = "tests/compat/test_differential_sets.py"
    shown = harness.history_shown("ACKDB_DIFF", 12)

    def check(self, index: int, op: Op) -> None:
        self.note(index, op.text())
        if op.mode == "scan":
            self._check_scan(index, op)
        elif op.mode == "spop":
            self._check_spop(index, op)
        else:
            ref, sut = self.call(op.argv)
            if not self._matches(op, ref, sut):
                self.fail(index, op.text(), ref, sut)

    def _matches(self, op: Op, ref: Reply, sut: Reply) -> bool:
        if ref == sut:
            return True
        if op.mode == "sorted":
            return _sorted(ref) == _sorted(sut)
        if op.mode == "encoding":
            return self._encoding_matches(op.argv[2], ref, sut)
        if op.mode == "srandmember":
            return self._srandmember_matches(op, ref, sut)
        return False

    def _encoding_matches(self, key: bytes, ref: Reply, sut: Reply) -> bool:
        """Accepted: ackdb's answer is Redis 7.2's encoding of the current members."""
        if ref[0] != "$" or sut[0] != "$" or self.ref.call(b"TYPE", key) != ("+", b"set"):
            return False
        return sut[1] == fresh_encoding(_items(self.ref.call(b"SMEMBERS", key)))

    def _srandmember_matches(self, op: Op, ref: Reply, sut: Reply) -> bool:
        if ref[0] != sut[0] or ref[0] not in "$*":
            return False
        current = set(_items(self.ref.call(b"SMEMBERS", op.argv[1])))
        if ref[0] == "$":
            return sut[1] in current
        picked = _items(sut)
        count = int(op.argv[2])
        if len(picked) != len(_items(ref)) or not set(picked) <= current:
            return False
        return count < 0 or len(set(picked)) == len(picked)

    def _check_spop(self, index: int, op: Op) -> None:
        """SPOP on a copy of the key on each server: shapes and counts must agree, the
        popped members must be distinct members of the key and gone from the copy."""
        key = op.argv[1]
        self.call([b"DEL", SCRATCH])
        self.call([b"COPY", key, SCRATCH])
        before = self.call([b"SMEMBERS", SCRATCH])
        ref, sut = self.call([b"SPOP", SCRATCH, *op.argv[2:]])
        text = op.text() + " (on a copy)"
        if ref[0] != sut[0] or ((ref[0] in "-_" or ref[1] is None) and ref != sut):
            self.fail(index, text, ref, sut)
        if ref[0] in "*~":
            if len(_items(ref)) != len(_items(sut)):
                self.fail(index, text, ref, sut)
        after = self.call([b"SMEMBERS", SCRATCH])
        for reply, was, now in zip((ref, sut), before, after, strict=True):
            if reply[0] not in "$*~" or reply[1] is None:
                continue
            popped = [reply[1]] if reply[0] == "$" else _items(reply)
            was_set = set(_items(was)) if was[0] in "*~" else set()
            now_set = set(_items(now)) if now[0] in "*~" else set()
            if len(set(popped)) != len(popped) or set(popped) | now_set != was_set:
                self.fail(index, text + " (popped + remaining != before)", ref, sut)
            if set(popped) & now_set:
                self.fail(index, text + " (popped still present)", ref, sut)
        exists = self.call([b"EXISTS", SCRATCH])
        if exists[0] != exists[1]:
            self.fail(index, text + " (emptied copy deleted?)", *exists)
        self.call([b"DEL", SCRATCH])

    def _check_scan(self, index: int, op: Op) -> None:
        seen: list[object] = []
        for conn in (self.ref, self.sut):
            pages = harness.scan_pages(conn, op.argv, 2)
            if isinstance(pages, list):
                seen.append(sorted(m for page in pages for m in _items(page)))
            else:
                seen.append(pages)
        if seen[0] != seen[1]:
            self.fail(index, op.text() + " (whole iteration)", seen[0], seen[1])


def compare_datasets(pair: Pair, index: int) -> None:
    pair.check(index, Op([b"DEBUG", b"DIGEST"]))
    pair.check(index, Op([b"KEYS", b"*"], "sorted"))
    ref_keys, _ = pair.call([b"KEYS", b"*"])
    keys = sorted(_items(ref_keys))
    if keys:
        pair.check(index, Op([b"DEBUG", b"DIGEST-VALUE", *keys]))
    for key in keys:
        pair.check(index, Op([b"TYPE", key]))
        pair.check(index, Op([b"SMEMBERS", key], "sorted"))
        pair.check(index, Op([b"OBJECT", b"ENCODING", key], "encoding"))


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
        for index in range(COMMANDS_PER_SEED):
            pair.check(index, gen.next())
        compare_datasets(pair, COMMANDS_PER_SEED)
    finally:
        pair.close()


def test_generator_is_deterministic() -> None:
    a, b = Generator(5), Generator(5)
    assert [a.next().argv for _ in range(500)] == [b.next().argv for _ in range(500)]


# Does a set command on a WATCHed key make EXEC fail? Keys before each case: s={a, b},
# t={a, t1}, str="x".
WATCH_CASES = [
    ("s", "SADD s new"), ("s", "SADD s a"), ("s", "SREM s a"), ("s", "SREM s zz"),
    ("s", "SPOP s"), ("s", "SPOP s 1"), ("s", "SPOP s 0"), ("s", "SPOP s 5"),
    ("s", "SRANDMEMBER s -3"), ("s", "SMOVE s t a"), ("s", "SMOVE t s t1"),
    ("s", "SMOVE t s a"), ("t", "SMOVE t s a"), ("s", "SMOVE s s a"), ("s", "SMOVE s t zz"),
    ("s", "SUNIONSTORE s t"), ("s", "SINTERSTORE s missing"), ("new", "SINTERSTORE new missing"),
    ("new", "SUNIONSTORE new s"), ("s", "SINTER s t"), ("s", "SSCAN s 0"),
    ("str", "SINTERSTORE str missing"),
]  # fmt: skip


@pytest.mark.parametrize(("watched", "command"), WATCH_CASES, ids=[c for _, c in WATCH_CASES])
def test_watch_invalidation_matches_redis(
    ports: tuple[int, int], watched: str, command: str
) -> None:
    setup = [[b"SADD", b"s", b"a", b"b"], [b"SADD", b"t", b"a", b"t1"], [b"SET", b"str", b"x"]]
    argv = [a.encode() for a in command.split()]
    random_replies = (b"SPOP", b"SRANDMEMBER", b"SSCAN")
    harness.check_watch_case(ports, setup, watched.encode(), argv, random_replies)
