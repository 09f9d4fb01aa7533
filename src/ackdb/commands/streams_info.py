"""XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS, XINFO HELP.

Owns: their replies (maps: flattened arrays in RESP2), Redis 7.2's fields — consumers
carry ``inactive`` (XINFO CONSUMERS) and ``active-time`` (FULL), which 7.0 lacks — and
error texts. ``radix-tree-keys`` is the number of entry nodes (see keyspace/stream.py);
``radix-tree-nodes`` counts the nodes a radix tree over the nodes' 16-byte master ids
holds (``rax_nodes``), which matches Redis for trees built by appends. Reads only.
"""

from __future__ import annotations

import struct

from ..engine.client import Client
from ..keyspace.stream import ENTRIES_READ_UNKNOWN, Stream, StreamID, format_id
from ..keyspace.stream_groups import Consumer, Group
from ..resp import encoder as enc
from .base import SYNTAX, CommandError, arg_int, read_typed
from .streams import entries_reply, entry_reply
from .table import handler

_ID = struct.Struct(">QQ")
# Entries and pending entries XINFO STREAM FULL lists without COUNT.
FULL_COUNT_DEFAULT = 10


def rax_nodes(keys: list[bytes]) -> int:
    """Nodes of a compressed radix tree (Redis rax) holding ``keys`` (distinct, sorted,
    equal length): one per branching or compressed node, one per key end."""
    if not keys:
        return 1
    return _rax(keys, 0)


def _rax(keys: list[bytes], depth: int) -> int:
    if len(keys) == 1:
        return 1 if len(keys[0]) == depth else 2
    first, last = keys[0], keys[-1]
    lcp = depth
    while lcp < len(first) and first[lcp] == last[lcp]:
        lcp += 1
    n = 1 if lcp > depth else 0  # a compressed node for the common part
    n += 1  # the branching node
    i = 0
    while i < len(keys):
        b = keys[i][lcp]
        j = i
        while j < len(keys) and keys[j][lcp] == b:
            j += 1
        n += _rax(keys[i:j], lcp + 1)
        i = j
    return n


def _null_int(c: Client, v: int | None) -> bytes:
    return c.p.null if v is None else enc.integer(v)


def _head(c: Client, s: Stream) -> list[bytes]:
    return [
        enc.bulk(b"length"),
        enc.integer(s.length),
        enc.bulk(b"radix-tree-keys"),
        enc.integer(len(s.nodes)),
        enc.bulk(b"radix-tree-nodes"),
        enc.integer(rax_nodes([_ID.pack(*f) for f in s.firsts])),
        enc.bulk(b"last-generated-id"),
        enc.bulk(format_id(s.last_id)),
        enc.bulk(b"max-deleted-entry-id"),
        enc.bulk(format_id(s.max_deleted_id)),
        enc.bulk(b"entries-added"),
        enc.integer(s.entries_added),
        enc.bulk(b"recorded-first-entry-id"),
        enc.bulk(format_id(s.first_id)),
    ]


