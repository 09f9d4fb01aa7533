"""A leaderless database on loopback for tests: three ``ackdb server`` replicas
(``Replicas``: ``appendfsync always``, requirepass = the shard password of a cluster
secret) and coordinators (``ackdb coordinator --topology-file``), one per node id."""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from ackdb.cluster.databases import Database, DbType, Instance, Persistence, Shard, Topology
from ackdb.cluster.schema import Collection
from ackdb.node.secrets import new_secret, read_secret, shard_password, write_secret
from conftest import ServerProcess, ackdb_argv, free_port

NODES = ("n1", "n2", "n3")


class Replicas:
    """``n`` standalone ``ackdb server`` replicas of a leaderless database (AOF,
    ``appendfsync always``; ``password``: their requirepass) in ``root``/r0..r<n-1>."""

    def __init__(self, root: Path, n: int = len(NODES), password: str | None = None) -> None:
        self.root = root
        self.password = password
        self.ports = [free_port() for _ in range(n)]
        self.procs: list[ServerProcess | None] = [None] * n
        try:
            for i in range(n):
                self.start(i)
        except BaseException:  # the caller never gets us to stop: stop those started
            self.stop_all()
            raise

    def start(self, i: int) -> None:
        d = self.root / f"r{i}"
        d.mkdir(exist_ok=True)
        auth = ["--requirepass", self.password] if self.password else []
        argv = ackdb_argv(self.ports[i], "--dir", str(d), *auth)
        argv[argv.index("--appendonly") + 1] = "yes"
        argv += ["--appendfsync", "always"]
        self.procs[i] = ServerProcess(argv, self.ports[i], d, f"r{i}")

    def kill(self, i: int) -> None:
        p = self.procs[i]
        assert p is not None
        p.stop(signal.SIGKILL)
        self.procs[i] = None

    def wipe(self, i: int) -> None:
        """SIGKILL replica ``i``, remove its directory, start it again empty."""
        self.kill(i)
        shutil.rmtree(self.root / f"r{i}")
        self.start(i)

    def client(self, i: int) -> Any:
        import redis

        return redis.Redis(port=self.ports[i], password=self.password, socket_timeout=10)

    def call(self, i: int, *args: Any) -> Any:
        """One command on replica ``i``; ConnectionError when it is down."""
        import redis

        if self.procs[i] is None:
            raise redis.ConnectionError("replica down")
        with self.client(i) as c:
            return c.execute_command(*args)

    def stop_all(self) -> None:
        for p in self.procs:
            if p is not None:
                p.stop()


class LLDb:
    def __init__(self, root: Path, password_sha256: str = "") -> None:
        self.root = root
        self.secret_file = root / "secret"
        write_secret(str(self.secret_file), new_secret())
        self.shard_password = shard_password(read_secret(str(self.secret_file)))
        self.reps = Replicas(root, password=self.shard_password)
        self.ports = self.reps.ports
        self.coords: dict[str, ServerProcess] = {}
        self.coord_ports: dict[str, int] = {}
        self.version = 1
        self.password_sha256 = password_sha256
        self.levels = ("QUORUM", "QUORUM")
        self.schema: tuple[int, tuple[Collection, ...]] = (0, ())

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
        self.reps.start(i)

    def kill_replica(self, i: int) -> None:
        self.reps.kill(i)

    def replica(self, i: int) -> Any:
        return self.reps.client(i)

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
        self.reps.stop_all()
