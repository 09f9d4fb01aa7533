"""ackdb.keyspace.glob against a real redis-server: KEYS (case-sensitive, over keys with
bytes 0x00/0x80/0xff and the empty key), SCAN MATCH, CONFIG GET (nocase) and PSUBSCRIBE.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import hiredis
import pytest

from ackdb.keyspace.glob import compile_glob, is_match_all

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not on PATH"),
]

STARTUP_TIMEOUT_S = 10.0
REPLY_TIMEOUT_S = 30.0


class RawClient:
    """RESP2 over a socket with hiredis: replies exactly as sent, no client-side parsing."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT_S)
        self._reader = hiredis.Reader()

    def pipeline(self, commands: Sequence[Sequence[bytes | str | int | float]]) -> list[object]:
        out = bytearray()
        for command in commands:
            args = [a if isinstance(a, bytes) else str(a).encode() for a in command]
            out += b"*%d\r\n" % len(args)
            for arg in args:
                out += b"$%d\r\n%s\r\n" % (len(arg), arg)
        self._sock.sendall(out)
        replies: list[object] = []
        while len(replies) < len(commands):
            reply = self._reader.gets()
            if reply is False:
                chunk = self._sock.recv(1 << 20)
                assert chunk, "redis-server closed the connection"
                self._reader.feed(chunk)
            else:
                replies.append(reply)
        return replies

    def __call__(self, *args: bytes | str | int | float) -> object:
        return self.pipeline([args])[0]

    def close(self) -> None:
        self._sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    workdir: Path = tmp_path_factory.mktemp("redis-glob")
    port = _free_port()
    # DEBUG is disabled by default since Redis 7.0.
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--enable-debug-command", "yes", "--daemonize", "no"]
    args += ["--dir", str(workdir)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                client = RawClient(port)
                if client("PING") == b"PONG":
                    client.close()
                    break
            except OSError:
                pass
            assert proc.poll() is None, "redis-server exited during startup"
            assert time.monotonic() < deadline, "redis-server did not answer PING"
            time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STARTUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def client(redis_port: int) -> Iterator[RawClient]:
    c = RawClient(redis_port)
    c("FLUSHALL")
    yield c
    c("FLUSHALL")
    c.close()


PATTERN_BYTES = b"ab*?[]^-\\zA\xff\x80\x00"


def _keys_matching(keys: set[bytes], pattern: bytes, nocase: bool = False) -> set[bytes]:
    if is_match_all(pattern):
        return set(keys)
    predicate = compile_glob(pattern, nocase)
    return {k for k in keys if predicate(k)}


@pytest.mark.parametrize("seed", range(5))
def test_keys_and_scan_match(client: RawClient, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        client("FLUSHALL")
        keys = {b""} | {
            bytes(rng.choice(PATTERN_BYTES) for _ in range(rng.randint(0, 5))) for _ in range(40)
        }
        assert client.pipeline([("SET", k, "1") for k in keys]) == [b"OK"] * len(keys)
        patterns = [
            bytes(rng.choice(PATTERN_BYTES) for _ in range(rng.randint(0, 6))) for _ in range(30)
        ]
        replies = client.pipeline([("KEYS", p) for p in patterns])
        for pattern, reply in zip(patterns, replies, strict=True):
            assert isinstance(reply, list)
            assert set(reply) == _keys_matching(keys, pattern), (seed, pattern)
        for pattern in patterns[:5] + [b"*", b"**"]:
            reply = client("SCAN", "0", "MATCH", pattern, "COUNT", "1000")
            assert isinstance(reply, list) and reply[0] == b"0"
            assert set(reply[1]) == _keys_matching(keys, pattern), (seed, pattern)


def test_config_get_is_nocase(client: RawClient) -> None:
    everything = client("CONFIG", "GET", "*")
    assert isinstance(everything, list)
    names = set(everything[0::2])
    rng = random.Random(3)
    alphabet = b"maxyMAXY*?[]^-\\_z"
    patterns = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 7))) for _ in range(2000)]
    patterns += [b"[Z-a]*", b"[A-z]axmemory", b"MAXMEMORY", b"[\\M]axmemory", b"[\\m]axmemory"]
    replies = client.pipeline([("CONFIG", "GET", p) for p in patterns])
    for pattern, reply in zip(patterns, replies, strict=True):
        assert isinstance(reply, list)
        # A pattern without glob characters is looked up as typed and echoed as typed.
        got = {name.lower() for name in reply[0::2]}
        expected = _keys_matching(names, pattern, nocase=True)
        # CONFIG GET also matches aliases (slaveof, ...) and answers with the real name.
        assert got - expected <= {n for n in names if b"replica" in n or b"master" in n}
        assert expected <= got, pattern


def test_psubscribe_star_misses_the_empty_channel(redis_port: int) -> None:
    subscriber, publisher = RawClient(redis_port), RawClient(redis_port)
    try:
        assert subscriber("PSUBSCRIBE", "*") == [b"psubscribe", b"*", 1]
        assert publisher("PUBLISH", "", "x") == 0
        assert publisher("PUBLISH", "a", "y") == 1
        # The first thing the subscriber receives is the message to "a" (PING's reply
        # follows it): nothing came for "".
        assert subscriber("PING") == [b"pmessage", b"*", b"a", b"y"]
        assert not compile_glob(b"*")(b"") and compile_glob(b"*")(b"a")
    finally:
        subscriber.close()
        publisher.close()
