#!/usr/bin/env python3
"""Throughput and latency of committed META.SET on a 3-member ``ackdb node`` cluster on
loopback (every member fsyncs its Raft log before acknowledging), and failover time.

Starts a private cluster (``ackdb.node.localcluster``) in a temporary directory, then:

1. for each load -- a number of client connections, each keeping ``pipeline`` commands
   in flight -- sends ``META.SET bench:<conn>:<n> <64 bytes>`` to the leader (and, on
   the row marked "follower", to a follower, which forwards to the leader) for
   ``--seconds`` after a short warm-up, and reports committed writes per second, p50 and
   p99 latency (send to reply), and how many log entries each leader fsync covered;
2. ``--failovers`` times: SIGKILLs the leader under a light write load and reports the
   time from the kill to a new leader (``CLUSTER.STATUS``) and to the first write a
   survivor acknowledges; the killed member is restarted before the next round.

This is a report, not a test: the exit status is 0 whatever the figures.

Usage (from the repository root)::

    python bench/raft_bench.py                  # about 1.5 min on an idle 2-core machine
    python bench/raft_bench.py --quick          # about 30 s
    python bench/raft_bench.py --loads 1x1,64x1 --seconds 10 --failovers 5
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "src"))

from ackdb.node.localcluster import LocalCluster, wait_for  # noqa: E402
from ackdb.resp.client import BlockingClient, Client, ReplyError  # noqa: E402

VALUE = b"v" * 64
KEYS_PER_CONNECTION = 1000
WARMUP_S = 0.5
DEFAULT_LOADS = "1x1,8x1,32x1,64x1,8x16,64x16,32x1f"
QUICK_LOADS = "1x1,8x1,64x1,64x16"


class Tally:
    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.errors = 0
        self.measuring = False


async def connection(addr: str, wid: int, pipeline: int, stop_at: float, tally: Tally) -> None:
    c = await Client.connect(addr)
    inflight: deque[float] = deque()
    n = 0
    loop = asyncio.get_running_loop()
    try:
        while True:
            now = loop.time()
            if now < stop_at:
                burst = []
                while len(inflight) < pipeline:
                    burst.append(("META.SET", f"bench:{wid}:{n % KEYS_PER_CONNECTION}", VALUE))
                    inflight.append(now)
                    n += 1
                if burst:
                    c.send_many(burst)
            elif not inflight:
                return
            replies = await c.read_some()
            done = loop.time()
            for reply in replies:
                sent = inflight.popleft()
                if tally.measuring:
                    if isinstance(reply, ReplyError):
                        tally.errors += 1
                    else:
                        tally.latencies_ms.append((done - sent) * 1000)
    finally:
        await c.close()


async def run_load(addr: str, conns: int, pipeline: int, seconds: float) -> Tally:
    tally = Tally()
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + WARMUP_S + seconds

    async def measure() -> None:
        await asyncio.sleep(WARMUP_S)
        tally.measuring = True
        await asyncio.sleep(seconds)
        tally.measuring = False

    await asyncio.gather(
        measure(), *(connection(addr, i, pipeline, stop_at, tally) for i in range(conns))
    )
    return tally


def info_counters(addr: str) -> tuple[int, int]:
    with BlockingClient(addr) as c:
        fields = dict(
            line.split(":", 1) for line in c.call("INFO").decode().splitlines() if ":" in line
        )
    return int(fields["raft_entries_persisted"]), int(fields["raft_fsyncs"])


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def bench_loads(cluster: LocalCluster, loads: list[tuple[int, int, bool]], seconds: float) -> None:
    print(f"\nCommitted META.SET, {seconds:g} s per row, 64-byte values, 3 members, fsync on")
    print(f"{'conns':>5} {'pipe':>4} {'sent to':>8} {'writes/s':>9} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'entries/fsync':>13} {'errors':>6}")  # fmt: skip
    for conns, pipeline, via_follower in loads:
        leader = cluster.wait_leader()
        target = leader
        if via_follower:
            target = next(i for i in cluster.members if i != leader)
        leader_addr = cluster[leader].addr
        e0, f0 = info_counters(leader_addr)
        tally = asyncio.run(run_load(cluster[target].addr, conns, pipeline, seconds))
        e1, f1 = info_counters(leader_addr)
        lat = tally.latencies_ms
        per_fsync = (e1 - e0) / max(1, f1 - f0)
        print(f"{conns:>5} {pipeline:>4} {'follower' if via_follower else 'leader':>8} "
              f"{len(lat) / seconds:>9.0f} {percentile(lat, 50):>7.2f} "
              f"{percentile(lat, 99):>7.2f} {per_fsync:>13.1f} {tally.errors:>6}",
              flush=True)  # fmt: skip


def light_load(cluster: LocalCluster, stop: threading.Event, acks: list[float]) -> None:
    """One writer that tries the members in turn until one acknowledges."""
    i = 0
    client: BlockingClient | None = None
    turn = 0
    while not stop.is_set():
        try:
            if client is None:
                live = [m for m in cluster.members.values() if m.running()]
                turn += 1
                client = BlockingClient(live[turn % len(live)].addr, timeout_s=5)
            client.call("META.SET", f"failover:{i}", "x")
            acks.append(time.monotonic())
        except (OSError, ReplyError):
            if client is not None:
                client.close()
            client = None
            time.sleep(0.01)
        i += 1
    if client is not None:
        client.close()


def bench_failover(cluster: LocalCluster, rounds: int) -> None:
    print(f"\nFailover: SIGKILL the leader under a light write load, {rounds} rounds")
    print(f"{'round':>5} {'killed':>6} {'new leader':>10} {'elected ms':>10} {'writes ms':>9}")
    elected: list[float] = []
    writes: list[float] = []
    for rnd in range(1, rounds + 1):
        old = cluster.wait_leader()
        old_term = cluster.status(old).term  # type: ignore[union-attr]
        survivors = [i for i in cluster.members if i != old]
        stop = threading.Event()
        acks: list[float] = []
        t = threading.Thread(target=light_load, args=(cluster, stop, acks))
        t.start()
        try:
            wait_for(lambda acks=acks: len(acks) >= 50, 30, "writes before the kill")
            t0 = time.monotonic()
            cluster.kill(old, signal.SIGKILL)
            new = cluster.wait_leader(survivors, min_term=old_term + 1, timeout_s=30)
            e_ms = (time.monotonic() - t0) * 1000
            n0 = len(acks)
            wait_for(lambda acks=acks, n0=n0: len(acks) > n0 + 5, 30, "writes after the kill")
        finally:
            stop.set()
            t.join(30)
        # The longest stretch without an acknowledged write around the kill.
        around = [a for a in acks if a >= t0 - 1]
        last_before = max([a for a in around if a <= t0] or [t0])
        after = [a for a in around if a > last_before]
        w_ms = max(b - a for a, b in zip([last_before, *after], after, strict=False)) * 1000
        elected.append(e_ms)
        writes.append(w_ms)
        print(f"{rnd:>5} {old:>6} {new:>10} {e_ms:>10.0f} {w_ms:>9.0f}", flush=True)
        cluster.start(old)
        wait_for(lambda old=old: cluster.status(old) is not None, 20, "the restarted member")
    print(f"median: new leader after {statistics.median(elected):.0f} ms, writes again "
          f"after {statistics.median(writes):.0f} ms; worst {max(elected):.0f} / "
          f"{max(writes):.0f} ms")  # fmt: skip


def parse_loads(text: str) -> list[tuple[int, int, bool]]:
    out = []
    for part in text.split(","):
        follower = part.endswith("f")
        conns, _, pipe = part.rstrip("f").partition("x")
        out.append((int(conns), int(pipe or 1), follower))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--loads",
        default=None,
        help=f"CONNSxPIPELINE[f] list (f: sent to a follower); default {DEFAULT_LOADS}",
    )
    ap.add_argument("--seconds", type=float, default=None, help="measured time per load")
    ap.add_argument("--failovers", type=int, default=None, help="failover rounds")
    ap.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    a = ap.parse_args()  # fmt: skip
    loads = parse_loads(a.loads or (QUICK_LOADS if a.quick else DEFAULT_LOADS))
    seconds = a.seconds or (2.0 if a.quick else 5.0)
    rounds = a.failovers if a.failovers is not None else (2 if a.quick else 5)
    with tempfile.TemporaryDirectory(prefix="raft-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), 3)
        try:
            cluster.start_all()
            cluster.wait_leader()
            bench_loads(cluster, loads, seconds)
            if rounds:
                bench_failover(cluster, rounds)
        finally:
            cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
