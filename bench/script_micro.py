#!/usr/bin/env python3
"""In-process cost of types_bench.py's EVALSHA and FCALL rows, against the same three
commands sent plainly: ns per call, no sockets.

Builds the engine as the server does (a primary without replicas, backlog or AOF, the
replication core attached, so it only counts writes), and feeds each call as RESP through
the request path the asyncio shell runs for one read: ``RequestReader.feed`` then the
core's ``process_batch``. Rows: ``EVALSHA`` and ``FCALL`` of the three-command script
(INCR, SET, GET), and ``INCR+SET+GET``, the same three commands as three requests (one
read each). Each row reports the best of its repeats in ns per call, timed with the
thread's CPU clock (time slices lost to other processes do not count). ``--feed`` adds a
second feed, so the effects are built and sent as with a replica or an AOF.

    PYTHONPATH=src python3 bench/script_micro.py [--seconds 3] [--feed] [--json]

Which build ran is printed (``build=compiled|pure``): put ``build/compiled`` first on
PYTHONPATH for the compiled one. Short by design (a few seconds): it is also the loop to
profile (``py-spy record -o out.svg -- python3 bench/script_micro.py``).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import sys
import time
from collections.abc import Callable

from ackdb.compiled import build_kind
from ackdb.engine.client import NullConn
from ackdb.server.config import load_config
from ackdb.server.engine_host import build_engine
from ackdb.server.replication_core import CoreReplication

# types_bench.py's script and library.
SCRIPT = (
    b"redis.call('incr', KEYS[1]) redis.call('set', KEYS[2], ARGV[1]) "
    b"return redis.call('get', KEYS[2])"
)
SHA = hashlib.sha1(SCRIPT).hexdigest().encode()
LIBRARY = (
    b"#!lua name=benchlib\nredis.register_function('bench3', function(KEYS, ARGV) "
    + SCRIPT
    + b" end)"
)
KEYS_SPREAD = 100_000  # redis-benchmark's __rand_int__ range, as types_bench.py runs it


def resp(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def requests(n: int) -> dict[str, list[list[bytes]]]:
    """Per row, the n reads it feeds (one list of wire buffers a call)."""
    rows: dict[str, list[list[bytes]]] = {"EVALSHA": [], "FCALL": [], "INCR+SET+GET": []}
    for i in range(n):
        key = b"sbench:%d" % (i % KEYS_SPREAD)
        rows["EVALSHA"].append([resp(b"EVALSHA", SHA, b"2", b"sbench:n", key, b"v")])
        rows["FCALL"].append([resp(b"FCALL", b"bench3", b"2", b"sbench:n", key, b"v")])
        rows["INCR+SET+GET"].append(
            [resp(b"INCR", b"sbench:n"), resp(b"SET", key, b"v"), resp(b"GET", key)]
        )
    return rows


def build(feed: bool) -> tuple[Callable[[list[bytes]], list[bytes]], object]:
    cfg = load_config(None)
    core = build_engine(cfg)
    repl = CoreReplication(core, cfg, None, None, aof_enabled=False, served=None, received=None)
    if feed:
        sink: list[object] = []

        def sent(db: int, argv: object) -> None:
            sink.append(argv)
            if len(sink) > 1000:
                sink.clear()

        core.feeds.append(sent)
    repl.engine_changed()
    c = core.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:2", -1)
    reader = c.reader
    process = core.process_batch

    def one(bufs: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for buf in bufs:
            process(c, reader.feed(buf), out)
        return out

    return one, core


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="rough total run time")
    ap.add_argument("--feed", action="store_true", help="a second feed: effects are sent")
    ap.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    ap.add_argument("--only", help="run one row (for profiling)")
    args = ap.parse_args()
    one, _ = build(args.feed)
    assert one([resp(b"SCRIPT", b"LOAD", SCRIPT)]) == [b"$40\r\n%s\r\n" % SHA]
    assert one([resp(b"FUNCTION", b"LOAD", b"REPLACE", LIBRARY)]) == [b"$8\r\nbenchlib\r\n"]
    number = 5000
    rows = requests(number)
    for name, reqs in rows.items():  # the replies are those of the plain commands
        assert one(reqs[0])[-1] == b"$1\r\nv\r\n", (name, one(reqs[0]))
    gc.set_threshold(20000, 20, 20)  # the server's
    names = [args.only] if args.only else list(rows)
    repeats = max(3, int(args.seconds / len(names) / 0.1))
    out: dict[str, float] = {}
    for name in names:
        reqs = rows[name]
        best = float("inf")
        deadline = time.monotonic() + args.seconds / len(names)
        for _ in range(repeats):
            t0 = time.thread_time_ns()
            for r in reqs:
                one(r)
            best = min(best, time.thread_time_ns() - t0)
            if time.monotonic() > deadline:
                break
        out[name] = best / number
    if args.json:
        print(json.dumps({"build": build_kind(), **out}))
        return 0
    print(f"build={build_kind()} feed={args.feed}")
    for name, ns in out.items():
        print(f"  {name:14s} {ns:9.0f} ns/call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
