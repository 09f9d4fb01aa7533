"""Stream commands: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID, and the helpers the
other stream modules share (id parsing, entry replies, the stream lookups).

Owns: Redis 7.2 semantics, replies and error texts of these commands (argument checks in
redis-server's order, verified against 7.0.15), their keyspace events (``xadd``, ``xtrim``,
``xdel``, ``xsetid``; ``new`` comes from the keyspace) and their effects: XADD propagates
with its generated id in place of ``*`` / ``ms-*``, and an approximate trim (``~``, XADD's
or XTRIM's) as an exact one (``=``) to what it kept — the length for MAXLEN, the first id
left (deleted entries included) for MINID — as Redis does, so replicas and the AOF keep
the same entries. A primary's commands and the AOF's (``mustObeyClient``) trim without
LIMIT. Never touches the network. The value is ``keyspace.stream.Stream``; a stream stays
in the keyspace when it is emptied.
"""

from __future__ import annotations

import re

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace.db import Database
from ..keyspace.stream import MAX_ID, MIN_ID, U64_MAX, Stream, StreamID, decr_id, format_id, incr_id
from ..resp import encoder as enc
from .base import SYNTAX, CommandError, arg_int, get_typed, read_typed
from .table import handler

INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
# Redis's limit on a stream id argument's length (bytes).
ID_ARG_MAX_BYTES = 127
_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_CANONICAL_NEG = re.compile(rb"-[1-9][0-9]*")


def _u64(s: bytes) -> int | None:
    """Redis string2ull: string2ll for canonical integers (negatives refused), else
    strtoull base 10 over the whole text (leading blanks, a sign, leading zeros)."""
    m = _STRTOULL.fullmatch(s)
    if m is None:
        return None
    n = int(m[2])
    if n > U64_MAX:
        return None
    if m[1] == b"-":
        if _CANONICAL_NEG.fullmatch(s) and n <= 1 << 63:
            return None  # string2ll took it: negative values are out of range
        return (-n) % (1 << 64)
    return n


def parse_id(
    arg: bytes, missing_seq: int = 0, strict: bool = False, allow_seq_star: bool = False
) -> tuple[StreamID, bool]:
    """Redis streamGenericParseIDOrReply: (id, seq given). ``-`` and ``+`` are the
    smallest and largest ids unless ``strict``; ``ms-*`` only with ``allow_seq_star``."""
    if len(arg) > ID_ARG_MAX_BYTES:
        raise CommandError(INVALID_ID)
    if arg == b"-" or arg == b"+":
        if strict:
            raise CommandError(INVALID_ID)
        return (MIN_ID if arg == b"-" else MAX_ID), True
    arg = arg.split(b"\0", 1)[0]
    ms_part, dash, seq_part = arg.partition(b"-")
    if dash and len(ms_part) < 20 and len(seq_part) < 20:
        if ms_part.isdigit() and seq_part.isdigit():  # ms-seq in plain digits: below 2^64
            return (int(ms_part), int(seq_part)), True
    ms = _u64(ms_part)
    if ms is None:
        raise CommandError(INVALID_ID)
    if not dash:
        return (ms, missing_seq), True
    if allow_seq_star and seq_part == b"*":
        return (ms, 0), False
    seq = _u64(seq_part)
    if seq is None:
        raise CommandError(INVALID_ID)
    return (ms, seq), True


def strict_id(arg: bytes) -> StreamID:
    return parse_id(arg, strict=True)[0]


def interval_id(arg: bytes, missing_seq: int) -> tuple[StreamID, bool]:
    """Redis streamParseIntervalIDOrReply: (id, exclusive) for ``(id`` or an id."""
    if len(arg) > 1 and arg[:1] == b"(":
        return parse_id(arg[1:], missing_seq, strict=True)[0], True
    return parse_id(arg, missing_seq)[0], False


