"""Helpers for the replication end-to-end tests (``test_replication.py``): clients, INFO
fields, waiting for replicas to catch up, raw RESP sessions, and writer threads that keep a
ledger of acknowledged writes.

Every loop here is bounded in time; writer threads stop on an event and record any
unexpected exception for the test to report.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ackdb.resp.replies import NEED_DATA, ReplyReader
from ackdb.resp.request import pack
from conftest import ServerProcess, wait_until

# Longest wait for a replica to sync / catch up (s): generous, the machine is shared.
SYNC_TIMEOUT_S = 30.0
# Longest a writer thread runs (s), whatever the test asks.
WRITER_MAX_S = 60.0


def client(port: int, timeout_s: float = 10.0, db: int = 0) -> redis.Redis:
    """A redis-py client without retries: a write either got its reply or its outcome is
    unknown (a retry could apply it twice or hide a dead server)."""
    return redis.Redis(
        port=port, db=db, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0), protocol=2
    )


def info(r: redis.Redis, section: str = "replication") -> dict[str, Any]:
    return r.info(section)  # type: ignore[no-any-return]


def offset(r: redis.Redis) -> int:
    return int(info(r)["master_repl_offset"])


def sync_stats(r: redis.Redis) -> tuple[int, int, int]:
    """(sync_full, sync_partial_ok, sync_partial_err) from INFO stats."""
    s = info(r, "stats")
    return int(s["sync_full"]), int(s["sync_partial_ok"]), int(s["sync_partial_err"])


def digest(r: redis.Redis) -> bytes:
    return r.execute_command("DEBUG", "DIGEST")  # type: ignore[no-any-return]


def replid(r: redis.Redis) -> str:
    """``master_replid`` as text (redis-py would turn an all-digit id into an int)."""
    return dict(info_fields(r))["master_replid"]


def link_up(r: redis.Redis) -> bool:
    i = info(r)
    return (
        i.get("role") == "slave"
        and i.get("master_link_status") == "up"
        and not i.get("master_sync_in_progress")
    )


def caught_up(primary: redis.Redis, *replicas: redis.Redis) -> bool:
    """Every replica's link is up and its offset equals the primary's (read last, so a
    ping sent in between makes this false, never wrongly true)."""
    offs = []
    for rep in replicas:
        i = info(rep)
        if i.get("master_link_status") != "up" or i.get("master_sync_in_progress"):
            return False
        offs.append(int(i["master_repl_offset"]))
    po = offset(primary)
    return all(o == po for o in offs)


def wait_caught_up(
    primary: redis.Redis, *replicas: redis.Redis, timeout_s: float = SYNC_TIMEOUT_S
) -> None:
    wait_until(lambda: caught_up(primary, *replicas), timeout_s, interval_s=0.05)


def info_fields(r: redis.Redis, section: str = "replication") -> list[tuple[str, str]]:
    """INFO ``section`` as (name, value) pairs in the order the server sent them."""
    with Session(int(r.connection_pool.connection_kwargs["port"])) as s:
        text: bytes = s.call("INFO", section)
    out: list[tuple[str, str]] = []
    for line in text.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(":")
            out.append((name, value))
    return out


class Session:
    """One raw connection: send commands, read replies as hiredis parses them (an error
    reply is returned as a ``hiredis.ReplyError`` whose str is the exact text)."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.reader = ReplyReader()

    def send(self, *args: str | bytes | int) -> None:
        self.sock.sendall(pack(*args))

    def read(self) -> Any:
        while True:
            reply = self.reader.get()
            if reply is not NEED_DATA:
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed before the reply")
            self.reader.feed(data)

    def silent_for(self, seconds: float) -> bool:
        """True when no reply byte arrives within ``seconds`` (the command waits)."""
        timeout = self.sock.gettimeout()
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(timeout)
        self.reader.feed(data)
        return False

    def call(self, *args: str | bytes | int) -> Any:
        self.send(*args)
        return self.read()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_replica_of(
    start: Callable[..., ServerProcess], primary_port: int, *extra: str, port: int | None = None
) -> ServerProcess:
    return start("--replicaof", "127.0.0.1", str(primary_port), *extra, port=port)


# -- writer threads --------------------------------------------------------------------------


