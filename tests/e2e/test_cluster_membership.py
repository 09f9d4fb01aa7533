"""Membership with real processes: a member joins (catching up from a snapshot), a
follower and then the leader are removed (each exits once removed), and the
``ackdb cluster`` tool drives a local cluster from up to down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from ackdb.node.localcluster import LocalCluster, free_port, wait_for

pytestmark = pytest.mark.e2e

CLI_TIMEOUT_S = 60


def voters(c: LocalCluster, leader: str) -> list[str]:
    v = c.status(leader)
    return [] if v is None else v.fields["voters"].split(",")


def test_join_through_a_follower_then_remove_follower_and_leader(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 3, ["--snapshot-entries", "20"]) as c:
        c.start_all()
        leader = c.wait_leader()
        with c.client(leader) as cl:
            assert set(cl.pipeline([("META.SET", f"k{i}", str(i)) for i in range(100)])) == {b"OK"}
        via = next(i for i in c.members if i != leader)
        c.add("n4", join_via=via)
        wait_for(lambda: "n4" in voters(c, c.wait_leader()), 15, "n4 to become a voter")
        wait_for(lambda: "This node is now a voter" in c["n4"].log(), 15, "n4 to catch up")
        assert "Installed a snapshot" in c["n4"].log()  # the log it needed was compacted
        with c.client("n4") as cl:
            assert cl.call("META.GET", "k99") == b"99"
            assert cl.call("META.SET", "from-n4", "yes") == b"OK"

        # Remove a follower: it leaves the voters and exits by itself.
        leader = c.wait_leader()
        follower = next(i for i in ("n1", "n2", "n3") if i != leader)
        with c.client("n4") as cl:
            assert cl.call("CLUSTER.REMOVE", follower) == b"OK"
        wait_for(lambda: follower not in voters(c, c.wait_leader()), 15, "the removal")
        wait_for(lambda: not c[follower].running(), 15, f"{follower} to exit")

        # Remove the leader: it steps down, the rest elect, it exits.
        rest = [i for i in c.members if i not in (leader, follower)]
        with c.client(rest[0]) as cl:
            assert cl.call("CLUSTER.REMOVE", leader) == b"OK"
        new = c.wait_leader(rest, timeout_s=15)
        wait_for(lambda: voters(c, new) == sorted(rest), 15, "the leader's removal")
        wait_for(lambda: not c[leader].running(), 15, f"{leader} to exit")
        with c.client(rest[1]) as cl:
            assert cl.call("META.GET", "from-n4") == b"yes"
            assert cl.call("META.SET", "after", "1") == b"OK"
        v = c.status(new)
        assert v is not None and sorted(m.id for m in v.members) == sorted(rest)


def _free_base() -> int:
    """A base port with base..base+9 and base+100..base+109 free (best effort)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + 110 >= 65536:
            continue
        ports = [base + i for i in range(10)] + [base + 100 + i for i in range(10)]
        try:
            socks = []
            for p in ports:
                t = socket.socket()
                socks.append(t)
                t.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
        return base
    raise RuntimeError("no free port range")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ackdb.node", "cluster", *args],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip


def test_cluster_tool_up_status_add_remove_down(tmp_path: Path) -> None:
    data = tmp_path / "data"
    base = _free_base()
    try:
        db_port = free_port()
        up = cli(
            "up", "--nodes", "3", "--dir", str(data), "--base-port", str(base),
            "--db-port", str(db_port),
        )  # fmt: skip
        assert up.returncode == 0, up.stderr + up.stdout
        assert "leader n" in up.stdout and "term" in up.stdout
        assert f"ready: redis-cli -h 127.0.0.1 -p {db_port}" in up.stdout
        pids = [int((data / f"n{i}.pid").read_text()) for i in (1, 2, 3)]
        # The default database, through two nodes' endpoints; its replicas are attached.
        r1 = redis.Redis(host="127.0.0.1", port=db_port, socket_timeout=10)
        r2 = redis.Redis(host="127.0.0.2", port=db_port, socket_timeout=10)
        assert r1.mset({f"k{i}": i for i in range(30)})
        assert r2.mget(["k3", "k29"]) == [b"3", b"29"]
        assert r1.execute_command("WAIT", 1, 5000) == 1
        r1.close()
        r2.close()
        st = cli("status", "--host", "127.0.0.2", "--port", str(base + 1))  # n2
        assert st.returncode == 0, st.stderr
        lines = st.stdout.splitlines()
        assert lines[0].startswith("leader n") and "commit index" in lines[0]
        assert [ln.split()[0] for ln in lines[2:5]] == ["n1", "n2", "n3"]
        assert any(ln.startswith("default ") and str(db_port) in ln for ln in lines)
        assert sum(ln.startswith("default/") and " primary " in ln for ln in lines) >= 3
        add = cli("add-node", "--dir", str(data))
        assert add.returncode == 0, add.stderr + add.stdout
        assert any(ln.startswith("n4 ") and " yes " in ln for ln in add.stdout.splitlines())
        rm = cli("remove-node", "n4", "--dir", str(data))
        assert rm.returncode == 0, rm.stderr + rm.stdout
        assert "n4 removed" in rm.stdout
        st = cli("status", "--dir", str(data))
        assert "n4" not in st.stdout
    finally:
        down = cli("down", "--dir", str(data))
    assert down.returncode == 0, down.stderr
    assert down.stdout.count("stopped") == 3
    for pid in pids:
        wait_for(lambda pid=pid: not _alive(pid), 10, f"pid {pid} to exit")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # an unreaped (zombie) process has exited
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
