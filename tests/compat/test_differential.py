"""Differential test: the same seeded random command sequences against one redis-server
(the reference) and one ackdb, every reply compared by TYPE and value.

Covers strings, generic key commands, expiry (NX/XX/GT/LT), databases (SELECT, SWAPDB,
MOVE, COPY, FLUSHDB), hashes, MULTI/EXEC/DISCARD/WATCH with queued errors, wrong arity,
wrong types, bad integers and floats (``diff_commands.py`` generates them). At the end of
each seed the whole dataset is compared with ``DEBUG DIGEST`` and every key with ``DEBUG
DIGEST-VALUE``. One seed in three runs the whole sequence over RESP3 (``HELLO 3``).

Replies are compared exactly after normalising only the accepted differences listed in
``docs/compat.md`` (``normalise``, ``matches`` and ``Pair.check`` name each one).

Replay one seed (a replayed seed prints every command before the failing one):
    ACKDB_DIFF_SEED=17 python -m pytest tests/compat/test_differential.py -k seed
Check the generator itself (both sides redis-server; must always pass):
    ACKDB_DIFF_TARGET=redis python -m pytest tests/compat/test_differential.py
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import diff_harness as harness
import pytest
from diff_commands import DBS, Generator, Op
from resp_wire import Reply, RespConnection

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SEEDS = harness.seeds("ACKDB_DIFF", 30)
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_DIFF", 300)

# Tolerances for replies that depend on when each server ran the command.
TOLERANCE = {"ttl_s": 2, "ttl_ms": 2000, "abs_s": 2, "abs_ms": 2000}

# Accepted difference (docs/compat.md, "OBJECT ENCODING follows the value"): Redis's
# encodings remember how a value was written. A string modified in place (APPEND,
# SETRANGE) stays "raw", an INCRBYFLOAT result is "embstr" even for "3"; a hash converted
# to "hashtable" (a field or value over 64 bytes, even one overwritten in the same HSET, or
# over 128 fields) never converts back. ackdb reports the encoding Redis gives the current
# contents written afresh. Accepted only when ackdb's reply is exactly that.
STICKY_ENCODINGS = (("$", b"raw"), ("$", b"embstr"), ("$", b"hashtable"))
FRESH_ENCODINGS = (("$", b"embstr"), ("$", b"int"), ("$", b"listpack"))
CANONICAL_INT = re.compile(rb"-?[1-9][0-9]{0,18}|0")
HASH_LISTPACK_ENTRIES = 128  # hash-max-listpack-entries (default)
HASH_LISTPACK_VALUE_BYTES = 64  # hash-max-listpack-value (default)
EMBSTR_MAX_BYTES = 44


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("differential")) as pair:
        yield pair


class Pair(harness.Pair):
    module = "tests/compat/test_differential.py"
    shown = harness.history_shown("ACKDB_DIFF", 12)

    def check(self, index: int, op: Op) -> None:
        self.note(index, op.text())
        if op.mode == "scan":
            self._check_scan(index, op)
            return
        ref, sut = self.call(op.argv)
        if matches(op, ref, sut):
            return
        if op.mode == "encoding" and ref in STICKY_ENCODINGS and sut in FRESH_ENCODINGS:
            if sut == ("$", self.fresh_encoding(op.argv[2])):
                return
        self.fail(index, op.text(), ref, sut)

    def fresh_encoding(self, key: bytes) -> bytes:
        """The encoding Redis gives ``key``'s current contents (read from the reference)
        written afresh: SET for a string, HSET of all its fields for a hash."""
        kind = self.ref.call(b"TYPE", key)
        if kind == ("+", b"string"):
            value = self.ref.call(b"GET", key)[1]
            assert isinstance(value, bytes)
            if CANONICAL_INT.fullmatch(value) and -(2**63) <= int(value) < 2**63:
                return b"int"
            return b"embstr" if len(value) <= EMBSTR_MAX_BYTES else b"raw"
        if kind == ("+", b"hash"):
            items = self.ref.call(b"HGETALL", key)[1]
            assert isinstance(items, list)
            small = all(len(item[1]) <= HASH_LISTPACK_VALUE_BYTES for item in items)  # type: ignore[arg-type]
            return (
                b"listpack" if small and len(items) <= 2 * HASH_LISTPACK_ENTRIES else b"hashtable"
            )
        return b"?"

    def _check_scan(self, index: int, op: Op) -> None:
        seen: list[set[bytes]] = []
        for conn in (self.ref, self.sut):
            pages = harness.scan_pages(conn, op.argv, 1)
            if isinstance(pages, list):
                seen.append({k[1] for page in pages for k in page[1]})  # type: ignore[index, misc]
            else:
                seen.append({b"<reply> %r" % (pages,)})
        if seen[0] != seen[1]:
            self.fail(index, op.text() + " (whole iteration)", sorted(seen[0]), sorted(seen[1]))


def normalise(op: Op, reply: Reply) -> object:
    kind, value = reply
    if op.mode == "sorted" and kind in "*~" and isinstance(value, list):
        return kind, sorted(value)
    if op.mode == "pairs" and kind in "*%" and isinstance(value, list):
        return kind, dict(zip(value[0::2], value[1::2], strict=True))
    if op.mode == "hello":
        return kind  # server name, version and client id differ by design
    return reply


def matches(op: Op, ref: Reply, sut: Reply) -> bool:
    if op.mode == "exec" and ref[0] == sut[0] == "*":
        items_ref, items_sut = ref[1], sut[1]
        if isinstance(items_ref, list) and isinstance(items_sut, list):
            if len(items_ref) != len(items_sut):
                return False
            if len(op.queued) != len(items_ref):  # cannot pair: compare exactly
                return ref == sut
            return all(
                matches(q, r, s) for q, r, s in zip(op.queued, items_ref, items_sut, strict=True)
            )
    tolerance = TOLERANCE.get(op.mode)
    if tolerance is not None and ref[0] == sut[0] == ":":
        a, b = ref[1], sut[1]
        assert isinstance(a, int) and isinstance(b, int)
        if a < 0 or b < 0:
            return a == b
        return abs(a - b) <= tolerance
    return normalise(op, ref) == normalise(op, sut)


def compare_datasets(pair: Pair, index: int) -> None:
    """DEBUG DIGEST of everything, then per database its keys and each key's digest."""
    pair.check(index, Op([b"DEBUG", b"DIGEST"]))
    for db in range(DBS):
        pair.check(index, Op([b"SELECT", b"%d" % db]))
        pair.check(index, Op([b"DBSIZE"]))
        pair.check(index, Op([b"KEYS", b"*"], "sorted"))
        ref_keys, _ = pair.call([b"KEYS", b"*"])
        assert ref_keys[0] == "*" and isinstance(ref_keys[1], list), ref_keys
        keys: list[bytes] = sorted(k[1] for k in ref_keys[1])  # type: ignore[misc]
        if keys:
            pair.check(index, Op([b"DEBUG", b"DIGEST-VALUE", *keys]))
            for key in keys:
                pair.check(index, Op([b"TYPE", key]))
                pair.check(index, Op([b"TTL", key], "ttl_s"))


