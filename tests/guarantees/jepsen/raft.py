"""The Raft metadata store (``ackdb node`` members) as nemesis targets: a ``LocalCluster``
whose every directed peer link runs through its own fault proxy, members that can be
killed, restarted and paused, and partitions of those links.

Partitions here use the fault proxy, not network namespaces: ``LocalCluster`` binds every
member to 127.0.0.1. When a partition heals, the proxied connections that lived through it
are closed first (a proxy that discarded bytes of a live stream left a hole no network
makes); the members reconnect on their own.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path
from typing import Any

from ackdb.node.localcluster import LocalCluster, Member
from faultproxy import FaultProxy

from .nemesis import Nemesis


class ProxiedCluster:
    def __init__(self, base: Path, n: int, extra_args: list[str]) -> None:
        self.c = LocalCluster(base, n, extra_args)
        self.proxies: dict[tuple[str, str], FaultProxy] = {}
        for src in self.c.members.values():
            for dst in self.c.members.values():
                if src is not dst:
                    self.proxies[(src.id, dst.id)] = FaultProxy(
                        ("127.0.0.1", dst.cluster_port)
                    ).start()
        self.c.peer_addr = self._addr

    def _addr(self, src: Member, dst: Member) -> str:
        return f"127.0.0.1:{self.proxies[(src.id, dst.id)].port}"

    @property
    def ids(self) -> list[str]:
        return list(self.c.members)

    def close(self) -> None:
        for m in self.c.members.values():
            if m.proc is not None and m.proc.poll() is None:
                m.proc.send_signal(signal.SIGCONT)
        self.c.close()
        for p in self.proxies.values():
            p.stop()


class RaftMember:
    """A member as a nemesis target."""

    def __init__(self, pc: ProxiedCluster, node_id: str) -> None:
        self.pc = pc
        self.name = node_id

    def kill(self) -> None:
        self.pc.c.kill(self.name, signal.SIGKILL)

    def restart(self) -> None:
        self.pc.c.start(self.name)

    def pause(self) -> None:
        self.pc.c.kill(self.name, signal.SIGSTOP)

    def resume(self) -> None:
        self.pc.c.kill(self.name, signal.SIGCONT)


class RaftPartition(Nemesis):
    """``modes``: ``isolate`` (one member from all), ``leader`` (the current leader from
    all), ``all`` (every member alone: no majority anywhere), ``one-way`` (one member's
    outgoing links only: it hears the others, they do not hear it)."""

    name = "raft-partition"

    def __init__(self, pc: ProxiedCluster, modes: list[str]) -> None:
        self.pc = pc
        self.modes = modes
        self.cut: list[FaultProxy] = []

    def start(self, rng: random.Random) -> dict[str, Any]:
        mode = rng.choice(self.modes)
        victim = rng.choice(self.pc.ids)
        if mode == "leader":
            victim = self.pc.c.leader() or victim
        for (src, dst), p in self.pc.proxies.items():
            if mode == "all" or (mode == "one-way" and src == victim):
                p.drop_all() if mode == "all" else p.blackhole("both")
                self.cut.append(p)
            elif mode in ("isolate", "leader") and victim in (src, dst):
                p.drop_all()
                self.cut.append(p)
        return {"mode": mode, "node": None if mode == "all" else victim, "via": "faultproxy"}

    def stop(self) -> dict[str, Any]:
        for p in self.cut:
            p.refuse()
            p.close_connections()
            p.heal()
        n, self.cut = len(self.cut), []
        return {"healed_links": n}
