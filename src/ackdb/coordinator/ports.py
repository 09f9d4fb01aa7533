"""The seam between the coordinator process and its optional anti-entropy service.

``main.py`` passes an object implementing ``Convergence`` (llconv's
``coordinator/antientropy.AntiEntropy``) or None; with None, ``CONVERGE`` answers
``-ERR anti-entropy is not running``.
"""

from __future__ import annotations

from typing import Protocol

from ..cluster.databases import Topology


class Convergence(Protocol):
    def set_topology(self, topo: Topology) -> None: ...

    async def run(self) -> None:
        """The schedule; cancelled when the coordinator stops."""

    async def converge(self, key: bytes | None, timeout_ms: int) -> str | None:
        """None when the replicas agree, else the error text (without the leading "-")."""

    def info(self) -> list[tuple[str, str]]:
        """INFO leaderless lines."""
