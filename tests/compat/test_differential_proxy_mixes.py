"""The other differential mixes of tests/compat (lists, sets, sorted sets, streams, bitmaps,
geo, HyperLogLog) through a three-shard database endpoint, against redis-server.

Each mix's own ``test_seed`` runs unchanged, with its connections replaced: every key gets
the hash tag ``{t}`` on both sides (the same rewrite, so replies still compare byte for
byte, and every multi-key command is legal), and the few commands an endpoint refuses by
design that the mixes use to inspect or tune a server -- ``DEBUG`` (DIGEST, DIGEST-VALUE,
...) and ``CONFIG SET`` -- go straight to the shard process that holds slot ``{t}`` (CONFIG
SET to every shard), as an operator would. Everything else goes through the endpoint.
(``test_differential_notify.py`` is not run here: keyspace notifications need Pub/Sub,
which an endpoint does not carry yet.)

Replay one: ``ACKDB_DIFF_PROXY_MIXES_SEED=3 python -m pytest
tests/compat/test_differential_proxy_mixes.py -k 'lists and seed3'``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import diff_harness as harness
import pytest
from resp_wire import Reply, RespConnection

from ackdb.cluster.keyslot import key_slot
from ackdb.commandtable import TABLE
from conftest import REDIS_SERVER, ServerProcess, free_port, redis_argv
from proxy_support import ShardedDb

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

MIXES = ["lists", "sets", "zsets", "streams", "bitmaps", "geo", "hll"]
SEEDS = harness.seeds("ACKDB_DIFF_PROXY_MIXES", 3)
TAG = b"{t}"


def tag_keys(argv: list[bytes]) -> list[bytes]:
    cmd = TABLE.find(argv) if argv else None
    if cmd is None:
        return argv
    out = list(argv)
    for i in cmd.key_positions(argv):
        if not out[i].startswith(TAG):
            out[i] = TAG + out[i]
    return out


class Tagged(RespConnection):
    """A connection whose requests have their keys tagged; through an endpoint, DEBUG and
    CONFIG SET go to the shard(s) instead (``direct``)."""

    def __init__(self, port: int, direct: list[RespConnection] | None = None) -> None:
        super().__init__(port)
        self.direct = direct or []
        self.pending: list[Reply] = []

    def send(self, args: list[bytes]) -> None:
        args = tag_keys(args)
        name = args[0].upper() if args else b""
        if self.direct and name == b"DEBUG":
            self.pending.append(self.direct[0].call(*args))
            return
        if self.direct and name == b"CONFIG" and len(args) > 1 and args[1].upper() == b"SET":
            replies = [c.call(*args) for c in self.direct[1:]]
            self.pending.append(replies[0])
            return
        super().send(args)

    def read(self) -> Reply:
        if self.pending:
            return self.pending.pop(0)
        return super().read()

    def close(self) -> None:
        for c in self.direct:
            c.close()
        super().close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, ShardedDb]]:
    work = tmp_path_factory.mktemp("differential-proxy-mixes")
    ref_port = free_port()
    ref = ServerProcess(redis_argv(ref_port), ref_port, work, "redis")
    try:
        with ShardedDb(Path(work) / "db", shards=3) as db:
            yield ref_port, db
    finally:
        ref.stop()


def _connect_factory(db: ShardedDb) -> Any:
    holder = db.topology().db.shard_of_slot(key_slot(TAG + b"x")).index
    shard_ports = [p.port for p in db.primaries]

    def direct(port: int) -> RespConnection:
        c = RespConnection(port)
        assert c.call(b"AUTH", db.shard_password) == ("+", b"OK")
        return c

    def connect(port: int, *args: Any, **kw: Any) -> RespConnection:
        if port != db.port:
            return Tagged(port)
        return Tagged(port, [direct(shard_ports[holder])] + [direct(p) for p in shard_ports])

    return connect


@pytest.mark.timeout(harness.SEED_TIMEOUT_S * 2)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
@pytest.mark.parametrize("mix", MIXES)
def test_mix_through_the_endpoint(
    world: tuple[int, ShardedDb], monkeypatch: pytest.MonkeyPatch, mix: str, seed: int
) -> None:
    ref_port, db = world
    module: ModuleType = importlib.import_module(f"test_differential_{mix}")
    connect = _connect_factory(db)
    monkeypatch.setattr(harness, "RespConnection", connect)
    monkeypatch.setattr(module, "RespConnection", connect, raising=False)
    with RespConnection(db.port) as c:
        c.call(b"FLUSHALL")
        before = _commands(c)
        module.test_seed((ref_port, db.port), seed)
        assert _commands(c) - before > 50  # the mix really ran through the endpoint


def _commands(c: RespConnection) -> int:
    kind, text = c.call(b"INFO", b"stats")
    assert kind == "$" and isinstance(text, bytes)
    for line in text.splitlines():
        if line.startswith(b"total_commands_processed:"):
            return int(line.split(b":")[1])
    raise AssertionError("no total_commands_processed")
