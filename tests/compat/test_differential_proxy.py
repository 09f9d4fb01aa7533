"""Differential test through a three-shard database endpoint: the seeded command mixes of
``test_differential.py`` (strings, hashes, generic key commands, expiry, MULTI / EXEC /
WATCH with queued errors, SCAN, RESP3 seeds) sent to one redis-server and, through ``ackdb
proxy``, to three ``ackdb server`` shards; every reply compared as there.

Two modes per seed:
- ``oneslot``: every key gets the hash tag ``{t}`` on both sides (the same rewrite, so the
  replies still compare byte for byte), so every multi-key command and transaction is legal
  and all of them run through the endpoint; nothing may differ but the refused commands
  and the commands spanning the shards inside a transaction (below).
- ``spread``: keys as generated, so they spread over the shards and multi-key commands are
  split and merged; the sharded differences below are accepted.

The differences of a sharded database (docs/proxy.md), each accepted only as written here:
- refused through an endpoint, sent to neither server: ``SELECT n`` (n != 0), ``MOVE``,
  ``SWAPDB``, ``DEBUG`` (the generator's database hopping therefore stays in database 0
  on both sides);
- inside a transaction, a command that spans the shards (DBSIZE, KEYS, FLUSHDB, SCAN,
  INFO...) is refused (it would see one shard only); the transaction is then aborted and
  the reference gets DISCARD for its EXEC;
- ``spread`` only: a command whose keys are in more than one slot (other than the split
  ones: MGET, MSET, DEL, UNLINK, EXISTS, TOUCH) gets CROSSSLOT and does not run on the
  reference; a transaction holding one (or whose keys span slots, or that queues a command
  spanning the shards, such as DBSIZE or KEYS) is aborted by the endpoint, so the
  reference gets DISCARD for its EXEC.
The datasets are compared at the end key by key (TYPE, TTL and value): ``DEBUG DIGEST``
is a shard's own.

Replay one seed:
    ACKDB_DIFF_PROXY_SEED=3 python -m pytest tests/compat/test_differential_proxy.py -k seed
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import diff_harness as harness
import pytest
import test_differential as base
from diff_commands import Generator, Op
from resp_wire import Reply

from ackdb.commandtable import TABLE
from conftest import REDIS_SERVER, ServerProcess, free_port, redis_argv
from proxy_support import ShardedDb

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SEEDS = harness.seeds("ACKDB_DIFF_PROXY", 8)
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_DIFF_PROXY", 300)
TAG = b"{t}"
REFUSED = {b"MOVE", b"SWAPDB", b"DEBUG"}
# Errors only an endpoint gives (the accepted differences of ``spread``).
SHARDED_ERRORS = (
    b"CROSSSLOT",
    b"ERR '",  # "ERR '<command>' is not available ... through a database endpoint"
)
OK: Reply = ("+", b"OK")


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    work = tmp_path_factory.mktemp("differential-proxy")
    ref_port = free_port()
    ref = ServerProcess(redis_argv(ref_port), ref_port, work, "redis")
    try:
        with ShardedDb(Path(work) / "db", shards=3) as db:
            yield ref_port, db.port
    finally:
        ref.stop()


def _sent_to_neither(argv: list[bytes]) -> bool:
    name = argv[0].upper() if argv else b""
    return name in REFUSED or (name == b"SELECT" and argv[1:] != [b"0"])


def _sharded_error(reply: Reply) -> bool:
    return reply[0] == "-" and isinstance(reply[1], bytes) and reply[1].startswith(SHARDED_ERRORS)


class Pair(base.Pair):
    module = "tests/compat/test_differential_proxy.py"
    env = "ACKDB_DIFF_PROXY"
    shown = harness.history_shown("ACKDB_DIFF_PROXY", 12)

    def __init__(self, ports: tuple[int, int], seed: int, oneslot: bool) -> None:
        super().__init__(ports, seed)
        self.oneslot = oneslot
        self.in_multi = False
        self.broken_txn = False  # the endpoint refused a queued command: EXEC will abort
        self.accepted = 0

    def tag(self, key: bytes) -> bytes:
        return key if not self.oneslot or key.startswith(TAG) else TAG + key

    def rewrite(self, argv: list[bytes]) -> list[bytes]:
        if not self.oneslot or not argv:
            return argv
        cmd = TABLE.find(argv)
        if cmd is None:
            return argv
        out = list(argv)
        for i in cmd.key_positions(argv):
            out[i] = self.tag(out[i])
        return out

    def check(self, index: int, op: Op) -> None:
        if op.mode == "exec":  # the refused commands sent to neither are not in EXEC's reply
            op = Op(op.argv, op.mode, [q for q in op.queued if not _sent_to_neither(q.argv)])
        super().check(index, op)

    def fresh_encoding(self, key: bytes) -> bytes:
        return super().fresh_encoding(self.tag(key))

    def call(self, argv: list[bytes]) -> tuple[Reply, Reply]:
        argv = self.rewrite(argv)
        name = argv[0].upper() if argv else b""
        if _sent_to_neither(argv):
            self.accepted += 1
            return OK, OK  # sent to neither
        self.sut.send(argv)
        sut = self.sut.read()
        if name == b"EXEC" and (self.broken_txn or _sharded_error(sut)):
            self.ref.call(b"DISCARD")
            self.in_multi = self.broken_txn = False
            self.accepted += 1
            return sut, sut
        if _sharded_error(sut) and (not self.oneslot or not sut[1].startswith(b"CROSSSLOT")):  # type: ignore[union-attr]
            self.accepted += 1
            if self.in_multi:
                self.broken_txn = True
            return sut, sut
        self.ref.send(argv)
        ref = self.ref.read()
        if name == b"MULTI" and ref == OK:
            self.in_multi = True
        elif name in (b"EXEC", b"DISCARD"):
            self.in_multi = self.broken_txn = False
        return ref, sut


def compare_datasets(pair: Pair, index: int) -> None:
    """Key by key: the endpoint has no whole-dataset digest (each shard has its own)."""
    pair.check(index, Op([b"DBSIZE"]))
    pair.check(index, Op([b"KEYS", b"*"], "sorted"))
    ref_keys = pair.ref.call(b"KEYS", b"*")
    assert ref_keys[0] == "*" and isinstance(ref_keys[1], list), ref_keys
    for key in sorted(k[1] for k in ref_keys[1]):  # type: ignore[misc]
        pair.check(index, Op([b"TTL", key], "ttl_s"))
        kind = pair.ref.call(b"TYPE", key)
        pair.check(index, Op([b"TYPE", key]))
        if kind == ("+", b"string"):
            pair.check(index, Op([b"GET", key]))
        elif kind == ("+", b"hash"):
            pair.check(index, Op([b"HGETALL", key], "pairs"))


@pytest.mark.timeout(harness.SEED_TIMEOUT_S)
@pytest.mark.parametrize("mode", ["oneslot", "spread"])
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_seed(ports: tuple[int, int], seed: int, mode: str) -> None:
    pair = Pair(ports, seed, oneslot=mode == "oneslot")
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
        if pair.in_multi:
            pair.check(COMMANDS_PER_SEED + 5, Op([b"DISCARD"]))
        compare_datasets(pair, COMMANDS_PER_SEED + 10)
    finally:
        pair.close()
