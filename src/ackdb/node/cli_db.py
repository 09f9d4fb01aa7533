"""``ackdb db``: create, list, inspect, fail over and delete the cluster's databases
(sharded ones, and leaderless ones: ``--type leaderless --replication-factor N``).

Owns: the entry point ``db_main(argv)``, finding a member to ask (the client addresses of
a local cluster's ``DATA/cluster.json`` with ``--dir``, or ``--node HOST:PORT``; the next
member when one does not answer), and printing what the ``DB.*`` commands of the client
port answer (docs/cluster.md, "Databases"). Every member takes every command (writes go
through the Raft log), so any member that answers will do. Also prints the databases of
``ackdb cluster status``. Decides nothing itself.

Exit status: 0 done; 1 the cluster refused (the message is its error) or no member
answered; 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ackdb.cluster.databases import LEVELS, STRATEGIES
from ackdb.cluster.dbtext import DbInfo, parse_info
from ackdb.cluster.status import StatusView, parse_status
from ackdb.node.cli_cluster import DEFAULT_BASE_PORT, ClusterError, _addrs, _load
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

REQUEST_TIMEOUT_S = 15.0
FAILOVER_WAIT_S = 20.0  # ``db failover`` waits this long for the new primaries (s)
FAILOVER_POLL_S = 0.1
# Errors after which another member may do better (its own view of the leader).
_RETRY_ELSEWHERE = ("NOQUORUM",)


def _parser() -> argparse.ArgumentParser:
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--dir", default=None, help="a directory made by 'cluster up'")
    where.add_argument("--node", default=None, metavar="HOST:PORT", help="a member to ask")
    p = argparse.ArgumentParser(prog="ackdb db", description="Manage the cluster's databases.")
    sub = p.add_subparsers(dest="cmd", required=True)
    cr = sub.add_parser("create", parents=[where], help="create a database")
    cr.add_argument("name")
    cr.add_argument("--shards", type=int, default=None)
    cr.add_argument("--replication", choices=("yes", "no"), default=None)
    cr.add_argument("--replicas", type=int, default=None)
    cr.add_argument("--port", type=int, default=None)
    cr.add_argument(
        "--persistence", choices=("none", "aof-everysec", "aof-always", "snapshot"), default=None
    )
    cr.add_argument("--password", default=None)
    cr.add_argument("--cluster-api", choices=("yes", "no"), default=None)
    cr.add_argument(
        "--acl-user",
        action="append",
        default=[],
        metavar="RULES",
        help="an ACL user of the database's endpoints: 'name on >password ~* +@read' "
        "(repeatable; Redis's ACL SETUSER rules)",
    )
    cr.add_argument(
        "--failover-guarantee",
        default=None,
        metavar="wait:N",
        help="the WAIT count applications rely on: a failover keeps every write it covered",
    )
    cr.add_argument("--failover-policy", choices=("strict", "available"), default=None)
    cr.add_argument("--failover-profile", choices=("high", "low"), default=None)
    ll = cr.add_argument_group("leaderless databases (--type leaderless)")
    ll.add_argument("--type", choices=("sharded", "leaderless"), default=None)
    ll.add_argument("--replication-factor", type=int, default=None, metavar="N")
    ll.add_argument("--partitions", type=int, default=None, metavar="P")
    ll.add_argument("--read-consistency", choices=LEVELS, type=str.upper, default=None)
    ll.add_argument("--write-consistency", choices=LEVELS, type=str.upper, default=None)
    ll.add_argument("--deletion-strategy", choices=STRATEGIES, default=None)
    ll.add_argument("--max-clock-skew-ms", type=int, default=None, metavar="MS")
    for flag, metavar, what in (
        ("--hint-bytes-max", "B", "their bytes (default 64 MiB)"),
        ("--hint-count-max", "N", "their count (default 100000)"),
        ("--hint-age-ms-max", "MS", "their age, part of the tombstone grace (default 3 h)"),
    ):
        ll.add_argument(
            flag,
            type=int,
            default=None,
            metavar=metavar,
            help=f"hints a coordinator keeps per unreachable replica: at most {what}",
        )
    fo = sub.add_parser("failover", parents=[where], help="a planned failover (no loss)")
    fo.add_argument("name")
    fo.add_argument("--shard", type=int, default=None, help="one shard (default: every shard)")
    fo.add_argument("--wait-s", type=float, default=FAILOVER_WAIT_S, help="how long to wait")
    sub.add_parser("list", parents=[where], help="list the databases")
    info = sub.add_parser("info", parents=[where], help="a database's options and shards")
    info.add_argument("name")
    rm = sub.add_parser("delete", parents=[where], help="delete a database")
    rm.add_argument("name")
    _diverged_parser(sub, where)
    return p


def db_main(argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    try:
        addrs = _members(a)
        if a.cmd == "create":
            _print_info(parse_info(_call(addrs, _create_args(a)).decode()), created=True)
        elif a.cmd == "list":
            _list(addrs)
        elif a.cmd == "info":
            _print_info(parse_info(_call(addrs, ["DB.INFO", a.name]).decode()))
        elif a.cmd == "failover":
            return _failover(addrs, a.name, a.shard, a.wait_s)
        elif a.cmd == "diverged":
            return _diverged(addrs, a.name, a.clear, a.clear_all)
        else:
            _call(addrs, ["DB.DELETE", a.name])
            print(f"deleted database {a.name}")
        return 0
    except (ClusterError, OSError) as e:
        sys.stderr.write(f"ackdb db {a.cmd}: {e}\n")
        return 1


def _members(a: argparse.Namespace) -> list[str]:
    if a.node is not None:
        return [a.node]
    if a.dir is not None:
        return _addrs(_load(Path(a.dir)))
    return [f"127.0.0.1:{DEFAULT_BASE_PORT}"]


def _create_args(a: argparse.Namespace) -> list[str]:
    args = ["DB.CREATE", a.name]
    for opt, v in (
        ("SHARDS", a.shards),
        ("REPLICATION", a.replication),
        ("REPLICAS", a.replicas),
        ("PORT", a.port),
        ("PERSISTENCE", a.persistence),
        ("PASSWORD", a.password),
        ("CLUSTER-API", a.cluster_api),
        ("FAILOVER-GUARANTEE", a.failover_guarantee),
        ("FAILOVER-POLICY", a.failover_policy),
        ("FAILOVER-PROFILE", a.failover_profile),
        ("TYPE", a.type),
        ("REPLICATION-FACTOR", a.replication_factor),
        ("PARTITIONS", a.partitions),
        ("READ-CONSISTENCY", a.read_consistency),
        ("WRITE-CONSISTENCY", a.write_consistency),
        ("DELETION-STRATEGY", a.deletion_strategy),
        ("MAX-CLOCK-SKEW-MS", a.max_clock_skew_ms),
        ("HINT-BYTES-MAX", a.hint_bytes_max),
        ("HINT-COUNT-MAX", a.hint_count_max),
        ("HINT-AGE-MS-MAX", a.hint_age_ms_max),
    ):
        if v is not None:
            args += [opt, str(v)]
    for rules in a.acl_user:
        args += ["ACL-USER", rules]
    return args


def _failover(addrs: list[str], name: str, shard: int | None, wait_s: float) -> int:
    """DB.FAILOVER, then wait until the shards are OK at a later epoch; print them."""
    before = {s.index: s for s in parse_info(_call(addrs, ["DB.INFO", name]).decode()).shards}
    _call(addrs, ["DB.FAILOVER", name] + ([] if shard is None else [str(shard)]))
    want = set(before) if shard is None else {shard}
    deadline = time.monotonic() + wait_s
    while True:
        info = parse_info(_call(addrs, ["DB.INFO", name]).decode())
        done = {
            s.index
            for s in info.shards
            if s.index in want
            and s.fields.get("state") == "ok"
            and int(s.fields.get("epoch", "0")) > int(before[s.index].fields.get("epoch", "0"))
        }
        if done == want:
            for s in info.shards:
                if s.index in want:
                    old = _inst(before[s.index].primary)
                    print(f"shard {s.index}: primary {_inst(s.primary)} (was {old})")
            return 0
        if time.monotonic() >= deadline:
            sys.stderr.write(
                f"ackdb db failover: committed, but shard(s) {sorted(want - done)} not failed"
                f" over within {wait_s:g}s (see 'ackdb cluster status')\n"
            )
            return 1
        time.sleep(FAILOVER_POLL_S)


def _call(addrs: list[str], args: list[str]) -> Any:
    """``args``' reply from the first member that answers; ClusterError with the
    cluster's error message, or when none answers."""
    errors = []
    for addr in addrs:
        try:
            with Client(addr, timeout_s=REQUEST_TIMEOUT_S) as c:
                reply = c.call(*args)
        except OSError as e:
            errors.append(f"{addr}: {e or type(e).__name__}")
            continue
        except ReplyError as e:
            if str(e).startswith(_RETRY_ELSEWHERE) and addr != addrs[-1]:
                errors.append(f"{addr}: {e}")
                continue
            raise ClusterError(str(e)) from None
        return reply
    raise ClusterError("no member answers (" + "; ".join(errors) + ")")


