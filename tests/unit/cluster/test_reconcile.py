"""The reconciler (ackdb.cluster.reconcile): registration, joins, removals, health."""

from __future__ import annotations

from ackdb.cluster.commands import Health, Op
from ackdb.cluster.metadata import Member, MemberState, MetadataStore
from ackdb.cluster.reconcile import ProposeConf, Reconciler, Submit
from ackdb.consensus import ConfChangeKind, PeerProgress, Role, Status


def status(
    role: Role, voters: tuple[str, ...], active: dict[str, bool] | None = None, term: int = 2
) -> Status:
    progress = {v: PeerProgress(5, 6, ok, "replicate") for v, ok in (active or {}).items()}
    return Status(
        id="n1",
        role=role,
        term=term,
        leader="n1" if role is Role.LEADER else "n2",
        commit=5,
        applied=5,
        voters=voters,
        progress=progress,
        last_index=5,
        transferee=None,
    )


def meta(voters: tuple[str, ...], *members: Member) -> MetadataStore:
    m = MetadataStore()
    m.voters = voters
    m.members = {x.id: x for x in members}
    return m


def rec() -> Reconciler:
    return Reconciler("n1", "h:1", "h:2", retry_ms=1000, settle_ms=2000)


def test_registers_itself_once_a_voter_rate_limited() -> None:
    r = rec()
    st = status(Role.FOLLOWER, ("n1", "n2"))
    assert r.step(st, meta(("n2",)), 0) == []  # not a voter yet (a joining node)
    want = [Submit(Op.MEMBER_PUT, ("n1", "h:1", "h:2"))]
    assert r.step(st, meta(("n1", "n2")), 0) == want
    assert r.step(st, meta(("n1", "n2")), 500) == []
    assert r.step(st, meta(("n1", "n2")), 1000) == want
    registered = meta(("n1", "n2"), Member("n1", "h:1", "h:2"))
    assert r.step(st, registered, 5000) == []
    moved = meta(("n1", "n2"), Member("n1", "h:1", "old:2"))
    assert r.step(st, moved, 9000) == want


def test_leader_adds_joining_and_removes_removing_one_at_a_time() -> None:
    r = rec()

    def confs(acts: list[object]) -> list[ProposeConf]:
        return [a for a in acts if isinstance(a, ProposeConf)]

    me = Member("n1", "h:1", "h:2")
    m = meta(
        ("n1", "n2", "n3"),
        me,
        Member("n3", "c:3", "k:3", state=MemberState.REMOVING),
        Member("n4", "c:4", "k:4", state=MemberState.JOINING),
    )
    st = status(Role.LEADER, ("n1", "n2", "n3"))
    acts = confs(r.step(st, m, 0))
    assert len(acts) == 1 and isinstance(acts[0], ProposeConf)
    assert acts[0].cc.kind is ConfChangeKind.REMOVE_NODE and acts[0].cc.node_id == "n3"
    assert confs(r.step(st, m, 10)) == []  # the change is in flight
    st2 = status(Role.LEADER, ("n1", "n2"))
    del m.members["n3"]
    acts = confs(r.step(st2, m, 1000))
    assert isinstance(acts[0], ProposeConf) and acts[0].cc.kind is ConfChangeKind.ADD_NODE
    assert acts[0].cc.node_id == "n4"
    assert r.step(status(Role.FOLLOWER, ("n1", "n2")), m, 5000) == []  # followers do not


def test_health_follows_when_the_leader_last_saw_each_voter() -> None:
    r = rec()
    m = meta(
        ("n1", "n2", "n3"),
        Member("n1", "h:1", "h:2"),
        Member("n2", "a", "b"),
        Member("n3", "a", "b", health=Health.OK),
    )
    live = {"n2": True, "n3": True}

    def step(now: int, active: dict[str, bool]) -> list[object]:
        return r.step(status(Role.LEADER, ("n1", "n2", "n3"), active), m, now)  # type: ignore[return-value]

    assert step(0, live) == [
        Submit(Op.MEMBER_HEALTH, ("n1", "ok")),
        Submit(Op.MEMBER_HEALTH, ("n2", "ok")),
    ]
    m.members["n1"] = Member("n1", "h:1", "h:2", health=Health.OK)
    m.members["n2"] = Member("n2", "a", "b", health=Health.OK)
    # The core clears recent_active at each quorum check: a moment of False is no outage.
    assert step(100, {"n2": False, "n3": False}) == []
    assert step(200, live) == []
    # n3 stays silent: down once unseen for settle_ms, up again at the first reply.
    quiet = {"n2": True, "n3": False}
    assert step(2100, quiet) == []
    assert step(2200, quiet) == [Submit(Op.MEMBER_HEALTH, ("n3", "down"))]
    m.members["n3"] = Member("n3", "a", "b", health=Health.DOWN)
    assert step(2300, quiet) == []
    assert step(2400, live) == []  # rate-limited: the last health action was at 2200
    assert step(4200, live) == [Submit(Op.MEMBER_HEALTH, ("n3", "ok"))]


def test_new_term_counts_every_voter_as_seen() -> None:
    r = rec()
    m = meta(
        ("n1", "n2"),
        Member("n1", "h:1", "h:2", health=Health.OK),
        Member("n2", "a", "b", health=Health.OK),
    )
    assert r.step(status(Role.LEADER, ("n1", "n2"), {"n2": False}, term=3), m, 10_000) == []
    assert r.step(status(Role.LEADER, ("n1", "n2"), {"n2": False}, term=3), m, 11_999) == []
    acts = r.step(status(Role.LEADER, ("n1", "n2"), {"n2": False}, term=3), m, 12_000)
    assert acts == [Submit(Op.MEMBER_HEALTH, ("n2", "down"))]
