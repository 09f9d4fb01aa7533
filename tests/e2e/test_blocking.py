"""Blocking list commands against a spawned ackdb: wake-up order, timeouts, effects."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import ServerProcess, wait_until

pytestmark = pytest.mark.e2e


def blocked_count(r) -> int:  # type: ignore[no-untyped-def]
    return int(r.info("clients")["blocked_clients"])


def in_thread(fn, *args, **kw):  # type: ignore[no-untyped-def]
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["value"] = fn(*args, **kw)
        except Exception as e:  # noqa: BLE001 - reported to the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_blpop_served_by_push_in_blocking_order(ackdb: ServerProcess) -> None:
    r = ackdb.client()
    clients = [ackdb.client() for _ in range(3)]
    threads = []
    for i, cl in enumerate(clients):
        threads.append(in_thread(cl.blpop, ["q"], 10))
        wait_until(lambda i=i: blocked_count(r) == i + 1, 5)
    assert r.rpush("q", "a", "b", "c") == 3
    for t, _ in threads:
        t.join(5)
    assert [out["value"] for _, out in threads] == [(b"q", b"a"), (b"q", b"b"), (b"q", b"c")]
    assert r.exists("q") == 0
    assert blocked_count(r) == 0


def test_blpop_timeout_and_immediate(ackdb: ServerProcess) -> None:
    r = ackdb.client()
    t0 = time.monotonic()
    assert r.blpop(["none"], 0.2) is None
    assert 0.15 < time.monotonic() - t0 < 3
    r.rpush("l", "x")
    assert r.brpop(["none", "l"], 1) == (b"l", b"x")
    r.set("s", "v")
    with pytest.raises(Exception, match="WRONGTYPE"):
        r.blpop(["s"], 1)
    with pytest.raises(Exception, match="timeout is negative"):
        r.blpop(["l"], -1)
    with pytest.raises(Exception, match="timeout is not a float or out of range"):
        r.blpop(["l"], "abc")


def test_key_created_by_any_command_wakes_client(ackdb: ServerProcess) -> None:
    r = ackdb.client()
    t, out = in_thread(ackdb.client().blpop, ["dst"], 10)
    wait_until(lambda: blocked_count(r) == 1, 5)
    r.rpush("src", "v")
    r.rename("src", "dst")
    t.join(5)
    assert out["value"] == (b"dst", b"v")


def test_blmove_chain_and_multi(ackdb: ServerProcess) -> None:
    r = ackdb.client()
    t1, out1 = in_thread(ackdb.client().blmove, "a", "b", 10, "LEFT", "RIGHT")
    wait_until(lambda: blocked_count(r) == 1, 5)
    t2, out2 = in_thread(ackdb.client().blpop, ["b"], 10)
    wait_until(lambda: blocked_count(r) == 2, 5)
    r.rpush("a", "x")
    t1.join(5)
    t2.join(5)
    assert out1["value"] == b"x"
    assert out2["value"] == (b"b", b"x")
    # Inside MULTI a blocking command answers at once, as if it timed out.
    p = r.pipeline(transaction=True)
    p.blpop(["empty"], 0)
    p.set("k", "v")
    assert p.execute() == [None, True]


def test_disconnected_blocked_client_is_forgotten(ackdb: ServerProcess) -> None:
    r = ackdb.client()
    other = ackdb.client()
    t, _ = in_thread(other.blpop, ["gone"], 0)
    wait_until(lambda: blocked_count(r) == 1, 5)
    r.client_kill_filter(_type="normal", skipme=True)
    wait_until(lambda: blocked_count(r) == 0, 5)
    r.rpush("gone", "v")
    assert r.lrange("gone", 0, -1) == [b"v"]


def test_blmpop_count(ackdb: ServerProcess) -> None:
    r = ackdb.client()
    t, out = in_thread(ackdb.client().blmpop, 10, 2, "m1", "m2", direction="RIGHT", count=2)
    wait_until(lambda: blocked_count(r) == 1, 5)
    r.rpush("m2", "a", "b", "c")
    t.join(5)
    assert out["value"] == [b"m2", [b"c", b"b"]]
    assert r.lrange("m2", 0, -1) == [b"a"]


def test_bzpopmin_bzmpop(ackdb: ServerProcess) -> None:
    r = ackdb.client()
    t, out = in_thread(ackdb.client().bzpopmin, ["z1", "z2"], 10)
    wait_until(lambda: blocked_count(r) == 1, 5)
    r.zadd("z2", {"a": 1.5, "b": 2})
    t.join(5)
    assert out["value"] == (b"z2", b"a", 1.5)
    assert r.bzpopmax(["z2"], 1) == (b"z2", b"b", 2.0)
    t, out = in_thread(ackdb.client().bzmpop, 10, 1, ["z3"], max=True, count=2)
    wait_until(lambda: blocked_count(r) == 1, 5)
    r.zadd("z3", {"x": 1, "y": 2, "z": 3})
    t.join(5)
    assert out["value"] == [b"z3", [[b"z", b"3"], [b"y", b"2"]]]  # RESP2: scores as bulks
    assert r.bzpopmin(["none"], 0.1) is None
