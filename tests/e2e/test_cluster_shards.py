"""The shard supervisor with real processes: a three-node cluster on three loopback hosts
creates a database; each node's agent starts its shard processes with the roles the
metadata gives and the database's proxy endpoint on the same port on every host,
replication works with the internal password (and nobody gets in without it), a crashed
shard is restarted and resyncs, a SIGKILLed agent adopts its running shards and proxy
when it starts again (same PIDs), a deleted database leaves no process or directory, and
stopping every agent (SIGTERM, as ``ackdb cluster down``) leaves no shard or proxy
process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ackdb.cluster.status import InstanceView
from ackdb.node import secrets
from ackdb.node.localcluster import LocalCluster, wait_for
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

pytestmark = pytest.mark.e2e

DB = "db1"
DB_PORT = 12000
TIMEOUT_S = 40.0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except OSError:
        return False


def instances(c: LocalCluster, kind: str = "instance") -> dict[tuple[str, str], InstanceView]:
    """(db/shard, node) -> its line (or (db, node) -> a proxy's), from every member."""
    out = {}
    for node_id, m in c.members.items():
        if not m.running():
            continue
        v = c.status(node_id)
        for i in v.instances if v is not None else []:
            if i.kind == kind:
                out[(i.name, i.fields["node"])] = i
    return out


def settled(c: LocalCluster, count: int) -> dict[tuple[str, str], InstanceView] | None:
    """Every instance running in the role it should have, replicas' links up, and each
    database's proxy running on every node."""
    got = instances(c)
    if len(got) != count:
        return None
    for i in got.values():
        f = i.fields
        if f["state"] != "running" or f["seen"] != f["role"]:
            return None
        if f["role"] == "replica" and f["link"] != "up":
            return None
    proxies = instances(c, "proxy")
    dbs = {name.partition("/")[0] for name, _ in got}
    if len(proxies) != 3 * len(dbs) or any(
        p.fields["state"] != "running" for p in proxies.values()
    ):
        return None
    return got


def all_pids(c: LocalCluster) -> dict[tuple[str, str], int]:
    both = {**instances(c), **instances(c, "proxy")}
    return {k: int(v.fields["pid"]) for k, v in both.items()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("shards"), 3, distinct_hosts=True) as c:
        c.start_all()
        leader = c.wait_leader()

        def all_active() -> bool:
            v = c.status(leader)
            return (
                v is not None
                and [(m.fields["state"], m.fields["health"]) for m in v.members]
                == [("active", "ok")] * 3
            )

        wait_for(all_active, TIMEOUT_S, "three active members")
        with c.client("n1") as cl:
            cl.call("DB.CREATE", DB, "SHARDS", "3", "REPLICAS", "1", "PORT", str(DB_PORT))
        yield c


def password(c: LocalCluster) -> str:
    secret = secrets.read_secret(str(c["n1"].dir / "cluster.secret"))
    return secrets.shard_password(secret)


def addr(i: InstanceView) -> str:
    return f"{i.fields['host']}:{i.fields['port']}"


def shard(got: dict[tuple[str, str], InstanceView], name: str, role: str) -> InstanceView:
    (i,) = [v for (n, _), v in got.items() if n == f"{DB}/{name}" and v.fields["role"] == role]
    return i


def test_shards_start_with_their_roles_on_their_hosts(cluster: LocalCluster) -> None:
    got = wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "six shards in their roles")
    for s in range(3):
        p, r = shard(got, str(s), "primary"), shard(got, str(s), "replica")
        assert p.fields["node"] != r.fields["node"]
        for i in (p, r):
            assert i.fields["host"] == cluster[i.fields["node"]].host
            pid = int(i.fields["pid"])
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert b"server" in cmd and any(a.endswith(b"shard.conf") for a in cmd)
            conf = next(a for a in cmd if a.endswith(b"shard.conf")).decode()
            assert os.stat(conf).st_mode & 0o777 == 0o600
            assert password(cluster) not in " ".join(a.decode() for a in cmd)


def test_replication_with_the_shard_password_and_noauth_without(cluster: LocalCluster) -> None:
    got = wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "six shards")
    pw = password(cluster)
    for s in range(3):
        p, r = shard(got, str(s), "primary"), shard(got, str(s), "replica")
        with Client(addr(p)) as cp:
            with pytest.raises(ReplyError, match="NOAUTH"):
                cp.call("SET", "k", "v")
            with pytest.raises(ReplyError):
                cp.call("AUTH", "not-the-password")
            assert cp.call("AUTH", pw) == b"OK"
            assert cp.call("SET", f"key{s}", f"value{s}") == b"OK"
            assert cp.call("WAIT", "1", "5000") == 1
        with Client(addr(r)) as cr:
            with pytest.raises(ReplyError, match="NOAUTH"):
                cr.call("GET", f"key{s}")
            cr.call("AUTH", pw)
            assert cr.call("GET", f"key{s}") == f"value{s}".encode()


def test_every_node_serves_the_database_on_its_port(cluster: LocalCluster) -> None:
    wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "six shards and three proxies")
    for node_id, m in cluster.members.items():
        with Client(f"{m.host}:{DB_PORT}") as c:
            assert c.call("SET", f"via-{node_id}", node_id) == b"OK"
    for m in cluster.members.values():
        with Client(f"{m.host}:{DB_PORT}") as c:
            assert c.call("MGET", "via-n1", "via-n2", "via-n3") == [b"n1", b"n2", b"n3"]


