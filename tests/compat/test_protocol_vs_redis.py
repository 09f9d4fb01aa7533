"""Request-reader edge cases against a real redis-server: string2ll on header numbers
(``-0``, leading zeros, ``+``) and sdssplitargs on inline requests (VT/FF belong to a word,
a NUL hides the newline). Each case is sent on a fresh connection to both servers; the
bytes that come back within a short wait (or none: the request waits) must be equal."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SETTLE_S = 0.2
CASES = [
    b"*-0\r\n*1\r\n$4\r\nPING\r\n",
    b"*01\r\n$4\r\nPING\r\n",
    b"*+1\r\n$4\r\nPING\r\n",
    b"*1\r\n$-0\r\n\r\n",
    b"*1\r\n$04\r\nPING\r\n",
    b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n",
    b"ECHO a\x0bb\r\n",
    b"ECHO \x0bab\r\n",
    b"ECHO a\x0cb\r\n",
    b'ECHO "a"\x0bb\r\n',
    b"ECHO 'a\x0b' b\r\n",
    b'ECHO "a\\x00b"\r\n',
    b"ECHO a\x00b c\r\n",
    b'ECHO "a\x00b"\r\n',
    b"ECHO a\x00b\r\n" + b"x" * 70000,
    b'ECHO "a"b\r\n',
]


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    workdir: Path = tmp_path_factory.mktemp("protocol")
    with server_pair(workdir) as pair:
        yield pair


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        time.sleep(SETTLE_S)
        s.settimeout(SETTLE_S)
        try:
            return s.recv(65536)
        except TimeoutError:
            return b"<no reply>"


@pytest.mark.parametrize("data", CASES, ids=lambda d: repr(d[:24]))
def test_same_bytes_back(ports: tuple[int, int], data: bytes) -> None:
    ref, sut = ports
    assert _exchange(sut, data) == _exchange(ref, data)
