"""A sharded database on loopback for tests and benchmarks: S ``ackdb server`` shard
processes (requirepass and masterauth = the shard password derived from a cluster secret,
written in a config file, never on a command line), optional replicas, and one ``ackdb
proxy`` endpoint from a topology file."""

from __future__ import annotations

import hashlib
import socket
import sys
import threading
from pathlib import Path

from ackdb.cluster.databases import (
    Database,
    DbType,
    Instance,
    Persistence,
    Shard,
    Topology,
    slot_ranges,
)
from ackdb.node.secrets import new_secret, shard_password, write_secret
from conftest import ServerProcess, free_port, wait_until


class FakeMeta:
    """A node's client port as far as ``DB.TOPOLOGY name [known-version [timeout-ms]]``
    goes (the contract of issue 14): answers at once without a known version, or when the
    version passes it, or at the timeout with the current topology."""

    def __init__(self) -> None:
        self.topology: Topology | None = None
        self.cond = threading.Condition()
        self.requests = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def publish(self, topology: Topology) -> None:
        with self.cond:
            self.topology = topology
            self.cond.notify_all()

    def close(self) -> None:
        self.closed = True
        self.sock.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        from ackdb.resp.reader import RequestReader

        reader = RequestReader()
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                for argv in reader.feed(data):
                    reply = self._answer(argv)  # a long poll: the peer may be gone by now
                    try:
                        conn.sendall(reply)
                    except OSError:  # not an exception for pytest to report in a later test
                        return

    def _answer(self, argv: list[bytes]) -> bytes:
        self.requests += 1
        if argv[0].upper() != b"DB.TOPOLOGY" or len(argv) not in (2, 4):
            return b"-ERR unknown command\r\n"
        known = int(argv[2]) if len(argv) == 4 else -1
        timeout_s = int(argv[3]) / 1000 if len(argv) == 4 else 0
        with self.cond:
            self.cond.wait_for(
                lambda: self.topology is not None and self.topology.version > known, timeout_s
            )
            topo = self.topology
        if topo is None or topo.db.name.encode() != argv[1]:
            return b"-ERR no such database '%s'\r\n" % argv[1]
        body = topo.to_bytes()
        return b"$%d\r\n%s\r\n" % (len(body), body)


class ShardedDb:
    """``with ShardedDb(tmp, shards=3, replicas={0: 1}) as db: db.port ...``"""

    def __init__(
        self,
        workdir: Path,
        shards: int = 3,
        replicas: dict[int, int] | None = None,
        password: str = "",
        appendonly: bool = False,
        name: str = "db",
        meta: FakeMeta | None = None,
        acl_users: tuple[str, ...] = (),
    ) -> None:
        self.dir = workdir
        self.acl_users = acl_users  # stored form (ackdb.acl.normalize_user_rule)
        workdir.mkdir(parents=True, exist_ok=True)
        self.shards_n = shards
        self.replicas_of = replicas or {}
        self.password = password
        self.appendonly = appendonly
        self.name = name
        self.meta = meta  # the topology comes from this fake node instead of a file
        self.secret_file = workdir / "secret"
        write_secret(str(self.secret_file), new_secret())
        from ackdb.node.secrets import read_secret

        self.shard_password = shard_password(read_secret(str(self.secret_file)))
        self.primaries: list[ServerProcess] = []
        self.replicas: dict[int, list[ServerProcess]] = {}
        self.proxy: ServerProcess | None = None
        self.port = 0
        self.topology_file = workdir / "topology"
        self.version = 1

    # -- processes ---------------------------------------------------------------------------

    def _conf(self, name: str, port: int, replicaof: int | None) -> Path:
        d = self.dir / name
        d.mkdir(exist_ok=True)
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f'dir "{d}"',
            f"requirepass {self.shard_password}",
            f"masterauth {self.shard_password}",
            'save ""',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            "enable-debug-command yes",
        ]
        if replicaof is not None:
            lines.append(f"replicaof 127.0.0.1 {replicaof}")
        conf = d / "shard.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start_shard(self, name: str, port: int, replicaof: int | None = None) -> ServerProcess:
        conf = self._conf(name, port, replicaof)
        argv = [sys.executable, "-m", "ackdb", "server", str(conf)]
        return ServerProcess(argv, port, self.dir / name, "ackdb")

    def __enter__(self) -> ShardedDb:
        try:
            for i in range(self.shards_n):
                self.primaries.append(self.start_shard(f"shard{i}", free_port()))
            for i, n in self.replicas_of.items():
                self.replicas[i] = [
                    self.start_shard(f"shard{i}r{j}", free_port(), self.primaries[i].port)
                    for j in range(n)
                ]
            self.write_topology()
            self.start_proxy()
            for i in self.replicas:
                self.wait_replicas(i)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        for reps in self.replicas.values():
            for r in reps:
                r.stop()
        for p in self.primaries:
            p.stop()

    def start_proxy(self) -> None:
        self.port = self.port or free_port()
        argv = [
            sys.executable,
            "-m",
            "ackdb",
            "proxy",
            "--db",
            self.name,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            *(
                ["--meta", f"127.0.0.1:{self.meta.port}"]
                if self.meta is not None
                else ["--topology-file", str(self.topology_file)]
            ),
            "--secret-file",
            str(self.secret_file),
        ]
        self.proxy = ServerProcess(argv, self.port, self.dir, "proxy")

    def topology(self) -> Topology:
        shards = tuple(
            Shard(
                i,
                first,
                last,
                1,
                Instance("n1", self.primaries[i].port),
                tuple(Instance("n1", r.port) for r in self.replicas.get(i, [])),
            )
            for i, (first, last) in enumerate(slot_ranges(self.shards_n))
        )
        digest = hashlib.sha256(self.password.encode()).hexdigest() if self.password else ""
        db = Database(
            self.name,
            1,
            DbType.SHARDED,
            self.port,
            bool(self.replicas_of),
            max(self.replicas_of.values(), default=0),
            Persistence.AOF_EVERYSEC if self.appendonly else Persistence.NONE,
            digest,
            False,
            shards,
            acl_users=self.acl_users,
        )
        return Topology(self.version, db, {"n1": "127.0.0.1"}, "n1")

    def write_topology(self) -> None:
        if self.meta is not None:
            self.meta.publish(self.topology())
            return
        tmp = self.topology_file.with_suffix(".tmp")
        tmp.write_bytes(self.topology().to_bytes())
        tmp.replace(self.topology_file)

    # -- helpers -----------------------------------------------------------------------------

    def shard_client(self, port: int):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(port=port, password=self.shard_password, socket_timeout=10)

    def wait_replicas(self, shard: int) -> None:
        c = self.shard_client(self.primaries[shard].port)
        want = len(self.replicas.get(shard, []))

        def online() -> bool:
            info = c.info("replication")
            return sum(
                1 for k in info if k.startswith("slave") and k[5:].isdigit()
            ) >= want and all(
                info[k].get("state") == "online"
                for k in info
                if k.startswith("slave") and k[5:].isdigit()
            )

        wait_until(online, 20)

    def client(self, **kw: object):  # type: ignore[no-untyped-def]
        import redis

        if self.password:
            kw.setdefault("password", self.password)
        return redis.Redis(port=self.port, socket_timeout=15, **kw)  # type: ignore[arg-type]
