"""The cluster API core: ownership, MOVED and CROSSSLOT, the topology replies in RESP2 and
RESP3, argument errors, and the SCAN-and-filter core of COUNTKEYSINSLOT / GETKEYSINSLOT.
Reply shapes are Redis 7.0.15's (tests/compat/test_cluster_api_vs_redis.py compares them
with a real redis-server cluster)."""

from __future__ import annotations

import pytest
from tests.compat.resp_wire import parse_reply

from ackdb.cluster.databases import (
    Database,
    DbType,
    Instance,
    Persistence,
    Shard,
    Topology,
    slot_ranges,
)
from ackdb.cluster.keyslot import key_slot
from ackdb.proxy.clusterapi import (
    CROSSSLOT,
    DISABLED,
    ClusterApi,
    ScanSlot,
    disabled_reply,
    node_id,
)
from ackdb.proxy.slotscan import SlotScan, parse_scan_page
from ackdb.resp import encoder as enc

NODES = ["n1", "n2", "n3"]
HOSTS = {"n1": "127.0.0.1", "n2": "127.0.0.2", "n3": "127.0.0.3"}


def topology(node: str = "n1", shards: int = 3, primaries: list[str] | None = None) -> Topology:
    prim = primaries or [NODES[i % 3] for i in range(shards)]
    out = []
    for i, (first, last) in enumerate(slot_ranges(shards)):
        replica = NODES[(NODES.index(prim[i]) + 1) % 3]
        out.append(
            Shard(i, first, last, 1, Instance(prim[i], 30000 + i), (Instance(replica, 31000 + i),))
        )
    db = Database(
        "default", 7, DbType.SHARDED, 12000, True, 1, Persistence.NONE, "", True, tuple(out)
    )
    return Topology(3, db, dict(HOSTS), node)


def call(api: ClusterApi, line: str, p: enc.Resp2 = enc.RESP2) -> object:
    out = api.command([w.encode() for w in line.split()], p)
    if isinstance(out, ScanSlot):
        return out
    reply, end = parse_reply(out, 0)
    assert end == len(out)
    return reply


def test_each_endpoint_owns_its_primaries_slots_and_moves_the_rest() -> None:
    apis = {n: ClusterApi(topology(n)) for n in NODES}
    for slot, owner in ((0, "n1"), (5460, "n1"), (5461, "n2"), (10923, "n3"), (16383, "n3")):
        for n, api in apis.items():
            if n == owner:
                assert api.owns(slot) and api.redirect(slot) is None
            else:
                assert api.redirect(slot) == b"-MOVED %d %s:12000\r\n" % (
                    slot,
                    HOSTS[owner].encode(),
                )
    api = apis["n1"]
    assert api.check_slots(set()) is None
    assert api.check_slots({0}) is None
    assert api.check_slots({0, 1}) == CROSSSLOT
    assert api.check_slots({key_slot(b"foo")}) == b"-MOVED 12182 127.0.0.3:12000\r\n"


def test_every_endpoint_reports_the_same_cluster() -> None:
    apis = [ClusterApi(topology(n)) for n in NODES]
    for p in (enc.RESP2, enc.RESP3):
        assert len({a.slots_reply(p) for a in apis}) == 1
        assert len({a.shards_reply(p) for a in apis}) == 1
    nodes = [a.nodes_text().replace("myself,", "") for a in apis]
    assert len(set(nodes)) == 1
    ids = {call(a, "cluster myid")[1] for a in apis}  # type: ignore[index]
    assert len(ids) == 3 and all(len(i) == 40 for i in ids)  # type: ignore[arg-type]
    assert node_id(7, "n1") == node_id(7, "n1") != node_id(8, "n1")


def test_cluster_slots_shape() -> None:
    api = ClusterApi(topology())
    kind, rows = call(api, "cluster slots")  # type: ignore[misc]
    assert kind == "*" and len(rows) == 3
    assert rows[0] == (
        "*",
        [
            (":", 0),
            (":", 5460),
            ("*", [("$", b"127.0.0.1"), (":", 12000), ("$", node_id(7, "n1")), ("*", [])]),
        ],
    )
    # RESP3: the node's metadata is an (empty) map
    assert b"%0\r\n" in api.slots_reply(enc.RESP3) and b"*0\r\n" not in api.slots_reply(enc.RESP3)