def get_stream(c: Client, key: bytes) -> Stream | None:
    """A write lookup: the stream at ``key``, None when absent, WRONGTYPE otherwise."""
    return get_typed(c.db, key, Stream)  # type: ignore[no-any-return]


def read_stream(c: Client, key: bytes) -> Stream | None:
    return read_typed(c, key, Stream)  # type: ignore[no-any-return]


def must_obey(c: Client) -> bool:
    """Redis mustObeyClient: the primary's link or the AOF being loaded."""
    return c.kind == "master" or c.kind == "aof"


def entry_reply(sid: StreamID, fv: list[bytes] | None) -> bytes:
    """One entry: ``[id, [field, value, ...]]`` (a null for a deleted one)."""
    if fv is None:
        return b"*2\r\n" + enc.bulk(format_id(sid)) + b"*-1\r\n"
    return b"*2\r\n" + enc.bulk(format_id(sid)) + enc.bulk_array(fv)


def entries_reply(entries: list[tuple[StreamID, list[bytes]]]) -> bytes:
    """Live entries: ``[[id, [field, value, ...]], ...]``, encoded in one pass."""
    parts = [b"*%d\r\n" % len(entries)]
    append = parts.append
    for sid, fv in entries:
        text = b"%d-%d" % sid
        append(b"*2\r\n$%d\r\n%s\r\n*%d\r\n" % (len(text), text, len(fv)))
        for x in fv:
            append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(parts)


def signal_ready(c: Client, db: Database, key: bytes) -> None:
    """Wake the clients blocked on ``key`` (XREAD / XREADGROUP)."""
    if db.awaited and key in db.awaited:
        c.server.on_key_ready(db, key)


# -- XADD / XTRIM ------------------------------------------------------------------------


class TrimArgs:
    __slots__ = (
        "maxlen",
        "minid",
        "approx",
        "limit",
        "arg_idx",
        "id",
        "id_given",
        "seq_given",
        "nomkstream",
    )

    def __init__(self) -> None:
        self.maxlen: int | None = None
        self.minid: StreamID | None = None
        self.approx = False
        self.limit = 0
        self.arg_idx = 0  # where the threshold is in argv
        self.id: StreamID = MIN_ID
        self.id_given = False
        self.seq_given = True
        self.nomkstream = False

    @property
    def trims(self) -> bool:
        return self.maxlen is not None or self.minid is not None


_BOTH = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"


def parse_add_or_trim(c: Client, argv: list[bytes], xadd: bool) -> tuple[TrimArgs, int]:
    """Redis streamParseAddOrTrimArgsOrReply: the options and the id's position."""
    a = TrimArgs()
    limit_given = False
    n = len(argv)
    i = 2
    while i < n:
        more = n - 1 - i
        opt = argv[i]
        low = opt.lower()
        if xadd and opt == b"*":
            break
        if (low == b"maxlen" or low == b"minid") and more:
            if a.trims:
                raise CommandError(_BOTH)
            a.approx = False
            nxt = argv[i + 1]
            if more >= 2 and nxt == b"~":
                a.approx = True
                i += 1
            elif more >= 2 and nxt == b"=":
                i += 1
            if low == b"maxlen":
                maxlen = arg_int(argv[i + 1])
                if maxlen < 0:
                    raise CommandError("ERR The MAXLEN argument must be >= 0.")
                a.maxlen = maxlen
            else:
                a.minid = strict_id(argv[i + 1])
            i += 1
            a.arg_idx = i
        elif low == b"limit" and more:
            a.limit = arg_int(argv[i + 1])
            if a.limit < 0:
                raise CommandError("ERR The LIMIT argument must be >= 0.")
            limit_given = True
            i += 1
        elif xadd and low == b"nomkstream":
            a.nomkstream = True
        elif xadd:
            a.id, a.seq_given = parse_id(opt, strict=True, allow_seq_star=True)
            a.id_given = True
            break
        else:
            raise CommandError(SYNTAX)
        i += 1
    if a.limit and not a.trims:
        raise CommandError(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        )
    if not xadd and not a.trims:
        raise CommandError("ERR syntax error, XTRIM must be called with a trimming strategy")
    if must_obey(c):
        a.limit = 0
    elif limit_given:
        if not a.approx:
            raise CommandError(
                "ERR syntax error, LIMIT cannot be used without the special ~ option"
            )
    else:
        a.limit = 10000 if a.approx else 0  # Redis: 100 * stream-node-max-entries
    return a, i


