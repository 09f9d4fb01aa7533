"""node/shardfailover.py against a scripted shard: what it sends, what it proposes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ackdb.cluster.commands import Op, Result
from ackdb.cluster.databases import Fork
from ackdb.node.shardfailover import ShardFailover
from ackdb.resp.client import ReplyError
from ackdb.server.log import Log


class FakeShard:
    """Answers commands from a script: name -> reply (a callable gets the args)."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script
        self.sent: list[tuple[str, ...]] = []
        self.proposed: list[tuple[Op, tuple[Any, ...]]] = []

    async def call(self, unit: str, *args: str) -> Any:
        self.sent.append(args)
        reply = self.script[args[0]]
        if callable(reply):
            reply = reply(*args)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def submit(self, op: Op, args: tuple[Any, ...], done: Callable[[Result], None]) -> None:
        self.proposed.append((op, args))
        done(Result(True))


def _failover(shard: FakeShard) -> ShardFailover:
    return ShardFailover("n2", Log("warning"), shard.call, shard.submit)


def test_freeze_reports_what_the_shard_answered() -> None:
    shard = FakeShard({"ACKDB.FREEZE": [b"abc", 1234, b"0" * 40, -1]})
    assert asyncio.run(_failover(shard).freeze("shards/7-0", "db", 0, 3))
    assert shard.sent == [("ACKDB.FREEZE", "3")]
    assert shard.proposed == [(Op.SHARD_REPORT, ("db", 0, 3, "n2", "abc", 1234))]


def test_a_failed_freeze_reports_nothing() -> None:
    shard = FakeShard({"ACKDB.FREEZE": ReplyError("ERR stale epoch 2 (current 3)")})
    assert not asyncio.run(_failover(shard).freeze("shards/7-0", "db", 0, 2))
    assert shard.proposed == []


def test_diverged_checks_every_fork_and_remembers_saved_files() -> None:
    replies = {
        "r1": [0, 0, 0, b""],
        "r2": [3, 101, 180, b"diverged-5.aof"],
    }
    shard = FakeShard({"ACKDB.DIVERGED": lambda _c, replid, *_: replies[replid]})
    f = _failover(shard)
    forks = (Fork(4, "r1", 50), Fork(5, "r2", 100))
    assert asyncio.run(f.check_diverged("shards/7-0", "/data/shards/7-0", forks))
    assert shard.sent == [("ACKDB.DIVERGED", "r1", "50", "4"), ("ACKDB.DIVERGED", "r2", "100", "5")]
    (path, saved), *_ = f.saved.items()
    assert path == "/data/shards/7-0/diverged-5.aof"
    assert (saved.count, saved.first, saved.last) == (3, 101, 180)


def test_a_failed_diverged_check_says_so() -> None:
    shard = FakeShard({"ACKDB.DIVERGED": ConnectionError("gone")})
    f = _failover(shard)
    assert not asyncio.run(f.check_diverged("u", "/d", (Fork(2, "r", 1),)))
    assert f.saved == {}


def _info(role: str, state: str, port: int = 0, second: int = -1) -> bytes:
    return (
        f"role:{role}\r\nmaster_host:127.0.0.2\r\nmaster_port:{port}\r\n"
        f"master_failover_state:{state}\r\nmaster_replid:old\r\nslave_repl_offset:900\r\n"
        f"master_repl_offset:900\r\nsecond_repl_offset:{second}\r\n"
    ).encode()


def test_hand_over_reports_the_offset_where_the_history_forked() -> None:
    infos = [_info("master", "no-failover"), _info("master", "waiting-for-sync")]
    infos.append(_info("slave", "no-failover", 21000, 801))
    shard = FakeShard({"INFO": lambda *_: infos.pop(0), "FAILOVER": b"OK"})
    assert asyncio.run(_failover(shard).hand_over("u", "db", 0, 4, "127.0.0.2", 21000))
    assert ("FAILOVER", "TO", "127.0.0.2", "21000", "TIMEOUT", "5000") in shard.sent
    assert shard.proposed == [(Op.SHARD_REPORT, ("db", 0, 4, "n2", "old", 800))]


def test_a_failed_hand_over_aborts() -> None:
    infos = [_info("master", "no-failover"), _info("master", "no-failover")]
    shard = FakeShard({"INFO": lambda *_: infos.pop(0), "FAILOVER": b"OK"})
    assert not asyncio.run(_failover(shard).hand_over("u", "db", 0, 4, "127.0.0.2", 21000))
    ((op, args),) = shard.proposed
    assert op is Op.SHARD_ABORT and args[:3] == ("db", 0, 4)