def test_adjacent_shards_of_one_node_merge_and_idle_nodes_are_replicas() -> None:
    api = ClusterApi(topology(shards=4, primaries=["n1", "n1", "n2", "n2"]))
    _, rows = call(api, "cluster slots")  # type: ignore[misc]
    assert [(r[1][0][1], r[1][1][1]) for r in rows] == [(0, 8191), (8192, 16383)]  # type: ignore[index]
    # n3 owns no slot and runs replicas of n2's shards: n2's replica; n2 runs replicas of
    # n1's shards but owns slots, so it is never listed as a replica.
    assert [len(r[1]) for r in rows] == [3, 4]  # type: ignore[index]
    assert rows[1][1][3][1][2] == ("$", node_id(7, "n3"))  # type: ignore[index]
    lines = api.nodes_text().splitlines()
    assert len(lines) == 3
    assert lines[2].endswith(f" slave {node_id(7, 'n2').decode()} 0 0 3 connected")
    info = dict(line.split(":") for line in api.info_text().split("\r\n") if line)
    assert info["cluster_known_nodes"] == "3" and info["cluster_size"] == "2"
    _, shards = call(api, "cluster shards")  # type: ignore[misc]
    assert len(shards) == 2  # n3 is in n2's shard
    nodes = shards[1][1][3][1]  # type: ignore[index]
    assert [n[1][9][1] for n in nodes] == [b"master", b"replica"]
    (_, reps) = call(api, f"cluster replicas {node_id(7, 'n2').decode()}")  # type: ignore[misc]
    assert [r[1] for r in reps] == [lines[2].encode()]  # type: ignore[index]


def _one_shard(primary: str, replicas: tuple[str, ...], node: str, epoch: int = 1) -> Topology:
    shard = Shard(
        0, 0, 16383, epoch, Instance(primary, 30000), tuple(Instance(r, 31000) for r in replicas)
    )
    db = Database(
        "default", 7, DbType.SHARDED, 12000, True, 1, Persistence.NONE, "", True, (shard,)
    )
    return Topology(epoch, db, dict(HOSTS), node)


def test_slots_and_moved_follow_a_failover() -> None:
    before = {n: ClusterApi(_one_shard("n1", ("n2",), n)) for n in NODES}
    after = {n: ClusterApi(_one_shard("n2", ("n1",), n, epoch=2)) for n in NODES}
    assert before["n3"].redirect(0) == b"-MOVED 0 127.0.0.1:12000\r\n"
    assert after["n3"].redirect(0) == b"-MOVED 0 127.0.0.2:12000\r\n"
    assert after["n1"].redirect(0) == b"-MOVED 0 127.0.0.2:12000\r\n"
    assert after["n2"].redirect(0) is None
    _, rows = call(after["n1"], "cluster slots")  # type: ignore[misc]
    ((_, row),) = rows  # type: ignore[misc]
    assert [n[1][0][1] for n in row[2:]] == [b"127.0.0.2", b"127.0.0.1"]  # master, replica
    assert after["n1"].reads(0) and not after["n2"].reads(0) and not after["n3"].reads(0)
    me = [line for line in after["n1"].nodes_text().splitlines() if "myself" in line]
    assert " myself,slave " in me[0]


def test_cluster_shards_shape() -> None:
    api = ClusterApi(topology())
    _, shards = call(api, "cluster shards")  # type: ignore[misc]
    first = shards[0]  # type: ignore[index]
    assert first[0] == "*"
    assert [x[1] for x in first[1][0::2]] == [b"slots", b"nodes"]
    assert first[1][1] == ("*", [(":", 0), (":", 5460)])
    node = first[1][3][1][0]
    keys = [k[1] for k in node[1][0::2]]
    assert keys == [b"id", b"port", b"ip", b"endpoint", b"role", b"replication-offset", b"health"]
    kind, _ = call(api, "cluster shards", enc.RESP3)[1][0]  # type: ignore[index]
    assert kind == "%"


