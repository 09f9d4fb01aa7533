#!/usr/bin/env python3
"""Proxy endpoint benchmark (issue 14 item 8): redis-benchmark through ``ackdb proxy``
against directly to one shard process and against one redis-server, side by side.

Targets (ratios printed; targets in brackets):
- through the proxy of a 1-shard database / directly to that shard: ``-P 1`` [>= 0.8x],
  ``-P 16`` [>= 0.5x];
- the same through the proxy of a 3-shard database (keys spread over the shards);
- the direct shard / redis-server, for context;
- p50 latency the proxy adds at ``-P 1`` (redis-benchmark's p50, proxy minus direct)
  [<= 100 us], at 50 clients (where it follows the throughput: 50 requests queue on two
  shared cores) and at one client (``-c 1``, ``--requests / 5`` requests: the hop's own
  cost, the median of the rounds' paired differences);
- CPU microseconds per request of the proxy and of the shard process, through the proxy
  and direct (from ``/proc/<pid>/stat``): load-independent, it says what each hop costs
  where the throughput ratios say what two shared cores give.

Each round runs every target once for SET and GET at -P 1 and -P 16 (``redis-benchmark
-t set,get -c 50 -n N -r 100000 -d 16 --csv``; ``-n`` is 4x N at -P 16), in an order that
rotates every round, so the targets' runs are paired; rates are medians over the
``--rounds`` rounds, ratios medians of the rounds' paired ratios. The load average before
and after each round and the RSS of every process at the end are printed. The shards run with ``requirepass`` (the shard password
from a fresh cluster secret), as the node's supervisor starts them; the proxy reads the
topology from a file.

- twemproxy (``nutcracker``, when installed: ``apt-get install nutcracker``) in front of the
  redis-server, against that redis-server: a C proxy's ratio on the same machine in the
  same rounds, which calibrates the targets (they quote twemproxy's 4-6% loss, measured
  with the client on another machine). Skipped with a note when it is not installed.
- ``--pin-client``: redis-benchmark runs on CPU 0 and every server process on the other
  CPUs, as a client on another machine would leave them. Without it the kernel places the
  three processes of a proxied run (client, proxy, shard) on two cores as it likes, and a
  run's ratio follows where it put them (docs/performance.md, sixth pass).
- ``redis-benchmark --cluster`` through the cluster API of a 3-shard database on three
  "nodes" (loopback hosts 127.0.0.1, .2, .3, one proxy each on the database's port, shard i's
  primary on node i), against the one proxy of the 3-shard database (``cl3/p3``): the
  client spreads its keys over the three endpoints by slot, each endpoint serving its own.

A report, not a test: exit 0 even when a target is missed (2: a tool is missing; 3: a
process failed to start). Progress on stderr, the table on stdout.

Usage: python3 bench/cluster_bench.py [--requests 100000] [--rounds 5] [--json FILE]
       [--ackdb-src build/compiled] [--pin-client]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from ackdb.cluster.databases import (  # noqa: E402
    Database,
    DbType,
    Instance,
    Persistence,
    Shard,
    Topology,
    slot_ranges,
)
from ackdb.node.secrets import new_secret, shard_password, write_secret  # noqa: E402

CLIENTS = 50
KEYSPACE = 100_000
VALUE_BYTES = 16
PIPELINES = (1, 16)
TESTS = ("SET", "GET")
START_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 900.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port_on(hosts: list[str]) -> int:
    """A port free on every one of ``hosts`` (every node's endpoint uses the same)."""
    for _ in range(100):
        port = free_port(hosts[0])
        try:
            for h in hosts[1:]:
                with socket.socket() as s:
                    s.bind((h, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free on every host")


def wait_port(port: int, proc: subprocess.Popen[bytes], host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                if s.recv(64):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers on port {port}")


class World:
    """Every process of the benchmark, stopped in ``close``."""

    def __init__(self, root: Path, ackdb_src: str, server_cpus: set[int] | None = None) -> None:
        self.root = root
        self.server_cpus = server_cpus
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        secret_file = root / "secret"
        write_secret(str(secret_file), new_secret())
        self.secret_file = secret_file
        from ackdb.node.secrets import read_secret

        self.password = shard_password(read_secret(str(secret_file)))
        self.env = dict(os.environ, PYTHONPATH=ackdb_src)

    def spawn(self, name: str, argv: list[str], port: int, host: str = "127.0.0.1") -> int:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.procs[name] = proc
        if self.server_cpus is not None:
            os.sched_setaffinity(proc.pid, self.server_cpus)
        wait_port(port, proc, host)
        return port

    def shard(self, name: str, host: str = "127.0.0.1") -> int:
        port = free_port(host)
        d = self.root / name
        d.mkdir()
        conf = d / "shard.conf"
        conf.write_text(
            f"port {port}\nbind {host}\ndir {d}\nrequirepass {self.password}\n"
            'save ""\nappendonly no\n'
        )
        argv = [sys.executable, "-m", "ackdb", "server", str(conf)]
        return self.spawn(name, argv, port, host)

    def cluster_database(self, name: str, nodes: int) -> int:
        """The endpoint port of a database with the cluster API over ``nodes`` nodes
        (loopback hosts 127.0.0.1...), one shard primary and one proxy per node."""
        hosts = [f"127.0.0.{i + 1}" for i in range(nodes)]
        ports = [self.shard(f"{name}-shard{i}", hosts[i]) for i in range(nodes)]
        endpoint = free_port_on(hosts)
        db = Database(
            name, 1, DbType.SHARDED, endpoint, False, 0, Persistence.NONE, "", True,
            tuple(
                Shard(i, a, b, 1, Instance(f"n{i}", ports[i]), ())
                for i, (a, b) in enumerate(slot_ranges(nodes))
            ),
        )  # fmt: skip
        for i, host in enumerate(hosts):
            topo = Topology(1, db, {f"n{j}": h for j, h in enumerate(hosts)}, f"n{i}")
            topo_file = self.root / f"{name}-n{i}.topology"
            topo_file.write_bytes(topo.to_bytes())
            argv = [
                sys.executable, "-m", "ackdb", "proxy", "--db", name, "--bind", host,
                "--port", str(endpoint), "--topology-file", str(topo_file),
                "--secret-file", str(self.secret_file),
            ]  # fmt: skip
            self.spawn(f"{name}-proxy{i}", argv, endpoint, host)
        return endpoint

    def database(self, name: str, shards: int) -> tuple[int, list[int]]:
        """(endpoint port, shard ports) of a database of ``shards`` shards."""
        ports = [self.shard(f"{name}-shard{i}") for i in range(shards)]
        endpoint = free_port()
        db = Database(
            name,
            1,
            DbType.SHARDED,
            endpoint,
            False,
            0,
            Persistence.NONE,
            "",
            False,
            tuple(
                Shard(i, a, b, 1, Instance("n1", ports[i]), ())
                for i, (a, b) in enumerate(slot_ranges(shards))
            ),
        )
        topo_file = self.root / f"{name}.topology"
        topo_file.write_bytes(Topology(1, db, {"n1": "127.0.0.1"}, "n1").to_bytes())
        argv = [
            sys.executable, "-m", "ackdb", "proxy", "--db", name, "--bind", "127.0.0.1",
            "--port", str(endpoint), "--topology-file", str(topo_file),
            "--secret-file", str(self.secret_file),
        ]  # fmt: skip
        self.spawn(f"{name}-proxy", argv, endpoint)
        return endpoint, ports

    def redis(self) -> int:
        port = free_port()
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.root)]
        return self.spawn("redis", argv, port)

    def twemproxy(self, redis_port: int) -> int:
        """A twemproxy (nutcracker) in front of the redis-server on ``redis_port``: one
        connection to it, as the proxy's shared connection to a shard."""
        port, stats = free_port(), free_port()
        conf = self.root / "twemproxy.yml"
        conf.write_text(
            f"bench:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n"
            f"  redis: true\n  server_connections: 1\n  servers:\n"
            f"   - 127.0.0.1:{redis_port}:1\n"
        )
        argv = ["nutcracker", "-c", str(conf), "-a", "127.0.0.1", "-s", str(stats)]
        argv += ["-o", str(self.root / "twemproxy.log")]
        return self.spawn("twemproxy", argv, port)

    def rss_kib(self) -> dict[str, int]:
        out = {}
        for name, p in self.procs.items():
            try:
                for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[name] = int(line.split()[1])
            except OSError:
                pass
        return out

    def cpu_s(self, name: str) -> float:
        """CPU seconds (user + system) process ``name`` has used so far."""
        fields = Path(f"/proc/{self.procs[name].pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def bench(
    port: int,
    pipeline: int,
    requests: int,
    password: str | None,
    cluster: bool = False,
    clients: int = CLIENTS,
    client_cpu: int | None = None,
) -> dict[str, Any]:
    n = requests * (4 if pipeline > 1 else 1)
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients)]
    if client_cpu is not None:
        argv = ["taskset", "-c", str(client_cpu), *argv]
    if cluster:
        argv.append("--cluster")
    argv += ["-n", str(n), "-r", str(KEYSPACE), "-d", str(VALUE_BYTES), "-P", str(pipeline)]
    argv += ["-t", ",".join(t.lower() for t in TESTS), "--csv"]
    if password:
        argv += ["-a", password]
    out = subprocess.run(argv, capture_output=True, timeout=RUN_TIMEOUT_S, check=True)
    text = out.stdout.decode()
    if cluster:  # --cluster prints the masters it found before the CSV
        text = text[text.index('"test"') :]
    rows = list(csv.reader(io.StringIO(text)))
    head, body = rows[0], rows[1:]
    result = {}
    for row in body:
        rec = dict(zip(head, row, strict=False))
        result[rec["test"]] = {"rps": float(rec["rps"]), "p50_ms": float(rec["p50_latency_ms"])}
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=100_000, help="per run at -P 1")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="write every run's figures here")
    ap.add_argument(
        "--pin-client",
        action="store_true",
        help="redis-benchmark on CPU 0, every server process on the other CPUs",
    )
    ap.add_argument(
        "--ackdb-src",
        default=str(REPO / "src"),
        help="the ackdb to run (default: this tree's src/; build/compiled for the compiled "
        "build scripts/test-setup.sh makes)",
    )
    args = ap.parse_args()
    if shutil.which("redis-benchmark") is None or shutil.which("redis-server") is None:
        print("redis-benchmark and redis-server are needed", file=sys.stderr)
        return 2
    cpus = os.sched_getaffinity(0)
    if args.pin_client and (0 not in cpus or len(cpus) < 2):
        print("--pin-client needs CPU 0 and one more", file=sys.stderr)
        return 2
    client_cpu = 0 if args.pin_client else None
    root = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    world = World(
        root, str(Path(args.ackdb_src).resolve()), cpus - {0} if args.pin_client else None
    )
    twem = shutil.which("nutcracker") is not None
    runs: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    loads: list[tuple[float, float]] = []
    try:
        try:
            p1, (shard1,) = world.database("one", 1)
            p3, _ = world.database("three", 3)
            cluster_port = world.cluster_database("cl3", 3)
            redis_port = world.redis()
            twem_port = world.twemproxy(redis_port) if twem else None
        except RuntimeError as e:
            print(f"start failed: {e}", file=sys.stderr)
            return 3
        targets = [
            ("proxy-1shard", p1, None, False),
            ("direct-shard", shard1, world.password, False),
            ("proxy-3shard", p3, None, False),
            ("cluster-3", cluster_port, None, True),
            ("redis", redis_port, None, False),
        ]
        if twem_port is not None:
            targets.append(("twemproxy", twem_port, None, False))
        # CPU per request of the 1-shard database's processes, through the proxy and
        # direct: what each hop costs, whatever else the machine runs.
        cpu: dict[tuple[str, int], list[tuple[float, float]]] = {}
        one = ("one-proxy", "one-shard0")
        twem_cpu: dict[int, list[float]] = {}
        one_client: dict[tuple[str, str], list[float]] = {}
        for rnd in range(args.rounds):
            order = targets[rnd % len(targets) :] + targets[: rnd % len(targets)]
            before = os.getloadavg()[0]
            for pipeline in PIPELINES:
                for name, port, pw, cluster in order:
                    c0 = [world.cpu_s(p) for p in one]
                    t0 = world.cpu_s("twemproxy") if name == "twemproxy" else 0.0
                    res = bench(port, pipeline, args.requests, pw, cluster, client_cpu=client_cpu)
                    reqs = args.requests * (4 if pipeline > 1 else 1) * len(TESTS) / 1e6
                    if name in ("proxy-1shard", "direct-shard"):
                        used = [(world.cpu_s(p) - c) / reqs for p, c in zip(one, c0, strict=True)]
                        cpu.setdefault((name, pipeline), []).append((used[0], used[1]))
                    elif name == "twemproxy":
                        twem_cpu.setdefault(pipeline, []).append((world.cpu_s(name) - t0) / reqs)
                    for test, fig in res.items():
                        runs.setdefault((name, test, pipeline), []).append(fig)
                    print(f"round {rnd + 1} -P {pipeline} {name}: {res}", file=sys.stderr)
            # One client: the latency the hop itself adds, not the queueing of 50 clients
            # on two shared cores.
            for name, port, pw, _ in order:
                if name in ("proxy-1shard", "direct-shard"):
                    res = bench(port, 1, args.requests // 5, pw, clients=1, client_cpu=client_cpu)
                    for test, fig in res.items():
                        one_client.setdefault((name, test), []).append(fig["p50_ms"])
                    print(f"round {rnd + 1} -c 1 {name}: {res}", file=sys.stderr)
            loads.append((before, os.getloadavg()[0]))
        print("client: " + ("redis-benchmark on CPU 0, the servers on CPUs "
              + ",".join(map(str, sorted(cpus - {0}))) if args.pin_client
              else "unpinned (the kernel places client and servers)"))  # fmt: skip
        report(runs, loads, world.rss_kib())
        report_cpu(cpu, twem_cpu)
        report_one_client(one_client)
        if args.json:
            Path(args.json).write_text(
                json.dumps({f"{k[0]} {k[1]} P{k[2]}": v for k, v in runs.items()}, indent=1)
            )
    finally:
        world.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _median(runs: list[dict[str, float]], field: str) -> float:
    return statistics.median(r[field] for r in runs)


def report(
    runs: dict[tuple[str, str, int], list[dict[str, float]]],
    loads: list[tuple[float, float]],
    rss: dict[str, int],
) -> None:
    twem = any(k[0] == "twemproxy" for k in runs)
    print(f"{'test':<6}{'-P':>4}{'proxy-1':>12}{'direct':>12}{'proxy-3':>12}{'cluster-3':>12}"
          f"{'redis':>12}{'p1/dir':>9}{'p3/dir':>9}{'cl3/p3':>9}{'dir/redis':>10}{'target':>9}"
          f"{'+p50 us':>9}" + (f"{'twem':>12}{'tw/redis':>9}" if twem else ""))  # fmt: skip
    for test in TESTS:
        for pipeline in PIPELINES:
            rps = {n: _median(runs[(n, test, pipeline)], "rps") for n in
                   ("proxy-1shard", "direct-shard", "proxy-3shard", "cluster-3",
                    "redis")}  # fmt: skip
            p50 = {n: _median(runs[(n, test, pipeline)], "p50_ms") for n in
                   ("proxy-1shard", "direct-shard")}  # fmt: skip
            direct = rps["direct-shard"]
            target = 0.8 if pipeline == 1 else 0.5
            added = (p50["proxy-1shard"] - p50["direct-shard"]) * 1000
            pairs = [("proxy-1shard", "direct-shard"), ("proxy-3shard", "direct-shard"),
                     ("cluster-3", "proxy-3shard"), ("direct-shard", "redis")]  # fmt: skip
            r = [_paired(runs, a, b, test, pipeline) for a, b in pairs]
            print(
                f"{test:<6}{pipeline:>4}{rps['proxy-1shard']:>12.0f}{direct:>12.0f}"
                f"{rps['proxy-3shard']:>12.0f}{rps['cluster-3']:>12.0f}{rps['redis']:>12.0f}"
                f"{r[0]:>9.2f}{r[1]:>9.2f}{r[2]:>9.2f}{r[3]:>10.2f}{'>=' + str(target):>9}"
                f"{added if pipeline == 1 else float('nan'):>9.0f}"
                + (_twem_columns(runs, test, pipeline) if twem else "")
            )
    print("req/s: medians over the rounds; ratios: medians of the rounds' paired ratios (each "
          "round runs every target once, in rotating order)")  # fmt: skip
    print("+p50 us: proxy-1shard minus direct-shard at 50 clients, where 50 requests queue on "
          "shared cores and it follows the throughput; the hop's own cost, which the <= 100 us "
          "target is about, is measured at one client below")  # fmt: skip
    if twem:
        print("tw/redis: twemproxy in front of the redis-server / that redis-server, the "
              "same rounds (a C proxy's ratio on this machine)")  # fmt: skip
    else:
        print("twemproxy: not installed (apt-get install nutcracker), its columns left out")
    print("load average (1 min) before / after each round: "
          + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in loads))  # fmt: skip
    print("RSS (KiB): " + ", ".join(f"{k} {v}" for k, v in sorted(rss.items())))


