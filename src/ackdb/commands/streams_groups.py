"""Consumer group commands: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER,
HELP), XACK, XPENDING, XCLAIM, XAUTOCLAIM, and the effects they share with XREADGROUP.

Owns: Redis 7.2 semantics, replies and error texts of these commands (argument checks in
redis-server's order, checked against 7.0.15), their keyspace events (``xgroup-create``,
``xgroup-setid``, ``xgroup-destroy``, ``xgroup-createconsumer``, ``xgroup-delconsumer``)
and their effects, as Redis propagates them: XCLAIM and XAUTOCLAIM never go out as sent;
each claimed (or dropped, for an entry deleted from the stream) pending entry goes out as
``XCLAIM key group consumer 0 id TIME <ms> RETRYCOUNT <n> FORCE JUSTID LASTID <group last
id>`` with its absolute delivery time, and an XCLAIM LASTID that only moved the group's
last id as ``XGROUP SETID key group id ENTRIESREAD n``. More than one effect goes out
inside MULTI / EXEC (outside a transaction), as Redis 7 wraps a command's effects.
Never touches the network.
"""

from __future__ import annotations

from bisect import bisect_left

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace.stream import (
    ENTRIES_READ_UNKNOWN,
    MIN_ID,
    Consumer,
    Group,
    Nack,
    Stream,
    StreamID,
    decr_id,
    format_id,
    incr_id,
)
from ..resp import encoder as enc
from .base import SYNTAX, CommandError, arg_int, read_typed
from .streams import entry_reply, get_stream, interval_id, parse_id, strict_id
from .table import handler

LLONG_MAX = 2**63 - 1


def set_effects(c: Client, effects: list[list[bytes]]) -> None:
    """The effects of one command; several go out as one MULTI / EXEC (Redis 7)."""
    if len(effects) > 1 and not c.server.in_exec:
        effects = [[b"MULTI"], *effects, [b"EXEC"]]
    c.prop = effects


def xclaim_effect(key: bytes, group: Group, sid_arg: bytes, nack: Nack) -> list[bytes]:
    """Redis streamPropagateXCLAIM."""
    return [
        b"XCLAIM",
        key,
        group.name,
        nack.consumer.name,
        b"0",
        sid_arg,
        b"TIME",
        b"%d" % nack.delivery_time,
        b"RETRYCOUNT",
        b"%d" % nack.delivery_count,
        b"FORCE",
        b"JUSTID",
        b"LASTID",
        format_id(group.last_id),
    ]


def setid_effect(key: bytes, group: Group) -> list[bytes]:
    """Redis streamPropagateGroupID."""
    return [
        b"XGROUP",
        b"SETID",
        key,
        group.name,
        format_id(group.last_id),
        b"ENTRIESREAD",
        b"%d" % group.entries_read,
    ]


def nogroup(key: bytes, group: bytes) -> CommandError:
    return CommandError(
        "NOGROUP No such key '%s' or consumer group '%s'"
        % (key.decode("utf-8", "replace"), group.decode("utf-8", "replace"))
    )


def _stream_and_group(c: Client, key: bytes, name: bytes) -> tuple[Stream, Group]:
    s = read_typed(c, key, Stream)
    g = s.groups.get(name) if s is not None else None
    if s is None or g is None:
        raise nogroup(key, name)
    return s, g


# -- XGROUP --------------------------------------------------------------------------------


def _subcommand_syntax(argv: list[bytes]) -> CommandError:
    return CommandError(
        "ERR unknown subcommand or wrong number of arguments for '%s'. Try %s HELP."
        % (argv[1].decode("utf-8", "replace"), argv[0].decode("utf-8", "replace").upper())
    )


def _xgroup_target(
    c: Client, argv: list[bytes], needs_group: bool
) -> tuple[Stream | None, int, bool]:
    """Redis xgroupCommand's common part: the options (CREATE, SETID), the stream (must
    exist unless MKSTREAM), the group when the subcommand needs it."""
    sub = argv[1].lower()
    mkstream = False
    entries_read = ENTRIES_READ_UNKNOWN
    i = 5
    while i < len(argv):
        opt = argv[i].lower()
        if sub == b"create" and opt == b"mkstream":
            mkstream = True
            i += 1
        elif sub in (b"create", b"setid") and opt == b"entriesread" and i + 1 < len(argv):
            entries_read = arg_int(argv[i + 1])
            if entries_read < 0 and entries_read != ENTRIES_READ_UNKNOWN:
                raise CommandError("ERR value for ENTRIESREAD must be positive or -1")
            i += 2
        else:
            raise _subcommand_syntax(argv)
    s: Stream | None = get_stream(c, argv[2])
    if not mkstream:
        if s is None:
            raise CommandError(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE "
                "you may want to use the MKSTREAM option to create an empty stream "
                "automatically."
            )
        if needs_group and argv[3] not in s.groups:
            raise CommandError(
                "NOGROUP No such consumer group '%s' for key name '%s'"
                % (argv[3].decode("utf-8", "replace"), argv[2].decode("utf-8", "replace"))
            )
    return s, entries_read, mkstream


