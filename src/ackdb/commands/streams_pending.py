"""XPENDING, XCLAIM and XAUTOCLAIM: reading and moving a group's pending entries.

Owns: their arguments, replies and error texts (checked against redis-server 7.0.15) and
their effects, as Redis propagates them (see ``streams_groups``): each claimed pending
entry — or one dropped because its entry left the stream — goes out as ``XCLAIM ... TIME
<ms> RETRYCOUNT <n> FORCE JUSTID LASTID <id>`` with its absolute delivery time; an XCLAIM
whose LASTID only moved the group's last id as ``XGROUP SETID ... ENTRIESREAD n``. A
consumer is created (with its ``xgroup-createconsumer`` event) only when it claims
something. Never touches the network.
"""

from __future__ import annotations

from bisect import bisect_left

from ..engine.client import Client
from ..keyspace.stream import (
    MIN_ID,
    Stream,
    StreamID,
    decr_id,
    format_id,
    incr_id,
)
from ..keyspace.stream_groups import Group, Nack
from ..resp import encoder as enc
from .base import SYNTAX, CommandError, arg_int, read_typed
from .streams import entry_reply, interval_id, strict_id
from .streams_groups import (
    lookup_consumer,
    set_effects,
    setid_effect,
    stream_and_group,
    xclaim_effect,
)
from .table import handler

LLONG_MAX = 2**63 - 1


def _interval(start_arg: bytes, end_arg: bytes) -> tuple[StreamID, StreamID]:
    start, ex = interval_id(start_arg, 0)
    if ex:
        nxt = incr_id(start)
        if nxt is None:
            raise CommandError("ERR invalid start ID for the interval")
        start = nxt
    end, ex = interval_id(end_arg, (1 << 64) - 1)
    if ex:
        prv = decr_id(end)
        if prv is None:
            raise CommandError("ERR invalid end ID for the interval")
        end = prv
    return start, end


@handler("xpending")
def xpending(c: Client, argv: list[bytes]) -> bytes:
    n = len(argv)
    if n != 3 and not 6 <= n <= 9:
        raise CommandError(SYNTAX)
    minidle = 0
    count = 0
    start = end = MIN_ID
    consumer_name = None
    if n >= 6:
        at = 3
        if argv[3].lower() == b"idle":
            minidle = arg_int(argv[4])
            if n < 8:
                raise CommandError(SYNTAX)
            at = 5
        count = max(arg_int(argv[at + 2]), 0)
        start, end = _interval(argv[at], argv[at + 1])
        if at + 3 < n:
            consumer_name = argv[at + 3]
    s = read_typed(c, argv[1], Stream)
    g = s.groups.get(argv[2]) if s is not None else None
    if g is None:
        raise CommandError(
            "NOGROUP No such key '%s' or consumer group '%s'"
            % (argv[1].decode("utf-8", "replace"), argv[2].decode("utf-8", "replace"))
        )
    if n == 3:
        return _pending_summary(c, g)
    pel = g.pel
    if consumer_name is not None:
        consumer = g.consumers.get(consumer_name)
        if consumer is None:
            return enc.EMPTY_ARRAY
        pel = consumer.pel
    now = c.server.now_ms()
    out = []
    if count:
        for sid, nack in pel.range(start, end):
            if minidle and now - nack.delivery_time < minidle:
                continue
            out.append(
                b"*4\r\n"
                + enc.bulk(format_id(sid))
                + enc.bulk(nack.consumer.name)
                + enc.integer(max(now - nack.delivery_time, 0))
                + enc.integer(nack.delivery_count)
            )
            if len(out) == count:
                break
    return b"*%d\r\n" % len(out) + b"".join(out)


def _pending_summary(c: Client, g: Group) -> bytes:
    if not len(g.pel):
        return b"*4\r\n:0\r\n" + c.p.null + c.p.null + c.p.null_array
    rows = [
        b"*2\r\n" + enc.bulk(name) + enc.bulk(b"%d" % len(con.pel))
        for name, con in sorted(g.consumers.items())
        if len(con.pel)
    ]
    return (
        b"*4\r\n"
        + enc.integer(len(g.pel))
        + enc.bulk(format_id(g.pel.order[0]))
        + enc.bulk(format_id(g.pel.order[-1]))
        + b"*%d\r\n" % len(rows)
        + b"".join(rows)
    )


# -- XCLAIM / XAUTOCLAIM -------------------------------------------------------------------


def claim(
    c: Client, key: bytes, g: Group, name: bytes, sid: StreamID, nack: Nack, when: int
) -> Nack:
    """Give the pending entry ``sid`` to consumer ``name`` (created when missing)."""
    consumer = lookup_consumer(c, key, g, name)
    if nack.consumer is not consumer:
        nack.consumer.pel.remove(sid)
        nack.consumer = consumer
        consumer.pel.add(sid, nack)
    nack.delivery_time = when
    consumer.active_time = c.server.now_ms()
    return nack


def _claim_reply(s: Stream, sid: StreamID, justid: bool) -> bytes:
    if justid:
        return enc.bulk(format_id(sid))
    fv = s.get(sid)
    return entry_reply(sid, fv) if fv is not None else b"$-1\r\n"


