"""The anti-entropy shell's connection pool (coordinator/antientropy.py) against a fake
replica on loopback: two callers that connect to one replica at once (a round and a
CONVERGE) share one pooled connection, and the other connection is closed, not dropped
unclosed for the garbage collector to find."""

from __future__ import annotations

import asyncio
import gc

from ackdb.coordinator.antientropy import AntiEntropy
from ackdb.resp.reader import RequestReader

TIMEOUT_S = 5.0


class Log:
    def notice(self, msg: str) -> None:
        pass

    warning = notice


class SlowAuthReplica:
    """Answers +OK to everything, but holds every reply until ``hold_until`` connections
    were accepted: each of that many callers is mid-AUTH when the last one connects."""

    def __init__(self, hold_until: int) -> None:
        self.hold_until = hold_until
        self.accepted = 0
        self.closed_by_peer = 0
        self.all_in = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.writers.append(w)
        self.accepted += 1
        if self.accepted >= self.hold_until:
            self.all_in.set()
        reader = RequestReader()
        while data := await r.read(65536):
            await self.all_in.wait()
            w.write(b"+OK\r\n" * len(reader.feed(data)))
        self.closed_by_peer += 1
        w.close()


def test_two_callers_connecting_at_once_share_one_connection_and_close_the_other() -> None:
    async def scenario() -> None:
        replica = SlowAuthReplica(hold_until=2)
        addr = ("127.0.0.1", await replica.start())
        ae = AntiEntropy("n1", b"secret", Log())
        try:
            a, b = await asyncio.wait_for(asyncio.gather(ae._conn(addr), ae._conn(addr)), TIMEOUT_S)
            assert replica.accepted == 2  # both were connecting: the race happened
            assert a is b and ae._conns == {addr: a}
            # The extra connection was closed by the pool: the replica reads its end.
            loop = asyncio.get_running_loop()
            end = loop.time() + TIMEOUT_S
            while replica.closed_by_peer < 1:
                assert loop.time() < end, "the extra connection was never closed"
                await asyncio.sleep(0.01)
            await ae.close()
            assert ae._conns == {}
            while replica.closed_by_peer < 2:
                assert loop.time() < end, "close() left the pooled connection open"
                await asyncio.sleep(0.01)
        finally:
            await ae.close()
            await replica.stop()

    asyncio.run(scenario())
    gc.collect()  # an unclosed StreamWriter would warn here (an error under pytest)
