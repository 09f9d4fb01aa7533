"""Each nemesis does what it says to a real ackdb process, and ``stop()`` undoes it: a
clock jump moves the server's TIME, a namespace partition takes a replica link down (one
way too), a full tmpfs and an injected fsync error make writes fail, a pause stops
replies, and a kill + restart keeps the port and the data."""

from __future__ import annotations

import contextlib
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from jepsen import netns
from jepsen.nemesis import ClockJump, DiskFault, FullDisk, KillRestart, NetPartition, Pause
from jepsen.procs import Node, faketime_available
from jepsen.trio import Trio, repl_info, wait_for

pytestmark = pytest.mark.e2e
AOF = ["--appendonly", "yes", "--appendfsync", "always"]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node("n", tmp_path, AOF, clock_file=tmp_path / "n.clock" if faketime_available() else None)
    n.start()
    yield n
    n.close()


def server_time(n: Node) -> float:
    s, us = n.call("TIME")  # type: ignore[misc]
    return int(s) + int(us) / 1e6


def test_clock_jump_moves_the_servers_wall_clock(node: Node) -> None:
    if node.clock_file is None:
        pytest.skip("libfaketime is not installed (scripts/test-setup.sh installs faketime)")
    nem = ClockJump(lambda: [node], [86400])
    assert abs(server_time(node) - time.time()) < 5
    nem.start(random.Random(1))
    assert abs(server_time(node) - time.time() - 86400) < 5
    nem.stop()
    assert abs(server_time(node) - time.time()) < 5


def test_kill_restart_and_pause(node: Node) -> None:
    node.call("RPUSH", "k", "a")
    kill = KillRestart(lambda: [node])
    kill.start(random.Random(1))
    assert not node.running()
    kill.stop()
    assert node.call("LRANGE", "k", 0, -1) == [b"a"]
    pause = Pause(lambda: [node])
    pause.start(random.Random(1))
    with pytest.raises(redis.TimeoutError):
        node.call("PING", timeout_s=0.5)
    pause.stop()
    assert node.call("PING") is True


def test_disk_fault_refuses_writes_until_stopped(node: Node) -> None:
    nem = DiskFault(lambda: [node], "aof-fsync", "EIO")
    nem.start(random.Random(1))
    wait_for(lambda: _refused(node, "k", "a"), 10, "writes refused")
    nem.stop()
    wait_for(lambda: _writes(node), 10, "writes accepted again")


def _refused(node: Node, key: str, value: str) -> bool:
    """Under ``appendfsync always`` the reply of a write whose fsync failed is held (the
    client times out); the writes after it get ``-MISCONF``."""
    try:
        node.call("RPUSH", key, value, timeout_s=1.0)
    except redis.TimeoutError:
        return True
    except redis.ResponseError as e:
        return str(e).startswith("MISCONF")
    return False


def _writes(node: Node) -> bool:
    try:
        return bool(node.call("RPUSH", "k2", "b", timeout_s=5))
    except redis.ResponseError:
        return False


def test_full_tmpfs_refuses_writes_until_freed(tmp_path: Path) -> None:
    d = tmp_path / "f"
    d.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(d)],
                       check=True, capture_output=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        pytest.skip("cannot mount a tmpfs here (not root)")
    n = Node("f", tmp_path, AOF)
    try:
        n.start()
        nem = FullDisk(n.dir)
        nem.start(random.Random(1))
        wait_for(lambda: _refused(n, "k", "x" * 1000), 10, "writes refused")
        nem.stop()
        wait_for(lambda: _writes(n), 10, "writes accepted again")
    finally:
        n.close()
        subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=10)


def test_namespace_partitions_take_a_replica_link_down_and_heal(tmp_path: Path) -> None:
    if not netns.available():
        pytest.skip("network namespaces / iptables unavailable")
    net = netns.Network(["p", "r1"], seed=5)
    args = ["--repl-timeout", "1"]
    trio = Trio(tmp_path, args, [args], link=net, fsync_log=False)
    try:
        trio.start()
        trio.wait_synced()
        r1 = trio.nodes["r1"]
        for mode in ("isolate", "one-way"):
            nem = NetPartition(net, ["p", "r1"], [mode])
            nem.start(random.Random(3))
            wait_for(lambda: repl_info(r1).get("master_link_status") == "down", 10,
                     f"the link down ({mode})")  # fmt: skip
            nem.stop()
            trio.wait_synced()
    finally:
        trio.close()
        with contextlib.suppress(Exception):
            net.close()
