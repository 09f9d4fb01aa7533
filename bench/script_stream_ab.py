#!/usr/bin/env python3
"""In-process A/B of EVALSHA, FCALL and XREADGROUP (types_bench.py's rows) for two source
trees: the engine's ``process_batch`` with one request, no sockets.

The engine is a primary without replicas, backlog or AOF (the replication core attached,
so it only counts writes, as under types_bench.py); ``--feed`` adds a second feed, so the
effects are built and sent as with a replica or an AOF. Each round runs one subprocess per
tree, the order alternating; each reports the best of its repeats in us per call, timed
with the thread's CPU clock (time slices lost to other processes do not count). The table
shows each tree's median over the rounds and the median of the paired ratios baseline /
this tree (above 1: this tree is faster), with the load average (bench/ab_rounds.py).

    python3 bench/script_stream_ab.py --baseline /tmp/base [--rounds 7] [--feed]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab_rounds import paired_rounds, report  # noqa: E402

PROBE = r"""
import hashlib, itertools, json, sys, time, gc
from ackdb.server.config import load_config
from ackdb.server.engine_host import build_engine
from ackdb.server.replication_core import CoreReplication
from ackdb.engine.client import NullConn

SCRIPT = (b"redis.call('incr', KEYS[1]) redis.call('set', KEYS[2], ARGV[1]) "
          b"return redis.call('get', KEYS[2])")
SHA = hashlib.sha1(SCRIPT).hexdigest().encode()
LIB = (b"#!lua name=benchlib\nredis.register_function('bench3', function(KEYS, ARGV) "
       + SCRIPT + b" end)")
cfg = load_config(None)
core = build_engine(cfg)
repl = CoreReplication(core, cfg, None, None, aof_enabled=False, served=None, received=None)
if sys.argv[1] == "feed":
    sink = []
    def feed(db, argv):
        sink.append(argv)
        if len(sink) > 1000:
            sink.clear()
    core.feeds.append(feed)
repl.engine_changed()
c = core.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:2", -1)
def do(*a):
    o = []
    core.process_batch(c, [list(a)], o)
    return o[0]
do(b"SCRIPT", b"LOAD", SCRIPT)
do(b"FUNCTION", b"LOAD", b"REPLACE", LIB)
core.process_batch(c, [[b"XADD", b"xread", b"*", b"field", b"v%d" % j] for j in range(60000)], [])
do(b"XGROUP", b"CREATE", b"xread", b"g", b"0")
gc.set_threshold(20000, 20, 20)  # the server's
n = itertools.count()
tests = {
    "EVALSHA": lambda: [b"EVALSHA", SHA, b"2", b"sbench:n", b"sbench:%d" % (next(n) % 100000), b"v"],
    "FCALL": lambda: [b"FCALL", b"bench3", b"2", b"sbench:n", b"sbench:%d" % (next(n) % 100000), b"v"],
    "XREADGROUP": lambda: [b"XREADGROUP", b"GROUP", b"g", b"c", b"COUNT", b"1", b"STREAMS", b"xread", b">"],
    "GET": lambda: [b"GET", b"sbench:%d" % (next(n) % 100000)],
}
out = {}
for name, mk in tests.items():
    number = 2000 if name == "XREADGROUP" else 4000
    best = None
    for _ in range(5):
        o = []
        t0 = time.thread_time()
        for _ in range(number):
            core.process_batch(c, [mk()], o)
        t = time.thread_time() - t0
        best = t if best is None else min(best, t)
    out[name] = best / number * 1e6
print(json.dumps(out))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout of the baseline")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--feed", action="store_true", help="a second feed: effects are sent")
    args = ap.parse_args()
    runs, load0 = paired_rounds(args.baseline, args.rounds, PROBE, "feed" if args.feed else "count")
    report(runs, load0, "command", "us", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