def _trim(s: Stream, a: TrimArgs) -> int:
    return s.trim(a.maxlen, a.minid, a.approx, a.limit)


def _rewrite_trim(s: Stream, a: TrimArgs, argv: list[bytes]) -> None:
    """Redis streamRewriteApproxSpecifier + streamRewriteTrimArgument."""
    argv[a.arg_idx - 1] = b"="
    if a.maxlen is not None:
        argv[a.arg_idx] = b"%d" % s.length
    else:
        first = s.nodes[0].ids[0] if s.nodes else MAX_ID
        argv[a.arg_idx] = format_id(first)


def _next_id(s: Stream, a: TrimArgs, now_ms: int) -> StreamID | None:
    """The id XADD adds (Redis streamAppendItem), None when not above the top item."""
    last = s.last_id
    if a.id_given:
        if a.seq_given:
            sid = a.id
        elif last[0] == a.id[0]:
            if last[1] == U64_MAX:
                return None
            sid = (last[0], last[1] + 1)
        else:
            sid = a.id
    elif now_ms > last[0]:
        sid = (now_ms, 0)
    else:
        nxt = incr_id(last)
        assert nxt is not None
        sid = nxt
    return sid if sid > last else None


@handler("xadd")
def xadd(c: Client, argv: list[bytes]) -> bytes:
    a, idpos = parse_add_or_trim(c, argv, True)
    nfv = len(argv) - idpos - 1
    if nfv < 2 or nfv % 2:
        raise CommandError("ERR wrong number of arguments for 'xadd' command")
    if a.id_given and a.seq_given and a.id == MIN_ID:
        raise CommandError("ERR The ID specified in XADD must be greater than 0-0")
    key = argv[1]
    db = c.db
    s = get_stream(c, key)
    if s is None:
        if a.nomkstream:
            return c.p.null
        s = Stream()
        db.add_new(key, s)
    if s.last_id == MAX_ID:
        raise CommandError(
            "ERR The stream has exhausted the last possible ID, unable to add more items"
        )
    sid = _next_id(s, a, c.server.now_ms())
    if sid is None:
        raise CommandError(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
        )
    s.append(sid, argv[idpos + 1 :])
    srv = c.server
    db.touch(key)
    srv.notify(nt.STREAM, b"xadd", key, db.index)
    srv.dirty += 1
    effect = argv
    if a.trims:
        if _trim(s, a):
            srv.notify(nt.STREAM, b"xtrim", key, db.index)
        if a.approx:
            effect = list(argv)
            _rewrite_trim(s, a, effect)
    if not a.id_given or not a.seq_given:
        if effect is argv:
            effect = list(argv)
        effect[idpos] = format_id(sid)
    if effect is not argv:
        c.prop = [effect]
    signal_ready(c, db, key)
    return enc.bulk(format_id(sid))


@handler("xtrim")
def xtrim(c: Client, argv: list[bytes]) -> bytes:
    a, _ = parse_add_or_trim(c, argv, False)
    key = argv[1]
    s = get_stream(c, key)
    if s is None:
        return enc.ZERO
    deleted = _trim(s, a)
    if deleted:
        db = c.db
        c.server.notify(nt.STREAM, b"xtrim", key, db.index)
        if a.approx:
            effect = list(argv)
            _rewrite_trim(s, a, effect)
            c.prop = [effect]
        db.touch(key)
        c.server.dirty += deleted
    return enc.integer(deleted)


# -- reads ---------------------------------------------------------------------------------


