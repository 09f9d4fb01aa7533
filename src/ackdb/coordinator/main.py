"""The ``ackdb coordinator`` process: a leaderless database's endpoint on one node.

SHELL MODULE (files, sockets, signals, the event loop). Command line: the proxy's
(``--db NAME --bind HOST --port P (--meta HOST:PORT | --topology-file PATH)
[--secret-file PATH] [--logfile F] [--loglevel L]``) plus ``--request-timeout-ms``
(default 2000), ``--ae-interval-ms`` and ``--no-anti-entropy``. The topology is followed
like the proxy's (``DB.TOPOLOGY`` long poll, or the file re-read when it changes) and
applied live: new partitions and replicas, levels defaults, the hint limits, the schema
and its version. The hint limits are the database's settings (``ackdb db create
--hint-bytes-max/--hint-count-max/--hint-age-ms-max``), never per process: the hint age
is part of the tombstone grace, which every coordinator of the database must share.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable

from ..cluster.databases import DbType
from ..leaderless.convergence import AE_INTERVAL_MS_DEFAULT
from ..proxy.log import Log
from ..proxy.main import (
    LONG_POLL_TIMEOUT_MS,
    RETRY_DELAY_S,
    add_endpoint_options,
    fetch_topology,
    first_topology,
    follow_topology_file,
    run_process,
)
from ..resp.aio import settle_gc
from ..resp.client import ReplyError
from .antientropy import AntiEntropy
from .endpoint import Endpoint
from .ports import Convergence
from .runner import REQUEST_TIMEOUT_MS, Runner


def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="ackdb coordinator", description="a leaderless database's endpoint"
    )
    add_endpoint_options(ap)
    ap.add_argument("--request-timeout-ms", type=int, default=REQUEST_TIMEOUT_MS)
    ap.add_argument(
        "--ae-interval-ms",
        type=int,
        default=AE_INTERVAL_MS_DEFAULT,
        help="anti-entropy: how often this coordinator compares its partitions' replicas",
    )
    ap.add_argument(
        "--no-anti-entropy",
        action="store_true",
        help="run no anti-entropy at all (CONVERGE then answers an error)",
    )
    return ap.parse_args(argv)


async def _follow_meta(ep: Endpoint, meta: str, db: str) -> None:
    while True:
        try:
            topo = await fetch_topology(meta, db, ep.topo.version, LONG_POLL_TIMEOUT_MS)
        except (TimeoutError, OSError, ValueError, ReplyError, ConnectionError) as e:
            ep.log.warning(f"DB.TOPOLOGY from {meta} failed: {e}")
            await asyncio.sleep(RETRY_DELAY_S)
            continue
        if topo.version > ep.topo.version:
            ep.set_topology(topo)


async def serve(
    opts: argparse.Namespace,
    log: Log,
    password: bytes | None,
    convergence: Convergence | None = None,
) -> int:
    topo = await first_topology(opts, log)
    if topo.db.name != opts.db or topo.db.type is not DbType.LEADERLESS:
        log.warning(f"the topology is of database '{topo.db.name}' ({topo.db.type.value})")
        return 1
    if convergence is None and not opts.no_anti_entropy:
        convergence = AntiEntropy(
            topo.node,
            password,
            log,
            interval_ms=opts.ae_interval_ms,
            request_timeout_ms=opts.request_timeout_ms,
        )
    runner = Runner(topo, password, log, opts.request_timeout_ms)
    port = opts.port or topo.db.port
    ep = Endpoint(topo, runner, password, log, port, convergence)
    await ep.listen(opts.bind)
    log.notice(
        f"coordinator of '{topo.db.name}' (node {topo.node} = version node"
        f" {runner.clock.node}, {len(topo.db.shards)} partitions, n ="
        f" {topo.db.replication_factor}, topology {topo.version}) ready on {opts.bind}:{port}"
    )
    settle_gc()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [loop.create_task(runner.replay_loop())]
    if opts.topology_file:
        follow = follow_topology_file(
            opts.topology_file, lambda: ep.topo.version, ep.set_topology, log
        )
        tasks.append(loop.create_task(follow))
    else:
        tasks.append(loop.create_task(_follow_meta(ep, opts.meta, opts.db)))
    if convergence is not None:
        convergence.set_topology(topo)
        tasks.append(loop.create_task(convergence.run()))
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await ep.close()
    log.notice("coordinator stopped")
    return 0


def coordinator_main(argv: list[str], read_shard_password: Callable[[str], str]) -> int:
    """``ackdb coordinator``; ``read_shard_password`` turns a secret file into the
    replicas' password (node/secrets.py, passed by the caller)."""
    opts = _args(argv)
    if opts.ae_interval_ms <= 0:
        sys.stderr.write("ackdb coordinator: --ae-interval-ms must be positive\n")
        return 1
    return run_process("ackdb coordinator", "coordinator", opts, read_shard_password, serve)
