"""Peer links (ackdb.node.transport) over real loopback sockets, in one event loop."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from ackdb.consensus import Message, MsgType
from ackdb.node import transport as tr
from ackdb.node.peerframes import Forward, Frame, RaftFrame, encode_forward, encode_raft
from ackdb.server.log import Log
from conftest import free_port

TEST_TIMEOUT_S = 10.0


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, TEST_TIMEOUT_S))


async def until(pred: Callable[[], object], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not pred():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Member:
    """A Transport with its received frames and unreachable reports recorded."""

    def __init__(self, node_id: str, port: int, log_path: Path) -> None:
        self.frames: list[tuple[str, Frame]] = []
        self.unreachable: list[str] = []
        self.log_path = log_path
        self.logger = Log("verbose", str(log_path))
        self.t = tr.Transport(
            node_id,
            f"127.0.0.1:{port}",
            self.logger,
            lambda peer, f: self.frames.append((peer, f)),
            self.unreachable.append,
            random.Random(1),
        )
        self.port = port

    async def listen(self) -> None:
        await self.t.listen("127.0.0.1", self.port)

    def log(self) -> str:
        return self.log_path.read_text()

    async def close(self) -> None:
        await self.t.aclose()
        self.logger.set_file("")  # closes the log file


def msg(frm: str, to: str, term: int = 1) -> Message:
    return Message(type=MsgType.HEARTBEAT, frm=frm, to=to, term=term, commit=term)


def test_frames_flow_and_hello_teaches_the_address(tmp_path: Path) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        b = Member("b", free_port(), tmp_path / "b.log")
        await a.listen()
        await b.listen()
        a.t.set_address("b", f"127.0.0.1:{b.port}", pinned=True)
        for term in range(1, 4):
            assert a.t.send("b", encode_raft(msg("a", "b", term)))
        a.t.send("b", encode_forward(b"cmd"))
        await until(lambda: len(b.frames) == 4)
        assert b.frames[:3] == [("a", RaftFrame(msg("a", "b", t))) for t in (1, 2, 3)]
        assert b.frames[3] == ("a", Forward(b"cmd"))
        # b never had a's address: HELLO taught it, so b can answer.
        assert b.t.addresses["a"] == (f"127.0.0.1:{a.port}", False)
        b.t.send("a", encode_raft(msg("b", "a")))
        await until(lambda: len(a.frames) == 1)
        assert a.t.links["b"].sent_frames == 4
        await a.close()
        await b.close()

    run(main())


def test_unknown_peer_is_not_routable(tmp_path: Path) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        assert not a.t.send("zz", b"x")
        assert a.t.unroutable_frames == 1
        await a.close()

    run(main())


def test_reconnects_with_backoff_and_delivers_queued(tmp_path: Path) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        b = Member("b", free_port(), tmp_path / "b.log")
        a.t.set_address("b", f"127.0.0.1:{b.port}")
        a.t.send("b", encode_raft(msg("a", "b", 1)))
        # b is not listening: dials fail, a reports b unreachable and backs off.
        await until(lambda: a.t.links["b"].failures >= 3)
        assert "b" in a.unreachable
        assert a.t.links["b"].state in (tr.LinkState.BACKOFF, tr.LinkState.CONNECTING)
        await b.listen()
        await until(lambda: len(b.frames) == 1, timeout_s=tr.BACKOFF_MAX_MS / 1000 + 3)
        assert a.t.connected("b")
        # The connection breaks: the link comes back by itself.
        for conn in list(b.t.inbound):
            assert conn.transport is not None
            conn.transport.abort()
        await asyncio.sleep(0.05)
        a.t.send("b", encode_raft(msg("a", "b", 2)))
        await until(lambda: len(b.frames) == 2, timeout_s=3)
        await a.close()
        await b.close()

    run(main())


def test_queue_drops_oldest_when_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tr, "PEER_QUEUE_MAX_FRAMES", 5)

    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        a.t.set_address("b", f"127.0.0.1:{free_port()}")  # nobody listens
        frames = [encode_raft(msg("a", "b", t)) for t in range(1, 13)]
        for f in frames:
            a.t.send("b", f)
        link = a.t.links["b"]
        assert list(link.queue) == frames[-5:]
        assert link.dropped_frames == 7
        assert link.queued_bytes == sum(len(f) for f in frames[-5:])
        await a.close()

    run(main())


def test_queue_bytes_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tr, "PEER_QUEUE_MAX_BYTES", 1000)

    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        a.t.set_address("b", f"127.0.0.1:{free_port()}")
        for _ in range(10):
            a.t.send("b", b"x" * 300)
        link = a.t.links["b"]
        assert link.queued_bytes <= 1000 and len(link.queue) == 3
        a.t.send("b", b"y" * 5000)  # bigger than the limit alone: kept, the rest dropped
        assert list(link.queue) == [b"y" * 5000]
        await a.close()

    run(main())


def _raw_send(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(data)
        s.settimeout(2)
        try:
            return s.recv(100)
        except OSError:
            return b""


@pytest.mark.parametrize(
    "garbage, why",
    [
        (b"GET / HTTP/1.1\r\n\r\n", "not a RESP array"),
        (b"\x00\xff" * 100, "not a RESP array"),
        (b"*1\r\n$4\r\nPING\r\n", "unexpected frame"),
        (b"*3\r\n$5\r\nHELLO\r\n$1\r\nx\r\n$5\r\nnoaddr\r\n", "bad HELLO"),
        (encode_raft(msg("a", "b")), "expected HELLO first"),
        (b"*abc\r\n", "protocol error"),
    ],
)
def test_garbage_closes_only_that_link(tmp_path: Path, garbage: bytes, why: str) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        b = Member("b", free_port(), tmp_path / "b.log")
        await b.listen()
        loop = asyncio.get_running_loop()
        got = await loop.run_in_executor(None, _raw_send, b.port, garbage)
        assert got == b""  # closed without a reply
        await until(lambda: why in b.log())
        assert b.t.garbage_closes == 1
        # b still serves its real peers.
        a.t.set_address("b", f"127.0.0.1:{b.port}")
        a.t.send("b", encode_raft(msg("a", "b")))
        await until(lambda: len(b.frames) == 1)
        await a.close()
        await b.close()

    run(main())


def test_silent_connection_is_closed_without_hello(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tr, "HELLO_TIMEOUT_MS", 100)

    async def main() -> None:
        b = Member("b", free_port(), tmp_path / "b.log")
        await b.listen()
        loop = asyncio.get_running_loop()
        got = await loop.run_in_executor(None, _raw_send, b.port, b"*3\r\n$5\r\nHEL")
        assert got == b""
        assert "no HELLO within 100 ms" in b.log()
        await b.close()

    run(main())


def test_hello_then_bad_raft_bytes_and_spoofed_sender(tmp_path: Path) -> None:
    async def main() -> None:
        b = Member("b", free_port(), tmp_path / "b.log")
        await b.listen()
        loop = asyncio.get_running_loop()
        hello = b"*3\r\n$5\r\nHELLO\r\n$1\r\nx\r\n$11\r\n127.0.0.1:9\r\n"
        bad = hello + b"*2\r\n$4\r\nRAFT\r\n$3\r\n\x93\x01\x02\r\n"
        await loop.run_in_executor(None, _raw_send, b.port, bad)
        spoof = hello + encode_raft(msg("c", "b"))
        await loop.run_in_executor(None, _raw_send, b.port, spoof)
        await until(lambda: b.t.garbage_closes == 2)
        assert "undecodable Raft message" in b.log()
        assert "message from 'c' on x's link" in b.log()
        assert b.frames == []
        await b.close()

    run(main())


def test_handler_exception_closes_link_not_node(tmp_path: Path) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        b = Member("b", free_port(), tmp_path / "b.log")
        calls: list[Frame] = []

        def explode(peer: str, f: Frame) -> None:
            calls.append(f)
            if len(calls) == 1:
                raise RuntimeError("boom")

        b.t.on_frame_cb = explode
        await b.listen()
        a.t.set_address("b", f"127.0.0.1:{b.port}")
        a.t.send("b", encode_raft(msg("a", "b", 1)))
        await until(lambda: "Error handling a frame from peer a" in b.log())
        a.t.send("b", encode_raft(msg("a", "b", 2)))
        await until(lambda: len(calls) >= 2, timeout_s=4)
        await a.close()
        await b.close()

    run(main())


def test_outbound_garbage_closes_and_redials(tmp_path: Path) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        chatty_port = free_port()

        async def chatty(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b"unexpected\r\n")
            await w.drain()
            await r.read()  # until a closes us
            w.close()

        srv = await asyncio.start_server(chatty, "127.0.0.1", chatty_port)
        a.t.set_address("b", f"127.0.0.1:{chatty_port}")
        a.t.send("b", encode_raft(msg("a", "b")))
        await until(lambda: "unexpected 12 bytes on an outbound link" in a.log())
        await until(lambda: a.t.links["b"].connects >= 2, timeout_s=3)
        await a.close()
        srv.close()
        await srv.wait_closed()
        await asyncio.sleep(0.05)

    run(main())


def test_accept_then_close_keeps_backing_off(tmp_path: Path) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        port = free_port()

        async def slam(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.close()  # a peer (or a proxy in refuse mode) that drops every connection

        srv = await asyncio.start_server(slam, "127.0.0.1", port)
        a.t.set_address("b", f"127.0.0.1:{port}")
        a.t.send("b", encode_raft(msg("a", "b")))
        await until(lambda: a.t.links["b"].failures >= 6, timeout_s=5)
        link = a.t.links["b"]
        # Back-off grew (no reconnect storm) and the log says "connected" once at most.
        assert link.connects <= link.failures
        assert a.log().count("connected") <= 1
        await a.close()
        srv.close()
        await srv.wait_closed()
        await asyncio.sleep(0.05)

    run(main())
