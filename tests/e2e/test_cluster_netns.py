"""A cluster across network namespaces: issue 14's "many machines".

Three ``ackdb node`` processes, each in its own network namespace with its own address
on a private /24 (tests/guarantees/jepsen/netns.py: veths into a bridge), bootstrap
together with ``--bind``/``--advertise-host`` set to those addresses and one cluster
secret. A database is created through one node with the CLI; every node's endpoint
serves it, from the test's own namespace, and the shards listen on their own nodes'
addresses. (Partitions of such a cluster belong to the failover issue.) Skipped where
namespaces are not available (not root, no ``ip`` or ``iptables``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from tests.guarantees.jepsen import netns

from ackdb.node.localcluster import wait_for
from ackdb.node.secrets import new_secret, write_secret

pytestmark = pytest.mark.skipif(not netns.available(), reason="network namespaces unavailable")

NAMES = ["n1", "n2", "n3"]
CLIENT_PORT, CLUSTER_PORT, DB_PORT = 7001, 7101, 12000


def _ackdb(*args: str) -> list[str]:
    return [sys.executable, "-m", "ackdb", *args]


def _answers(host: str, port: int, password: str | None = None) -> bool:
    try:
        with redis.Redis(host=host, port=port, socket_timeout=2, password=password) as r:
            return bool(r.ping())
    except redis.RedisError:
        return False


def test_a_database_across_namespaces(tmp_path: Path) -> None:
    net = netns.Network(NAMES)
    procs: list[subprocess.Popen[bytes]] = []
    secret = tmp_path / "cluster.secret"
    write_secret(str(secret), new_secret())
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    try:
        boot = ",".join(f"{n}={net.ip(n)}:{CLUSTER_PORT}" for n in NAMES)
        for n in NAMES:
            ip = net.ip(n)
            argv = _ackdb(
                "node", "--id", n, "--dir", str(tmp_path / n), "--port", str(CLIENT_PORT),
                "--cluster-port", str(CLUSTER_PORT), "--bind", ip, "--advertise-host", ip,
                "--bootstrap", boot, "--cluster-secret-file", str(secret),
                "--logfile", str(tmp_path / f"{n}.log"),
            )  # fmt: skip
            procs.append(subprocess.Popen(net.wrap(n, argv), env=env, cwd=tmp_path))
        nodes = [f"{net.ip(n)}:{CLIENT_PORT}" for n in NAMES]
        wait_for(lambda: all(_answers(*a.split(":")) for a in nodes), 30, "the nodes")

        def registered() -> bool:
            """Every member is active with its client address known: placement uses the
            nodes registered when the database is created, so creating it earlier could
            leave a node without shards (and the check below would fail)."""
            out = subprocess.run(
                _ackdb("cluster", "status", "--host", net.ip("n1"), "--port", str(CLIENT_PORT)),
                capture_output=True, text=True, env=env, timeout=30,
            )  # fmt: skip
            rows = [ln.split() for ln in out.stdout.splitlines()]
            members = [r for r in rows if r and r[0] in NAMES]
            return (
                out.returncode == 0
                and len(members) == len(NAMES)
                and all(r[1] != "?" and r[4] == "active" for r in members)
            )

        wait_for(registered, 60, "every node to register its address")

        def create() -> bool:
            out = subprocess.run(
                _ackdb("db", "create", "shop", "--shards", "3", "--replicas", "1",
                       "--port", str(DB_PORT), "--node", nodes[1]),
                capture_output=True, text=True, env=env, timeout=30,
            )  # fmt: skip
            return out.returncode == 0 or "already exists" in out.stdout + out.stderr

        wait_for(create, 60, "the database to be created (members registering)")
        endpoints = [redis.Redis(host=net.ip(n), port=DB_PORT, socket_timeout=10) for n in NAMES]

        def replicated() -> bool:
            try:
                return bool(endpoints[0].execute_command("WAIT", 1, 100) == 1)
            except redis.RedisError:
                return False

        wait_for(replicated, 60, "every shard's replica to attach")
        assert endpoints[0].mset({f"k{i}": i for i in range(60)})
        assert endpoints[0].execute_command("WAIT", 1, 5000) == 1
        for r in endpoints:
            assert r.mget(["k0", "k59"]) == [b"0", b"59"]
            assert r.dbsize() == 60
        # The shards listen on their nodes' own addresses, on ports the cluster gave.
        status = subprocess.run(
            _ackdb("cluster", "status", "--host", net.ip("n1"), "--port", str(CLIENT_PORT)),
            capture_output=True, text=True, env=env, timeout=30,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        rows = [ln.split() for ln in status.stdout.splitlines() if ln.startswith("shop/")]
        shard_hosts = {  # the instances table: shard, node, role, seen, address, ...
            row[4].rsplit(":", 1)[0] for row in rows if row[2] in ("primary", "replica")
        }
        assert shard_hosts == {net.ip(n) for n in NAMES}, status.stdout
        for r in endpoints:
            r.close()
    finally:
        netns.stop_processes(procs)
        net.close()
