"""Placement of a database's shards and ports (ackdb.cluster.placement): the rules of
docs/cluster.md "Databases", as properties over random clusters and requests."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.cluster.databases import (
    DB_PORT_RANGE,
    SHARD_PORT_RANGE,
    Database,
    DbType,
    Persistence,
    slot_ranges,
)
from ackdb.cluster.placement import PlacementError, choose_port, lowest_free, place


def _db(name: str, uid: int, nodes: list[str], shards: int, replicas: int, used: list[Database]):  # type: ignore[no-untyped-def]
    p = place(nodes, used, shards, replicas, 0, {})
    return Database(
        name, uid, DbType.SHARDED, p.port, replicas > 0, replicas, Persistence.NONE, "", False,
        p.shards,
    )  # fmt: skip


def test_three_nodes_three_shards_one_replica_make_a_ring() -> None:
    db = _db("d", 1, ["n3", "n1", "n2"], 3, 1, [])
    assert db.port == DB_PORT_RANGE[0]
    layout = [(s.primary.node, [r.node for r in s.replicas]) for s in db.shards]
    assert layout == [("n1", ["n2"]), ("n2", ["n3"]), ("n3", ["n1"])]
    ports = [i.port for s in db.shards for i in s.instances()]
    assert ports == list(range(SHARD_PORT_RANGE[0], SHARD_PORT_RANGE[0] + 6))
    assert [(s.first_slot, s.last_slot) for s in db.shards] == slot_ranges(3)
    assert all(s.epoch == 1 for s in db.shards)


def test_refusals_say_why() -> None:
    with pytest.raises(PlacementError, match="needs 2 nodes, the cluster has 1 active node$"):
        place(["n1"], [], 1, 1, 0, {})
    with pytest.raises(PlacementError, match="cannot place 2 replicas per shard: needs 3 nodes"):
        place(["n1", "n2"], [], 4, 2, 0, {})
    with pytest.raises(PlacementError, match="no active node"):
        place([], [], 1, 0, 0, {})
    used = {7001: "node n1's client port"}
    with pytest.raises(PlacementError, match="port 7001 is already used by node n1's client"):
        place(["n1"], [], 1, 0, 7001, used)
    with pytest.raises(PlacementError, match="out of range"):
        choose_port(70000, {})


def test_ports_skip_what_is_used_and_run_out_cleanly() -> None:
    assert lowest_free(10, 15, {10: "x", 12: "y"}, 3) == [11, 13, 14]
    assert lowest_free(10, 12, {11: "x"}, 3) == []
    used = {p: "taken" for p in range(SHARD_PORT_RANGE[0], SHARD_PORT_RANGE[1] - 1)}
    with pytest.raises(PlacementError, match="not enough free shard ports"):
        place(["n1"], [], 3, 0, 0, used)
    first = _db("a", 1, ["n1"], 1, 0, [])
    second = place(["n1"], [first], 1, 0, 0, {DB_PORT_RANGE[0] + 1: "node n1's cluster port"})
    assert second.port == DB_PORT_RANGE[0] + 2
    assert second.shards[0].primary.port == SHARD_PORT_RANGE[0] + 1
    with pytest.raises(PlacementError, match="already used by database 'a'"):
        place(["n1"], [first], 1, 0, first.port, {})
    with pytest.raises(PlacementError, match="a shard of database 'a'"):
        place(["n1"], [first], 1, 0, first.shards[0].primary.port, {})


def test_nodes_that_are_not_eligible_keep_their_load_out_of_it() -> None:
    a = _db("a", 1, ["n1", "n2"], 2, 1, [])
    # n2 is down: the next database goes to n1 and n3 only; n1 has a primary already.
    b = _db("b", 2, ["n1", "n3"], 2, 0, [a])
    assert [s.primary.node for s in b.shards] == ["n3", "n3"]


requests = st.lists(st.tuples(st.integers(1, 9), st.integers(0, 3)), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), requests)
def test_placement_properties(n_nodes: int, reqs: list[tuple[int, int]]) -> None:
    nodes = [f"n{i}" for i in range(n_nodes)]
    dbs: list[Database] = []
    for uid, (shards, replicas) in enumerate(reqs, start=1):
        before = list(dbs)
        if replicas + 1 > n_nodes:
            with pytest.raises(PlacementError, match=f"needs {replicas + 1} node"):
                place(nodes, dbs, shards, replicas, 0, {})
            assert dbs == before
            continue
        db = _db(f"d{uid}", uid, nodes, shards, replicas, dbs)
        # Deterministic: the same inputs, in any order, give the same placement.
        again = _db(f"d{uid}", uid, list(reversed(nodes)), shards, replicas, dbs)
        assert again == db
        dbs.append(db)
        for s in db.shards:
            on = [i.node for i in s.instances()]
            assert len(set(on)) == len(on) == replicas + 1  # never two on one node
            assert set(on) <= set(nodes)
        # Primaries of all databases balanced within one across the nodes.
        prim = Counter(s.primary.node for d in dbs for s in d.shards)
        counts = [prim.get(n, 0) for n in nodes]
        assert max(counts) - min(counts) <= 1
        # Every port is unique in the cluster and in its range.
        ports = [d.port for d in dbs] + [
            i.port for d in dbs for s in d.shards for i in s.instances()
        ]
        assert len(set(ports)) == len(ports)
        assert all(DB_PORT_RANGE[0] <= d.port <= DB_PORT_RANGE[1] for d in dbs)
        lo, hi = SHARD_PORT_RANGE
        assert all(lo <= i.port <= hi for d in dbs for s in d.shards for i in s.instances())
        assert [(s.first_slot, s.last_slot) for s in db.shards] == slot_ranges(shards)


def test_existing_primaries_count() -> None:
    a = _db("a", 1, ["n1", "n2", "n3"], 2, 0, [])  # n1, n2
    b = _db("b", 2, ["n1", "n2", "n3"], 1, 0, [a])
    assert b.shards[0].primary.node == "n3"
    c = _db("c", 3, ["n1", "n2", "n3"], 1, 0, [a, b])
    assert c.shards[0].primary.node == "n1"
