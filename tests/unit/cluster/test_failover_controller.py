"""The failover controller (ackdb.cluster.failover): the profiles, the promotion rule
against a naive reference, detection, the lease wait, strict and available policies,
planned failover and its abort, maintenance, replica HA and the status lines -- each
driven through the real metadata state machine (the controller's proposals applied)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.cluster.test_dbops import Log, cluster, db

from ackdb.cluster import commands as c
from ackdb.cluster.commands import Op
from ackdb.cluster.databases import Report, ShardState
from ackdb.cluster.failover import (
    HANDOVER_WAIT_MS,
    PROFILES,
    FailoverController,
    best_report,
    maintenance_note,
    reports_needed,
)
from ackdb.cluster.reconcile import Submit
from ackdb.consensus import Role, Status

HIGH = PROFILES["high"]
NODES = ("n1", "n2", "n3", "n4")


def leader(term: int = 2, role: Role = Role.LEADER) -> Status:
    return Status("n1", role, term, "n1", 5, 5, NODES, {}, 5, None)


class World:
    """A cluster's metadata, a controller on its leader, and when each node was seen."""

    def __init__(self, nodes: int = 3, **opts: object) -> None:
        self.log: Log = cluster(nodes)
        assert self.log.create("d", **opts) == c.OK
        self.ctl = FailoverController(retry_ms=100)
        self.seen: dict[str, int] = {}
        self.leading_since = 0
        self.now = 0

    def shard(self, index: int = 0):  # type: ignore[no-untyped-def]
        return db(self.log, "d").shards[index]

    def see(self, *nodes: str) -> None:
        for n in nodes:
            self.seen[n] = self.now

    def step(self, apply: bool = True) -> list[Submit]:
        out = self.ctl.step(leader(), self.log.store, self.now, self.seen, self.leading_since)
        if apply:
            for s in out:
                self.log.cmd(s.op, *s.args)
        return out

    def advance(self, ms: int, *alive: str) -> list[Submit]:
        """Time passes in 10 ms steps, ``alive`` seen all along; every proposal applied."""
        out: list[Submit] = []
        for _ in range(ms // 10):
            self.now += 10
            self.see(*alive)
            out += self.step()
        return out

    def report(self, node: str, offset: int, replid: str = "r" * 40) -> None:
        s = self.shard()
        assert self.log.cmd(Op.SHARD_REPORT, "d", 0, s.epoch, node, replid, offset) == c.OK


def test_profiles_have_the_contract_numbers() -> None:
    h, lo = PROFILES["high"], PROFILES["low"]
    assert (h.node_timeout_ms, h.shard_timeout_ms, h.lease_ms, h.lease_renew_ms) == (
        1000,
        1000,
        500,
        150,
    )
    assert (h.drift, h.margin_ms, h.report_grace_ms, h.replica_ha_ms) == (0.05, 50, 300, 30000)
    assert (lo.node_timeout_ms, lo.shard_timeout_ms, lo.lease_ms, lo.lease_renew_ms) == (
        5000,
        5000,
        2500,
        700,
    )
    assert (lo.drift, lo.margin_ms, lo.report_grace_ms, lo.replica_ha_ms) == (
        0.05,
        200,
        1500,
        120000,
    )
    assert h.lease_wait_ms == 525 + 50 and lo.lease_wait_ms == 2625 + 200


def test_reports_needed_table() -> None:
    assert reports_needed(1, 1) == 1
    assert reports_needed(2, 1) == 2
    assert reports_needed(2, 2) == 1
    assert reports_needed(3, 1) == 3
    assert reports_needed(3, 2) == 2
    assert reports_needed(2, 0) == 2  # wait:0 covers nothing: hear everyone
    assert best_report([Report("n3", "x", 5), Report("n2", "x", 5), Report("n4", "x", 4)]) == (
        Report("n2", "x", 5)
    )
    assert best_report([]) is None


@given(
    replicas=st.integers(1, 6),
    data=st.data(),
)
@settings(max_examples=300, deadline=None)
def test_promoting_the_best_of_enough_reports_keeps_every_wait_n_write(
    replicas: int, data: st.DataObject
) -> None:
    # The rule's proof, checked on examples: a write acknowledged by WAIT n reached at
    # least n replicas (offsets >= its offset; the others may lag anywhere below). Any
    # reports_needed(R, n) replicas include one of them, so the best report holds it.
    n = data.draw(st.integers(1, replicas))
    names = [f"r{i}" for i in range(replicas)]
    write = data.draw(st.integers(1, 100))
    holders = set(data.draw(st.permutations(names))[:n])
    offsets = {
        r: data.draw(st.integers(write, 200) if r in holders else st.integers(0, write - 1))
        for r in names
    }
    k = reports_needed(replicas, n)
    heard = data.draw(st.permutations(names))[: data.draw(st.integers(k, replicas))]
    best = best_report(Report(r, "x", offsets[r]) for r in heard)
    assert best is not None and best.offset >= write


def test_reports_needed_is_the_smallest_safe_count() -> None:
    # Naive reference: the smallest k >= 1 such that every k replicas meet every n.
    for r in range(1, 7):
        for n in range(1, r + 1):
            reps = range(r)
            k = next(
                k
                for k in range(1, r + 1)
                if all(
                    set(a) & set(b)
                    for a in itertools.combinations(reps, k)
                    for b in itertools.combinations(reps, n)
                )
            )
            assert reports_needed(r, n) == k, (r, n)


def test_nothing_off_the_leader_and_nothing_while_all_is_seen() -> None:
    w = World(replicas=1)
    w.now = 5000
    out = w.ctl.step(leader(role=Role.FOLLOWER), w.log.store, w.now, {}, None)
    assert out == []
    w.now = 0
    assert w.advance(3000, "n1", "n2", "n3") == []


def test_node_timeout_counts_from_leading_since_then_fences_once() -> None:
    w = World(replicas=1)
    primary = w.shard().primary.node
    others = [n for n in ("n1", "n2", "n3") if n != primary]
    w.leading_since = 0
    out = w.advance(HIGH.node_timeout_ms - 10, *others)
    assert out == []
    out = w.advance(10, *others)
    assert out == [Submit(Op.SHARD_FENCE, ("d", 0, 1, 0, ""))]
    assert w.shard().state is ShardState.FAILING
    assert any("fencing epoch 1" in line for line in w.ctl.drain_log())
    assert w.ctl.log == []


def test_shard_down_fact_fences_at_once() -> None:
    w = World(replicas=1)
    s = w.shard()
    assert w.log.cmd(Op.SHARD_DOWN, "d", 0, 1, s.primary.node, "no PING answer") == c.OK
    w.see("n1", "n2", "n3")
    assert w.step() == [Submit(Op.SHARD_FENCE, ("d", 0, 1, 0, ""))]
    f = w.shard().fence
    assert f is not None and f.down_reason == "no PING answer"


def _fenced(w: World) -> tuple[str, list[str]]:
    """Fence shard 0 with its primary's node gone; (old primary node, replica nodes)."""
    s = w.shard()
    old = s.primary.node
    alive = [n for n in NODES[: len(w.log.store.members)] if n != old]
    w.advance(HIGH.node_timeout_ms, *alive)
    assert w.shard().state is ShardState.FAILING
    return old, [r.node for r in s.replicas]


def test_strict_waits_out_the_lease_and_for_enough_reports() -> None:
    w = World(nodes=3, replicas=2, failover_guarantee=1)  # needs 2 of 2
    old, (r1, r2) = _fenced(w)
    t_fence = w.now
    last_seen = w.seen.get(old, 0)
    lease_end = min(t_fence, last_seen) + HIGH.lease_wait_ms
    w.report(r1, 100)
    alive = [r1, r2, "n1" if old != "n1" else r1]
    assert w.advance(2000, *alive) == []  # one of two: strict waits
    st_lines = w.ctl.status_lines(w.log.store, w.now)
    assert len(st_lines) == 1 and "waiting=reports reports=1/2/2" in st_lines[0]
    w.report(r2, 120)
    assert w.now > lease_end
    out = w.advance(10, *alive)
    assert out == [Submit(Op.SHARD_PROMOTE, ("d", 0, 2, r2, ""))]
    s = w.shard()
    assert (s.primary.node, s.state, s.forks[-1].offset) == (r2, ShardState.OK, 120)
    assert old in {r.node for r in s.replicas}


def test_the_lease_wait_holds_promotion_back() -> None:
    # The old primary's node is still seen (its process hangs): its agent may have
    # renewed the lease until the fence, so promotion waits lease_wait_ms past it.
    w = World(nodes=2, replicas=1)
    s = w.shard()
    w.now = 1000
    w.see("n1", "n2")
    assert w.log.cmd(Op.SHARD_DOWN, "d", 0, 1, s.primary.node, "hung") == c.OK
    w.step()
    t_fence = w.now + 10  # the next step is the first to see the fence applied
    w.report(s.replicas[0].node, 7)
    out: list[Submit] = []
    while not out:
        out = w.advance(10, "n1", "n2")
    assert t_fence + HIGH.lease_wait_ms <= w.now < t_fence + HIGH.lease_wait_ms + 10
    assert out[0].op is Op.SHARD_PROMOTE


def test_an_unseen_old_primary_is_waited_for_from_when_it_was_last_seen() -> None:
    w = World(nodes=2, replicas=1)
    old, (r1,) = _fenced(w)
    w.report(r1, 7)
    assert w.now >= w.seen.get(old, 0) + HIGH.lease_wait_ms
    assert [o.op for o in w.advance(10, r1)] == [Op.SHARD_PROMOTE]


def test_a_reporting_old_primary_skips_the_lease_wait() -> None:
    w = World(nodes=2, replicas=1)
    s = w.shard()
    assert w.log.cmd(Op.SHARD_DOWN, "d", 0, 1, s.primary.node, "crashed") == c.OK
    w.see("n1", "n2")
    w.step()
    w.report(s.primary.node, 50)
    w.report(s.replicas[0].node, 40)
    out = w.advance(10, "n1", "n2")
    # The old primary (frozen, the highest offset) stays primary under the new epoch.
    assert out == [Submit(Op.SHARD_PROMOTE, ("d", 0, 2, s.primary.node, ""))]
    assert w.shard().primary == s.primary and w.shard().replicas == s.replicas


def test_available_promotes_the_best_heard_after_the_grace() -> None:
    w = World(nodes=3, replicas=2, failover_policy="available")
    old, (r1, r2) = _fenced(w)
    lease_end = min(w.now, w.seen.get(old, 0)) + HIGH.lease_wait_ms
    w.report(r2, 30)
    out: list[Submit] = []
    while not out:
        out = w.advance(10, r1, r2)
    assert w.now >= lease_end + HIGH.report_grace_ms
    assert out[0].op is Op.SHARD_PROMOTE and out[0].args[3] == r2
    note = str(out[0].args[4])
    assert note.startswith("available: 1 of 2 replicas heard")
    assert w.shard().note == note
    lines = w.ctl.status_lines(w.log.store, w.now)
    assert lines == [f"failover:d/0 epoch=2 state=ok note={note}"]
    assert any("may be lost" in line for line in w.ctl.log)


def test_planned_failover_promotes_the_target_after_the_hand_over() -> None:
    w = World(nodes=3, replicas=1)
    s = w.shard()
    target = s.replicas[0].node
    assert w.log.cmd(Op.SHARD_FENCE, "d", 0, 1, 1, target) == c.OK
    assert w.advance(1000, "n1", "n2", "n3") == []  # waiting for the hand-over
    assert "waiting=handover" in w.ctl.status_lines(w.log.store, w.now)[0]
    w.report(s.primary.node, 999)
    out = w.advance(10, "n1", "n2", "n3")
    assert out == [Submit(Op.SHARD_PROMOTE, ("d", 0, 2, target, "planned failover"))]
    after = w.shard()
    assert after.primary.node == target and after.forks[-1].offset == 999


def test_planned_failover_aborts_without_a_hand_over() -> None:
    w = World(nodes=3, replicas=1)
    s = w.shard()
    assert w.log.cmd(Op.SHARD_FENCE, "d", 0, 1, 1, s.replicas[0].node) == c.OK
    out = w.advance(HANDOVER_WAIT_MS + 10, "n1", "n2", "n3")
    assert [o.op for o in out] == [Op.SHARD_ABORT]
    after = w.shard()
    assert (after.primary, after.epoch, after.state) == (s.primary, 3, ShardState.OK)


def test_maintenance_moves_primaries_off_one_at_a_time_and_back() -> None:
    w = World(nodes=3, shards=3, replicas=1)
    on_n1 = [s.index for s in db(w.log, "d").shards if s.primary.node == "n1"]
    assert on_n1
    assert w.log.cmd(Op.NODE_MAINTENANCE, "n1", "on") == c.OK
    out = w.advance(10, "n1", "n2", "n3")
    assert [o.op for o in out] == [Op.SHARD_FENCE] and out[0].args[3] == 1
    i = out[0].args[1]
    s = db(w.log, "d").shards[i]  # type: ignore[index]
    assert w.advance(100, "n1", "n2", "n3") == []  # one at a time: waits for the hand-over
    w.log.cmd(Op.SHARD_REPORT, "d", i, s.epoch, "n1", "x", 10)
    w.advance(100, "n1", "n2", "n3")
    assert all(s.primary.node != "n1" for s in db(w.log, "d").shards)
    assert db(w.log, "d").shards[i].note == maintenance_note("n1")  # type: ignore[index]
    # Maintenance over: the primary goes back.
    assert w.log.cmd(Op.NODE_MAINTENANCE, "n1", "off") == c.OK
    out = w.advance(10, "n1", "n2", "n3")
    assert out == [Submit(Op.SHARD_FENCE, ("d", i, 2, 1, "n1"))]
    s = db(w.log, "d").shards[i]  # type: ignore[index]
    w.log.cmd(Op.SHARD_REPORT, "d", i, s.epoch, s.primary.node, "x", 20)
    w.advance(100, "n1", "n2", "n3")
    s = db(w.log, "d").shards[i]  # type: ignore[index]
    assert s.primary.node == "n1" and s.note == "planned failover"
    assert w.advance(500, "n1", "n2", "n3") == []  # and stays


def test_replica_ha_moves_replicas_of_a_long_gone_node() -> None:
    w = World(nodes=4, replicas=1)
    s = w.shard()
    gone = s.replicas[0].node
    alive = [n for n in NODES if n != gone]
    assert w.advance(HIGH.replica_ha_ms - 100, *alive) == []
    out = w.advance(100, *alive)
    assert [o.op for o in out] == [Op.SHARD_MOVE]
    after = w.shard()
    assert after.primary == s.primary and gone not in {r.node for r in after.replicas}
    assert w.advance(1000, *alive) == []


def test_a_new_term_forgets_and_retries_rate_limited() -> None:
    w = World(nodes=2, replicas=1)
    old = w.shard().primary.node
    w.now = HIGH.node_timeout_ms
    other = "n2" if old == "n1" else "n1"
    w.see(other)
    out = w.step(apply=False)
    assert [o.op for o in out] == [Op.SHARD_FENCE]
    assert w.step(apply=False) == []  # not again before retry_ms
    w.now += 100
    assert [o.op for o in w.step(apply=False)] == [Op.SHARD_FENCE]


def test_best_report_prefers_the_shared_history() -> None:
    # Two replicas that followed the old primary share its replid; an instance that
    # restarted empty has a fresh one, whatever its offset.
    same = [Report("n2", "old", 50), Report("n3", "old", 40)]
    assert best_report([*same, Report("n1", "fresh", 90)]) == Report("n2", "old", 50)
    # Alone on its history each: the highest offset.
    assert best_report([Report("n2", "a", 5), Report("n3", "b", 9)]) == Report("n3", "b", 9)


def test_the_lease_wait_counts_the_seen_slack() -> None:
    # The old node was last sampled at 500: it may have started a read up to
    # seen_slack_ms later, so its lease may run until 500 + 1000 + lease_wait.
    w = World(nodes=2, replicas=1)
    old, (r1,) = w.shard().primary.node, w.shard().replicas
    w.now = 500
    w.see("n1", "n2")
    w.advance(HIGH.node_timeout_ms, r1.node)
    assert w.shard().state is ShardState.FAILING
    w.report(r1.node, 3)
    out: list[Submit] = []
    while not out:
        out = w.advance(10, r1.node)
    assert out[0].op is Op.SHARD_PROMOTE
    assert 500 + w.ctl.seen_slack_ms + HIGH.lease_wait_ms <= w.now
    assert w.now < 500 + w.ctl.seen_slack_ms + HIGH.lease_wait_ms + 10
    assert old != r1.node


def test_exact_ties_go_to_the_old_primary() -> None:
    # After every node restarted from AOFs without a replication history, each reports a
    # fresh replid at offset 0: the old primary keeps its role (and its data).
    fresh = [Report("n1", "a", 0), Report("n2", "b", 0), Report("n3", "c", 0)]
    assert best_report(fresh, "n2") == Report("n2", "b", 0)
    assert best_report(fresh) == Report("n1", "a", 0)
    # Never over a better report: a higher offset, or the history most share.
    assert best_report([Report("n1", "a", 7), Report("n2", "b", 0)], "n2") == Report("n1", "a", 7)
    shared = [Report("n1", "a", 7), Report("n3", "a", 7), Report("n2", "b", 9)]
    assert best_report(shared, "n2") == Report("n1", "a", 7)
    assert best_report([Report("n1", "a", 7), Report("n2", "a", 7)], "n2") == Report("n2", "a", 7)
