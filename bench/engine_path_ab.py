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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab_rounds import paired_rounds, report  # noqa: E402

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


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout of the baseline")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    runs, load0 = paired_rounds(args.baseline, args.rounds, PROBE)
    report(runs, load0, "path", "ns", 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