@handler("xclaim")
def xclaim(c: Client, argv: list[bytes]) -> bytes:
    key, gname, name = argv[1], argv[2], argv[3]
    s, g = stream_and_group(c, key, gname)
    minidle = max(arg_int(argv[4], "ERR Invalid min-idle-time argument for XCLAIM"), 0)
    j = 5
    ids: list[tuple[StreamID, bytes]] = []
    while j < len(argv):
        try:
            ids.append((strict_id(argv[j]), argv[j]))
        except CommandError:
            break
        j += 1
    now = c.server.now_ms()
    retrycount = -1
    when = -1
    force = justid = False
    last_id = MIN_ID
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            when = now - arg_int(argv[j], "ERR Invalid IDLE option argument for XCLAIM")
        elif opt == b"time" and more:
            j += 1
            when = arg_int(argv[j], "ERR Invalid TIME option argument for XCLAIM")
        elif opt == b"retrycount" and more:
            j += 1
            retrycount = arg_int(argv[j], "ERR Invalid RETRYCOUNT option argument for XCLAIM")
        elif opt == b"lastid" and more:
            j += 1
            last_id = strict_id(argv[j])
        else:
            raise CommandError(
                "ERR Unrecognized XCLAIM option '%s'" % argv[j].decode("utf-8", "replace")
            )
        j += 1
    propagate_last_id = False
    if last_id > g.last_id:
        g.last_id = last_id
        propagate_last_id = True
    if when < 0 or when > now:
        when = now
    effects: list[list[bytes]] = []
    out: list[bytes] = []
    for sid, raw in ids:
        nack = g.pel.get(sid)
        if s.get(sid) is None:
            if nack is not None:
                effects.append(xclaim_effect(key, g, raw, nack))
                propagate_last_id = False
                c.server.dirty += 1
                g.pel.remove(sid)
                nack.consumer.pel.remove(sid)
            continue
        if nack is None:
            if not force:
                continue
            nack = _force_nack(c, key, g, name, sid, now)
        elif minidle and now - nack.delivery_time < minidle:
            continue
        claim(c, key, g, name, sid, nack, when)
        if retrycount >= 0:
            nack.delivery_count = retrycount
        elif not justid:
            nack.delivery_count += 1
        out.append(_claim_reply(s, sid, justid))
        effects.append(xclaim_effect(key, g, raw, nack))
        propagate_last_id = False
        c.server.dirty += 1
    if propagate_last_id:
        effects.append(setid_effect(key, g))
        c.server.dirty += 1
    set_effects(c, effects)
    return b"*%d\r\n" % len(out) + b"".join(out)


def _force_nack(c: Client, key: bytes, g: Group, name: bytes, sid: StreamID, now: int) -> Nack:
    """XCLAIM FORCE of an id no consumer holds: a new pending entry, owned at once."""
    consumer = lookup_consumer(c, key, g, name)
    nack = Nack(now, 1, consumer)
    g.pel.add(sid, nack)
    consumer.pel.add(sid, nack)
    return nack


# Redis: COUNT may not exceed LONG_MAX / max(sizeof(streamID), attempts factor).
_AUTOCLAIM_COUNT_MAX = LLONG_MAX // 16
_ATTEMPTS_FACTOR = 10


@handler("xautoclaim")
def xautoclaim(c: Client, argv: list[bytes]) -> bytes:
    key, gname, name = argv[1], argv[2], argv[3]
    minidle = max(arg_int(argv[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM"), 0)
    start, ex = interval_id(argv[5], 0)
    if ex:
        nxt = incr_id(start)
        if nxt is None:
            raise CommandError("ERR invalid start ID for the interval")
        start = nxt
    count = 100
    justid = False
    j = 6
    while j < len(argv):
        opt = argv[j].lower()
        if opt == b"count" and j + 1 < len(argv):
            count = arg_int(argv[j + 1], "ERR COUNT must be > 0")
            if not 1 <= count <= _AUTOCLAIM_COUNT_MAX:
                raise CommandError("ERR COUNT must be > 0")
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise CommandError(SYNTAX)
        j += 1
    s, g = stream_and_group(c, key, gname)
    attempts = count * _ATTEMPTS_FACTOR
    now = c.server.now_ms()
    effects: list[list[bytes]] = []
    out: list[bytes] = []
    deleted: list[StreamID] = []
    order = g.pel.order
    i = bisect_left(order, start)
    while attempts and count and i < len(order):
        attempts -= 1
        sid = order[i]
        nack = g.pel.by_id[sid]
        if s.get(sid) is None:
            effects.append(xclaim_effect(key, g, format_id(sid), nack))
            c.server.dirty += 1
            g.pel.remove(sid)
            nack.consumer.pel.remove(sid)
            deleted.append(sid)
            count -= 1
            continue  # ``order`` shrank: ``i`` is the next id already
        i += 1
        if minidle and now - nack.delivery_time < minidle:
            continue
        claim(c, key, g, name, sid, nack, now)
        if not justid:
            nack.delivery_count += 1
        out.append(_claim_reply(s, sid, justid))
        count -= 1
        effects.append(xclaim_effect(key, g, format_id(sid), nack))
        c.server.dirty += 1
    cursor = order[i] if i < len(order) else MIN_ID
    set_effects(c, effects)
    return (
        b"*3\r\n"
        + enc.bulk(format_id(cursor))
        + b"*%d\r\n" % len(out)
        + b"".join(out)
        + enc.bulk_array([format_id(x) for x in deleted])
    )
