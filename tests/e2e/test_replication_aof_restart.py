"""Nodes persisted by the AOF continue their replication history after a clean restart.

Redis cannot (its AOF carries no replication id): a replica restarted from its AOF
needs a full sync. ackdb records the history at a clean stop, with the incremental file's
name and size; proves: a replica and a primary restarted from their AOFs resync partially
(sync_full does not grow), and a record that no longer matches the AOF (bytes appended
after the stop) is ignored, giving a full sync rather than a wrong partial one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from tests.conftest import ServerProcess
from tests.e2e.repl_support import client, sync_stats, wait_caught_up

Start = Callable[..., ServerProcess]


@pytest.fixture
def start(start_node: Start) -> Start:
    """start(name, *directives, port=None): an AOF-persisted node in its own directory
    (appendfsync always)."""

    def run(name: str, *extra: str, port: int | None = None) -> ServerProcess:
        return start_node(name, "--appendonly", "yes", "--appendfsync", "always", *extra, port=port)

    return run


def _stats(p: ServerProcess) -> tuple[int, int]:
    return sync_stats(client(p.port))[:2]


def _caught_up(primary: ServerProcess, replica: ServerProcess) -> None:
    wait_caught_up(client(primary.port), client(replica.port))


def _shutdown(p: ServerProcess) -> None:
    try:
        client(p.port).shutdown()
    except redis.ConnectionError:
        pass
    p.stop()


def _pair(start: Start) -> tuple[ServerProcess, ServerProcess, tuple[str, ...]]:
    primary = start("p")
    args = ("--replicaof", "127.0.0.1", str(primary.port))
    return primary, start("r", *args), args


def test_replica_and_primary_restarted_from_their_aof_resync_partially(start: Start) -> None:
    primary, replica, args = _pair(start)
    pc = primary.client()
    for i in range(500):
        pc.set(f"k{i}", i)
    _caught_up(primary, replica)
    assert _stats(primary) == (1, 0)

    _shutdown(replica)
    for i in range(500, 600):
        pc.set(f"k{i}", i)
    replica = start("r", *args, port=replica.port)
    _caught_up(primary, replica)
    assert _stats(primary) == (1, 1)
    assert replica.client().dbsize() == 600

    # The primary restarts from its AOF: the replica continues with it (replid2).
    _shutdown(primary)
    primary = start("p", port=primary.port)
    primary.client().set("after", "restart")
    _caught_up(primary, replica)
    assert _stats(primary) == (0, 1)
    assert replica.client().get("after") == b"restart"


def test_a_record_the_aof_no_longer_matches_is_ignored(start: Start, tmp_path: Path) -> None:
    primary, replica, args = _pair(start)
    primary.client().set("k", "v")
    _caught_up(primary, replica)
    _shutdown(replica)
    # Bytes appended after the clean stop: the data no longer ends at the recorded
    # offset, so continuing partially would be wrong.
    aofdir = tmp_path / "r" / "appendonlydir"
    incr = sorted(aofdir.glob("*.incr.aof"))[-1]
    with open(incr, "ab") as f:
        f.write(b"*3\r\n$3\r\nSET\r\n$5\r\nstray\r\n$1\r\n1\r\n")
    assert (aofdir / "appendonly.aof.history").exists()
    replica = start("r", *args, port=replica.port)
    _caught_up(primary, replica)
    assert _stats(primary) == (2, 0)
    assert replica.client().get("stray") is None  # the full sync replaced the data
    assert "does not match the AOF" in replica.log()
