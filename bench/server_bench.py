#!/usr/bin/env python3
"""Side-by-side throughput and memory comparison of ackdb against redis-server.

Starts a private redis-server and a private ackdb on free ephemeral ports on
127.0.0.1 (no persistence on either side), drives both with ``redis-benchmark``
-- alternating the two servers run by run so that machine noise hits both
alike -- and compares the RSS of each after ``DEBUG POPULATE``.

This is a report, not a test: the exit status is 0 even when targets are
missed.  Exit status 2 means a server failed to start, 3 that a server died
during the run, 130/143 that the run was interrupted.

Usage (from the repository root)::

    python bench/server_bench.py                 # full run, ~2-4 min on 2 cores
    python bench/server_bench.py --quick         # ~30 s smoke run
    python bench/server_bench.py --json bench/results.json

See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "src"))

from ackdb.resp.client import BlockingClient  # noqa: E402
from ackdb.resp.client import ReplyError as RespError  # noqa: E402

ALL_TESTS = ("SET", "GET", "INCR", "HSET", "MSET")
# Throughput targets (issue 19): minimum ackdb/redis req/s ratio per pipeline depth, as
# the median of the paired ratios (run i of ackdb over run i of redis).
RATIO_TARGETS = {1: 0.9, 16: 0.7}
# Memory target (issue 19): maximum ackdb/redis RSS ratio after DEBUG POPULATE.
MEMORY_TARGET = 1.8

DEFAULTS: dict[str, Any] = {
    "tests": ",".join(ALL_TESTS),
    "pipelines": "1,16",
    "requests": 150_000,  # -n at pipeline 1
    "requests_pipelined": 750_000,  # -n at pipeline > 1
    "repeat": 3,
    "populate": 1_000_000,
}
QUICK: dict[str, Any] = {
    "requests": 30_000,
    "requests_pipelined": 150_000,
    "repeat": 1,
}

CLIENTS = 50
KEYSPACE = 100_000

EXIT_OK = 0
EXIT_START_FAILED = 2
EXIT_SERVER_DIED = 3


class Interrupted(Exception):
    """Raised from the SIGTERM/SIGHUP handler so that ``finally`` blocks run."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


class StartError(Exception):
    pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# RESP: ackdb's blocking client (resp.client), replies decoded as text. It sends
# nothing at connect time (redis-py's CLIENT SETINFO / HELLO would).
# --------------------------------------------------------------------------


class Resp(BlockingClient):
    def __init__(self, port: int, timeout: float) -> None:
        super().__init__(f"127.0.0.1:{port}", timeout_s=timeout, encoding="utf-8")

    def read_reply(self) -> Any:
        """The next reply; an error reply is raised."""
        reply = self.read()
        if isinstance(reply, RespError):
            raise reply
        return reply


def parse_info(raw: Any) -> dict[str, str]:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


# --------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def read_proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in bytes from /proc/PID/status ({} if unavailable)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0]) * 1024
    return out


