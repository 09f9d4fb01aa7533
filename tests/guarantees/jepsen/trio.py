"""A primary with replicas, built for fault injection: every node keeps its port and data
directory across restarts, replica links can run through fault proxies (one per replica)
or inside network namespaces, and the helpers a scenario needs afterwards — promote the
most up-to-date replica, read every list back, restart a node alone from its AOF (after an
optional power-loss cut) — are here.

Owns: the ``Node`` objects, their proxies, and which node is the primary now. Never
decides what a scenario checks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis

from ackdb.node.localcluster import wait_for
from faultproxy import FaultProxy

from .oracle import power_loss
from .procs import Node

SYNC_TIMEOUT_S = 30.0


def repl_info(node: Node) -> dict[str, Any]:
    try:
        with contextlib.closing(node.client(2.0)) as c:
            return c.info("replication")  # type: ignore[no-any-return]
    except (redis.ConnectionError, redis.TimeoutError):
        return {}


def loaded(node: Node) -> bool:
    try:
        with contextlib.closing(node.client(2.0)) as c:
            return int(c.info("persistence").get("loading", 1)) == 0
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
        return False


class Trio:
    """``primary_args`` / ``replica_args[i]``: directives of each node. ``link``:
    ``direct``, ``proxy`` (each replica reaches its primary through its own FaultProxy)
    or a ``netns.Network`` whose node names are p, r1, r2 ..."""

    def __init__(
        self,
        workdir: Path,
        primary_args: list[str],
        replica_args: list[list[str]],
        link: Any = "direct",
        fsync_log: bool = True,
        clock: bool = False,
    ) -> None:
        self.workdir = workdir
        self.net = None if isinstance(link, str) else link
        self.use_proxy = link == "proxy"
        self.proxies: dict[str, FaultProxy] = {}
        self.cuts: dict[str, dict[str, tuple[int, int]]] = {}
        names = ["p", *(f"r{i + 1}" for i in range(len(replica_args)))]
        self.nodes: dict[str, Node] = {}
        for name, args in zip(names, [primary_args, *replica_args], strict=True):
            host, wrap = "127.0.0.1", None
            if self.net is not None:
                host = self.net.ip(name)
                wrap = (lambda n: lambda argv: self.net.wrap(n, argv))(name)
            clock_file = workdir / f"{name}.clock" if clock else None
            self.nodes[name] = Node(name, workdir, args, host=host, wrap=wrap,
                                    clock_file=clock_file, fsync_log=fsync_log)  # fmt: skip
        self.primary = self.nodes["p"]

    @property
    def replicas(self) -> list[Node]:
        return [n for n in self.nodes.values() if n is not self.primary]

    def start(self) -> Trio:
        self.primary.start()
        for r in self.replicas:
            self.attach(r, self.primary, start=True)
        return self

    def upstream_addr(self, replica: Node, primary: Node) -> tuple[str, int]:
        if self.use_proxy:
            old = self.proxies.pop(replica.name, None)
            if old is not None:
                old.stop()
            proxy = FaultProxy((primary.host, primary.port)).start()
            self.proxies[replica.name] = proxy
            return "127.0.0.1", proxy.port
        return primary.host, primary.port

    def attach(self, replica: Node, primary: Node, start: bool = False) -> None:
        host, port = self.upstream_addr(replica, primary)
        replica.role_args = ["--replicaof", host, str(port)]
        if start:
            replica.start(*replica.role_args)
        else:
            replica.call("REPLICAOF", host, port)

    def wait_synced(self, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        def synced() -> bool:
            p = repl_info(self.primary).get("master_repl_offset")
            offs = []
            for r in self.replicas:
                i = repl_info(r)
                if i.get("master_link_status") != "up" or i.get("master_sync_in_progress"):
                    return False
                offs.append(i.get("master_repl_offset"))
            return p is not None and all(o == p for o in offs)

        wait_for(synced, timeout_s, "replicas in sync")

    def wait_aof_counted(self, numreplicas: int, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        """Until WAITAOF counts ``numreplicas`` (their AOF rewrite after the full sync is
        done)."""
        wait_for(
            lambda: self.primary.call("WAITAOF", 0, numreplicas, 100)[1] >= numreplicas,
            timeout_s,
            f"WAITAOF to count {numreplicas} replicas",
        )

    def most_up_to_date(self, among: Iterable[Node] | None = None) -> Node:
        best, best_off = None, -1
        for r in among if among is not None else self.replicas:
            if not r.running():
                continue
            off = int(repl_info(r).get("master_repl_offset", -1))
            if off > best_off:
                best, best_off = r, off
        assert best is not None, "no replica to promote"
        return best

    def promote(self, new: Node) -> None:
        """REPLICAOF NO ONE on ``new``; every other running node follows it."""
        new.call("REPLICAOF", "NO", "ONE")
        new.role_args = []
        self.primary = new
        for r in self.replicas:
            if r.running():
                self.attach(r, new)
            else:
                host, port = self.upstream_addr(r, new)
                r.role_args = ["--replicaof", host, str(port)]

    def lists(self, node: Node, keys: Iterable[str]) -> dict[str, list[str]]:
        with contextlib.closing(node.client(10.0)) as c:
            pipe = c.pipeline(transaction=False)
            ks = list(keys)
            for k in ks:
                pipe.lrange(k, 0, -1)
            got = pipe.execute()
        return {k: [v.decode() for v in items] for k, items in zip(ks, got, strict=True)}

    def disk_lists(self, node: Node, keys: Iterable[str], power: bool) -> dict[str, list[str]]:
        """Kill ``node``, optionally cut its files to what was fsynced (oracle), restart it
        alone (no replication) from its AOF, read the lists, kill it again. What the cut
        removed is kept in ``self.cuts[node.name]``."""
        node.kill()
        if power:
            assert node.fsync_log is not None, "power loss needs the fsync oracle"
            self.cuts[node.name] = power_loss(node.dir, node.fsync_log)
        node.start()
        try:
            wait_for(lambda: loaded(node), SYNC_TIMEOUT_S, f"{node.name} to load its AOF")
            return self.lists(node, keys)
        finally:
            node.kill()

    def disks(self, nodes: Iterable[Node], keys: Iterable[str]) -> dict[str, dict[str, list[str]]]:
        """``disk_lists(power=True)`` of several nodes at once (each restarts alone on its
        own port and files, so they do not interfere)."""
        ks = list(keys)
        with ThreadPoolExecutor() as pool:
            futures = {n.name: pool.submit(self.disk_lists, n, ks, True) for n in nodes}
            return {name: f.result() for name, f in futures.items()}

    def close(self) -> None:
        for n in self.nodes.values():
            n.close()
        for p in self.proxies.values():
            p.stop()