def _range(c: Client, argv: list[bytes], rev: bool) -> bytes:
    start_arg, end_arg = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    start, ex = interval_id(start_arg, 0)
    if ex:
        nxt = incr_id(start)
        if nxt is None:
            raise CommandError("ERR invalid start ID for the interval")
        start = nxt
    end, ex = interval_id(end_arg, U64_MAX)
    if ex:
        prv = decr_id(end)
        if prv is None:
            raise CommandError("ERR invalid end ID for the interval")
        end = prv
    count = -1
    j = 4
    while j < len(argv):
        if argv[j].lower() == b"count" and j + 1 < len(argv):
            count = max(arg_int(argv[j + 1]), 0)
            j += 2
        else:
            raise CommandError(SYNTAX)
    s = read_stream(c, argv[1])
    if s is None:
        return enc.EMPTY_ARRAY
    if count == 0:
        return c.p.null_array
    n = 0 if count < 0 else count
    it = s.revrange(start, end, n) if rev else s.range(start, end, n)
    return entries_reply(list(it))


@handler("xrange")
def xrange_(c: Client, argv: list[bytes]) -> bytes:
    return _range(c, argv, False)


@handler("xrevrange")
def xrevrange(c: Client, argv: list[bytes]) -> bytes:
    return _range(c, argv, True)


@handler("xlen")
def xlen(c: Client, argv: list[bytes]) -> bytes:
    s = read_stream(c, argv[1])
    return enc.integer(s.length if s is not None else 0)


# -- XDEL / XSETID -------------------------------------------------------------------------


@handler("xdel")
def xdel(c: Client, argv: list[bytes]) -> bytes:
    key = argv[1]
    s = get_stream(c, key)
    if s is None:
        return enc.ZERO
    ids = [strict_id(a) for a in argv[2:]]
    deleted = 0
    first_deleted = False
    for sid in ids:
        if s.delete(sid):
            if sid == s.first_id:
                first_deleted = True
            if sid > s.max_deleted_id:
                s.max_deleted_id = sid
            deleted += 1
    if deleted:
        if s.length == 0:
            s.first_id = MIN_ID
        elif first_deleted:
            s.reset_first_id()
        db = c.db
        db.touch(key)
        c.server.notify(nt.STREAM, b"xdel", key, db.index)
        c.server.dirty += deleted
    return enc.integer(deleted)


@handler("xsetid")
def xsetid(c: Client, argv: list[bytes]) -> bytes:
    sid = strict_id(argv[2])
    entries_added = -1
    max_xdel = MIN_ID
    i = 3
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        if opt == b"entriesadded" and i + 1 < n:
            entries_added = arg_int(argv[i + 1])
            if entries_added < 0:
                raise CommandError("ERR entries_added must be positive")
        elif opt == b"maxdeletedid" and i + 1 < n:
            max_xdel = strict_id(argv[i + 1])
            if sid < max_xdel:
                raise CommandError(
                    "ERR The ID specified in XSETID is smaller than the provided "
                    "max_deleted_entry_id"
                )
        else:
            raise CommandError(SYNTAX)
        i += 2
    key = argv[1]
    s = get_stream(c, key)
    if s is None:
        raise CommandError("ERR no such key")
    if sid < s.max_deleted_id:
        raise CommandError(
            "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"
        )
    if s.length:
        last = s.last_entry()
        assert last is not None
        if sid < last[0]:
            raise CommandError(
                "ERR The ID specified in XSETID is smaller than the target stream top item"
            )
        if entries_added != -1 and s.length > entries_added:
            raise CommandError(
                "ERR The entries_added specified in XSETID is smaller than the target stream length"
            )
    s.last_id = sid
    if entries_added != -1:
        s.entries_added = entries_added
    if max_xdel != MIN_ID:
        s.max_deleted_id = max_xdel
    db = c.db
    db.touch(key)
    c.server.notify(nt.STREAM, b"xsetid", key, db.index)
    c.server.dirty += 1
    return enc.OK
