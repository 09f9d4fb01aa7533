#!/usr/bin/env python3
"""Replication benchmark: ackdb against redis-server, primary with replicas, side by side.

Prints one table with ratios (ackdb / redis; targets in brackets):

1. SET throughput on a primary with 1 and with 2 replicas attached [>= 0.7x], and with
   none for context: ``redis-benchmark -t set -c 50 -n N -r 100000 -d 16``, at pipeline
   1 (``-n --requests``) and 16 (``-n 4 x --requests``). After each run the script also
   times how long the replicas take to reach the primary's offset (context, no target):
   a primary that outruns its replicas would look fast here and be slow in WAIT.
2. ``SET`` + ``WAIT 1 0`` round trip with one replica, p50 and p99 [<= 1.5x]: one Python
   client on a raw socket sends SET, reads +OK, sends WAIT 1 0, reads :1 -- sequentially,
   ``--requests / 10`` iterations after 500 warm-up ones; the same code for both servers.
   Redis 7.0 computes WAIT's target offset differently from 7.2 (ackdb follows 7.2), but
   either way the round trip is SET, GETACK to the replica, its ACK, the reply.
3. Full sync of ``--keys`` keys [<= 3x]: the primary is filled with DEBUG POPULATE (keys
   ``key:N``, values ``value:N``); a fresh, already running, empty replica gets
   ``REPLICAOF``; the clock stops when its INFO shows ``master_link_status:up`` and
   ``master_sync_in_progress:0`` and its DBSIZE equals the primary's. Redis runs with its
   7.0 defaults -- ``repl-diskless-sync yes`` (the RDB is streamed from a forked child
   straight to the socket; the replica writes it to disk, then loads it) -- except
   ``repl-diskless-sync-delay 0`` so it does not wait 5 s for more replicas. ackdb has no
   such delay: a forked child writes a snapshot file, the primary reads it and sends it
   as ``$<len>``, the replica writes it to a temporary file and loads it in steps. For
   ackdb the table also breaks the time down from the two servers' logs.

Every figure is the median of ``--repeat`` runs (at least 5 for a figure you report; the
best run is never reported: it is not what a user sees). ackdb and redis take turns (the
order flips every repeat), so run i of one is paired with run i of the other;
``--baseline-src DIR`` puts an older ackdb tree in redis's place (``bench/compare_trees.py``
uses it), and ``--json FILE`` writes every run's figure in run order. Each server runs in its own temporary directory on
127.0.0.1 ephemeral ports and its own session; all of them are stopped in a ``finally``.
ackdb is started as ``python3 -m ackdb server --port P --bind 127.0.0.1 --save ""
--appendonly no`` with PYTHONPATH pointing at this tree's ``src``; redis as
``redis-server`` with the same flags plus ``--enable-debug-command yes``. A report, not
a test: exit 0 even when a target is missed (2: a tool is missing; 3: a server failed to
start, died, or a step timed out -- the table shows what was measured until then).
Progress lines (every single run) go to stderr, the table to stdout.

Usage: python3 bench/replication_bench.py [--keys 1000000] [--requests 100000] [--repeat 5]
       [--only throughput,latency,sync] [--baseline-src DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from ackdb.resp.client import BlockingClient  # noqa: E402
from ackdb.resp.request import pack  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
KINDS = ("ackdb", "redis")
# --baseline-src: an older ackdb tree takes redis's place (kind "base"), for A/B runs.
BASELINE_SRC: str | None = None
# The ackdb under test: this tree's src/ (pure Python), or --ackdb-src (a compiled build).
ACKDB_SRC: str | None = None
CLIENTS = 50
KEYSPACE = 100_000
VALUE_BYTES = 16
PIPELINED = 16
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 900.0
SYNC_TIMEOUT_S = 1800.0
WARMUP = 500


def note(msg: str) -> None:
    """Progress goes to stderr; the table goes to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- a minimal RESP client --------------------------------------------------------------


