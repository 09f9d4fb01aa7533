"""XREAD and XREADGROUP, blocking included.

Owns: their arguments, replies (RESP2: ``[[key, entries], ...]``; RESP3: a map of key to
entries; a null array when nothing was served), the group bookkeeping of XREADGROUP
(pending entries, consumers, the group's last id and read counter) and its effects, as
Redis 7.2 propagates them: each entry delivered with ``>`` goes out as ``XCLAIM key group
consumer 0 id TIME <ms> RETRYCOUNT <n> FORCE JUSTID LASTID <last id>`` (none with NOACK),
then one ``XGROUP SETID key group <last id> ENTRIESREAD <n>`` when the group's last id
moved; a consumer created by a NOACK read goes out first as ``XGROUP CREATECONSUMER``.
Reading a consumer's history (an id instead of ``>``) bumps its entries' delivery count
and time and propagates nothing, as in Redis.

Blocking: with BLOCK and nothing to serve the command raises ``BlockRequest`` on its keys;
before that, each ``$`` in the request is replaced by the stream's current last id (as
Redis 7.2 rewrites the argument), so the command, run again when an XADD makes a key
ready, serves what arrived since. A client that still finds nothing blocks again in its
place. ``+`` (the last entry, as Redis 7.4 added) is accepted by XREAD.

Accepted differences: a served blocked XREAD without COUNT returns every new entry
(Redis caps it at 1000); XREADGROUP woken after its group was destroyed gets the usual
NOGROUP error text.
"""

from __future__ import annotations

from ..engine.blocking import BlockRequest
from ..engine.client import Client
from ..keyspace.stream import MAX_ID, MIN_ID, Stream, StreamID, decr_id, incr_id
from ..keyspace.stream_groups import Consumer, Group
from ..resp import encoder as enc
from .base import LLONG_MAX, SYNTAX, CommandError, arg_int, read_typed
from .streams import entries_reply, entry_reply, strict_id
from .streams_groups import lookup_consumer, set_effects, setid_effect, xclaim_effect
from .table import handler


def _timeout_ms(arg: bytes, now_ms: int) -> int:
    """Redis getTimeoutFromObjectOrReply in milliseconds."""
    ms = arg_int(arg, "ERR timeout is not an integer or out of range")
    if ms < 0:
        raise CommandError("ERR timeout is negative")
    if ms > 0 and ms > LLONG_MAX - now_ms:
        raise CommandError("ERR timeout is out of range")
    return ms


class _Request:
    __slots__ = ("timeout", "count", "noack", "group", "consumer", "streams_arg", "n")

    def __init__(self) -> None:
        self.timeout = -1
        self.count = 0
        self.noack = False
        self.group: bytes | None = None
        self.consumer = b""
        self.streams_arg = 0
        self.n = 0


# The options, as sent in either case (one lookup; other spellings are lowered first).
_OPTIONS = {
    w: w.lower()
    for o in (b"BLOCK", b"COUNT", b"STREAMS", b"GROUP", b"NOACK")
    for w in (o, o.lower())
}


def _parse(c: Client, argv: list[bytes], xreadgroup: bool) -> _Request:
    r = _Request()
    n = len(argv)
    i = 1
    while i < n:
        more = n - i - 1
        o = _OPTIONS.get(argv[i]) or argv[i].lower()
        if o == b"streams" and more:
            r.streams_arg = i + 1
            left = n - r.streams_arg
            if left % 2:
                raise CommandError(
                    "ERR Unbalanced '%s' list of streams: for each stream key an ID or "
                    "'%s' must be specified."
                    % ("xreadgroup" if xreadgroup else "xread", ">" if xreadgroup else "$")
                )
            r.n = left // 2
            break
        if o == b"block" and more:
            i += 1
            r.timeout = _timeout_ms(argv[i], c.server.now_ms())
        elif o == b"count" and more:
            i += 1
            r.count = max(arg_int(argv[i]), 0)
        elif o == b"group" and more >= 2:
            if not xreadgroup:
                raise CommandError(
                    "ERR The GROUP option is only supported by XREADGROUP. You called "
                    "XREAD instead."
                )
            r.group, r.consumer = argv[i + 1], argv[i + 2]
            i += 2
        elif o == b"noack":
            if not xreadgroup:
                raise CommandError(
                    "ERR The NOACK option is only supported by XREADGROUP. You called "
                    "XREAD instead."
                )
            r.noack = True
        else:
            raise CommandError(SYNTAX)
        i += 1
    if not r.streams_arg:
        raise CommandError(SYNTAX)
    if xreadgroup and r.group is None:
        raise CommandError("ERR Missing GROUP option for XREADGROUP")
    return r


