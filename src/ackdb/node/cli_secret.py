"""``ackdb cluster secret``: make a new cluster secret file, or print or copy the secret
of a member's data directory (or of a ``cluster up`` directory); and the secret a local
cluster (``cluster up`` / ``add-node``) gives every member it starts.

Owns: that subcommand's flags and output. The file's format and rules are secrets.py's;
never overwrites a secret file with another secret.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ackdb.node.secrets import (
    SECRET_FILE,
    SecretError,
    encode,
    new_secret,
    node_secret,
    write_secret,
)


def add_secret_parser(sub: Any) -> None:
    """The ``secret`` subcommand, on ``ackdb cluster``'s subparsers."""
    sec: argparse.ArgumentParser = sub.add_parser(
        "secret",
        help="make a new cluster secret file, or print / copy a cluster's secret",
        description="With --new FILE: write a new secret to FILE (mode 0600), for the "
        "first members of a cluster (--cluster-secret-file). With --dir DATA (a member's "
        "data directory, or a directory made by 'cluster up'): print its secret, or copy it "
        "to --out FILE for a node that is to --join.",
    )
    g = sec.add_mutually_exclusive_group(required=True)
    g.add_argument("--new", metavar="FILE", help="write a new secret to FILE")
    g.add_argument("--dir", help="a member's data directory or a 'cluster up' directory")
    sec.add_argument("--out", metavar="FILE", help="with --dir: copy the secret to FILE")


def secret_main(a: argparse.Namespace) -> int:
    """Run ``ackdb cluster secret``; SecretError (or OSError) for the caller to print."""
    if a.new:
        if os.path.exists(a.new):
            raise SecretError(f"{a.new} exists; a secret file is never overwritten")
        write_secret(a.new, new_secret())
        print(f"wrote a new cluster secret to {a.new}")
        return 0
    secret = node_secret(a.dir)
    if a.out:
        write_secret(a.out, secret)
        print(f"copied the cluster secret of {a.dir} to {a.out}")
    else:
        sys.stdout.write(encode(secret).decode())
    return 0


def local_secret_args(data: Path) -> list[str]:
    """``--cluster-secret-file DATA/cluster.secret``, the file made on first use: one
    secret for every member of a local cluster."""
    path = data / SECRET_FILE
    if not path.exists():
        write_secret(str(path), new_secret())
        print(f"made the cluster secret {path} (nodes that join need it)")
    return ["--cluster-secret-file", str(path)]
