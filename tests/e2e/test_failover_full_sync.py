"""Failover during a full sync (issue 15 item 8), with real processes: one shard with two
replicas (A and B) under a WAIT 1 load. B's shard process is SIGKILLed; its agent
restarts it, and since a crash leaves no replication history it full-syncs from the
primary. While B is still in that full sync, the primary's whole node is SIGKILLed.

The controller must promote A, the replica that holds everything (B's report is on a
history of its own, or on the primary's at a lower offset), and every write WAIT 1
acknowledged must be readable afterwards -- while B was syncing only A could
acknowledge. Then B, and the old primary's node once back, follow the new primary.

Slow (its own cluster, a dataset large enough that a full sync takes a while).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.failover_support import (
    TIMEOUT_S,
    Writer,
    check_readable,
    endpoint,
    failover_cluster,
    primary_moved,
    settled,
    shard_client,
    wait_writes,
)

from ackdb.node.localcluster import LocalCluster, wait_for
from ackdb.node.shardfiles import send_signal
from ackdb.resp.client import ReplyError

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEYS = 200_000  # about 30 MB in the shard: a full sync of a second or more
FAILOVER_MAX_S = 20.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with failover_cluster(tmp_path, replicas=2) as c:
        yield c


def _syncing(c: LocalCluster, node_id: str, port: int) -> bool:
    """``node_id``'s instance is in a full sync (receiving or loading the snapshot)."""
    try:
        with shard_client(c, node_id, port, timeout_s=1) as cl:
            info = cl.call("INFO", "replication").decode()
    except (OSError, ReplyError):
        return False
    return "master_sync_in_progress:1" in info


def test_failover_while_a_replica_full_syncs(cluster: LocalCluster) -> None:
    s = wait_for(lambda: settled(cluster, 3), TIMEOUT_S, "the shard settled")
    (a, a_port), (b, b_port) = s.replicas
    with endpoint(cluster, s.primary, timeout_s=60) as cl:
        value = "x" * 100
        for start in range(0, KEYS, 5000):
            pairs = [a for i in range(start, start + 5000) for a in (f"fill:{i}", value)]
            assert cl.call("MSET", *pairs) == b"OK"
        assert cl.call("WAIT", "2", "30000") == 2
    others = [n for n in cluster.members if n != s.primary]
    with Writer(cluster, others) as w:
        wait_writes(w, 30)
        b_pid = cluster.unit_pids(b, "shards")
        assert len(b_pid) == 1
        send_signal(next(iter(b_pid.values())), signal.SIGKILL)
        wait_for(lambda: _syncing(cluster, b, b_port), TIMEOUT_S, f"{b} in a full sync")
        caught = time.monotonic()
        cluster.kill_node(s.primary)
        killed = time.monotonic()
        new = wait_for(lambda: primary_moved(cluster, s), FAILOVER_MAX_S, "a new primary")
        assert killed - caught < 2  # (the kill came while B was syncing, not long after)
        assert new.primary == a, f"promoted {new.primary}, not the complete replica {a}"
        wait_writes(w, 30)
    check_readable(cluster, a, w.acked)
    with endpoint(cluster, a, timeout_s=60) as cl:
        got = cl.call("MGET", *(f"fill:{i}" for i in range(0, KEYS, 997)))
        assert got == [value.encode()] * len(got)
    cluster.start(s.primary)
    back = wait_for(lambda: settled(cluster, 3), 2 * TIMEOUT_S, "all three back, following A")
    assert back.primary == a
    with endpoint(cluster, a) as cl:
        assert cl.call("WAIT", "2", "30000") == 2
    digests = set()
    for node_id, port in ((a, back.primary_port), *back.replicas):
        with shard_client(cluster, node_id, port) as cl:
            digests.add(cl.call("DEBUG", "DIGEST"))
    assert len(digests) == 1  # B and the old primary hold exactly what A holds
