"""Automatic failover with real processes (issue 15): a three-node cluster on three
loopback hosts, one database of one shard with one replica, the ``high`` profile.

- SIGKILL of the node (agent and its shard and proxy processes) holding the primary,
  under a WAIT 1 load through the other nodes' endpoints: every write WAIT 1
  acknowledged is readable after the failover, writes are accepted again, and the
  returning node's instance is a replica of the new primary;
- the primary's node killed and started again at once (before the node timeout): its
  primary is held and failed over, nothing WAIT 1 acknowledged is lost;
- SIGSTOP of the primary's shard process past the detection time, then SIGCONT: it is
  fenced (its writes refused) and becomes a replica;
- divergent writes: a primary accepts writes its replica never receives (the replica is
  stopped), then its node stops (agent and shard) and the replica is promoted; when the
  old primary returns, the writes only it had are in its ``diverged-<epoch>.aof``, shown
  by ``cluster status`` and ``ackdb db diverged`` (until ``--clear``), and absent from
  the new primary;
- planned ``ackdb db failover`` under load: no client error, nothing lost;
- repeated planned failovers back and forth;
- (slow) repeated SIGKILL failovers back and forth;
- (slow, network namespaces) a partition isolating the primary's node: the old primary
  stops acknowledging, the majority side fails over, nothing WAIT 1 acknowledged is lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.failover_support import (
    DB,
    DB_PORT,
    TIMEOUT_S,
    Writer,
    accepts_writes,
    ackdb,
    check_readable,
    endpoint,
    failover_cluster,
    instances,
    primary_moved,
    settled,
    shard_client,
    shard_view,
    wait_writes,
)
from tests.guarantees.jepsen import netns

from ackdb.cluster.status import StatusView, parse_status
from ackdb.node import secrets
from ackdb.node.localcluster import LocalCluster, wait_for
from ackdb.node.secrets import new_secret, write_secret
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

pytestmark = pytest.mark.e2e

FAILOVER_MAX_S = 15.0  # a loose bound for a loaded test machine (the benchmark measures)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with failover_cluster(tmp_path_factory.mktemp("failover")) as c:
        yield c


def _others(c: LocalCluster, node_id: str) -> list[str]:
    return [n for n in c.members if n != node_id]


def _back_as_replica(c: LocalCluster, node_id: str) -> None:
    def ok() -> bool:
        s = settled(c, 2)
        return s is not None and node_id in {r for r, _ in s.replicas}

    wait_for(ok, TIMEOUT_S, f"{node_id} back as a replica")


def test_sigkill_of_the_primarys_node_under_wait1_load(cluster: LocalCluster) -> None:
    s = wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled")
    victim = s.primary
    others = _others(cluster, victim)
    with Writer(cluster, others) as w:
        wait_writes(w, 50)
        t0 = time.monotonic()
        cluster.kill_node(victim)
        new = wait_for(lambda: primary_moved(cluster, s), FAILOVER_MAX_S, "a new primary")
        wait_for(lambda: accepts_writes(cluster, others[0]), FAILOVER_MAX_S, "writes again")
        took = time.monotonic() - t0
        # (The only replica is gone with the node: WAIT 1 answers 0 until it returns.)
        check_readable(cluster, others[0], w.acked)
        cluster.start(victim)
        _back_as_replica(cluster, victim)
        wait_writes(w, 50)  # WAIT 1 reaches the returned replica
    assert new.primary in others
    assert took < FAILOVER_MAX_S
    check_readable(cluster, victim, w.acked)


def test_a_node_back_before_node_timeout_keeps_every_wait_acked_write(
    cluster: LocalCluster,
) -> None:
    # The whole node (agent and shards) dies and starts again at once: its agent finds
    # the primary's process gone and holds it (it came back from an everysec AOF,
    # without its last writes): a failover compares it with the replica, which has
    # everything WAIT 1 acknowledged (docs/failover.md, "A node back before
    # node_timeout_ms"). Started as the primary, it would have had the replica full-sync
    # those writes away.
    s = wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled")
    victim = s.primary
    others = _others(cluster, victim)
    with Writer(cluster, others) as w:
        wait_writes(w, 50)
        cluster.kill_node(victim)
        cluster.start(victim)
        wait_for(
            lambda: (v := shard_view(cluster)) is not None and v.epoch > s.epoch,
            FAILOVER_MAX_S,
            "a failover",
        )
        wait_for(lambda: accepts_writes(cluster, others[0]), FAILOVER_MAX_S, "writes again")
        wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled again")
        wait_writes(w, 50)
    check_readable(cluster, others[0], w.acked)
    check_readable(cluster, victim, w.acked)


def test_a_clean_restart_of_every_node_keeps_each_primary(cluster: LocalCluster) -> None:
    # `ackdb cluster down` then `up`: every shard exits cleanly at its agent's stop (its
    # AOF fsynced) and leaves a clean-stop mark, so its primary starts again as the
    # primary -- no failover, no epoch bump, nothing held (docs/failover.md).
    s = wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled")
    with endpoint(cluster, s.primary) as cl:
        assert cl.pipeline([("SET", f"clean:{i}", str(i)) for i in range(100)]) == [b"OK"] * 100
    logged = len(cluster[s.primary].log())
    for m in cluster.members.values():  # all at once: no leader is left to fail over
        if m.proc is not None:
            m.proc.send_signal(signal.SIGTERM)
    for node_id in cluster.members:
        cluster.kill(node_id, signal.SIGTERM)
    cluster.start_all()
    after = wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled again")
    assert (after.epoch, after.primary) == (s.epoch, s.primary)
    assert "held until the failover" not in cluster[s.primary].log()[logged:]
    wait_for(lambda: accepts_writes(cluster, s.primary), FAILOVER_MAX_S, "writes again")
    with endpoint(cluster, s.primary) as cl:
        assert cl.pipeline([("GET", f"clean:{i}") for i in range(100)]) == [
            str(i).encode() for i in range(100)
        ]


def test_sigstop_of_a_primary_fences_it_and_it_becomes_a_replica(cluster: LocalCluster) -> None:
    s = wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled")
    pid = int(instances(cluster)[s.primary]["pid"])
    os.kill(pid, signal.SIGSTOP)
    try:
        new = wait_for(lambda: primary_moved(cluster, s), FAILOVER_MAX_S, "a new primary")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert new.primary != s.primary
    # Its lease ran out while it was stopped: it refuses writes (fenced, or already a
    # replica again), and it never acknowledges one.
    with shard_client(cluster, s.primary, s.primary_port) as c:
        with pytest.raises(ReplyError, match="TRYAGAIN|READONLY"):
            c.call("SET", "after-sigcont", "1")
    _back_as_replica(cluster, s.primary)
    assert int(instances(cluster)[s.primary]["pid"]) == pid  # the same process, turned


def _diverged_files(c: LocalCluster, node_id: str) -> list[Path]:
    return sorted((c[node_id].dir / "shards").glob("*/diverged-*"))


def test_divergent_writes_of_a_returning_primary_are_saved(cluster: LocalCluster) -> None:
    s = wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled")
    old, (replica, _) = s.primary, s.replicas[0]
    pids = instances(cluster)
    ppid, rpid = int(pids[old]["pid"]), int(pids[replica]["pid"])
    agent = cluster[old].proc
    assert agent is not None
    before = set(_diverged_files(cluster, old))  # (a restart of its node may have left one)
    os.kill(rpid, signal.SIGSTOP)  # the replica receives nothing from here on
    stopped = [rpid]
    try:
        with shard_client(cluster, old, s.primary_port) as c:
            # Its link is closed too, so no write waits in its socket's buffer either.
            assert c.call("CLIENT", "KILL", "TYPE", "replica") == 1
            for i in range(5):
                assert c.call("SET", f"diverged-{i}", str(i)) == b"OK"
            assert c.call("WAIT", "1", "50") == 0  # never covered by WAIT 1
        # The old primary's machine hangs (agent and shard), the replica comes back.
        for pid in (ppid, agent.pid):
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        os.kill(rpid, signal.SIGCONT)
        stopped.remove(rpid)
        new = wait_for(
            lambda: primary_moved(cluster, s) if cluster.status(replica) else None,
            FAILOVER_MAX_S,
            "the replica promoted",
        )
        assert new.primary == replica
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    files = wait_for(
        lambda: [f for f in _diverged_files(cluster, old) if f not in before],
        TIMEOUT_S,
        "a new diverged file",
    )
    # One file per fork the returning primary checked, oldest first. Under load the shard
    # may fail over twice while it is away (the second fork, on the first new primary's
    # history, can add a file): the oldest fork's file holds the writes.
    files.sort(key=lambda f: int(f.stem.rpartition("-")[2]))
    assert files[0].suffix == ".aof", files
    text = files[0].read_bytes()
    for i in range(5):
        assert f"diverged-{i}".encode() in text
    _back_as_replica(cluster, old)
    m = cluster[replica]
    out = ackdb("cluster", "status", "--host", m.host, "--port", str(m.port))
    assert str(files[0]) in out.stdout, out.stdout
    with shard_client(cluster, new.primary, new.primary_port) as c:
        assert c.call("EXISTS", "diverged-0") == 0  # the new history never had them
    # ackdb db diverged lists them (every member asked), --clear removes one.
    out = ackdb("db", "diverged", DB, "--node", m.addr)
    assert out.returncode == 0 and str(files[0]) in out.stdout, out.stdout + out.stderr
    assert f"{old} " in out.stdout
    out = ackdb("db", "diverged", DB, "--node", m.addr, "--clear", str(files[0]))
    assert out.returncode == 0 and "1 file(s) removed" in out.stdout, out.stdout + out.stderr
    assert not files[0].exists()
    out = ackdb("cluster", "status", "--host", m.host, "--port", str(m.port))
    assert str(files[0]) not in out.stdout, out.stdout
    out = ackdb("db", "diverged", DB, "--node", m.addr, "--clear", str(files[0]))
    assert out.returncode == 1 and "no member holds" in out.stderr


def _planned(cluster: LocalCluster) -> None:
    def done() -> bool:
        out = ackdb("db", "failover", DB, "--node", cluster["n1"].addr)
        text = out.stdout + out.stderr
        # A replica's node the leader still counts down (just back from a fault) is no
        # target: wait until it is healthy again.
        assert out.returncode == 0 or "no replica" in text, text
        return out.returncode == 0

    wait_for(done, TIMEOUT_S, "a planned failover accepted")


def test_planned_failover_under_load_without_client_errors(cluster: LocalCluster) -> None:
    s = wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled")
    with Writer(cluster, list(cluster.members)) as w:
        wait_writes(w, 50)
        _planned(cluster)
        new = wait_for(lambda: primary_moved(cluster, s), FAILOVER_MAX_S, "a new primary")
        wait_writes(w, 50)
    assert new.primary == s.replicas[0][0]
    check_readable(cluster, "n1", w.acked)
    _back_as_replica(cluster, s.primary)
    # Nothing was lost, and no client saw an error: the new primary holds writes until
    # its first lease, the endpoint answers a WAIT cut by the demotion with 0, and a
    # write the demoted primary refused before the endpoint's new topology (it did not
    # run) is sent again to the new primary by the endpoint (proxy/failover.py).
    assert w.errors == [], _timed(w.errors)


def _timed(errors: list[tuple[float, str]]) -> list[str]:
    return [
        time.strftime("%H:%M:%S", time.localtime(t)) + f"{t % 1:.3f}"[1:] + f" {e}"
        for t, e in errors
    ]


def test_repeated_planned_failovers_back_and_forth(cluster: LocalCluster) -> None:
    with Writer(cluster, ["n1"]) as w:
        for _ in range(4):
            s = wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled")
            _planned(cluster)
            wait_for(lambda: primary_moved(cluster, s), FAILOVER_MAX_S, "a new primary")  # noqa: B023
            wait_writes(w, 20)
    check_readable(cluster, "n1", w.acked)
    assert shard_view(cluster) is not None


@pytest.mark.slow
def test_repeated_sigkill_failovers_back_and_forth(cluster: LocalCluster) -> None:
    acked: dict[str, bytes] = {}
    for _ in range(3):
        s = wait_for(lambda: settled(cluster, 2), TIMEOUT_S, "the shard settled")
        victim = s.primary
        others = _others(cluster, victim)
        with Writer(cluster, others) as w:
            wait_writes(w, 30)
            cluster.kill_node(victim)
            wait_for(lambda: primary_moved(cluster, s), FAILOVER_MAX_S, "a new primary")  # noqa: B023
            wait_for(lambda: accepts_writes(cluster, others[0]), FAILOVER_MAX_S, "writes")  # noqa: B023
            cluster.start(victim)
            _back_as_replica(cluster, victim)
            wait_writes(w, 30)
        acked.update(w.acked)
        check_readable(cluster, others[0], acked)
    check_readable(cluster, "n1", acked)


# -- a partition (network namespaces) ---------------------------------------------------

NET_NAMES = ["n1", "n2", "n3"]
NET_CLIENT_PORT, NET_CLUSTER_PORT = 7001, 7101


def _net_status(net: netns.Network, node_id: str) -> StatusView | None:
    try:
        with Client(f"{net.ip(node_id)}:{NET_CLIENT_PORT}", timeout_s=1.0) as c:
            return parse_status(c.call("CLUSTER.STATUS").decode())
    except (OSError, ReplyError):
        return None


def _net_shard(net: netns.Network, node_id: str) -> tuple[int, str, int] | None:
    """(epoch, primary node, primary port) of shard 0 as ``node_id`` sees it."""
    v = _net_status(net, node_id)
    for s in v.shards if v is not None else []:
        if s.id == f"{DB}/0":
            node, _, port = s.fields["primary"].partition(":")
            return int(s.fields["epoch"]), node, int(port)
    return None


@pytest.mark.slow
@pytest.mark.skipif(not netns.available(), reason="network namespaces unavailable")
def test_partition_of_the_primarys_node(tmp_path: Path) -> None:
    """The primary's node is cut off from both others: the old primary stops
    acknowledging within its lease, the majority side promotes the replica, and every
    write acknowledged with WAIT 1 is on the new primary; once healed, the old primary
    is a replica and the writes only it took are in its diverged file."""
    net = netns.Network(NET_NAMES)
    procs: list[subprocess.Popen[bytes]] = []
    secret = tmp_path / "cluster.secret"
    write_secret(str(secret), new_secret())
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    try:
        boot = ",".join(f"{n}={net.ip(n)}:{NET_CLUSTER_PORT}" for n in NET_NAMES)
        for n in NET_NAMES:
            ip = net.ip(n)
            argv = [
                sys.executable, "-m", "ackdb", "node", "--id", n, "--dir", str(tmp_path / n),
                "--port", str(NET_CLIENT_PORT), "--cluster-port", str(NET_CLUSTER_PORT),
                "--bind", ip, "--advertise-host", ip, "--bootstrap", boot,
                "--cluster-secret-file", str(secret), "--logfile", str(tmp_path / f"{n}.log"),
            ]  # fmt: skip
            procs.append(subprocess.Popen(net.wrap(n, argv), env=env, cwd=tmp_path))
        first = f"{net.ip('n1')}:{NET_CLIENT_PORT}"

        def create() -> bool:
            out = ackdb(
                "db", "create", DB, "--shards", "1", "--replicas", "1", "--port",
                str(DB_PORT), "--failover-profile", "high", "--node", first,
            )  # fmt: skip
            return out.returncode == 0 or "already exists" in out.stdout + out.stderr

        wait_for(create, 60, "the database")
        pw = secrets.shard_password(secrets.read_secret(str(secret)))

        def replicated() -> bool:
            try:
                with Client(f"{net.ip('n1')}:{DB_PORT}", timeout_s=2) as c:
                    return bool(c.call("WAIT", "1", "100") == 1)
            except (OSError, ReplyError):
                return False

        wait_for(replicated, 60, "the replica attached")
        epoch, old, port = wait_for(lambda: _net_shard(net, "n1"), 30, "the shard")
        majority = [n for n in NET_NAMES if n != old]
        acked: dict[str, bytes] = {}
        with Client(f"{net.ip(old)}:{port}", timeout_s=2) as direct:
            direct.call("AUTH", pw)

            def leased() -> bool:
                try:
                    return bool(direct.call("SET", "leased", "1") == b"OK")
                except ReplyError:
                    return False  # its first lease is still coming

            wait_for(leased, 30, "the primary's lease")
            for i in range(20):
                direct.call("SET", f"before-{i}", "1")
                if direct.call("WAIT", "1", "1000") >= 1:
                    acked[f"before-{i}"] = b"1"
            for other in majority:
                net.cut(old, other)
            t0 = time.monotonic()
            # The old primary keeps acknowledging (without WAIT 1) until its lease runs
            # out, then refuses: never after the majority could promote.
            refused_at = None
            while time.monotonic() - t0 < 5:
                try:
                    direct.call("SET", f"cut-{time.monotonic() - t0:.3f}", "1")
                except ReplyError as e:
                    assert "TRYAGAIN" in str(e)
                    refused_at = time.monotonic() - t0
                    break
                time.sleep(0.01)
            assert refused_at is not None and refused_at < 1.0, refused_at

            def promoted() -> tuple[int, str, int] | None:
                got = _net_shard(net, majority[0])
                return got if got is not None and got[0] > epoch and got[1] != old else None

            _, new, new_port = wait_for(promoted, 20, "the majority's failover")
            assert new == majority[0] or new == majority[1]
            with Client(f"{net.ip(new)}:{new_port}", timeout_s=2) as c:
                c.call("AUTH", pw)
                for k, v in acked.items():
                    assert c.call("GET", k) == v, k
            net.heal()

            def follows() -> bool:
                try:
                    info = direct.call("INFO", "replication").decode()
                except (OSError, ReplyError):
                    return False
                return "role:slave" in info and f"master_port:{new_port}" in info

            wait_for(follows, 30, "the old primary to follow the new one")
        files = list((tmp_path / old / "shards").glob("*/diverged-*"))
        assert files and b"cut-" in b"".join(f.read_bytes() for f in files)
    finally:
        netns.stop_processes(procs)
        net.close()
