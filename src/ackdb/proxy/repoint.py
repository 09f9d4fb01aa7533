"""Repointing an endpoint's connections at a new topology: the one implementation that the
asyncio shell (proxy/shell.py) and the failover simulator's endpoint (sim/fo_endpoint.py)
both run.

Owns: the order of the steps when a topology arrives -- idle connections to addresses no
longer in it closed; every session told the new router; the dedicated, then the shared
connections to a primary that moved closed (what they owed gets errors, reads are sent
again: proxy/failover.py), dedicated first, so a request a lost shared connection
releases opens a new connection to the new primary, not the old one's; then every
session resumed and its output pumped. Never opens a connection, logs or reads a clock:
the shell does that around it.
"""

from __future__ import annotations

from typing import Any

from .router import Router


def repoint(ep: Any, router: Router) -> list[int] | None:
    """Apply ``router`` to ``ep``'s connections; the shards whose primary moved, or None
    when the shard count changed (resharding is not supported: nothing is applied).

    ``ep`` (the shell's ``Endpoint`` or the simulator's): ``router``; ``idle``, address ->
    idle shard connections; ``shared``, per shard its shared connection or None;
    ``clients``, client connections with ``session``, ``shards``, ``closed`` and
    ``pump()``. Every connection has ``close()``."""
    old = ep.router
    if router.nshards != old.nshards:
        return None
    ep.router = router
    moved = [i for i in range(router.nshards) if router.addrs[i] != old.addrs[i]]
    for addr in list(ep.idle):
        if addr not in router.addrs:
            for idle in ep.idle.pop(addr):
                idle.close()
    clients = list(ep.clients)
    for c in clients:
        c.session.set_router(router)
    for c in clients:
        for i in moved:
            conn = c.shards[i] if i < len(c.shards) else None
            if conn is not None:
                conn.close()
    for i in moved:
        shared = ep.shared[i]
        if shared is not None:
            shared.close()
    for c in clients:
        if not c.closed:
            c.session.resume()
            c.pump()
    return moved
