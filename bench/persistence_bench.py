#!/usr/bin/env python3
"""Durability benchmark: ackdb against redis-server under the same persistence settings.

Prints, side by side with ratios (issue 3's targets in brackets):

- SET throughput with ``appendonly yes`` and ``appendfsync everysec`` [>= 0.6x] and
  ``always`` [>= 0.8x]: redis-benchmark, 50 clients, no pipelining -- the case where
  group commit decides, since every reply waits for its fsync under ``always``;
- load time of a 1M-key snapshot and of a 1M-key AOF of SET commands [<= 3x], taken from
  each server's own log line ("DB loaded from ...: N seconds");
- file sizes of both;
- the longest PING round trip of a client while BGSAVE writes the 1M keys [<= 50 ms].

Each server runs in its own temporary directory on 127.0.0.1 ephemeral ports; the two are
measured alternately, so machine noise hits both. A report, not a test: exit 0 even when
a target is missed.

Usage: python bench/persistence_bench.py [--keys 1000000] [--requests 100000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(port: int, *args: str) -> str:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=600
    )
    return out.stdout.strip()


class Srv:
    def __init__(self, kind: str, workdir: Path, *directives: str) -> None:
        self.kind = kind
        self.dir = workdir / kind
        self.dir.mkdir(parents=True, exist_ok=True)
        self.directives = list(directives)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "server.log"

    def argv(self) -> list[str]:
        common = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        common += ["--logfile", str(self.log), *self.directives]
        if self.kind == "redis":
            return ["redis-server", *common, "--enable-debug-command", "yes"]
        return [sys.executable, "-m", "ackdb", "server", *common, "--enable-debug-command", "yes"]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv(), cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.log.read_text()[-2000:]}")
            if cli(self.port, "PING") == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def loaded_seconds(self, what: str) -> float:
        pattern = {"snapshot": r"DB loaded from disk: ([0-9.]+) seconds",
                   "aof": r"DB loaded from append only file: ([0-9.]+) seconds"}[what]  # fmt: skip
        found = re.findall(pattern, self.log.read_text())
        return float(found[-1]) if found else float("nan")

    def wait_idle(self) -> None:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            info = cli(self.port, "INFO", "persistence")
            if "rdb_bgsave_in_progress:0" in info and "aof_rewrite_in_progress:0" in info:
                return
            time.sleep(0.1)


def set_rps(port: int, requests: int) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(requests), "-c",
         str(CLIENTS), "-r", "100000", "-q", "--csv"],
        capture_output=True, text=True, timeout=900,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0] == "SET":
            return float(cells[1])
    raise RuntimeError(f"no SET figure in: {out!r}")


def ping_stall_during_bgsave(port: int) -> tuple[float, int]:
    """Longest PING round trip (ms) while a BGSAVE runs, and how many PINGs were sent."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(30)
    worst = 0.0
    n = 0
    stop = threading.Event()

    def bgsave() -> None:
        cli(port, "BGSAVE")

    t = threading.Thread(target=bgsave)
    t.start()
    started = time.monotonic()
    seen_running = False
    while time.monotonic() - started < 120 and not stop.is_set():
        t0 = time.perf_counter()
        s.sendall(b"PING\r\n")
        assert s.recv(64).startswith(b"+PONG")
        worst = max(worst, (time.perf_counter() - t0) * 1000)
        n += 1
        if n % 200 == 0:
            info = cli(port, "INFO", "persistence")
            running = "rdb_bgsave_in_progress:1" in info
            seen_running = seen_running or running
            if seen_running and not running:
                break
    t.join()
    s.close()
    return worst, n


def line(label: str, a: float, r: float, unit: str, target: str, higher_better: bool) -> None:
    ratio = a / r if r else float("nan")
    print(f"  {label:<34} ackdb {a:>11.2f} {unit:<6} redis {r:>11.2f} {unit:<6} "
          f"ratio {ratio:5.2f}   [{target}]")  # fmt: skip


