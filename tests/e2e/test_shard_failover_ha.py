"""Replica high availability and a returning old primary (issue 15, docs/failover.md, "A
unit that leaves its node"), with real processes: a three-node cluster on three loopback
hosts, one database of one shard with one replica, ``aof-everysec``.

The primary takes writes its replica never receives (the replica is stopped), then its
node dies; the replica is promoted, and after ``replica_ha_ms`` (30 s with the ``high``
profile) the old primary's replica slot moves to the third node. When the old node comes
back its unit is no longer its own: before the directory goes, the unit is started as a
fenced primary and checked (ACKDB.DIVERGED per fork), and the file of the writes only it
had is kept in ``DATA/diverged/`` -- listed by ``ackdb db diverged`` and ``cluster
status`` until cleared.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.failover_support import (
    DB,
    TIMEOUT_S,
    ackdb,
    failover_cluster,
    instances,
    settled,
    shard_client,
    shard_view,
)

from ackdb.cluster.failover import PROFILES
from ackdb.node.localcluster import LocalCluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with failover_cluster(tmp_path) as c:
        yield c


def test_a_returning_primary_whose_slot_moved_keeps_its_divergent_writes(
    cluster: LocalCluster,
) -> None:
    s = wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled")
    old, (replica, _) = s.primary, s.replicas[0]
    third = next(n for n in cluster.members if n not in (old, replica))
    rpid = int(instances(cluster)[replica]["pid"])
    os.kill(rpid, signal.SIGSTOP)  # the replica receives nothing from here on
    try:
        with shard_client(cluster, old, s.primary_port) as c:
            assert c.call("CLIENT", "KILL", "TYPE", "replica") == 1
            for i in range(5):
                assert c.call("SET", f"diverged-{i}", str(i)) == b"OK"
            assert c.call("WAITAOF", "1", "0", "5000")[0] == 1  # on its disk, not elsewhere
        cluster.kill_node(old)
    finally:
        os.kill(rpid, signal.SIGCONT)
    ha_s = PROFILES["high"].replica_ha_ms / 1000

    def moved() -> bool:
        v = shard_view(cluster, node=replica)
        return v is not None and v.primary == replica and [r for r, _ in v.replicas] == [third]

    wait_for(moved, ha_s + TIMEOUT_S, "the old primary's slot moved to the third node")
    cluster.start(old)
    unit_dirs = lambda: list((cluster[old].dir / "shards").glob("*"))  # noqa: E731
    kept = cluster[old].dir / "diverged"
    wait_for(lambda: not unit_dirs() and any(kept.glob("*/diverged-*")), TIMEOUT_S, "kept")
    (path,) = kept.glob("*/diverged-*")
    assert "checked for divergent writes" in cluster[old].log()
    m = cluster[replica]
    out = ackdb("db", "diverged", DB, "--node", m.addr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert str(path) in out.stdout and "its shard left the node" in out.stdout, out.stdout
    out = ackdb("cluster", "status", "--host", m.host, "--port", str(m.port))
    assert str(path) in out.stdout, out.stdout
    out = ackdb("db", "diverged", DB, "--node", m.addr, "--clear-all")
    assert out.returncode == 0 and "1 file(s) removed" in out.stdout, out.stdout + out.stderr
    assert not path.exists()
    new = shard_view(cluster, node=replica)
    assert new is not None
    with shard_client(cluster, new.primary, new.primary_port) as c:
        assert c.call("EXISTS", "diverged-0") == 0  # the new history never had them
