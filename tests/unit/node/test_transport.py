"""Peer links (ackdb.node.transport, ackdb.node.inbound) over real loopback sockets, in
one event loop: frames, reconnects, limits, garbage, and the handshake of peerauth.py
as the shells carry it out (the handshake's decisions have their own tests in
test_peerauth.py)."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from ackdb.consensus import Message, MsgType
from ackdb.node import peerauth
from ackdb.node import transport as tr
from ackdb.node.peerauth import Acceptor, Authenticated, Dialer, Send, peer_key
from ackdb.node.peerframes import Forward, Frame, RaftFrame, encode_forward, encode_raft
from ackdb.server.log import Log
from conftest import free_port

TEST_TIMEOUT_S = 10.0
KEY = peer_key(b"s" * 32)
OTHER_KEY = peer_key(b"o" * 32)


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

    def __init__(self, node_id: str, port: int, log_path: Path, key: bytes = KEY) -> None:
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
            key,
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


def test_frames_flow_and_the_handshake_teaches_the_address(tmp_path: Path) -> None:
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
        # b never had a's address: the handshake's HELLO taught it, so b can answer.
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


def _raw_peer(port: int, node_id: str, expected: str, key: bytes, frames: bytes) -> bytes:
    """A blocking peer that dials ``port`` as ``node_id`` (peerauth's Dialer), sends
    ``frames`` once linked (or at once if refused) and returns what it read after."""
    d = Dialer(node_id, "127.0.0.1:9", expected, key, lambda: b"n" * peerauth.NONCE_BYTES)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(d.start())
        while not d.done:
            data = s.recv(4096)
            if not data:
                return b""
            for a in d.receive_data(data):
                if isinstance(a, Send):
                    s.sendall(a.data)
        s.sendall(frames)
        try:
            return s.recv(100)
        except OSError:
            return b""


HELLO = b"*4\r\n$5\r\nHELLO\r\n$1\r\nx\r\n$11\r\n127.0.0.1:9\r\n$32\r\n" + b"n" * 32 + b"\r\n"


@pytest.mark.parametrize(
    "garbage, why",
    [
        (b"GET / HTTP/1.1\r\n\r\n", "not a peer"),
        (b"\x00\xff" * 100, "not a peer"),
        (b"*1\r\n$4\r\nPING\r\n", "expected HELLO"),
        (b"*3\r\n$5\r\nHELLO\r\n$1\r\nx\r\n$11\r\n127.0.0.1:9\r\n", "expected HELLO"),
        (HELLO.replace(b"127.0.0.1:9", b"127.0.0.1-9"), "bad HELLO"),
        (encode_raft(msg("a", "b")), "expected HELLO, got b'RAFT'"),
        (HELLO + encode_raft(msg("x", "b")), "expected PROOF, got b'RAFT'"),
        (b"*abc\r\n", "protocol error"),
        (b"*8\r\n" + (b"$130\r\n" + b"x" * 130 + b"\r\n") * 8, "handshake longer than 1024"),
        (HELLO + b"*2\r\n$5\r\nPROOF\r\n$3\r\nxxx\r\n", "wrong cluster secret"),
    ],
)
def test_unauthenticated_connection_is_refused(tmp_path: Path, garbage: bytes, why: str) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        b = Member("b", free_port(), tmp_path / "b.log")
        await b.listen()
        loop = asyncio.get_running_loop()
        got = await loop.run_in_executor(None, _raw_send, b.port, garbage)
        assert not got.startswith(b"*2\r\n$5\r\nPROOF")  # b never proves to a non-member
        await until(lambda: why in b.log())
        assert "Refused peer connection from 127.0.0.1:" in b.log()
        assert b.t.auth_refused == 1 and b.frames == [] and "x" not in b.t.addresses
        # b still serves its real peers.
        a.t.set_address("b", f"127.0.0.1:{b.port}")
        a.t.send("b", encode_raft(msg("a", "b")))
        await until(lambda: len(b.frames) == 1)
        await a.close()
        await b.close()

    run(main())


def test_wrong_secret_both_ways(tmp_path: Path) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        b = Member("b", free_port(), tmp_path / "b.log", key=OTHER_KEY)
        await a.listen()
        await b.listen()
        a.t.set_address("b", f"127.0.0.1:{b.port}")
        b.t.set_address("a", f"127.0.0.1:{a.port}")
        a.t.send("b", encode_raft(msg("a", "b")))
        b.t.send("a", encode_raft(msg("b", "a")))
        await until(lambda: a.t.auth_refused >= 1 and b.t.auth_refused >= 1)
        await until(lambda: a.t.auth_failed >= 1 and b.t.auth_failed >= 1)
        assert a.frames == [] and b.frames == []
        assert not a.t.connected("b") and not b.t.connected("a")
        assert "(claims to be a): wrong cluster secret" in b.log()
        assert "does not accept this node's cluster secret" in a.log()
        # The learnt address came from no one: b knows a only from set_address.
        assert "b" in a.t.links and a.t.links["b"].state is not tr.LinkState.CONNECTED
        await a.close()
        await b.close()

    run(main())


def test_dialler_refuses_another_member_at_the_address(tmp_path: Path) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        c = Member("c", free_port(), tmp_path / "c.log")
        await c.listen()
        a.t.set_address("b", f"127.0.0.1:{c.port}")  # b moved away; c took its port
        a.t.send("b", encode_raft(msg("a", "b")))
        await until(lambda: "'c' answered where b was expected" in a.log())
        assert c.frames == [] and a.t.auth_failed >= 1
        await a.close()
        await c.close()

    run(main())


def test_refusals_are_counted_and_their_log_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tr, "REFUSAL_LOG_MAX_LINES", 3)

    async def main() -> None:
        b = Member("b", free_port(), tmp_path / "b.log")
        await b.listen()
        loop = asyncio.get_running_loop()
        for _ in range(8):
            await loop.run_in_executor(None, _raw_send, b.port, b"GET /\r\n")
        await until(lambda: b.t.auth_refused == 8)
        assert b.log().count("Refused peer connection") == 3
        assert b.t.refusal_log.suppressed == 5
        await b.close()

    run(main())


def test_silent_connection_is_closed_without_handshake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peerauth, "HANDSHAKE_TIMEOUT_MS", 100)

    async def main() -> None:
        b = Member("b", free_port(), tmp_path / "b.log")
        await b.listen()
        loop = asyncio.get_running_loop()
        got = await loop.run_in_executor(None, _raw_send, b.port, b"*4\r\n$5\r\nHEL")
        assert got == b""
        assert "no handshake in time (stuck in hello-wait), 100 ms" in b.log()
        # A dialler whose peer never answers gives up as well.
        a = Member("a", free_port(), tmp_path / "a.log")
        mute_port = free_port()

        async def mute(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await r.read()
            w.close()

        srv = await asyncio.start_server(mute, "127.0.0.1", mute_port)
        a.t.set_address("m", f"127.0.0.1:{mute_port}")
        a.t.send("m", encode_raft(msg("a", "m")))
        await until(lambda: "no handshake in time (stuck in challenge-wait)" in a.log())
        await a.close()
        await b.close()
        srv.close()
        await srv.wait_closed()

    run(main())


def test_linked_peer_with_bad_raft_bytes_and_spoofed_sender(tmp_path: Path) -> None:
    async def main() -> None:
        b = Member("b", free_port(), tmp_path / "b.log")
        await b.listen()
        loop = asyncio.get_running_loop()
        bad = b"*2\r\n$4\r\nRAFT\r\n$3\r\n\x93\x01\x02\r\n"
        await loop.run_in_executor(None, _raw_peer, b.port, "x", "b", KEY, bad)
        spoof = encode_raft(msg("c", "b"))
        await loop.run_in_executor(None, _raw_peer, b.port, "x", "b", KEY, spoof)
        await until(lambda: b.t.garbage_closes == 2)
        assert "undecodable Raft message" in b.log()
        assert "message from 'c' on x's link" in b.log()
        assert b.frames == [] and b.t.auth_refused == 0
        # The same peer with another cluster's key never gets a frame in.
        await loop.run_in_executor(None, _raw_peer, b.port, "x", "b", OTHER_KEY, bad)
        await until(lambda: b.t.auth_refused == 1)
        assert b.t.garbage_closes == 2
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


async def _acceptor_server(port: int, after: bytes) -> asyncio.AbstractServer:
    """A member's listener that does the handshake as "b" and then writes ``after``."""

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        acc = Acceptor("b", KEY, lambda: b"m" * peerauth.NONCE_BYTES)
        while not acc.done:
            data = await r.read(4096)
            if not data:
                break
            for act in acc.receive_data(data):
                if isinstance(act, Send):
                    w.write(act.data)
                elif isinstance(act, Authenticated):
                    await asyncio.sleep(0.05)  # after the dialler took the handshake's end
                    w.write(after)
        await r.read()  # until the dialler closes us
        w.close()

    return await asyncio.start_server(serve, "127.0.0.1", port)


def test_outbound_garbage_closes_and_redials(tmp_path: Path) -> None:
    async def main() -> None:
        a = Member("a", free_port(), tmp_path / "a.log")
        chatty_port = free_port()
        srv = await _acceptor_server(chatty_port, b"unexpected\r\n")
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
        assert "closed the link before its challenge" in a.log()
        await a.close()
        srv.close()
        await srv.wait_closed()
        await asyncio.sleep(0.05)

    run(main())
