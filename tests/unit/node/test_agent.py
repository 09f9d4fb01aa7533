"""The node agent in-process: three Agents on loopback in one event loop (real sockets,
real Raft store in temporary directories), driven through their submit/read API."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from ackdb.cluster.commands import Op, Result
from ackdb.consensus import Role
from ackdb.node.agent import Agent
from ackdb.node.options import AgentOptions
from ackdb.node.secrets import new_secret, write_secret
from ackdb.server.log import Log
from conftest import free_port

TEST_TIMEOUT_S = 30.0


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, TEST_TIMEOUT_S))


async def until(pred: Callable[[], object], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not pred():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Trio:
    def __init__(self, tmp: Path, n: int = 3, **opts: Any) -> None:
        ids = [f"n{i}" for i in range(1, n + 1)]
        ports = {i: (free_port(), free_port()) for i in ids}
        boot = tuple((i, f"127.0.0.1:{ports[i][1]}") for i in ids)
        self.logs: dict[str, Log] = {}
        self.opts: dict[str, AgentOptions] = {}
        secret = str(tmp / "cluster.secret")
        write_secret(secret, new_secret())
        for i in ids:
            self.opts[i] = AgentOptions(
                node_id=i, data_dir=str(tmp / i), port=ports[i][0],
                cluster_port=ports[i][1], bootstrap=boot, cluster_secret_file=secret, **opts,
            )  # fmt: skip
            self.logs[i] = Log("verbose", str(tmp / f"{i}.log"))
        self.agents: dict[str, Agent] = {}
        self.tasks: dict[str, asyncio.Task[int]] = {}
        self.tmp = tmp

    def start(self, node_id: str) -> Agent:
        a = Agent(self.opts[node_id], self.logs[node_id])
        self.agents[node_id] = a
        self.tasks[node_id] = asyncio.get_running_loop().create_task(a.run())
        return a

    async def stop(self, node_id: str) -> int:
        self.agents[node_id].stop(0, "test")
        return await self.tasks.pop(node_id)

    async def close(self) -> None:
        for i in list(self.tasks):
            await self.stop(i)
        for log in self.logs.values():
            log.set_file("")

    def leader(self) -> Agent | None:
        for i, a in self.agents.items():
            if i in self.tasks and a.role is Role.LEADER:
                return a
        return None

    def log(self, node_id: str) -> str:
        return (self.tmp / f"{node_id}.log").read_text()


async def submit(a: Agent, op: Op, *args: bytes | str | int) -> Result:
    fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
    a.submit(op, args, fut.set_result)
    return await fut


async def read(a: Agent, key: bytes) -> bytes | None | str:
    fut: asyncio.Future[bytes | None | str] = asyncio.get_running_loop().create_future()

    def run() -> None:
        item = a.meta.get(key)
        fut.set_result(None if item is None else item.value)

    a.read(run, fut.set_result)
    return await fut


def test_writes_through_any_member_and_linearizable_reads(tmp_path: Path) -> None:
    async def main() -> None:
        t = Trio(tmp_path)
        for i in t.opts:
            t.start(i)
        try:
            await until(lambda: t.leader() is not None)
            leader = t.leader()
            assert leader is not None
            follower = next(a for i, a in t.agents.items() if a is not leader)
            assert await submit(follower, Op.KV_SET, b"k", b"v") == Result(True)
            assert await submit(leader, Op.KV_CAS, b"k", b"v", b"w") == Result(True, 1)
            for a in t.agents.values():
                assert await read(a, b"k") == b"w"
            # Many writes from one member share fsyncs (group commit).
            results = await asyncio.gather(
                *(submit(follower, Op.KV_SET, b"x%d" % i, b"y") for i in range(200))
            )
            assert all(r.ok for r in results)
            assert leader.stats["fsyncs"] < leader.stats["entries_persisted"]
            assert "Bootstrapping a new cluster" in t.log("n1")
        finally:
            await t.close()

    run(main())


def test_minority_fails_with_noquorum_and_restart_keeps_state(tmp_path: Path) -> None:
    async def main() -> None:
        t = Trio(tmp_path, request_timeout_ms=800)
        for i in t.opts:
            t.start(i)
        try:
            await until(lambda: t.leader() is not None)
            lone = t.agents["n1"]
            assert await submit(lone, Op.KV_SET, b"a", b"1") == Result(True)
            assert await t.stop("n2") == 0
            assert await t.stop("n3") == 0
            r = await submit(lone, Op.KV_SET, b"b", b"2")
            assert not r.ok and r.error.split()[0] in ("NOQUORUM", "TRYAGAIN")
            got = await read(lone, b"a")
            assert isinstance(got, str) and got.split()[0] in ("NOQUORUM", "TRYAGAIN")
            await t.stop("n1")
            for i in t.opts:  # a full restart: state comes back from the disk
                t.start(i)
            await until(lambda: t.leader() is not None)
            assert await read(t.agents["n2"], b"a") == b"1"
        finally:
            await t.close()

    run(main())


def test_failed_fsync_stops_the_member(tmp_path: Path) -> None:
    async def main() -> None:
        t = Trio(tmp_path, n=1)
        a = t.start("n1")
        try:
            await until(lambda: a.role is Role.LEADER)

            def broken() -> None:
                raise OSError(5, "Input/output error")

            a.store.sync = broken  # type: ignore[method-assign]
            a.submit(Op.KV_SET, (b"k", b"v"), lambda r: None)
            assert await t.tasks.pop("n1") == 1
            assert "Fatal error in the Raft loop" in t.log("n1")
        finally:
            await t.close()

    run(main())


def test_snapshots_compact_and_restore(tmp_path: Path) -> None:
    async def main() -> None:
        t = Trio(tmp_path, n=1, snapshot_entries=10)
        a = t.start("n1")
        try:
            await until(lambda: a.role is Role.LEADER)
            for i in range(35):
                assert (await submit(a, Op.KV_SET, b"k%d" % i, b"v")).ok
            assert a.snap_index >= 30
            await t.stop("n1")
            b = t.start("n1")
            await until(lambda: b.role is Role.LEADER)
            assert b.snap_index >= 30
            assert await read(b, b"k34") == b"v" and await read(b, b"k0") == b"v"
        finally:
            await t.close()

    run(main())


def test_options_are_plain_data() -> None:
    o = AgentOptions(node_id="n1", data_dir="d", port=1, cluster_port=2)
    assert dataclasses.replace(o, port=3).port == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.port = 4  # type: ignore[misc]