def _list(addrs: list[str]) -> None:
    names = [n.decode() for n in _call(addrs, ["DB.LIST"])]
    if not names:
        print("no databases")
        return
    print(
        f"{'name':<20}{'type':<12}{'port':<8}{'shards':<8}{'replicas':<10}{'persistence':<14}"
        "cluster-api"
    )
    for name in names:
        try:
            info = parse_info(_call(addrs, ["DB.INFO", name]).decode())
        except ClusterError as e:
            print(f"{name:<20}({e})")
            continue
        f = info.fields
        if f.get("type") == "leaderless":
            print(
                f"{name:<20}{'leaderless':<12}{f.get('port', '?'):<8}{f.get('partitions', '?'):<8}"
                f"n={f.get('replication_factor', '?'):<8}{f.get('persistence', '?'):<14}"
                f"- (read {f.get('read_consistency')}, write {f.get('write_consistency')})"
            )
            continue
        print(
            f"{name:<20}{f.get('type', 'sharded'):<12}{f.get('port', '?'):<8}"
            f"{f.get('shards', '?'):<8}{f.get('replicas', '?'):<10}{f.get('persistence', '?'):<14}"
            f"{f.get('cluster_api', '?')}"
        )


def _inst(s: str) -> str:
    node, _, addr = s.partition(":")
    return f"{node} {addr}"