def test_killed_shard_restarts_and_resyncs(cluster: LocalCluster) -> None:
    got = wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "six shards")
    pw = password(cluster)
    p, r = shard(got, "1", "primary"), shard(got, "1", "replica")
    old = int(r.fields["pid"])
    with Client(addr(p)) as cp:
        cp.call("AUTH", pw)
        cp.call("SET", "before-crash", "1")
    os.kill(old, signal.SIGKILL)
    with Client(addr(p)) as cp:
        cp.call("AUTH", pw)
        cp.call("SET", "during-crash", "2")  # the replica must catch up on this

    def restarted() -> InstanceView | None:
        now = settled(cluster, 6)
        if now is None:
            return None
        i = shard(now, "1", "replica")
        return i if int(i.fields["pid"]) != old else None

    again = wait_for(restarted, TIMEOUT_S, "the replica to restart")
    assert int(again.fields["restarts"]) >= 1
    node = again.fields["node"]
    assert "exited (killed by SIGKILL)" in cluster[node].log()
    with Client(addr(again)) as cr:
        cr.call("AUTH", pw)
        wait_for(lambda: cr.call("GET", "during-crash") == b"2", TIMEOUT_S, "the resync")
        assert cr.call("GET", "before-crash") == b"1"


def test_a_replica_turned_primary_by_hand_is_put_back_live(cluster: LocalCluster) -> None:
    """The probes compare each shard's role with the metadata's and repair it with
    REPLICAOF -- the same path a failover's role change takes -- without a restart."""
    got = wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "six shards")
    r = shard(got, "2", "replica")
    with Client(addr(r)) as c:
        c.call("AUTH", password(cluster))
        assert c.call("REPLICAOF", "NO", "ONE") == b"OK"

    log = cluster[r.fields["node"]].log
    wait_for(lambda: "-2 becomes replica of " in log(), TIMEOUT_S, "the supervisor's REPLICAOF")
    now = wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "the replica to follow again")
    assert shard(now, "2", "replica").fields["pid"] == r.fields["pid"]  # not restarted


def test_killed_agent_adopts_its_running_shards(cluster: LocalCluster) -> None:
    wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "six shards")
    mine = {k: pid for k, pid in all_pids(cluster).items() if k[1] == "n2"}
    assert len(mine) >= 3  # its shards and its proxy
    cluster.kill("n2", signal.SIGKILL)
    for pid in mine.values():
        assert _alive(pid)  # their own session: the agent's death leaves them running
    # one shard dies while its agent is down: the next agent restarts that one
    dead_key = min(k for k in mine if "/" in k[0])
    dead_pid = mine.pop(dead_key)
    os.kill(dead_pid, signal.SIGKILL)
    wait_for(lambda: not _alive(dead_pid), TIMEOUT_S, "the shard to die")
    cluster.start("n2")
    wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "six shards again")
    now = all_pids(cluster)
    assert {k: now[k] for k in mine} == mine  # adopted: the same processes
    assert now[dead_key] != dead_pid
    for pid in mine.values():
        assert f"adopted running pid {pid}" in cluster["n2"].log()


def test_deleted_database_leaves_nothing(cluster: LocalCluster) -> None:
    def create() -> bool:
        with cluster.client("n3") as cl:
            try:
                cl.call("DB.CREATE", "tmpdb", "SHARDS", "1", "REPLICAS", "1")
                return True
            except ReplyError:
                return False

    wait_for(create, TIMEOUT_S, "tmpdb")
    wait_for(lambda: settled(cluster, 8), TIMEOUT_S, "eight shards")
    pids = [pid for (n, _), pid in all_pids(cluster).items() if n.startswith("tmpdb")]
    assert len(pids) == 5  # two shards, three proxies
    dirs = list(Path(cluster.base_dir).glob("n*/shards/*"))
    proxy_dirs = list(Path(cluster.base_dir).glob("n*/proxies/*"))
    with cluster.client("n1") as cl:
        assert cl.call("DB.DELETE", "tmpdb") == b"OK"
    wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "six shards")
    wait_for(lambda: not any(_alive(p) for p in pids), TIMEOUT_S, "tmpdb's processes to exit")
    left = list(Path(cluster.base_dir).glob("n*/shards/*"))
    wait_for(
        lambda: len(list(Path(cluster.base_dir).glob("n*/shards/*"))) == len(dirs) - 2,
        TIMEOUT_S,
        f"tmpdb's directories to go (left: {left})",
    )
    wait_for(
        lambda: len(list(Path(cluster.base_dir).glob("n*/proxies/*"))) == len(proxy_dirs) - 3,
        TIMEOUT_S,
        "tmpdb's proxy directories to go",
    )


def test_cluster_status_lists_every_nodes_shards(cluster: LocalCluster) -> None:
    wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "six shards")
    out = subprocess.run(
        [sys.executable, "-m", "ackdb.node", "cluster", "status", "--host", cluster["n2"].host,
         "--port", str(cluster["n2"].port)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    rows = [r for r in out.splitlines() if r.startswith(f"{DB}/") and " running " in r]
    assert len(rows) == 6, out
    assert sum(" primary " in r for r in rows) == 3


def test_stopping_every_agent_leaves_no_shard_process(cluster: LocalCluster) -> None:
    wait_for(lambda: settled(cluster, 6), TIMEOUT_S, "six shards")
    pids = list(all_pids(cluster).values())
    assert len(pids) == 9 and all(_alive(p) for p in pids)
    cluster.close()  # SIGTERM to every agent, as ackdb cluster down does
    assert [p for p in pids if _alive(p)] == []
