"""Every acknowledgement level of a primary with two replicas, checked against what the
nodes hold after the primary is SIGKILLed.

Writers at every level run at once on the same keys (``RPUSH`` of unique tokens, so the
durability checker can decide every write): no acknowledgement, ``WAIT 1``, ``WAITAOF 0
1``, ``WAITAOF 1 1`` and ``WAITAOF 0 2``; the primary runs ``appendfsync always``, the
replicas the policy under test (always / everysec / no). Then:

1. the primary is SIGKILLed and the most up-to-date replica promoted (``REPLICAOF NO
   ONE``): every write acknowledged by WAIT 1 or WAITAOF * n>=1 must be on it
   (``check_durability``);
2. every node is SIGKILLed, its files cut to what it had fsynced (the power-loss oracle)
   and it is restarted alone from its AOF: every ``WAITAOF l n`` reply must be backed by
   the primary's disk (l = 1) and ``n`` replica disks (``check_ack_counts``), and every
   write acknowledged under the primary's ``appendfsync always`` must be on its disk;
3. the old primary and the other replica follow the promoted one, and every digest
   equals the new primary's within ``CONVERGE_S`` (``convergence``).

Under ``appendfsync no`` a replica's fsynced offset moves only with a rewrite, so WAITAOF
must count it (almost) never; the count checker proves any count it gives against the cut
disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jepsen.checkers import check_ack_counts, check_durability, convergence
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

CONVERGE_S = 20.0
LOAD_S = 4.0
REPLICATED = {"wait1", "waitaof01", "waitaof11", "waitaof02"}


@pytest.fixture
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Run]:
    with scenario(request, tmp_path, default_seed=13) as r:
        yield r


def trio_for(tmp_path: Path, policy: str) -> Trio:
    aof = ["--appendonly", "yes", "--repl-diskless-sync", "no"]
    return Trio(
        tmp_path,
        [*aof, "--appendfsync", "always"],
        [[*aof, "--appendfsync", policy] for _ in range(2)],
    )


@pytest.mark.parametrize("policy", ["always", "everysec", "no"])
def test_acknowledged_writes_survive_primary_kill_promotion_and_power_loss(
    run: Run, tmp_path: Path, policy: str
) -> None:
    trio = trio_for(tmp_path, policy).start()
    try:
        trio.wait_synced()
        if policy != "no":
            trio.wait_aof_counted(2)
        levels = [none_level("always"), WAIT1, WAITAOF01, WAITAOF11, WAITAOF02]
        workers, writers = start_writers(run.history, trio, levels, run.seed)
        try:
            reachable = writers if policy != "no" else writers[:2]
            wait_acked(reachable, 30, LOAD_S, min_s=2.0)
            old = trio.primary
            run.history.event("kill", node=old.name)
            old.kill()
        finally:
            workers.stop()
        ops = run.history.snapshot()

        # 1. Promotion of the most up-to-date replica.
        new = trio.most_up_to_date()
        other = next(r for r in trio.replicas if r is not new)
        trio.promote(new)
        other.kill()  # keep its disk as it was when the primary died
        run.history.event("promote", node=new.name)
        promoted = trio.lists(new, KEYS)
        res = check_durability(ops, promoted, lambda op: op.acked and op.level in REPLICATED)
        assert_durable(res, f"after promoting {new.name}", run)
        assert res.checked > 0

        # 2. Power loss of every node: what each disk really holds.
        disks = trio.disks((old, new, other), KEYS)
        counts = check_ack_counts(ops, {k: v for k, v in disks.items() if k != old.name},
                                  disks[old.name])  # fmt: skip
        assert_counts(counts, "WAITAOF counts against the disks", run)
        res = check_durability(ops, disks[old.name], lambda op: op.acked and op.level == "always")
        assert_durable(res, "appendfsync always on the old primary's disk", run)
        run.note(f"power-loss cuts (file: bytes before, after): {trio.cuts}")

        # 3. Everyone follows the promoted node and converges.
        new.start()
        for n in (old, other):
            trio.attach(n, new, start=True)
        took = convergence(new.client(), [old.client(), other.client()], CONVERGE_S)
        run.note(f"converged in {took:.2f}s")
    finally:
        trio.close()