def _print_info(info: DbInfo, created: bool = False) -> None:
    f = info.fields
    head = "created database" if created else "database"
    print(f"{head} {info.name} (uid {f.get('uid')}), topology version {f.get('topology_version')}")
    if f.get("type") == "leaderless":
        _print_leaderless(info)
        return
    print(f"  endpoint:    port {f.get('port')} on every node: {f.get('endpoints')}")
    print(
        f"  shards:      {f.get('shards')}, replication {f.get('replication')}"
        f" ({f.get('replicas')} replica(s) per shard)"
    )
    print(f"  persistence: {f.get('persistence')}")
    print(f"  password:    {f.get('password')}, cluster API {f.get('cluster_api')}")
    print(
        f"  failover:    guarantee {f.get('failover_guarantee', '?')},"
        f" policy {f.get('failover_policy', '?')}, profile {f.get('failover_profile', '?')}"
    )
    print(f"  {'shard':<7}{'slots':<14}{'epoch':<7}{'primary':<26}replicas")
    for s in info.shards:
        slots, epoch = s.fields.get("slots", "?"), s.fields.get("epoch", "?")
        replicas = ", ".join(_inst(r) for r in s.replicas) or "-"
        print(f"  {s.index:<7}{slots:<14}{epoch:<7}{_inst(s.primary):<26}{replicas}")


def _print_leaderless(info: DbInfo) -> None:
    f = info.fields
    print(f"  type:        leaderless, replication factor {f.get('replication_factor')}")
    print(
        f"  endpoint:    port {f.get('port')} on every node (a coordinator): {f.get('endpoints')}"
    )
    print(
        f"  levels:      read {f.get('read_consistency')}, write {f.get('write_consistency')};"
        f" deletion strategy {f.get('deletion_strategy')};"
        f" max clock skew {f.get('max_clock_skew_ms')} ms"
    )
    print(
        f"  hints:       at most {f.get('hint_bytes_max')} bytes, {f.get('hint_count_max')}"
        f" hints, {f.get('hint_age_ms_max')} ms old per unreachable replica"
    )
    print(f"  persistence: {f.get('persistence')}; password {f.get('password')}")
    print(f"  schema:      version {f.get('schema_version')}, {f.get('collections')} collection(s)")
    for name, c in info.collections:
        print(f"    {name}: prefix {c.get('prefix')}, properties {c.get('properties') or '-'}")
    print(f"  {'partition':<11}{'slots':<14}replicas")
    for p in info.partitions:
        replicas = ", ".join(_inst(r) for r in p.replicas)
        print(f"  {p.index:<11}{p.fields.get('slots', '?'):<14}{replicas}")


