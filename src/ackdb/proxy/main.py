"""The ``ackdb proxy`` process: one database's endpoint on one node.

SHELL MODULE (files, sockets, signals, the event loop). Command line::

    ackdb proxy --db NAME --bind HOST --port P (--meta HOST:PORT | --topology-file PATH)
                [--secret-file PATH] [--logfile F] [--loglevel L]

The topology comes from the node's client port (``DB.TOPOLOGY name known-version
timeout-ms``, long-polled: the node answers when the version passes ``known-version``, or
at the timeout with the same topology) or from a file holding ``Topology.to_bytes()``
(tests and benchmarks; re-read when it changes). With ``--secret-file`` the endpoint
authenticates to the shards with ``shard_password(secret)``; without, it sends no AUTH.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from ..cluster.databases import Topology
from ..resp.aio import new_event_loop, settle_gc
from ..resp.client import Client, ReplyError
from .log import LEVELS, Log
from .router import Router
from .shell import Endpoint

LONG_POLL_TIMEOUT_MS = 10_000  # how long the node may hold one DB.TOPOLOGY request
RETRY_DELAY_S = 1.0  # after a failed DB.TOPOLOGY, before the next try
FILE_POLL_S = 0.5  # how often a topology file is checked for changes


def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="ackdb proxy", description="a database's endpoint")
    add_endpoint_options(ap)
    return ap.parse_args(argv)


def add_endpoint_options(ap: argparse.ArgumentParser) -> None:
    """The options every endpoint process takes (``ackdb proxy``, ``ackdb coordinator``)."""
    ap.add_argument("--db", required=True, help="the database's name")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="default: the database's port")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--meta", help="HOST:PORT of the node's client port (DB.TOPOLOGY)")
    src.add_argument("--topology-file", help="a file holding Topology.to_bytes()")
    ap.add_argument("--secret-file", help="the cluster secret (the shards' password)")
    ap.add_argument("--logfile", default="")
    ap.add_argument("--loglevel", default="notice", choices=sorted(LEVELS))


def read_topology_file(path: str) -> Topology:
    with open(path, "rb") as f:
        return Topology.from_bytes(f.read())


async def fetch_topology(meta: str, db: str, known: int, timeout_ms: int) -> Topology:
    client = await Client.connect(meta)
    try:
        args: list[str | int] = ["DB.TOPOLOGY", db]
        if known >= 0:
            args += [known, timeout_ms]
        reply = await asyncio.wait_for(client.call(*args), timeout_ms / 1000 + 10)
    finally:
        await client.close()
    if not isinstance(reply, bytes):
        raise ValueError(f"DB.TOPOLOGY answered {reply!r}")
    return Topology.from_bytes(reply)


async def follow_meta(ep: Endpoint, meta: str, db: str) -> None:
    """Long-poll the node for topology changes, forever. A shard's -READONLY (the
    endpoint's topology is stale: ``Endpoint.on_stale``) cuts the long poll short and
    asks for the current topology at once."""
    stale = asyncio.Event()
    ep.on_stale = stale.set
    while True:
        known = ep.router.topology.version
        try:
            topo = await _next_topology(meta, db, known, stale)
        except (TimeoutError, OSError, ValueError, ReplyError, ConnectionError) as e:
            ep.log.warning(f"DB.TOPOLOGY from {meta} failed: {e}")
            await asyncio.sleep(RETRY_DELAY_S)
            continue
        if topo.version > ep.router.topology.version:
            ep.set_router(Router.of(topo))


async def _next_topology(meta: str, db: str, known: int, stale: asyncio.Event) -> Topology:
    """The next topology of the long poll, or the current one as soon as ``stale`` is set."""
    poll = asyncio.ensure_future(fetch_topology(meta, db, known, LONG_POLL_TIMEOUT_MS))
    woken = asyncio.ensure_future(stale.wait())
    try:
        await asyncio.wait({poll, woken}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # cancelled (the endpoint stops): so is the poll
        poll.cancel()
        await asyncio.gather(poll, return_exceptions=True)
        raise
    finally:
        woken.cancel()
    if poll.done():
        return poll.result()
    poll.cancel()
    await asyncio.gather(poll, return_exceptions=True)
    stale.clear()
    return await fetch_topology(meta, db, -1, 0)


async def follow_file(ep: Endpoint, path: str) -> None:
    await follow_topology_file(
        path, lambda: ep.router.topology.version, lambda t: ep.set_router(Router.of(t)), ep.log
    )


async def follow_topology_file(
    path: str, version: Callable[[], int], apply: Callable[[Topology], None], log: Log
) -> None:
    """Forever: re-read ``path`` when it changes and ``apply`` a topology newer than
    ``version()`` (an endpoint's or a coordinator's ``--topology-file``)."""
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
            log.warning(f"topology file {path}: {e}")
            continue
        if topo.version > version():
            apply(topo)


async def first_topology(opts: argparse.Namespace, log: Log) -> Topology:
    """The database's topology from ``--topology-file``, or from ``--meta`` (retried
    until the node answers)."""
    if opts.topology_file:
        return read_topology_file(opts.topology_file)
    while True:
        try:
            return await fetch_topology(opts.meta, opts.db, -1, 0)
        except (TimeoutError, OSError, ValueError, ReplyError, ConnectionError) as e:
            log.warning(f"waiting for the topology of '{opts.db}' from {opts.meta}: {e}")
            await asyncio.sleep(RETRY_DELAY_S)


async def serve(opts: argparse.Namespace, log: Log, shard_password: bytes | None) -> int:
    topo = await first_topology(opts, log)
    if topo.db.name != opts.db:
        log.warning(f"the topology is of database '{topo.db.name}', not '{opts.db}'")
        return 1
    port = opts.port or topo.db.port
    ep = Endpoint(Router.of(topo), shard_password, log, port)
    await ep.listen(opts.bind)
    log.notice(
        f"endpoint of '{topo.db.name}' ({len(topo.db.shards)} shards, topology "
        f"{topo.version}) ready on {opts.bind}:{port}"
    )
    settle_gc()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if opts.topology_file:
        feed = loop.create_task(follow_file(ep, opts.topology_file))
    else:
        feed = loop.create_task(follow_meta(ep, opts.meta, opts.db))
    await stop.wait()
    feed.cancel()
    await asyncio.gather(feed, return_exceptions=True)
    await ep.close()
    log.notice("endpoint stopped")
    return 0


def proxy_main(argv: list[str], read_shard_password: Callable[[str], str]) -> int:
    """``ackdb proxy``; ``read_shard_password`` turns a secret file into the shards'
    password (node/secrets.py, which the caller passes: proxy/ does not import node/)."""
    return run_process("ackdb proxy", "endpoint", _args(argv), read_shard_password, serve)


def run_process(
    prog: str,
    what: str,
    opts: argparse.Namespace,
    read_shard_password: Callable[[str], str],
    serve: Callable[[argparse.Namespace, Log, bytes | None], Awaitable[int]],
) -> int:
    """The body of an endpoint process (``ackdb proxy``, ``ackdb coordinator``): the
    shards' password from ``--secret-file``, the log, then ``serve`` on a fresh loop."""
    password = None
    if opts.secret_file:
        try:
            password = read_shard_password(opts.secret_file).encode()
        except Exception as e:
            sys.stderr.write(f"{prog}: {e}\n")
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
        log.warning(f"{what} failed: {e}")
        return 1
    finally:
        loop.close()
