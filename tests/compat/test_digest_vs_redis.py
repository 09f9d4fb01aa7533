"""DEBUG DIGEST / DEBUG DIGEST-VALUE of ackdb.keyspace.digest against a real redis-server.

Seeded random data of every type (small and large, so every encoding: listpack, intset,
quicklist, hashtable, skiplist), integer-looking strings, binary bytes, odd scores (-0,
+-inf, subnormal, huge) and TTLs, spread over several databases; redis-server computes
the digests, ackdb.keyspace.digest recomputes them from the same Python data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import hiredis
import pytest
from resp_wire import Reply, RespConnection, encode_command

from ackdb.keyspace.digest import dataset_digest, digest_value_hex
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
    server = ServerProcess(redis_argv(port), port, tmp_path_factory.mktemp("redis-digest"), "redis")
    yield port
    server.stop()


@pytest.fixture
def client(redis_port: int) -> Iterator[RawClient]:
    c = RawClient(redis_port)
    c("FLUSHALL")
    yield c
    c("FLUSHALL")
    c.close()


def _element(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.3:  # integer-looking: Redis int-encodes these in strings/intsets/listpacks
        return str(
            rng.choice([rng.randint(-1000, 1000), rng.randint(-(2**63), 2**63 - 1)])
        ).encode()
    if kind < 0.4:  # number-like but not canonical, so never int-encoded
        return rng.choice([b"007", b"-0", b"+1", b"1.0", b" 1", b"9223372036854775808"])
    if kind < 0.7:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 12)))
    return rng.choice([b"a", b"b", b"", b"x" * 70]) + str(rng.randint(0, 99)).encode()


def _score(rng: random.Random) -> float:
    return rng.choice(
        [
            float(rng.randint(-100, 100)),
            rng.uniform(-1e6, 1e6),
            rng.uniform(-1, 1) * 10.0 ** rng.randint(-320, 308),
            0.1,
            -0.0,
            float("inf"),
            float("-inf"),
            5e-324,
            1.7976931348623157e308,
        ]
    )


def _random_value(rng: random.Random, kind: str, big: bool) -> object:
    n = rng.randint(129, 600) if big else rng.randint(1, 8)
    if kind == "string":
        return _element(rng) if not big else bytes(rng.getrandbits(8) for _ in range(n))
    if kind == "list":
        return [_element(rng) for _ in range(n)]
    if kind == "set":
        if rng.random() < 0.5:  # intset, or hashtable once big
            return {str(rng.randint(-(10**6), 10**6)).encode() for _ in range(n)}
        return {_element(rng) for _ in range(n)}
    if kind == "zset":
        return {_element(rng): _score(rng) for _ in range(n)}
    return {_element(rng): _element(rng) for _ in range(n)}


def _write_commands(key: bytes, kind: str, value: object) -> list[tuple[bytes | str, ...]]:
    match kind:
        case "string":
            assert isinstance(value, bytes)
            return [("SET", key, value)]
        case "list":
            assert isinstance(value, list)
            return [("RPUSH", key, *value)]
        case "set":
            assert isinstance(value, set)
            return [("SADD", key, *value)]
        case "zset":
            assert isinstance(value, dict)
            args = [x for m, s in value.items() for x in (repr(s).encode(), m)]
            return [("ZADD", key, *args)]
        case _:
            assert isinstance(value, dict)
            return [("HSET", key, *[x for kv in value.items() for x in kv])]


def _populate(
    client: RawClient, rng: random.Random, db_indexes: list[int], keys_per_db: int
) -> dict[int, dict[bytes, tuple[object, bool]]]:
    dataset: dict[int, dict[bytes, tuple[object, bool]]] = {}
    for db in db_indexes:
        client("SELECT", db)
        entries: dict[bytes, tuple[object, bool]] = {}
        commands: list[tuple[bytes | str, ...]] = []
        for i in range(keys_per_db):
            key = _element(rng) + b":%d" % i
            kind = rng.choice(["string", "list", "set", "zset", "hash"])
            value = _random_value(rng, kind, big=rng.random() < 0.15)
            has_expire = rng.random() < 0.3
            commands += _write_commands(key, kind, value)
            if has_expire:
                commands.append(("EXPIRE", key, "100000"))
            entries[key] = (value, has_expire)
        for reply in client.pipeline(commands):
            assert not isinstance(reply, hiredis.ReplyError), reply
        _model_listpack_negative_zero(client, entries)
        dataset[db] = entries
    return dataset


def _model_listpack_negative_zero(
    client: RawClient, entries: dict[bytes, tuple[object, bool]]
) -> None:
    """Redis 7.0 keeps a -0 score as +0 while a sorted set is listpack-encoded (ZSCORE says
    "0"; once skiplist-encoded it says "-0"), and the digest sees what is stored: ask
    ZSCORE for every -0 member and model that."""
    queries = [
        (key, member)
        for key, (value, _) in entries.items()
        if isinstance(value, dict) and _is_zset(value)
        for member, score in value.items()
        if score == 0.0 and str(score) == "-0.0"
    ]
    stored = client.pipeline([("ZSCORE", key, member) for key, member in queries])
    for (key, member), text in zip(queries, stored, strict=True):
        value = entries[key][0]
        assert isinstance(value, dict) and text in (b"0", b"-0")
        value[member] = float(text)


def _is_zset(value: dict[bytes, object]) -> bool:
    return all(isinstance(s, float) for s in value.values())


def _ours(dataset: dict[int, dict[bytes, tuple[object, bool]]]) -> str:
    return dataset_digest(
        (db, [(k, v, e) for k, (v, e) in entries.items()]) for db, entries in dataset.items()
    )


@pytest.mark.parametrize("seed", range(20))
def test_dataset_and_value_digests_match_redis(client: RawClient, seed: int) -> None:
    rng = random.Random(seed)
    dbs = sorted(rng.sample(range(16), rng.randint(1, 4)))
    dataset = _populate(client, rng, dbs, keys_per_db=rng.randint(1, 40))
    assert client("DEBUG", "DIGEST").decode() == _ours(dataset), f"seed={seed}"
    for db, entries in dataset.items():
        client("SELECT", db)
        keys = list(entries)
        theirs = client("DEBUG", "DIGEST-VALUE", *keys)
        assert isinstance(theirs, list)
        for key, digest in zip(keys, theirs, strict=True):
            value, has_expire = entries[key]
            assert digest.decode() == digest_value_hex(value, has_expire), (seed, db, key)


def test_empty_dataset_and_missing_key(client: RawClient) -> None:
    assert client("DEBUG", "DIGEST") == b"0" * 40 == dataset_digest([]).encode()
    assert client("DEBUG", "DIGEST-VALUE", "missing") == [digest_value_hex(None).encode()]


def test_every_type_alone_in_db_zero(client: RawClient) -> None:
    rng = random.Random(99)
    for kind in ("string", "list", "set", "zset", "hash"):
        for big in (False, True):
            client("FLUSHALL")
            value = _random_value(rng, kind, big)
            for reply in client.pipeline(_write_commands(b"k", kind, value)):
                assert not isinstance(reply, hiredis.ReplyError), reply
            entries = {b"k": (value, False)}
            _model_listpack_negative_zero(client, entries)
            value = entries[b"k"][0]
            expected = dataset_digest([(0, [(b"k", value, False)])])
            assert client("DEBUG", "DIGEST").decode() == expected, (kind, big)
            assert client("DEBUG", "DIGEST-VALUE", "k") == [digest_value_hex(value).encode()]
