"""Shared fixtures: free ports, spawned ackdb and redis-server processes, wait_until."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from ackdb.commands import load_all

# Property tests check results, not speed: on a loaded 2-core machine one example can take
# longer than Hypothesis's default 200 ms deadline, which would fail a correct test.
settings.register_profile("ackdb", deadline=None)
settings.load_profile("ackdb")

# Engines built in-process (fixtures, unit tests) run the real handlers.
load_all()

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: Callable[[], object], timeout_s: float, interval_s: float = 0.02) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s}s")
        time.sleep(interval_s)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-LOADING"))
    except OSError:
        return False


class ServerProcess:
    """A server process on 127.0.0.1:port; stopped (SIGTERM, then SIGKILL) by ``stop``."""

    def __init__(self, argv: list[str], port: int, cwd: Path, name: str) -> None:
        self.port = port
        self.name = name
        self.cwd = cwd
        self.log_path = cwd / f"{name}-{port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            wait_until(lambda: _answers_ping(port) or self.proc.poll() is not None, START_TIMEOUT_S)
        except TimeoutError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            self._log.close()
            raise RuntimeError(f"{name} exited at start:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def client(self, **kw: object):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(port=self.port, socket_timeout=10, **kw)  # type: ignore[arg-type]


def no_retry() -> object:
    """For a redis-py client expected to fail: redis-py 8 retries a ConnectionError --
    AuthenticationError is one -- three times with a backoff of seconds by default."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


def _shutdown_without_retries() -> None:
    """redis-py answers a SHUTDOWN that closed the connection (the expected outcome) only
    after retrying the reconnect three times with a backoff of seconds (about 3.6 s a
    SHUTDOWN here): the tests' SHUTDOWNs go out without retries."""
    import redis

    execute = redis.Redis.execute_command

    def execute_command(self: redis.Redis, *args: Any, **options: Any) -> Any:
        name = args[0] if args else b""
        if (name.decode() if isinstance(name, bytes) else str(name)).upper() != "SHUTDOWN":
            return execute(self, *args, **options)
        old = self.get_retry()
        self.set_retry(no_retry())  # type: ignore[arg-type]
        try:
            return execute(self, *args, **options)
        finally:
            if old is not None:
                self.set_retry(old)

    redis.Redis.execute_command = execute_command  # type: ignore[method-assign]


_shutdown_without_retries()


def ackdb_argv(port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ackdb",
        "server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        *extra,
    ]


def redis_argv(port: int, *extra: str) -> list[str]:
    assert REDIS_SERVER is not None
    return [
        REDIS_SERVER,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--enable-debug-command",
        "yes",
        *extra,
    ]


@contextlib.contextmanager
def server_pair(
    workdir: Path, *directives: str, check_target: bool = True
) -> Iterator[tuple[int, int]]:
    """A reference redis-server and the server under test (ackdb, or redis-server too when
    ``check_target`` and ACKDB_DIFF_TARGET=redis, to check a differential test itself),
    both with the same extra ``directives``; yields (reference port, tested port) and
    stops both."""
    ref_port = free_port()
    ref = ServerProcess(redis_argv(ref_port, *directives), ref_port, workdir, "redis")
    try:
        sut_port = free_port()
        if check_target and os.environ.get("ACKDB_DIFF_TARGET") == "redis":
            argv = redis_argv(sut_port, *directives)
        else:
            argv = ackdb_argv(sut_port, "--enable-debug-command", "yes", *directives)
        sut = ServerProcess(argv, sut_port, workdir, "ackdb")
    except BaseException:
        ref.stop()
        raise
    try:
        yield ref_port, sut_port
    finally:
        sut.stop()
        ref.stop()


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """start_node(name, *directives, port=None): an ackdb whose files live in
    tmp_path/name, so that a node can be restarted on its own data; all stopped at the end."""
    started: list[ServerProcess] = []

    def start(name: str, *extra: str, port: int | None = None) -> ServerProcess:
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        p = port or free_port()
        node = ServerProcess(ackdb_argv(p, *extra), p, d, "ackdb")
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def start_ackdb(start_node: Callable[..., ServerProcess]) -> Callable[..., ServerProcess]:
    """start_ackdb(*directives, port=None): an ackdb in tmp_path itself."""

    def start(*extra: str, port: int | None = None) -> ServerProcess:
        return start_node("", *extra, port=port)

    return start


@pytest.fixture
def ackdb(start_ackdb: Callable[..., ServerProcess]) -> ServerProcess:
    return start_ackdb()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[ServerProcess]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    p = free_port()
    srv = ServerProcess(redis_argv(p), p, tmp_path, "redis")
    yield srv
    srv.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Soak runs are on demand: `pytest -m slow`.
    if config.getoption("-m"):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


class FakeConn:
    """A connection for in-process tests of the core: records what the core writes."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def buffer_size(self) -> int:
        return 0

    def pause_reading(self, why: str = "") -> None:
        self.reading = False

    def resume_reading(self, why: str = "") -> None:
        self.reading = True

    def resume_commands(self) -> None:
        pass


class Harness:
    """An in-process server core with helpers to run commands as a client would."""

    def __init__(self, *directives: str) -> None:
        import ackdb.commands  # noqa: F401
        from ackdb.server.config import load_config
        from ackdb.server.engine_host import build_engine

        self.server = build_engine(load_config(None, "\n".join(directives)))
        self.effects: list[tuple[int, list[bytes]]] = []
        self.server.add_feed(lambda db, argv: self.effects.append((db, list(argv))))

    def client(self):  # type: ignore[no-untyped-def]
        return self.server.new_client(FakeConn(), "127.0.0.1:40000", "127.0.0.1:6379", 7)

    def run(self, c, *args: bytes | str | int) -> bytes:  # type: ignore[no-untyped-def]
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        reply = self.server.process(c, argv)
        assert isinstance(reply, bytes)
        return reply


@pytest.fixture
def harness() -> Harness:
    return Harness()


def skip_if_compiled(module: str) -> None:
    """Skip a test that patches ``module``'s classes or functions when the module runs
    compiled by mypyc (src/ackdb/compiled.py): a compiled class cannot be patched, and
    compiled callers do not see a patched function. The pure-Python run covers it."""
    from ackdb.compiled import is_compiled

    if is_compiled(module):
        pytest.skip(f"{module} is compiled: its code cannot be patched")
