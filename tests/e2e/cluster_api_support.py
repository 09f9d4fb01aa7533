"""A sharded database behind several endpoints, without the cluster: one ``ackdb server``
per shard and one ``ackdb proxy`` per "node", each node on its own loopback host
(127.0.0.1, .2, .3) with the database's port, each proxy reading its own topology file
(the same database; ``node`` differs). Shard i's primary runs on node i."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import wait_until

from ackdb.cluster.databases import (
    Database,
    DbType,
    Instance,
    Persistence,
    Shard,
    Topology,
    slot_ranges,
)

START_TIMEOUT_S = 20.0


def host_of(i: int) -> str:
    return f"127.0.0.{i + 1}"


def answers_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def port_free_on(hosts: list[str]) -> int:
    """A port free on every one of ``hosts``."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = int(s.getsockname()[1])
        try:
            for h in hosts[1:]:
                with socket.socket() as s:
                    s.bind((h, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free on every host")


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start(argv: list[str], host: str, port: int, log: Path, cwd: Path) -> Process:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    p = Process(proc, host, port, log)
    try:
        wait_until(lambda: answers_ping(host, port) or proc.poll() is not None, START_TIMEOUT_S)
    except TimeoutError:
        p.stop()
        raise
    if proc.poll() is not None:
        raise RuntimeError(f"{argv[3]} exited at start:\n{log.read_text(errors='replace')}")
    return p


@dataclass
class ShardedDb:
    """Shards and endpoints of one database; ``endpoints[i]`` is node i's."""

    port: int
    shards: list[Process] = field(default_factory=list)
    endpoints: list[Process] = field(default_factory=list)
    topologies: list[Topology] = field(default_factory=list)

    def stop(self) -> None:
        for p in self.endpoints + self.shards:
            p.stop()


def start_db(base: Path, nodes: int = 3, cluster_api: bool = True) -> ShardedDb:
    hosts = [host_of(i) for i in range(nodes)]
    db_port = port_free_on(hosts)
    out = ShardedDb(db_port)
    try:
        shards = []
        for i, (first, last) in enumerate(slot_ranges(nodes)):
            port = port_free_on([hosts[i]])
            d = base / f"shard{i}"
            d.mkdir()
            argv = [sys.executable, "-m", "ackdb", "server", "--port", str(port)]
            argv += ["--bind", hosts[i], "--save", "", "--appendonly", "no"]
            out.shards.append(start(argv, hosts[i], port, d / "log", d))
            shards.append(Shard(i, first, last, 1, Instance(f"n{i}", port), ()))
        db = Database(
            "default", 1, DbType.SHARDED, db_port, False, 0, Persistence.NONE, "",
            cluster_api, tuple(shards),
        )  # fmt: skip
        for i in range(nodes):
            topo = Topology(1, db, {f"n{j}": hosts[j] for j in range(nodes)}, f"n{i}")
            out.topologies.append(topo)
            d = base / f"node{i}"
            d.mkdir()
            (d / "topology").write_bytes(topo.to_bytes())
            argv = [sys.executable, "-m", "ackdb", "proxy", "--db", "default"]
            argv += ["--bind", hosts[i], "--port", str(db_port)]
            argv += ["--topology-file", str(d / "topology")]
            out.endpoints.append(start(argv, hosts[i], db_port, d / "log", d))
    except BaseException:
        out.stop()
        raise
    return out
