"""The shard processes in ``ackdb cluster status``: every member's ``instance:`` and
``proxy:`` lines (each member reports only the processes it runs), as one table, and
its ``diverged:`` lines (files of divergent writes an old primary saved).

Owns: asking each member (its client address, from the leader's member list) and the
table's columns. ``lag`` is a replica's distance in bytes behind its primary's offset,
as both last reported (their probes are up to a second apart, so a busy shard shows a
small non-zero number). Never changes anything.
"""

from __future__ import annotations

from ackdb.cluster.status import InstanceView, StatusView, parse_status
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError

QUERY_TIMEOUT_S = 2.0


def gather_instances(v: StatusView) -> tuple[list[InstanceView], list[str]]:
    """Every member's instance and proxy lines, and the members that did not answer."""
    out: list[InstanceView] = []
    silent: list[str] = []
    for m in v.members:
        addr = m.fields.get("client", "?")
        if addr == "?":
            continue
        try:
            with Client(addr, timeout_s=QUERY_TIMEOUT_S) as c:
                out += parse_status(c.call("CLUSTER.STATUS").decode()).instances
        except (OSError, ReplyError):
            silent.append(m.id)
    return out, silent


def _behind(i: InstanceView, primaries: dict[str, InstanceView]) -> str:
    p = primaries.get(i.name)
    if i.fields.get("role") != "replica" or p is None:
        return "-"
    try:
        return str(max(0, int(p.fields["offset"]) - int(i.fields["offset"])))
    except (KeyError, ValueError):
        return "?"


def print_instances(v: StatusView) -> None:
    instances, silent = gather_instances(v)
    if not instances and not silent:
        return
    shards = sorted((i for i in instances if i.kind == "instance"), key=_order)
    primaries = {i.name: i for i in shards if i.fields.get("role") == "primary"}
    print()
    cols = ("shard", "node", "role", "seen", "address", "pid", "state", "offset", "lag")
    widths = (14, 8, 11, 11, 22, 9, 12, 12, 8)  # ("standalone": a leaderless replica)
    print("".join(f"{c:<{w}}" for c, w in zip(cols, widths, strict=True)) + "link restarts")
    for i in shards:
        f = i.fields
        row = (
            i.name,
            f.get("node", "?"),
            f.get("role", "?"),
            f.get("seen", "?"),
            f"{f.get('host', '?')}:{f.get('port', '?')}",
            f.get("pid", "?"),
            f.get("state", "?"),
            f.get("offset", "?"),
            _behind(i, primaries),
        )
        line = "".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True))
        print(f"{line}{f.get('link', '-'):<5}{f.get('restarts', '?')}")
    for p in sorted((i for i in instances if i.kind == "proxy"), key=_order):
        f = p.fields
        print(
            f"{f.get('endpoint', 'proxy')} {p.name} on {f.get('node', '?')} ({f.get('host', '?')}:{f.get('port', '?')}):"
            f" pid {f.get('pid', '?')}, {f.get('state', '?')}, restarts {f.get('restarts', '?')}"
        )
    for d in sorted((i for i in instances if i.kind == "diverged"), key=_order):
        print(_diverged_text(d))
    for node in silent:
        print(f"{node}: not answering (its shards are not listed)")


def _diverged_text(d: InstanceView) -> str:
    f = d.fields
    path = f.get("path", "?").replace("%20", " ")
    count = f.get("count", "?")
    if count == "-1":
        what = "the whole dataset (its backlog no longer covered them)"
    elif count == "?":
        what = f"{f.get('bytes', '?')} bytes"
    else:
        what = f"{count} commands, offsets {f.get('first', '?')}-{f.get('last', '?')}"
    return (
        f"diverged writes of {d.name} on {f.get('node', '?')}: {path} ({what}); "
        f"once handled: ackdb db diverged {d.name.partition('/')[0]} --clear {path}"
    )


def _order(i: InstanceView) -> tuple[str, int, str]:
    db, _, shard = i.name.partition("/")
    return db, int(shard) if shard.isdigit() else -1, i.fields.get("node", "")