@dataclass
class Server:
    name: str
    argv: list[str]
    workdir: Path
    env: dict[str, str] | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    dead: bool = False
    info_server: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, port: int, start_timeout: float, generation: int) -> None:
        self.port = port
        self.dead = False
        argv = [
            *self.argv,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.log_path = self.workdir / f"{self.name}-{generation}-{port}.log"
        with open(self.log_path, "wb") as logf:
            try:
                self.proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    env=self.env,
                    start_new_session=True,  # Ctrl-C reaches us, we stop it
                )
            except OSError as e:
                raise StartError(f"{self.name}: cannot execute {shlex.join(argv)}: {e}") from e
        log(f"[{self.name}] started pid {self.proc.pid}: {shlex.join(argv)}")
        deadline = time.monotonic() + start_timeout
        last_err = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(
                    f"{self.name} exited with status {self.proc.returncode} during startup\n"
                    + self.log_tail()
                )
            try:
                with Resp(port, timeout=1.0) as c:
                    reply = c.call("PING")
                if reply == "PONG":
                    self._fetch_info()
                    log(f"[{self.name}] answers PING on port {port}")
                    return
                last_err = f"PING replied {reply!r}"
            except (OSError, RespError, ValueError) as e:
                last_err = f"{type(e).__name__}: {e}"
            time.sleep(0.05)
        raise StartError(
            f"{self.name} did not answer PING within {start_timeout:.0f}s ({last_err})\n"
            + self.log_tail()
        )

    def _fetch_info(self) -> None:
        try:
            with Resp(self.port, timeout=5.0) as c:
                self.info_server = parse_info(c.call("INFO", "server"))
        except (OSError, RespError, ValueError):
            self.info_server = {}

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"    {self.name}| {line}" for line in text) or "    (empty log)"

    def stop(self, grace: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            # The process leads its own session (start_new_session=True), so
            # its pid is also the id of the group holding it and any children.
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                except PermissionError:
                    proc.send_signal(sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    if sig == signal.SIGTERM:
                        log(f"[{self.name}] still running {grace:.0f}s after SIGTERM; SIGKILL")
        else:
            proc.wait()
        # Reap anything left in its group (e.g. behind a wrapper script).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        log(f"[{self.name}] stopped (status {proc.returncode})")


def start_pair(servers: list[Server], start_timeout: float, generation: int) -> None:
    for attempt in range(3):
        ports = free_ports(len(servers))
        try:
            for srv, port in zip(servers, ports, strict=True):
                if not srv.alive():
                    srv.start(port, start_timeout, generation)
            return
        except StartError as e:
            # A lost race for an ephemeral port is worth a retry; anything else is not.
            if "in use" not in str(e).lower() or attempt == 2:
                raise
            log(f"port race, retrying: {str(e).splitlines()[0]}")
            for srv in servers:
                if not srv.alive():
                    srv.stop()


# --------------------------------------------------------------------------
# redis-benchmark
# --------------------------------------------------------------------------

_Q_LINE = re.compile(
    r"^\s*(?P<test>[A-Za-z_]+)[^:]*:\s*(?P<rps>[\d.]+)\s+requests per second"
    r"(?:.*?p50=(?P<p50>[\d.]+)\s*msec)?"
)


def _num(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def parse_benchmark_output(text: str) -> dict[str, dict[str, float]]:
    """Parse redis-benchmark -q --csv output into {TEST: {column: value}}.

    redis-benchmark 7.0 prints a header row
    ``"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...``
    followed by one row per test, e.g. ``"MSET (10 keys)","84745.77",...``.
    Older versions print ``"SET","12345.67"`` without header; plain ``-q``
    prints ``SET: 12345.67 requests per second, p50=0.247 msec``.  All three
    are accepted.  The key is the first word of the test name, upper-cased.
    """
    results: dict[str, dict[str, float]] = {}
    header: list[str] | None = None
    lines = [ln.strip() for ln in re.split(r"[\r\n]+", text) if ln.strip()]
    for line in lines:
        if line.startswith('"'):
            try:
                row = next(csv.reader([line]))
            except (csv.Error, StopIteration):
                continue
            if not row:
                continue
            if row[0].strip().lower() == "test":
                header = [h.strip().lower() for h in row]
                continue
            cols = header if header and len(header) == len(row) else ["test", "rps"]
            rec: dict[str, float] = {}
            for name, value in zip(cols[1:], row[1:], strict=False):
                v = _num(value)
                if v is not None:
                    rec[name] = v
            if "rps" in rec:
                results[row[0].split()[0].upper()] = rec
            continue
        m = _Q_LINE.match(line)
        if m:
            rec = {"rps": float(m["rps"])}
            if m["p50"]:
                rec["p50_latency_ms"] = float(m["p50"])
            results[m["test"].upper()] = rec
    return results


@dataclass
class RunResult:
    server: str
    test: str
    pipeline: int
    rep: int
    requests: int
    rps: float | None = None
    p50_ms: float | None = None
    columns: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


def run_benchmark(
    bench_cmd: list[str],
    srv: Server,
    test: str,
    pipeline: int,
    requests: int,
    rep: int,
    timeout: float,
) -> RunResult:
    res = RunResult(srv.name, test, pipeline, rep, requests)
    argv = [
        *bench_cmd,
        "-h",
        "127.0.0.1",
        "-p",
        str(srv.port),
        "-c",
        str(CLIENTS),
        "-n",
        str(requests),
        "-P",
        str(pipeline),
        "-r",
        str(KEYSPACE),
        "-t",
        test.lower(),
        "-q",
        "--csv",
    ]
    t0 = time.monotonic()
    # redis-benchmark spins forever when the server is unreachable or goes
    # away mid-run, so poll: stop it on timeout or as soon as the server dies.
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        while True:
            try:
                out_b, err_b = proc.communicate(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                why = None
                if not srv.alive():
                    why = "server died"
                elif time.monotonic() - t0 > timeout:
                    why = f"timeout after {timeout:.0f}s"
                if why:
                    proc.kill()
                    proc.communicate()
                    res.seconds = time.monotonic() - t0
                    res.error = why
                    return res
    finally:
        if proc.poll() is None:  # interrupted: do not leave it spinning
            proc.kill()
            proc.wait()
    res.seconds = time.monotonic() - t0
    out = out_b.decode(errors="replace")
    err = err_b.decode(errors="replace")
    parsed = parse_benchmark_output(out).get(test.upper())
    if proc.returncode != 0 or parsed is None:
        msg = " | ".join(
            ln.strip()
            for ln in (err + "\n" + out).splitlines()
            if ln.strip() and not ln.startswith('"test"')
        )
        res.error = f"redis-benchmark exit {proc.returncode}: {msg[-300:] or 'no parsable output'}"
        if parsed is None:
            return res
    assert parsed is not None
    res.columns = parsed
    res.rps = parsed.get("rps")
    res.p50_ms = parsed.get("p50_latency_ms")
    return res


def median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------


def populate(srv: Server, n: int, method: str, timeout: float) -> None:
    with Resp(srv.port, timeout=timeout) as c:
        if method == "debug":
            c.call("DEBUG", "POPULATE", n)
            return
        # Fallback: same keys/values as DEBUG POPULATE ("key:<i>" -> "value:<i>"),
        # written with pipelined MSETs of 1000 pairs.
        batch, window = 1000, 16
        pending = 0
        for start in range(0, n, batch):
            args: list[str | bytes | int] = ["MSET"]
            for i in range(start, min(start + batch, n)):
                args += [f"key:{i}", f"value:{i}"]
            c.send(*args)
            pending += 1
            if pending >= window:
                c.read_reply()
                pending -= 1
        while pending:
            c.read_reply()
            pending -= 1


def memory_snapshot(srv: Server) -> dict[str, Any]:
    snap: dict[str, Any] = {"pid": srv.pid}
    snap.update({k.lower(): v for k, v in read_proc_status(srv.pid).items()})
    try:
        with Resp(srv.port, timeout=10.0) as c:
            info = parse_info(c.call("INFO", "memory"))
            try:
                snap["dbsize"] = c.call("DBSIZE")
            except RespError:
                pass
    except (OSError, RespError, ValueError) as e:
        info = {}
        snap["info_error"] = str(e)
    for key in ("used_memory", "used_memory_rss"):
        if key in info and info[key].isdigit():
            snap[key] = int(info[key])
    return snap


def measure_memory(servers: list[Server], n: int, timeout: float) -> dict[str, Any]:
    redis, ackdb = servers
    result: dict[str, Any] = {"populate": n, "baseline": {}, "populated": {}}
    for srv in servers:
        result["baseline"][srv.name] = memory_snapshot(srv)
    # Populate ackdb first: if it refuses DEBUG POPULATE, both sides use the
    # MSET fallback so the comparison stays like for like.
    method = "debug"
    for srv in (ackdb, redis):
        t0 = time.monotonic()
        try:
            populate(srv, n, method, timeout)
        except RespError as e:
            if srv is not ackdb or method != "debug":
                raise
            log(f"[{srv.name}] DEBUG POPULATE refused ({e}); using MSET fallback on both")
            method = "mset"
            with Resp(srv.port, timeout=timeout) as c:
                c.call("FLUSHALL")
            populate(srv, n, method, timeout)
        log(f"[{srv.name}] populated {n} keys via {method} in {time.monotonic() - t0:.1f}s")
    time.sleep(0.5)  # let RSS settle (lazy frees, allocator background work)
    for srv in servers:
        result["populated"][srv.name] = memory_snapshot(srv)
    result["method"] = "DEBUG POPULATE" if method == "debug" else "MSET (key:i value:i)"
    r, a = result["populated"]["redis"], result["populated"]["ackdb"]
    for key in ("vmrss", "used_memory_rss"):
        if r.get(key) and a.get(key) is not None:
            result[f"ratio_{key}"] = a[key] / r[key]
    for name, snap in result["populated"].items():
        if snap.get("dbsize") not in (None, n):
            log(f"WARNING: {name} DBSIZE is {snap['dbsize']}, expected {n}")
    ratio = result.get("ratio_vmrss")
    result["target"] = MEMORY_TARGET
    result["pass"] = None if ratio is None else ratio <= MEMORY_TARGET
    return result


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def fmt_rps(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def mib(v: int | None) -> str:
    return "-" if v is None else f"{v / 2**20:,.1f}"


def print_throughput(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'test':<6} {'pipe':>4} {'redis req/s':>13} {'ackdb req/s':>13} "
        f"{'ratio':>6} {'target':>7} {'result':>6}   {'p50 redis':>9} {'p50 ackdb':>9} "
        f"{'spread':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        target = "-" if r["target"] is None else f">={r['target']:.2f}"
        print(
            f"{r['test']:<6} {r['pipeline']:>4} {fmt_rps(r['redis_rps']):>13} "
            f"{fmt_rps(r['ackdb_rps']):>13} {ratio:>6} {target:>7} {r['result']:>6}   "
            f"{fmt_ms(r['redis_p50_ms']):>9} {fmt_ms(r['ackdb_p50_ms']):>9} "
            f"{fmt_spread(r):>6}"
        )
    print(
        "(ratio = median over the repeats of the paired ratios ackdb/redis, the servers\n"
        " alternating run by run; req/s and p50 latency in ms are medians over the repeats;\n"
        " spread = (max-min)/median of req/s over the repeats, worse of the two servers)"
    )


def fmt_spread(row: dict[str, Any]) -> str:
    spreads = [row.get(f"{n}_spread") for n in ("redis", "ackdb")]
    vals = [v for v in spreads if v is not None]
    return f"{max(vals):.0%}" if vals else "-"


def print_memory(mem: dict[str, Any]) -> None:
    print()
    print(f"memory after {mem['method']} {mem['populate']:,} on fresh instances")
    head = f"{'server':<7} {'VmRSS MiB':>10} {'used_memory_rss MiB':>20} {'baseline VmRSS MiB':>19}"
    print(head)
    print("-" * len(head))
    for name in ("redis", "ackdb"):
        p, b = mem["populated"][name], mem["baseline"][name]
        print(
            f"{name:<7} {mib(p.get('vmrss')):>10} {mib(p.get('used_memory_rss')):>20} "
            f"{mib(b.get('vmrss')):>19}"
        )
    ratio = mem.get("ratio_vmrss")
    info_ratio = mem.get("ratio_used_memory_rss")
    verdict = "-" if mem["pass"] is None else ("PASS" if mem["pass"] else "MISS")
    print(
        f"ratio ackdb/redis VmRSS: {'-' if ratio is None else f'{ratio:.2f}x'}"
        f" (target <= {MEMORY_TARGET:.1f}x) {verdict}"
        f"; used_memory_rss ratio: {'-' if info_ratio is None else f'{info_ratio:.2f}x'}"
    )


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Compare ackdb against redis-server with redis-benchmark and RSS.",
    )
    p.add_argument(
        "--quick", action="store_true", help="~30 s smoke run (fewer requests, 1 repeat)"
    )
    p.add_argument("--tests", help=f"comma list from {','.join(ALL_TESTS)} (default: all)")
    p.add_argument("--pipelines", help="comma list of -P values (default: 1,16)")
    p.add_argument(
        "--requests",
        type=int,
        help=f"-n per run at pipeline 1 (default {DEFAULTS['requests']}, quick {QUICK['requests']})",
    )
    p.add_argument(
        "--requests-pipelined",
        type=int,
        help=f"-n per run at pipeline > 1 (default {DEFAULTS['requests_pipelined']}, "
        f"quick {QUICK['requests_pipelined']})",
    )
    p.add_argument("--repeat", type=int, help="runs per measurement, median taken (default 3)")
    p.add_argument("--populate", type=int, help="keys for the memory comparison (default 1000000)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory comparison")
    p.add_argument("--no-throughput", action="store_true", help="skip redis-benchmark runs")
    p.add_argument("--json", type=Path, help="write all figures to this JSON file")
    p.add_argument("--start-timeout", type=float, default=30.0, help="seconds to wait for PING")
    p.add_argument(
        "--run-timeout", type=float, default=120.0, help="timeout per redis-benchmark run (s)"
    )
    p.add_argument(
        "--max-time",
        type=float,
        default=900.0,
        help="overall budget in seconds; remaining runs are skipped after it (default 900)",
    )
    p.add_argument(
        "--ackdb-src",
        help="the ackdb to measure (default: this tree's src/; build/compiled for the "
        "compiled build scripts/test-setup.sh makes)",
    )
    # Hidden: override the command lines (e.g. --ackdb-cmd 'redis-server
    # --enable-debug-command yes' to exercise the harness before ackdb works).
    p.add_argument("--ackdb-cmd", help=argparse.SUPPRESS)
    p.add_argument("--redis-cmd", default="redis-server", help=argparse.SUPPRESS)
    p.add_argument("--benchmark-cmd", default="redis-benchmark", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    for key, default in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, QUICK.get(key, default) if args.quick else default)
    tests = [t.strip().upper() for t in args.tests.split(",") if t.strip()]
    bad = [t for t in tests if t not in ALL_TESTS]
    if bad or not tests:
        p.error(f"unknown test(s) {bad}; choose from {','.join(ALL_TESTS)}")
    args.tests = tests
    try:
        args.pipelines = [int(x) for x in args.pipelines.split(",") if x.strip()]
    except ValueError:
        p.error("--pipelines must be a comma list of integers")
    if not args.pipelines or min(args.pipelines) < 1:
        p.error("--pipelines values must be >= 1")
    for key in ("requests", "requests_pipelined", "repeat", "populate"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1")
    return args


def tool_version(cmd: list[str]) -> str:
    try:
        cp = subprocess.run([*cmd, "--version"], capture_output=True, timeout=10, check=False)
        return cp.stdout.decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    old_handlers = {
        sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGTERM, signal.SIGHUP)
    }
    t_start = time.monotonic()
    deadline = t_start + args.max_time

    redis_cmd = shlex.split(args.redis_cmd)
    bench_cmd = shlex.split(args.benchmark_cmd)
    if args.ackdb_cmd:
        ackdb_cmd = shlex.split(args.ackdb_cmd)
    else:
        ackdb_cmd = [sys.executable, "-m", "ackdb", "server"]
    for cmd in (redis_cmd, bench_cmd, ackdb_cmd):
        if not cmd or shutil.which(cmd[0]) is None:
            log(f"error: command not found: {cmd[0] if cmd else '(empty)'}")
            return EXIT_START_FAILED

    # Run ackdb from this working tree (or --ackdb-src) even if another copy is installed.
    ackdb_src = str(Path(args.ackdb_src).resolve()) if args.ackdb_src else str(REPO_ROOT / "src")
    ackdb_env = dict(os.environ)
    ackdb_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ackdb_src, os.environ.get("PYTHONPATH", "")) if p
    )
    build = subprocess.run(
        [sys.executable, "-c", "from ackdb.compiled import build_kind; print(build_kind())"],
        env=ackdb_env, capture_output=True, text=True, check=False,
    ).stdout.strip() or "?"  # fmt: skip
    log(f"ackdb from {ackdb_src} (build={build})")

    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
        },
        "config": {
            "tests": args.tests,
            "pipelines": args.pipelines,
            "requests": args.requests,
            "requests_pipelined": args.requests_pipelined,
            "repeat": args.repeat,
            "clients": CLIENTS,
            "keyspace": KEYSPACE,
            "populate": args.populate,
            "quick": args.quick,
            "redis_cmd": redis_cmd,
            "ackdb_cmd": ackdb_cmd,
            "benchmark_cmd": bench_cmd,
            "redis_benchmark_version": tool_version(bench_cmd),
            "redis_server_version": tool_version(redis_cmd),
        },
        "targets": {
            "ratio_min_by_pipeline": {str(k): v for k, v in RATIO_TARGETS.items()},
            "memory_ratio_max": MEMORY_TARGET,
        },
        "runs": [],
        "throughput": [],
        "memory": None,
        "errors": [],
    }
    exit_code = EXIT_OK

    with tempfile.TemporaryDirectory(prefix="ackdb-bench-") as tmp:
        workdir = Path(tmp)
        # DEBUG is disabled by default in redis 7; ackdb gets the plain flags.
        redis = Server("redis", [*redis_cmd, "--enable-debug-command", "yes"], workdir)
        ackdb = Server("ackdb", ackdb_cmd, workdir, env=ackdb_env)
        servers = [redis, ackdb]
        try:
            if not args.no_throughput:
                exit_code = max(
                    exit_code, run_throughput(args, servers, bench_cmd, report, deadline)
                )
                for srv in servers:
                    srv.stop()
            if not args.no_memory:
                if time.monotonic() > deadline:
                    report["errors"].append("memory comparison skipped: --max-time exceeded")
                else:
                    # Fresh instances, so the benchmark keyspace does not count.
                    log(f"memory: fresh instances, populating {args.populate:,} keys each")
                    start_pair(servers, args.start_timeout, generation=2)
                    timeout = max(60.0, min(600.0, deadline - time.monotonic()))
                    try:
                        report["memory"] = measure_memory(servers, args.populate, timeout)
                    except (OSError, RespError, ValueError) as e:
                        msg = f"memory comparison failed: {type(e).__name__}: {e}"
                        log(msg)
                        report["errors"].append(msg)
                        if not all(s.alive() for s in servers):
                            exit_code = max(exit_code, EXIT_SERVER_DIED)
        except StartError as e:
            log(f"error: {e}")
            report["errors"].append(f"start failed: {e}")
            exit_code = EXIT_START_FAILED
        except KeyboardInterrupt:
            log("interrupted (Ctrl-C); stopping servers")
            report["errors"].append("interrupted")
            exit_code = 130
        except Interrupted as e:
            log(f"interrupted ({e}); stopping servers")
            report["errors"].append(f"interrupted by {e}")
            exit_code = 128 + e.signum
        finally:
            # Ignore further Ctrl-C / SIGTERM while cleaning up.
            prev_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            for sig in old_handlers:
                signal.signal(sig, signal.SIG_IGN)
            try:
                for srv in servers:
                    try:
                        srv.stop()
                    except Exception as e:  # never let cleanup of one block the other
                        log(f"[{srv.name}] stop failed: {e}")
            finally:
                signal.signal(signal.SIGINT, prev_int)
                for sig, h in old_handlers.items():
                    signal.signal(sig, h)

    report["host"]["loadavg_end"] = os.getloadavg()
    report["elapsed_s"] = round(time.monotonic() - t_start, 1)
    report["exit_code"] = exit_code

    print()
    if report["throughput"]:
        print_throughput(report["throughput"])
    if report["memory"]:
        print_memory(report["memory"])
    for err in report["errors"]:
        print(f"NOTE: {err}")
    cpus = report["host"]["cpus"] or 1
    # Only the load before we started anything: our own run keeps ~2 CPUs busy.
    if report["host"]["loadavg_start"][0] > cpus / 2:
        print(
            "WARNING: the machine was already busy at start (1-min load average above half "
            "the CPUs); "
            "throughput figures are noisy - rerun on an idle machine before trusting them"
        )
    print(
        f"\nelapsed {report['elapsed_s']:.0f}s; load average at start "
        f"{report['host']['loadavg_start'][0]:.2f}, at end {report['host']['loadavg_end'][0]:.2f}"
        f" ({report['host']['cpus']} CPUs)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return exit_code


def run_throughput(
    args: argparse.Namespace,
    servers: list[Server],
    bench_cmd: list[str],
    report: dict[str, Any],
    deadline: float,
) -> int:
    exit_code = EXIT_OK
    start_pair(servers, args.start_timeout, generation=1)
    for srv in servers:
        report["config"][f"{srv.name}_info_server"] = {
            k: srv.info_server[k]
            for k in ("redis_version", "ackdb_version", "process_id", "multiplexing_api")
            if k in srv.info_server
        }
    total = len(args.pipelines) * len(args.tests) * args.repeat * len(servers)
    done = 0
    runs: list[RunResult] = []
    for pipeline in args.pipelines:
        n = args.requests if pipeline == 1 else args.requests_pipelined
        for test in args.tests:
            for rep in range(args.repeat):
                # Alternate the servers run by run: redis, ackdb, redis, ackdb...
                for srv in servers:
                    done += 1
                    if srv.dead:
                        res = RunResult(srv.name, test, pipeline, rep, n, error="server died")
                    elif time.monotonic() > deadline:
                        res = RunResult(
                            srv.name, test, pipeline, rep, n, error="skipped: --max-time"
                        )
                    else:
                        timeout = min(args.run_timeout, max(5.0, deadline - time.monotonic()))
                        res = run_benchmark(bench_cmd, srv, test, pipeline, n, rep, timeout)
                        if not srv.alive():
                            srv.dead = True
                            code = srv.proc.returncode if srv.proc else None
                            msg = f"{srv.name} died during {test} -P {pipeline} (status {code})"
                            log(f"ERROR: {msg}\n{srv.log_tail()}")
                            report["errors"].append(msg)
                            exit_code = EXIT_SERVER_DIED
                            res.error = res.error or "server died"
                    runs.append(res)
                    status = f"{fmt_rps(res.rps)} req/s" if res.rps is not None else res.error
                    log(
                        f"[{done:>3}/{total}] {srv.name:<5} {test:<4} -P {pipeline:<2} "
                        f"-n {n} rep {rep + 1}: {status} ({res.seconds:.1f}s)"
                    )
    report["runs"] = [vars(r) for r in runs]

    for pipeline in args.pipelines:
        for test in args.tests:
            row: dict[str, Any] = {"test": test, "pipeline": pipeline}
            for srv in servers:
                mine = [
                    r
                    for r in runs
                    if r.server == srv.name and r.test == test and r.pipeline == pipeline
                ]
                row[f"{srv.name}_rps"] = median([r.rps for r in mine])
                row[f"{srv.name}_p50_ms"] = median([r.p50_ms for r in mine])
                row[f"{srv.name}_rps_all"] = [r.rps for r in mine]
                row[f"{srv.name}_errors"] = [r.error for r in mine if r.error]
                vals = [r.rps for r in mine if r.rps is not None]
                row[f"{srv.name}_spread"] = (
                    (max(vals) - min(vals)) / statistics.median(vals) if len(vals) > 1 else None
                )
            rr, ar = row["redis_rps"], row["ackdb_rps"]
            row["ratio_of_medians"] = ar / rr if rr and ar is not None else None
            # Runs alternate redis, ackdb, redis, ackdb...: run i of each is a pair.
            pairs = [
                a / r
                for r, a in zip(row["redis_rps_all"], row["ackdb_rps_all"], strict=False)
                if r and a
            ]
            row["paired_ratios"] = pairs
            row["ratio"] = statistics.median(pairs) if pairs else None
            row["target"] = RATIO_TARGETS.get(pipeline)
            if row["ratio"] is None:
                row["result"] = "ERROR"
            elif row["target"] is None:
                row["result"] = "-"
            else:
                row["result"] = "PASS" if row["ratio"] >= row["target"] else "MISS"
            report["throughput"].append(row)
    return exit_code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before any server was started, or during the report
        log("interrupted")
        sys.exit(130)
    except Interrupted as e:
        log(f"interrupted ({e})")
        sys.exit(128 + e.signum)
