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


def _histograms(reply: Reply) -> dict[bytes, tuple[int, list[tuple[int, int]]]]:
    """LATENCY HISTOGRAM's RESP2 reply as {command: (calls, [(usec, cumulative)])}."""
    assert reply[0] == "*" and isinstance(reply[1], list), reply
    flat = reply[1]
    out: dict[bytes, tuple[int, list[tuple[int, int]]]] = {}
    for i in range(0, len(flat), 2):
        name, body = flat[i][1], flat[i + 1][1]
        assert isinstance(name, bytes) and isinstance(body, list), reply
        assert [body[0][1], body[2][1]] == [b"calls", b"histogram_usec"], body
        steps = [x[1] for x in body[3][1]]
        pairs = [(int(steps[j]), int(steps[j + 1])) for j in range(0, len(steps), 2)]  # type: ignore[call-overload]
        out[name] = (int(body[1][1]), pairs)
    return out


# The keys Redis prints for its power-of-two steps (us): 1024 ns * 2^k at two digits.
_STEP_KEYS = {((1 << (10 + k)) + (1 << (k + 3)) - 1) // 1000 for k in range(40)}


def _check_steps(h: dict[bytes, tuple[int, list[tuple[int, int]]]]) -> None:
    for name, (calls, pairs) in h.items():
        assert pairs and pairs[-1][1] == calls, (name, pairs)
        assert all(us in _STEP_KEYS for us, _ in pairs), (name, pairs)
        assert [n for _, n in pairs] == sorted({n for _, n in pairs}), (name, pairs)


def test_latency_histogram(conns: tuple[RespConnection, ...]) -> None:
    same(conns, b"CONFIG", b"SET", b"latency-tracking", b"yes")
    same(conns, b"CONFIG", b"RESETSTAT")
    same(conns, b"SET", b"lh", b"v")
    for _ in range(3):
        same(conns, b"GET", b"lh")
    same(conns, b"CONFIG", b"GET", b"port-nope")
    # Named commands: in the order given, a container's subcommands with data, unknown
    # names and commands without data left out, duplicates repeated.
    argv = [b"LATENCY", b"HISTOGRAM", b"get", b"nosuch", b"CONFIG", b"SET", b"set", b"hset"]
    theirs, ours = both(conns, *argv)
    ht, ho = _histograms(theirs), _histograms(ours)
    # (a container's subcommands come in the server's own order)
    for h in (ht, ho):
        names = list(h)
        assert names[0] == b"get" and names[-1] == b"set", names
        assert set(names[1:-1]) == {b"config|get", b"config|resetstat"}, names
        assert {k: v[0] for k, v in h.items()} == dict.fromkeys(names, 1) | {b"get": 3}
    _check_steps(ht)
    _check_steps(ho)
    theirs, ours = both(conns, b"LATENCY", b"HISTOGRAM", b"config|get")
    assert list(_histograms(theirs)) == list(_histograms(ours)) == [b"config|get"]
    # Every command with data (the order is the server's own).
    theirs, ours = both(conns, b"LATENCY", b"HISTOGRAM")
    ht, ho = _histograms(theirs), _histograms(ours)
    assert {k: v[0] for k, v in ht.items()} == {k: v[0] for k, v in ho.items()}, (ht, ho)
    # INFO latencystats: one line per command at the default percentiles.
    lines = []
    for reply in both(conns, b"INFO", b"latencystats"):
        text = reply[1]
        assert isinstance(text, bytes)
        rows = dict(line.split(":", 1) for line in text.decode().splitlines() if ":" in line)
        lines.append({k: [p.split("=")[0] for p in v.split(",")] for k, v in rows.items()})
        for v in rows.values():
            assert all(float(p.split("=")[1]) > 0 for p in v.split(","))
    assert lines[0] == lines[1]
    assert lines[0]["latency_percentiles_usec_get"] == ["p50", "p99", "p99.9"]
    # latency-tracking no: calls stop reaching the histograms, what is there stays, and
    # INFO latencystats is empty.
    same(conns, b"CONFIG", b"SET", b"latency-tracking", b"no")
    same(conns, b"GET", b"lh")
    theirs, ours = both(conns, b"LATENCY", b"HISTOGRAM", b"get")
    assert _histograms(theirs)[b"get"][0] == _histograms(ours)[b"get"][0] == 3
    same(conns, b"INFO", b"latencystats")
    same(conns, b"CONFIG", b"RESETSTAT")
    same(conns, b"LATENCY", b"HISTOGRAM")
    same(conns, b"GET", b"lh")
    same(conns, b"CONFIG", b"SET", b"latency-tracking", b"yes")
    theirs, ours = both(conns, b"LATENCY", b"HISTOGRAM")
    ht, ho = _histograms(theirs), _histograms(ours)
    assert {k: v[0] for k, v in ht.items()} == {k: v[0] for k, v in ho.items()}
    assert set(ho) == {b"config|set"}
    # The commands stats still count every call made while tracking was off.
    assert b"cmdstat_get:calls=1," in ours_info(conns)
    same(conns, b"LATENCY", b"HISTOGRAM", b"get", b"nosuch")
    same(conns, b"CONFIG", b"SET", b"latency-tracking-info-percentiles", b"50 99.99")
    theirs, ours = both(conns, b"INFO", b"latencystats")
    assert b"p99.99=" in theirs[1] and b"p99.99=" in ours[1]  # type: ignore[operator]
    same(conns, b"CONFIG", b"SET", b"latency-tracking-info-percentiles", b"50 99 99.9")


def ours_info(conns: tuple[RespConnection, ...]) -> bytes:
    reply = conns[1].call(b"INFO", b"commandstats")
    assert isinstance(reply[1], bytes)
    return reply[1]