def test_cluster_nodes_and_info_are_verbatim_in_resp3() -> None:
    api = ClusterApi(topology("n2"))
    kind, text = call(api, "cluster nodes")  # type: ignore[misc]
    assert kind == "$"
    me = [line for line in text.decode().splitlines() if "myself" in line]  # type: ignore[attr-defined]
    assert me == [
        f"{node_id(7, 'n2').decode()} 127.0.0.2:12000@0 myself,master - 0 0 2 connected 5461-10922"
    ]
    kind, text = call(api, "cluster nodes", enc.RESP3)  # type: ignore[misc]
    assert kind == "=" and text.startswith(b"txt:")  # type: ignore[attr-defined]
    kind, text = call(api, "CLUSTER INFO", enc.RESP3)  # type: ignore[misc]
    assert kind == "=" and b"cluster_state:ok\r\n" in text  # type: ignore[operator]
    assert b"cluster_my_epoch:2\r\n" in text  # type: ignore[operator]


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("cluster keyslot foo", (":", 12182)),
        ("cluster keyslot {b}x", (":", 3300)),
        ("readonly", ("+", b"OK")),
        ("READWRITE", ("+", b"OK")),
        ("asking", ("+", b"OK")),
        ("readonly x", ("-", b"ERR wrong number of arguments for 'readonly' command")),
        ("cluster", ("-", b"ERR wrong number of arguments for 'cluster' command")),
        ("cluster slots x", ("-", b"ERR wrong number of arguments for 'cluster|slots' command")),
        ("cluster keyslot", ("-", b"ERR wrong number of arguments for 'cluster|keyslot' command")),
        ("cluster foo", ("-", b"ERR unknown subcommand 'foo'. Try CLUSTER HELP.")),
        ("cluster countkeysinslot x", ("-", b"ERR value is not an integer or out of range")),
        ("cluster countkeysinslot 16384", ("-", b"ERR Invalid slot")),
        ("cluster countkeysinslot -1", ("-", b"ERR Invalid slot")),
        ("cluster countkeysinslot 10000", (":", 0)),  # another node's slot: none here
        ("cluster getkeysinslot 0 x", ("-", b"ERR value is not an integer or out of range")),
        ("cluster getkeysinslot 0 -1", ("-", b"ERR Invalid slot or number of keys")),
        ("cluster getkeysinslot 99999 1", ("-", b"ERR Invalid slot or number of keys")),
        ("cluster getkeysinslot 5 0", ("*", [])),
        ("cluster getkeysinslot 10000 5", ("*", [])),
        ("cluster links", ("*", [])),
        ("cluster replicas abc", ("-", b"ERR Unknown node abc")),
    ],
)
def test_command_replies(line: str, reply: object) -> None:
    assert call(ClusterApi(topology()), line) == reply


def test_topology_changing_commands_are_refused() -> None:
    kind, text = call(ClusterApi(topology()), "cluster addslots 1")  # type: ignore[misc]
    assert kind == "-" and b"not available through a database endpoint" in text  # type: ignore[operator]


def test_keys_in_slot_need_the_shard() -> None:
    api = ClusterApi(topology("n2"))
    assert call(api, "cluster countkeysinslot 6000") == ScanSlot(6000, 1, None)
    assert call(api, "cluster getkeysinslot 6000 10") == ScanSlot(6000, 1, 10)


def test_without_the_cluster_api_answers_as_a_standalone_redis() -> None:
    assert disabled_reply([b"cluster", b"info"]) == DISABLED
    assert disabled_reply([b"READONLY"]) == DISABLED
    assert disabled_reply([b"cluster", b"foo"]).startswith(b"-ERR unknown subcommand 'foo'")
    assert disabled_reply([b"cluster", b"help"]).startswith(b"*")
    assert disabled_reply([b"asking", b"x"]).startswith(b"-ERR wrong number")


def _page(cursor: bytes, keys: list[bytes]) -> bytes:
    return b"*2\r\n" + enc.bulk(cursor) + enc.bulk_array(keys)


def test_slot_scan_counts_and_lists_the_slots_keys() -> None:
    keys = [b"{b}x", b"{b}y", b"a", b"c", b"{b}z"]  # {b} is slot 3300
    count = SlotScan(3300, None)
    assert count.request() == [b"SCAN", b"0", b"COUNT", b"1000"]
    assert count.on_reply(_page(b"7", keys[:3])) is None
    assert count.request()[1] == b"7"
    assert count.on_reply(_page(b"0", keys[3:])) == b":3\r\n"
    listing = SlotScan(3300, 2)
    assert listing.on_reply(_page(b"9", keys)) == enc.bulk_array([b"{b}x", b"{b}y"])
    empty = SlotScan(3300, 5)
    assert empty.on_reply(_page(b"0", [b"a"])) == b"*0\r\n"
    failed = SlotScan(1, None)
    assert failed.on_reply(b"-NOAUTH Authentication required.\r\n").startswith(b"-NOAUTH")
    bad = SlotScan(1, None)
    assert bad.on_reply(b":5\r\n") == b"-ERR unexpected SCAN reply from the shard\r\n"


def test_parse_scan_page_whole_and_cut() -> None:
    page = _page(b"12", [b"k1", b""])
    assert parse_scan_page(page) == (b"12", [b"k1", b""])
    for cut in range(len(page) - 1):
        with pytest.raises(ValueError):
            parse_scan_page(page[:cut])
