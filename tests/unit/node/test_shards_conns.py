"""The shard supervisor's connections to the processes it runs (node/shards.py): none is
left open when two tasks connect to different processes of one unit at once, or when the
supervisor stops while a dropped connection is still being closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ackdb.cluster.shardspec import ProxySpec
from ackdb.node.options import AgentOptions
from ackdb.node.shards import ShardSupervisor
from ackdb.server.log import Log


class Peer:
    """A listener that counts the connections open to it."""

    def __init__(self) -> None:
        self.open = 0
        self.accepted = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.open += 1
        self.accepted += 1
        try:
            while await r.read(4096):
                pass
        finally:
            self.open -= 1
            w.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def settle(peer: Peer, want: int) -> None:
    for _ in range(200):
        if peer.open == want:
            return
        await asyncio.sleep(0.01)


async def world(tmp_path: Path) -> tuple[Peer, ShardSupervisor, ProxySpec]:
    """A listener, a supervisor, and a unit whose process the listener plays."""
    peer = Peer()
    await peer.start()
    opts = AgentOptions("n1", str(tmp_path), 0, 0)
    sup = ShardSupervisor(opts, Log("warning"), meta=lambda: None)  # type: ignore[arg-type,return-value]
    return peer, sup, ProxySpec("db", 1, "127.0.0.1", peer.port)


def test_racing_connects_to_two_processes_of_a_unit_leave_one_open(tmp_path: Path) -> None:
    async def main() -> None:
        peer, sup, spec = await world(tmp_path)
        # Two callers connect at once, one for the unit's old process (pid 10), one for its
        # new one (pid 11): the second to finish must not lose the first's connection.
        a, b = await asyncio.gather(sup._conn(spec.unit, 10, spec), sup._conn(spec.unit, 11, spec))
        assert a is not b
        assert peer.accepted == 2
        await settle(peer, 1)
        assert peer.open == 1, "a connection nobody holds is still open"
        await sup.stop()
        await settle(peer, 0)
        assert peer.open == 0
        await peer.stop()

    asyncio.run(main())


def test_stop_finishes_closing_a_dropped_connection(tmp_path: Path) -> None:
    async def main() -> None:
        peer, sup, spec = await world(tmp_path)
        await sup._conn(spec.unit, 10, spec)
        sup._drop_conn(spec.unit)  # its close is a task; stop() runs at once after it
        await sup.stop()
        await settle(peer, 0)
        assert peer.open == 0, "stop() cancelled the close of a dropped connection"
        await peer.stop()

    asyncio.run(main())
