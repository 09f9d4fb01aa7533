"""ackdb.keyspace.numbers against a real redis-server: INCRBYFLOAT / HINCRBYFLOAT text,
string2ll (INCRBY), string2d (ZADD) and 7.0's score replies (ZSCORE), on seeded random input
biased towards the edges: long-double overflow and subnormals, hex floats, ties, garbage.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator, Sequence

import hiredis
import pytest
from resp_wire import Reply, RespConnection, encode_command

from ackdb.keyspace import numbers
from ackdb.keyspace.numbers import (
    FloatIncrError,
    format_double_70,
    hincr_float_text,
    incr_float_text,
    parse_float,
    parse_int,
)
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
    server = ServerProcess(
        redis_argv(port), port, tmp_path_factory.mktemp("redis-numbers"), "redis"
    )
    yield port
    server.stop()


@pytest.fixture
def client(redis_port: int) -> Iterator[RawClient]:
    c = RawClient(redis_port)
    c("FLUSHALL")
    yield c
    c("FLUSHALL")
    c.close()


GARBAGE_BYTES = b"0123456789.eE+-xXpPinfINFa _\x00"
EDGES = [
    b"inf",
    b"-inf",
    b"+Infinity",
    b"nan",
    b"1e4932",
    b"1.18973149535723176502e+4932",
    b"1.18973149535723176508e+4932",
    b"-1e4933",
    b"3.6e-4951",
    b"1.9e-4951",
    b"1.8e-4951",
    b"0e999999999999",
    b"1e-99999999999999999999999",
    b"0x1p-16445",
    b"0x1p-16446",
    b"0x1.8p-16446",
    b"3.814697265625e-06",
    b"-0",
    b"-0.0",
]


def _number_text(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.2:
        return str(round(rng.uniform(-1000, 1000), rng.randint(0, 6))).encode()
    if pick < 0.35:
        exponent = rng.randint(-30, 30)
        return b"%.*e" % (rng.randint(0, 25), rng.uniform(-10, 10) * 10.0**exponent)
    if pick < 0.45:
        return str(rng.randint(-(2**70), 2**70)).encode()
    if pick < 0.55:
        return b"%de%d" % (rng.randint(-99, 99), rng.randint(-5000, 5000))
    if pick < 0.65:
        hexes = (rng.getrandbits(40), rng.getrandbits(30), rng.randint(-16500, 16400))
        return b"0x%x.%xp%d" % hexes
    if pick < 0.75:
        return bytes(rng.choice(GARBAGE_BYTES) for _ in range(rng.randint(0, 8)))
    if pick < 0.85:
        return b"%.20f" % rng.uniform(-1, 1)
    if pick < 0.9:
        return rng.choice(EDGES)
    whole, frac = rng.randint(1, 10 ** rng.randint(1, 40)), rng.randint(0, 10 ** rng.randint(1, 40))
    return b"%d.%d" % (whole, frac)


def _incr_with(backend: object, current: bytes | None, incr: bytes) -> bytes:
    return numbers._incr_float(current, incr, backend)  # type: ignore[arg-type]


def _reply_text(reply: object) -> bytes:
    if isinstance(reply, hiredis.ReplyError):
        return str(reply).encode()
    assert isinstance(reply, bytes)
    return reply


def _ours(fn: Callable[[bytes | None, bytes], bytes], current: bytes | None, incr: bytes) -> bytes:
    try:
        return fn(current, incr)
    except FloatIncrError as error:
        return str(error).encode()


@pytest.mark.parametrize("seed", range(4))
def test_incrbyfloat_and_hincrbyfloat_match_redis(client: RawClient, seed: int) -> None:
    rng = random.Random(seed)
    cases = [(_number_text(rng), _number_text(rng)) for _ in range(1500)]
    commands: list[tuple[bytes | str, ...]] = []
    for current, incr in cases:
        commands += [("SET", "k", current), ("INCRBYFLOAT", "k", incr)]
        commands += [("DEL", "h"), ("HSET", "h", "f", current), ("HINCRBYFLOAT", "h", "f", incr)]
    replies = client.pipeline(commands)
    successes = 0
    for i, (current, incr) in enumerate(cases):
        theirs = _reply_text(replies[5 * i + 1]), _reply_text(replies[5 * i + 4])
        ours = _ours(incr_float_text, current, incr), _ours(hincr_float_text, current, incr)
        assert ours == theirs, f"seed={seed} current={current!r} incr={incr!r}"
        successes += not theirs[0].startswith(b"ERR")
    assert successes > len(cases) // 4  # the sample must not be mostly errors


@pytest.mark.parametrize("seed", range(2))
def test_missing_key_and_field(client: RawClient, seed: int) -> None:
    rng = random.Random(100 + seed)
    incrs = [_number_text(rng) for _ in range(500)]
    commands: list[tuple[bytes | str, ...]] = []
    for incr in incrs:
        commands += [
            ("DEL", "k", "h"),
            ("INCRBYFLOAT", "k", incr),
            ("HINCRBYFLOAT", "h", "f", incr),
        ]
    replies = client.pipeline(commands)
    for i, incr in enumerate(incrs):
        assert _ours(incr_float_text, None, incr) == _reply_text(replies[3 * i + 1]), incr
        assert _ours(hincr_float_text, None, incr) == _reply_text(replies[3 * i + 2]), incr


@pytest.mark.skipif(numbers._probe_ctypes() is None, reason="C long double is not x87 here")
def test_both_long_double_backends_agree_with_redis(client: RawClient) -> None:
    rng = random.Random(7)
    backend = numbers._probe_ctypes()
    cases = [(_number_text(rng), _number_text(rng)) for _ in range(1000)]
    commands = [c for cur, inc in cases for c in (("SET", "k", cur), ("INCRBYFLOAT", "k", inc))]
    replies = client.pipeline(commands)
    for i, (current, incr) in enumerate(cases):
        theirs = _reply_text(replies[2 * i + 1])
        for be in (numbers._PY_BACKEND, backend):
            assert _ours(functools.partial(_incr_with, be), current, incr) == theirs, be


def test_parse_float_and_format_double_70_match_zadd_and_zscore(client: RawClient) -> None:
    rng = random.Random(11)
    texts = [_number_text(rng) for _ in range(3000)]
    texts += [
        repr(rng.uniform(-1, 1) * 10.0 ** rng.randint(-320, 308)).encode() for _ in range(500)
    ]
    commands = [
        c for t in texts for c in (("DEL", "z"), ("ZADD", "z", t, "m"), ("ZSCORE", "z", "m"))
    ]
    replies = client.pipeline(commands)
    for i, text in enumerate(texts):
        value = parse_float(text)
        added, score = replies[3 * i + 1], replies[3 * i + 2]
        assert (value is None) == isinstance(added, hiredis.ReplyError), text
        if value is not None and value != 0:  # a listpack zset stores -0 as 0: see test_digest
            assert format_double_70(value) == score, text


def test_parse_int_matches_incrby(client: RawClient) -> None:
    rng = random.Random(13)
    texts = [str(rng.randint(-(2**64), 2**64)).encode() for _ in range(500)]
    texts += [
        bytes(rng.choice(b"0123456789- +\x00") for _ in range(rng.randint(0, 21)))
        for _ in range(2000)
    ]
    commands = [c for t in texts for c in (("SET", "i", t), ("INCRBY", "i", "0"))]
    replies = client.pipeline(commands)
    for i, text in enumerate(texts):
        reply = replies[2 * i + 1]
        expected = None if isinstance(reply, hiredis.ReplyError) else reply
        assert parse_int(text) == expected, text
