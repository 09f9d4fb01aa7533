"""End to end: the ``ackdb`` command line and configuration files, and Redis's own tools
(redis-cli, redis-benchmark) against a spawned ``ackdb server``. Every subprocess runs
under a timeout.

Check the redis-cli / redis-benchmark tests themselves against redis-server:
    ACKDB_E2E_TARGET=redis python -m pytest tests/e2e/test_cli.py -k "redis_"
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from conftest import REDIS_CLI, ServerProcess, ackdb_argv, free_port, redis_argv

pytestmark = pytest.mark.e2e

COMMAND_TIMEOUT_S = 30.0
BENCHMARK_TIMEOUT_S = 120.0
REDIS_BENCHMARK = shutil.which("redis-benchmark")
ACKDB = shutil.which("ackdb")

needs_redis_cli = pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli is not installed")
TARGET = os.environ.get("ACKDB_E2E_TARGET", "ackdb")


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """ackdb, or redis-server with ACKDB_E2E_TARGET=redis (to check these tests)."""
    if TARGET != "redis":
        yield request.getfixturevalue("ackdb")
        return
    port = free_port()
    srv = ServerProcess(redis_argv(port), port, tmp_path, "redis")
    yield srv
    srv.stop()


def run(argv: list[str], *, stdin: str | None = None, timeout_s: float = COMMAND_TIMEOUT_S):  # type: ignore[no-untyped-def]
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False
    )


# -- the ackdb command ----------------------------------------------------------------------


@pytest.mark.skipif(ACKDB is None, reason="the ackdb script is not installed")
def test_ackdb_version() -> None:
    assert ACKDB is not None
    out = run([ACKDB, "--version"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ackdb ") and "v=7.2" in out.stdout


def test_python_m_ackdb_version() -> None:
    out = run([sys.executable, "-m", "ackdb", "--version"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ackdb ")


def test_server_help() -> None:
    out = run([sys.executable, "-m", "ackdb", "server", "--help"])
    assert out.returncode == 0, out.stderr
    assert "Usage: ackdb server" in out.stdout
    assert "--port 7777" in out.stdout


def test_server_version() -> None:
    out = run([sys.executable, "-m", "ackdb", "server", "--version"])
    assert out.returncode == 0 and out.stdout.startswith("ackdb ")


def test_unknown_subcommand_fails() -> None:
    out = run([sys.executable, "-m", "ackdb", "frobnicate"])
    assert out.returncode != 0
    assert "unknown command 'frobnicate'" in out.stderr


# -- configuration files -----------------------------------------------------------------------


@pytest.fixture
def start_with_config(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(config: Path, *extra: str) -> ServerProcess:
        port = free_port()
        argv = ackdb_argv(port)
        argv.insert(argv.index("server") + 1, str(config))  # ackdb server CONFIG --opts
        srv = ServerProcess([*argv, *extra], port, tmp_path, "ackdb")
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


def config_get(srv: ServerProcess, *names: str) -> dict[str, str]:
    with redis.Redis(port=srv.port, protocol=2, decode_responses=True, socket_timeout=10) as c:
        return c.config_get(*names)


def test_config_file_quotes_include_and_overrides(
    tmp_path: Path, start_with_config: Callable[..., ServerProcess]
) -> None:
    included = tmp_path / "included.conf"
    included.write_text("timeout 7\nhz 20\nslowlog-max-len 55\n")
    main = tmp_path / "main.conf"
    main.write_text(
        "# a comment\n"
        f"include {included}\n"
        "hz 15\n"  # after the include: wins over it
        'appendfilename "my file.aof"\n'  # double quotes keep the space
        "dbfilename 'dump x.rdb'\n"  # single quotes too
        'notify-keyspace-events "Ex"\n'
        "   maxclients    77   \n"  # extra blanks
        "timeout 8\n"
    )
    srv = start_with_config(main, "--timeout", "9", "--slowlog-max-len", "66")
    got = config_get(
        srv, "hz", "appendfilename", "dbfilename", "notify-keyspace-events", "maxclients"
    )
    assert got == {
        "hz": "15",
        "appendfilename": "my file.aof",
        "dbfilename": "dump x.rdb",
        "notify-keyspace-events": "xE",
        "maxclients": "77",
    }
    # the command line comes after the file, so it overrides both files
    assert config_get(srv, "timeout", "slowlog-max-len") == {
        "timeout": "9",
        "slowlog-max-len": "66",
    }


def test_unknown_directive_warns_and_starts(
    tmp_path: Path, start_with_config: Callable[..., ServerProcess]
) -> None:
    conf = tmp_path / "unknown.conf"
    conf.write_text("hz 12\nnosuch-directive 1 2\n")
    srv = start_with_config(conf)
    assert config_get(srv, "hz") == {"hz": "12"}
    assert "nosuch-directive" in srv.log()


def test_bad_value_is_fatal_and_names_file_line_and_directive(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("hz 12\n# comment\nmaxclients lots\n")
    port = free_port()
    argv = ackdb_argv(port)
    argv.insert(argv.index("server") + 1, str(conf))
    out = run(argv)
    assert out.returncode != 0
    err = out.stderr + out.stdout
    assert "FATAL CONFIG FILE ERROR" in err
    assert str(conf) in err
    assert "line 3" in err
    assert "maxclients" in err
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_missing_config_file_is_fatal(tmp_path: Path) -> None:
    argv = ackdb_argv(free_port())
    argv.insert(argv.index("server") + 1, str(tmp_path / "nope.conf"))
    out = run(argv)
    assert out.returncode != 0
    assert "nope.conf" in out.stderr


# -- redis-cli and redis-benchmark ------------------------------------------------------------


def cli(srv: ServerProcess, *args: str, stdin: str | None = None) -> str:
    assert REDIS_CLI is not None
    out = run([REDIS_CLI, "-p", str(srv.port), *args], stdin=stdin)
    assert out.returncode == 0, out.stderr
    return out.stdout


@needs_redis_cli
def test_redis_cli_basics(server: ServerProcess) -> None:
    assert cli(server, "PING") == "PONG\n"
    assert cli(server, "SET", "k", "hello world") == "OK\n"
    assert cli(server, "GET", "k") == "hello world\n"
    assert cli(server, "--no-raw", "GET", "k") == '"hello world"\n'
    assert cli(server, "--no-raw", "GET", "missing") == "(nil)\n"
    assert cli(server, "--no-raw", "INCR", "n") == "(integer) 1\n"
    # commands read from stdin, one per line
    assert cli(server, stdin="SET a 1\nGET a\n") == "OK\n1\n"


def test_inline_ping_over_raw_socket(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(64) == b"+PONG\r\n"


@needs_redis_cli
def test_redis_cli_no_raw_formatting(server: ServerProcess) -> None:
    cli(server, "HSET", "h", "f1", "v1", "f2", "v2")
    assert cli(server, "--no-raw", "HGETALL", "h") == '1) "f1"\n2) "v1"\n3) "f2"\n4) "v2"\n'
    assert cli(server, "--no-raw", "NOSUCH", "x").startswith(
        "(error) ERR unknown command 'NOSUCH', with args beginning with: 'x'"
    )
    info = cli(server, "--no-raw", "INFO", "server")
    assert info.startswith("# Server\r\n") or info.startswith("# Server\n")
    assert "tcp_port:%d" % server.port in info


@needs_redis_cli
def test_redis_cli_resp3(server: ServerProcess) -> None:
    cli(server, "HSET", "h", "f1", "v1")
    assert cli(server, "-3", "--no-raw", "HGETALL", "h") == '1# "f1" => "v1"\n'
    assert cli(server, "-3", "--no-raw", "GET", "missing") == "(nil)\n"
    hello = cli(server, "-3", "--no-raw", "HELLO", "3")
    assert '"proto" => (integer) 3' in hello
    info = cli(server, "-3", "INFO", "server")
    assert "# Server" in info


@pytest.mark.skipif(REDIS_BENCHMARK is None, reason="redis-benchmark is not installed")
def test_redis_benchmark_smoke(server: ServerProcess) -> None:
    assert REDIS_BENCHMARK is not None
    out = run(
        [REDIS_BENCHMARK, "-p", str(server.port), "-n", "2000", "-c", "10"]
        + ["-t", "set,get,incr,hset,mset", "-q"],
        timeout_s=BENCHMARK_TIMEOUT_S,
    )
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.replace("\r", "\n").splitlines() if "per second" in line]
    names = {line.split(":")[0] for line in lines}
    assert {"SET", "GET", "INCR", "HSET", "MSET (10 keys)"} <= names, out.stdout
    with redis.Redis(port=server.port, protocol=2, socket_timeout=10) as c:
        assert c.ping() is True