def _map(c: Client, flat: list[bytes]) -> bytes:
    return c.p.map_header(len(flat) // 2) + b"".join(flat)


def _edge(c: Client, e: tuple[StreamID, list[bytes]] | None) -> bytes:
    return c.p.null if e is None else entry_reply(e[0], e[1])


def _stream_info(c: Client, s: Stream) -> bytes:
    flat = _head(c, s)
    flat += [
        enc.bulk(b"groups"),
        enc.integer(len(s.groups)),
        enc.bulk(b"first-entry"),
        _edge(c, s.first_entry()),
        enc.bulk(b"last-entry"),
        _edge(c, s.last_entry()),
    ]
    return _map(c, flat)


def _full_consumer(c: Client, con: Consumer, count: int) -> bytes:
    pending: list[bytes] = []
    for sid, nack in con.pel.from_id((0, 0)):
        if count and len(pending) == count:
            break
        pending.append(
            b"*3\r\n"
            + enc.bulk(format_id(sid))
            + enc.integer(nack.delivery_time)
            + enc.integer(nack.delivery_count)
        )
    flat = [
        enc.bulk(b"name"),
        enc.bulk(con.name),
        enc.bulk(b"seen-time"),
        enc.integer(con.seen_time),
        enc.bulk(b"active-time"),
        enc.integer(con.active_time),
        enc.bulk(b"pel-count"),
        enc.integer(len(con.pel)),
        enc.bulk(b"pending"),
        b"*%d\r\n" % len(pending) + b"".join(pending),
    ]
    return _map(c, flat)


def _full_group(c: Client, s: Stream, g: Group, count: int) -> bytes:
    pending: list[bytes] = []
    for sid, nack in g.pel.from_id((0, 0)):
        if count and len(pending) == count:
            break
        pending.append(
            b"*4\r\n"
            + enc.bulk(format_id(sid))
            + enc.bulk(nack.consumer.name)
            + enc.integer(nack.delivery_time)
            + enc.integer(nack.delivery_count)
        )
    consumers = [_full_consumer(c, con, count) for _, con in sorted(g.consumers.items())]
    flat = [
        enc.bulk(b"name"),
        enc.bulk(g.name),
        enc.bulk(b"last-delivered-id"),
        enc.bulk(format_id(g.last_id)),
        enc.bulk(b"entries-read"),
        _null_int(c, None if g.entries_read == ENTRIES_READ_UNKNOWN else g.entries_read),
        enc.bulk(b"lag"),
        _null_int(c, s.lag(g)),
        enc.bulk(b"pel-count"),
        enc.integer(len(g.pel)),
        enc.bulk(b"pending"),
        b"*%d\r\n" % len(pending) + b"".join(pending),
        enc.bulk(b"consumers"),
        b"*%d\r\n" % len(consumers) + b"".join(consumers),
    ]
    return _map(c, flat)


def _stream_full(c: Client, s: Stream, count: int) -> bytes:
    flat = _head(c, s)
    groups = [_full_group(c, s, g, count) for _, g in sorted(s.groups.items())]
    flat += [
        enc.bulk(b"entries"),
        entries_reply(list(s.range((0, 0), (2**64 - 1, 2**64 - 1), count))),
        enc.bulk(b"groups"),
        b"*%d\r\n" % len(groups) + b"".join(groups),
    ]
    return _map(c, flat)


def _lookup(c: Client, key: bytes) -> Stream:
    s: Stream | None = read_typed(c, key, Stream)
    if s is None:
        raise CommandError("ERR no such key")
    return s


@handler("xinfo|stream")
def xinfo_stream(c: Client, argv: list[bytes]) -> bytes:
    s = _lookup(c, argv[2])
    extra = argv[3:]
    if not extra:
        return _stream_info(c, s)
    if len(extra) not in (1, 3) or extra[0].lower() != b"full":
        raise CommandError(SYNTAX)
    count = FULL_COUNT_DEFAULT
    if len(extra) == 3:
        if extra[1].lower() != b"count":
            raise CommandError(SYNTAX)
        count = max(arg_int(extra[2]), 0)
    return _stream_full(c, s, count)


@handler("xinfo|groups")
def xinfo_groups(c: Client, argv: list[bytes]) -> bytes:
    s = _lookup(c, argv[2])
    out = []
    for _, g in sorted(s.groups.items()):
        flat = [
            enc.bulk(b"name"),
            enc.bulk(g.name),
            enc.bulk(b"consumers"),
            enc.integer(len(g.consumers)),
            enc.bulk(b"pending"),
            enc.integer(len(g.pel)),
            enc.bulk(b"last-delivered-id"),
            enc.bulk(format_id(g.last_id)),
            enc.bulk(b"entries-read"),
            _null_int(c, None if g.entries_read == ENTRIES_READ_UNKNOWN else g.entries_read),
            enc.bulk(b"lag"),
            _null_int(c, s.lag(g)),
        ]
        out.append(_map(c, flat))
    return b"*%d\r\n" % len(out) + b"".join(out)


@handler("xinfo|consumers")
def xinfo_consumers(c: Client, argv: list[bytes]) -> bytes:
    s = _lookup(c, argv[2])
    g = s.groups.get(argv[3])
    if g is None:
        raise CommandError(
            "NOGROUP No such consumer group '%s' for key name '%s'"
            % (argv[3].decode("utf-8", "replace"), argv[2].decode("utf-8", "replace"))
        )
    now = c.server.now_ms()
    out = []
    for _, con in sorted(g.consumers.items()):
        inactive = now - con.active_time if con.active_time != -1 else -1
        flat = [
            enc.bulk(b"name"),
            enc.bulk(con.name),
            enc.bulk(b"pending"),
            enc.integer(len(con.pel)),
            enc.bulk(b"idle"),
            enc.integer(max(now - con.seen_time, 0)),
            enc.bulk(b"inactive"),
            enc.integer(inactive),
        ]
        out.append(_map(c, flat))
    return b"*%d\r\n" % len(out) + b"".join(out)


_XINFO_HELP = [
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]


@handler("xinfo|help")
def xinfo_help(c: Client, argv: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(_XINFO_HELP) + b"".join(enc.simple(x) for x in _XINFO_HELP)
