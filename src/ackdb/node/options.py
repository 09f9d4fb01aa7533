"""Options of ``ackdb node``: parsing the command line into ``AgentOptions``.

Owns: the flags, their defaults and units, and their checks (with messages a user can
act on). Never starts anything.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ackdb.node.peerframes import parse_addr, valid_node_id

USAGE_EPILOG = """\
examples:
  start the first three members of a new cluster (each with the same --bootstrap and
  the same secret, made once with 'ackdb cluster secret --new cluster.secret'):
    ackdb node --id n1 --dir data/n1 --port 7001 --cluster-port 7101 \\
        --bootstrap n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103 \\
        --cluster-secret-file cluster.secret
  add a member to a running cluster (--join names any member's client port):
    ackdb node --id n4 --dir data/n4 --port 7004 --cluster-port 7104 --join 127.0.0.1:7001 \\
        --cluster-secret-file cluster.secret
  a one-member cluster creates its own secret (copy it with 'ackdb cluster secret'):
    ackdb node --id n1 --dir data/n1 --port 7001 --cluster-port 7101 \\
        --bootstrap n1=127.0.0.1:7101
"""


class OptionsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AgentOptions:
    node_id: str
    data_dir: str
    port: int
    cluster_port: int
    bind: str = "127.0.0.1"
    advertise_host: str = "127.0.0.1"
    join: str | None = None
    # (id, cluster address) of the first voters; these addresses are pinned: this member
    # always reaches those peers there (learnt addresses never replace them).
    bootstrap: tuple[tuple[str, str], ...] = ()
    tick_ms: int = 100
    # A follower campaigns after 8..16 ticks (0.8..1.6 s) without a leader: with the
    # 100 ms heartbeat that tolerates 7 lost heartbeats, and keeps a failover (timeout,
    # pre-vote, vote) under 2 s.
    election_ticks: int = 8
    heartbeat_ticks: int = 1
    snapshot_entries: int = 10_000
    request_timeout_ms: int = 5000
    retry_ms: int = 1000
    log_file: str = ""
    log_level: str = "notice"
    # Run one ``ackdb proxy`` per database on this node (the databases' endpoints).
    proxies: bool = True
    # The cluster secret to copy into the data directory (it is read from there later).
    cluster_secret_file: str = ""

    @property
    def client_addr(self) -> str:
        return _join_addr(self.advertise_host, self.port)

    @property
    def cluster_addr(self) -> str:
        return _join_addr(self.advertise_host, self.cluster_port)

    @property
    def election_ms(self) -> int:
        return self.election_ticks * self.tick_ms


def _join_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_bootstrap(text: str) -> tuple[tuple[str, str], ...]:
    """``n1=host:port,n2=host:port`` -> ((id, addr), ...); OptionsError if malformed."""
    out: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        node_id, sep, addr = part.partition("=")
        if not sep or not valid_node_id(node_id):
            raise OptionsError(f"--bootstrap: expected id=host:port, got {part!r}")
        try:
            parse_addr(addr)
        except ValueError as e:
            raise OptionsError(f"--bootstrap: {e}") from None
        if any(node_id == o for o, _ in out):
            raise OptionsError(f"--bootstrap: {node_id} listed twice")
        out.append((node_id, addr))
    if not out:
        raise OptionsError("--bootstrap: no members given")
    return tuple(out)


def _positive(name: str, v: int) -> int:
    if v <= 0:
        raise OptionsError(f"{name} must be positive")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ackdb node",
        description="Run one member of an ackdb cluster: a Raft member over TCP that "
        "serves the cluster's metadata store on its client port (RESP).",
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--id", required=True, help="this member's id (letters, digits, ._-)")
    p.add_argument("--dir", required=True, help="data directory (the Raft log and snapshots)")
    p.add_argument("--port", type=int, required=True, help="client port (RESP)")
    p.add_argument("--cluster-port", type=int, required=True, help="peer port (Raft)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    p.add_argument("--advertise-host", default=None, help="host others reach us at")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--join", metavar="HOST:PORT", help="a member's client port to join through")
    g.add_argument("--bootstrap", metavar="ID=HOST:CPORT,...", help="the first voters")
    p.add_argument(
        "--cluster-secret-file",
        metavar="PATH",
        default="",
        help="the cluster's secret, copied into the data directory on first start (needed "
        "to --join and for a --bootstrap of several voters; must match it later)",
    )
    p.add_argument("--tick-ms", type=int, default=100, help="Raft tick length (ms)")
    p.add_argument(
        "--election-ticks",
        type=int,
        default=8,
        help="election timeout (ticks; randomised up to twice that)",
    )
    p.add_argument(
        "--snapshot-entries",
        type=int,
        default=10_000,
        help="applied entries between snapshots (count)",
    )
    p.add_argument(
        "--request-timeout-ms",
        type=int,
        default=5000,
        help="how long a command may wait for a leader and a commit (ms)",
    )
    p.add_argument(
        "--proxies",
        default="yes",
        choices=("yes", "no"),
        help="run each database's proxy endpoint on this node (default yes)",
    )
    p.add_argument("--logfile", default="", help="log file (default: standard output)")
    p.add_argument(
        "--loglevel", default="notice", choices=("debug", "verbose", "notice", "warning")
    )
    return p


def parse_node_args(argv: list[str]) -> AgentOptions:
    """Options from ``argv``; argparse exits on usage errors, OptionsError for the rest."""
    a = build_parser().parse_args(argv)
    if not valid_node_id(a.id):
        raise OptionsError(f"--id: invalid node id {a.id!r}")
    for name, port in (("--port", a.port), ("--cluster-port", a.cluster_port)):
        if not 0 < port < 65536:
            raise OptionsError(f"{name} must be between 1 and 65535")
    if a.port == a.cluster_port:
        raise OptionsError("--port and --cluster-port must differ")
    bootstrap = parse_bootstrap(a.bootstrap) if a.bootstrap else ()
    if bootstrap and a.id not in dict(bootstrap):
        raise OptionsError(f"--bootstrap must list this node ({a.id})")
    if a.join:
        try:
            parse_addr(a.join)
        except ValueError as e:
            raise OptionsError(f"--join: {e}") from None
    if a.election_ticks < 2:
        raise OptionsError("--election-ticks must be at least 2")
    host = a.advertise_host or ("127.0.0.1" if a.bind in ("0.0.0.0", "::") else a.bind)
    return AgentOptions(
        node_id=a.id,
        data_dir=a.dir,
        port=a.port,
        cluster_port=a.cluster_port,
        bind=a.bind,
        advertise_host=host,
        join=a.join,
        bootstrap=bootstrap,
        tick_ms=_positive("--tick-ms", a.tick_ms),
        election_ticks=a.election_ticks,
        snapshot_entries=_positive("--snapshot-entries", a.snapshot_entries),
        request_timeout_ms=_positive("--request-timeout-ms", a.request_timeout_ms),
        log_file=a.logfile,
        log_level=a.loglevel,
        proxies=a.proxies == "yes",
        cluster_secret_file=a.cluster_secret_file,
    )
