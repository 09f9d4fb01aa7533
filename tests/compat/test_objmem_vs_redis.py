"""OBJECT REFCOUNT / IDLETIME and MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE /
HELP against redis-server: replies equal where ackdb can answer as Redis does, the same
shapes where the numbers are ackdb's own (docs/compat.md lists each difference)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from resp_wire import Reply, RespConnection

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SETUP = [
    [b"SET", b"small", b"5"], [b"SET", b"zero", b"0"], [b"SET", b"edge", b"9999"],
    [b"SET", b"big", b"10000"], [b"SET", b"neg", b"-1"], [b"SET", b"text", b"hello"],
    [b"SET", b"padded", b"007"], [b"RPUSH", b"list", b"1", b"2"], [b"HSET", b"h", b"f", b"v"],
    [b"SADD", b"s", b"a"], [b"ZADD", b"z", b"1", b"a"], [b"XADD", b"x", b"1-1", b"f", b"v"],
]  # fmt: skip
KEYS = [b"small", b"zero", b"edge", b"big", b"neg", b"text", b"padded", b"list", b"h", b"s",
        b"z", b"x", b"missing"]  # fmt: skip


@pytest.fixture(scope="module")
def conns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RespConnection, ...]]:
    with server_pair(tmp_path_factory.mktemp("objmem")) as ports:
        ref, sut = RespConnection(ports[0]), RespConnection(ports[1])
        try:
            yield ref, sut
        finally:
            ref.close()
            sut.close()


def both(conns: tuple[RespConnection, ...], *argv: bytes) -> tuple[Reply, Reply]:
    return conns[0].call(*argv), conns[1].call(*argv)


def _fill(conns: tuple[RespConnection, ...]) -> None:
    for step in [[b"FLUSHALL"], *SETUP]:
        theirs, ours = both(conns, *step)
        assert theirs[0] == ours[0], step


def test_object_refcount_and_idletime(conns: tuple[RespConnection, ...]) -> None:
    _fill(conns)
    for key in KEYS:
        assert (
            both(conns, b"OBJECT", b"REFCOUNT", key)[0]
            == both(conns, b"OBJECT", b"REFCOUNT", key)[1]
        ), key
        theirs, ours = both(conns, b"OBJECT", b"IDLETIME", key)
        if key == b"missing":
            assert theirs == ours
        else:  # Redis's idle seconds; ackdb keeps no access clock and says so
            assert theirs[0] == ":" and ours[0] == "-", (theirs, ours)
    for argv in ([b"OBJECT", b"REFCOUNT"], [b"OBJECT", b"IDLETIME", b"a", b"b"]):
        theirs, ours = both(conns, *argv)
        assert theirs == ours, argv


def test_memory_usage(conns: tuple[RespConnection, ...]) -> None:
    _fill(conns)
    for key in KEYS:
        for extra in ([], [b"SAMPLES", b"0"], [b"SAMPLES", b"2"]):
            theirs, ours = both(conns, b"MEMORY", b"USAGE", key, *extra)
            assert theirs[0] == ours[0], (key, theirs, ours)
            if theirs[0] == ":":
                assert isinstance(ours[1], int) and ours[1] > 0
    for extra in ([b"SAMPLES", b"-1"], [b"SAMPLES", b"x"], [b"SAMPLES"], [b"nope"]):
        assert (
            both(conns, b"MEMORY", b"USAGE", b"h", *extra)[0]
            == both(conns, b"MEMORY", b"USAGE", b"h", *extra)[1]
        ), extra
    theirs, ours = both(conns, b"MEMORY", b"USAGE")
    assert theirs == ours


def _fields(reply: Reply) -> list[tuple[object, str]]:
    assert reply[0] in "*%" and isinstance(reply[1], list), reply
    items = reply[1]
    return [(items[i][1], items[i + 1][0]) for i in range(0, len(items), 2)]


@pytest.mark.parametrize("protocol", [b"2", b"3"])
def test_memory_stats_fields_and_doctor(conns: tuple[RespConnection, ...], protocol: bytes) -> None:
    for conn in conns:
        conn.call(b"HELLO", protocol)
    try:
        both(conns, b"FLUSHALL")
        theirs, ours = both(conns, b"MEMORY", b"DOCTOR")
        assert theirs == ours
        _fill(conns)
        theirs, ours = both(conns, b"MEMORY", b"STATS")
        assert _fields(theirs) == _fields(ours)
        theirs, ours = both(conns, b"MEMORY", b"MALLOC-STATS")
        # jemalloc's report (verbatim text) there; what Redis built on libc malloc says here.
        assert theirs[0] in "$=" and ours == ("$", b"Stats not supported for the current allocator")
        assert both(conns, b"MEMORY", b"PURGE")[1] == ("+", b"OK")
        theirs, ours = both(conns, b"MEMORY", b"HELP")
        assert isinstance(theirs[1], list) and isinstance(ours[1], list)
        assert theirs[1][:-1] == ours[1][:-1]  # 7.0 "Prints this help.", 7.2 "Print"
        for argv in ([b"MEMORY", b"STATS", b"x"], [b"MEMORY", b"nope"], [b"MEMORY"]):
            theirs, ours = both(conns, *argv)
            assert theirs == ours, argv
    finally:
        for conn in conns:
            conn.call(b"HELLO", b"2")
