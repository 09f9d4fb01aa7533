"""System calls per SET + WAIT 1 0 round trip, in the primary and the replica, for one
source tree: ``strace -c -f -p`` attached to both servers while a client makes N round
trips (after 300 to warm up). A load-independent companion to replication_bench's latency
rows and to roundtrip_calls.py (Python calls).

    python3 bench/roundtrip_syscalls.py [--tree src] [-n 3000]

Needs strace. The servers run with hz 1 and are killed at the end (by PID); their files
go to a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pack(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _counts(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if len(f) >= 5 and f[3].isdigit() and f[-1] != "total":
            out[f[-1]] = int(f[3])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", default=str(HERE / "src"), help="the tree's src directory")
    ap.add_argument("-n", type=int, default=3000, help="round trips counted")
    a = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=os.path.abspath(a.tree))
    with tempfile.TemporaryDirectory() as tmp:
        pp, rp = _free_port(), _free_port()
        procs = []
        try:
            for role, port in (("p", pp), ("r", rp)):
                d = os.path.join(tmp, role)
                os.makedirs(d)
                argv = [sys.executable, "-m", "ackdb", "server", "--port", str(port), "--dir", d]
                argv += ["--save", "", "--appendonly", "no", "--hz", "1"]
                if role == "r":
                    argv += ["--replicaof", "127.0.0.1", str(pp)]
                procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL))
                time.sleep(1.5)
            s = socket.create_connection(("127.0.0.1", pp))
            for _ in range(400):
                s.sendall(_pack(b"WAIT", b"1", b"100"))
                if s.recv(64) == b":1\r\n":
                    break
            req = _pack(b"SET", b"k", b"v") + _pack(b"WAIT", b"1", b"0")

            def round_trips(k: int) -> None:
                for _ in range(k):
                    s.sendall(req)
                    got = b""
                    while not got.endswith(b":1\r\n"):
                        got += s.recv(64)

            round_trips(300)
            outs = [os.path.join(tmp, f"strace-{r}.txt") for r in "pr"]
            tracers = [
                subprocess.Popen(
                    ["strace", "-c", "-f", "-p", str(p.pid), "-o", out], stderr=subprocess.DEVNULL
                )
                for p, out in zip(procs, outs, strict=True)
            ]
            time.sleep(1.0)  # attached
            round_trips(a.n)
            for t in tracers:
                t.send_signal(signal.SIGINT)
            for t in tracers:
                t.wait(10)
            for name, out in zip(("primary", "replica"), outs, strict=True):
                c = _counts(out)
                top = sorted(c.items(), key=lambda kv: -kv[1])[:6]
                per = ", ".join(f"{k} {v / a.n:.2f}" for k, v in top)
                print(f"{name}: {sum(c.values()) / a.n:.2f} system calls per round trip ({per})")
        finally:
            for p in procs:
                p.kill()
            for p in procs:
                p.wait(10)


if __name__ == "__main__":
    main()
