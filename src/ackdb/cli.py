"""The ``ackdb`` command: ``ackdb server [CONFIGFILE] [--directive value ...]``.

Owns: argument handling of the command line and turning configuration errors into the
messages Redis users know. The server itself lives in ``ackdb.server``.
"""

from __future__ import annotations

import os
import sys

from . import REDIS_COMPAT_VERSION, __version__

USAGE = """\
Usage: ackdb server [/path/to/ackdb.conf] [options] [-]
       ackdb server - (read config from stdin)
       ackdb server -v or --version
       ackdb server -h or --help
       ackdb --version

ackdb server takes redis.conf files and redis-server's options unchanged.

Examples:
       ackdb server (run the server with default conf)
       echo 'maxclients 100' | ackdb server -
       ackdb server /etc/redis/6379.conf
       ackdb server --port 7777
       ackdb server --port 7777 --replicaof 127.0.0.1 8888
       ackdb server /etc/myredis.conf --loglevel verbose -
       ackdb server /etc/myredis.conf --loglevel verbose

Other commands:
       ackdb --version                     print the version and exit
       ackdb check-aof [--fix] FILE        verify (and repair) an AOF: a manifest or one file
       ackdb check-snapshot FILE           verify a snapshot file (dump.rdb)
       ackdb node --id ID --dir DIR --port P --cluster-port C [--join HOST:PORT]
                  [--cluster-secret-file F]  run a cluster member (Raft metadata store)
       ackdb node maintenance ID on|off    move a member's primaries off it / back
       ackdb cluster up|status|add-node|remove-node|down|secret ...
                                           a local cluster on loopback (docs/cluster.md)
       ackdb db create|list|info|failover|delete ...
                                           the cluster's databases (docs/cluster.md)
       ackdb schema create|add|drop|show DB ...
                                           a leaderless database's collections
       ackdb proxy --db NAME --bind HOST --port P (--meta HOST:PORT | --topology-file F)
                   [--secret-file F] [--logfile F] [--loglevel L]
                                           a database's endpoint (docs/proxy.md)
       ackdb coordinator --db NAME --bind HOST --port P (--meta HOST:PORT | --topology-file F)
                   [--secret-file F] [--logfile F] [--loglevel L] [--request-timeout-ms MS]
                                           a leaderless database's endpoint (docs/leaderless.md)
"""


def version_line() -> str:
    from .compiled import build_kind

    return (
        f"ackdb {__version__} (Redis {REDIS_COMPAT_VERSION} compatible) "
        f"v={REDIS_COMPAT_VERSION} bits=64 build={build_kind()}"
    )


def server_main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if argv and argv[0] in ("-v", "--version"):
        print(version_line())
        return 0
    from .compiled import build_kind
    from .server.config import ConfigError, load_config, parse_command_line
    from .server.log import Log

    cmdline = parse_command_line(argv)
    boot = Log("notice")
    boot.warning("oO0OoO0OoO0Oo ackdb is starting oO0OoO0OoO0Oo")
    boot.warning(
        f"ackdb version={__version__}, redis-compat={REDIS_COMPAT_VERSION}, bits=64, "
        f"build={build_kind()}, pid={os.getpid()}, just started"
    )
    try:
        config = load_config(cmdline.config_file, cmdline.overrides, read_stdin=cmdline.read_stdin)
    except ConfigError as e:
        sys.stderr.write(f"\n*** FATAL CONFIG FILE ERROR (ackdb {__version__}) ***\n{e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"Fatal error, can't open config file '{e.filename}': {e.strerror}\n")
        return 1
    if cmdline.config_file is None:
        boot.warning(
            "Warning: no config file specified, using the default config. In order to "
            "specify a config file use ackdb server /path/to/ackdb.conf"
        )
    else:
        boot.warning("Configuration loaded")
    for w in config.warnings:
        boot.warning(w)
    try:
        log = Log(config.get("loglevel"), config.get("logfile"))
    except OSError as e:
        sys.stderr.write(f"Can't open the log file: {e.strerror}\n")
        return 1
    directory = config.get("dir")
    try:
        os.chdir(directory)
    except OSError as e:
        log.warning(f"Can't chdir to '{directory}': {e.strerror}")
        return 1
    from .server.node import run

    return run(config, log)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if args else 1
    if args[0] in ("-v", "--version", "version"):
        print(version_line())
        return 0
    if args[0] == "server":
        return server_main(args[1:])
    if args[0] == "check-aof":
        from .persistence.check import check_aof_main

        return check_aof_main(args[1:])
    if args[0] == "node" and args[1:2] == ["maintenance"]:
        from .node.cli_node import node_maintenance_main

        return node_maintenance_main(args[2:])
    if args[0] == "node":
        from .node.cli_cluster import node_main

        return node_main(args[1:])
    if args[0] == "cluster":
        from .node.cli_cluster import cluster_main

        return cluster_main(args[1:])
    if args[0] == "db":
        from .node.cli_db import db_main

        return db_main(args[1:])
    if args[0] == "schema":
        from .node.cli_schema import schema_main

        return schema_main(args[1:])
    if args[0] == "proxy":
        from .node.secrets import read_secret, shard_password
        from .proxy.main import proxy_main

        return proxy_main(args[1:], lambda path: shard_password(read_secret(path)))
    if args[0] == "coordinator":
        from .coordinator.main import coordinator_main
        from .node.secrets import read_secret, shard_password

        return coordinator_main(args[1:], lambda path: shard_password(read_secret(path)))
    if args[0] == "check-snapshot":
        from .persistence.check import check_snapshot_main

        return check_snapshot_main(args[1:])
    sys.stderr.write(f"ackdb: unknown command '{args[0]}'\n\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
