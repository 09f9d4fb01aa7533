#!/usr/bin/env python3
"""Does a saturating load through a database's endpoint disturb Raft? (issue 14 item 3:
"a saturating benchmark through the proxy must not cause elections (measure it)"), and
what does a node cost in memory with its shards and endpoint (item 8: "report the RSS of
a node with its shards").

Starts a local cluster (``ackdb cluster up``: three nodes on 127.0.0.1-3, the ``default``
database: 3 shards, 1 replica each) in a temporary directory, reads every member's Raft
term and the leader, runs ``redis-benchmark -t set,get -P 16 -c 50`` through node 1's
endpoint for ``--seconds`` (repeated runs, no pause), then reads the terms again. Prints
the terms before and after (equal: no election), the leader, the throughput, and the RSS
of every process of each node (agent, shard processes, endpoint), then stops the
cluster. A report, not a test.

Usage: python3 bench/cluster_saturate.py [--seconds 60] [--db-port 12000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from ackdb.cluster.status import parse_status  # noqa: E402
from ackdb.resp.client import BlockingClient  # noqa: E402


def ackdb(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run(
        [sys.executable, "-m", "ackdb", *args], capture_output=True, text=True, env=env,
        timeout=180,
    )  # fmt: skip


def terms(addrs: list[str]) -> dict[str, tuple[int, str]]:
    out = {}
    for a in addrs:
        with BlockingClient(a, timeout_s=5) as c:
            v = parse_status(c.call("CLUSTER.STATUS").decode())
        out[a] = (int(v.fields["term"]), str(v.fields.get("leader_id")))
    return out


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the agent's shards and endpoint)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                out.append(int(d))
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--db-port", type=int, default=12000)
    a = ap.parse_args()
    bench = shutil.which("redis-benchmark")
    if bench is None:
        print("redis-benchmark not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "cluster"
        up = ackdb("cluster", "up", "--nodes", "3", "--dir", str(data), "--db-port", str(a.db_port))
        if up.returncode != 0:
            print(up.stdout + up.stderr, file=sys.stderr)
            return 3
        try:
            addrs = [f"127.0.0.{i}:{7000 + i}" for i in (1, 2, 3)]
            before = terms(addrs)
            print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
            t0, runs, rps = time.monotonic(), 0, []
            while time.monotonic() - t0 < a.seconds:
                out = subprocess.run(
                    [bench, "-h", "127.0.0.1", "-p", str(a.db_port), "-t", "set,get", "-P", "16",
                     "-c", "50", "-n", "200000", "-r", "100000", "-q"],
                    capture_output=True, text=True, timeout=600,
                )  # fmt: skip
                runs += 1
                for line in out.stdout.replace("\r", "\n").splitlines():
                    if "requests per second" in line:
                        rps.append(line.strip())
            after = terms(addrs)
            print(f"saturating load for {time.monotonic() - t0:.0f} s ({runs} runs); last: "
                  + "; ".join(rps[-2:]))  # fmt: skip
            for addr in addrs:
                print(f"{addr}: term/leader before {before[addr]}, after {after[addr]}")
            elections = sum(after[x][0] - before[x][0] for x in addrs)
            print(f"elections during the load: {'none' if elections == 0 else elections}")
            for i in (1, 2, 3):
                pid = int((data / f"n{i}.pid").read_text())
                kids = children(pid)
                total = rss_kib(pid) + sum(rss_kib(k) for k in kids)
                print(f"node n{i}: agent {rss_kib(pid)} KiB + {len(kids)} processes "
                      f"(shards, endpoint) = {total} KiB")  # fmt: skip
                for k in kids:
                    kind = "endpoint" if " proxy " in cmdline(k) else "shard"
                    print(f"    {kind:<8} pid {k}: {rss_kib(k)} KiB")
        finally:
            ackdb("cluster", "down", "--dir", str(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