@handler("xgroup|create")
def xgroup_create(c: Client, argv: list[bytes]) -> bytes:
    s, entries_read, _ = _xgroup_target(c, argv, False)
    if len(argv) > 8:
        raise _subcommand_syntax(argv)
    if argv[4] == b"$":
        sid = s.last_id if s is not None else MIN_ID
    else:
        sid = strict_id(argv[4])
    key = argv[2]
    db = c.db
    if s is None:
        s = Stream()
        db.add_new(key, s)
    if argv[3] in s.groups:
        raise CommandError("BUSYGROUP Consumer Group name already exists")
    s.groups[argv[3]] = Group(argv[3], sid, entries_read)
    c.server.dirty += 1
    c.server.notify(nt.STREAM, b"xgroup-create", key, db.index)
    return enc.OK


@handler("xgroup|setid")
def xgroup_setid(c: Client, argv: list[bytes]) -> bytes:
    s, entries_read, _ = _xgroup_target(c, argv, True)
    if len(argv) not in (5, 7):
        raise _subcommand_syntax(argv)
    assert s is not None
    sid = s.last_id if argv[4] == b"$" else parse_id(argv[4])[0]
    g = s.groups[argv[3]]
    g.last_id = sid
    g.entries_read = entries_read
    c.server.dirty += 1
    c.server.notify(nt.STREAM, b"xgroup-setid", argv[2], c.db.index)
    return enc.OK


@handler("xgroup|destroy")
def xgroup_destroy(c: Client, argv: list[bytes]) -> bytes:
    s, _, _ = _xgroup_target(c, argv, False)
    assert s is not None
    if s.groups.pop(argv[3], None) is None:
        return enc.ZERO
    db = c.db
    c.server.dirty += 1
    c.server.notify(nt.STREAM, b"xgroup-destroy", argv[2], db.index)
    if db.awaited and argv[2] in db.awaited:
        c.server.on_key_ready(db, argv[2])  # blocked XREADGROUPs get NOGROUP
    return enc.ONE


@handler("xgroup|createconsumer")
def xgroup_createconsumer(c: Client, argv: list[bytes]) -> bytes:
    s, _, _ = _xgroup_target(c, argv, True)
    assert s is not None
    g = s.groups[argv[3]]
    if argv[4] in g.consumers:
        return enc.ZERO
    g.create_consumer(argv[4], c.server.now_ms())
    c.server.dirty += 1
    c.server.notify(nt.STREAM, b"xgroup-createconsumer", argv[2], c.db.index)
    return enc.ONE


@handler("xgroup|delconsumer")
def xgroup_delconsumer(c: Client, argv: list[bytes]) -> bytes:
    s, _, _ = _xgroup_target(c, argv, True)
    assert s is not None
    g = s.groups[argv[3]]
    if argv[4] not in g.consumers:
        return enc.ZERO
    pending = g.delete_consumer(argv[4])
    c.server.dirty += 1
    c.server.notify(nt.STREAM, b"xgroup-delconsumer", argv[2], c.db.index)
    return enc.integer(pending)


_XGROUP_HELP = [
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
]


@handler("xgroup|help")
def xgroup_help(c: Client, argv: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(_XGROUP_HELP) + b"".join(enc.simple(x) for x in _XGROUP_HELP)


# -- XACK / XPENDING -----------------------------------------------------------------------


@handler("xack")
def xack(c: Client, argv: list[bytes]) -> bytes:
    s = read_typed(c, argv[1], Stream)
    g = s.groups.get(argv[2]) if s is not None else None
    if g is None:
        return enc.ZERO
    ids = [strict_id(a) for a in argv[3:]]
    acked = 0
    for sid in ids:
        nack = g.pel.remove(sid)
        if nack is not None:
            nack.consumer.pel.remove(sid)
            acked += 1
    c.server.dirty += acked
    return enc.integer(acked)


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


def lookup_consumer(c: Client, key: bytes, g: Group, name: bytes) -> Consumer:
    """Redis streamLookupConsumer + streamCreateConsumer: the consumer, created (with its
    event) when missing; its seen time is now."""
    now = c.server.now_ms()
    consumer = g.consumers.get(name)
    if consumer is None:
        consumer = g.create_consumer(name, now)
        c.server.dirty += 1
        c.server.notify(nt.STREAM, b"xgroup-createconsumer", key, c.db.index)
    consumer.seen_time = now
    return consumer


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
    s, g = _stream_and_group(c, key, gname)
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
    s, g = _stream_and_group(c, key, gname)
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