class Conn(BlockingClient):
    """One blocking connection to 127.0.0.1:port, replies decoded as text; ``call`` returns
    an error reply as a ReplyError value (a poller can treat -LOADING as 'not yet')."""

    def __init__(self, port: int, timeout: float = 600.0) -> None:
        super().__init__(f"127.0.0.1:{port}", timeout_s=timeout, encoding="utf-8")

    def call(self, *args: str | bytes | int) -> Any:
        return self.pipeline([args])[0]


def info(conn: Conn, section: str) -> dict[str, str]:
    raw = conn.call("INFO", section)
    if not isinstance(raw, str):
        return {}
    out = {}
    for line in raw.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- servers ------------------------------------------------------------------------------


class Server:
    """One ackdb or redis-server process in its own directory and session."""

    def __init__(self, kind: str, workdir: Path, name: str, registry: list[Server]) -> None:
        self.kind = kind
        self.name = name
        self.dir = workdir / f"{kind}-{name}"
        self.dir.mkdir(parents=True)
        self.log = self.dir / "server.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Conn | None = None
        registry.append(self)

    def argv(self) -> list[str]:
        common = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.log)]  # fmt: skip
        if self.kind == "redis":
            return ["redis-server", *common, "--enable-debug-command", "yes",
                    "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]  # fmt: skip
        return [sys.executable, "-m", "ackdb", "server", *common]

    def start(self) -> None:
        env = dict(os.environ)
        src = (
            BASELINE_SRC if self.kind == "base" and BASELINE_SRC else ACKDB_SRC or str(REPO / "src")
        )
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for _attempt in range(3):  # an ephemeral port can be taken between probe and bind
            self.port = free_port()
            self.proc = subprocess.Popen(
                self.argv(), cwd=self.dir, env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    c = Conn(self.port, timeout=5)
                    if c.call("PING") == "PONG":
                        self.conn = c
                        return
                    c.close()
                except OSError:
                    pass
                time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"{self.kind} {self.name} did not start: {self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def call(self, *args: str | bytes | int) -> Any:
        assert self.conn is not None
        return self.conn.call(*args)

    def info(self, section: str) -> dict[str, str]:
        assert self.conn is not None
        return info(self.conn, section)

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the server and any child it forked
                proc.wait()
            except ProcessLookupError:
                proc.wait()


def wait_for(what: str, cond: Callable[[], bool], timeout: float, servers: list[Server]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        dead = [s for s in servers if not s.alive()]
        if dead:
            raise RuntimeError(f"{dead[0].kind} {dead[0].name} died: {dead[0].log_tail()}")
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def online_replicas(primary: Server) -> int:
    fields = primary.info("replication")
    return sum(1 for k, v in fields.items() if k.startswith("slave") and "state=online" in v)


def link_up(replica: Server) -> bool:
    f = replica.info("replication")
    return f.get("master_link_status") == "up" and f.get("master_sync_in_progress") == "0"


def start_group(kind: str, work: Path, name: str, replicas: int, reg: list[Server]) -> list[Server]:
    """A primary and ``replicas`` replicas of it, all online."""
    group = [Server(kind, work, f"{name}-p", reg)]
    group[0].start()
    for i in range(replicas):
        r = Server(kind, work, f"{name}-r{i}", reg)
        r.start()
        r.call("REPLICAOF", "127.0.0.1", group[0].port)
        group.append(r)
    wait_for(
        f"{replicas} online replicas of {kind}",
        lambda: online_replicas(group[0]) == replicas and all(link_up(r) for r in group[1:]),
        120,
        group,
    )
    return group


# -- 1. throughput ------------------------------------------------------------------------


def redis_benchmark(port: int, requests: int, pipeline: int, watch: list[Server]) -> float:
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set", "-c",
            str(CLIENTS), "-n", str(requests), "-r", str(KEYSPACE), "-d", str(VALUE_BYTES),
            "-P", str(pipeline), "-q", "--csv"]  # fmt: skip
    # redis-benchmark spins for ever once its server is gone: watch the servers.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline or not all(s.alive() for s in watch):
                raise RuntimeError(f"redis-benchmark on port {port}: timeout or server died")
            time.sleep(0.05)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0] == "SET":
            return float(cells[1])
    raise RuntimeError(f"no SET figure in redis-benchmark output: {out!r}")


def catch_up_ms(group: list[Server]) -> float:
    """How long after the run the replicas reach the primary's offset (ms)."""
    if len(group) == 1:
        return float("nan")
    t0 = time.monotonic()
    target = int(group[0].info("replication")["master_repl_offset"])
    wait_for(
        "replicas to catch up",
        lambda: all(int(r.info("replication")["master_repl_offset"]) >= target for r in group[1:]),
        300,
        group,
    )
    return (time.monotonic() - t0) * 1000


def bench_throughput(work: Path, args: argparse.Namespace, reg: list[Server], res: Results) -> None:
    for i in range(args.repeat):
        order = KINDS if i % 2 == 0 else KINDS[::-1]
        for replicas in (0, 1, 2):
            for kind in order:
                group = start_group(kind, work, f"tp{i}-{replicas}", replicas, reg)
                try:
                    for pipe in (1, PIPELINED):
                        n = args.requests * (1 if pipe == 1 else 4)
                        rps = redis_benchmark(group[0].port, n, pipe, group)
                        lag = catch_up_ms(group)
                        note(f"{kind:5} {replicas} replica(s) -P {pipe:<2}: {rps:>10.0f} req/s, "
                             f"replicas caught up {lag:.0f} ms after the run")  # fmt: skip
                        res.add(("tp", replicas, pipe), kind, rps)
                        res.add(("lag", replicas, pipe), kind, lag)
                finally:
                    for s in group:
                        s.stop()


# -- 2. SET + WAIT 1 0 latency ------------------------------------------------------------


def set_wait_latencies(port: int, iterations: int) -> list[float]:
    """Round trips (ms) of SET then WAIT 1 0 on one connection, sequentially."""
    c = Conn(port, timeout=60)
    sets = [pack("SET", f"lat:{i}", "v" * VALUE_BYTES) for i in range(1000)]
    wait = pack("WAIT", 1, 0)
    sock = c.sock
    rf = sock.makefile("rb")
    out = []
    try:
        for i in range(WARMUP + iterations):
            t0 = time.perf_counter()
            sock.sendall(sets[i % 1000])
            r1 = rf.readline()
            sock.sendall(wait)
            r2 = rf.readline()
            dt = time.perf_counter() - t0
            if r1 != b"+OK\r\n" or r2 != b":1\r\n":
                raise RuntimeError(f"unexpected replies {r1!r} {r2!r}")
            if i >= WARMUP:
                out.append(dt * 1000)
    finally:
        rf.close()
        c.close()
    return out


def pct(sorted_ms: list[float], p: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(p / 100 * len(sorted_ms)))]


