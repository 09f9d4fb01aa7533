#!/usr/bin/env python3
"""In-process A/B of the per-command path: request reader + the engine's dispatch, no
sockets, for two source trees (a baseline and this one).

The socket benchmarks (``compare_trees.py``) move 5-15% from run to run on a shared
2-core machine; this one measures only the Python a command costs on the server's
request path (``RequestReader.feed`` then the core's ``process_batch``, as the asyncio
shell calls them for one read), so a change of a few percent shows. Each round runs one
subprocess per tree, the order alternating; each subprocess reports the best of its
repeats in ns per command; the table shows the median over the rounds of the paired
ratio baseline / this tree (above 1: this tree is faster).

    python3 bench/engine_path_ab.py --baseline /tmp/base [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# Runs inside the tree under test (PYTHONPATH=<tree>/src): old and new layouts.
PROBE = r"""
import json, sys, timeit
try:
    from ackdb.server.engine_host import build_engine
    from ackdb.engine.client import NullConn
except ImportError:  # the layout before engine/ existed
    from ackdb.server.core import Server as _S
    from ackdb.server.client import NullConn
    def build_engine(config):
        return _S(config)
from ackdb.server.config import load_config
from ackdb.resp.reader import RequestReader

def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)

core = build_engine(load_config(None))
out = {}
for name, cmd, depth in (
    ("SET x16", lambda i: enc(b"SET", b"key:%06d" % i, b"xxx"), 16),
    ("GET x16", lambda i: enc(b"GET", b"key:%06d" % i), 16),
    ("SET x1", lambda i: enc(b"SET", b"key:%06d" % i, b"xxx"), 1),
    ("GET x1", lambda i: enc(b"GET", b"key:%06d" % i), 1),
    ("INCR x16", lambda i: enc(b"INCR", b"counter:%d" % (i % 4)), 16),
    ("HSET x16", lambda i: enc(b"HSET", b"h:%d" % (i % 4), b"f%d" % i, b"v"), 16),
):
    buf = b"".join(cmd(i) for i in range(depth))
    c = core.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:2", -1)
    def run():
        o = []
        core.process_batch(c, c.reader.feed(buf), o)
        b"".join(o)
    number = 40000 // depth
    best = min(timeit.repeat(run, number=number, repeat=7))
    out[name] = best / (number * depth) * 1e9
print(json.dumps(out))
"""


def probe(src: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    cp = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(cp.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout of the baseline")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    trees = {"base": args.baseline / "src", "new": REPO / "src"}
    runs: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
    load0 = os.getloadavg()[0]
    for i in range(args.rounds):
        order = ["base", "new"] if i % 2 == 0 else ["new", "base"]
        for t in order:
            runs[t].append(probe(trees[t]))
        print(f"round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    load1 = os.getloadavg()[0]
    print(f"{'path':<12} {'baseline ns':>12} {'this tree ns':>13} {'speed ratio':>12}")
    for name in runs["base"][0]:
        b = [r[name] for r in runs["base"]]
        n = [r[name] for r in runs["new"]]
        ratio = statistics.median(x / y for x, y in zip(b, n, strict=True))
        print(
            f"{name:<12} {statistics.median(b):>12.0f} {statistics.median(n):>13.0f} {ratio:>12.3f}"
        )
    print(f"{args.rounds} paired rounds; load average {load0:.2f} at start, {load1:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