@dataclass
class Threads:
    """Writer threads sharing a stop event; ``stop`` joins them and re-raises the first
    unexpected exception any of them recorded."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def spawn(self, fn: Callable[[threading.Event], None]) -> None:
        def run() -> None:
            try:
                fn(self.stop_event)
            except BaseException as e:  # noqa: BLE001 - re-raised by stop()
                self.errors.append(e)

        t = threading.Thread(target=run, daemon=True)
        self.threads.append(t)
        t.start()

    def stop(self, timeout_s: float = 20.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in self.threads if t.is_alive()]
        if self.errors:
            raise self.errors[0]
        assert not alive, f"{len(alive)} writer thread(s) did not stop"


def mixed_load(
    port: int, db: int, seed: int, counter: list[int]
) -> Callable[[threading.Event], None]:
    """A writer of every type (strings, counters, hashes, lists, sets, sorted sets, keys
    with a TTL far away, deletions, MULTI/EXEC) on ``db``, in pipelines of 40 commands;
    ``counter[0]`` counts the pipelines answered."""

    def run(stop: threading.Event) -> None:
        rng = random.Random(seed)
        r = client(port, db=db)
        deadline = time.monotonic() + WRITER_MAX_S
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                tx = rng.random() < 0.2
                with r.pipeline(transaction=tx) as p:
                    for _ in range(40):
                        k = rng.randrange(150_000)
                        op = rng.randrange(9)
                        if op == 0:
                            p.set(f"key:{k}", rng.randbytes(rng.randrange(1, 64)))
                        elif op == 1:
                            p.incrby(f"ctr:{k % 500}", rng.randrange(1, 100))
                        elif op == 2:
                            p.hset(f"h:{k % 2000}", f"f{rng.randrange(50)}", k)
                        elif op == 3:
                            p.rpush(f"l:{k % 1000}", k)
                            p.ltrim(f"l:{k % 1000}", -20, -1)
                        elif op == 4:
                            p.sadd(f"s:{k % 1000}", k % 300)
                        elif op == 5:
                            p.zadd(f"z:{k % 1000}", {str(k % 300): rng.random()})
                        elif op == 6:
                            p.set(f"ttl:{k % 3000}", k, px=3_600_000)
                        elif op == 7:
                            p.delete(f"key:{k}")
                        else:
                            p.append(f"key:{k}", b"+")
                    p.execute()
                counter[0] += 1
        finally:
            r.close()

    return run


@dataclass
class Ledger:
    """Per key: the last value sent and the last value acknowledged. Each key belongs to
    one writer, whose values only increase, so after any crash a node that holds every
    acknowledged write has ``acked <= value <= sent`` for every key."""

    sent: dict[str, int] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_sent(self, key: str, v: int) -> None:
        with self.lock:
            self.sent[key] = v

    def record_acked(self, key: str, v: int) -> None:
        with self.lock:
            self.acked[key] = v

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self.lock:
            return dict(self.acked), dict(self.sent)

    def missing_on(self, r: redis.Redis, live: bool = False) -> list[str]:
        """The acknowledged writes ``r`` does not hold (empty when it holds them all).
        ``live``: writers still write, so values above the ledger's last sent one are
        fine (they were sent after the ledger was read)."""
        acked, sent = self.snapshot()
        keys = sorted(acked)
        values = r.mget(keys) if keys else []
        bad = []
        for key, got in zip(keys, values, strict=True):
            top = float("inf") if live else sent[key]
            if got is None or not acked[key] <= int(got) <= top:
                bad.append(f"{key}: acked {acked[key]}, sent {sent[key]}, found {got!r}")
        return bad


def loaded(r: redis.Redis) -> bool:
    """A restarted server finished loading its AOF (DEBUG DIGEST answers while loading,
    as Redis's does, so a comparison must wait for this)."""
    try:
        return int(r.info("persistence")["loading"]) == 0
    except redis.BusyLoadingError:
        return False


Command = Callable[[Any, random.Random], None]  # queues one random command on a pipeline
Blocker = Callable[[int, int, threading.Event, list[int]], None]


@dataclass(frozen=True)
class BlockingLoad:
    """One writer sending random commands in pipelines (some as MULTI/EXEC) while
    ``blockers`` clients loop on blocking commands; the writer goes on until it sent
    ``commands`` and the blocked clients were served ``served_min`` times (``served[0]``,
    counted by the blockers), or ``max_s`` passed."""

    one_command: Command
    blocker: Blocker
    commands: int
    served_min: int
    blockers: int
    batch_max: int
    max_s: float = 60.0

    def run(self, port: int, writer_seed: int, blocker_seed: int) -> int:
        """Run it against ``port``; returns how often blocked clients were served."""
        done = threading.Event()
        served = [0]
        threads = [threading.Thread(target=self._writer, args=(port, writer_seed, done, served))]
        threads += [
            threading.Thread(target=self.blocker, args=(port, blocker_seed + i, done, served))
            for i in range(self.blockers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.max_s + 10)
        assert not any(t.is_alive() for t in threads)
        return served[0]

    def _writer(self, port: int, seed: int, done: threading.Event, served: list[int]) -> None:
        rng = random.Random(seed)
        r = client(port)
        deadline = time.monotonic() + self.max_s
        sent = 0
        try:
            while (
                sent < self.commands or served[0] < self.served_min
            ) and time.monotonic() < deadline:
                with r.pipeline(transaction=rng.random() < 0.2) as p:
                    for _ in range(rng.randrange(1, self.batch_max)):
                        self.one_command(p, rng)
                        sent += 1
                    p.execute(raise_on_error=False)
        finally:
            done.set()
            r.close()
