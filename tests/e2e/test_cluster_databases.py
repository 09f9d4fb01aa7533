"""Databases on a three-member cluster of real ``ackdb node`` processes: DB.* through a
follower over RESP and with ``ackdb db``, refusals that create nothing, a restarted
member that still has them (from a snapshot), and DB.TOPOLOGY's long poll."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from ackdb.cluster.databases import Topology
from ackdb.cluster.dbtext import parse_info
from ackdb.node.localcluster import LocalCluster, wait_for
from ackdb.resp.client import ReplyError

pytestmark = pytest.mark.e2e

CLI_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # Small snapshots, so a restarted member gets its databases back from one.
    with LocalCluster(
        tmp_path_factory.mktemp("dbs"), 3, ["--snapshot-entries", "8"], distinct_hosts=True
    ) as c:
        c.start_all()
        registered(c)
        yield c


def registered(c: LocalCluster) -> None:
    """Wait for every member to register its addresses (until then it takes no shards)."""

    def ready() -> bool:
        v = c.status(c.wait_leader())
        running = [i for i in c.members if c[i].running()]
        return (
            v is not None
            and all(
                m.fields.get("client") != "?" and m.fields.get("health") == "ok"
                for m in v.members
                if m.id in running
            )
            and len(v.members) >= len(running)
        )

    wait_for(ready, 20, "every member to register")


def follower(c: LocalCluster) -> str:
    leader = c.wait_leader()
    return next(i for i in c.members if i != leader and c[i].running())


def db_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ackdb", "db", *args],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip


def names(c: LocalCluster, node_id: str) -> list[bytes]:
    with c.client(node_id) as cl:
        r = cl.call("DB.LIST")
        assert isinstance(r, list)
        return r


def test_create_list_info_delete_through_a_follower_over_resp(cluster: LocalCluster) -> None:
    f = follower(cluster)
    with cluster.client(f) as cl:
        text = cl.call("DB.CREATE", "resp1", "SHARDS", "3", "REPLICATION", "yes")
    info = parse_info(text.decode())
    assert info.name == "resp1" and len(info.shards) == 3
    assert {s.primary.split(":")[0] for s in info.shards} == {"n1", "n2", "n3"}
    for s in info.shards:
        (replica,) = s.replicas
        assert replica.split(":")[0] != s.primary.split(":")[0]
    for node_id in cluster.members:  # every member reads it (linearizable reads)
        assert b"resp1" in names(cluster, node_id)
        with cluster.client(node_id) as cl:
            assert parse_info(cl.call("DB.INFO", "resp1").decode()).fields == info.fields
    with cluster.client(f) as cl:
        with pytest.raises(ReplyError, match="already exists"):
            cl.call("DB.CREATE", "resp1")
        assert cl.call("DB.DELETE", "resp1") == b"OK"
        with pytest.raises(ReplyError, match="no such database 'resp1'"):
            cl.call("DB.INFO", "resp1")
    assert b"resp1" not in names(cluster, cluster.wait_leader())


def test_the_cli_through_a_follower(cluster: LocalCluster) -> None:
    node = cluster[follower(cluster)].addr
    dead = "127.0.0.1:1"  # the CLI moves on to the next member
    r = db_cli("create", "cli1", "--shards", "2", "--replicas", "1", "--node", node)
    assert r.returncode == 0, r.stderr
    assert "created database cli1" in r.stdout and "replication yes" in r.stdout
    r = db_cli("list", "--node", node)
    assert r.returncode == 0 and "cli1" in r.stdout
    r = db_cli("info", "cli1", "--node", node)
    assert r.returncode == 0 and "8192-16383" in r.stdout
    st = subprocess.run(
        [sys.executable, "-m", "ackdb", "cluster", "status", "--host", node.split(":")[0],
         "--port", node.split(":")[1]],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip
    assert st.returncode == 0 and "cli1/1" in st.stdout and "cli1 " in st.stdout
    r = db_cli("info", "nope", "--node", dead)
    assert r.returncode == 1 and "no member answers" in r.stderr
    r = db_cli("delete", "cli1", "--node", node)
    assert r.returncode == 0 and "deleted database cli1" in r.stdout
    r = db_cli("info", "cli1", "--node", node)
    assert r.returncode == 1 and "no such database 'cli1'" in r.stderr


def test_a_refused_request_creates_nothing(cluster: LocalCluster) -> None:
    node = cluster[follower(cluster)].addr
    before = names(cluster, cluster.wait_leader())
    r = db_cli("create", "big", "--replicas", "3", "--node", node)
    assert r.returncode == 1
    assert "cannot place 3 replicas per shard: needs 4 nodes, the cluster has 3" in r.stderr
    with cluster.client(follower(cluster)) as cl:
        with pytest.raises(ReplyError, match="already used by node"):
            cl.call("DB.CREATE", "clash", "PORT", str(cluster["n1"].port))
        with pytest.raises(ReplyError, match="syntax error"):
            cl.call("DB.CREATE", "odd", "SHARDS")
    assert names(cluster, cluster.wait_leader()) == before


def test_a_restarted_member_still_has_the_database(cluster: LocalCluster) -> None:
    f = follower(cluster)
    with cluster.client(f) as cl:
        created = parse_info(cl.call("DB.CREATE", "kept", "SHARDS", "2").decode())
        for i in range(20):  # enough entries for a snapshot or two
            cl.call("META.SET", f"k{i}", "v")
    cluster.kill(f, signal.SIGTERM)
    cluster.start(f)

    def local() -> Topology | None:
        with cluster.client(f) as cl:
            try:
                return Topology.from_bytes(cl.call("DB.TOPOLOGY", "kept"))
            except ReplyError:
                return None

    t = wait_for(local, 20, "the restarted member to have the database")
    assert t.db.name == "kept" and t.db.uid == int(created.fields["uid"]) and t.node == f
    with cluster.client(f) as cl:
        assert parse_info(cl.call("DB.INFO", "kept").decode()).fields == created.fields
        cl.call("DB.DELETE", "kept")


def test_topology_long_poll_answers_on_change_and_on_timeout(cluster: LocalCluster) -> None:
    f = follower(cluster)
    with cluster.client(f) as cl:
        cl.call("DB.CREATE", "watched", "SHARDS", "3")
        t = Topology.from_bytes(cl.call("DB.TOPOLOGY", "watched"))
        # Unchanged: the poll answers at its timeout with the same bytes.
        start = time.monotonic()
        assert cl.call("DB.TOPOLOGY", "watched", str(t.version), "300") == t.to_bytes()
        assert time.monotonic() - start >= 0.25
    # A change (a new member: every endpoint's hosts change) answers the polls at once.
    answers: list[bytes] = []

    def poll() -> None:
        with cluster.client(f, timeout_s=60) as cl:
            answers.append(cl.call("DB.TOPOLOGY", "watched", str(t.version), "60000"))

    threads = [threading.Thread(target=poll) for _ in range(3)]
    for th in threads:
        th.start()
    time.sleep(0.3)
    assert answers == []  # still waiting
    cluster.add("n4", join_via=f)
    for th in threads:
        th.join(30)
    assert len(answers) == 3 and len(set(answers)) == 1
    t2 = Topology.from_bytes(answers[0])
    assert t2.version > t.version and "n4" in t2.hosts and t2.db == t.db
    # A deleted database answers its polls with the error.
    with cluster.client(f, timeout_s=60) as cl:
        cl.send("DB.TOPOLOGY", "watched", str(t2.version), "60000")
        with cluster.client(cluster.wait_leader()) as other:
            other.call("DB.DELETE", "watched")
        r = cl.read()
        assert isinstance(r, ReplyError) and "no such database 'watched'" in str(r)
