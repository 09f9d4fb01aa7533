"""The cluster API's replies against a real redis-server 7.0.15 cluster of three masters
(``redis-cli --cluster create``), in RESP2 and RESP3: the same shapes, field names, order
and types for CLUSTER SLOTS / SHARDS / NODES / INFO / MYID / KEYSLOT, the same errors for
bad arguments, the same MOVED and CROSSSLOT texts.

The ackdb side is ``proxy/clusterapi.py`` built from a topology of the same split (three
shards, one primary per node), so only what differs by nature is normalised: node ids,
addresses and ports, epochs, ping/pong times, the bus port, replication offsets, and the
per-message-type counters of CLUSTER INFO (ackdb has no cluster bus). The end-to-end
tests through real endpoints are in tests/e2e/test_cluster_api.py.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from resp_wire import Reply, RespConnection, parse_reply

from ackdb.cluster.databases import (
    Database,
    DbType,
    Instance,
    Persistence,
    Shard,
    Topology,
    slot_ranges,
)
from ackdb.proxy.clusterapi import ClusterApi, ScanSlot
from ackdb.resp import encoder as enc
from conftest import REDIS_CLI, REDIS_SERVER, ServerProcess, free_port, redis_argv, wait_until

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(
        REDIS_SERVER is None or REDIS_CLI is None, reason="redis-server / redis-cli not on PATH"
    ),
]

NODES = ["n1", "n2", "n3"]


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too: a cluster-enabled
    redis-server refuses ports above 55535."""
    for _ in range(1000):
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no port below 55535 with a free bus port")


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """Three cluster-enabled redis-servers joined by ``redis-cli --cluster create``."""
    base: Path = tmp_path_factory.mktemp("rcluster")
    servers: list[ServerProcess] = []
    try:
        for i in range(3):
            d = base / str(i)
            d.mkdir()
            port = cluster_port()
            argv = redis_argv(port, "--cluster-enabled", "yes", "--cluster-config-file", "n.conf")
            servers.append(ServerProcess(argv, port, d, "redis"))
        ports = [s.port for s in servers]
        assert REDIS_CLI is not None
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )

        def ready() -> bool:
            for p in ports:
                with RespConnection(p) as c:
                    info = c.call("CLUSTER", "INFO")[1]
                    nodes = c.call("CLUSTER", "NODES")[1]
                    if b"cluster_state:ok" not in info or nodes.count(b"connected") != 3:  # type: ignore[operator, union-attr]
                        return False
            return True

        wait_until(ready, 30, 0.2)
        yield ports
    finally:
        for s in servers:
            s.stop()


def ackdb_api() -> ClusterApi:
    shards = tuple(
        Shard(i, first, last, 1, Instance(NODES[i], 30000 + i), ())
        for i, (first, last) in enumerate(slot_ranges(3))
    )
    db = Database("d", 1, DbType.SHARDED, 12000, False, 0, Persistence.NONE, "", True, shards)
    return ClusterApi(Topology(1, db, {n: "127.0.0.1" for n in NODES}, "n1"))


def ackdb_call(api: ClusterApi, args: list[str], protocol: int) -> Reply:
    p = enc.RESP3 if protocol == 3 else enc.RESP2
    out = api.command([a.encode() for a in args], p)
    assert not isinstance(out, ScanSlot)
    reply, end = parse_reply(out, 0)
    assert end == len(out)
    return reply


def redis_call(port: int, args: list[str], protocol: int) -> Reply:
    with RespConnection(port) as c:
        if protocol == 3:
            c.call("HELLO", "3")
        return c.call(*args)


def _shape(reply: Reply, fields: dict[bytes, object] | None = None) -> object:
    """The reply with every value a cluster chooses for itself (ids, ports, addresses,
    offsets) replaced by its type; map/array structure and field names kept."""
    kind, value = reply
    if kind in ("*", "%", "~"):
        items = value or []
        out = []
        for i, item in enumerate(items):  # type: ignore[arg-type]
            key = items[i - 1][1] if kind == "%" and i % 2 else None  # type: ignore[index]
            if kind == "*" and i % 2 and items[i - 1][0] == "$":  # type: ignore[index]
                key = items[i - 1][1]  # a RESP2 map flattened
            if key in (b"slots",):
                out.append(item)
            else:
                out.append(_shape(item))
        return (kind, out)
    if (
        kind == "$"
        and value in (b"master", b"online", b"slots", b"nodes")
        or (
            kind == "$" and isinstance(value, bytes) and not value[:1].isdigit() and len(value) < 20
        )
    ):
        return reply  # field names and words
    return (kind, "<value>")


def _slots_sorted(reply: Reply) -> Reply:
    kind, rows = reply
    return (kind, sorted(rows, key=lambda r: r[1][0][1]))  # type: ignore[arg-type, index]


def _shards_sorted(reply: Reply) -> Reply:
    kind, rows = reply
    return (kind, sorted(rows, key=lambda r: r[1][1][1][0][1]))  # type: ignore[arg-type, index]


