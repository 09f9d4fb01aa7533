"""``python -m ackdb.node node ...`` and ``python -m ackdb.node cluster ...``: the same as
``ackdb node`` and ``ackdb cluster``."""

import sys

from ackdb.node.cli_cluster import cluster_main, node_main

USAGE = "usage: python -m ackdb.node {node|cluster} [options]\n"


def main(argv: list[str]) -> int:
    if argv and argv[0] == "node":
        return node_main(argv[1:])
    if argv and argv[0] == "cluster":
        return cluster_main(argv[1:])
    sys.stderr.write(USAGE)
    return 2


sys.exit(main(sys.argv[1:]))