@pytest.mark.timeout(harness.SEED_TIMEOUT_S)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_seed(ports: tuple[int, int], seed: int) -> None:
    pair = Pair(ports, seed)
    try:
        pair.check(-1, Op([b"FLUSHALL"]))
        if seed % 3 == 2:
            pair.protocol = 3
            pair.check(-1, Op([b"HELLO", b"3"], "hello"))
        gen = Generator(seed, base_s=int(time.time()))
        for index in range(COMMANDS_PER_SEED):
            pair.check(index, gen.next())
        for index, op in enumerate(gen.finish(), start=COMMANDS_PER_SEED):
            pair.check(index, op)
        compare_datasets(pair, COMMANDS_PER_SEED + 10)
    finally:
        pair.close()


def test_generator_is_deterministic() -> None:
    """A seed must replay the same sequence, or printed seeds would be worthless."""
    a, b = Generator(5, base_s=1_700_000_000), Generator(5, base_s=1_700_000_000)
    assert [a.next().argv for _ in range(500)] == [b.next().argv for _ in range(500)]


def command_info(conn: RespConnection, name: bytes) -> list[Reply] | None:
    reply = conn.call(b"COMMAND", b"INFO", name)
    assert reply[0] == "*" and isinstance(reply[1], list), reply
    entry = reply[1][0]
    return entry[1] if entry[0] == "*" else None  # type: ignore[return-value]


