"""Peers speaking nonsense on the replication link change nothing but that link.

A fake primary (a plain socket server in the test) answers the handshake with garbage,
cuts a snapshot in the middle, or sends a broken stream after a good full sync; a fake
replica sends malformed REPLCONF / PSYNC. Proves: the node logs it, stays up, keeps
serving its other clients with its data intact, removes partial snapshot files, and
reconnects with back-off to try again.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.conftest import ServerProcess, wait_until
from tests.e2e.repl_support import Session, client

Start = Callable[..., ServerProcess]


@contextmanager
def fake_primary(script: Callable[[socket.socket, int], None]) -> Iterator[tuple[int, list[int]]]:
    """A TCP server on 127.0.0.1 that runs ``script(conn, n)`` for its n-th connection;
    yields (port, list of connections accepted so far)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(1)
            conn.settimeout(5)
            try:
                script(conn, len(accepted))
            except OSError:
                pass
            finally:
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1], accepted
    finally:
        stop.set()
        srv.close()
        t.join(5)


def _read_until(conn: socket.socket, needle: bytes) -> bytes:
    data = b""
    deadline = time.monotonic() + 5
    while needle not in data and time.monotonic() < deadline:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _handshake(conn: socket.socket) -> None:
    """Play a primary's part up to PSYNC (PING, REPLCONF x2, PSYNC)."""
    _read_until(conn, b"PING")
    conn.sendall(b"+PONG\r\n")
    _read_until(conn, b"capa")
    conn.sendall(b"+OK\r\n+OK\r\n")
    _read_until(conn, b"PSYNC")


def _replica_of(start: Start, port: int) -> ServerProcess:
    node = start("--replicaof", "127.0.0.1", str(port), "--replica-read-only", "no")
    client(node.port).set("mine", "kept")
    return node


def _still_serving(node: ServerProcess) -> None:
    assert node.proc.poll() is None
    c = client(node.port)
    assert c.ping() is True
    assert c.info("replication")["role"] == "slave"


def test_garbage_handshake_reply(start_ackdb: Start) -> None:
    def script(conn: socket.socket, n: int) -> None:
        _read_until(conn, b"PING")
        conn.sendall(b"\x00\xff hello there, not redis at all\r\n" * 3)

    with fake_primary(script) as (port, accepted):
        node = _replica_of(start_ackdb, port)
        wait_until(lambda: len(accepted) >= 3, 15)  # it keeps retrying, with back-off
        _still_serving(node)


def test_snapshot_cut_in_the_middle_leaves_no_file(start_ackdb: Start) -> None:
    def script(conn: socket.socket, n: int) -> None:
        _handshake(conn)
        conn.sendall(b"+FULLRESYNC " + b"a" * 40 + b" 0\r\n$100000\r\n" + b"x" * 5000)
        time.sleep(0.2)  # then the connection drops

    with fake_primary(script) as (port, accepted):
        node = _replica_of(start_ackdb, port)
        wait_until(lambda: len(accepted) >= 2, 15)
        wait_until(lambda: "transfer aborted" in node.log(), 10)
        _still_serving(node)
        assert client(node.port).get("mine") == b"kept"  # nothing was loaded
    # Every attempt was cut: once the fake primary is gone, no partial file is left.
    wait_until(lambda: not list(node.cwd.glob("temp-*-sync-in.ackdb")), 10)
    _still_serving(node)


def test_a_payload_that_is_not_a_snapshot_is_refused(start_ackdb: Start) -> None:
    def script(conn: socket.socket, n: int) -> None:
        _handshake(conn)
        body = b"this is not an ackdb snapshot" * 10
        conn.sendall(b"+FULLRESYNC " + b"b" * 40 + b" 0\r\n$%d\r\n" % len(body) + body)
        time.sleep(1.0)

    with fake_primary(script) as (port, _accepted):
        node = _replica_of(start_ackdb, port)
        wait_until(lambda: "received snapshot is unusable" in node.log(), 15)
        _still_serving(node)
        assert not list(node.cwd.glob("temp-*-sync-in.ackdb"))


def test_a_broken_stream_after_a_good_sync_drops_only_the_link(start_ackdb: Start) -> None:
    """A real ackdb primary's snapshot, then nonsense where the stream should be."""
    real = start_ackdb()
    client(real.port).set("from-primary", "1")

    def script(conn: socket.socket, n: int) -> None:
        # Relay the handshake and full sync from the real primary, then add garbage.
        up = socket.create_connection(("127.0.0.1", real.port))
        up.settimeout(5)
        conn.settimeout(0.5)
        relayed = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for a, b in ((conn, up), (up, conn)):
                a.settimeout(0.05)
                try:
                    data = a.recv(65536)
                except (TimeoutError, OSError):
                    continue
                if not data:
                    return
                b.sendall(data)
                relayed += len(data)
        conn.sendall(b"*2\r\n$3\r\nSET\r\n:not-a-bulk\r\n")
        time.sleep(0.5)
        up.close()

    with fake_primary(script) as (port, _accepted):
        node = start_ackdb("--replicaof", "127.0.0.1", str(port))
        wait_until(lambda: client(node.port).get("from-primary") == b"1", 15)
        wait_until(lambda: "Protocol error from primary" in node.log(), 15)
        _still_serving(node)
        assert client(node.port).get("from-primary") == b"1"


def test_nonsense_from_a_would_be_replica(start_ackdb: Start) -> None:
    primary = start_ackdb()
    pc = client(primary.port)
    pc.set("k", "v")
    with Session(primary.port) as s:
        assert "syntax error" in str(s.call("REPLCONF", "listening-port"))
        assert "Unrecognized REPLCONF option" in str(s.call("REPLCONF", "bogus", "1"))
        # Same texts as redis-server 7.0 (checked side by side).
        assert str(s.call("REPLCONF", "listening-port", "notaport")) == (
            "ERR value is not an integer or out of range"
        )
        assert str(s.call("PSYNC", "?", "notanoffset")) == (
            "ERR value is not an integer or out of range"
        )
    with Session(primary.port) as s:
        s.sock.sendall(b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n")
        assert s.read().startswith(b"FULLRESYNC")
        s.sock.sendall(b"REPLCONF ACK 99999999999999999999999\r\n\x00\x01garbage\r\n")
        time.sleep(0.3)
    assert pc.get("k") == b"v"
    assert primary.proc.poll() is None
    wait_until(lambda: pc.info("replication")["connected_slaves"] == 0, 10)
