"""SIGKILL the leader of a 3- and a 5-member cluster under a META.SET load: a new leader
within 2 s, and every acknowledged write readable afterwards (on every survivor, and on
the killed member once it returns)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from tests.e2e.load_threads import LoadThreads

from ackdb.node.localcluster import LocalCluster, wait_for
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

pytestmark = pytest.mark.e2e

WRITERS = 4
FAILOVER_MAX_S = 2.0


class Load(LoadThreads):
    """Writer threads doing META.SET against the running members, recording every
    acknowledged key (and when), switching member on any error."""

    def __init__(self, cluster: LocalCluster, writers: int = WRITERS) -> None:
        self.cluster = cluster
        self.ack_times: list[float] = []
        self.errors: list[str] = []
        super().__init__(range(writers))

    def _run(self, w: int) -> None:
        i = 0
        turn = w
        client: Client | None = None
        while not self.stop.is_set():
            try:
                if client is None:
                    live = [m for m in self.cluster.members.values() if m.running()]
                    turn += 1
                    client = Client(live[turn % len(live)].addr, timeout_s=10)
                key, value = f"w{w}-{i}", f"v{i}".encode()
                if client.call("META.SET", key, value) == b"OK":
                    with self.lock:
                        self.acked[key] = value
                        self.ack_times.append(time.monotonic())
                i += 1
            except (OSError, ReplyError) as e:
                with self.lock:
                    self.errors.append(str(e))
                if client is not None:
                    client.close()
                client = None
                i += 1  # the outcome of that key is unknown: never reuse it
                time.sleep(0.02)
        if client is not None:
            client.close()


def check_all_readable(cluster: LocalCluster, node_id: str, acked: dict[str, bytes]) -> None:
    keys = sorted(acked)
    with cluster.client(node_id, timeout_s=30) as c:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            got = c.pipeline([("META.GET", k) for k in chunk])
            missing = [k for k, v in zip(chunk, got, strict=True) if v != acked[k]]
            assert not missing, f"{node_id} lost acknowledged writes: {missing[:10]}"


@pytest.mark.parametrize("n", [3, 5])
def test_leader_sigkill_under_load(tmp_path: Path, n: int) -> None:
    with LocalCluster(tmp_path, n) as cluster:
        cluster.start_all()
        old = cluster.wait_leader()
        old_term = cluster.status(old).term  # type: ignore[union-attr]
        survivors = [i for i in cluster.members if i != old]
        with Load(cluster) as load:
            wait_for(lambda: load.count() >= 200, 30, "writes before the crash")
            t0 = time.monotonic()
            cluster.kill(old, signal.SIGKILL)
            new = cluster.wait_leader(survivors, min_term=old_term + 1, timeout_s=10)
            elected_s = time.monotonic() - t0
            before = load.count()
            wait_for(lambda: load.count() >= before + 200, 30, "writes after the failover")
            with load.lock:
                times = sorted(load.ack_times)
        # Writes were unavailable for the longest stretch without an acknowledgement.
        last_before = max(t for t in times if t <= t0)
        after = [t for t in times if t > last_before]
        gap_s = max(b - a for a, b in zip([last_before, *after], after, strict=False))
        print(
            f"\n{n} members: new leader {new} {elected_s * 1000:.0f} ms after SIGKILL of "
            f"{old}; writes unavailable for {gap_s * 1000:.0f} ms; "
            f"{len(load.acked)} writes acknowledged"
        )
        assert elected_s < FAILOVER_MAX_S
        for node_id in survivors:
            check_all_readable(cluster, node_id, load.acked)
        # The killed member comes back with its log and catches up.
        cluster.start(old)
        check_all_readable(cluster, old, load.acked)
