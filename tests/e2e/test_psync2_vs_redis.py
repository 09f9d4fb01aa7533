"""PSYNC2 history rules, each checked against redis-server 7.0.15 under the same steps
(issue 13's findings). A trio is started for each server kind with the same directives;
the same steps run on both; the replication fields that must agree are compared.

- A primary restarted from its snapshot continues its history as Redis's does (new replid,
  the old one as replid2, keys that expired while it was down sent as DEL), and its
  chained replicas resynchronise partially.
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


def _caught_up(a: redis.Redis, r: redis.Redis) -> bool:
    return bool(info(r)["master_repl_offset"] == info(a)["master_repl_offset"])


def _on_history_of(a: redis.Redis, r: redis.Redis) -> bool:
    i = info(r)
    return bool(
        i.get("master_link_status") == "up" and i["master_replid"] == info(a)["master_replid"]
    )


def _restart_facts(base: Path, kind: str, data: bool) -> dict[str, object]:
    """A chain a <- b <- c whose primary saves, stops and restarts from its snapshot
    (with a key whose time passes while it is down, when ``data``): what the restarted
    primary's history and its replicas show."""
    servers: list[ServerProcess] = []
    ports = [free_port() for _ in range(3)]
    argv = ackdb_argv if kind == "ackdb" else redis_argv

    def run(i: int) -> None:
        extra = list(COMMON)
        if i:
            extra += ["--replicaof", "127.0.0.1", str(ports[i - 1])]
        d = base / kind / "abc"[i]
        d.mkdir(parents=True, exist_ok=True)
        servers.append(ServerProcess(argv(ports[i], *extra), ports[i], d, kind))

    try:
        for i in range(3):
            run(i)
        a, b, c = (client(p) for p in ports)
        for r in (b, c):
            wait_until(lambda r=r: info(r).get("master_link_status") == "up", 30)
        if data:
            for i in range(10):
                a.set(f"k{i}", i)
            a.set("x", "1", px=600)
            wait_until(lambda: _caught_up(a, c), 20)
        before = info(a)
        try:
            a.execute_command("SHUTDOWN", "SAVE")
        except redis.ConnectionError:
            pass
        servers[0].proc.wait(20)
        time.sleep(1.0)  # x's time passes while the primary is down
        run(0)
        a = client(ports[0])
        for r in (b, c):
            # Up again *and* on the new history (a link may still look up before its
            # replica noticed it was dropped to learn the new id).
            wait_until(lambda r=r: _on_history_of(a, r), 30)
        wait_until(lambda: _caught_up(a, c), 20)
        after = info(a)
        stats = [info(r, "stats") for r in (a, b, c)]
        return {
            "replid2 is the old replid": after["master_replid2"] == before["master_replid"],
            "new replid": after["master_replid"] != before["master_replid"],
            "offset before": before["master_repl_offset"],
            "offset after": after["master_repl_offset"],
            "second_repl_offset": after["second_repl_offset"],
            "backlog first byte": after["repl_backlog_first_byte_offset"],
            "backlog histlen": after["repl_backlog_histlen"],
            "full syncs (a, b, c)": [s["sync_full"] for s in stats],
            "partial syncs ok (a, b, c)": [s["sync_partial_ok"] for s in stats],
            "dbsize (a, b, c)": [r.dbsize() for r in (a, b, c)],
            "replica offsets": [info(r)["master_repl_offset"] for r in (b, c)],
        }
    finally:
        for s in servers:
            s.stop()


@pytest.mark.parametrize("data", [False, True], ids=["idle", "expired-key"])
def test_a_primary_restarted_from_its_snapshot_continues_its_history(
    tmp_path: Path, data: bool
) -> None:
    """Redis (loadDataFromDisk): a new replid, the old one as replid2 valid up to the
    saved offset + 1, a backlog starting there; the keys that expired meanwhile go to the
    stream as DEL after it; both chained replicas continue partially and end equal."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    got = {kind: _restart_facts(tmp_path, kind, data) for kind in KINDS}
    assert got["ackdb"] == got["redis"]
