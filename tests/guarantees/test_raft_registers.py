"""The Raft metadata store's registers are linearizable under faults.

Three ``ackdb node`` members, every peer link through a fault proxy (``jepsen.raft``);
worker threads run ``META.SET`` (unique values), ``META.GET`` and ``META.CAS`` on a few
keys through random members while a seeded schedule kills and restarts members (any
member, or the leader), pauses
them (SIGSTOP past the election timeout), isolates a member or the leader (a minority
partition: the majority goes on), cuts every link (no majority anywhere) and cuts one
member's outgoing links only. The history, split per key, must be linearizable
(``check_linearizable``: Wing–Gong with Lowe's memo from ``ackdb.sim``), where
``-NOQUORUM`` is a definite failure and ``-TRYAGAIN`` or a broken connection an unknown
outcome. After the faults heal, every member's applied index reaches the leader's commit
index within ``CONVERGE_S``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jepsen.checkers import check_linearizable, explain_violation, failed_writes_observed
from jepsen.history import OK
from jepsen.nemesis import KillRestart, Pause
from jepsen.raft import ProxiedCluster, RaftMember, RaftPartition
from jepsen.report import Run, scenario
from jepsen.trio import wait_for
from jepsen.workloads import RegisterWorker, Workers

from ackdb.sim.linearizability import Verdict

pytestmark = pytest.mark.e2e

REQUEST_TIMEOUT_MS = 2000
# docs/cluster.md: -NOQUORUM means "the write was not applied by this request" (the
# proposer's finding, test_findings.py, is fixed: a write a leader saw answers TRYAGAIN).
NOQUORUM_IS_DEFINITE = True
CONVERGE_S = 20.0
KEYS = [f"reg{i}" for i in range(6)]


@pytest.fixture
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Run]:
    with scenario(request, tmp_path, default_seed=2026) as r:
        yield r


def raft_run(run: Run, tmp_path: Path, seconds: float, workers_n: int) -> None:
    pc = ProxiedCluster(tmp_path, 3, ["--request-timeout-ms", str(REQUEST_TIMEOUT_MS)])
    try:
        pc.c.start_all()
        pc.c.wait_leader()
        members = [RaftMember(pc, i) for i in pc.ids]
        live = lambda: [m for m in members if pc.c[m.name].running()]  # noqa: E731

        def leader() -> list[RaftMember]:
            lid = pc.c.leader()
            return [m for m in live() if m.name == lid] or live()

        nemeses = [
            KillRestart(live),
            KillRestart(leader, name="kill-leader"),
            Pause(live),
            RaftPartition(pc, ["isolate", "leader", "all", "one-way"]),
        ]
        run.note("partitions via the fault proxy on every peer link (LocalCluster binds 127.0.0.1)")

        def member(rng: object) -> tuple[str, str]:
            m = pc.c[rng.choice(pc.ids)]  # type: ignore[attr-defined]
            return m.id, m.addr

        workers = Workers()
        for i in range(workers_n):
            w = RegisterWorker(run.history, f"c{i}", member, KEYS, run.seed * 100 + i)
            workers.spawn(f"c{i}", w)
        schedule = run.schedule(nemeses=nemeses, quiet_s=(0.5, 1.5), active_s=(1.0, 3.0))
        try:
            schedule.start()
            time.sleep(seconds)
        finally:
            schedule.close()
            workers.stop()
        ops = run.history.snapshot()
        oks = sum(op.outcome == OK for op in ops if op.process != "nemesis")
        run.note(f"{len(ops)} events, {oks} ok operations over {len(KEYS)} keys")
        # Finding (test_findings.py): a write answered -NOQUORUM may still be applied,
        # though the docs call it not applied. Until that is fixed the history is checked
        # with -NOQUORUM writes as unknown outcomes, and the applied ones are reported.
        unknown = () if NOQUORUM_IS_DEFINITE else ("NOQUORUM",)
        applied = failed_writes_observed(ops, "NOQUORUM")
        run.note(f"-NOQUORUM writes later observed (finding): {len(applied)} {applied[:5]}")
        result = check_linearizable(ops, unknown_errors=unknown)
        run.note(
            f"linearizability: {result.verdict.value} (key {result.key}, {result.steps} steps)"
        )
        if result.verdict == Verdict.VIOLATION:
            run.note(explain_violation(ops, str(result.key)))
        if NOQUORUM_IS_DEFINITE:
            assert applied == [], applied
        assert result.verdict == Verdict.OK, f"{result.verdict.value} on key {result.key}"
        assert oks >= 100, "too few operations completed to check anything"

        leader = pc.c.wait_leader(timeout_s=CONVERGE_S)

        def applied_everywhere() -> bool:
            lv = pc.c.status(leader)
            views = [pc.c.status(i) for i in pc.ids]
            if lv is None or any(v is None for v in views):
                return False
            commit = int(lv.fields["commit_index"])
            return all(int(v.fields["applied_index"]) >= commit for v in views)  # type: ignore[union-attr]

        t0 = time.monotonic()
        wait_for(applied_everywhere, CONVERGE_S, "every member to apply the leader's commit")
        run.note(f"members converged in {time.monotonic() - t0:.2f}s")
    finally:
        pc.close()


def test_meta_registers_linearizable_under_kills_partitions_and_pauses(
    run: Run, tmp_path: Path
) -> None:
    raft_run(run, tmp_path, 10.0, workers_n=6)


@pytest.mark.slow
def test_meta_registers_linearizable_long_randomized(run: Run, tmp_path: Path) -> None:
    raft_run(run, tmp_path, 90.0, workers_n=10)