@pytest.mark.parametrize("protocol", [2, 3])
def test_cluster_slots_and_shards_have_redis_shapes(
    redis_cluster: list[int], protocol: int
) -> None:
    api = ackdb_api()
    theirs = _slots_sorted(redis_call(redis_cluster[0], ["CLUSTER", "SLOTS"], protocol))
    ours = _slots_sorted(ackdb_call(api, ["CLUSTER", "SLOTS"], protocol))
    assert _shape(ours) == _shape(theirs)
    assert [r[1][:2] for r in ours[1]] == [r[1][:2] for r in theirs[1]]  # type: ignore[index, union-attr]
    theirs = _shards_sorted(redis_call(redis_cluster[0], ["CLUSTER", "SHARDS"], protocol))
    ours = _shards_sorted(ackdb_call(api, ["CLUSTER", "SHARDS"], protocol))
    assert _shape(ours) == _shape(theirs)


@pytest.mark.parametrize("protocol", [2, 3])
def test_cluster_nodes_and_info_have_redis_fields(redis_cluster: list[int], protocol: int) -> None:
    api = ackdb_api()
    theirs = redis_call(redis_cluster[0], ["CLUSTER", "NODES"], protocol)
    ours = ackdb_call(api, ["CLUSTER", "NODES"], protocol)
    assert ours[0] == theirs[0]

    def fields(reply: Reply) -> list[tuple[int, str, str, str, str]]:
        text = reply[1]
        assert isinstance(text, bytes)
        text = text.removeprefix(b"txt:")
        assert text.endswith(b"\n")
        rows = []
        for line in text.decode().splitlines():
            f = line.split(" ")
            assert len(f[0]) == 40 and "@" in f[1]
            rows.append((len(f), f[2], f[3], f[7], " ".join(f[8:])))
        return sorted(rows, key=lambda r: r[4])

    assert fields(ours) == fields(theirs)
    theirs = redis_call(redis_cluster[0], ["CLUSTER", "INFO"], protocol)
    ours = ackdb_call(api, ["CLUSTER", "INFO"], protocol)
    assert ours[0] == theirs[0]

    def info(reply: Reply) -> list[tuple[str, str]]:
        text = reply[1]
        assert isinstance(text, bytes) and text.endswith(b"\r\n")
        pairs = [line.split(":", 1) for line in text.removeprefix(b"txt:").decode().split("\r\n")]
        return [
            (k, v if "epoch" not in k and "stats" not in k else "<n>")
            for k, v in (p for p in pairs if p != [""])
            # per-message-type counters exist only for the bus messages a node exchanged
            if not k.startswith("cluster_stats_messages_")
            or k in ("cluster_stats_messages_sent", "cluster_stats_messages_received")
        ]

    assert info(ours) == info(theirs)


ERROR_CASES = [
    ["CLUSTER"],
    ["CLUSTER", "foo"],
    ["CLUSTER", "slots", "x"],
    ["CLUSTER", "info", "x"],
    ["CLUSTER", "myid", "x"],
    ["CLUSTER", "keyslot"],
    ["CLUSTER", "keyslot", "foo"],
    ["CLUSTER", "keyslot", "{user1000}.following"],
    ["CLUSTER", "countkeysinslot", "x"],
    ["CLUSTER", "countkeysinslot", "-1"],
    ["CLUSTER", "countkeysinslot", "16384"],
    ["CLUSTER", "countkeysinslot", "16000"],  # another node's slot
    ["CLUSTER", "getkeysinslot", "0", "x"],
    ["CLUSTER", "getkeysinslot", "x", "1"],
    ["CLUSTER", "getkeysinslot", "0", "-1"],
    ["CLUSTER", "getkeysinslot", "16384", "1"],
    ["CLUSTER", "getkeysinslot", "0", "0"],
    ["CLUSTER", "getkeysinslot", "16000", "3"],
    ["CLUSTER", "replicas", "nosuchnode"],
    ["READONLY"],
    ["READWRITE"],
    ["ASKING"],
    ["READONLY", "x"],
    ["ASKING", "x"],
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_argument_errors_and_small_replies_match(redis_cluster: list[int], protocol: int) -> None:
    api = ackdb_api()
    # ackdb's n1 owns what redis's first node (ports sorted as created) owns: slots 0-5460
    port = redis_cluster[0]
    diffs = []
    for args in ERROR_CASES:
        theirs, ours = redis_call(port, args, protocol), ackdb_call(api, args, protocol)
        if theirs != ours:
            diffs.append(f"{' '.join(args)}: redis {theirs} ackdb {ours}")
    assert not diffs, "\n".join(diffs)


def test_moved_and_crossslot_texts_match(redis_cluster: list[int]) -> None:
    api = ackdb_api()
    with RespConnection(redis_cluster[0]) as c:
        moved = c.call("GET", "foo")
        cross = c.call("MGET", "foo", "bar")
        cross_ssub = c.call("SSUBSCRIBE", "a", "b")
    slot = 12182
    ours = api.redirect(slot)
    assert ours is not None
    assert moved[0] == "-" and isinstance(moved[1], bytes)
    assert moved[1].rsplit(b" ", 1)[0] == ours[1:-2].rsplit(b" ", 1)[0] == b"MOVED 12182"
    assert cross == cross_ssub == ("-", api.check_slots({1, 2})[1:-2])  # type: ignore[index]