def _names(reply: Reply) -> str:
    return " ".join(sorted(item[1].decode() for item in reply[1]))  # type: ignore[union-attr, misc]


def test_command_table_matches_redis(ports: tuple[int, int]) -> None:
    """COMMAND INFO of every command ackdb has (subcommands included) against Redis: arity,
    flags, first/last key and step, ACL categories. Clients route and validate with these.
    tips and key specs (begin-search / find-keys, as a proxy routes with them). Commands
    Redis 7.0 does not have yet (7.2 additions) are skipped."""
    # Redis 7.2 changes on the 7.0.15 reference: ZRANK/ZREVRANK gained WITHSCORE.
    arity_72 = {b"zrank": -3, b"zrevrank": -3}
    # Redis 7.2.5 (#12977) allows WAIT in scripts: no more noscript flag.
    flags_725 = {b"wait": ""}
    with RespConnection(ports[0]) as ref, RespConnection(ports[1]) as sut:
        listed = sut.call(b"COMMAND", b"LIST")
        assert listed[0] == "*" and isinstance(listed[1], list)
        problems = []
        for name in sorted(item[1] for item in listed[1]):  # type: ignore[misc]
            theirs, ours = command_info(ref, name), command_info(sut, name)
            if theirs is None:
                continue
            assert ours is not None, name
            for label, get in (
                ("arity", lambda i: i[1][1]),
                ("flags", lambda i: _names(i[2])),
                ("keys", lambda i: [k[1] for k in i[3:6]]),
                ("acl categories", lambda i: _names(i[6])),
                ("tips", lambda i: i[7]),
                ("key specs", lambda i: i[8]),
            ):
                if label == "arity" and arity_72.get(name) == get(ours):
                    continue
                if label == "flags" and flags_725.get(name) == get(ours):
                    continue
                if get(theirs) != get(ours):
                    problems.append(
                        f"{name.decode()} {label}: redis [{get(theirs)}] ackdb [{get(ours)}]"
                    )
    assert not problems, "COMMAND INFO differs:\n  " + "\n  ".join(problems)


# Requests whose keys are fixed, stepped, counted by a numkeys argument, or several specs.
GETKEYS_REQUESTS = [
    "GET k", "SET k v GET", "MSET a 1 b 2", "DEL a b c", "LMOVE s d LEFT RIGHT",
    "LMPOP 2 a b LEFT", "BLMPOP 0 2 a b RIGHT COUNT 2", "ZMPOP 1 z MIN", "BZMPOP 0 2 a b MAX",
    "ZUNIONSTORE d 2 a b WEIGHTS 1 2", "ZINTERSTORE d 1 a", "ZDIFF 2 a b", "SINTERCARD 2 a b",
    "ZINTERCARD 2 a b LIMIT 1", "SINTERSTORE d a b", "BLPOP a b 0", "COPY a b", "GETEX k PERSIST",
    "OBJECT ENCODING k", "ZRANGESTORE d s 0 -1", "RENAME a b", "SMOVE a b m", "LMPOP x a LEFT",
    "PING", "BZPOPMIN a b 0", "EXISTS a b",
    "BITFIELD k GET u8 0", "BITFIELD k GET u8 0 OVERFLOW SAT", "BITFIELD k GET u8",
    "BITFIELD k INCRBY u8 0 1", "BITFIELD_RO k GET i5 3", "BITOP AND d a b", "PFMERGE d a b",
    "PFCOUNT a b", "PFDEBUG GETREG k", "GEORADIUS k 1 2 3 m STORE d STOREDIST e",
    "GEORADIUSBYMEMBER k m 3 km STORE d", "GEOSEARCHSTORE d s FROMMEMBER m BYRADIUS 1 m",
    "SORT k", "SORT k BY w_* STORE d", "SORT k STORE a LIMIT 0 1 STORE b", "SORT k GET store",
    "SORT k LIMIT store 1 STORE", "SORT_RO k GET x BY y", "LCS a b IDX",
]  # fmt: skip


def test_getkeys_matches_redis(ports: tuple[int, int]) -> None:
    """COMMAND GETKEYS / GETKEYSANDFLAGS, the keys a cluster client routes by."""
    with RespConnection(ports[0]) as ref, RespConnection(ports[1]) as sut:
        for request in GETKEYS_REQUESTS:
            args = [w.encode() for w in request.split()]
            for sub in (b"GETKEYS", b"GETKEYSANDFLAGS"):
                theirs = ref.call(b"COMMAND", sub, *args)
                ours = sut.call(b"COMMAND", sub, *args)
                assert ours == theirs, (sub, request)


