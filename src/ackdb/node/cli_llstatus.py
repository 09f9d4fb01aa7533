"""Leaderless databases in ``ackdb cluster status``: how far each node's coordinator is
from converged (issue 16, docs/leaderless-ops.md).

Owns: asking every node's coordinator of every leaderless database (the node's host, the
database's port) for ``INFO leaderless`` -- authenticated as ``ackdb-internal`` with the
shards' password when the CLI can read the cluster secret (a local cluster's ``--dir``),
without AUTH otherwise -- and the table of ``ll_hints_pending``,
``ll_ae_differing_leaves``, ``ll_ae_last_full_comparison_age_ms`` and
``ll_skew_flagged_nodes`` (nodes whose clocks ran too far ahead) it prints ("?" when
a coordinator does not answer or does not report a field). Every endpoint is asked at
once, each bounded by ``ENDPOINT_TIMEOUT_S``; nothing here runs on a node. Never changes
anything.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ackdb.cluster.dbops import host_of
from ackdb.cluster.status import StatusView
from ackdb.node.secrets import SecretError, read_secret, shard_password
from ackdb.node.shardfiles import SECRET_FILE
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

ENDPOINT_TIMEOUT_S = 1.0  # connect, AUTH and INFO of one coordinator
ENDPOINTS_MAX_PARALLEL = 16
FIELDS = (
    "ll_hints_pending",
    "ll_ae_differing_leaves",
    "ll_ae_last_full_comparison_age_ms",
    "ll_skew_flagged_nodes",
)
INTERNAL_USER = "ackdb-internal"


def internal_password(data_dir: str | None) -> str | None:
    """The shards' password, when ``data_dir`` (a local cluster's) holds the secret."""
    if data_dir is None:
        return None
    try:
        return shard_password(read_secret(str(Path(data_dir) / SECRET_FILE)))
    except SecretError:
        return None


def parse_info_fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep and not k.startswith("#"):
            out[k.strip()] = v.strip()
    return out


def ask(addr: str, password: str | None, timeout_s: float = ENDPOINT_TIMEOUT_S) -> dict[str, str]:
    """``INFO leaderless`` of the coordinator at ``addr``; {} when it does not answer."""
    try:
        with Client(addr, timeout_s=timeout_s) as c:
            if password is not None:
                try:
                    c.call("AUTH", INTERNAL_USER, password)
                except ReplyError:
                    pass  # a coordinator without internal access: try without
            reply = c.call("INFO", "leaderless")
    except (OSError, ReplyError):
        return {}
    if not isinstance(reply, bytes):
        return {}
    return parse_info_fields(reply.decode(errors="replace"))


def endpoints(v: StatusView) -> list[tuple[str, str, str]]:
    """(database, node, host:port) of every leaderless database's coordinator, sorted."""
    hosts = {
        m.id: host_of(m.fields["client"]) for m in v.members if m.fields.get("client", "?") != "?"
    }
    out = []
    for d in v.databases:
        if d.fields.get("type") == "leaderless" and d.fields.get("port"):
            for node, host in sorted(hosts.items()):
                out.append((d.id, node, f"{host}:{d.fields['port']}"))
    return out


def gather(v: StatusView, password: str | None) -> list[tuple[str, str, dict[str, str]]]:
    eps = endpoints(v)
    if not eps:
        return []
    with ThreadPoolExecutor(min(len(eps), ENDPOINTS_MAX_PARALLEL)) as pool:
        infos = list(pool.map(lambda e: ask(e[2], password), eps))
    return [(db, node, info) for (db, node, _), info in zip(eps, infos, strict=True)]


def print_leaderless(v: StatusView, data_dir: str | None) -> None:
    rows = gather(v, internal_password(data_dir))
    if not rows:
        return
    print()
    print(f"{'leaderless':<20}{'node':<8}{'hints pending':<15}{'differing leaves':<18}"
          f"{'last full comparison (ms ago)':<31}clock skew flagged")  # fmt: skip
    for db, node, info in rows:
        hints, leaves, age, skew = (info.get(f, "?") for f in FIELDS)
        if age == "-1":
            age = "never"
        print(f"{db:<20}{node:<8}{hints:<15}{leaves:<18}{age:<31}{skew or '-'}")
