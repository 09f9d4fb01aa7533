"""The ``ackdb coordinator`` process: a leaderless database's endpoint on one node.

SHELL MODULE (files, sockets, signals, the event loop). Command line: the proxy's
(``--db NAME --bind HOST --port P (--meta HOST:PORT | --topology-file PATH)
[--secret-file PATH] [--logfile F] [--loglevel L]``) plus the hint limits
(``--hint-bytes-max``, ``--hint-count-max``, ``--hint-age-ms-max``) and
``--request-timeout-ms`` (default 2000). The topology is followed like the proxy's
(``DB.TOPOLOGY`` long poll, or the file re-read when it changes) and applied live: new
partitions and replicas, levels defaults, the schema and its version.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable

from ..cluster.databases import DbType, Topology
from ..leaderless.hints import (
    HINT_AGE_MS_MAX_DEFAULT,
    HINT_BYTES_MAX_DEFAULT,
    HINT_COUNT_MAX_DEFAULT,
)
from ..proxy.log import LEVELS, Log
from ..proxy.main import LONG_POLL_TIMEOUT_MS, RETRY_DELAY_S, fetch_topology, read_topology_file
from ..resp.aio import new_event_loop
from ..resp.client import ReplyError
from .endpoint import Endpoint
from .ports import Convergence
from .runner import REQUEST_TIMEOUT_MS, HintLimits, Runner

FILE_POLL_S = 0.5


def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="ackdb coordinator", description="a leaderless database's endpoint"
    )
    ap.add_argument("--db", required=True, help="the database's name")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="default: the database's port")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--meta", help="HOST:PORT of the node's client port (DB.TOPOLOGY)")
    src.add_argument("--topology-file", help="a file holding Topology.to_bytes()")
    ap.add_argument("--secret-file", help="the cluster secret (replicas' password)")
    ap.add_argument("--logfile", default="")
    ap.add_argument("--loglevel", default="notice", choices=sorted(LEVELS))
    ap.add_argument("--hint-bytes-max", type=int, default=HINT_BYTES_MAX_DEFAULT)
    ap.add_argument("--hint-count-max", type=int, default=HINT_COUNT_MAX_DEFAULT)
    ap.add_argument("--hint-age-ms-max", type=int, default=HINT_AGE_MS_MAX_DEFAULT)
    ap.add_argument("--request-timeout-ms", type=int, default=REQUEST_TIMEOUT_MS)
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


async def _follow_file(ep: Endpoint, path: str) -> None:
    mtime = os.stat(path).st_mtime_ns
    while True:
        await asyncio.sleep(FILE_POLL_S)
        try:
            now = os.stat(path).st_mtime_ns
            if now == mtime:
                continue
            mtime = now
            topo = read_topology_file(path)
        except (OSError, ValueError) as e:
            ep.log.warning(f"topology file {path}: {e}")
            continue
        if topo.version > ep.topo.version:
            ep.set_topology(topo)


async def _first_topology(opts: argparse.Namespace, log: Log) -> Topology:
    if opts.topology_file:
        return read_topology_file(opts.topology_file)
    while True:
        try:
            return await fetch_topology(opts.meta, opts.db, -1, 0)
        except (TimeoutError, OSError, ValueError, ReplyError, ConnectionError) as e:
            log.warning(f"waiting for the topology of '{opts.db}' from {opts.meta}: {e}")
            await asyncio.sleep(RETRY_DELAY_S)


async def serve(
    opts: argparse.Namespace,
    log: Log,
    password: bytes | None,
    convergence: Convergence | None = None,
) -> int:
    topo = await _first_topology(opts, log)
    if topo.db.name != opts.db or topo.db.type is not DbType.LEADERLESS:
        log.warning(f"the topology is of database '{topo.db.name}' ({topo.db.type.value})")
        return 1
    limits = HintLimits(opts.hint_bytes_max, opts.hint_count_max, opts.hint_age_ms_max)
    runner = Runner(topo, password, limits, log, opts.request_timeout_ms)
    port = opts.port or topo.db.port
    ep = Endpoint(topo, runner, password, log, port, convergence)
    await ep.listen(opts.bind)
    log.notice(
        f"coordinator of '{topo.db.name}' (node {topo.node} = version node"
        f" {runner.clock.node}, {len(topo.db.shards)} partitions, n ="
        f" {topo.db.replication_factor}, topology {topo.version}) ready on {opts.bind}:{port}"
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [loop.create_task(runner.replay_loop())]
    if opts.topology_file:
        tasks.append(loop.create_task(_follow_file(ep, opts.topology_file)))
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
    password = None
    if opts.secret_file:
        try:
            password = read_shard_password(opts.secret_file).encode()
        except Exception as e:
            sys.stderr.write(f"ackdb coordinator: {e}\n")
            return 1
    try:
        log = Log(opts.loglevel, opts.logfile)
    except OSError as e:
        sys.stderr.write(f"Can't open the log file: {e.strerror}\n")
        return 1
    loop = new_event_loop()
    try:
        return loop.run_until_complete(serve(opts, log, password))
    except OSError as e:
        log.warning(f"coordinator failed: {e}")
        return 1
    finally:
        loop.close()
