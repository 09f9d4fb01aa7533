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


def _pack(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


_MSET20 = _pack(b"MSET", *(b"k%d" % (i // 2) if i % 2 == 0 else b"%d" % i for i in range(40)))
AUTH_CASES = [
    # Pipelined behind AUTH, a command past the unauthenticated limits runs (Redis parses
    # and runs one command at a time, so AUTH has run before the next is parsed).
    _pack(b"AUTH", b"pw") + _MSET20 + _pack(b"GET", b"k3"),
    _pack(b"AUTH", b"pw") + _pack(b"SET", b"big", b"x" * 20000) + _pack(b"STRLEN", b"big"),
    # Without a good AUTH the limits hold.
    _pack(b"AUTH", b"bad") + _MSET20,
    _MSET20,
]


@pytest.fixture(scope="module")
def auth_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    workdir: Path = tmp_path_factory.mktemp("protocol-auth")
    with server_pair(workdir, "--requirepass", "pw") as pair:
        yield pair


@pytest.mark.parametrize("data", AUTH_CASES, ids=lambda d: repr(d[:40]))
def test_same_bytes_back_with_a_password(auth_ports: tuple[int, int], data: bytes) -> None:
    ref, sut = auth_ports
    assert _exchange(sut, data) == _exchange(ref, data)
