"""Paired rounds of an in-process probe in two source trees, for ``engine_path_ab.py`` and
``script_stream_ab.py``: each round runs the probe once per tree in a subprocess
(``PYTHONPATH=<tree>/src``), the order alternating round by round; the table shows each
figure's median per tree and the median of the paired ratios baseline / this tree (above
1: this tree is faster), with the load average at the start and the end.

The probe is Python source that prints, as its last line, a JSON object of figures (one
per row, lower is better).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

Runs = dict[str, list[dict[str, float]]]


def probe(src: Path, code: str, *args: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    cp = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(cp.stdout.strip().splitlines()[-1])
    return result


def paired_rounds(baseline: Path, rounds: int, code: str, *args: str) -> tuple[Runs, float]:
    """Every round's figures of each tree ("base", "new"), and the load average at the
    start."""
    trees = {"base": baseline / "src", "new": REPO / "src"}
    runs: Runs = {"base": [], "new": []}
    load0 = os.getloadavg()[0]
    for i in range(rounds):
        for t in ["base", "new"] if i % 2 == 0 else ["new", "base"]:
            runs[t].append(probe(trees[t], code, *args))
        print(f"round {i + 1}/{rounds} done", file=sys.stderr, flush=True)
    return runs, load0


def report(runs: Runs, load0: float, row: str, unit: str, digits: int) -> None:
    print(f"{row:<12} {'baseline ' + unit:>12} {'this tree ' + unit:>13} {'paired ratio':>13}")
    for name in runs["base"][0]:
        b = [r[name] for r in runs["base"]]
        n = [r[name] for r in runs["new"]]
        ratio = statistics.median(x / y for x, y in zip(b, n, strict=True))
        print(
            f"{name:<12} {statistics.median(b):>12.{digits}f}"
            f" {statistics.median(n):>13.{digits}f} {ratio:>13.3f}"
        )
    rounds, load1 = len(runs["base"]), os.getloadavg()[0]
    print(f"{rounds} paired rounds; load average {load0:.2f} at start, {load1:.2f} at end")