def _last_valid(s: Stream) -> StreamID:
    last = s.last_entry()
    return last[0] if last is not None else MIN_ID


def _resolve_ids(
    c: Client, argv: list[bytes], r: _Request
) -> tuple[list[StreamID], list[Group | None], list[Stream | None]]:
    ids: list[StreamID] = []
    groups: list[Group | None] = []
    streams: list[Stream | None] = []
    for k in range(r.n):
        key = argv[r.streams_arg + k]
        arg = argv[r.streams_arg + r.n + k]
        s: Stream | None = read_typed(c, key, Stream)
        streams.append(s)
        g = None
        if r.group is not None:
            g = s.groups.get(r.group) if s is not None else None
            if g is None:
                raise CommandError(
                    "NOGROUP No such key '%s' or consumer group '%s' in XREADGROUP with "
                    "GROUP option"
                    % (key.decode("utf-8", "replace"), r.group.decode("utf-8", "replace"))
                )
        groups.append(g)
        if arg == b">":
            if r.group is None:
                raise CommandError(
                    "ERR The > ID can be specified only when calling XREADGROUP using "
                    "the GROUP <group> <consumer> option."
                )
            ids.append(MAX_ID)
        elif arg == b"$":
            if r.group is not None:
                raise CommandError(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want "
                    "to read the history of this consumer by specifying a proper ID, or "
                    "use the > ID to get new messages. The $ ID would just return an "
                    "empty result set."
                )
            ids.append(s.last_id if s is not None else MIN_ID)
        elif arg == b"+" and r.group is None:
            sid = MIN_ID
            if s is not None and s.length:
                prev = decr_id(_last_valid(s))
                sid = prev if prev is not None else MIN_ID
            ids.append(sid)
        else:
            ids.append(strict_id(arg))
    return ids, groups, streams


def _deliver(
    s: Stream,
    g: Group,
    consumer: Consumer,
    start: StreamID,
    count: int,
    noack: bool,
    now: int,
    effects: list[list[bytes]] | None,
    key: bytes,
) -> bytes:
    """Serve new entries (``>``) to a consumer: PEL, last id, and the effects when
    something needs them (``effects`` is None while the engine only counts writes)."""
    entries = s.range_list(start, MAX_ID, count)
    moved = False
    for sid, _ in entries:
        if sid > g.last_id:
            s.advance_group(g, sid)
            moved = True
        if noack:
            continue
        nack = g.deliver(sid, consumer, now)
        consumer.active_time = now
        if effects is not None:
            effects.append(xclaim_effect(key, g, b"%d-%d" % sid, nack))
    if moved and effects is not None:
        effects.append(setid_effect(key, g))
    return entries_reply(entries)


def _history(
    c: Client, s: Stream, g: Group, consumer_name: bytes, start: StreamID, count: int
) -> bytes:
    """A consumer's own pending entries from ``start`` (deleted ones with a null)."""
    now = c.server.now_ms()
    consumer = g.consumers[consumer_name]
    out: list[tuple[StreamID, list[bytes] | None]] = []
    for sid, nack in consumer.pel.from_id(start):
        if count and len(out) >= count:
            break
        fv = s.get(sid)
        if fv is not None:
            nack.delivery_time = now
            nack.delivery_count += 1
        out.append((sid, fv))
    return b"*%d\r\n" % len(out) + b"".join(entry_reply(sid, fv) for sid, fv in out)


