"""Consumer group commands: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER,
HELP), XACK, and the effects and lookups the group commands share (XPENDING, XCLAIM and
XAUTOCLAIM are in ``streams_pending``, XREADGROUP in ``streams_read``).

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

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace.stream import (
    ENTRIES_READ_UNKNOWN,
    MIN_ID,
    Stream,
    format_id,
)
from ..keyspace.stream_groups import Consumer, Group, Nack
from ..resp import encoder as enc
from .base import CommandError, arg_int, read_typed
from .streams import get_stream, parse_id, strict_id
from .table import handler


def set_effects(c: Client, effects: list[list[bytes]]) -> None:
    """The effects of one command; several go out as one MULTI / EXEC (Redis 7)."""
    if len(effects) > 1 and not c.server.in_exec:
        effects.insert(0, [b"MULTI"])  # in place: the caller's list is the command's
        effects.append([b"EXEC"])
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


def stream_and_group(c: Client, key: bytes, name: bytes) -> tuple[Stream, Group]:
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


# -- XACK -----------------------------------------------------------------------


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


def lookup_consumer(c: Client, key: bytes, g: Group, name: bytes, now: int = -1) -> Consumer:
    """Redis streamLookupConsumer + streamCreateConsumer: the consumer, created (with its
    event) when missing; its seen time is now (``now``, or the clock's)."""
    if now < 0:
        now = c.server.now_ms()
    consumer = g.consumers.get(name)
    if consumer is None:
        consumer = g.create_consumer(name, now)
        c.server.dirty += 1
        c.server.notify(nt.STREAM, b"xgroup-createconsumer", key, c.db.index)
    consumer.seen_time = now
    return consumer
