"""``ackdb node maintenance ID on|off``: put a member in maintenance (the failover
controller moves its primaries to other nodes, one planned failover at a time, and it
takes no new shards) or take it out (its primaries move back).

Owns: the entry point ``node_maintenance_main(argv)`` and what it prints. Finds a member
to ask as ``ackdb db`` does (``--dir`` of a local cluster, or ``--node HOST:PORT``) and
sends ``NODE.MAINTENANCE`` (node/dbserver.py). Decides nothing itself.

Exit status: 0 done; 1 the cluster refused or no member answered; 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys

from ackdb.node.cli_cluster import ClusterError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ackdb node maintenance",
        description="Move a node's primaries off it (on) or back to it (off).",
    )
    p.add_argument("id", help="the member's node id")
    p.add_argument("state", choices=("on", "off"))
    p.add_argument("--dir", default=None, help="a directory made by 'cluster up'")
    p.add_argument("--node", default=None, metavar="HOST:PORT", help="a member to ask")
    return p


def node_maintenance_main(argv: list[str]) -> int:
    from ackdb.node.cli_db import _call, _members

    a = _parser().parse_args(argv)
    try:
        _call(_members(a), ["NODE.MAINTENANCE", a.id, a.state])
    except (ClusterError, OSError) as e:
        sys.stderr.write(f"ackdb node maintenance: {e}\n")
        return 1
    what = "its primaries move to other nodes" if a.state == "on" else "its primaries move back"
    print(f"node {a.id}: maintenance {a.state} ({what}; see 'ackdb cluster status')")
    return 0
