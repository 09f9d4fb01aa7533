"""Shared pieces of the failover tests (issue 15): a three-node cluster on three loopback
hosts with one replicated database, where each shard's primary is, the shard password, a
WAIT 1 writer through the endpoints that records every acknowledged write, and the check
that every one of them is readable."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.load_threads import LoadThreads

from ackdb.cluster.status import StatusView
from ackdb.node import secrets
from ackdb.node.localcluster import LocalCluster, wait_for
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

DB = "fo"
DB_PORT = 12000
TIMEOUT_S = 40.0


def ackdb(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ackdb", *args], capture_output=True, text=True, timeout=timeout_s
    )


def start_cluster(c: LocalCluster, *create_args: str) -> None:
    """Start the members, wait until all three are active, create ``DB``."""
    c.start_all()
    leader = c.wait_leader()

    def all_active() -> bool:
        v = c.status(leader)
        return (
            v is not None
            and [(m.fields["state"], m.fields["health"]) for m in v.members]
            == [("active", "ok")] * 3
        )

    wait_for(all_active, TIMEOUT_S, "three active members")

    def create() -> bool:
        out = ackdb(
            "db", "create", DB, "--port", str(DB_PORT), "--node", c[leader].addr, *create_args
        )  # fmt: skip
        text = out.stdout + out.stderr
        assert out.returncode == 0 or "not registered" in text or "exists" in text, text
        return out.returncode == 0 or "already exists" in text

    wait_for(create, TIMEOUT_S, "the database created (members registering)")


@contextlib.contextmanager
def failover_cluster(base: Path, replicas: int = 1) -> Iterator[LocalCluster]:
    """Three members on their own loopback hosts with ``DB`` created (one shard with
    ``replicas`` replicas, aof-everysec); every process they started is stopped after."""
    c = LocalCluster(base, 3, distinct_hosts=True)
    try:
        start_cluster(
            c, "--shards", "1", "--replicas", str(replicas), "--persistence", "aof-everysec"
        )
        yield c
    finally:
        c.close()
        c.kill_leftovers()


def password(c: LocalCluster) -> str:
    return secrets.shard_password(secrets.read_secret(str(c["n1"].dir / "cluster.secret")))


def any_status(c: LocalCluster) -> StatusView | None:
    for node_id, m in c.members.items():
        if m.running():
            v = c.status(node_id)
            if v is not None:
                return v
    return None


@dataclass(frozen=True)
class ShardView:
    epoch: int
    primary: str  # node id
    primary_port: int
    replicas: tuple[tuple[str, int], ...]
    fields: dict[str, str] = field(hash=False, compare=False)


def shard_view(c: LocalCluster, index: int = 0, node: str | None = None) -> ShardView | None:
    v = c.status(node) if node is not None else any_status(c)
    if v is None:
        return None
    for s in v.shards:
        if s.id == f"{DB}/{index}":
            node_id, _, port = s.fields["primary"].partition(":")
            reps = tuple(
                (r.partition(":")[0], int(r.partition(":")[2]))
                for r in s.fields.get("replicas", "").split(",")
                if r
            )
            return ShardView(int(s.fields["epoch"]), node_id, int(port), reps, s.fields)
    return None


def instances(c: LocalCluster) -> dict[str, dict[str, str]]:
    """node id -> fields of its instance line of ``DB``/0 (from that node's own status)."""
    out = {}
    for node_id, m in c.members.items():
        v = c.status(node_id) if m.running() else None
        for i in v.instances if v is not None else []:
            if i.kind == "instance" and i.name == f"{DB}/0":
                out[node_id] = i.fields
    return out


def settled(c: LocalCluster, count: int) -> ShardView | None:
    """Shard 0 has ``count`` instances, each running in its role with its link up."""
    s = shard_view(c)
    got = instances(c)
    if s is None or len(got) != count:
        return None
    for f in got.values():
        if f["state"] != "running" or f["seen"] != f["role"]:
            return None
        if f["role"] == "replica" and f["link"] != "up":
            return None
    return s


def shard_addr(c: LocalCluster, node_id: str, port: int) -> str:
    return f"{c[node_id].host}:{port}"


def shard_client(c: LocalCluster, node_id: str, port: int, timeout_s: float = 5.0) -> Client:
    cl = Client(shard_addr(c, node_id, port), timeout_s=timeout_s)
    try:
        cl.call("AUTH", password(c))
    except BaseException:
        cl.close()
        raise
    return cl


def endpoint(c: LocalCluster, node_id: str, timeout_s: float = 5.0) -> Client:
    return Client(f"{c[node_id].host}:{DB_PORT}", timeout_s=timeout_s)


class Writer(LoadThreads):
    """Threads writing ``SET key value`` + ``WAIT 1 <wait_ms>`` through the endpoints of
    ``via`` (one thread per node), recording each write the shard acknowledged with WAIT
    >= 1, and every error (wall-clock time, to compare with the logs, and "<endpoint's node>:
    <text>"). A key whose outcome is unknown is never reused."""

    def __init__(self, c: LocalCluster, via: list[str], wait_ms: int = 1000) -> None:
        self.c = c
        self.via = via
        self.wait_ms = wait_ms
        self.unacked = 0  # WAIT answered 0: not covered by the guarantee
        self.errors: list[tuple[float, str]] = []
        super().__init__(via)

    def _run(self, node_id: str) -> None:
        cl: Client | None = None
        i = 0
        while not self.stop.is_set():
            key, value = f"{node_id}-{i}", f"v{i}".encode()
            i += 1
            try:
                if cl is None:
                    cl = endpoint(self.c, node_id)
                r = cl.pipeline([("SET", key, value), ("WAIT", "1", str(self.wait_ms))])
                if isinstance(r[0], ReplyError) or isinstance(r[1], ReplyError):
                    err = r[0] if isinstance(r[0], ReplyError) else r[1]
                    with self.lock:
                        self.errors.append((time.time(), f"{node_id}: {err}"))
                    time.sleep(0.01)
                    continue
                with self.lock:
                    if r[1] >= 1:
                        self.acked[key] = value
                    else:
                        self.unacked += 1
            except (OSError, ReplyError) as e:
                with self.lock:
                    self.errors.append((time.time(), f"{node_id}: {e!r}"))
                if cl is not None:
                    cl.close()
                cl = None
                time.sleep(0.01)
        if cl is not None:
            cl.close()


def wait_writes(w: Writer, more: int, timeout_s: float = TIMEOUT_S) -> None:
    """Until ``w`` has ``more`` acknowledged writes beyond what it has now."""
    target = w.count() + more
    wait_for(lambda: w.count() >= target, timeout_s, f"{more} more acknowledged writes")


def check_readable(c: LocalCluster, node_id: str, acked: dict[str, bytes]) -> None:
    """Every acknowledged write is readable through ``node_id``'s endpoint."""
    keys = sorted(acked)
    missing = []
    with endpoint(c, node_id, timeout_s=10) as cl:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            got = cl.call("MGET", *chunk)
            missing += [k for k, v in zip(chunk, got, strict=True) if v != acked[k]]
    assert not missing, f"{len(missing)} of {len(keys)} acknowledged writes lost: {missing[:10]}"


def primary_moved(c: LocalCluster, old: ShardView) -> ShardView | None:
    """Shard 0 has a new primary (a higher epoch, another node)."""
    s = shard_view(c)
    if s is not None and s.epoch > old.epoch and s.primary != old.primary:
        return s
    return None


def accepts_writes(c: LocalCluster, node_id: str) -> bool:
    try:
        with endpoint(c, node_id, timeout_s=2) as cl:
            return bool(cl.call("SET", "probe", "1") == b"OK")
    except (OSError, ReplyError):
        return False
