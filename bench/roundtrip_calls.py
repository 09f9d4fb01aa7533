"""Python calls per SET + WAIT 1 0 round trip, in the primary and the replica, for two
source trees: a deterministic companion to the noisy latency rows of replication_bench.

Each tree runs a primary and a replica under cProfile (hz 1, so the timer adds little)
and a client makes N1, then N2, round trips in two runs; the per-round-trip count of each
function is (calls at N2 - calls at N1) / (N2 - N1), so start-up and shutdown cancel out.
Prints both trees' totals and the functions whose counts differ.

    python3 bench/roundtrip_calls.py --baseline /tmp/base/src [--tree src]

(``git worktree add /tmp/base <commit>`` gives a baseline tree.)
"""

from __future__ import annotations

import argparse
import os
import pstats
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


def _call(port: int, *args: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(_pack(args))
        return s.recv(65536)


def _pack(args: tuple[str, ...] | list[str]) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def profile_run(src: str, out: Path, n: int) -> None:
    env = dict(os.environ, PYTHONPATH=src)
    pp, rp = _free_port(), _free_port()
    procs = []
    for role, port in (("p", pp), ("r", rp)):
        d = out / role
        d.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "cProfile", "-o", str(out / f"{role}.prof")]
        args += ["-m", "ackdb", "server", "--port", str(port), "--dir", str(d), "--save", ""]
        args += ["--appendonly", "no", "--hz", "1"]
        if role == "r":
            args += ["--replicaof", "127.0.0.1", str(pp)]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL))
        for _ in range(200):
            try:
                _call(port, "PING")
                break
            except OSError:
                time.sleep(0.05)
    try:
        with socket.create_connection(("127.0.0.1", pp)) as s:
            for _ in range(400):
                s.sendall(_pack(["WAIT", "1", "100"]))
                if s.recv(64) == b":1\r\n":
                    break
            else:
                raise SystemExit("the replica did not attach")
            req = _pack(["SET", "k", "v"]) + _pack(["WAIT", "1", "0"])
            for _ in range(200 + n):
                s.sendall(req)
                got = b""
                while not got.endswith(b":1\r\n"):
                    got += s.recv(64)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            p.wait(30)


def counts(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for (f, _line, name), (_cc, nc, *_rest) in pstats.Stats(str(path)).stats.items():  # type: ignore[attr-defined]
        short = f.split("/src/")[-1] if "/src/" in f else f.rsplit("/", 1)[-1]
        out[f"{short}:{name}"] = out.get(f"{short}:{name}", 0) + nc
    return out


def per_round_trip(src: str, n1: int, n2: int, tmp: Path) -> dict[str, dict[str, float]]:
    for n in (n1, n2):
        profile_run(src, tmp / str(n), n)
    res = {}
    for role in ("p", "r"):
        a, b = counts(tmp / str(n1) / f"{role}.prof"), counts(tmp / str(n2) / f"{role}.prof")
        res[role] = {k: (b.get(k, 0) - a.get(k, 0)) / (n2 - n1) for k in set(a) | set(b)}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--baseline", required=True, help="the other tree's src directory")
    ap.add_argument("--tree", default=str(HERE / "src"), help="this tree's src directory")
    ap.add_argument("--n1", type=int, default=1000)
    ap.add_argument("--n2", type=int, default=4000)
    ap.add_argument("--min-diff", type=float, default=0.3, help="calls per round trip")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        base = per_round_trip(a.baseline, a.n1, a.n2, Path(d) / "base")
        tree = per_round_trip(a.tree, a.n1, a.n2, Path(d) / "tree")
    for role, name in (("p", "primary"), ("r", "replica")):
        b, t = base[role], tree[role]
        print(
            f"{name}: Python calls per round trip: baseline {sum(b.values()):.1f}, "
            f"tree {sum(t.values()):.1f}"
        )
        for k in sorted(set(b) | set(t), key=lambda k: t.get(k, 0) - b.get(k, 0)):
            diff = t.get(k, 0) - b.get(k, 0)
            if abs(diff) >= a.min_diff:
                print(f"  {diff:+6.2f}  {b.get(k, 0):6.2f} -> {t.get(k, 0):6.2f}  {k}")


if __name__ == "__main__":
    main()
