"""A three-member cluster of real ``ackdb node`` processes: the client port (META.*,
CLUSTER.*, redis-cli), forwarding from followers, and garbage on the cluster port."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from ackdb.cluster.commands import VALUE_MAX_BYTES
from ackdb.node.localcluster import LocalCluster, wait_for
from ackdb.resp.client import ReplyError
from conftest import REDIS_CLI

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("cluster"), 3) as c:
        c.start_all()
        c.wait_leader()
        yield c


def followers(c: LocalCluster) -> list[str]:
    leader = c.wait_leader()
    return [i for i in c.members if i != leader]


def test_every_member_serves_linearizable_reads_and_forwards_writes(cluster: LocalCluster) -> None:
    f1, f2 = followers(cluster)
    with cluster.client(f1) as a:
        assert a.call("META.SET", "color", "blue") == b"OK"  # forwarded to the leader
    for node_id in cluster.members:
        with cluster.client(node_id) as c:
            assert c.call("META.GET", "color") == b"blue"  # read-your-writes everywhere
    with cluster.client(f2) as b:
        assert b.call("META.CAS", "color", "red", "green") == 0
        assert b.call("META.CAS", "color", "blue", "green") == 1
        assert b.call("META.GET", "color") == b"green"
        assert b.call("META.DEL", "color") == 1
        assert b.call("META.DEL", "color") == 0
        assert b.call("META.GET", "color") is None


def test_pipelined_writes_and_reads_keep_order(cluster: LocalCluster) -> None:
    f1 = followers(cluster)[0]
    with cluster.client(f1) as c:
        cmds: list[tuple[str, ...]] = []
        for i in range(200):
            cmds.append(("META.SET", "p", str(i)))
            if i % 50 == 0:
                cmds.append(("META.GET", "p"))
        replies = c.pipeline(cmds)
    gets = [r for r in replies if r != b"OK"]
    assert gets == [b"0", b"50", b"100", b"150"]


def test_status_and_info(cluster: LocalCluster) -> None:
    leader = cluster.wait_leader()

    def registered() -> bool:
        s = cluster.status(leader)
        return s is not None and all(
            m.fields["health"] == "ok" and m.fields["client"] != "?" for m in s.members
        )

    wait_for(registered, 10, "members registered and healthy")
    v = cluster.status(leader)
    assert v is not None and v.role == "leader" and v.leader_id == leader
    assert v.fields["leader_addr"] == cluster[leader].addr
    assert [m.id for m in v.members] == ["n1", "n2", "n3"]
    for m in v.members:
        assert m.fields["client"] == cluster[m.id].addr
        assert m.fields["cluster"] == cluster[m.id].cluster_addr
        assert m.fields["voter"] == "yes" and m.fields["state"] == "active"
        assert int(m.fields["match"]) > 0
    f = cluster.status(followers(cluster)[0])
    assert f is not None and f.fields["leader_addr"] == cluster[leader].addr
    with cluster.client(followers(cluster)[0]) as c:
        info = c.call("INFO").decode()
    assert "role:follower" in info and f"leader_id:{leader}" in info


def test_errors(cluster: LocalCluster) -> None:
    with cluster.client("n1") as c:
        with pytest.raises(ReplyError, match="wrong number of arguments"):
            c.call("META.SET", "k")
        with pytest.raises(ReplyError, match="unknown command 'FOO'"):
            c.call("FOO")
        assert c.call("PING") == b"PONG"
        big = b"x" * VALUE_MAX_BYTES
        assert c.call("META.SET", "big", big) == b"OK"
        assert c.call("META.GET", "big") == big
        with pytest.raises(ReplyError, match="value longer than"):
            c.call("META.SET", "big", big + b"x")
        assert c.call("META.DEL", "big") == 1


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli is not installed")
def test_redis_cli_works(cluster: LocalCluster) -> None:
    assert REDIS_CLI is not None
    port = str(cluster["n2"].port)

    def cli(*args: str) -> str:
        out = subprocess.run(
            [REDIS_CLI, "-p", port, *args], capture_output=True, text=True, timeout=30
        )
        return out.stdout.strip()

    assert cli("META.SET", "cli-key", "hello world") == "OK"
    assert cli("META.GET", "cli-key") == "hello world"
    assert "leader_id:" in cli("CLUSTER.STATUS")


def test_redis_py_works(cluster: LocalCluster) -> None:
    import redis

    r = redis.Redis(port=cluster["n3"].port, socket_timeout=10)
    try:
        assert r.ping()
        assert r.execute_command("META.SET", "py-key", "1") == b"OK"
        assert r.execute_command("META.GET", "py-key") == b"1"
        with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
            r.execute_command("META.GET")
    finally:
        r.close()


def test_garbage_on_the_cluster_port_only_closes_that_link(cluster: LocalCluster) -> None:
    m = cluster["n1"]
    for junk in (b"GET / HTTP/1.1\r\n\r\n", b"\x00\xff" * 100, b"*2\r\n$4\r\nRAFT\r\n$1\r\nx\r\n"):
        with socket.create_connection(("127.0.0.1", m.cluster_port), timeout=5) as s:
            s.sendall(junk)
            s.settimeout(5)
            assert s.recv(10) == b""  # closed
    wait_for(lambda: "Refused peer connection from" in m.log(), 5, "the log line")
    assert m.running()
    with cluster.client("n1") as c:
        assert c.call("META.SET", "after-garbage", "1") == b"OK"
