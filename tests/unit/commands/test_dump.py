"""DUMP / RESTORE: the payload round trip for every type, its refusals, and the effects
RESTORE propagates (cluster.c restoreCommand: a relative TTL made absolute with ABSTTL
appended; a replaced key whose TTL has passed is a DEL)."""

from __future__ import annotations

import pytest

from ackdb.keyspace import dumpfmt
from conftest import Harness

NOW = 1_700_000_000_000


def _fixed(h: Harness) -> None:
    h.server.now_ms = lambda: NOW  # type: ignore[method-assign]


def _payload(reply: bytes) -> bytes:
    head, _, rest = reply.partition(b"\r\n")
    assert head.startswith(b"$")
    return rest[: int(head[1:])]


@pytest.mark.parametrize(
    "setup",
    [
        ["SET", "k", "v"],
        ["HSET", "k", "f", "1", "g", "2"],
        ["RPUSH", "k", "a", "b", "a"],
        ["SADD", "k", "x", "1", "y"],
        ["ZADD", "k", "1.5", "a", "-inf", "b"],
        ["XADD", "k", "1-1", "f", "v"],
    ],
)
def test_round_trip_keeps_the_value(setup: list[str]) -> None:
    h = Harness()
    c = h.client()
    h.run(c, *setup)
    if setup[0] == "XADD":
        h.run(c, "XGROUP", "CREATE", "k", "g", "0")
        h.run(c, "XREADGROUP", "GROUP", "g", "alice", "STREAMS", "k", ">")
    before = h.run(c, "DEBUG", "DIGEST-VALUE", "k")
    payload = _payload(h.run(c, "DUMP", "k"))
    assert h.run(c, "RESTORE", "k", "0", payload) == b"-BUSYKEY Target key name already exists.\r\n"
    assert h.run(c, "RESTORE", "k2", "0", payload) == b"+OK\r\n"
    assert h.run(c, "DEBUG", "DIGEST-VALUE", "k2") == before
    assert h.run(c, "RESTORE", "k", "0", payload, "REPLACE") == b"+OK\r\n"


def test_foreign_and_corrupt_payloads_are_refused() -> None:
    h = Harness()
    c = h.client()
    h.run(c, "SET", "k", "hello")
    good = _payload(h.run(c, "DUMP", "k"))
    redis_payload = b"\x00\x05hello\n\x00\xb3\x80\x8e\xba1\xb2C\xbb"
    wrong = b"-ERR DUMP payload version or checksum are wrong\r\n"
    for bad in (redis_payload, good[:-1] + bytes([good[-1] ^ 1]), good[1:], b"", b"x"):
        assert h.run(c, "RESTORE", "n", "0", bad) == wrong
    body = b"\x92\x02\x90"  # [T_LIST, []]: an empty list, with a good footer
    head = body + b"\x01\x00AK"
    import zlib

    empty = head + zlib.crc32(head).to_bytes(4, "little")
    assert h.run(c, "RESTORE", "n", "0", empty) == b"-ERR Bad data format\r\n"
    with pytest.raises(dumpfmt.BadData):
        dumpfmt.restore(empty)


def test_relative_ttl_propagates_as_absttl() -> None:
    h = Harness()
    _fixed(h)
    c = h.client()
    h.run(c, "SET", "k", "v")
    payload = _payload(h.run(c, "DUMP", "k"))
    h.run(c, "RESTORE", "a", "5000", payload, "IDLETIME", "3")
    h.run(c, "RESTORE", "b", str(NOW + 10), payload, "ABSTTL")
    h.run(c, "RESTORE", "k", str(NOW - 10), payload, "ABSTTL", "REPLACE")
    h.run(c, "RESTORE", "gone", str(NOW - 10), payload, "ABSTTL")
    assert h.effects[1:] == [
        (0, [b"RESTORE", b"a", b"%d" % (NOW + 5000), payload, b"IDLETIME", b"3", b"ABSTTL"]),
        (0, [b"RESTORE", b"b", b"%d" % (NOW + 10), payload, b"ABSTTL"]),
        (0, [b"DEL", b"k"]),
    ]
    assert h.run(c, "PTTL", "a") == b":5000\r\n"
    assert h.run(c, "EXISTS", "k", "gone") == b":0\r\n"