def print_databases(v: StatusView) -> None:
    """The databases and shards of ``ackdb cluster status``."""
    if not v.databases:
        return
    print()
    print(f"{'database':<20}{'port':<8}{'shards':<8}{'replicas':<10}{'persistence':<14}version")
    for d in v.databases:
        g = d.fields.get
        print(
            f"{d.id:<20}{g('port', '?'):<8}{g('shards', '?'):<8}{g('replicas', '?'):<10}"
            f"{g('persistence', '?'):<14}{g('version', '?')}"
        )
    for d in v.databases:
        if d.fields.get("type") == "leaderless":
            g = d.fields.get
            print(
                f"  {d.id}: leaderless, n={g('n')}, read {g('read')}, write {g('write')},"
                f" {g('strategy')}, schema version {g('schema')}"
            )
    if v.partitions:
        print()
        print(f"{'partition':<24}{'slots':<14}replicas")
        for p in v.partitions:
            print(f"{p.id:<24}{p.fields.get('slots', '?'):<14}{p.fields.get('replicas') or '-'}")
    if not v.shards:
        return
    print()
    print(f"{'shard':<24}{'slots':<14}{'epoch':<7}{'state':<9}{'primary':<16}replicas")
    for s in v.shards:
        g = s.fields.get
        print(
            f"{s.id:<24}{g('slots', '?'):<14}{g('epoch', '?'):<7}{g('state', '?'):<9}"
            f"{g('primary', '?'):<16}{g('replicas') or '-'}"
        )
    if v.failovers:
        print()
        for f in v.failovers:
            pairs = " ".join(f"{k}={val}" for k, val in f.fields.items() if k != "note")
            print(
                f"failover {f.id}: {pairs}"
                + (f" -- {f.fields['note']}" if "note" in f.fields else "")
            )
    # The shard supervisor's live per-instance lines (role, offset, lag) print here.


# -- ackdb db diverged (docs/failover.md, "Files of divergent writes") -----------------


def _diverged_parser(sub: Any, where: argparse.ArgumentParser) -> None:
    dv = sub.add_parser(
        "diverged", parents=[where], help="list (or clear) the files of divergent writes"
    )
    dv.add_argument("name")
    how = dv.add_mutually_exclusive_group()
    how.add_argument("--clear", default=None, metavar="FILE", help="remove this file (a path)")
    how.add_argument("--clear-all", action="store_true", help="remove every such file")


def _diverged(addrs: list[str], name: str, clear: str | None, clear_all: bool) -> int:
    """DB.DIVERGED on every member (each answers for its own disk): the files, or those
    removed. 1 when a member did not answer (its files are not listed)."""
    view = parse_status(_call(addrs, ["CLUSTER.STATUS"]).decode())
    args = ["DB.DIVERGED", name]
    if clear is not None:
        args += ["CLEAR", clear]
    elif clear_all:
        args += ["CLEAR-ALL"]
    rows, silent = [], []
    for m in view.members:
        addr = m.fields.get("client", "?")
        try:
            rows += _call([addr], args)
        except ClusterError as e:
            if str(e).startswith("ERR no such database"):
                raise
            silent.append(f"{m.id} ({e})")
    verb = "removed" if clear is not None or clear_all else "kept"
    if not rows:
        print(f"no files of divergent writes {verb} for {name}")
    else:
        print(f"{'node':<10}{'shard':<7}{'epoch':<7}{'bytes':<12}path")
    for node, shard, epoch, size, path, kept in rows:
        where = " (its shard left the node)" if kept else ""
        print(f"{node.decode():<10}{shard:<7}{epoch:<7}{size:<12}{path.decode()}{where}")
    if rows and verb == "removed":
        print(f"{len(rows)} file(s) removed")
    for who in silent:
        sys.stderr.write(f"ackdb db diverged: {who} did not answer: its files are not listed\n")
    if clear is not None and not rows:
        sys.stderr.write(f"ackdb db diverged: no member holds {clear}\n")
        return 1
    return 1 if silent else 0
