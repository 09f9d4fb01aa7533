"""resp.client against a tiny in-test asyncio server, and resp.replies fed byte by byte:
pipelining, RESP2 and RESP3 replies, error replies, timeouts, a closed connection."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ackdb.resp.client import BlockingClient, Client, ReplyError
from ackdb.resp.reader import RequestReader
from ackdb.resp.replies import NEED_DATA, ReplyReader

RESP3 = b"%1\r\n$1\r\na\r\n,1.5\r\n#f\r\n_\r\n~2\r\n:1\r\n:2\r\n>2\r\n$1\r\nm\r\n:3\r\n"


def test_reply_reader_fed_byte_by_byte() -> None:
    data = b"+OK\r\n-ERR bad\r\n:5\r\n$-1\r\n*2\r\n$1\r\nx\r\n:1\r\n" + RESP3
    for step in (len(data), 1):
        r = ReplyReader()
        got = []
        for i in range(0, len(data), step):
            r.feed(data[i : i + step])
            while (reply := r.get()) is not NEED_DATA:
                got.append(reply)
        assert got[0] == b"OK" and isinstance(got[1], ReplyError) and got[1].code == "ERR"
        # RESP3 #f is False: it must not look like "no reply yet"
        assert got[2:] == [5, None, [b"x", 1], {b"a": 1.5}, False, None, [1, 2], [b"m", 3]]


REPLIES = {b"ERR": b"-TRYAGAIN later\r\n", b"RESP3": RESP3[:17], b"NIL": b"$-1\r\n"}


class Server:
    """Answers each command by its first word; CLOSE closes, SLOW never answers."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.srv: asyncio.Server | None = None

    async def start(self) -> int:
        self.srv = await asyncio.start_server(self.conn, "127.0.0.1", 0)
        return int(self.srv.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.srv is not None
        self.srv.close()
        for w in self.writers:
            w.close()
        await asyncio.sleep(0.01)

    async def conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.writers.append(w)
        replies = REPLIES
        reader = RequestReader()
        while data := await r.read(65536):
            for argv in reader.feed(data):
                if argv[0] == b"CLOSE":
                    w.close()
                    return
                if argv[0] != b"SLOW":
                    reply = replies.get(argv[0], b"+%s\r\n" % b" ".join(argv))
                    for i in range(0, len(reply), 3):  # replies split across writes
                        w.write(reply[i : i + 3])
                        await w.drain()
        w.close()


def test_async_client_pipelines_and_types_errors() -> None:
    async def main() -> None:
        srv = Server()
        port = await srv.start()
        c = await Client.connect(f"127.0.0.1:{port}", timeout_s=5, read_timeout_s=5)
        got = await c.pipeline([("A", 1), ("ERR",), ("RESP3",), ("NIL",)])
        assert got[0] == b"A 1" and got[2:] == [{b"a": 1.5}, None]
        assert isinstance(got[1], ReplyError) and got[1].code == "TRYAGAIN"
        with pytest.raises(ReplyError, match="TRYAGAIN later"):
            await c.call("ERR")
        c.send("X")
        c.send_many([("Y",), ("Z", 5)])
        assert [await c.read() for _ in range(3)] == [b"X", b"Y", b"Z 5"]
        c.send_many([("P", i) for i in range(50)])
        got = []
        while len(got) < 50:
            got += await c.read_some()  # at least one reply per read
        assert got == [b"P %d" % i for i in range(50)]
        # Concurrent callers get their own replies.
        got = await asyncio.gather(*(c.call("N", i) for i in range(20)))
        assert got == [b"N %d" % i for i in range(20)]
        c.read_timeout_s = 0.05
        with pytest.raises(TimeoutError):
            await c.call("SLOW")
        await c.close()
        c = await Client.connect(f"127.0.0.1:{port}")
        with pytest.raises(ConnectionError):
            await c.call("CLOSE")
        await c.close()
        await srv.stop()

    asyncio.run(main())


def test_blocking_client_against_the_same_server() -> None:
    loop = asyncio.new_event_loop()
    srv = Server()
    port = loop.run_until_complete(srv.start())
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    try:
        with BlockingClient(f"127.0.0.1:{port}", timeout_s=5) as c:
            got = c.pipeline([("A",), ("ERR",), ("NIL",)])
            assert got[0] == b"A" and isinstance(got[1], ReplyError) and got[2] is None
            with pytest.raises(ReplyError):
                c.call("ERR")
        with BlockingClient(f"127.0.0.1:{port}", timeout_s=5, encoding="utf-8") as c:
            assert c.call("PING") == "PING"
            c.settimeout(0.05)
            with pytest.raises(TimeoutError):
                c.call("SLOW")
    finally:
        asyncio.run_coroutine_threadsafe(srv.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
        loop.close()


def test_bad_address() -> None:
    with pytest.raises(ValueError, match="expected host:port"):
        BlockingClient("nowhere")
