"""The database ``ackdb cluster up`` creates, so a new user can run ``redis-cli -p 12000``
at once.

Owns: its options (``default``: three shards, one replica each when the cluster has two
nodes or more, ``aof-everysec``, port ``DEFAULT_DB_PORT`` = 12000 unless ``--db-port``),
the wait for every member to register its address (placement only uses registered
members), and the wait until the endpoint on the first node serves it (every shard's
primary answering through it, its replicas attached). A cluster that has it already keeps it. Every wait is
bounded (one deadline) and polls; progress is printed, since a person is waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ackdb.cluster.databases import DEFAULT_DB_NAME, DEFAULT_DB_PORT
from ackdb.cluster.status import StatusView
from ackdb.node.cli_cluster import ClusterError, _wait
from ackdb.node.cli_db import _call
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

DEFAULT_SHARDS = 3


def _replicas(nodes: int) -> int:
    return 1 if nodes >= 2 else 0  # a replica needs a node of its own


def default_db_args(nodes: int, port: int) -> list[str]:
    replicas = _replicas(nodes)
    return [
        "DB.CREATE", DEFAULT_DB_NAME, "SHARDS", str(DEFAULT_SHARDS),
        "REPLICATION", "yes" if replicas else "no", "REPLICAS", str(replicas),
        "PORT", str(port), "PERSISTENCE", "aof-everysec",
    ]  # fmt: skip


def _registered(view: StatusView, nodes: int) -> bool:
    """Every member has registered its client address (placement needs it)."""
    addrs = [m.fields.get("client", "") for m in view.members]
    return len(addrs) >= nodes and all(a and a != "?" for a in addrs)


def _serves(host: str, port: int, replicas: int) -> bool:
    """The endpoint answers, and every shard has its replicas attached: through an
    endpoint, WAIT from a connection that wrote nothing asks every shard and answers the
    smallest count of replicas attached."""
    try:
        with Client(f"{host}:{port}", timeout_s=2.0) as c:
            c.call("PING")
            return bool(c.call("WAIT", str(replicas), "100") >= replicas)
    except (OSError, ReplyError):
        return False


def ensure_default_db(
    addrs: list[str],
    nodes: int,
    host: str,
    port: int | None,
    leader: Callable[[], StatusView | None],
    timeout_s: float,
) -> int:
    """Create the default database (unless it exists) and wait until it serves on
    ``host``; returns its port. Raises ClusterError with what was awaited."""
    port = port or DEFAULT_DB_PORT
    deadline = time.monotonic() + timeout_s

    def until(pred: Callable[[], Any], what: str) -> Any:  # one deadline for every wait
        return _wait(pred, max(0.0, deadline - time.monotonic()), what)

    until(lambda: (v := leader()) is not None and _registered(v, nodes), "members to register")
    try:
        _call(addrs, default_db_args(nodes, port))
        print(f"created database '{DEFAULT_DB_NAME}' (port {port})")
    except ClusterError as e:
        if "already exists" not in str(e):
            raise
        print(f"database '{DEFAULT_DB_NAME}' exists")
    print("waiting for its shards and endpoints...", flush=True)
    replicas = _replicas(nodes)
    until(lambda: _serves(host, port, replicas), f"the endpoint {host}:{port}")
    return port
