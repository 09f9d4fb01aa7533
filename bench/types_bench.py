#!/usr/bin/env python3
"""Lists, sets, sorted sets, Pub/Sub, streams, bitmaps, HyperLogLog and geo: ackdb against
redis-server, side by side.

Runs redis-benchmark (50 clients, pipeline 1 and 16) for LPUSH, LPOP, SADD, SPOP, ZADD,
ZRANGE (100 of 10,000 members), PUBLISH with one subscriber, XADD, XREADGROUP (one entry
a call from a stream holding as many as the run reads), SETBIT, PFADD, GEOADD, EVALSHA of a
three-command script (INCR, SET, GET) and FCALL of the same as a function, alternating the two
servers run by run, and prints the ackdb/Redis ratio of each (target >= 0.6): the ratio of
the two medians (the verdict), and the median of each round's own ratio ("paired": the two
runs of a round are back to back, so load from elsewhere on a shared machine moves both;
the server that runs first alternates from round to round).

    python3 bench/types_bench.py            # about 3 minutes
    python3 bench/types_bench.py --quick    # about 40 s
    python3 bench/types_bench.py --baseline /tmp/old/src   # also an older ackdb tree

``--baseline`` runs a second ackdb from another source tree (PYTHONPATH) in the same
rounds and prints its ratios too: a before/after comparison under the same load.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from server_bench import (
    Resp,
    Server,
    parse_benchmark_output,
    start_pair,
)

TARGET = 0.6
CLIENTS = 50
ZSET_MEMBERS = 10_000

# Three commands, the EVALSHA and FCALL rows' work: INCR, SET, GET.
SCRIPT = (
    "redis.call('incr', KEYS[1]) redis.call('set', KEYS[2], ARGV[1]) "
    "return redis.call('get', KEYS[2])"
)
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
LIBRARY = (
    "#!lua name=benchlib\nredis.register_function('bench3', function(KEYS, ARGV) "
    + SCRIPT
    + " end)"
)

# name -> (redis-benchmark arguments, what it needs before it runs)
TESTS: dict[str, tuple[list[str], str]] = {
    "LPUSH": (["-t", "lpush"], ""),
    "LPOP": (["-t", "lpop"], "list"),
    "SADD": (["-t", "sadd"], ""),
    "SPOP": (["-t", "spop"], "set"),
    "ZADD": (["-t", "zadd"], ""),
    "ZRANGE": (["ZRANGE", "zbench", "0", "99"], "zset"),
    "PUBLISH": (["PUBLISH", "bench-channel", "hello-subscriber"], "subscriber"),
    # Issue 18's families (target >= 0.6 at -P 1).
    "XADD": (["XADD", "xbench", "*", "field", "value:__rand_int__"], ""),
    "XREADGROUP": (
        ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "xread", ">"],
        "stream",
    ),
    # (redis-benchmark pads __rand_int__ with zeros, which no bit offset accepts: the key
    # takes the random part)
    "SETBIT": (["SETBIT", "bitbench:__rand_int__", "1000", "1"], ""),
    "PFADD": (["PFADD", "hllbench", "element:__rand_int__"], ""),
    "GEOADD": (["GEOADD", "geobench", "13.361389", "38.115556", "place:__rand_int__"], ""),
    # Issue 17: a three-command script by EVALSHA, and the same as a function.
    "EVALSHA": (["EVALSHA", SCRIPT_SHA, "2", "sbench:n", "sbench:__rand_int__", "v"], "script"),
    "FCALL": (["FCALL", "bench3", "2", "sbench:n", "sbench:__rand_int__", "v"], "function"),
}


class Subscriber:
    """One client SUBSCRIBEd to the bench channel, draining messages as they come."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(b"SUBSCRIBE bench-channel\r\n")
        self.sock.recv(4096)
        self.received = 0
        self.stop = False
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        self.sock.settimeout(0.5)
        while not self.stop:
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.received += data.count(b"hello-subscriber")

    def close(self) -> None:
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def prepare(srv: Server, need: str, n: int) -> None:
    r = Resp(srv.port, timeout=30)

    def cmd(*args: str) -> None:
        r.pipeline([args])  # an error reply is not raised: set-up goes on, as it did

    if need == "list":
        for i in range(0, n, 1000):
            cmd("RPUSH", "mylist", *[f"v{j}" for j in range(i, min(i + 1000, n))])
    elif need == "set":
        for i in range(0, n, 1000):
            cmd("SADD", "myset", *[f"m{j}" for j in range(i, min(i + 1000, n))])
    elif need == "stream":
        # As many entries as the run reads, in one consumer group read from the start.
        cmd("DEL", "xread")
        batch = [("XADD", "xread", "*", "field", f"v{j}") for j in range(n)]
        for i in range(0, n, 1000):
            r.pipeline(batch[i : i + 1000])
        cmd("XGROUP", "CREATE", "xread", "g", "0")
    elif need == "script":
        cmd("SCRIPT", "LOAD", SCRIPT)
    elif need == "function":
        cmd("FUNCTION", "LOAD", "REPLACE", LIBRARY)
    elif need == "zset":
        cmd("DEL", "zbench")
        for i in range(0, ZSET_MEMBERS, 1000):
            args = []
            for j in range(i, i + 1000):
                args += [str(j), f"member:{j:06d}"]
            cmd("ZADD", "zbench", *args)
    r.close()


