#!/usr/bin/env python3
"""The cost of each consistency choice, side by side (issue 16 item 13).

One three-node local cluster (real ``ackdb node`` processes on 127.0.0.x hosts) holds two
databases with the same persistence: a leaderless one (n = 3, one partition) and a
sharded one (one shard, two replicas). Rows:

- leaderless writes (``SET``) and reads (``GET``) at ONE, QUORUM and ALL (``AT <level>``);
- sharded writes with no WAIT, ``WAIT 1 0`` and ``WAIT 2 0`` after each SET, and reads.

Each row is a closed loop of ``--clients`` connections, each sending one request and
waiting for its reply, for ``--seconds``; a row's figures are its throughput and the
p50 / p99 of the request latencies seen by the clients. Each round runs every row once,
in an order that rotates every round (so rows are paired); the table prints the median of
every figure over ``--rounds`` rounds and the load average before and after each round.
The clients run in this process (asyncio, the project's RESP client): they cost the same
for every row, so the rows compare; absolute figures are lower than redis-benchmark's.

Then convergence after a partition heals, under load: QUORUM writers run; one node's
leaderless replica is cut off (an iptables DROP of its port on the loopback when root,
else SIGSTOP of the process) for ``--cut-seconds``; after healing, the time until every
coordinator's ``ll_hints_pending`` is 0 (writers still running), then writers stop and
the time until ``CONVERGE`` answers ``OK`` (from the heal).

A report, not a test: exit 0 even when a figure looks bad (3: the cluster did not start).
Progress on stderr, the table on stdout.

Usage: python3 bench/leaderless_bench.py [--seconds 5] [--rounds 5] [--clients 16]
           [--persistence aof-always] [--cut-seconds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from ackdb.cluster.dbtext import parse_info  # noqa: E402
from ackdb.node.localcluster import LocalCluster, wait_for  # noqa: E402
from ackdb.resp.client import Client, ReplyError  # noqa: E402

KEYSPACE = 10_000
REQUEST_TIMEOUT_S = 10.0  # a request without a reply by then counts as a timeout
VALUE = b"v" * 16
LEVELS = ("ONE", "QUORUM", "ALL")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the cluster ----------------------------------------------------------------------


def db_create(c: LocalCluster, *args: str) -> str:
    """DB.CREATE, retried while members are still registering (too few nodes until then)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with c.client(c.wait_leader(), timeout_s=60) as cl:
                text = cl.call("DB.CREATE", *args)
            return text.decode() if isinstance(text, bytes) else str(text)
        except ReplyError as e:
            if "not registered yet" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def endpoint(c: LocalCluster, node: str, port: int) -> str:
    return f"{c[node].host}:{port}"


