"""The failover commands of the client port (ackdb.node.dbserver): DB.CREATE's failover
options, DB.FAILOVER and NODE.MAINTENANCE, against test_dbserver's fake agent (writes
apply at once to a real metadata store); and the status lines they lead to."""

from __future__ import annotations

import pytest
from tests.unit.node.test_dbserver import Conn, FakeAgent

from ackdb.cluster import dbops
from ackdb.cluster.databases import ShardState
from ackdb.cluster.dbtext import parse_info
from ackdb.cluster.failover import FailoverController
from ackdb.cluster.status import parse_status, status_text
from ackdb.consensus import Role, Status
from ackdb.node.dbserver import parse_create


def test_create_with_failover_options() -> None:
    conn = Conn(FakeAgent())
    text = conn.call("DB.CREATE", "d", "REPLICAS", "1", "FAILOVER-GUARANTEE", "WAIT:1",
                     "failover-policy", "Available", "FAILOVER-PROFILE", "low")  # fmt: skip
    f = parse_info(text.decode()).fields
    assert (f["failover_guarantee"], f["failover_policy"], f["failover_profile"]) == (
        "wait:1",
        "available",
        "low",
    )
    assert parse_info(conn.call("DB.CREATE", "e").decode()).fields["failover_guarantee"] == "wait:0"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["FAILOVER-GUARANTEE", "1"], "ERR failover guarantee must be wait:<n>"),
        (["FAILOVER-GUARANTEE", "wait:x"], "ERR value is not an integer"),
        (["FAILOVER-GUARANTEE", "wait:2", "REPLICAS", "1"], "ERR failover guarantee must be"),
        (["FAILOVER-POLICY", "yolo"], "ERR failover policy must be strict|available"),
        (["FAILOVER-PROFILE", "mid"], "ERR failover profile must be high|low"),
    ],
)
def test_failover_option_errors(args: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_create([b"DB.CREATE", b"x", *(a.encode() for a in args)])


def test_db_failover_fences_planned_to_a_replica() -> None:
    conn = Conn(FakeAgent())
    conn.call("DB.CREATE", "d", "SHARDS", "2", "REPLICAS", "1")
    assert str(conn.call("DB.FAILOVER", "nope")) == "ERR no such database 'nope'"
    assert str(conn.call("DB.FAILOVER", "d", "7")) == "ERR database 'd' has no shard 7"
    assert conn.call("DB.FAILOVER", "d", "1") == b"OK"
    d = dbops.databases(conn.agent.meta)[0]
    s0, s1 = d.shards
    assert s0.state is ShardState.OK
    assert s1.state is ShardState.FAILING and s1.fence is not None and s1.fence.planned
    assert s1.fence.target == s1.replicas[0].node and s1.epoch == 2
    assert "failing over already" in str(conn.call("DB.FAILOVER", "d", "1"))
    assert "failing over already" in str(conn.call("DB.FAILOVER", "d"))  # every shard
    conn.call("DB.CREATE", "solo")
    assert "no replica to fail over to" in str(conn.call("DB.FAILOVER", "solo"))
    # The leader's controller says what the failing shard waits for.
    ctl = FailoverController()
    st = Status("n1", Role.LEADER, 2, "n1", 1, 1, ("n1", "n2"), {}, 1, None)
    ctl.step(st, conn.agent.meta, 100, {"n1": 100, "n2": 100}, 0)
    text = status_text(st, conn.agent.meta, "h:1", 0, ctl.status_lines(conn.agent.meta, 150))
    (f,) = parse_status(text).failovers
    assert f.id == "d/1" and f.fields["waiting"] == "handover" and f.fields["planned"] == "yes"
    assert f.fields["since_ms"] == "50" and f.fields["note"] == "planned"
    shards = {s.id: s.fields for s in parse_status(text).shards}
    assert shards["d/1"]["state"] == "failing" and shards["d/0"]["state"] == "ok"


def test_node_maintenance() -> None:
    conn = Conn(FakeAgent())
    assert conn.call("NODE.MAINTENANCE", "n2", "ON") == b"OK"
    assert conn.agent.meta.members["n2"].maintenance
    assert str(conn.call("NODE.MAINTENANCE", "n2", "later")) == "ERR maintenance is 'on' or 'off'"
    assert str(conn.call("NODE.MAINTENANCE", "n9", "on")) == "NOTFOUND no member 'n9'"
    assert conn.call("NODE.MAINTENANCE", "n2", "off") == b"OK"
    assert not conn.agent.meta.members["n2"].maintenance
