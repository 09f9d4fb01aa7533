"""The coordinator's shell pieces against a fake replica on loopback: a link
authenticates first, fails what is in flight when the replica goes, and backs off; a
link closed while it connects closes the connection it makes; the runner asks a replica
lacking the schema version again, hints a replica that is down, replays the hint when
it answers, and numbers its versions by the node's position."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import replace
from typing import Any

from ackdb.cluster.databases import Database, DbType, Instance, Persistence, Shard, Topology
from ackdb.coordinator.links import Link, LinkDown
from ackdb.coordinator.runner import HintLimits, Runner, node_number
from ackdb.keyspace import lww
from ackdb.keyspace.lww import Version
from ackdb.leaderless.levels import Level
from ackdb.resp.reader import RequestReader


class FakeReplica:
    """Answers AUTH, PING and LL.APPLY; ``tryagain`` LL.APPLYs first get -TRYAGAIN."""

    def __init__(self, tryagain: int = 0) -> None:
        self.seen: list[list[bytes]] = []
        self.tryagain = tryagain
        self.mute = False  # swallow every request after AUTH (a cut link)
        self.connections = 0
        self.ended = 0  # connections the coordinator closed
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        for w in self.writers:
            try:
                await w.wait_closed()
            except OSError:
                pass
        await self.server.wait_closed()

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.writers.append(w)
        self.connections += 1
        reader = RequestReader()
        while data := await r.read(65536):
            for argv in reader.feed(data):
                self.seen.append(argv)
                if not self.mute or argv[0].upper() == b"AUTH":
                    w.write(self._answer(argv))
        self.ended += 1
        w.close()

    def _answer(self, argv: list[bytes]) -> bytes:
        name = argv[0].upper()
        if name in (b"AUTH", b"PING"):
            return b"+OK\r\n"
        if name == b"LL.APPLY":
            if self.tryagain:
                self.tryagain -= 1
                return b"-TRYAGAIN LL schema version 1 is not applied here yet (have 0)\r\n"
            return b":1\r\n"
        return b"-ERR unknown\r\n"


class Log:
    def verbose(self, msg: str) -> None:
        pass

    warning = notice = verbose


def _topology(ports: list[int], schema_version: int = 0) -> Topology:
    insts = [Instance(f"n{i + 1}", p) for i, p in enumerate(ports)]
    shard = Shard(0, 0, 16383, 1, insts[0], tuple(insts[1:]))
    db = Database(
        "ll",
        1,
        DbType.LEADERLESS,
        1,
        True,
        len(ports) - 1,
        Persistence.AOF_ALWAYS,
        "",
        False,
        (shard,),
        schema_version=schema_version,
    )
    return Topology(1, db, {f"n{i + 1}": "127.0.0.1" for i in range(len(ports))}, "n2")


def test_node_numbers_are_stable_whatever_the_membership() -> None:
    three = _topology([1, 2, 3])  # this node is n2
    two = Topology(1, three.db, {"n2": "127.0.0.1", "n9": "127.0.0.1"}, "n2")
    assert node_number(three) == node_number(two) > 0
    other = Topology(1, three.db, three.hosts, "n1")
    assert node_number(other) != node_number(three)


def test_link_auth_first_failures_and_backoff() -> None:
    async def main() -> None:
        fake = FakeReplica()
        await fake.start()
        link = Link(("127.0.0.1", fake.port), b"pw")
        assert await link.call("PING") == b"OK"
        assert fake.seen[0] == [b"AUTH", b"pw"] and fake.seen[1] == [b"PING"]
        link.close()
        await fake.stop()
        down = Link(("127.0.0.1", fake.port), None)
        fut = down.call("PING")
        try:
            await fut
            raise AssertionError("a closed port answered")
        except LinkDown:
            pass
        again = down.call("PING")  # within the backoff: fails at once
        assert again.done() and isinstance(again.exception(), LinkDown)

    asyncio.run(main())


def test_a_link_closed_while_it_connects_closes_the_connection_it_makes() -> None:
    async def main() -> None:
        fake = FakeReplica()
        await fake.start()
        link = Link(("127.0.0.1", fake.port), b"pw")
        fut = link.call("PING")  # starts connecting
        link.close()  # before the connection is made
        try:
            await fut
            raise AssertionError("a closed link answered")
        except LinkDown:
            pass
        await until(lambda: fake.connections == 1 and fake.ended == 1)
        assert link.transport is None and not link.ready
        assert fake.seen == []  # closed before AUTH: nothing sent
        await fake.stop()

    asyncio.run(main())
    gc.collect()  # an unclosed transport would warn here (an error under pytest)


async def until(pred: Any, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not pred():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_a_stalled_link_is_made_again(monkeypatch: Any) -> None:
    """Requests in flight and nothing received for STALL_S: the next call drops the
    connection (failing them) and opens a new one, which answers."""
    from ackdb.coordinator import links

    monkeypatch.setattr(links, "STALL_S", 0.2)

    async def main() -> None:
        fake = FakeReplica()
        await fake.start()
        link = Link(("127.0.0.1", fake.port), b"pw")
        assert await link.call("PING") == b"OK"
        fake.mute = True
        lost = link.call("PING")
        await asyncio.sleep(0.1)
        quick = link.call("PING")  # not stalled long enough yet: same connection
        assert fake.connections == 1
        await asyncio.sleep(0.25)
        fake.mute = False
        fresh = link.call("PING")
        for fut in (lost, quick):
            try:
                await fut
                raise AssertionError("a request of the stalled connection was answered")
            except LinkDown:
                pass
        assert await fresh == b"OK" and fake.connections == 2
        link.close()
        await fake.stop()

    asyncio.run(main())


def test_runner_schema_retry_hints_and_replay() -> None:
    async def main() -> Any:
        fakes = [FakeReplica(tryagain=2 if i == 0 else 0) for i in range(3)]
        for f in fakes[:2]:
            await f.start()
        dead_port = fakes[0].port + 1 if fakes[0].port < 65000 else 1024
        ports = [fakes[0].port, fakes[1].port, dead_port]
        runner = Runner(_topology(ports, 1), None, Log())
        part = runner.partition_of(b"k")
        rec = lww.string_write(Version(1, 0, 2), b"v")
        done = await runner.write(part, b"k", rec, Level.QUORUM)
        assert done.error is None and set(done.receipt.answered) == {0, 1}
        assert runner.schema_retries == 2
        applies = [a for a in fakes[0].seen if a[0] == b"LL.APPLY"]
        assert applies[-1][3:] == [b"MAXSKEW", b"500", b"SCHEMA", b"1"]
        await asyncio.sleep(0.3)  # the dead replica's failure arrives: a hint
        assert runner.hint_totals()[0] == 1
        # The hint limits are the database's, applied live to the queues already kept.
        assert runner.limits == HintLimits(64 << 20, 100_000, 3 * 3600 * 1000)
        small = _topology(ports, 1)
        small = replace(
            small,
            version=2,
            db=replace(small.db, hint_bytes_max=5000, hint_count_max=7, hint_age_ms_max=60_000),
        )
        runner.set_topology(small)
        q = runner.hints[("127.0.0.1", dead_port)]
        assert runner.limits == HintLimits(5000, 7, 60_000)
        assert (q.hint_bytes_max, q.hint_count_max, q.hint_age_ms_max) == (5000, 7, 60_000)
        fakes[2].port = dead_port
        await fakes[2].start(dead_port)
        for link in runner.links.values():
            link.close()
        runner.links.clear()  # no backoff wait in a unit test
        await runner._replay(("127.0.0.1", dead_port), runner.hints[("127.0.0.1", dead_port)])
        assert runner.hints_replayed == 1 and runner.hint_totals()[0] == 0
        replayed = [a for a in fakes[2].seen if a[0] == b"LL.APPLY"]
        assert replayed == [[b"LL.APPLY", b"k", lww.encode(rec)]]  # no SCHEMA, no MAXSKEW
        runner.close()
        await asyncio.sleep(0.05)
        for f in fakes:
            await f.stop()

    asyncio.run(main())


def test_hints_in_a_replay_batch_stay_pending_until_answered() -> None:
    """ll_hints_pending counts a batch taken from the queue until its replies come: a
    reader never sees nothing pending and nothing replayed while hints are in flight."""

    async def main() -> Any:
        fake = FakeReplica()
        await fake.start()
        runner = Runner(_topology([fake.port, fake.port, fake.port], 0), None, Log())
        addr = ("127.0.0.1", fake.port)
        for i in range(3):
            runner._hint(addr, b"k%d" % i, lww.string_write(Version(1, 0, 2), b"v"))
        q = runner.hints[addr]
        link = runner.link(addr)
        assert await link.call("PING") == b"OK"
        fake.mute = True  # the batch's replies wait
        batch = asyncio.get_running_loop().create_task(runner._replay_batch(link, q))
        await until(lambda: sum(a[0] == b"LL.APPLY" for a in fake.seen) == 3)
        assert len(q) == 0 and runner.hints_replayed == 0
        assert runner.hint_totals()[0] == 3, "hints in flight were reported as not pending"
        batch.cancel()
        await asyncio.gather(batch, return_exceptions=True)
        assert runner.hint_totals()[0] == 0  # a cancelled batch leaves no count behind
        runner.close()
        await asyncio.sleep(0.05)
        await fake.stop()

    asyncio.run(main())
