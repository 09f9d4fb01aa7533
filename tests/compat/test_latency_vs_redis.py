"""LATENCY (with latency-monitor-threshold), MODULE and LOLWUT against redis-server:
replies equal where they can be, the same shapes where the numbers are timings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from resp_wire import Reply, RespConnection

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]


@pytest.fixture(scope="module")
def conns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RespConnection, ...]]:
    with server_pair(tmp_path_factory.mktemp("latency")) as ports:
        ref, sut = RespConnection(ports[0]), RespConnection(ports[1])
        try:
            yield ref, sut
        finally:
            ref.close()
            sut.close()


def both(conns: tuple[RespConnection, ...], *argv: bytes) -> tuple[Reply, Reply]:
    return conns[0].call(*argv), conns[1].call(*argv)


def same(conns: tuple[RespConnection, ...], *argv: bytes) -> Reply:
    theirs, ours = both(conns, *argv)
    assert theirs == ours, (argv, theirs, ours)
    return ours


def test_latency_monitor(conns: tuple[RespConnection, ...]) -> None:
    same(conns, b"CONFIG", b"SET", b"latency-monitor-threshold", b"0")
    same(conns, b"LATENCY", b"RESET")
    same(conns, b"LATENCY", b"DOCTOR")  # monitoring disabled
    same(conns, b"LATENCY", b"LATEST")
    same(conns, b"CONFIG", b"SET", b"latency-monitor-threshold", b"20")
    same(conns, b"LATENCY", b"DOCTOR")  # no spike yet
    same(conns, b"DEBUG", b"SLEEP", b"0")
    same(conns, b"LATENCY", b"LATEST")  # below the threshold: nothing
    same(conns, b"DEBUG", b"SLEEP", b"0.05")
    theirs, ours = both(conns, b"LATENCY", b"LATEST")
    for reply in (theirs, ours):
        assert reply[0] == "*" and isinstance(reply[1], list) and len(reply[1]) == 1, reply
        row = reply[1][0][1]
        assert isinstance(row, list) and row[0] == ("$", b"command"), row
        assert isinstance(row[2][1], int) and row[2][1] >= 50 and row[3][1] == row[2][1], row
    theirs, ours = both(conns, b"LATENCY", b"HISTORY", b"command")
    assert theirs[0] == ours[0] == "*" and len(theirs[1]) == len(ours[1]) == 1  # type: ignore[arg-type]
    same(conns, b"LATENCY", b"HISTORY", b"nope")
    theirs, ours = both(conns, b"LATENCY", b"DOCTOR")
    assert theirs[1] and ours[1] and ours[1].startswith(b"Dave, I have observed latency spikes")  # type: ignore[union-attr]
    same(conns, b"LATENCY", b"RESET", b"command", b"nope", b"command")
    same(conns, b"LATENCY", b"RESET")
    same(conns, b"LATENCY", b"LATEST")
    for argv in ([b"LATENCY", b"HISTORY"], [b"LATENCY"], [b"LATENCY", b"nope"]):
        same(conns, *argv)
    theirs, ours = both(conns, b"LATENCY", b"HELP")
    assert isinstance(theirs[1], list) and isinstance(ours[1], list)
    assert set(ours[1]) <= set(theirs[1]) | {("+", b"    Print this help.")}
    same(conns, b"CONFIG", b"SET", b"latency-monitor-threshold", b"0")


def test_module_and_lolwut(conns: tuple[RespConnection, ...]) -> None:
    same(conns, b"MODULE", b"LIST")
    same(conns, b"MODULE", b"LOAD", b"/nonexistent.so")
    same(conns, b"MODULE", b"LOADEX", b"/nonexistent.so")
    same(conns, b"MODULE", b"UNLOAD", b"nope")
    same(conns, b"MODULE", b"LOAD")
    theirs, ours = both(conns, b"MODULE", b"HELP")
    assert theirs[1][:-1] == ours[1][:-1]  # type: ignore[index]
    for argv in ([b"LOLWUT"], [b"LOLWUT", b"VERSION", b"7"], [b"LOLWUT", b"whatever"]):
        theirs, ours = both(conns, *argv)
        assert theirs[0] == ours[0] == "$", (theirs, ours)
        assert isinstance(ours[1], bytes) and ours[1].startswith(b"Redis ver. ")
    same(conns, b"LOLWUT", b"VERSION", b"x")
