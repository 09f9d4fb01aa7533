"""A primary with two replicas under writers while nemeses run: FAILOVER under load,
partitions of the replica links (network namespaces and iptables when available, the
fault proxy otherwise — each test says which in its id and report), SIGSTOP longer than
``repl-timeout``, and disk faults (on any node, the primary too), a full disk and clock
jumps.

After each run the faults heal, the writers stop, and:
- every replica's ``DEBUG DIGEST`` equals the primary's within ``CONVERGE_S``
  (``convergence``);
- every write the primary acknowledged (any level: no node crashed) is on every node
  (``check_durability``);
- where WAITAOF counted replicas while their disks failed, each count is proved against
  the replica's power-cut disk (``check_ack_counts``).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jepsen import netns
from jepsen.checkers import check_ack_counts, check_durability, convergence
from jepsen.history import OK
from jepsen.nemesis import (
    ClockJump,
    DiskFault,
    FullDisk,
    Nemesis,
    NetPartition,
    Pause,
    ProxyPartition,
    Step,
)
from jepsen.procs import Node, faketime_available
from jepsen.report import Run, scenario
from jepsen.trio import Trio, repl_info, wait_for
from jepsen.workloads import Level
from scenario_support import (
    KEYS,
    WAIT1,
    WAITAOF02,
    WAITAOF11,
    assert_counts,
    assert_durable,
    none_level,
    start_writers,
    wait_acked,
)

pytestmark = pytest.mark.e2e

CONVERGE_S = 20.0
REPL_TIMEOUT_S = 2
SHORT_S = 6.0  # nemesis phase of a default run
LONG_S = 60.0  # of a -m slow run


@pytest.fixture
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Run]:
    with scenario(request, tmp_path, default_seed=7) as r:
        yield r


def everything_present(run: Run, trio: Trio) -> None:
    """No node crashed: every write with an OK reply is on every node."""
    ops = run.history.snapshot()
    took = convergence(trio.primary.client(), [r.client() for r in trio.replicas], CONVERGE_S)
    run.note(f"converged in {took:.2f}s after heal")
    for node in trio.nodes.values():
        res = check_durability(ops, trio.lists(node, KEYS), lambda op: op.outcome == OK)
        assert_durable(res, f"every OK write on {node.name}", run)


def base_args(*extra: str) -> list[str]:
    return ["--appendonly", "yes", "--appendfsync", "always",
            "--repl-timeout", str(REPL_TIMEOUT_S), *extra]  # fmt: skip


def run_schedule(
    run: Run, trio: Trio, levels: list[Level], seconds: float, **sched: object
) -> None:
    workers, writers = start_writers(run.history, trio, levels, run.seed)
    schedule = run.schedule(**sched)  # type: ignore[arg-type]
    try:
        wait_acked(writers, 5, 10)
        schedule.start()
        time.sleep(seconds)
    finally:
        schedule.close()
        workers.stop()


# -- FAILOVER under load -----------------------------------------------------------------------


def test_failover_under_load_loses_no_acknowledged_write(run: Run, tmp_path: Path) -> None:
    trio = Trio(tmp_path, base_args(), [base_args(), base_args()]).start()
    try:
        trio.wait_synced()
        workers, writers = start_writers(
            run.history, trio, [none_level("always"), WAIT1], run.seed, per_level=2
        )
        try:
            wait_acked(writers, 20, 10)
            target = trio.nodes["r1"]
            before = {n.name: sync_stats(n) for n in trio.nodes.values()}
            run.history.event("failover", to=target.name)
            t0 = time.monotonic()
            assert trio.primary.call("FAILOVER", "TO", target.host, target.port) == b"OK"
            wait_for(lambda: repl_info(target).get("role") == "master", 30, "the failover")
            old = trio.primary
            trio.primary = target
            target.role_args = []
            for r in trio.replicas:
                r.role_args = ["--replicaof", target.host, str(target.port)]
            run.note(f"FAILOVER TO took {time.monotonic() - t0:.2f}s")
            run.history.event("failover-done", to=target.name, old=old.name)
            wait_acked(writers, 40, 10)
        finally:
            workers.stop()
        everything_present(run, trio)
        after = {n.name: sync_stats(n) for n in trio.nodes.values()}
        delta = {k: tuple(a - b for a, b in zip(after[k], before[k], strict=True)) for k in after}
        run.note(f"(sync_full, sync_partial_ok) served per node during the failover: {delta}")
        # PSYNC2: a switchover costs no full sync (old primary and the other replica continue).
        assert all(d[0] == 0 for d in delta.values()), delta
    finally:
        trio.close()


def sync_stats(n: Node) -> tuple[int, int]:
    s = n.client(5.0).info("stats")
    return int(s["sync_full"]), int(s["sync_partial_ok"])


# -- partitions of the replica links ---------------------------------------------------------


def partition_trio(run: Run, tmp_path: Path, mechanism: str) -> tuple[Trio, Nemesis, object]:
    if mechanism == "netns":
        if not netns.available():
            pytest.skip("network namespaces / iptables unavailable: the proxy variant runs")
        net = netns.Network(["p", "r1", "r2"], seed=run.seed)
        trio = Trio(tmp_path, base_args(), [base_args(), base_args()], link=net)
        nem: Nemesis = NetPartition(net, ["p", "r1", "r2"], ["isolate", "one-way", "halves"])
        run.note(f"partitions via network namespaces {net.prefix}.0/24 and iptables")
        return trio, nem, net
    trio = Trio(tmp_path, base_args(), [base_args(), base_args()], link="proxy")
    nem = ProxyPartition(trio.proxies, ["up", "down", "both", "drop"])
    run.note("partitions via the fault proxy (one per replica link)")
    return trio, nem, None


@pytest.mark.parametrize("mechanism", ["netns", "proxy"])
def test_partitions_of_replica_links_heal_and_converge(
    run: Run, tmp_path: Path, mechanism: str
) -> None:
    trio, nem, net = partition_trio(run, tmp_path, mechanism)
    try:
        trio.start()
        trio.wait_synced()
        run_schedule(run, trio, [none_level("always"), WAIT1], SHORT_S, nemeses=[nem],
                     quiet_s=(0.3, 1.0), active_s=(1.0, 2.5))  # fmt: skip
        everything_present(run, trio)
    finally:
        trio.close()
        if net is not None:
            net.close()  # type: ignore[attr-defined]


# -- SIGSTOP longer than repl-timeout ------------------------------------------------------------


def test_sigstop_longer_than_repl_timeout(run: Run, tmp_path: Path) -> None:
    trio = Trio(tmp_path, base_args(), [base_args(), base_args()]).start()
    try:
        trio.wait_synced()
        pause_r1 = Pause(lambda: [trio.nodes["r1"]])
        pause_p = Pause(lambda: [trio.nodes["p"]])
        pause = REPL_TIMEOUT_S * 2 + 0.5
        script = [Step(0.2, pause_r1, pause), Step(pause + 1.0, pause_p, pause)]
        run_schedule(run, trio, [none_level("always"), WAIT1], 2 * pause + 2.0, script=script)
        everything_present(run, trio)
        run.note(f"r1 log mentions timeouts: {'timeout' in trio.nodes['r1'].log().lower()}")
    finally:
        trio.close()


# -- disks and clocks -----------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[bool]:
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True, capture_output=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


def test_disk_faults_full_disk_and_clock_jumps(run: Run, tmp_path: Path) -> None:
    clock = faketime_available()
    with tmpfs(tmp_path / "r2", "16m") as mounted:
        trio = Trio(tmp_path, base_args(), [base_args(), base_args()], clock=clock)
        try:
            trio.start()
            trio.wait_synced()
            trio.wait_aof_counted(2)
            every = lambda: list(trio.nodes.values())  # noqa: E731
            nemeses: list[Nemesis] = [DiskFault(every, "aof-fsync", "EIO"),
                                      DiskFault(every, "aof-write", "ENOSPC")]  # fmt: skip
            if mounted:
                nemeses.append(FullDisk(trio.nodes["r2"].dir))
            if clock:
                nemeses.append(ClockJump(lambda: list(trio.nodes.values()), [-3600, 3600, 86400]))
            run.note(f"full tmpfs: {mounted}; clock jumps via libfaketime: {clock}")
            run_schedule(run, trio, [none_level("always"), WAIT1, WAITAOF02, WAITAOF11], SHORT_S,
                         nemeses=nemeses, quiet_s=(0.2, 0.6), active_s=(0.8, 1.5))  # fmt: skip
            everything_present(run, trio)
            ops = run.history.snapshot()
            disks = trio.disks(trio.nodes.values(), KEYS)
            primary = disks.pop(trio.primary.name)
            counts = check_ack_counts(ops, disks, primary)
            assert_counts(counts, "WAITAOF counts against the power-cut disks", run)
            res = check_durability(ops, primary, lambda op: op.acked and op.level == "always")
            assert_durable(res, "appendfsync always writes on the primary's power-cut disk", run)
        finally:
            trio.close()
