"""ackdb server processes that a nemesis can kill, pause and restart in place.

Owns: one process per ``Node`` with a fixed host, port and data directory, so a restart
comes back on the same address with the same files (AOF, snapshot); its log file (appended
across restarts); optional wrapping of the command line (a network namespace, libfaketime).
Every wait is bounded; ``close()`` stops the process (SIGCONT first if it was paused,
then SIGTERM, then SIGKILL). Never signals any process it did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-LOADING"))
    except OSError:
        return False


def faketime_available() -> bool:
    return os.path.exists(LIBFAKETIME)


class Node:
    """An ackdb server: ``argv_extra`` are its directives (``--appendonly yes`` ...).
    ``wrap(argv)`` may prefix the command line (``ip netns exec``). ``clock_file``, when
    set, runs it under libfaketime reading its offset from that file (a clock nemesis
    rewrites it)."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        argv_extra: list[str],
        host: str = "127.0.0.1",
        port: int | None = None,
        wrap: Callable[[list[str]], list[str]] | None = None,
        clock_file: Path | None = None,
        fsync_log: bool = False,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port or free_port()
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.argv_extra = list(argv_extra)
        self.wrap = wrap
        self.clock_file = clock_file
        # Written by fsync_oracle/sitecustomize.py; outside the data directory, which a
        # power-loss simulation truncates.
        self.fsync_log = workdir / f"{name}.fsync.log" if fsync_log else None
        # Directives that follow the node's role (``--replicaof host port``); a restart
        # keeps them, a promotion clears them.
        self.role_args: list[str] = []
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self._log: IO[bytes] | None = None
        self.starts = 0

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def argv(self) -> list[str]:
        base = [
            sys.executable, "-m", "ackdb", "server",
            "--port", str(self.port), "--bind", self.host,
            "--dir", str(self.dir), "--save", "", "--enable-debug-command", "yes",
            *self.argv_extra,
        ]  # fmt: skip
        return self.wrap(base) if self.wrap is not None else base

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.clock_file is not None:
            if not self.clock_file.exists():
                self.clock_file.write_text("+0\n")
            env |= {
                "LD_PRELOAD": LIBFAKETIME,
                "FAKETIME_TIMESTAMP_FILE": str(self.clock_file),
                "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            }
        if self.fsync_log is not None:
            from .oracle import ORACLE_DIR

            env["ACKDB_FSYNC_LOG"] = str(self.fsync_log)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(ORACLE_DIR), env.get("PYTHONPATH", "")) if p
            )
        return env

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, *extra: str) -> Node:
        assert not self.running(), f"{self.name} is running"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 -- closed in _reap
        self.proc = subprocess.Popen(
            [*self.argv(), *extra], stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=self.dir, env=self.env(),
        )  # fmt: skip
        self.paused = False
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers_ping(self.host, self.port):
            if self.proc.poll() is not None:
                self._reap()
                raise RuntimeError(f"{self.name} exited at start:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not start:\n{self.log()[-3000:]}")
            time.sleep(0.02)
        return self

    def restart(self) -> None:
        """Start again on the same port and data, in its current role."""
        self.start(*self.role_args)

    def signal(self, sig: int) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)
        self.paused = False
        self._reap()

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self._reap()

    def _reap(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, timeout_s: float = 10.0) -> redis.Redis:
        """A redis-py client without retries (a retry could apply a write twice)."""
        return redis.Redis(
            host=self.host, port=self.port, socket_timeout=timeout_s,
            socket_connect_timeout=min(timeout_s, 3.0), retry=Retry(NoBackoff(), 0), protocol=2,
        )  # fmt: skip

    def call(self, *args: object, timeout_s: float = 10.0) -> object:
        with contextlib.closing(self.client(timeout_s)) as c:
            return c.execute_command(*args)