async def wait_answers(addr: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            cl = await Client.connect(addr, timeout_s=1)
            try:
                if await cl.call("SET", "bench:probe", "1") == b"OK":
                    return
            finally:
                await cl.close()
        except (OSError, ReplyError, TimeoutError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{addr} does not serve writes")
        await asyncio.sleep(0.2)


# -- one row --------------------------------------------------------------------------


def row_commands(row: str) -> list[list[bytes]] | None:
    """The commands one request of ``row`` sends (the key is filled in per request)."""
    kind, _, arg = row.partition(" ")
    if kind == "ll-write":
        return [[b"AT", arg.encode(), b"SET", b"", VALUE]]
    if kind == "ll-read":
        return [[b"AT", arg.encode(), b"GET", b""]]
    if kind == "sh-write":
        wait = int(arg)
        cmds = [[b"SET", b"", VALUE]]
        return cmds + ([[b"WAIT", str(wait).encode(), b"0"]] if wait else [])
    if kind == "sh-read":
        return [[b"GET", b""]]
    return None


async def run_row(addrs: list[str], row: str, clients: int, seconds: float) -> dict[str, float]:
    template = row_commands(row)
    assert template is not None
    lat: list[float] = []
    errors = timeouts = 0
    stop_at = time.monotonic() + seconds
    conns = [await Client.connect(addrs[i % len(addrs)]) for i in range(clients)]

    async def worker(i: int, rng: random.Random) -> None:
        nonlocal errors, timeouts
        while time.monotonic() < stop_at:
            key = b"key:%d" % rng.randrange(KEYSPACE)
            cmds = [[key if a == b"" else a for a in c] for c in template]
            t0 = time.perf_counter()
            try:
                replies = await asyncio.wait_for(conns[i].pipeline(cmds), REQUEST_TIMEOUT_S)
            except TimeoutError:
                timeouts += 1
                log(f"{row}: a request got no reply in {REQUEST_TIMEOUT_S:g} s: {cmds}")
                await conns[i].close()
                conns[i] = await Client.connect(addrs[i % len(addrs)])
                continue
            lat.append(time.perf_counter() - t0)
            if any(isinstance(r, ReplyError) for r in replies):
                errors += 1

    t0 = time.monotonic()
    try:
        await asyncio.gather(*(worker(i, random.Random(i)) for i in range(len(conns))))
    finally:
        for cl in conns:
            await cl.close()
    took = time.monotonic() - t0
    lat.sort()
    return {
        "ops": len(lat) / took,
        "p50_ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        "errors": errors + timeouts,
    }


# -- convergence after a cut ------------------------------------------------------------


def replica_port(c: LocalCluster, node: str, db_name: str) -> tuple[int, int | None]:
    """(port, pid) of ``node``'s replica process of ``db_name`` (partition 0)."""
    with c.client(c.wait_leader()) as cl:
        info = parse_info(cl.call("DB.INFO", db_name).decode())
    uid = info.fields["uid"]
    insts = info.partitions[0].replicas  # node:host:port, in replica order
    port = next(int(i.rsplit(":", 1)[1]) for i in insts if i.split(":", 1)[0] == node)
    pid = c.unit_pids(node, "shards").get(f"shards/{uid}-0")
    return port, pid


class Cut:
    """A replica cut off from everyone: iptables DROP of its port (root), else SIGSTOP."""

    def __init__(self, host: str, port: int, pid: int | None) -> None:
        self.host, self.port, self.pid = host, port, pid
        self.rule = ["INPUT", "-p", "tcp", "-d", host, "--dport", str(port), "-j", "DROP"]
        self.how = "iptables" if os.geteuid() == 0 and shutil.which("iptables") else "SIGSTOP"

    def start(self) -> None:
        if self.how == "iptables":
            r = subprocess.run(["iptables", "-I", *self.rule], capture_output=True)
            if r.returncode == 0:
                return
            self.how = "SIGSTOP"
        assert self.pid is not None
        os.kill(self.pid, signal.SIGSTOP)

    def heal(self) -> None:
        if self.how == "iptables":
            subprocess.run(["iptables", "-D", *self.rule], capture_output=True)
        elif self.pid is not None:
            os.kill(self.pid, signal.SIGCONT)


async def info_field(addr: str, field: str) -> int:
    cl = await Client.connect(addr, timeout_s=2)
    try:
        text = (await asyncio.wait_for(cl.call("INFO", "leaderless"), 5)).decode()
    finally:
        await cl.close()
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise KeyError(field)


async def converge_after_cut(
    c: LocalCluster, ll_addrs: list[str], db_name: str, clients: int, cut_s: float
) -> dict[str, Any]:
    node = sorted(c.members)[-1]
    port, pid = replica_port(c, node, db_name)
    cut = Cut(c[node].host, port, pid)
    stop = asyncio.Event()
    acked = 0

    async def writer(i: int) -> None:
        nonlocal acked
        cl = await Client.connect(ll_addrs[i % 2])  # the coordinators of the other nodes
        rng = random.Random(i)
        try:
            while not stop.is_set():
                r = await cl.pipeline(
                    [[b"AT", b"QUORUM", b"SET", b"c:%d" % rng.randrange(KEYSPACE), VALUE]]
                )
                acked += not isinstance(r[0], ReplyError)
        finally:
            await cl.close()

    tasks = [asyncio.ensure_future(writer(i)) for i in range(clients)]
    await asyncio.sleep(1)
    log(f"cutting {node}'s replica (port {port}) off by {cut.how} for {cut_s:g} s")
    cut.start()
    try:
        await asyncio.sleep(cut_s)
        pending = max([await info_field(a, "ll_hints_pending") for a in ll_addrs])
    finally:
        cut.heal()
    healed = time.monotonic()
    log(f"healed; {pending} hints pending at the heal")
    drained = None
    while time.monotonic() - healed < 120:
        counts = [await info_field(a, "ll_hints_pending") for a in ll_addrs]
        if not any(counts):
            drained = time.monotonic() - healed
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    cl = await Client.connect(ll_addrs[0])
    try:
        reply = await cl.pipeline([[b"CONVERGE", b"TIMEOUT", b"120000"]])
    finally:
        await cl.close()
    converged = time.monotonic() - healed
    return {
        "cut_by": cut.how,
        "hints_at_heal": pending,
        "hints_drained_s": drained,
        "converge_s": converged if reply[0] == b"OK" else None,
        "converge_reply": str(reply[0]),
        "writes_acked": acked,
    }


# -- main -------------------------------------------------------------------------------


def rows() -> list[str]:
    out = [f"ll-write {lv}" for lv in LEVELS] + [f"ll-read {lv}" for lv in LEVELS]
    return out + ["sh-write 0", "sh-write 1", "sh-write 2", "sh-read -"]


LABELS = {
    "ll-write": "leaderless SET at {}",
    "ll-read": "leaderless GET at {}",
    "sh-write": "sharded SET + WAIT {}",
    "sh-read": "sharded GET (primary)",
}


def label(row: str) -> str:
    kind, _, arg = row.partition(" ")
    if row == "sh-write 0":
        return "sharded SET (no WAIT)"
    return LABELS[kind].format(arg)


async def bench(a: argparse.Namespace, c: LocalCluster) -> dict[str, Any]:
    ll = parse_info(
        db_create(c, "llbench", "TYPE", "leaderless", "REPLICATION-FACTOR", "3",
                  "PERSISTENCE", a.persistence)
    )  # fmt: skip
    sh = parse_info(
        db_create(c, "shbench", "SHARDS", "1", "REPLICATION", "yes", "REPLICAS", "2",
                  "PERSISTENCE", a.persistence)
    )  # fmt: skip
    nodes = sorted(c.members)
    ll_addrs = [endpoint(c, n, ll.port) for n in nodes]
    sh_addrs = [endpoint(c, n, sh.port) for n in nodes]
    for addr in ll_addrs + sh_addrs:
        await wait_answers(addr)
    log("both databases serve writes on every node")
    results: dict[str, list[dict[str, float]]] = {r: [] for r in rows()}
    loads: list[tuple[float, float]] = []
    order = rows()
    for rnd in range(a.rounds):
        before = os.getloadavg()[0]
        turn = order[rnd % len(order) :] + order[: rnd % len(order)]
        for row in turn:
            addrs = ll_addrs if row.startswith("ll") else sh_addrs
            results[row].append(await run_row(addrs, row, a.clients, a.seconds))
            f = results[row][-1]
            log(f"  {label(row)}: {f['ops']:.0f} ops/s, p50 {f['p50_ms']:.2f} ms")
        loads.append((before, os.getloadavg()[0]))
        log(f"round {rnd + 1}/{a.rounds} done (load {before:.2f} -> {loads[-1][1]:.2f})")
    cut = await converge_after_cut(c, ll_addrs[:2], "llbench", a.clients // 2 or 1, a.cut_seconds)
    table = {
        row: {k: statistics.median(r[k] for r in rs) for k in ("ops", "p50_ms", "p99_ms", "errors")}
        for row, rs in results.items()
    }
    return {"table": table, "loads": loads, "convergence": cut}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--persistence", default="aof-always")
    ap.add_argument("--cut-seconds", type=float, default=5.0)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ackdb-llbench-"))
    log(f"load average at start: {os.getloadavg()[0]:.2f}; data under {root}")
    c = LocalCluster(root, 3, distinct_hosts=True)
    try:
        try:
            c.start_all()
            wait_for(lambda: c.leader() is not None, 30, "a leader")
        except (RuntimeError, TimeoutError) as e:
            print(f"the cluster did not start: {e}", file=sys.stderr)
            return 3
        out = asyncio.run(bench(a, c))
    finally:
        c.close()
        c.kill_leftovers()
    print(f"\n{a.rounds} paired rounds of {a.seconds:g} s, {a.clients} clients, persistence "
          f"{a.persistence}; medians; load average per round (before -> after): "
          + ", ".join(f"{x:.2f}->{y:.2f}" for x, y in out["loads"]))  # fmt: skip
    print(f"\n| {'row':<26} | {'ops/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | errors |")
    print(f"|{'-' * 28}|{'-' * 11}|{'-' * 9}|{'-' * 9}|--------|")
    for row, f in out["table"].items():
        print(f"| {label(row):<26} | {f['ops']:>9.0f} | {f['p50_ms']:>7.2f} | {f['p99_ms']:>7.2f} | {f['errors']:>6.0f} |")  # fmt: skip
    cv = out["convergence"]
    print(f"\nconvergence after a {a.cut_seconds:g} s cut ({cv['cut_by']}) under QUORUM writes: "
          f"{cv['hints_at_heal']} hints pending at the heal; drained in "
          f"{cv['hints_drained_s'] if cv['hints_drained_s'] is None else round(cv['hints_drained_s'], 2)} s"
          f" under load; CONVERGE OK {cv['converge_s'] if cv['converge_s'] is None else round(cv['converge_s'], 2)} s"
          f" after the heal ({cv['converge_reply']})")  # fmt: skip
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
