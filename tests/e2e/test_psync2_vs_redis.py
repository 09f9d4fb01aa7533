"""PSYNC2 history rules, each checked against redis-server 7.0.15 under the same steps
(issue 13's findings). A trio is started for each server kind with the same directives;
the same steps run on both; the replication fields that must agree are compared.

- Keep-alive pings follow Redis's own schedule (every repl-ping-replica-period-th run of
  the replication cron, counted from start-up), so a primary whose replicas attached
  after start-up and that never writes keeps master_repl_offset 0 for a whole period.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from tests.e2e.repl_support import client, info

from conftest import REDIS_SERVER, ServerProcess, ackdb_argv, free_port, redis_argv, wait_until

KINDS = ["ackdb", "redis"]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """start(kind, name, *directives): a server of ``kind`` with its files in
    tmp_path/kind/name; every one stopped at the end."""
    started: list[ServerProcess] = []

    def run(kind: str, name: str, *extra: str) -> ServerProcess:
        if kind == "redis" and REDIS_SERVER is None:
            pytest.skip("redis-server is not installed")
        d = tmp_path / kind / name
        d.mkdir(parents=True, exist_ok=True)
        p = free_port()
        argv = (ackdb_argv if kind == "ackdb" else redis_argv)(p, *extra)
        srv = ServerProcess(argv, p, d, kind)
        started.append(srv)
        return srv

    yield run
    for s in started:
        s.stop()


# Disk-based full syncs start at once on both servers (Redis's diskless default waits 5 s).
COMMON = ("--repl-diskless-sync", "no", "--repl-ping-replica-period", "3600")


def chain(start: Callable[..., ServerProcess], kind: str) -> list[redis.Redis]:
    """A primary with two chained replicas: a <- b <- c."""
    a = start(kind, "a", *COMMON)
    b = start(kind, "b", *COMMON, "--replicaof", "127.0.0.1", str(a.port))
    c = start(kind, "c", *COMMON, "--replicaof", "127.0.0.1", str(b.port))
    rs = [client(s.port) for s in (a, b, c)]
    for r in rs[1:]:
        wait_until(lambda r=r: info(r).get("master_link_status") == "up", 30)
    return rs


@pytest.mark.parametrize("kind", KINDS)
def test_an_idle_chain_keeps_offset_zero_for_a_ping_period(
    start: Callable[..., ServerProcess], kind: str
) -> None:
    rs = chain(start, kind)
    time.sleep(2.5)  # several runs of the replication cron (Redis: 1 Hz)
    assert [info(r)["master_repl_offset"] for r in rs] == [0, 0, 0]
