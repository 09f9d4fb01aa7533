"""Randomized runs of a primary with two replicas: every nemesis at once, chosen by the
seed (replica SIGKILL + restart from its AOF, SIGSTOP of any node past ``repl-timeout``,
partitions — network namespaces when available, the fault proxy otherwise — fsync and
write errors on a replica, and wall-clock jumps), under writers at every acknowledgement
level. Then: heal, convergence, every OK write on every node; the primary's SIGKILL and
the promotion of the most up-to-date replica (WAIT / WAITAOF levels must survive); the
power-cut disks against every WAITAOF count.

The default run is short and uses a fixed seed; ``-m slow`` runs a long one with a fresh
seed (printed, with the replay command, if it fails).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jepsen import netns
from jepsen.checkers import check_ack_counts, check_durability, convergence
from jepsen.nemesis import (
    ClockJump,
    Compose,
    DiskFault,
    KillRestart,
    Nemesis,
    NetPartition,
    Pause,
    ProxyPartition,
)
from jepsen.procs import faketime_available
from jepsen.report import Run, scenario
from jepsen.trio import Trio
from scenario_support import (
    KEYS,
    WAIT1,
    WAITAOF01,
    WAITAOF02,
    WAITAOF11,
    assert_counts,
    assert_durable,
    none_level,
    start_writers,
    wait_acked,
)

pytestmark = pytest.mark.e2e

CONVERGE_S = 30.0
REPLICATED = {"wait1", "waitaof01", "waitaof11", "waitaof02"}


@pytest.fixture
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Run]:
    with scenario(request, tmp_path, default_seed=99) as r:
        yield r


def args() -> list[str]:
    return ["--appendonly", "yes", "--appendfsync", "always", "--repl-timeout", "2"]


def chaos(run: Run, tmp_path: Path, seconds: float) -> None:
    net = netns.Network(["p", "r1", "r2"], seed=run.seed) if netns.available() else None
    clock = faketime_available()
    trio = Trio(tmp_path, args(), [args(), args()], link=net or "proxy", clock=clock)
    try:
        trio.start()
        trio.wait_synced()
        trio.wait_aof_counted(2)
        replicas = lambda: trio.replicas  # noqa: E731
        part: Nemesis = (
            NetPartition(net, ["p", "r1", "r2"], ["isolate", "one-way", "halves"])
            if net is not None
            else ProxyPartition(trio.proxies, ["up", "down", "both", "drop"])
        )
        nemeses: list[Nemesis] = [
            KillRestart(replicas),
            Pause(lambda: list(trio.nodes.values())),
            part,
            DiskFault(replicas, "aof-fsync", "EIO"),
            DiskFault(replicas, "aof-write", "ENOSPC"),
        ]
        if clock:
            nemeses.append(ClockJump(lambda: list(trio.nodes.values()), [-3600, 600, 86400]))
        # Two at once: a partition while a replica's disk fails.
        nemeses.append(Compose(part, DiskFault(replicas, "aof-fsync", "EIO")))
        run.note(f"partitions via {'netns' if net else 'faultproxy'}; clock jumps: {clock}")
        levels = [none_level("always"), WAIT1, WAITAOF01, WAITAOF11, WAITAOF02]
        workers, writers = start_writers(run.history, trio, levels, run.seed)
        schedule = run.schedule(nemeses=nemeses, quiet_s=(0.3, 1.0), active_s=(0.5, 3.0))
        try:
            wait_acked(writers, 5, 10)
            schedule.start()
            time.sleep(seconds)
            schedule.close()
            workers.stop()  # quiesce: digests are compared with no write in flight
            took = convergence(
                trio.primary.client(), [r.client() for r in trio.replicas], CONVERGE_S
            )
            run.note(f"converged in {took:.2f}s after heal")
            old = trio.primary
            old.kill()
            run.history.event("kill", node=old.name)
        finally:
            schedule.close()
            workers.stop()
        ops = run.history.snapshot()
        new = trio.most_up_to_date()
        other = next(r for r in trio.replicas if r is not new)
        trio.promote(new)
        other.kill()
        res = check_durability(
            ops, trio.lists(new, KEYS), lambda op: op.acked and op.level in REPLICATED
        )
        assert_durable(
            res, f"every acknowledged replicated-level write on the promoted {new.name}", run
        )
        disks = trio.disks((new, other), KEYS)
        counts = check_ack_counts(ops, disks, None)
        assert_counts(counts, "WAITAOF counts against the power-cut replica disks", run)
    finally:
        trio.close()
        if net is not None:
            net.close()


def test_chaos_short(run: Run, tmp_path: Path) -> None:
    chaos(run, tmp_path, 8.0)


@pytest.mark.slow
def test_chaos_long_randomized(run: Run, tmp_path: Path) -> None:
    chaos(run, tmp_path, 90.0)