# Does a command on a WATCHed key make EXEC fail? Every write that changes the key must
# (Redis "Transactions": "if at least one watched key is modified"), a write that changes
# nothing must not. Keys before each case: s="v", n="5", t="v" with a TTL, h={f: v}.
WATCH_SETUP = [
    [b"SET", b"s", b"v"],
    [b"SET", b"n", b"5"],
    [b"SET", b"t", b"v", b"EX", b"1000"],
    [b"HSET", b"h", b"f", b"v"],
]
WATCH_CASES = [
    ("s", "SET s v"), ("s", "SET s v NX"), ("s", "SETNX s x"), ("s", "SET s v XX KEEPTTL"),
    ("s", "APPEND s x"), ("s", "APPEND s ''"), ("s", "SETRANGE s 0 v"), ("s", "SETRANGE s 0 ''"),
    ("s", "GETSET s v"), ("s", "GETDEL s"), ("s", "GETEX s"), ("s", "GETEX s EX 100"),
    ("t", "GETEX t PERSIST"), ("s", "GETEX s PERSIST"), ("s", "GET s"), ("s", "STRLEN s"),
    ("n", "INCR n"), ("n", "INCRBY n 0"), ("n", "INCRBYFLOAT n 0"), ("n", "INCR n x"),
    ("s", "MSET s v"), ("s", "MSETNX s v"), ("s", "DEL s"), ("s", "DEL nothing"),
    ("s", "UNLINK s"), ("s", "EXPIRE s 100"), ("s", "EXPIRE s 100 XX"),
    ("s", "EXPIRE s -1"), ("t", "PERSIST t"), ("s", "PERSIST s"), ("s", "PEXPIREAT s 1"),
    ("t", "EXPIRE t 5000 LT"), ("s", "RENAME s s2"), ("s", "RENAME n s"),
    ("s", "RENAMENX n s"), ("s", "MOVE s 1"), ("s", "COPY s s2"), ("s", "COPY n s"),
    ("s", "COPY n s REPLACE"), ("s", "SWAPDB 0 1"), ("s", "FLUSHDB"), ("s", "FLUSHALL"),
    ("s", "TOUCH s"), ("s", "TYPE s"), ("s", "OBJECT ENCODING s"),
    ("h", "HSET h f v"), ("h", "HSET h g v"), ("h", "HSETNX h f x"), ("h", "HSETNX h g x"),
    ("h", "HDEL h f"), ("h", "HDEL h nope"), ("h", "HINCRBY h n 1"), ("h", "HGET h f"),
    ("h", "HINCRBYFLOAT h n 1.5"), ("h", "HMSET h f v"), ("h", "HINCRBY h f 1"),
    ("missing", "SET missing v"), ("missing", "DEL missing"), ("missing", "EXPIRE missing 5"),
    ("s", "SETBIT s 0 1"), ("s", "SETBIT s 1 1"), ("s", "SETBIT s 100 0"), ("s", "GETBIT s 1"),
    ("s", "BITFIELD s SET u8 0 118"), ("s", "BITFIELD s SET u8 0 1"), ("s", "BITCOUNT s"),
    ("s", "BITFIELD s OVERFLOW FAIL INCRBY u8 0 200"), ("s", "BITOP NOT s s"),
    ("missing", "BITOP AND missing missing"), ("missing", "PFADD missing"),
    ("missing", "PFCOUNT missing"), ("s", "PFADD s a"), ("missing", "SETBIT missing 0 0"),
    ("missing", "GEOADD missing 1 2 m"), ("missing", "GEOSEARCHSTORE missing h FROMLONLAT 1 2 BYRADIUS 1 m"),
]  # fmt: skip


@pytest.mark.parametrize(("watched", "command"), WATCH_CASES, ids=[c for _, c in WATCH_CASES])
def test_watch_invalidation_matches_redis(
    ports: tuple[int, int], watched: str, command: str
) -> None:
    argv = [a.encode() if a != "''" else b"" for a in command.split()]
    harness.check_watch_case(ports, WATCH_SETUP, watched.encode(), argv)
