"""A leaderless database on loopback for tests: three ``ackdb server`` replicas
(``appendfsync always``, requirepass = the shard password of a cluster secret) and
coordinators (``ackdb coordinator --topology-file``), one per node id."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

from ackdb.cluster.databases import Database, DbType, Instance, Persistence, Shard, Topology
from ackdb.cluster.schema import Collection
from ackdb.node.secrets import new_secret, read_secret, shard_password, write_secret
from conftest import ServerProcess, ackdb_argv, free_port

NODES = ("n1", "n2", "n3")


class LLDb:
    def __init__(self, root: Path, password_sha256: str = "") -> None:
        self.root = root
        self.secret_file = root / "secret"
        write_secret(str(self.secret_file), new_secret())
        self.shard_password = shard_password(read_secret(str(self.secret_file)))
        self.ports = [free_port() for _ in NODES]
        self.replicas: list[ServerProcess | None] = [None] * len(NODES)
        self.coords: dict[str, ServerProcess] = {}
        self.coord_ports: dict[str, int] = {}
        self.version = 1
        self.password_sha256 = password_sha256
        self.levels = ("QUORUM", "QUORUM")
        self.schema: tuple[int, tuple[Collection, ...]] = (0, ())
        for i in range(len(NODES)):
            self.start_replica(i)

    def db(self, port: int) -> Database:
        insts = [Instance(n, p) for n, p in zip(NODES, self.ports, strict=True)]
        shard = Shard(0, 0, 16383, 1, insts[0], tuple(insts[1:]))
        return Database(
            name="ll",
            uid=7,
            type=DbType.LEADERLESS,
            port=port,
            replication=True,
            replicas=len(NODES) - 1,
            persistence=Persistence.AOF_ALWAYS,
            password_sha256=self.password_sha256,
            cluster_api=False,
            shards=(shard,),
            read_consistency=self.levels[0],
            write_consistency=self.levels[1],
            schema_version=self.schema[0],
            collections=self.schema[1],
        )

    def topology_file(self, node: str) -> Path:
        return self.root / f"topology-{node}"

    def write_topology(self, node: str) -> None:
        topo = self.topology(node)
        tmp = self.root / f"topology-{node}.tmp"
        tmp.write_bytes(topo.to_bytes())
        tmp.replace(self.topology_file(node))

    def publish(self) -> None:
        """A new topology version to every coordinator."""
        self.version += 1
        for node in self.coords:
            self.write_topology(node)

    def start_replica(self, i: int) -> None:
        d = self.root / f"r{i}"
        d.mkdir(exist_ok=True)
        argv = ackdb_argv(self.ports[i], "--dir", str(d), "--requirepass", self.shard_password)
        argv[argv.index("--appendonly") + 1] = "yes"
        argv += ["--appendfsync", "always"]
        self.replicas[i] = ServerProcess(argv, self.ports[i], d, f"r{i}")

    def kill_replica(self, i: int) -> None:
        p = self.replicas[i]
        assert p is not None
        p.stop(signal.SIGKILL)
        self.replicas[i] = None

    def replica(self, i: int) -> Any:
        import redis

        return redis.Redis(port=self.ports[i], password=self.shard_password, socket_timeout=10)

    def topology(self, node: str) -> Topology:
        port = self.coord_ports.setdefault(node, free_port())
        return Topology(self.version, self.db(port), dict.fromkeys(NODES, "127.0.0.1"), node)

    def start_coordinator(self, node: str, *extra: str, meta: str = "") -> ServerProcess:
        port = self.coord_ports.get(node) or free_port()
        self.coord_ports[node] = port
        self.write_topology(node)
        source = ["--meta", meta] if meta else ["--topology-file", str(self.topology_file(node))]
        argv = [
            sys.executable,
            "-m",
            "ackdb",
            "coordinator",
            "--db",
            "ll",
            "--port",
            str(port),
            *source,
            "--secret-file",
            str(self.secret_file),
            "--loglevel",
            "verbose",
            *extra,
        ]
        p = ServerProcess(argv, port, self.root, f"coord-{node}")
        self.coords[node] = p
        return p

    def stop(self) -> None:
        for c in self.coords.values():
            c.stop()
        for r in self.replicas:
            if r is not None:
                r.stop()
