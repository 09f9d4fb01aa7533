#!/usr/bin/env python3
"""CPU an iteration of the SET + WAIT 1 0 loop, for ackdb builds and redis-server side by
side: where ``replication_bench.py``'s latency row says how long a round trip takes, this
says what each process spends on it, which is what a change to the code moves.

Each run starts a primary and a replica of one kind (an ackdb source tree such as
``build/compiled``, or ``redis``), makes ``--warmup`` then ``--iterations`` sequential
round trips (SET, its reply, WAIT 1 0, its reply) on one connection, and reads
``/proc/<pid>/stat``, ``io`` and ``status`` of both servers around the measured part:
user and system CPU per iteration, read and write system calls, voluntary context
switches. Rounds alternate the targets (the order reversed every other round); the table
shows each figure's median over the rounds and the median of the paired ratios against
the first target.

    python3 bench/wait_cpu_ab.py build/compiled /tmp/other/build redis --rounds 8

``--mode set`` runs SETs alone (no WAIT): the replica only applies the stream.

``--pin`` places the three processes (the main thread of each server, and this client)
for the measured part, a diagnosis of the machine rather than of the code: ``one`` puts
all three on CPU 0 (every wake-up is a switch on one CPU), ``apart`` puts the primary on
CPU 1 and the client and the replica on CPU 0 (every wake-up of the primary, and each of
its replies, crosses CPUs); ``replica-apart`` and ``client-apart`` put that process alone
on CPU 1 and the other two on CPU 0. Unpinned (``none``, the default, what the latency row of
``replication_bench.py`` measures) the kernel chooses, and on a VM whose idle vCPUs halt
(no guest halt-polling) a wake-up that lands on an idle vCPU costs tens of microseconds:
docs/performance.md, fifth pass.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from ackdb.resp.request import pack  # noqa: E402

START_TIMEOUT_S = 30.0
# --pin: the CPU of the primary, the replica and this client (``none``: the kernel's choice).
PINS = {"one": (0, 0, 0), "apart": (1, 0, 0), "replica-apart": (0, 1, 0), "client-apart": (0, 0, 1)}
FIELDS = ("p50_us", "set_p50_us", "second_p50_us", "primary_us", "primary_user_us", "replica_us", "replica_user_us",
          "primary_reads", "primary_writes", "primary_switches")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(sock: socket.socket, *args: str | int) -> bytes:
    sock.sendall(pack(*args))
    return sock.recv(65536)


class Proc:
    """One server process in its own directory and session."""

    def __init__(self, target: str, workdir: Path) -> None:
        self.port = _free_port()
        common = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
        env = dict(os.environ)
        if target == "redis":
            argv = ["redis-server", *common, "--repl-diskless-sync", "yes",
                    "--repl-diskless-sync-delay", "0"]  # fmt: skip
        else:
            argv = [sys.executable, "-m", "ackdb", "server", *common]
            env["PYTHONPATH"] = str(Path(target).resolve())
        self.proc = subprocess.Popen(
            argv, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{target} did not start") from None
                time.sleep(0.05)

    def counters(self) -> dict[str, float]:
        pid = self.proc.pid
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
        status = dict(
            line.split(":\t") for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if ":\t" in line
        )  # fmt: skip
        return {
            "user": int(stat[11]) / tick,
            "cpu": (int(stat[11]) + int(stat[12])) / tick,
            "reads": int(io["syscr"]),
            "writes": int(io["syscw"]),
            "switches": int(status["voluntary_ctxt_switches"]),
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def one_run(target: str, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "p").mkdir()
        (Path(d) / "r").mkdir()
        primary = Proc(target, Path(d) / "p")
        procs = [primary]
        try:
            replica = Proc(target, Path(d) / "r")
            procs.append(replica)
            _call(replica.sock, "REPLICAOF", "127.0.0.1", primary.port)
            deadline = time.monotonic() + 60
            while b"connected_slaves:1" not in _call(primary.sock, "INFO", "replication"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target}: the replica did not attach")
                time.sleep(0.05)
            return _loop(primary, replica, args)
        finally:
            for p in procs:
                p.stop()


def _loop(primary: Proc, replica: Proc, args: argparse.Namespace) -> dict[str, float]:
    sets = [pack("SET", f"lat:{i}", "v" * 100) for i in range(1000)]
    wait = pack("WAIT", 1, 0)
    sock = primary.sock
    rf = sock.makefile("rb")

    halves: tuple[list[float], list[float]] = ([], [])

    def run(n: int) -> list[float]:
        out = []
        firsts, seconds = halves
        firsts.clear()
        seconds.clear()
        for i in range(n):
            t0 = time.perf_counter()
            sock.sendall(sets[i % 1000])
            if rf.readline() != b"+OK\r\n":
                raise RuntimeError("SET failed")
            t1 = time.perf_counter()
            if args.mode == "wait":
                sock.sendall(wait)
                if rf.readline() != b":1\r\n":
                    raise RuntimeError("WAIT 1 0 did not answer 1")
            t2 = time.perf_counter()
            out.append(t2 - t0)
            firsts.append(t1 - t0)
            seconds.append(t2 - t1)
        return out

    run(args.warmup)  # the replica attached and in sync (WAIT returned 1)
    if args.pin != "none":
        cpus = PINS[args.pin]
        os.sched_setaffinity(primary.proc.pid, {cpus[0]})
        os.sched_setaffinity(replica.proc.pid, {cpus[1]})
        os.sched_setaffinity(0, {cpus[2]})
        run(args.warmup // 4)  # settled where they now run
    p0, r0 = primary.counters(), replica.counters()
    lat = sorted(run(args.iterations))
    p1, r1 = primary.counters(), replica.counters()
    if args.pin != "none":
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    rf.close()
    n = args.iterations
    return {
        "p50_us": lat[n // 2] * 1e6,
        # The two halves of an iteration: the SET's round trip, then the WAIT's.
        "set_p50_us": statistics.median(halves[0]) * 1e6,
        "second_p50_us": statistics.median(halves[1]) * 1e6,
        "primary_us": (p1["cpu"] - p0["cpu"]) / n * 1e6,
        "primary_user_us": (p1["user"] - p0["user"]) / n * 1e6,
        "replica_us": (r1["cpu"] - r0["cpu"]) / n * 1e6,
        "replica_user_us": (r1["user"] - r0["user"]) / n * 1e6,
        "primary_reads": (p1["reads"] - p0["reads"]) / n,
        "primary_writes": (p1["writes"] - p0["writes"]) / n,
        "primary_switches": (p1["switches"] - p0["switches"]) / n,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("targets", nargs="+", help="ackdb source trees (PYTHONPATH) or 'redis'")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--mode", choices=("wait", "set"), default="wait")
    ap.add_argument("--pin", choices=("none", *PINS), default="none",
                    help="where the three processes run (see above)")  # fmt: skip
    args = ap.parse_args()
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in args.targets}
    print(f"load average at the start: {os.getloadavg()[0]:.2f}; pin: {args.pin}", flush=True)
    for i in range(args.rounds):
        order = args.targets if i % 2 == 0 else args.targets[::-1]
        for t in order:
            runs[t].append(one_run(t, args))
        print(f"round {i + 1}: " + ", ".join(f"{t} p50 {runs[t][-1]['p50_us']:.1f} us"
                                            for t in args.targets), flush=True)  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    width = max(len(t) for t in args.targets)
    print(f"\nmedians over {args.rounds} rounds (per iteration; us unless said)")
    print(f"{'target':<{width}}  " + "  ".join(f"{f:>16}" for f in FIELDS))
    for t in args.targets:
        meds = [statistics.median(r[f] for r in runs[t]) for f in FIELDS]
        print(f"{t:<{width}}  " + "  ".join(f"{m:16.2f}" for m in meds))
    base = args.targets[0]
    for t in args.targets[1:]:
        pairs = list(zip(runs[base], runs[t], strict=True))
        ratios = [statistics.median(r[f] / b[f] for b, r in pairs if b[f]) for f in FIELDS]
        print(f"paired ratio {t} / {base}: " + ", ".join(
            f"{f} {x:.3f}" for f, x in zip(FIELDS, ratios, strict=True)
        ))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
