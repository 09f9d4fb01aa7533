"""The test tool tests/faultproxy.py: each fault against a local echo server."""

from __future__ import annotations

import gc
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from conftest import wait_until
from faultproxy import FaultProxy

IO_TIMEOUT_S = 2.0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_port() -> Iterator[int]:
    srv = _EchoServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    t.start()
    yield int(srv.server_address[1])
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def proxy(echo_port: int) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", echo_port)) as p:
        yield p


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S)
    s.settimeout(IO_TIMEOUT_S)
    return s


def _roundtrip(s: socket.socket, payload: bytes) -> bytes:
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        s.sendall(b"x")
        return s.recv(16) == b""
    except OSError:
        return True


def test_forwards_both_ways(proxy: FaultProxy) -> None:
    with _connect(proxy.port) as s:
        assert _roundtrip(s, b"hello") == b"hello"
        big = bytes(range(256)) * 4096  # 1 MiB through the pump
        assert _roundtrip(s, big) == big
    assert proxy.stats.accepted == 1
    assert proxy.stats.bytes_up >= len(big) + 5


@pytest.mark.parametrize("direction", ["up", "down", "both"])
def test_blackhole_discards_then_heals(proxy: FaultProxy, direction: str) -> None:
    with _connect(proxy.port) as s:
        proxy.blackhole(direction)
        s.sendall(b"lost")
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(16)
        proxy.heal()
        s.settimeout(IO_TIMEOUT_S)
        if direction == "up":
            # Only the request was lost: the link is still open and works again.
            assert _roundtrip(s, b"again") == b"again"
        else:
            # The echo of "lost" may have been discarded on the way down; what is sent
            # after healing arrives whole.
            assert _roundtrip(s, b"again").endswith(b"again")
    dropped = proxy.stats.dropped_up + proxy.stats.dropped_down
    assert dropped >= 4


def test_drop_all_closes_and_refuses(proxy: FaultProxy) -> None:
    s = _connect(proxy.port)
    assert _roundtrip(s, b"a") == b"a"
    proxy.drop_all()
    assert _closed_by_peer(s)
    s.close()
    with _connect(proxy.port) as s2:
        assert _closed_by_peer(s2)
    assert proxy.stats.refused >= 1
    proxy.heal()
    with _connect(proxy.port) as s3:
        assert _roundtrip(s3, b"back") == b"back"


def test_close_connections_once(proxy: FaultProxy) -> None:
    s = _connect(proxy.port)
    assert _roundtrip(s, b"a") == b"a"
    proxy.close_connections()
    assert _closed_by_peer(s)
    s.close()
    with _connect(proxy.port) as s2:  # new connections are still accepted
        assert _roundtrip(s2, b"b") == b"b"


def test_delay_adds_latency_in_order(proxy: FaultProxy) -> None:
    with _connect(proxy.port) as s:
        proxy.delay(150)
        t0 = time.monotonic()
        for part in (b"one,", b"two,", b"three"):
            s.sendall(part)
        got = b""
        while len(got) < len(b"one,two,three"):
            got += s.recv(64)
        elapsed = time.monotonic() - t0
        assert got == b"one,two,three"
        # Both directions are delayed: at least two delays for the echo.
        assert elapsed >= 0.28
        proxy.heal()
        t0 = time.monotonic()
        assert _roundtrip(s, b"fast") == b"fast"
        assert time.monotonic() - t0 < 0.28


def test_stop_closes_connections(echo_port: int) -> None:
    p = FaultProxy(("127.0.0.1", echo_port)).start()
    s = _connect(p.port)
    assert _roundtrip(s, b"z") == b"z"
    p.stop()
    assert _closed_by_peer(s)
    s.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connects hang: its listener's accept queue is full and never drained
    (Linux drops further SYNs while the queue of ``listen(0)`` holds one connection)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(0)
        port = int(srv.getsockname()[1])
        fillers = []
        for _ in range(2):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        try:
            yield port
        finally:
            for f in fillers:
                f.close()


def test_stop_closes_a_connection_still_connecting_to_the_target(silent_port: int) -> None:
    p = FaultProxy(("127.0.0.1", silent_port)).start()
    s = _connect(p.port)
    wait_until(lambda: p.stats.connecting == 1, IO_TIMEOUT_S)
    p.stop()
    with s:
        try:
            assert s.recv(16) == b""  # closed, not left open for the GC to find
        except ConnectionResetError:
            pass
    gc.collect()  # an unclosed writer or transport would warn here (an error under pytest)