def run_one(srv: Server, test: str, pipeline: int, n: int, timeout_s: float) -> float | None:
    args, need = TESTS[test]
    sub = None
    if need in ("list", "set", "zset", "stream", "script", "function"):
        prepare(srv, need, n * (pipeline if need not in ("zset", "stream") else 1))
    if need == "subscriber":
        sub = Subscriber(srv.port)
    argv = [
        "redis-benchmark",
        "-h",
        "127.0.0.1",
        "-p",
        str(srv.port),
        "-c",
        str(CLIENTS),
        "-n",
        str(n),
        "-P",
        str(pipeline),
        "-r",
        "100000",
        "-q",
        "--csv",
        *args,
    ]
    try:
        out = subprocess.run(argv, capture_output=True, timeout=timeout_s, text=True).stdout
    except subprocess.TimeoutExpired:
        return None
    finally:
        if sub is not None:
            sub.close()
    for name, cols in parse_benchmark_output(out).items():
        if name.split()[0] == test or name.startswith(test):
            return cols.get("rps")
    return None


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--tests", default=",".join(TESTS))
    p.add_argument("--pipelines", default="1,16", help="pipeline depths, e.g. 16")
    p.add_argument("--baseline", metavar="SRC", help="an older ackdb source tree to run too")
    args = p.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    tests = [t.strip().upper() for t in args.tests.split(",") if t.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="ackdb-types-bench-"))
    servers = [
        Server("redis", ["redis-server"], workdir),
        Server("ackdb", [sys.executable, "-m", "ackdb", "server"], workdir),
    ]
    if args.baseline:
        env = {**os.environ, "PYTHONPATH": str(Path(args.baseline).resolve())}
        servers.append(Server("base", [sys.executable, "-m", "ackdb", "server"], workdir, env))
    names = [srv.name for srv in servers[1:]]
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    paired: dict[tuple[str, int, str], list[float]] = {}
    try:
        start_pair(servers, 20.0, generation=1)
        for pipeline in [int(x) for x in args.pipelines.split(",")]:
            n = (20_000 if args.quick else 100_000) * (1 if pipeline == 1 else 4)
            for test in tests:
                for round_ in range(repeat):
                    got: dict[str, float | None] = {}
                    k = round_ % len(servers)
                    for srv in servers[k:] + servers[:k]:
                        rps = run_one(srv, test, pipeline, n, 120)
                        got[srv.name] = rps
                        results.setdefault((test, pipeline), {}).setdefault(srv.name, [])
                        if rps is not None:
                            results[(test, pipeline)][srv.name].append(rps)
                        print(f"  {srv.name:<5} {test:<8} -P {pipeline:<2}: {rps}", file=sys.stderr)
                    r = got.get("redis")
                    for name in names:
                        a = got.get(name)
                        if r and a:
                            paired.setdefault((test, pipeline, name), []).append(a / r)
    finally:
        for srv in servers:
            srv.stop()
    head = f"\n{'test':<8} {'pipe':>4} {'redis req/s':>13}"
    for name in names:
        head += f" {name + ' req/s':>13} {'ratio':>6} {'paired':>6}"
    print(head + "  target (ackdb)")
    for (test, pipeline), by in results.items():
        med: dict[str, Any] = {k: statistics.median(v) if v else None for k, v in by.items()}
        r = med.get("redis")
        line = f"{test:<8} {pipeline:>4} " + (f"{r:>13,.0f}" if r else f"{'-':>13}")
        verdict = "-"
        for name in names:
            a = med.get(name)
            ratio = a / r if r and a else None
            if name == "ackdb" and ratio is not None:
                verdict = "PASS" if ratio >= TARGET else "MISS"
            pr = paired.get((test, pipeline, name))
            line += " " + (f"{a:>13,.0f}" if a else f"{'-':>13}")
            line += " " + (f"{ratio:6.2f}" if ratio else f"{'-':>6}")
            line += " " + (f"{statistics.median(pr):6.2f}" if pr else f"{'-':>6}")
        print(f"{line}  >={TARGET} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
