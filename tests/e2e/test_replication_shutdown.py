"""A primary's SHUTDOWN (and SIGTERM) lets lagging replicas catch up first (Redis 7).

Proves: with writes paused, the primary waits up to ``shutdown-timeout`` for its online
replicas to acknowledge everything before it saves and exits; SHUTDOWN NOW skips the wait;
SHUTDOWN ABORT from another client cancels it (the waiting SHUTDOWN gets Redis's error
and the server keeps serving); an in-sync replica holds every write when the primary is
gone.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable

import redis
from tests.conftest import ServerProcess, wait_until


def _pair(
    start: Callable[..., ServerProcess], timeout_s: int
) -> tuple[ServerProcess, ServerProcess]:
    primary = start("--shutdown-timeout", str(timeout_s))
    replica = start("--replicaof", "127.0.0.1", str(primary.port))
    r = replica.client()
    wait_until(lambda: r.info("replication")["master_link_status"] == "up", 15)
    return primary, replica


def _shutdown(p: ServerProcess, *args: str) -> float:
    """Send SHUTDOWN on a raw socket (redis-py retries a closed connection for seconds);
    returns how long until the server closed it."""
    words = ["SHUTDOWN", *args]
    frame = b"*%d\r\n" % len(words) + b"".join(
        b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words
    )
    with socket.create_connection(("127.0.0.1", p.port), timeout=30) as s:
        t0 = time.monotonic()
        s.sendall(frame)
        while s.recv(4096):
            pass
        return time.monotonic() - t0


def test_lagging_replica_is_waited_for_up_to_the_timeout(start_ackdb) -> None:
    primary, replica = _pair(start_ackdb, 2)
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        primary.client().set("k", "v")
        took = _shutdown(primary)
        primary.proc.wait(10)
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    assert 1.5 <= took <= 6, took
    log = primary.log()
    assert "Waiting for replicas before shutting down." in log
    assert "Lagging replica" in log


def test_in_sync_replica_holds_every_write_and_shutdown_is_quick(start_ackdb) -> None:
    primary, replica = _pair(start_ackdb, 10)
    c = primary.client()
    pipe = c.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"k{i}", i)
    pipe.execute()
    took = _shutdown(primary)
    primary.proc.wait(10)
    assert took < 5, took
    r = replica.client()
    assert r.dbsize() == 2000
    assert r.get("k1999") == b"1999"


def test_shutdown_now_does_not_wait(start_ackdb) -> None:
    primary, replica = _pair(start_ackdb, 10)
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        primary.client().set("k", "v")
        took = _shutdown(primary, "NOW")
        primary.proc.wait(10)
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    assert took < 3, took


def test_shutdown_abort_cancels_the_wait(start_ackdb) -> None:
    primary, replica = _pair(start_ackdb, 30)
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        primary.client().set("k", "v")
        result: list[object] = []

        def waiting_shutdown() -> None:
            try:
                result.append(primary.client().execute_command("SHUTDOWN"))
            except redis.RedisError as e:
                result.append(e)

        t = threading.Thread(target=waiting_shutdown)
        t.start()
        other = primary.client()
        wait_until(lambda: "Waiting for replicas" in primary.log(), 10)
        assert other.execute_command("SHUTDOWN", "ABORT") in (True, b"OK")
        t.join(10)
        assert len(result) == 1 and isinstance(result[0], redis.ResponseError), result
        assert "Errors trying to SHUTDOWN" in str(result[0])
        # Still serving, writes unpaused.
        assert other.set("after", "1") is True
        assert primary.proc.poll() is None
        try:
            other.execute_command("SHUTDOWN", "ABORT")
        except redis.ResponseError as e:
            assert "No shutdown in progress" in str(e)
        else:
            raise AssertionError("a second SHUTDOWN ABORT must fail")
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
