"""A stream as plain data and as commands: the snapshot form (msgpack-friendly lists) and
the AOF rewrite's commands.

Owns: ``to_plain`` / ``from_plain`` (exact: node boundaries with their deleted slots and
size estimates, counters, groups, consumers with their times, pending entries) and
``resp_commands`` (what Redis's rewriteStreamObject writes). Never touches I/O.
"""

from __future__ import annotations

from typing import Any

from .stream import MAX_ID, MIN_ID, Node, Stream, format_id
from .stream_groups import Group, Nack


def to_plain(s: Stream) -> list[Any]:
    """The stream as msgpack-friendly lists: nodes (with deleted slots and their size
    estimate, so node boundaries survive a restart), counters, groups with consumers and
    pending entries."""
    nodes = [
        [
            n.lp_bytes,
            n.master_fields,
            [[i[0], i[1], v] for i, v in zip(n.ids, n.values, strict=True)],
        ]
        for n in s.nodes
    ]
    groups = []
    for g in s.groups.values():
        consumers = [[c.name, c.seen_time, c.active_time] for c in g.consumers.values()]
        pel = [
            [sid[0], sid[1], n.consumer.name, n.delivery_time, n.delivery_count]
            for sid, n in g.pel.from_id(MIN_ID)
        ]
        groups.append([g.name, g.last_id[0], g.last_id[1], g.entries_read, consumers, pel])
    meta = [*s.last_id, *s.first_id, *s.max_deleted_id, s.entries_added]
    return [meta, nodes, groups]


def from_plain(data: list[Any]) -> Stream:
    """The inverse of ``to_plain``; ValueError for a malformed value."""
    meta, nodes, groups = data
    s = Stream()
    if len(meta) != 7:
        raise ValueError("bad stream header")
    s.last_id = (meta[0], meta[1])
    s.first_id = (meta[2], meta[3])
    s.max_deleted_id = (meta[4], meta[5])
    s.entries_added = meta[6]
    for lp_bytes, master_fields, entries in nodes:
        node = Node([])
        node.master_fields = list(master_fields)
        node.lp_bytes = lp_bytes
        for ms, seq, fv in entries:
            node.ids.append((ms, seq))
            node.values.append(list(fv) if fv is not None else None)
            if fv is not None:
                node.live += 1
        if not node.ids or node.ids != sorted(node.ids):
            raise ValueError("bad stream node")
        s.nodes.append(node)
        s.firsts.append(node.ids[0])
        s.length += node.live
    for name, last_ms, last_seq, entries_read, consumers, pel in groups:
        g = Group(name, (last_ms, last_seq), entries_read)
        for cname, seen, active in consumers:
            con = g.create_consumer(cname, seen)
            con.active_time = active
        for ms, seq, cname, when, count in pel:
            con = g.consumers[cname]
            nack = Nack(when, count, con)
            g.pel.add((ms, seq), nack)
            con.pel.add((ms, seq), nack)
        s.groups[name] = g
    return s


def resp_commands(key: bytes, s: Stream) -> list[list[bytes]]:
    """Commands that rebuild the stream (an AOF rewrite), as Redis's rewriteStreamObject
    writes them: XADD per entry (or the ``XADD key MAXLEN 0 0-1 x y`` trick for an empty
    stream), XSETID with the counters, then per group XGROUP CREATE ... ENTRIESREAD, and
    per consumer its pending entries as XCLAIM ... JUSTID FORCE (or XGROUP CREATECONSUMER
    for a consumer without any)."""
    out: list[list[bytes]] = []
    if s.length:
        for sid, fv in s.range(MIN_ID, MAX_ID):
            out.append([b"XADD", key, format_id(sid), *fv])
    else:
        out.append([b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"])
    out.append(
        [
            b"XSETID",
            key,
            format_id(s.last_id),
            b"ENTRIESADDED",
            b"%d" % s.entries_added,
            b"MAXDELETEDID",
            format_id(s.max_deleted_id),
        ]
    )
    for gname, g in sorted(s.groups.items()):
        out.append(
            [
                b"XGROUP",
                b"CREATE",
                key,
                gname,
                format_id(g.last_id),
                b"ENTRIESREAD",
                b"%d" % g.entries_read,
            ]
        )
        for cname, con in sorted(g.consumers.items()):
            if not len(con.pel):
                out.append([b"XGROUP", b"CREATECONSUMER", key, gname, cname])
                continue
            for sid, nack in con.pel.from_id(MIN_ID):
                out.append(
                    [
                        b"XCLAIM",
                        key,
                        gname,
                        cname,
                        b"0",
                        format_id(sid),
                        b"TIME",
                        b"%d" % nack.delivery_time,
                        b"RETRYCOUNT",
                        b"%d" % nack.delivery_count,
                        b"JUSTID",
                        b"FORCE",
                    ]
                )
    return out
