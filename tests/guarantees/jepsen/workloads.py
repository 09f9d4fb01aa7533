"""Client workers: threads that run operations against real servers and record each one
in a ``History``.

Owns: ``ListWriter`` (``RPUSH key token`` with a run-unique token, then the requested
acknowledgement: none, ``WAIT n t`` or ``WAITAOF l n t``), ``RegisterWorker``
(``META.SET / META.GET / META.CAS`` on a few keys of the Raft metadata store) and
``Workers`` (start, stop with a bound, re-raise a worker's unexpected exception). Never
retries a write: a retry could apply it twice or hide a lost one; a broken connection makes
the outcome ``unknown`` and the worker reconnects (to whatever ``target()`` names now).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

from .history import FAIL, OK, UNKNOWN, History
from .procs import Node

# Errors that mean the command was refused before it ran (no effect).
REFUSED = ("READONLY", "NOREPLICAS", "MISCONF", "LOADING", "MASTERDOWN", "NOQUORUM")
RECONNECT_PAUSE_S = 0.05
JOIN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Level:
    """An acknowledgement level: ``kind`` is none / wait / waitaof; ``label`` names it in
    the history (e.g. the appendfsync policy for ``none``)."""

    kind: str = "none"
    numlocal: int = 0
    numreplicas: int = 0
    timeout_ms: int = 1000
    label: str = "none"

    def command(self) -> tuple[Any, ...] | None:
        if self.kind == "wait":
            return ("WAIT", self.numreplicas, self.timeout_ms)
        if self.kind == "waitaof":
            return ("WAITAOF", self.numlocal, self.numreplicas, self.timeout_ms)
        return None

    def reached(self, reply: Any) -> tuple[dict[str, int], bool]:
        if self.kind == "wait":
            n = int(reply)
            return {"replicas": n}, n >= self.numreplicas
        local, n = int(reply[0]), int(reply[1])
        return {"local": local, "replicas": n}, local >= self.numlocal and n >= self.numreplicas


NONE = Level()


@dataclass
class Workers:
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def spawn(self, name: str, fn: Callable[[threading.Event], None]) -> None:
        def run() -> None:
            try:
                fn(self.stop_event)
            except BaseException as e:  # noqa: BLE001 -- re-raised by stop()
                self.errors.append(e)

        t = threading.Thread(target=run, name=name, daemon=True)
        self.threads.append(t)
        t.start()

    def stop(self, timeout_s: float = JOIN_TIMEOUT_S) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self.errors:
            raise self.errors[0]
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, f"workers did not stop: {alive}"


def _refused(e: Exception) -> bool:
    return str(e).split(" ", 1)[0] in REFUSED


class ListWriter:
    """``RPUSH`` unique tokens to ``keys`` on ``target()`` (the current primary), each
    followed by ``level``'s acknowledgement command."""

    def __init__(
        self,
        history: History,
        process: str,
        target: Callable[[], Node],
        keys: list[str],
        level: Level,
        seed: int,
        socket_timeout_s: float = 5.0,
        pace_s: float = 0.0,
    ) -> None:
        self.history = history
        self.process = process
        self.target = target
        self.keys = keys
        self.level = level
        self.rng = random.Random(seed)
        self.timeout_s = socket_timeout_s
        self.pace_s = pace_s
        self.acked = 0

    def __call__(self, stop: threading.Event) -> None:
        conn: redis.Redis | None = None
        node: Node | None = None
        n = 0
        while not stop.is_set():
            if conn is None or node is not self.target():
                if conn is not None:
                    conn.close()
                node = self.target()
                conn = node.client(self.timeout_s)
            n += 1
            key = self.rng.choice(self.keys)
            token = f"{self.process}-{n}"
            op = self.history.invoke(
                self.process, "rpush", key, token, level=self.level.label, node=node.name
            )
            try:
                conn.rpush(key, token)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                self.history.complete(op, UNKNOWN, repr(e))
                conn.close()
                conn = None
                time.sleep(RECONNECT_PAUSE_S)
                continue
            except redis.ResponseError as e:
                self.history.complete(op, FAIL if _refused(e) else UNKNOWN, str(e))
                time.sleep(RECONNECT_PAUSE_S)
                continue
            self._acknowledge(conn, op)
            if op.extra.get("ack_error"):
                conn.close()
                conn = None
            if self.pace_s:
                time.sleep(self.pace_s)
        if conn is not None:
            conn.close()

    def _acknowledge(self, conn: redis.Redis, op: Any) -> None:
        cmd = self.level.command()
        if cmd is None:
            self.history.complete(op, OK, "pushed", acked=True)
            self.acked += 1
            return
        try:
            reply = conn.execute_command(*cmd)
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
            # The write itself was applied; its acknowledgement is unknown.
            op.extra["ack_error"] = f"{type(e).__name__}: {e}"
            self.history.complete(op, OK, "pushed", acked=False)
            return
        ack, reached = self.level.reached(reply)
        self.history.complete(op, OK, "pushed", ack=ack, acked=reached)
        self.acked += reached


class RegisterWorker:
    """Random ``META.SET`` (unique values), ``META.GET`` and ``META.CAS`` on ``keys``
    through the member ``member()`` names (any member: followers forward)."""

    def __init__(
        self,
        history: History,
        process: str,
        member: Callable[[random.Random], tuple[str, str]],
        keys: list[str],
        seed: int,
        timeout_s: float = 6.0,
    ) -> None:
        self.history = history
        self.process = process
        self.member = member  # rng -> (member id, "host:port")
        self.keys = keys
        self.rng = random.Random(seed)
        self.timeout_s = timeout_s
        self.seen: dict[str, Any] = {}

    def __call__(self, stop: threading.Event) -> None:
        client: Client | None = None
        node = ""
        n = 0
        while not stop.is_set():
            if client is None:
                node, addr = self.member(self.rng)
                try:
                    client = Client(addr, timeout_s=self.timeout_s)
                except OSError:
                    time.sleep(RECONNECT_PAUSE_S)
                    continue
            n += 1
            if not self._one(client, node, n):
                client.close()
                client = None
                time.sleep(RECONNECT_PAUSE_S)
        if client is not None:
            client.close()

    def _one(self, client: Client, node: str, n: int) -> bool:
        """One operation; False when the connection is no longer usable."""
        key = self.rng.choice(self.keys)
        r = self.rng.random()
        if r < 0.4:
            f, value, cmd = "get", None, ("META.GET", key)
        elif r < 0.8 or key not in self.seen:
            f, value = "set", f"{self.process}-{n}"
            cmd = ("META.SET", key, value)
        else:
            new = f"{self.process}-{n}"
            f, value, cmd = "cas", (self.seen[key], new), ("META.CAS", key, self.seen[key], new)
        op = self.history.invoke(self.process, f, key, value, level="raft", node=node)
        try:
            reply = client.call(*cmd)
        except ReplyError as e:
            code = e.code
            definite = code == "NOQUORUM" or code == "ERR"
            self.history.complete(op, FAIL if (definite or f == "get") else UNKNOWN, str(e))
            return True
        except (OSError, ConnectionError) as e:
            self.history.complete(op, FAIL if f == "get" else UNKNOWN, repr(e))
            return False
        if f == "get":
            result = reply.decode() if isinstance(reply, bytes) else reply
            if result is not None:
                self.seen[key] = result
        elif f == "set":
            result = reply
            self.seen[key] = value
        else:
            result = int(reply)
            if result:
                self.seen[key] = value[1]
        self.history.complete(op, OK, result, acked=True)
        return True