def _paired(
    runs: dict[tuple[str, str, int], list[dict[str, float]]],
    a: str,
    b: str,
    test: str,
    pipeline: int,
) -> float:
    """The median over the rounds of target ``a``'s rate / target ``b``'s in that round."""
    pairs = zip(runs[(a, test, pipeline)], runs[(b, test, pipeline)], strict=True)
    return statistics.median(x["rps"] / y["rps"] for x, y in pairs)


def _twem_columns(
    runs: dict[tuple[str, str, int], list[dict[str, float]]], test: str, pipeline: int
) -> str:
    """twemproxy's rate and its paired ratio to the redis-server behind it."""
    tw = _median(runs[("twemproxy", test, pipeline)], "rps")
    return f"{tw:>12.0f}{_paired(runs, 'twemproxy', 'redis', test, pipeline):>9.2f}"


def report_one_client(one_client: dict[tuple[str, str], list[float]]) -> None:
    """p50 with one client (``-c 1 -P 1``): what the proxy's hop adds to a request's
    latency, as the median of the rounds' paired differences."""
    print("p50 at one client (-c 1 -P 1), us: direct / through the proxy / added:")
    for test in TESTS:
        direct = one_client[("direct-shard", test)]
        via = one_client[("proxy-1shard", test)]
        added = statistics.median((v - d) * 1000 for v, d in zip(via, direct, strict=True))
        print(
            f"  {test}: {statistics.median(direct) * 1000:.0f} / "
            f"{statistics.median(via) * 1000:.0f} / {added:.0f}"
        )


def report_cpu(
    cpu: dict[tuple[str, int], list[tuple[float, float]]], twem: dict[int, list[float]]
) -> None:
    """CPU microseconds per request (SET and GET together) of the 1-shard database's
    proxy and shard processes, medians over the rounds: load-independent, unlike the
    throughput -- on this 2-core machine redis-benchmark, the proxy and the shard share
    two cores, so the proxy's ratio is bounded by the CPU the whole path needs."""
    print("CPU us per request (median; proxy + shard = path):")
    for pipeline in PIPELINES:
        via = cpu[("proxy-1shard", pipeline)]
        direct = cpu[("direct-shard", pipeline)]
        px = statistics.median(v[0] for v in via)
        sh = statistics.median(v[1] for v in via)
        d = statistics.median(v[1] for v in direct)
        print(f"  -P {pipeline}: through the proxy {px:.2f} + {sh:.2f} = {px + sh:.2f}; "
              f"direct {d:.2f}; path / direct {(px + sh) / d:.2f}"
              + (f"; twemproxy {statistics.median(twem[pipeline]):.2f}" if pipeline in twem
                 else ""))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