def _xread(c: Client, argv: list[bytes], xreadgroup: bool) -> bytes:
    r = _parse(c, argv, xreadgroup)
    ids, groups, streams = _resolve_ids(c, argv, r)
    parts: list[bytes] = []
    srv = c.server
    # XREADGROUP's effects (c.prop) are read only when something needs the stream's
    # bytes; while the engine only counts writes they are not built.
    effects: list[list[bytes]] | None = [] if srv.count_only is None else None
    served = 0
    now = srv.now_ms() if xreadgroup else 0
    for k in range(r.n):
        key = argv[r.streams_arg + k]
        s = streams[k]
        # Redis looks each key up again here: its hit (or miss) is counted again.
        if s is None:
            srv.key_miss(c.db.index, key)
            continue
        srv.stat_keyspace_hits += 1
        gt = ids[k]
        g = groups[k]
        history = serve = False
        if g is not None:
            if gt != MAX_ID:
                serve = history = True
            elif s.length and _last_valid(s) > g.last_id:
                serve = True
                gt = g.last_id
            if r.consumer not in g.consumers and r.noack and effects is not None:
                effects.append([b"XGROUP", b"CREATECONSUMER", key, g.name, r.consumer])
            consumer = lookup_consumer(c, key, g, r.consumer, now)
        elif s.length and _last_valid(s) > gt:
            serve = True
        if not serve:
            continue
        start = incr_id(gt) or MAX_ID
        if g is None:
            body = entries_reply(s.range_list(start, MAX_ID, r.count))
        elif history:
            body = _history(c, s, g, r.consumer, start, r.count)
        else:
            body = _deliver(s, g, consumer, start, r.count, r.noack, now, effects, key)
        if g is not None:
            srv.dirty += 1
        served += 1
        parts.append(enc.bulk(key) + body if c.resp == 3 else b"*2\r\n" + enc.bulk(key) + body)
    if served:
        if xreadgroup and effects is not None:
            set_effects(c, effects)  # none at all, not the command, for a history read
        head = c.p.map_header(served) if c.resp == 3 else b"*%d\r\n" % served
        return head + b"".join(parts)
    if r.timeout != -1:
        # Nothing is propagated for a request that blocks (c.prop must stay unset).
        for k in range(r.n):
            at = r.streams_arg + r.n + k
            if argv[at] == b"$":
                argv[at] = b"%d-%d" % ids[k]
        keys = argv[r.streams_arg : r.streams_arg + r.n]
        raise BlockRequest(keys, r.timeout, c.p.null_array)
    if xreadgroup and effects is not None:
        set_effects(c, effects)
    return c.p.null_array


@handler("xread")
def xread(c: Client, argv: list[bytes]) -> bytes:
    return _xread(c, argv, False)


@handler("xreadgroup")
def xreadgroup(c: Client, argv: list[bytes]) -> bytes:
    n = len(argv)
    if (
        (n == 9 or n == 7)
        and argv[-1] == b">"
        and _OPTIONS.get(argv[1]) == b"group"
        and _OPTIONS.get(argv[n - 3]) == b"streams"
        and (n == 7 or _OPTIONS.get(argv[4]) == b"count")
    ):
        count = max(arg_int(argv[5]), 0) if n == 9 else 0
        return _read_new(c, argv[n - 2], argv[2], argv[3], count)
    return _xread(c, argv, True)


def _read_new(c: Client, key: bytes, group: bytes, consumer_name: bytes, count: int) -> bytes:
    """``XREADGROUP GROUP group consumer [COUNT count] STREAMS key >``, the usual request:
    ``_xread``'s steps for one stream read with ``>``, without its parser and lists (the
    same checks in the same order, the same reply, effects and counters)."""
    s: Stream | None = read_typed(c, key, Stream)
    g = s.groups.get(group) if s is not None else None
    if g is None:
        raise CommandError(
            "NOGROUP No such key '%s' or consumer group '%s' in XREADGROUP with GROUP option"
            % (key.decode("utf-8", "replace"), group.decode("utf-8", "replace"))
        )
    assert s is not None
    srv = c.server
    effects: list[list[bytes]] | None = [] if srv.count_only is None else None
    now = srv.now_ms()
    srv.stat_keyspace_hits += 1  # Redis's second lookup, as in _xread
    last = s.last_entry()  # _last_valid, inlined
    serve = last is not None and last[0] > g.last_id
    consumer = lookup_consumer(c, key, g, consumer_name, now)
    if not serve:
        if effects is not None:
            set_effects(c, effects)
        return c.p.null_array
    start = incr_id(g.last_id) or MAX_ID
    body = _deliver(s, g, consumer, start, count, False, now, effects, key)
    srv.dirty += 1
    if effects is not None:
        set_effects(c, effects)
    if c.resp == 3:
        return c.p.map_header(1) + enc.bulk(key) + body
    return b"*1\r\n*2\r\n" + enc.bulk(key) + body
