"""Nonsense from many clients never harms the server or other clients."""

from __future__ import annotations

import random
import socket

import pytest

from conftest import ServerProcess

pytestmark = pytest.mark.e2e

FRAGMENTS = [
    b"*",
    b"$",
    b"\r\n",
    b"*3\r\n",
    b"$3\r\nSET\r\n",
    b"$-1\r\n",
    b"*-1\r\n",
    b":1\r\n",
    b"+OK\r\n",
    b"-ERR\r\n",
    b"*1\r\n*1\r\n",
    b"$99999999999\r\n",
    b"*2147483648\r\n",
    b'"unbalanced',
    b"GET k\r\n",
    b"HSET h f v\r\n",
    b"\x00\xff",
    b"MULTI\r\n",
    b"EXEC\r\n",
    b"SUBSCRIBE c\r\n",
    b"BLPOP l 0.01\r\n",
    b"CLIENT KILL ID 1\r\n",
    b"DEBUG SLEEP 0\r\n",
]


def test_random_bytes_from_many_clients(ackdb: ServerProcess) -> None:
    rng = random.Random(1234)
    control = ackdb.client()
    control.set("survivor", "yes")
    for _ in range(60):
        blob = b"".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.3:
            blob += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
        try:
            with socket.create_connection(("127.0.0.1", ackdb.port), timeout=1) as s:
                s.sendall(blob)
                s.shutdown(socket.SHUT_WR)
                try:
                    while s.recv(65536):
                        pass
                except OSError:
                    pass
        except OSError:
            pass
    assert control.get("survivor") == b"yes"
    assert control.ping()
    log = ackdb.log()
    assert "Unexpected error" not in log, log[-2000:]
    assert "Traceback" not in log, log[-2000:]
