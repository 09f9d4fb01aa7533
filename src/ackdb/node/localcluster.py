"""A cluster of ``ackdb node`` processes on loopback, driven from Python: for the
end-to-end tests, the benchmark and experiments.

Owns: starting, stopping, killing and restarting member processes, the ports and data
directories they use, and polling them (status, leader). Each member's cluster address
as seen by each other member can be redirected (``peer_addr``), so a test can put a
fault-injecting proxy on every link. With ``distinct_hosts`` member i (from 0) listens
on its own loopback host <net>.<i+1> (``--bind`` and ``--advertise-host``), so every
member can serve a database on the same port, as separate machines do; the /24 is
``loopback_net`` (e.g. ``127.0.0``), by default a random one of 127.0.0.0/8, so clusters
run at once (the cluster hands out the same shard ports in each) never share an address. Every wait is
bounded and polls; processes are stopped by ``close()`` (SIGTERM, then SIGKILL). The
cluster has one secret, ``base_dir/cluster.secret``, given to every member
(``--cluster-secret-file``); a member can be given another (``add(..., secret_file=...)``)
to play a node of another cluster.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ackdb.cluster.status import StatusView, parse_status
from ackdb.node.secrets import SECRET_FILE, new_secret, write_secret
from ackdb.node.shardfiles import alive, find_units, send_signal
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

POLL_INTERVAL_S = 0.02
STOP_TIMEOUT_S = 10.0
START_TIMEOUT_S = 20.0


def random_loopback_net() -> str:
    """A /24 of 127.0.0.0/8 other than 127.0.0 (for ``loopback_net``)."""
    return f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Member:
    id: str
    port: int
    cluster_port: int
    dir: Path
    log_path: Path
    secret_file: Path
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def cluster_addr(self) -> str:
        return f"{self.host}:{self.cluster_port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class LocalCluster:
    """``n`` members n1..nN under ``base_dir``. ``peer_addr(src, dst)`` is the address
    ``src`` dials to reach ``dst`` (default: ``dst``'s own cluster address)."""

    def __init__(
        self,
        base_dir: Path,
        n: int,
        extra_args: Iterable[str] = (),
        peer_addr: Callable[[Member, Member], str] | None = None,
        distinct_hosts: bool = False,
        loopback_net: str | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.distinct_hosts = distinct_hosts
        self.loopback_net = loopback_net or random_loopback_net()
        self.extra_args = list(extra_args)
        self.peer_addr = peer_addr or (lambda src, dst: dst.cluster_addr)
        self.members: dict[str, Member] = {}
        base_dir.mkdir(parents=True, exist_ok=True)
        self.secret_file = base_dir / SECRET_FILE
        if not self.secret_file.exists():
            write_secret(str(self.secret_file), new_secret())
        for i in range(1, n + 1):
            self._new_member(f"n{i}")
        self.initial = list(self.members)

    def _new_member(self, node_id: str, secret_file: Path | None = None) -> Member:
        host = (
            f"{self.loopback_net}.{len(self.members) + 1}" if self.distinct_hosts else "127.0.0.1"
        )
        m = Member(
            node_id,
            free_port(),
            free_port(),
            self.base_dir / node_id,
            self.base_dir / f"{node_id}.log",
            secret_file or self.secret_file,
            host,
        )
        self.members[node_id] = m
        return m

    def __getitem__(self, node_id: str) -> Member:
        return self.members[node_id]

    # -- processes ----------------------------------------------------------------------

    def argv(self, m: Member, extra: Iterable[str] = ()) -> list[str]:
        return [
            sys.executable, "-m", "ackdb.node", "node",
            "--id", m.id, "--dir", str(m.dir),
            "--port", str(m.port), "--cluster-port", str(m.cluster_port),
            *(["--bind", m.host, "--advertise-host", m.host] if self.distinct_hosts else []),
            "--cluster-secret-file", str(m.secret_file),
            *self.extra_args, *extra,
        ]  # fmt: skip

    def bootstrap_arg(self, m: Member) -> str:
        peers = [self.members[i] for i in self.initial]
        return ",".join(
            f"{p.id}={p.cluster_addr if p is m else self.peer_addr(m, p)}" for p in peers
        )

    def start(self, node_id: str, extra: Iterable[str] = ()) -> Member:
        m = self.members[node_id]
        assert not m.running(), f"{node_id} is running"
        if node_id in self.initial:
            extra = ["--bootstrap", self.bootstrap_arg(m), *extra]
        self._reap(m)  # a member that exited by itself still holds its last log file
        m._log = open(m.log_path, "ab")  # noqa: SIM115 -- closed in _reap
        m.proc = subprocess.Popen(
            self.argv(m, extra), stdout=m._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers(m):
            if m.proc.poll() is not None:
                self._reap(m)
                raise RuntimeError(f"{node_id} exited at start:\n{m.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node_id} did not start:\n{m.log()}")
            time.sleep(POLL_INTERVAL_S)
        return m

    def start_all(self) -> None:
        for node_id in self.members:
            if not self.members[node_id].running():
                self.start(node_id)

    def add(self, node_id: str, join_via: str, secret_file: Path | None = None) -> Member:
        """A new member that joins through ``join_via``'s client port (with the cluster's
        secret unless ``secret_file`` names another)."""
        self._new_member(node_id, secret_file)
        return self.start(node_id, ["--join", self.members[join_via].addr])

    def kill(self, node_id: str, sig: int = signal.SIGKILL) -> None:
        m = self.members[node_id]
        if m.proc is not None and m.proc.poll() is None:
            m.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                try:
                    m.proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait(STOP_TIMEOUT_S)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self._reap(m)

    def unit_pids(self, node_id: str, kind: str = "") -> dict[str, int]:
        """The running processes a member's supervisor started (its shards and proxies),
        by unit (``shards/<uid>-<i>``, ``proxies/<uid>``; ``kind`` "shards" or "proxies"
        keeps one kind), from their pid files."""
        return {
            unit: pid
            for unit, pid in find_units(str(self.members[node_id].dir))
            if pid is not None and unit.startswith(kind)
        }

    def kill_node(self, node_id: str) -> list[int]:
        """A machine dying: SIGKILL the member's agent and every process it runs (shards
        and proxies, in their own sessions). Returns the killed pids, agent first."""
        pids = list(self.unit_pids(node_id).values())
        m = self.members[node_id]
        agent = [m.proc.pid] if m.proc is not None and m.proc.poll() is None else []
        self.kill(node_id, signal.SIGKILL)
        for pid in pids:
            send_signal(pid, signal.SIGKILL)
        wait_for(lambda: not any(alive(p) for p in pids), STOP_TIMEOUT_S, "the units to die")
        return agent + pids

    def kill_leftovers(self) -> list[int]:
        """SIGKILL the units of members whose agent is not running (left by ``kill`` or
        ``kill_node`` with no restart): for the end of a test, after ``close``."""
        pids = [
            pid
            for node_id, m in self.members.items()
            if not m.running()
            for pid in self.unit_pids(node_id).values()
        ]
        for pid in pids:
            send_signal(pid, signal.SIGKILL)
        return pids

    def _reap(self, m: Member) -> None:
        if m._log is not None:
            m._log.close()
            m._log = None

    def close(self) -> None:
        for node_id in list(self.members):
            self.kill(node_id, signal.SIGTERM)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- looking at it ------------------------------------------------------------------

    def _answers(self, m: Member) -> bool:
        try:
            with Client(m.addr, timeout_s=1.0) as c:
                return bool(c.call("PING") == b"PONG")
        except (OSError, ReplyError):
            return False

    def client(self, node_id: str, timeout_s: float = 10.0) -> Client:
        return Client(self.members[node_id].addr, timeout_s=timeout_s)

    def status(self, node_id: str) -> StatusView | None:
        try:
            with Client(self.members[node_id].addr, timeout_s=1.0) as c:
                return parse_status(c.call("CLUSTER.STATUS").decode())
        except (OSError, ReplyError):
            return None

    def leader(self, among: Iterable[str] | None = None, min_term: int = 0) -> str | None:
        """The member that says it leads (in a term >= ``min_term``), if one does."""
        for node_id in among if among is not None else self.members:
            if not self.members[node_id].running():
                continue
            v = self.status(node_id)
            if v is not None and v.role == "leader" and v.term >= min_term:
                return node_id
        return None

    def wait_leader(
        self, among: Iterable[str] | None = None, min_term: int = 0, timeout_s: float = 20.0
    ) -> str:
        ids = list(among) if among is not None else list(self.members)
        return str(wait_for(lambda: self.leader(ids, min_term), timeout_s, "a leader"))


def wait_for(pred: Callable[[], Any], timeout_s: float, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(POLL_INTERVAL_S)
