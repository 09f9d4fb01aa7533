"""ackdb.keyspace.glob against a real redis-server: KEYS (case-sensitive, over keys with
bytes 0x00/0x80/0xff and the empty key), SCAN MATCH, CONFIG GET (nocase) and PSUBSCRIBE.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import hiredis
import pytest
from resp_wire import Reply, RespConnection, encode_command

from ackdb.keyspace.glob import compile_glob, is_match_all
from conftest import REDIS_SERVER, ServerProcess, free_port, redis_argv

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]


class RawClient(RespConnection):
    """resp_wire's connection with replies as hiredis gives them: errors as ReplyError."""

    def pipeline(self, commands: Sequence[Sequence[bytes | str | int | float]]) -> list[object]:
        argvs = [[a if isinstance(a, bytes) else str(a).encode() for a in c] for c in commands]
        self.sock.sendall(b"".join(map(encode_command, argvs)))
        return [_plain(self.read()) for _ in commands]

    def __call__(self, *args: bytes | str | int | float) -> object:
        return self.pipeline([args])[0]


def _plain(reply: Reply) -> object:
    kind, payload = reply
    if kind == "-":
        assert isinstance(payload, bytes)
        return hiredis.ReplyError(payload.decode())
    return [_plain(r) for r in payload] if isinstance(payload, list) else payload


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    server = ServerProcess(redis_argv(port), port, tmp_path_factory.mktemp("redis-glob"), "redis")
    yield port
    server.stop()


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
