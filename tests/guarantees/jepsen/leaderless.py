"""Leaderless databases in the harness: a register workload and its checkers.

Owns: ``RegisterClient`` (one thread per key: it writes increasing sequence numbers to
its own key at a write level through a coordinator and reads keys at a read level,
recording every operation), and the checks of docs/leaderless.md's claims on the
history:

- ``check_strong_reads``: with r + w > n (each write's and each read's own level), a
  successful read returns a sequence number at least the largest one acknowledged
  *before the read began* for that key (one writer per
  key, so versions and sequence numbers grow together);
- ``check_final``: after healing and ``CONVERGE``, every replica holds the same value for
  each key, that value is at least the largest acknowledged one, and it is a value some
  write sent (nothing invented).

A write answered with a ``LEVEL`` error stands on the replicas that applied it (no
rollback): its outcome is *unknown*, like a broken connection's, and it may win later.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from jepsen.history import FAIL, OK, UNKNOWN, History

READ_TIMEOUT_S = 10.0


def outcome_of_error(e: Exception) -> str:
    """A refused request (syntax, schema) failed; a missed level or a broken link is
    unknown: the write may stand on some replicas."""
    text = str(e)
    if isinstance(e, redis.ResponseError) and not text.startswith(("LEVEL", "TRYAGAIN")):
        return FAIL
    return UNKNOWN


@dataclass
class RegisterClient:
    """Writes ``key``'s sequence numbers at ``write_level`` and reads a random key of
    ``keys`` at ``read_level`` in between, through the coordinator ``addr()`` names."""

    history: History
    name: str
    key: str
    keys: list[str]
    addr: Callable[[], tuple[str, int]]
    write_level: str
    read_level: str
    seed: int
    pause_s: float = 0.005
    stop: threading.Event = field(default_factory=threading.Event)
    seq: int = 0
    acked: int = 0  # the largest acknowledged sequence number

    def _conn(self) -> redis.Redis:
        host, port = self.addr()
        return redis.Redis(host, port, socket_timeout=READ_TIMEOUT_S, socket_connect_timeout=2)

    def __call__(self) -> None:
        rng = random.Random(self.seed)
        conn = self._conn()
        try:
            while not self.stop.is_set():
                if rng.random() < 0.5:
                    conn = self._write(conn)
                else:
                    conn = self._read(conn, rng.choice(self.keys))
                time.sleep(self.pause_s)
        finally:
            conn.close()

    def _write(self, conn: redis.Redis) -> redis.Redis:
        self.seq += 1
        op = self.history.invoke(self.name, "set", self.key, self.seq, level=self.write_level)
        try:
            conn.execute_command("AT", self.write_level, "SET", self.key, self.seq)
        except redis.ResponseError as e:
            self.history.complete(op, outcome_of_error(e), str(e))
        except (redis.ConnectionError, redis.TimeoutError) as e:
            self.history.complete(op, UNKNOWN, str(e))
            conn.close()
            return self._conn()
        else:
            self.acked = self.seq
            self.history.complete(op, OK, acked=True)
        return conn

    def _read(self, conn: redis.Redis, key: str) -> redis.Redis:
        op = self.history.invoke(self.name, "get", key, None, level=self.read_level)
        try:
            v = conn.execute_command("AT", self.read_level, "GET", key)
        except redis.ResponseError as e:
            self.history.complete(op, FAIL, str(e))
        except (redis.ConnectionError, redis.TimeoutError) as e:
            self.history.complete(op, UNKNOWN, str(e))
            conn.close()
            return self._conn()
        else:
            self.history.complete(op, OK, None if v is None else int(v))
        return conn


@dataclass
class Finding:
    kind: str
    detail: str


def required(level: str, n: int) -> int:
    return {"ONE": 1, "QUORUM": n // 2 + 1, "ALL": n}[level]


def check_strong_reads(history: History, n: int = 3) -> list[Finding]:
    """Reads that returned less than a write acknowledged before they began, for each
    write and read whose levels make r + w > n (other pairs promise nothing)."""
    acked: dict[str, list[tuple[int, int, str]]] = {}  # key -> (complete_ns, seq, level)
    for op in history.ops:
        if op.f == "set" and op.outcome == OK and op.complete_ns is not None:
            acked.setdefault(str(op.key), []).append((op.complete_ns, int(op.value), op.level))
    out: list[Finding] = []
    for op in history.ops:
        if op.f != "get" or op.outcome != OK:
            continue
        r = required(op.level, n)
        before = [
            seq
            for done, seq, level in acked.get(str(op.key), [])
            if done < op.invoke_ns and r + required(level, n) > n
        ]
        floor = max(before, default=0)
        got = op.result or 0
        if got < floor:
            out.append(Finding("stale-read", f"{op.process} read {op.key}={got} < {floor}"))
    return out


def check_final(history: History, finals: list[dict[str, Any]]) -> list[Finding]:
    """``finals``: per replica, key -> the value it holds at the end (None: absent)."""
    sent: dict[str, set[int]] = {}
    top: dict[str, int] = {}
    for op in history.ops:
        if op.f != "set":
            continue
        k = str(op.key)
        if op.outcome in (OK, UNKNOWN):
            sent.setdefault(k, set()).add(int(op.value))
        if op.outcome == OK:
            top[k] = max(top.get(k, 0), int(op.value))
    out: list[Finding] = []
    for k in sorted(set(sent) | set(top)):
        values = [f.get(k) for f in finals]
        if len(set(values)) != 1:
            out.append(Finding("diverged", f"{k}: replicas hold {values}"))
            continue
        v = values[0]
        got = 0 if v is None else int(v)
        if got < top.get(k, 0):
            out.append(Finding("lost", f"{k}: holds {got}, {top[k]} was acknowledged"))
        if v is not None and got not in sent.get(k, set()):
            out.append(Finding("invented", f"{k}: holds {got}, never written"))
    return out