def bench_throughput(work: Path, requests: int, repeat: int) -> None:
    print("\nSET throughput with AOF (redis-benchmark -t set -c 50, no pipelining):")
    for policy, target in (("everysec", ">= 0.6x"), ("always", ">= 0.8x")):
        res: dict[str, list[float]] = {"ackdb": [], "redis": []}
        for i in range(repeat):
            for kind in ("redis", "ackdb") if i % 2 else ("ackdb", "redis"):
                srv = Srv(kind, work / f"tp-{policy}-{i}", "--appendonly", "yes",
                          "--appendfsync", policy, "--save", "")  # fmt: skip
                srv.start()
                try:
                    res[kind].append(set_rps(srv.port, requests))
                finally:
                    srv.stop()
        a, r = statistics.median(res["ackdb"]), statistics.median(res["redis"])
        line(f"SET appendfsync {policy} (req/s)", a, r, "req/s", target, True)


def bench_load(work: Path, keys: int) -> None:
    print(f"\nLoad time and file sizes, {keys} keys (DEBUG POPULATE, values 'value:N'):")
    sizes: dict[str, dict[str, int]] = {}
    times: dict[str, dict[str, float]] = {}
    stalls: dict[str, float] = {}
    for kind in ("redis", "ackdb"):
        d = work / f"load-{kind}"
        # Snapshot.
        srv = Srv(kind, d, "--save", "", "--appendonly", "no")
        srv.start()
        cli(srv.port, "DEBUG", "POPULATE", str(keys))
        stalls[kind], _ = ping_stall_during_bgsave(srv.port)
        srv.wait_idle()
        cli(srv.port, "SAVE")
        srv.kill()
        snap = srv.dir / "dump.rdb"
        sizes.setdefault(kind, {})["snapshot"] = snap.stat().st_size
        srv.start()
        times.setdefault(kind, {})["snapshot"] = srv.loaded_seconds("snapshot")
        srv.stop()
        # AOF of SET commands (a RESP base, as with aof-use-rdb-preamble no).
        snap.unlink()
        srv2 = Srv(kind, d / "aof", "--save", "", "--appendonly", "yes",
                   "--aof-use-rdb-preamble", "no")  # fmt: skip
        srv2.start()
        cli(srv2.port, "DEBUG", "POPULATE", str(keys))
        cli(srv2.port, "BGREWRITEAOF")
        time.sleep(0.5)
        srv2.wait_idle()
        srv2.kill()
        aofdir = srv2.dir / "appendonlydir"
        sizes[kind]["aof"] = sum(f.stat().st_size for f in aofdir.iterdir())
        srv2.start()
        times[kind]["aof"] = srv2.loaded_seconds("aof")
        srv2.stop()
    line("snapshot load (s)", times["ackdb"]["snapshot"], times["redis"]["snapshot"], "s",
         "<= 3x", False)  # fmt: skip
    line("AOF load (s)", times["ackdb"]["aof"], times["redis"]["aof"], "s", "<= 3x", False)
    line("snapshot file (MiB)", sizes["ackdb"]["snapshot"] / 2**20,
         sizes["redis"]["snapshot"] / 2**20, "MiB", "report", False)  # fmt: skip
    line("AOF files (MiB)", sizes["ackdb"]["aof"] / 2**20, sizes["redis"]["aof"] / 2**20,
         "MiB", "report", False)  # fmt: skip
    print("\nLongest PING round trip while BGSAVE writes the keys (fork-based on both):")
    line("max PING latency (ms)", stalls["ackdb"], stalls["redis"], "ms", "ackdb <= 50 ms", False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    args = ap.parse_args()
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (bash scripts/test-setup.sh installs it)")
            return 2
    print(f"ackdb persistence benchmark -- {os.cpu_count()} CPUs, "
          f"redis {cli_version()}, python {sys.version.split()[0]}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ackdb-pbench-") as tmp:
        work = Path(tmp)
        if not args.skip_throughput:
            bench_throughput(work, args.requests, args.repeat)
        if not args.skip_load:
            bench_load(work, args.keys)
    return 0


def cli_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=([0-9.]+)", out)
    return m.group(1) if m else "?"


if __name__ == "__main__":
    sys.exit(main())
