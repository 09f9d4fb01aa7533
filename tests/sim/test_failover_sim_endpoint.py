"""The failover simulator's endpoint is the product's (src/ackdb/sim/fo_endpoint.py): the
real Session, Router and proxy/failover.py behind a simulated shell on every node.

A planned failover parks a client's writes in the session (proxy/failover.py ``park``)
and sends them to the new primary once the topology names it, which acknowledges them;
writes a cut-off primary refused as fenced are taken back (``take``) and sent again to
the new primary;
an endpoint that tells a client a write in flight on a lost shard connection succeeded
is caught by the checks; and what the simulator found with the real endpoint in front.
"""

from __future__ import annotations

from typing import Any

import pytest

from ackdb.proxy import failover, session
from ackdb.sim.failover_world import FailoverWorld, FoResult, run_seed
from ackdb.sim.fo_faults import KINDS, strike
from ackdb.sim.world import SimFailure

pytestmark = pytest.mark.sim

QUIET = (0,) * len(KINDS)


def _planned_failover(seed: int, monkeypatch: pytest.MonkeyPatch) -> tuple[FailoverWorld, set[int]]:
    """A world with no random fault: an operator's DB.FAILOVER at 5 s under the load.
    Returns it (run) and the ids of the writes the sessions parked."""
    parked: set[int] = set()
    park = failover.park

    def spy(s: Any, shard: int, argv: Any, sink: Any, shared: bool) -> None:
        if isinstance(argv, list) and argv[0] == b"SET":
            parked.add(int(argv[2][1:]))
        park(s, shard, argv, sink, shared)

    monkeypatch.setattr(failover, "park", spy)
    w = FailoverWorld(seed, weights=QUIET)
    w.queue.schedule(5000, lambda: strike(w, "failover", w.leader() or "n1", 1000))
    try:
        w.run()
    except SimFailure as exc:
        pytest.fail(str(exc), pytrace=False)
    return w, parked


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_writes_parked_during_a_planned_failover_go_to_the_new_primary(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, parked = _planned_failover(seed, monkeypatch)
    final = w.final_shard()
    assert final.epoch == 2
    acked = {wid: w.checker.acked[wid] for wid in parked if wid in w.checker.acked}
    assert acked, "no parked write was acknowledged"
    # The client read +OK for each from its endpoint; the primary that answered it is the
    # new one, at the new epoch.
    assert {(node, epoch) for _, node, epoch in acked.values()} == {
        (final.primary.node, final.epoch)
    }
    assert all(wid in w.shards[final.primary.node].history_set for wid in acked)


def _primary_isolated(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[FailoverWorld, dict[int, bytes]]:
    """A world with no random fault: the primary's node cut off both ways for 3 s at 5 s.
    Returns it (run) and the writes the sessions took back after a primary refused them
    (proxy/failover.py ``take``), with the refusal."""
    resent: dict[int, bytes] = {}
    take = failover.take

    def spy(s: Any, shard: int, sink: Any, raw: bytes, later: list[Any]) -> Any:
        taken = take(s, shard, sink, raw, later)
        argv = failover.resend_argv(sink)
        if taken is not None and argv is not None and argv[0] == b"SET":
            resent[int(argv[2][1:])] = raw
        return taken

    monkeypatch.setattr(failover, "take", spy)
    w = FailoverWorld(seed, weights=QUIET)

    def isolate() -> None:
        rec = w.shard_record(w.leader() or "n1")
        assert rec is not None
        strike(w, "isolate", rec.primary.node, 3000)

    w.queue.schedule(5000, isolate)
    try:
        w.run()
    except SimFailure as exc:
        pytest.fail(str(exc), pytrace=False)
    return w, resent


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_writes_a_cut_off_primary_refused_are_sent_again_to_the_new_one(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint on the cut-off node still routes to its primary, which refuses once
    its lease runs out (-TRYAGAIN ... fenced; -READONLY once demoted): the session sends
    those writes again when its topology names the new primary, which acknowledges them."""
    w, resent = _primary_isolated(seed, monkeypatch)
    final = w.final_shard()
    assert final.epoch == 2 and resent
    assert any(raw.startswith(b"-TRYAGAIN this shard is fenced") for raw in resent.values())
    acked = [w.checker.acked[wid] for wid in resent if wid in w.checker.acked]
    assert acked and {(node, epoch) for _, node, epoch in acked} == {
        (final.primary.node, final.epoch)
    }


def test_checks_catch_an_endpoint_that_acknowledges_a_lost_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A write in flight on a shard connection that breaks may or may not have run: the
    endpoint answers -TRYAGAIN. One that answered +OK instead is caught."""
    monkeypatch.setattr(session, "LOST", b"+OK\r\n")
    for seed in range(1, 11):
        try:
            run_seed(seed)
        except SimFailure as e:
            assert "no primary did" in str(e), str(e)
            return
    pytest.fail("no seed caught it")


def _restarted_then_isolated() -> FoResult:
    return run_seed(
        5,
        weights=tuple(1 if k in ("kill", "isolate") else 0 for k in KINDS),
        guarantee=1,
        overlap=0.0,
    )


def test_a_restarted_primary_keeps_the_writes_of_its_new_history() -> None:
    # Found by this simulator once clients wrote through the real endpoint: the primary
    # n1 is killed and restarted before detection (as the primary, on a new replid; the
    # old one becomes its replid2), acknowledges 4 writes (its lease renewed) that its
    # replicas never get, and is cut off; n2 is promoted at the old replid's offset
    # 3461. n1's ACKDB.DIVERGED(old replid, 3461) takes the replid2 case of
    # ``diverged_range``: "what came after we left it is on our new history, which is
    # the new primary's" -- not so here (n1's new history is its own, at 3609), so it
    # answered "nothing diverged" and the full sync dropped the 4 writes: a silent loss.
    # Fixed: a primary's bytes past the fork are all its own (``diverged_range``'s
    # ``own``), so they are saved as divergent and nothing is lost silently.
    _restarted_then_isolated()
