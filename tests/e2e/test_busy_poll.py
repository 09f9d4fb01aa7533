"""End to end: the busy poll at the end of a pass (server/busypoll.py) catches a client's
next request, shows in INFO, and ``ackdb-busy-poll-us 0`` turns it off."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ServerProcess, ackdb_argv, free_port

pytestmark = pytest.mark.e2e

PING = b"*1\r\n$4\r\nPING\r\n"


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    # A window of 1 ms: a client in a loop sends its next request well within it.
    p = ServerProcess(ackdb_argv(port, "--ackdb-busy-poll-us", "1000"), port, tmp_path, "ackdb")
    yield p
    p.stop()


def _call(s: socket.socket, payload: bytes) -> bytes:
    s.sendall(payload)
    data = s.recv(65536)
    while not data.endswith(b"\r\n"):
        data += s.recv(65536)
    return data


def _stats(s: socket.socket) -> tuple[int, int]:
    s.sendall(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")
    data = b""
    while b"eventloop_busy_poll_hits" not in data or not data.endswith(b"\r\n"):
        data += s.recv(65536)
    fields = dict(line.split(":", 1) for line in data.decode().split("\r\n") if ":" in line[1:])
    return int(fields["eventloop_busy_poll_sum"]), int(fields["eventloop_busy_poll_hits"])


def test_a_loop_of_requests_is_caught_and_zero_turns_it_off(srv: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        assert _call(s, b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$18\r\nackdb-busy-poll-us\r\n") == (
            b"*2\r\n$18\r\nackdb-busy-poll-us\r\n$4\r\n1000\r\n"
        )
        for _ in range(300):
            assert _call(s, PING) == b"+PONG\r\n"
        spent, hits = _stats(s)
        assert hits > 0 and spent > 0
        off = b"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$18\r\nackdb-busy-poll-us\r\n$1\r\n0\r\n"
        assert _call(s, off) == b"+OK\r\n"
        spent, hits = _stats(s)
        for _ in range(300):
            assert _call(s, PING) == b"+PONG\r\n"
        assert _stats(s) == (spent, hits)
        big = b"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$18\r\nackdb-busy-poll-us\r\n$4\r\n1001\r\n"
        assert _call(s, big).startswith(b"-ERR CONFIG SET failed (possibly related to argument")
