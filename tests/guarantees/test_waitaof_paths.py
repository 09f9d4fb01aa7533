"""The subtle paths of WAITAOF's replica count, each checked against what the replica's
disk really holds (SIGKILL, then the power-loss oracle cuts its files to what it had
fsynced, then it restarts alone from its AOF; ``check_ack_counts``):

- a replica whose AOF rewrite after a full sync is still running when writers ask for
  ``WAITAOF 0 1`` (it must not be counted before its AOF holds the synced data set);
- a primary demoted by ``REPLICAOF`` while clients are blocked in ``WAITAOF 0 1`` on it,
  its only replica under ``appendfsync no`` (whatever those clients are answered, a count
  must be backed by that replica's disk).

The third path, a replica under ``appendfsync no``, runs in test_replication_acks.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jepsen.checkers import check_ack_counts
from jepsen.history import History
from jepsen.report import Run, scenario
from jepsen.trio import Trio, repl_info, wait_for
from jepsen.workloads import Level
from scenario_support import KEYS, assert_counts, start_writers

pytestmark = pytest.mark.e2e

POPULATE_KEYS = 100_000


@pytest.fixture
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Run]:
    with scenario(request, tmp_path, default_seed=1313) as r:
        yield r


def persistence(node: object) -> dict[str, object]:
    try:
        return node.client(2.0).info("persistence")  # type: ignore[attr-defined, no-any-return]
    except Exception:  # noqa: BLE001 -- a stopped or loading node
        return {}


def watch_rewrite(node: object, history: History, stop: threading.Event) -> None:
    """Record in the history when the node's AOF rewrite starts and ends."""
    was = None
    while not stop.is_set():
        now = persistence(node).get("aof_rewrite_in_progress")
        if now is not None and now != was:
            history.event("aof_rewrite_in_progress", node="r1", value=now)
            was = now
        time.sleep(0.01)


def test_replica_is_not_counted_before_its_rewrite_after_a_full_sync(
    run: Run, tmp_path: Path
) -> None:
    aof = ["--appendonly", "yes", "--appendfsync", "always"]
    trio = Trio(tmp_path, aof, [aof])
    replica = trio.nodes["r1"]
    trio.primary.start()
    try:
        trio.primary.call("DEBUG", "POPULATE", POPULATE_KEYS, "bulk", 64, timeout_s=60)
        level = Level("waitaof", 0, 1, 200, label="waitaof01")
        workers, writers = start_writers(run.history, trio, [level], run.seed, per_level=3)
        stop_watch = threading.Event()
        try:
            time.sleep(0.5)
            run.history.event("attach", node="r1")
            trio.attach(replica, trio.primary, start=True)
            watcher = threading.Thread(
                target=watch_rewrite, args=(replica, run.history, stop_watch), daemon=True
            )
            watcher.start()
            wait_for(lambda: sum(w.acked for w in writers) >= 20, 60, "acks counting r1")
            time.sleep(0.3)
            run.history.event("kill", node="r1")
            replica.kill()
        finally:
            stop_watch.set()
            workers.stop()
        ops = run.history.snapshot()
        disk = trio.disk_lists(replica, KEYS, power=True)
        counts = check_ack_counts(ops, {"r1": disk}, None)
        run.note(f"power-loss cuts: {trio.cuts}")
        assert_counts(counts, "WAITAOF counts against r1's disk", run)
        assert counts.counted_replicas >= 20
        rewrites = [op.extra for op in ops if op.f == "aof_rewrite_in_progress"]
        run.note(f"rewrite timeline: {rewrites}")
    finally:
        trio.close()


def test_demoted_primary_with_clients_blocked_in_waitaof(run: Run, tmp_path: Path) -> None:
    trio = Trio(
        tmp_path,
        ["--appendonly", "yes", "--appendfsync", "everysec"],
        [["--appendonly", "yes", "--appendfsync", "no"]],
    ).start()
    old, r = trio.primary, trio.nodes["r1"]
    try:
        trio.wait_synced()
        level = Level("waitaof", 0, 1, 10_000, label="waitaof01")
        workers, _ = start_writers(run.history, trio, [level], run.seed, per_level=4)
        try:
            # Every writer is blocked: its replica never fsyncs under `appendfsync no`.
            wait_for(lambda: repl_info(old).get("connected_slaves") == 1, 10, "the link")
            wait_for(lambda: blocked_clients(old) >= 4, 10, "4 clients blocked in WAITAOF")
            run.history.event("demote", node=old.name, to=r.name)
            trio.promote(r)  # r: REPLICAOF NO ONE; old: REPLICAOF r
            trio.wait_synced()
            wait_for(lambda: blocked_clients(old) == 0, 15, "the blocked clients answered")
        finally:
            workers.stop()
        ops = run.history.snapshot()
        blocked = [op for op in ops if op.f == "rpush" and op.node == old.name]
        replies = sorted({str(op.ack or op.extra.get("ack_error")) for op in blocked})
        run.note(f"replies of the clients blocked on the demoted primary: {replies}")
        assert len(blocked) >= 4
        # After the demotion the writers follow the new primary, whose replica is `old`.
        disks = trio.disks((r, old), KEYS)
        counts = check_ack_counts(blocked, {r.name: disks[r.name]}, None)
        assert_counts(counts, f"demoted primary's WAITAOF counts against {r.name}'s disk", run)
        after = [op for op in ops if op.f == "rpush" and op.node == r.name]
        counts = check_ack_counts(after, {old.name: disks[old.name]}, None)
        assert_counts(counts, f"new primary's WAITAOF counts against {old.name}'s disk", run)
    finally:
        trio.close()


def blocked_clients(node: object) -> int:
    try:
        return int(node.client(2.0).info("clients").get("blocked_clients", 0))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return -1
