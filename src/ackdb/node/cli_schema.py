"""``ackdb schema``: a leaderless database's collections, changed through the cluster's
Raft log (issue 16, docs/leaderless-ops.md).

Owns: the entry point ``schema_main(argv)`` and printing what the ``SCHEMA.*`` commands
of the client port answer. Finds the cluster like ``ackdb db`` does (``--dir`` of a
local cluster, or ``--node HOST:PORT``; the next member when one does not answer).
Decides nothing: the metadata state machine checks every change (cluster/schemaops.py).

    ackdb schema create DB COLLECTION PREFIX [NAME:TYPE ...]
    ackdb schema add DB COLLECTION NAME:TYPE [NAME:TYPE ...]
    ackdb schema drop DB COLLECTION
    ackdb schema show DB

Exit status: 0 done; 1 the cluster refused (the message is its error) or no member
answered; 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ackdb.cluster.dbtext import show_prefix
from ackdb.cluster.schema import TYPES
from ackdb.node.cli_cluster import ClusterError
from ackdb.node.cli_db import _call, _members


def _parser() -> argparse.ArgumentParser:
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--dir", default=None, help="a directory made by 'cluster up'")
    where.add_argument("--node", default=None, metavar="HOST:PORT", help="a member to ask")
    p = argparse.ArgumentParser(
        prog="ackdb schema",
        description=f"A leaderless database's collections (property types: {', '.join(TYPES)}).",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    cr = sub.add_parser("create", parents=[where], help="create a collection")
    cr.add_argument("db")
    cr.add_argument("collection")
    cr.add_argument("prefix", help="the key prefix of the collection's objects")
    cr.add_argument("properties", nargs="*", metavar="NAME:TYPE")
    add = sub.add_parser("add", parents=[where], help="add properties to a collection")
    add.add_argument("db")
    add.add_argument("collection")
    add.add_argument("properties", nargs="+", metavar="NAME:TYPE")
    rm = sub.add_parser("drop", parents=[where], help="drop a collection")
    rm.add_argument("db")
    rm.add_argument("collection")
    show = sub.add_parser("show", parents=[where], help="the schema version and collections")
    show.add_argument("db")
    return p


def schema_main(argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    try:
        addrs = _members(a)
        if a.cmd == "show":
            _show(a.db, _call(addrs, ["SCHEMA.GET", a.db]))
            return 0
        if a.cmd == "create":
            args = ["SCHEMA.CREATE", a.db, a.collection, a.prefix, *a.properties]
        elif a.cmd == "add":
            args = ["SCHEMA.ADD", a.db, a.collection, *a.properties]
        else:
            args = ["SCHEMA.DROP", a.db, a.collection]
        version = _call(addrs, args)
        done = {"create": "created", "add": "changed", "drop": "dropped"}[a.cmd]
        print(f"{done} collection {a.collection} of {a.db}: schema version {version}")
        return 0
    except (ClusterError, OSError) as e:
        sys.stderr.write(f"ackdb schema {a.cmd}: {e}\n")
        return 1


def _show(db: str, reply: Any) -> None:
    version, collections = reply
    print(f"database {db}: schema version {version}, {len(collections)} collection(s)")
    for name, prefix, props in collections:
        pairs = [f"{props[i].decode()}:{props[i + 1].decode()}" for i in range(0, len(props), 2)]
        print(
            f"  {name.decode()}: prefix {show_prefix(prefix)}, properties {' '.join(pairs) or '-'}"
        )