def bench_latency(work: Path, args: argparse.Namespace, reg: list[Server], res: Results) -> None:
    iterations = max(1000, args.requests // 10)
    for i in range(args.repeat):
        for kind in KINDS if i % 2 == 0 else KINDS[::-1]:
            group = start_group(kind, work, f"lat{i}", 1, reg)
            try:
                lat = sorted(set_wait_latencies(group[0].port, iterations))
            finally:
                for s in group:
                    s.stop()
            p50, p99 = pct(lat, 50), pct(lat, 99)
            note(f"{kind:5} SET+WAIT 1 0 x{iterations}: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
            res.add(("p50",), kind, p50)
            res.add(("p99",), kind, p99)


# -- 3. full sync -------------------------------------------------------------------------

_TS = re.compile(r"^\d+:\w \d+ \w+ \d+ (\d\d):(\d\d):(\d\d)\.(\d\d\d) . (.*)$")


def log_events(path: Path) -> list[tuple[float, str]]:
    """(seconds since midnight, message) for each line of a Redis-format log."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = _TS.match(line)
        if m:
            h, mi, s, ms, msg = m.groups()
            out.append((int(h) * 3600 + int(mi) * 60 + int(s) + int(ms) / 1000, msg))
    return out


def ackdb_phases(primary: Server, replica: Server) -> dict[str, float]:
    """Where an ackdb full sync spent its time, from the primary's and replica's logs:
    the snapshot child (fork to payload sent), the transfer and write on the replica,
    and the load (its own log line)."""
    p, r = log_events(primary.log), log_events(replica.log)
    start = [t for t, m in p if m.startswith("Starting a full sync")]
    sent = [t for t, m in p if m.startswith("Synchronization with replica")]
    got = [t for t, m in r if re.match(r"PRIMARY <-> REPLICA sync: received \d+ bytes;", m)]
    loaded = [m for _, m in r if "snapshot loaded in" in m]
    out: dict[str, float] = {}
    if start and sent:
        out["snapshot child + read"] = sent[-1] - start[-1]
    if sent and got:
        out["transfer to replica file"] = got[-1] - sent[-1]
    if loaded:
        m = re.search(r"loaded in ([0-9.]+) s", loaded[-1])
        if m:
            out["load on replica"] = float(m.group(1))
    return out


def full_sync_seconds(primary: Server, replica: Server, keys: int) -> float:
    t0 = time.monotonic()
    reply = replica.call("REPLICAOF", "127.0.0.1", primary.port)
    if reply != "OK":
        raise RuntimeError(f"REPLICAOF: {reply}")

    def synced() -> bool:
        if not link_up(replica):
            return False
        n = replica.call("DBSIZE")
        return isinstance(n, int) and n == keys

    wait_for("the full sync", synced, SYNC_TIMEOUT_S, [primary, replica])
    secs = time.monotonic() - t0
    for key in ("key:0", f"key:{keys - 1}"):  # the data, not only the count
        if replica.call("GET", key) != primary.call("GET", key):
            raise RuntimeError(f"{replica.kind} replica: {key} differs from the primary's")
    return secs


def bench_sync(work: Path, args: argparse.Namespace, reg: list[Server], res: Results) -> None:
    primaries: dict[str, Server] = {}
    for kind in KINDS:
        p = primaries[kind] = Server(kind, work, "sync-p", reg)
        p.start()
        t0 = time.monotonic()
        reply = p.call("DEBUG", "POPULATE", args.keys)
        if reply != "OK":
            raise RuntimeError(f"{kind} DEBUG POPULATE: {reply}")
        note(f"{kind:5} DEBUG POPULATE {args.keys}: {time.monotonic() - t0:.1f} s")
    keys = {k: int(p.call("DBSIZE")) for k, p in primaries.items()}
    try:
        for i in range(args.repeat):
            for kind in KINDS if i % 2 == 0 else KINDS[::-1]:
                replica = Server(kind, work, f"sync-r{i}", reg)
                replica.start()
                try:
                    secs = full_sync_seconds(primaries[kind], replica, keys[kind])
                    phases = ackdb_phases(primaries[kind], replica) if kind == "ackdb" else {}
                finally:
                    replica.stop()
                detail = ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
                note(f"{kind:5} full sync of {keys[kind]} keys: {secs:.2f} s  {detail}")
                res.add(("sync",), kind, secs)
                for k, v in phases.items():
                    res.add(("phase", k), kind, v, when=secs)
    finally:
        for p in primaries.values():
            p.stop()


# -- results and the table ----------------------------------------------------------------


# Targets (issue 19): ackdb/redis SET throughput with replicas, by pipeline depth, and the
# SET + WAIT 1 0 round trip's ackdb/redis latency ratio.
TP_TARGETS: dict[int, tuple[str, Callable[[float], bool]]] = {
    1: (">= 0.8x", lambda x: x >= 0.8),
    16: (">= 0.6x", lambda x: x >= 0.6),
}
WAIT_TARGETS: dict[str, tuple[str, Callable[[float], bool]]] = {
    "p50": ("<= 1.3x", lambda x: x <= 1.3),
    "p99": ("<= 1.5x", lambda x: x <= 1.5),
}


class Results:
    """Every run's figure per (row key, kind), in run order; a figure is their median."""

    def __init__(self) -> None:
        self.runs: dict[tuple[Any, ...], dict[str, list[tuple[float, float]]]] = {}

    def add(self, key: tuple[Any, ...], kind: str, value: float, when: float = 0.0) -> None:
        self.runs.setdefault(key, {}).setdefault(kind, []).append((value, when))

    def median(self, key: tuple[Any, ...], kind: str) -> float | None:
        vals = self.runs.get(key, {}).get(kind)
        if not vals:
            return None
        return float(statistics.median(v for v, _ in vals))

    def paired(self, key: tuple[Any, ...]) -> float | None:
        """The median over the runs of run i's ackdb / redis figure (runs alternate)."""
        kinds = self.runs.get(key, {})
        a, r = kinds.get(KINDS[0], []), kinds.get(KINDS[1], [])
        ratios = [x / y for (x, _), (y, _) in zip(a, r, strict=False) if y and x == x and y == y]
        return float(statistics.median(ratios)) if ratios else None

    def with_median(self, key: tuple[Any, ...], kind: str) -> float | None:
        """A phase figure from the run whose total sync time was the median one."""
        vals = self.runs.get(key, {}).get(kind)
        if not vals:
            return None
        ordered = sorted(vals, key=lambda vw: vw[1])
        return ordered[(len(ordered) - 1) // 2][0]

    def as_json(self) -> dict[str, dict[str, list[float]]]:
        """{"tp 1 16": {"ackdb": [run 1, run 2, ...], ...}, "p50": ...}: figures in run
        order, so run i of one kind pairs with run i of the other."""
        return {
            " ".join(str(k) for k in key): {
                kind: [v for v, _ in vals] for kind, vals in kinds.items()
            }
            for key, kinds in self.runs.items()
        }


def row(label: str, a: float | None, r: float | None, unit: str, target: str,
        good: Callable[[float], bool] | None, paired: float | None = None) -> None:  # fmt: skip
    """One line: the medians of both, and the ratio: ``paired`` (the median of the
    paired ratios) when given, else the ratio of the medians."""

    def fmt(v: float | None) -> str:
        if v is None or v != v:
            return "-"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"

    ratio = paired if paired is not None else (
        a / r if a is not None and r and a == a and r == r else None
    )  # fmt: skip
    verdict = "" if good is None or ratio is None else ("ok" if good(ratio) else "MISS")
    rt = f"{ratio:.2f}x" if ratio is not None else "-"
    print(f"{label:<40} {fmt(a):>11} {fmt(r):>11} {unit:<6} {rt:>7}  {target:<8} {verdict}")


def print_table(res: Results, args: argparse.Namespace, parts: set[str]) -> None:
    print()
    print(f"{'':<40} {KINDS[0]:>11} {KINDS[1]:>11} {'unit':<6} {'ratio':>7}  target")
    print("-" * 94)
    if "throughput" in parts:
        print(f"SET throughput (redis-benchmark -t set -c {CLIENTS} -r {KEYSPACE} "
              f"-d {VALUE_BYTES}; -n {args.requests} at -P 1, {4 * args.requests} at "
              f"-P {PIPELINED})")  # fmt: skip
        for pipe in (1, PIPELINED):
            for reps in (0, 1, 2):
                a = res.median(("tp", reps, pipe), KINDS[0])
                r = res.median(("tp", reps, pipe), KINDS[1])
                target, good = TP_TARGETS[pipe] if reps else ("context", None)
                row(f"  -P {pipe:<2} {reps} replica(s)", a, r, "req/s", target, good,
                    res.paired(("tp", reps, pipe)))  # fmt: skip
        for pipe in (1, PIPELINED):
            for reps in (1, 2):
                a = res.median(("lag", reps, pipe), KINDS[0])
                r = res.median(("lag", reps, pipe), KINDS[1])
                row(f"  replicas catch up after -P {pipe} {reps} rep.", a, r, "ms", "context",
                    None)  # fmt: skip
    if "latency" in parts:
        n = max(1000, args.requests // 10)
        print(f"SET + WAIT 1 0 round trip, 1 replica ({n} sequential iterations, raw socket)")
        for p in ("p50", "p99"):
            a, r = res.median((p,), KINDS[0]), res.median((p,), KINDS[1])
            target, good = WAIT_TARGETS[p]
            row(f"  {p}", a, r, "ms", target, good, res.paired((p,)))
        print("  redis 7.0 computes WAIT's target offset differently from 7.2 (ackdb follows")
        print("  7.2); the round trip is the same: SET, GETACK to the replica, its ACK, reply")
    if "sync" in parts:
        print(f"Full sync of {args.keys} keys to a fresh replica (REPLICAOF to link up, "
              "sync done and DBSIZE equal)")  # fmt: skip
        a, r = res.median(("sync",), KINDS[0]), res.median(("sync",), KINDS[1])
        row("  full sync time", a, r, "s", "<= 3x", lambda x: x <= 3)
        for key in res.runs:
            if key[0] == "phase":
                row(f"    ackdb: {key[1]}", res.with_median(key, "ackdb"), None, "s", "", None)
        print("  redis: repl-diskless-sync yes (7.0 default), repl-diskless-sync-delay 0 (not 5),")
        print("         replica repl-diskless-load disabled (default: RDB to disk, then loaded)")
        print("  ackdb: forked child writes a snapshot file; the primary sends it as $<len>; the")
        print("         replica writes it to a temp file, then loads it in steps")
    print("-" * 94)
    print(f"Median of {args.repeat} run(s) per figure, the two servers alternating run by run;")
    print("ratios of throughput and WAIT rows: the median of the paired ratios (run i / run i).")
    print("Absolute numbers move with the machine's load; the ratios are what matter.")


def tool_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=([0-9.]+)", out)
    return m.group(1) if m else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--keys", type=int, default=1_000_000, help="keys for the full sync")
    ap.add_argument("--requests", type=int, default=100_000,
                    help="-n at pipeline 1 (x4 at -P 16); WAIT iterations: this / 10")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=5, help="runs per figure; the median is shown")
    ap.add_argument("--baseline-src", help="an older ackdb's src/ in redis's place (A/B runs)")
    ap.add_argument("--ackdb-src", help="the ackdb to measure (default: this tree's src/; "
                    "build/compiled for the compiled build scripts/test-setup.sh makes)")  # fmt: skip
    ap.add_argument("--json", type=Path, help="write every run's figure to this file")
    ap.add_argument("--only", default="throughput,latency,sync",
                    help="comma-separated parts to run: throughput, latency, sync")  # fmt: skip
    args = ap.parse_args()
    global KINDS, BASELINE_SRC, ACKDB_SRC
    if args.ackdb_src:
        ACKDB_SRC = str(Path(args.ackdb_src).resolve())
    if args.baseline_src:
        KINDS, BASELINE_SRC = ("ackdb", "base"), str(Path(args.baseline_src).resolve())
    parts = set(args.only.split(","))
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed")
            return 2
    load = os.getloadavg()
    print(f"ackdb replication benchmark -- {os.cpu_count()} CPUs (shared machine; load average "
          f"{load[0]:.2f} at start), redis {tool_version()}, python "
          f"{sys.version.split()[0]}")  # fmt: skip
    src = ACKDB_SRC or str(REPO / "src")
    build = subprocess.run(
        [sys.executable, "-c", "from ackdb.compiled import build_kind; print(build_kind())"],
        env={**os.environ, "PYTHONPATH": src}, capture_output=True, text=True, check=False,
    ).stdout.strip() or "?"  # fmt: skip
    print(f"ackdb from {src} (build={build})")
    registry: list[Server] = []
    res = Results()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ackdb-rbench-") as tmp:
        work = Path(tmp)
        try:
            if "throughput" in parts:
                bench_throughput(work, args, registry, res)
            if "latency" in parts:
                bench_latency(work, args, registry, res)
            if "sync" in parts:
                bench_sync(work, args, registry, res)
        except RuntimeError as e:
            print(f"\nERROR: {e}")
            print_table(res, args, parts)
            return 3
        finally:
            for s in registry:
                s.stop()
    print_table(res, args, parts)
    if args.json:
        args.json.write_text(json.dumps({"runs": res.as_json()}, indent=1) + "\n")
    print(f"Wall time {time.monotonic() - t0:.0f} s; load average at the end "
          f"{os.getloadavg()[0]:.2f}.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
