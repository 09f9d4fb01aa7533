"""``python -m ackdb.node node|cluster|db ...``: the same as ``ackdb node``, ``ackdb
cluster`` and ``ackdb db``."""

import sys

from ackdb.node.cli_cluster import cluster_main, node_main

USAGE = "usage: python -m ackdb.node {node|cluster|db} [options]\n"


def main(argv: list[str]) -> int:
    if argv and argv[0] == "node":
        return node_main(argv[1:])
    if argv and argv[0] == "cluster":
        return cluster_main(argv[1:])
    if argv and argv[0] == "db":
        from ackdb.node.cli_db import db_main

        return db_main(argv[1:])
    sys.stderr.write(USAGE)
    return 2


sys.exit(main(sys.argv[1:]))
