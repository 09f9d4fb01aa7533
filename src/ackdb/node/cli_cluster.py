"""``ackdb node`` and ``ackdb cluster``: run a member, and manage a local cluster.

Owns: the two entry points ``node_main(argv)`` and ``cluster_main(argv)`` and the layout
of a local cluster's directory (``ackdb cluster up --dir DATA``):

    DATA/cluster.json   the members started here: id, host, ports, data directory
    DATA/cluster.secret the cluster secret, made by 'cluster up' and given to every member
                        it starts (each keeps a copy in DATA/<id>/cluster.secret)
    DATA/<id>/          a member's data (its Raft log and snapshots)
    DATA/<id>.pid       a member's process id, while it runs
    DATA/<id>.log       a member's log

Member i listens on its own loopback host 127.0.0.<i> (``--bind``/``--advertise-host``),
so every member serves a database's endpoint on the same port, as separate machines do
(a layout without hosts, from an older version, keeps 127.0.0.1 for all).
Members run as background processes (their own session, so they outlive the command).
Every wait is bounded (``--timeout`` seconds) and polls; nothing here sleeps blindly.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ackdb.cluster.status import StatusView, parse_status
from ackdb.node.cli_secret import add_secret_parser, local_secret_args, secret_main
from ackdb.node.cli_shards import print_instances
from ackdb.node.options import OptionsError, parse_node_args
from ackdb.node.secrets import SecretError
from ackdb.node.shardfiles import stop_leftovers
from ackdb.resp.aio import new_event_loop
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

POLL_INTERVAL_S = 0.1
STOP_TIMEOUT_S = 10.0
DEFAULT_BASE_PORT = 7001
# Cluster ports sit this far above client ports.
CLUSTER_PORT_OFFSET = 100


def node_main(argv: list[str]) -> int:
    """``ackdb node ...``: run one member until SIGTERM/SIGINT (or its removal)."""
    try:
        opts = parse_node_args(argv)
    except OptionsError as e:
        sys.stderr.write(f"ackdb node: {e}\n")
        return 2
    from ackdb.node.agent import Agent
    from ackdb.node.raftstore import RaftStoreError
    from ackdb.server.log import Log

    try:
        log = Log(opts.log_level, opts.log_file)
        os.makedirs(opts.data_dir, exist_ok=True)
    except OSError as e:
        sys.stderr.write(f"ackdb node: {e}\n")
        return 1
    log.role = "N"
    loop = new_event_loop()
    try:
        agent = Agent(opts, log)
        return loop.run_until_complete(agent.run())
    except (OSError, RaftStoreError, SecretError) as e:
        log.warning(f"Cannot start: {e}")
        if opts.log_file:
            sys.stderr.write(f"ackdb node: cannot start: {e}\n")
        return 1
    finally:
        loop.close()


# -- ackdb cluster ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ackdb cluster", description="Manage an ackdb cluster.")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a local cluster on loopback")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--dir", required=True)
    up.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT)
    up.add_argument("--snapshot-entries", type=int, default=None)
    up.add_argument("--election-ticks", type=int, default=None)
    up.add_argument("--timeout", type=float, default=30.0)
    up.add_argument(
        "--default-db", choices=("yes", "no"), default="yes",
        help="create the 'default' database (3 shards, 1 replica, port 12000)",
    )  # fmt: skip
    up.add_argument("--db-port", type=int, default=None, help="its port (default 12000)")
    st = sub.add_parser("status", help="leader, term, commit index, members")
    st.add_argument("--host", default="127.0.0.1")
    st.add_argument("--port", type=int, default=None)
    st.add_argument("--dir", default=None, help="a directory made by 'cluster up'")
    add = sub.add_parser("add-node", help="start a new local member and add it")
    add.add_argument("--dir", required=True)
    add.add_argument("--id", default=None)
    add.add_argument("--port", type=int, default=None)
    add.add_argument("--cluster-port", type=int, default=None)
    add.add_argument("--timeout", type=float, default=30.0)
    rm = sub.add_parser("remove-node", help="remove a member (it exits once removed)")
    rm.add_argument("id")
    rm.add_argument("--dir", default=None)
    rm.add_argument("--host", default="127.0.0.1")
    rm.add_argument("--port", type=int, default=None)
    rm.add_argument("--timeout", type=float, default=30.0)
    down = sub.add_parser("down", help="stop a local cluster")
    down.add_argument("--dir", required=True)
    add_secret_parser(sub)
    return p


def cluster_main(argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.cmd == "up":
            return _up(a)
        if a.cmd == "status":
            return _status(a)
        if a.cmd == "add-node":
            return _add_node(a)
        if a.cmd == "remove-node":
            return _remove_node(a)
        if a.cmd == "secret":
            return secret_main(a)
        return _down(Path(a.dir))
    except (ClusterError, OSError, SecretError) as e:
        sys.stderr.write(f"ackdb cluster {a.cmd}: {e}\n")
        return 1


class ClusterError(Exception):
    pass


def _load(data: Path) -> dict[str, Any]:
    try:
        v = json.loads((data / "cluster.json").read_text())
    except FileNotFoundError:
        raise ClusterError(f"no cluster in {data} (run 'ackdb cluster up' first)") from None
    assert isinstance(v, dict)
    return v


def _save(data: Path, layout: dict[str, Any]) -> None:
    tmp = data / "cluster.json.tmp"
    tmp.write_text(json.dumps(layout, indent=2) + "\n")
    tmp.replace(data / "cluster.json")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A member outlives the command that started it, so its parent is init, which may
    # be slow to reap it: an exited (zombie) process is not alive.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _pid(data: Path, node_id: str) -> int | None:
    try:
        pid = int((data / f"{node_id}.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _spawn(data: Path, node: dict[str, Any], extra: list[str]) -> int:
    argv = [
        sys.executable, "-m", "ackdb.node", "node",
        "--id", node["id"], "--dir", str(data / node["id"]),
        "--port", str(node["port"]), "--cluster-port", str(node["cluster_port"]),
        "--bind", _host(node), "--advertise-host", _host(node),
        *extra,
    ]  # fmt: skip
    with open(data / f"{node['id']}.log", "ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    (data / f"{node['id']}.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def _query(addr: str, timeout_s: float = 2.0) -> StatusView:
    with Client(addr, timeout_s=timeout_s) as c:
        return parse_status(c.call("CLUSTER.STATUS").decode())


def _leader_view(addrs: list[str]) -> StatusView | None:
    """The leader's status, asking the given client addresses in turn; None if no member
    answering knows a leader."""
    for addr in addrs:
        try:
            v = _query(addr)
        except (OSError, ReplyError):
            continue
        if v.role == "leader":
            return v
        leader_addr = v.fields.get("leader_addr")
        if leader_addr:
            try:
                lv = _query(leader_addr)
            except (OSError, ReplyError):
                continue
            if lv.role == "leader":
                return lv
    return None


def _wait(pred: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(POLL_INTERVAL_S)


def _host(node: dict[str, Any]) -> str:
    return str(node.get("host", "127.0.0.1"))


def _addrs(layout: dict[str, Any]) -> list[str]:
    return [f"{_host(n)}:{n['port']}" for n in layout["nodes"]]


def _up(a: argparse.Namespace) -> int:
    data = Path(a.dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    if (data / "cluster.json").exists():
        layout = _load(data)
    else:
        if not 1 <= a.nodes <= 99:
            raise ClusterError("--nodes must be between 1 and 99")
        nodes = [
            {"id": f"n{i}", "host": f"127.0.0.{i}", "port": a.base_port + i - 1,
             "cluster_port": a.base_port + CLUSTER_PORT_OFFSET + i - 1}
            for i in range(1, a.nodes + 1)
        ]  # fmt: skip
        layout = {"nodes": nodes, "options": []}
        if a.snapshot_entries:
            layout["options"] += ["--snapshot-entries", str(a.snapshot_entries)]
        if a.election_ticks:
            layout["options"] += ["--election-ticks", str(a.election_ticks)]
        _save(data, layout)
    boot = ",".join(f"{n['id']}={_host(n)}:{n['cluster_port']}" for n in layout["nodes"])
    secret = local_secret_args(data)
    for n in layout["nodes"]:
        if _pid(data, n["id"]) is not None:
            print(f"{n['id']} already running")
            continue
        pid = _spawn(data, n, ["--bootstrap", boot, *secret, *layout["options"]])
        print(f"started {n['id']}: client port {n['port']}, pid {pid}, log {data}/{n['id']}.log")

    def leader_or_crash() -> StatusView | None:
        for n in layout["nodes"]:
            if _pid(data, n["id"]) is None:
                log = (data / f"{n['id']}.log").read_text(errors="replace")
                tail = "".join(log.splitlines(keepends=True)[-5:])
                raise ClusterError(f"{n['id']} exited; the end of its log:\n{tail}")
        return _leader_view(_addrs(layout))

    _print_status(_wait(leader_or_crash, a.timeout, "a leader"))
    if a.default_db == "yes":
        from ackdb.node.cli_default_db import ensure_default_db

        first = layout["nodes"][0]
        port = ensure_default_db(
            _addrs(layout), len(layout["nodes"]), _host(first), a.db_port,
            lambda: _leader_view(_addrs(layout)), max(a.timeout, 60.0),
        )  # fmt: skip
        print(f"ready: redis-cli -h {_host(first)} -p {port}")
    return 0


def _status(a: argparse.Namespace) -> int:
    if a.port is not None:
        addrs = [f"{a.host}:{a.port}"]
    elif a.dir is not None:
        addrs = _addrs(_load(Path(a.dir)))
    else:
        addrs = [f"{a.host}:{DEFAULT_BASE_PORT}"]
    view = _leader_view(addrs)
    if view is None:
        for addr in addrs:
            try:
                own = _query(addr)
            except (OSError, ReplyError) as e:
                print(f"{addr}: not answering ({e})")
                continue
            print(f"{addr}: node {own.fields.get('node_id')} is {own.role}, no leader known")
        return 1
    _print_status(view)
    print_instances(view)
    from ackdb.node.cli_llstatus import print_leaderless

    print_leaderless(view, a.dir)
    return 0


def _print_status(v: StatusView) -> None:
    f = v.fields
    print(
        f"leader {f.get('leader_id')} ({f.get('leader_addr')}), term {f.get('term')}, "
        f"commit index {f.get('commit_index')}"
    )
    cols = ("client", "cluster", "voter", "state", "health", "match", "next")
    width = {"client": 18, "cluster": 18, "state": 14}
    print(f"{'id':<8}" + "".join(f"{c:<{width.get(c, 10)}}" for c in cols))
    for m in v.members:
        row = f"{m.id:<8}"
        for c in cols:
            row += f"{m.fields.get(c, '?'):<{width.get(c, 10)}}"
        print(row.rstrip())
    from ackdb.node.cli_db import print_databases  # (cli_db imports this module)

    print_databases(v)


def _add_node(a: argparse.Namespace) -> int:
    data = Path(a.dir).resolve()
    layout = _load(data)
    ids = {n["id"] for n in layout["nodes"]}
    k = len(layout["nodes"]) + 1
    while f"n{k}" in ids:
        k += 1
    first = layout["nodes"][0]
    base = first["port"]
    node = {
        "id": a.id or f"n{k}",
        "host": f"127.0.0.{k}",
        "port": a.port or base + k - 1,
        "cluster_port": a.cluster_port or base + CLUSTER_PORT_OFFSET + k - 1,
    }
    if node["id"] in ids:
        raise ClusterError(f"{node['id']} is already in {data}/cluster.json")
    live = [addr for addr in _addrs(layout) if _answers(addr)]
    if not live:
        raise ClusterError("no member answers; is the cluster up?")
    layout["nodes"].append(node)
    _save(data, layout)
    secret = local_secret_args(data)
    pid = _spawn(data, node, ["--join", live[0], *secret, *layout["options"]])
    print(f"started {node['id']}: client port {node['port']}, pid {pid}; joining via {live[0]}")

    def is_voter() -> StatusView | None:
        v = _leader_view(live)
        if v is None:
            return None
        return (
            v
            if any(m.id == node["id"] and m.fields.get("voter") == "yes" for m in v.members)
            else None
        )

    _print_status(_wait(is_voter, a.timeout, f"{node['id']} to become a voter"))
    return 0


def _answers(addr: str) -> bool:
    try:
        with Client(addr, timeout_s=1.0) as c:
            return bool(c.call("PING") == b"PONG")
    except (OSError, ReplyError):
        return False


def _remove_node(a: argparse.Namespace) -> int:
    data = Path(a.dir).resolve() if a.dir else None
    layout = _load(data) if data else None
    addrs = _addrs(layout) if layout else [f"{a.host}:{a.port or DEFAULT_BASE_PORT}"]
    for addr in addrs:
        try:
            with Client(addr, timeout_s=a.timeout) as c:
                c.call("CLUSTER.REMOVE", a.id)
            break
        except OSError:
            continue
        except ReplyError as e:
            raise ClusterError(str(e)) from None
    else:
        raise ClusterError("no member answers; is the cluster up?")

    def gone() -> bool:
        v = _leader_view([x for x in addrs if not (layout and _is_node(layout, x, a.id))])
        return v is not None and all(m.id != a.id for m in v.members)

    _wait(gone, a.timeout, f"{a.id} to leave the cluster")
    print(f"{a.id} removed")
    if data and layout:
        pid = _pid(data, a.id)
        if pid is not None:
            _stop_pid(pid)
        (data / f"{a.id}.pid").unlink(missing_ok=True)
        layout["nodes"] = [n for n in layout["nodes"] if n["id"] != a.id]
        _save(data, layout)
    return 0


def _is_node(layout: dict[str, Any], addr: str, node_id: str) -> bool:
    return any(n["id"] == node_id and addr.endswith(f":{n['port']}") for n in layout["nodes"])


def _stop_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _down(data: Path) -> int:
    layout = _load(data)
    for n in layout["nodes"]:
        pid = _pid(data, n["id"])
        if pid is None:
            print(f"{n['id']} not running")
        else:
            _stop_pid(pid)
            print(f"stopped {n['id']} (pid {pid})")
        (data / f"{n['id']}.pid").unlink(missing_ok=True)
        # A member that stopped gracefully stopped its shards; one that crashed did not.
        left = stop_leftovers(str(data / n["id"]))
        if left:
            print(f"stopped {len(left)} shard/proxy process(es) of {n['id']} left running")
    return 0
