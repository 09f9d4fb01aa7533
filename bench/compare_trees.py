"""Compare two ackdb trees (a baseline and this one) with the project's own benches.

Used for "no slowdown" claims: the same benchmark, the two trees' servers taking turns run
by run, each figure reported as the median of the per-round ratios new / baseline (paired,
never the best run), with the load average before and after.

- ``server_bench.py`` runs with the baseline's server in the reference slot
  (``--redis-cmd``): it alternates the two servers run by run (reference, ackdb,
  reference, ackdb...), so round i of one is paired with round i of the other.
- ``replication_bench.py --baseline-src`` does the same for its throughput (with 0, 1 and
  2 replicas) and SET + WAIT latency rows.

Usage (baseline checked out with ``git worktree add /tmp/base <commit>``):

    python3 bench/compare_trees.py --baseline /tmp/base [--rounds 5] [--only server,replication]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _server_cmd(src: Path) -> str:
    return f"env PYTHONPATH={src} {sys.executable} -m ackdb server"


def paired(new: list[float | None], old: list[float | None]) -> tuple[float | None, int]:
    """The median of new[i] / old[i] over the rounds where both ran, and their count."""
    ratios = [n / o for n, o in zip(new, old, strict=False) if n and o]
    return (statistics.median(ratios) if ratios else None), len(ratios)


def run_server_bench(
    baseline: Path, rounds: int, tests: str, requests: int, pipelines: str
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="ackdb-ab-") as tmp:
        out = Path(tmp) / "server.json"
        cmd = [
            sys.executable,
            str(HERE / "server_bench.py"),
            "--tests",
            tests,
            "--pipelines",
            pipelines,
            "--no-memory",
            "--repeat",
            str(rounds),
            "--requests",
            str(requests),
            "--requests-pipelined",
            str(requests * 5),
            "--redis-cmd",
            _server_cmd(baseline / "src"),
            "--ackdb-cmd",
            _server_cmd(REPO / "src"),
            "--json",
            str(out),
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        report = json.loads(out.read_text())
    rows = []
    for row in report["throughput"]:
        ratio, n = paired(row["ackdb_rps_all"], row["redis_rps_all"])
        rows.append(
            {
                "row": f"{row['test']} -P {row['pipeline']} (req/s)",
                "new": row["ackdb_rps"],
                "base": row["redis_rps"],
                "ratio": ratio,
                "pairs": n,
            }
        )
    return rows


def run_replication_bench(baseline: Path, rounds: int, requests: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="ackdb-ab-") as tmp:
        out = Path(tmp) / "repl.json"
        cmd = [
            sys.executable,
            str(HERE / "replication_bench.py"),
            "--only",
            "throughput,latency",
            "--repeat",
            str(rounds),
            "--requests",
            str(requests),
            "--baseline-src",
            str(baseline / "src"),
            "--json",
            str(out),
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        report = json.loads(out.read_text())
    rows = []
    for key, runs in report["runs"].items():
        new, old = runs.get("ackdb", []), runs.get("base", [])
        higher = key.startswith("tp")
        if not higher and not key.startswith(("p50", "p99")):
            continue
        # Latencies: a smaller time is faster, so the speed ratio is old / new.
        ratio, n = paired(new, old) if higher else paired(old, new)
        if higher:
            _, reps, pipe = key.split()
            label = f"SET, {reps} replica(s), -P {pipe} (req/s)"
        else:
            label = f"SET + WAIT 1 0, {key} (ms)"
        rows.append(
            {
                "row": label,
                "new": statistics.median(v for v in new if v) if any(new) else None,
                "base": statistics.median(v for v in old if v) if any(old) else None,
                "ratio": ratio,
                "pairs": n,
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout of the baseline")
    ap.add_argument("--rounds", type=int, default=5, help="paired alternating rounds (>= 5)")
    ap.add_argument("--only", default="server,replication")
    ap.add_argument("--tests", default="SET,GET", help="server_bench tests")
    ap.add_argument("--requests", type=int, default=150_000, help="-n at pipeline 1")
    ap.add_argument("--pipelines", default="1,16", help="server_bench -P values")
    args = ap.parse_args()
    if not (args.baseline / "src" / "ackdb").is_dir():
        ap.error(f"{args.baseline} has no src/ackdb")
    parts = set(args.only.split(","))
    load0 = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    if "server" in parts:
        print("server_bench: baseline and this tree alternating ...", flush=True)
        rows += run_server_bench(
            args.baseline, args.rounds, args.tests, args.requests, args.pipelines
        )
    if "replication" in parts:
        print("replication_bench: baseline and this tree alternating ...", flush=True)
        rows += run_replication_bench(args.baseline, args.rounds, args.requests // 2)
    load1 = os.getloadavg()[0]
    print()
    print(f"{'row':<36} {'baseline':>12} {'this tree':>12} {'speed ratio':>12} {'pairs':>6}")
    print("-" * 82)
    for r in rows:
        b = (
            f"{r['base']:,.3f}"
            if r["base"] is not None and r["base"] < 100
            else (f"{r['base']:,.0f}" if r["base"] is not None else "-")
        )
        n = (
            f"{r['new']:,.3f}"
            if r["new"] is not None and r["new"] < 100
            else (f"{r['new']:,.0f}" if r["new"] is not None else "-")
        )
        ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "-"
        print(f"{r['row']:<36} {b:>12} {n:>12} {ratio:>12} {r['pairs']:>6}")
    print("-" * 82)
    print(
        "speed ratio: median over the rounds of this tree / baseline (throughput) or "
        "baseline / this tree (latency); above 1 is faster."
    )
    print(f"load average (1 min): {load0:.2f} at start, {load1:.2f} at end ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
