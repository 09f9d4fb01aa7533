"""Load-independent costs of the proxy endpoint per request (issue 14 item 8): system
calls (``strace -c -f`` attached to the endpoint during a fixed redis-benchmark run) and
Python function calls (cProfile of the endpoint at two run lengths, subtracted, so start-up
and shutdown cancel out; the method of bench/roundtrip_calls.py), for one source tree.

    python3 bench/proxy_calls.py [--tree src] [--shards 1] [--pipeline 1] [--clients 50]

Prints syscalls/request (with the top syscalls) and Python calls/request (with the top
functions). Run it for two trees (``git worktree add /tmp/base <commit>``) to compare.
"""

from __future__ import annotations

import argparse
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOP = int(os.environ.get("PROXY_CALLS_TOP", "15"))
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cluster_bench  # noqa: E402


def _benchmark(port: int, n: int, pipeline: int, clients: int) -> None:
    argv = ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(n), "-q"]
    argv += ["-P", str(pipeline), "-t", "set,get", "-r", "100000"]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=600)


def _world(tree: str, root: Path, shards: int, profile: Path | None) -> tuple[Any, int]:
    os.environ["PYTHONPATH"] = tree
    w = cluster_bench.World(root, tree)
    if profile is not None:
        real = w.spawn

        def spawn(name: str, argv: list[str], *rest: Any) -> int:
            if name.endswith("-proxy"):
                argv = [argv[0], "-m", "cProfile", "-o", str(profile), *argv[1:]]
            return int(real(name, argv, *rest))

        w.spawn = spawn  # type: ignore[method-assign]
    endpoint, _ports = w.database("db", shards)
    return w, endpoint


def syscalls(tree: str, shards: int, n: int, pipeline: int, clients: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        w, port = _world(tree, Path(d), shards, None)
        try:
            _benchmark(port, 1000, pipeline, clients)  # connections pooled, warmed
            pid = w.procs["db-proxy"].pid
            out = Path(d) / "strace.txt"
            st = subprocess.Popen(["strace", "-c", "-f", "-o", str(out), "-p", str(pid)])
            time.sleep(1.0)
            _benchmark(port, n, pipeline, clients)
            st.send_signal(signal.SIGINT)
            st.wait(30)
        finally:
            w.close()
        rows = []
        total = 0
        for line in out.read_text().splitlines():
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
            if m and m.group(2) != "total":
                rows.append((int(m.group(1)), m.group(2)))
                total += int(m.group(1))
        reqs = 2 * n  # set and get
        print(f"syscalls/request: {total / reqs:.3f}")
        for calls, name in sorted(rows, reverse=True)[:8]:
            print(f"  {calls / reqs:8.3f}  {name}")


def _counts(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for (f, _line, name), (_cc, nc, *_r) in pstats.Stats(str(path)).stats.items():  # type: ignore[attr-defined]
        short = f.split("/src/")[-1] if "/src/" in f else f.rsplit("/", 1)[-1]
        out[f"{short}:{name}"] = out.get(f"{short}:{name}", 0) + nc
    return out


def pycalls(tree: str, shards: int, n1: int, n2: int, pipeline: int, clients: int) -> None:
    got = []
    with tempfile.TemporaryDirectory() as d:
        for n in (n1, n2):
            prof = Path(d) / f"{n}.prof"
            (Path(d) / str(n)).mkdir()
            w, port = _world(tree, Path(d) / str(n), shards, prof)
            try:
                _benchmark(port, n, pipeline, clients)
            finally:
                w.close()
            got.append(_counts(prof))
    a, b = got
    per = {k: (b.get(k, 0) - a.get(k, 0)) / (2 * (n2 - n1)) for k in set(a) | set(b)}
    print(f"python calls/request: {sum(per.values()):.2f}")
    for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:TOP]:
        print(f"  {v:8.3f}  {k}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tree", default=str(HERE.parent / "src"))
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--n", type=int, default=20000, help="requests per test in the strace run")
    ap.add_argument("--n1", type=int, default=5000)
    ap.add_argument("--n2", type=int, default=25000)
    a = ap.parse_args()
    print(f"tree {a.tree}, {a.shards} shard(s), -P {a.pipeline}, -c {a.clients}")
    if a.n:
        syscalls(a.tree, a.shards, a.n, a.pipeline, a.clients)
    pycalls(a.tree, a.shards, a.n1, a.n2, a.pipeline, a.clients)


if __name__ == "__main__":
    main()
