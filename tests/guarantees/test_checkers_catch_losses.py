"""The durability checker finds real losses in real runs — the runs where the
acknowledgement given claims nothing about the fault:

- writes acknowledged with no WAIT while both replica links are blackholed (fault proxy),
  then the primary is SIGKILLed and a replica promoted: the checker reports the writes lost (and, in the
  same run, finds every ``WAIT 1``-acknowledged write on the promoted replica: none was
  acknowledged while the replicas were stopped);
- writes to a primary under ``appendfsync no``, then a power loss (the oracle cuts its AOF
  to what it had fsynced) and a restart from its AOF: the checker reports them lost (the
  same test proves ``always`` loses nothing and ``everysec`` only its last seconds).

Each asserts the checker *does* report a loss: a checker that always says "fine" fails
here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jepsen.checkers import check_durability
from jepsen.report import Run, scenario
from jepsen.trio import Trio
from scenario_support import KEYS, WAIT1, assert_durable, none_level, start_writers, wait_acked

pytestmark = pytest.mark.e2e


@pytest.fixture
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Run]:
    with scenario(request, tmp_path, default_seed=404) as r:
        yield r


def test_unreplicated_writes_are_reported_lost_after_promotion(run: Run, tmp_path: Path) -> None:
    args = ["--appendonly", "no"]
    trio = Trio(tmp_path, args, [args, args], link="proxy", fsync_log=False).start()
    try:
        trio.wait_synced()
        workers, writers = start_writers(run.history, trio, [none_level("none"), WAIT1], run.seed)
        try:
            wait_acked(writers, 20, 10)
            for r in trio.replicas:
                trio.proxies[r.name].blackhole("down")
            run.history.event("blackhole", links=[r.name for r in trio.replicas])
            n = writers[0].acked
            wait_acked(writers[:1], n + 50, 10, min_s=0.5)
            old = trio.primary
            old.kill()
            run.history.event("kill", node=old.name)
        finally:
            workers.stop()
        new = trio.most_up_to_date()
        trio.promote(new)
        ops = run.history.snapshot()
        final = trio.lists(new, KEYS)
        replicated = check_durability(ops, final, lambda op: op.acked and op.level == "wait1")
        assert_durable(replicated, "WAIT 1 writes on the promoted replica", run)
        unreplicated = check_durability(ops, final, lambda op: op.acked and op.level == "none")
        run.note(f"unacknowledged-by-replicas writes: {unreplicated.explain()}")
        assert unreplicated.lost, "the checker must report the writes lost with the primary"
        assert not (unreplicated.phantom or unreplicated.duplicated or unreplicated.reordered)
    finally:
        trio.close()


EVERYSEC_WINDOW_S = 2.5  # everysec: ~1 s between fsyncs, and a write may wait 2 s


@pytest.mark.parametrize("policy", ["always", "everysec", "no"])
def test_a_single_primary_under_each_appendfsync_policy(
    run: Run, tmp_path: Path, policy: str
) -> None:
    """A primary alone, writers with no WAIT. SIGKILL + restart from its AOF keeps every
    acknowledged write under every policy (the kernel keeps what was written). A power
    loss (the oracle's cut) keeps every one under ``always``, loses at most the last
    ``EVERYSEC_WINDOW_S`` under ``everysec`` (the checker proves the window from the
    history's times), and loses them under ``no`` (the checker must report it)."""
    trio = Trio(tmp_path, ["--appendonly", "yes", "--appendfsync", policy], []).start()
    try:
        workers, writers = start_writers(run.history, trio, [none_level(policy)], run.seed)
        try:
            wait_acked(writers, 200, 10, min_s=1.5)
        finally:
            workers.stop()
        ops = run.history.snapshot()
        crashed = check_durability(ops, trio.disk_lists(trio.primary, KEYS, power=False),
                                   lambda op: op.acked)  # fmt: skip
        assert_durable(crashed, f"SIGKILL under appendfsync {policy}", run)
        res = check_durability(ops, trio.disk_lists(trio.primary, KEYS, power=True),
                               lambda op: op.acked)  # fmt: skip
        run.note(f"power-loss cuts: {trio.cuts}")
        run.note(f"after power loss under {policy}: {res.explain()}")
        assert not (res.phantom or res.duplicated or res.reordered)
        if policy == "always":
            assert_durable(res, "power loss under appendfsync always", run)
        elif policy == "everysec":
            last_ok = max(op.complete_ns or 0 for op in ops if op.acked)
            lost = {tok.split(" ")[0].split(":")[-1] for tok in res.lost}
            old = [op for op in ops if op.acked and op.value in lost
                   and (last_ok - (op.complete_ns or 0)) / 1e9 > EVERYSEC_WINDOW_S]  # fmt: skip
            assert not old, f"everysec lost writes older than {EVERYSEC_WINDOW_S}s: {old[:5]}"
            run.note(f"everysec lost {len(lost)} writes of the last {EVERYSEC_WINDOW_S}s")
        else:
            assert res.lost, "the checker must report the unfsynced writes lost"
    finally:
        trio.close()


def test_promoting_the_replica_wait_did_not_count_loses_wait_acknowledged_writes(
    run: Run, tmp_path: Path
) -> None:
    """Redis's own window, shown: ``WAIT 1`` counts *a* replica; if the primary dies and
    the other one is promoted (here r2, stopped while r1 acknowledged), writes that WAIT 1
    acknowledged are gone. The harness promotes the most up-to-date replica, which closes
    the window for a single failure; an operator or a failover that picks another does
    not. (r2's link is blackholed by its proxy rather than r2 stopped: a stopped process
    still finds the stream in its socket buffer when it resumes.)"""
    args = ["--appendonly", "no"]
    trio = Trio(tmp_path, args, [args, args], link="proxy", fsync_log=False).start()
    try:
        trio.wait_synced()
        r1, r2 = trio.nodes["r1"], trio.nodes["r2"]
        workers, writers = start_writers(run.history, trio, [WAIT1], run.seed)
        try:
            wait_acked(writers, 20, 10)
            trio.proxies[r2.name].blackhole("down")
            run.history.event("blackhole", link=r2.name, direction="down")
            wait_acked(writers, writers[0].acked + 50, 10)
            trio.primary.kill()
            run.history.event("kill", node="p")
        finally:
            workers.stop()
        assert trio.most_up_to_date() is r1  # the choice the harness would make
        trio.promote(r2)  # ... and the one that loses
        ops = run.history.snapshot()
        res = check_durability(ops, trio.lists(r2, KEYS), lambda op: op.acked)
        run.note(f"WAIT 1 writes on the replica WAIT did not count: {res.explain()}")
        assert res.lost, "WAIT 1-acknowledged writes are missing on the stopped replica"
    finally:
        trio.close()
