"""Introspection: CLIENT (the connections) and COMMAND (the command table).

Owns: Redis 7.2 replies of the CLIENT subcommands that need no support from the shell
(ID, INFO, LIST, GETNAME, SETNAME, SETINFO, KILL, PAUSE, UNPAUSE, NO-EVICT, NO-TOUCH,
GETREDIR, TRACKINGINFO, HELP) and of COMMAND (INFO, DOCS, COUNT, LIST, GETKEYS,
GETKEYSANDFLAGS, HELP): key specs, tips and categories are the table's data
(``ackdb.commandtable``); argument docs are derived from its ``args_doc`` syntax strings. Never writes to a socket: killing another
client goes through ``server.kill_client``, killing yourself sets ``close_after_reply``.

COMMAND is both a command (no arguments) and a container; while the core sends every
COMMAND call to its handler, that handler dispatches the subcommands itself, with the
core's arity and unknown-subcommand errors.

Left out: CLIENT REPLY (the shell would have to drop replies), TRACKING, CACHING.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from ..commandtable import (
    BeginIndex,
    BeginKeyword,
    BeginUnknown,
    FindKeynum,
    FindRange,
    FindUnknown,
    KeySpec,
)
from ..engine.client import Client
from ..keyspace.glob import compile_glob
from ..resp import encoder as enc
from ..resp.encoder import Resp2
from .base import LLONG_MAX, SYNTAX, CommandError, arg_int
from .connection import validate_client_name
from .table import TABLE, Command, handler


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _help(argv: list[bytes], lines: list[str]) -> bytes:
    head = f"{_text(argv[0]).upper()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    return enc.array([enc.simple(s) for s in [head, *lines, "HELP", "    Print this help."]])


# -- CLIENT ------------------------------------------------------------------------------

# Names accepted by CLIENT LIST TYPE and CLIENT KILL TYPE (Redis getClientTypeByName).
_CLIENT_TYPES = {
    b"normal": "normal",
    b"slave": "replica",
    b"replica": "replica",
    b"master": "master",
    b"pubsub": "pubsub",
}


def client_type(cl: Client) -> str:
    """The class Redis sorts a client into for TYPE filters and output buffer limits."""
    if cl.kind in ("replica", "master"):
        return str(cl.kind)
    if cl.kind == "pubsub" or cl.subscriptions:
        return "pubsub"
    return "normal"


def info_line(
    cl: Client, now_ms: int, cmd_name: str | None = None, argv: list[bytes] | None = None
) -> bytes:
    """One line of CLIENT LIST (no newline), fields in Redis 7.2's order.

    ``cmd_name`` and ``argv`` describe the command running now when ``cl`` is the caller
    (Redis shows it as the last command, and its arguments as argv-mem).
    """
    counts = getattr(cl.server, "subscription_counts", None)
    sub, psub, ssub = counts(cl) if counts is not None else (cl.subscriptions, 0, 0)
    qbuf = cl.reader.pending_bytes()
    argv_mem = sum(len(a) for a in argv) if argv else 0
    multi_mem = sum(len(a) for _, args in cl.multi for a in args) if cl.multi else 0
    omem = cl.conn.buffer_size()
    events = ("" if cl.pending else "r") + ("w" if omem else "")
    last = cmd_name or cl.last_cmd
    return b"".join(
        [
            b"id=%d addr=%s laddr=%s fd=%d name=%s"
            % (cl.id, cl.addr.encode(), cl.laddr.encode(), cl.fd, cl.name),
            b" age=%d idle=%d"
            % ((now_ms - cl.created_ms) // 1000, max(now_ms - cl.last_ms, 0) // 1000),
            b" flags=%s db=%d sub=%d psub=%d ssub=%d"
            % (cl.flags().encode(), cl.db.index, sub, psub, ssub),
            b" multi=%d qbuf=%d qbuf-free=0"
            % (len(cl.multi) if cl.multi is not None else -1, qbuf),
            b" argv-mem=%d multi-mem=%d rbs=0 rbp=0 obl=0 oll=0 omem=%d"
            % (argv_mem, multi_mem, omem),
            b" tot-mem=%d events=%s cmd=%s"
            % (qbuf + argv_mem + multi_mem + omem, events.encode(), last.encode()),
            b" user=%s redir=%d resp=%d lib-name=%s lib-ver=%s"
            % (
                cl.user.name if cl.user is not None else b"(superuser)",
                -1 if cl.tracking is None else cl.tracking.redirect,
                cl.resp,
                cl.lib_name,
                cl.lib_ver,
            ),
        ]
    )


@handler("client|id")
def client_id(c: Client, argv: list[bytes]) -> bytes:
    return enc.integer(c.id)


@handler("client|info")
def client_info(c: Client, argv: list[bytes]) -> bytes:
    p: Resp2 = c.p
    return p.verbatim(info_line(c, c.server.now_ms(), "client|info", argv) + b"\n")


@handler("client|list")
def client_list(c: Client, argv: list[bytes]) -> bytes:
    srv = c.server
    n = len(argv)
    if n == 2:
        chosen = list(srv.clients.values())
    elif n == 4 and argv[2].lower() == b"type":
        kind = _CLIENT_TYPES.get(argv[3].lower())
        if kind is None:
            raise CommandError(f"ERR Unknown client type '{_text(argv[3])}'")
        chosen = [cl for cl in srv.clients.values() if client_type(cl) == kind]
    elif n > 3 and argv[2].lower() == b"id":
        chosen = []
        for a in argv[3:]:  # in the order given, repeats included, as Redis does
            cl = srv.clients.get(arg_int(a, "ERR Invalid client ID"))
            if cl is not None:
                chosen.append(cl)
    else:
        raise CommandError(SYNTAX)
    now = srv.now_ms()
    lines = [
        info_line(cl, now, "client|list", argv) if cl is c else info_line(cl, now) for cl in chosen
    ]
    p: Resp2 = c.p
    return p.verbatim(b"".join(line + b"\n" for line in lines))


@handler("client|getname")
def client_getname(c: Client, argv: list[bytes]) -> bytes:
    p: Resp2 = c.p
    return p.bulk_or_null(c.name or None)


@handler("client|setname")
def client_setname(c: Client, argv: list[bytes]) -> bytes:
    validate_client_name(argv[2])
    c.name = argv[2]  # the empty name clears it
    return enc.OK


@handler("client|setinfo")
def client_setinfo(c: Client, argv: list[bytes]) -> bytes:
    attr = argv[2].lower()
    if attr not in (b"lib-name", b"lib-ver"):
        raise CommandError(f"ERR Unrecognized option '{_text(argv[2])}'")
    value = argv[3]
    if any(ch < 0x21 or ch > 0x7E for ch in value):
        raise CommandError(
            f"ERR {_text(argv[2])} cannot contain spaces, newlines or special characters."
        )
    if attr == b"lib-name":
        c.lib_name = value
    else:
        c.lib_ver = value
    return enc.OK


@handler("client|unblock")
def client_unblock(c: Client, argv: list[bytes]) -> bytes:
    srv = c.server
    if len(argv) > 4:
        raise CommandError(
            "ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP."
        )
    client_id = arg_int(argv[2])
    error = False
    if len(argv) == 4:
        how = argv[3].lower()
        if how not in (b"timeout", b"error"):
            raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        error = how == b"error"
    target = srv.clients.get(client_id)
    st = target.blocked if target is not None else None
    if target is None or st is None:
        return enc.integer(0)
    reply: bytes | None
    if st.keys:  # BLPOP and the other key waits
        reply = b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n" if error else st.timeout_reply
    else:  # WAIT / WAITAOF (a parked SHUTDOWN is not unblockable, as in Redis)
        repl = srv.repl
        reply = (
            repl.unblock_waiter(target.id, srv.now_ms(), error=error) if repl is not None else None
        )
        if reply is None:
            return enc.integer(0)
    if error:
        srv.count_error(reply)
    srv.blocking.answer(target, reply)
    return enc.integer(1)


@handler("client|kill")
def client_kill(c: Client, argv: list[bytes]) -> bytes:
    srv = c.server
    if len(argv) == 3:  # the old form: CLIENT KILL addr:port
        victims = [cl for cl in srv.clients.values() if cl.addr.encode() == argv[2]]
        if not victims:
            raise CommandError("ERR No such client")
        _kill(c, victims)
        return enc.OK
    match = _kill_filters(c, argv)
    return enc.integer(_kill(c, [cl for cl in list(srv.clients.values()) if match(cl)]))


def _kill_filters(c: Client, argv: list[bytes]) -> Any:
    addr = laddr = kind = None
    user: Any = None
    cid = maxage = 0
    skipme = True
    i = 2
    while i < len(argv):
        if i + 1 >= len(argv):
            raise CommandError(SYNTAX)
        opt, val = argv[i].lower(), argv[i + 1]
        if opt == b"id":
            cid = arg_int(val, "ERR client-id should be greater than 0")
            if cid < 1:
                raise CommandError("ERR client-id should be greater than 0")
        elif opt == b"type":
            kind = _CLIENT_TYPES.get(val.lower())
            if kind is None:
                raise CommandError(f"ERR Unknown client type '{_text(val)}'")
        elif opt == b"addr":
            addr = val
        elif opt == b"laddr":
            laddr = val
        elif opt == b"user":
            user = c.server.acl.get(val)
            if user is None:
                raise CommandError(f"ERR No such user '{_text(val)}'")
        elif opt == b"skipme":
            if val.lower() not in (b"yes", b"no"):
                raise CommandError(SYNTAX)
            skipme = val.lower() == b"yes"
        elif opt == b"maxage":
            maxage = arg_int(val)
        else:
            raise CommandError(SYNTAX)
        i += 2
    now = c.server.now_ms()

    def match(cl: Client) -> bool:
        return not (
            (addr is not None and cl.addr.encode() != addr)
            or (laddr is not None and cl.laddr.encode() != laddr)
            or (kind is not None and client_type(cl) != kind)
            or (cid and cl.id != cid)
            or (user is not None and cl.user is not user)
            or (skipme and cl is c)
            or (maxage and (now - cl.created_ms) // 1000 < maxage)
        )

    return match


def _kill(c: Client, victims: list[Any]) -> int:
    for cl in victims:
        if cl is c:
            c.close_after_reply = True  # the shell closes after sending this reply
        else:
            c.server.kill_client(cl)
    return len(victims)


@handler("client|pause")
def client_pause(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 4:
        raise CommandError(
            f"ERR unknown subcommand or wrong number of arguments for '{_text(argv[1])[:128]}'. Try CLIENT HELP."
        )
    everything = True
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode not in (b"write", b"all"):
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
        everything = mode == b"all"
    timeout = arg_int(argv[2], "ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    now = c.server.now_ms()
    if timeout > LLONG_MAX - now:
        raise CommandError("ERR timeout is out of range")
    c.server.pause(now + timeout, everything)
    return enc.OK


@handler("client|unpause")
def client_unpause(c: Client, argv: list[bytes]) -> bytes:
    c.server.unpause()
    return enc.OK


def _on_off(b: bytes) -> bool:
    v = b.lower()
    if v not in (b"on", b"off"):
        raise CommandError(SYNTAX)
    return v == b"on"


@handler("client|no-evict")
def client_no_evict(c: Client, argv: list[bytes]) -> bytes:
    c.no_evict = _on_off(argv[2])
    return enc.OK


@handler("client|no-touch")
def client_no_touch(c: Client, argv: list[bytes]) -> bytes:
    c.no_touch = _on_off(argv[2])
    return enc.OK


_CLIENT_HELP = [
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "    * MAXAGE <maxage>",
    "      Kill connections older than the specified age.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <id> [<id>...]",
    "      Return clients with the specified IDs.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
]


@handler("client|help")
def client_help(c: Client, argv: list[bytes]) -> bytes:
    return _help(argv, _CLIENT_HELP)


# -- COMMAND -----------------------------------------------------------------------------

# Redis's order of command flags in COMMAND INFO (may_replicate is not shown).
_FLAG_ORDER = (
    "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking",
    "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth",
    "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys", "allow_busy",
)  # fmt: skip


def categories(cmd: Command) -> list[str]:
    """The command's ACL categories, in Redis's order (table data)."""
    return list(cmd.acl)


def _simple_set(p: Resp2, items: list[str] | tuple[str, ...]) -> bytes:
    return p.set_header(len(items)) + b"".join(enc.simple(s) for s in items)


def _map(p: Resp2, pairs: list[tuple[bytes, bytes]]) -> bytes:
    return p.map_encoded([(enc.bulk(k), v) for k, v in pairs])


def _typed(p: Resp2, kind: bytes, fields: list[tuple[bytes, bytes]]) -> bytes:
    return _map(p, [(b"type", enc.bulk(kind)), (b"spec", _map(p, fields))])


def _begin_search(p: Resp2, begin: BeginIndex | BeginKeyword | BeginUnknown) -> bytes:
    if isinstance(begin, BeginUnknown):
        return _typed(p, b"unknown", [])
    if isinstance(begin, BeginIndex):
        return _typed(p, b"index", [(b"index", enc.integer(begin.index))])
    return _typed(
        p,
        b"keyword",
        [
            (b"keyword", enc.bulk(begin.keyword.encode())),
            (b"startfrom", enc.integer(begin.startfrom)),
        ],
    )


def _find_keys(p: Resp2, find: FindRange | FindKeynum | FindUnknown) -> bytes:
    if isinstance(find, FindUnknown):
        return _typed(p, b"unknown", [])
    if isinstance(find, FindRange):
        fields = [(b"lastkey", find.lastkey), (b"keystep", find.keystep), (b"limit", find.limit)]
        kind = b"range"
    else:
        fields = [
            (b"keynumidx", find.keynumidx),
            (b"firstkey", find.firstkey),
            (b"keystep", find.keystep),
        ]
        kind = b"keynum"
    return _typed(p, kind, [(k, enc.integer(v)) for k, v in fields])


def _key_spec(p: Resp2, ks: KeySpec) -> bytes:
    pairs = [(b"notes", enc.bulk(ks.notes.encode()))] if ks.notes else []
    pairs += [
        (b"flags", _simple_set(p, ks.flags)),
        (b"begin_search", _begin_search(p, ks.begin)),
        (b"find_keys", _find_keys(p, ks.find)),
    ]
    return _map(p, pairs)


def _key_specs(p: Resp2, cmd: Command) -> bytes:
    specs = cmd.key_specs
    return p.set_header(len(specs)) + b"".join(_key_spec(p, ks) for ks in specs)


def command_info(p: Resp2, cmd: Command) -> bytes:
    """One COMMAND INFO entry (Redis 7 shape: ten fields, subcommands nested)."""
    flags = [f for f in _FLAG_ORDER if f in cmd.flags]
    subs = list(cmd.subcommands.values())
    tips = cmd.tips
    return enc.array(
        [
            enc.bulk(cmd.name.encode()),
            enc.integer(cmd.arity),
            _simple_set(p, flags),
            enc.integer(cmd.first_key),
            enc.integer(cmd.last_key),
            enc.integer(cmd.step),
            _simple_set(p, categories(cmd)),
            p.set_header(len(tips)) + b"".join(enc.bulk(t.encode()) for t in tips),
            _key_specs(p, cmd),
            enc.array([command_info(p, s) for s in subs]) if subs else p.set_header(0),
        ]
    )


def lookup_fullname(name: bytes) -> Command | None:
    """A command by its full name: ``get``, ``config|get`` (any case)."""
    parts = name.split(b"|")
    if len(parts) > 2:
        return None
    cmd = TABLE.get(parts[0])
    if cmd is None or len(parts) == 1:
        return cmd
    return cmd.subcommands.get(parts[1].lower())


def _subcommand_dispatch(c: Client, argv: list[bytes]) -> bytes:
    """COMMAND <sub> ... while the core sends every COMMAND call to the bare handler."""
    parent = TABLE.commands["command"]
    sub = parent.subcommands.get(argv[1].lower())
    if sub is None or sub.handler is None:
        raise CommandError(f"ERR unknown subcommand '{_text(argv[1])[:128]}'. Try COMMAND HELP.")
    n, a = len(argv), sub.arity
    if (a > 0 and n != a) or n < -a:
        raise CommandError(f"ERR wrong number of arguments for '{sub.name}' command")
    return sub.handler(c, argv)


@handler("command")
def command_(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 1:
        return _subcommand_dispatch(c, argv)
    return enc.array([command_info(c.p, cmd) for cmd in TABLE.all()])


@handler("command|count")
def command_count(c: Client, argv: list[bytes]) -> bytes:
    return enc.integer(len(TABLE.all()))


@handler("command|info")
def command_info_(c: Client, argv: list[bytes]) -> bytes:
    p: Resp2 = c.p
    if len(argv) == 2:
        return enc.array([command_info(p, cmd) for cmd in TABLE.all()])
    out = []
    for name in argv[2:]:
        cmd = lookup_fullname(name)
        out.append(p.null if cmd is None else command_info(p, cmd))
    return enc.array(out)


@handler("command|docs")
def command_docs(c: Client, argv: list[bytes]) -> bytes:
    p: Resp2 = c.p
    if len(argv) == 2:
        found = TABLE.all()
    else:
        found = [cmd for cmd in map(lookup_fullname, argv[2:]) if cmd is not None]
    return p.map_encoded([(enc.bulk(cmd.name.encode()), command_doc(p, cmd)) for cmd in found])


@handler("command|list")
def command_list(c: Client, argv: list[bytes]) -> bytes:
    every = [x for cmd in TABLE.all() for x in [cmd, *cmd.subcommands.values()]]
    if len(argv) == 2:
        return enc.bulk_array(cmd.name.encode() for cmd in every)
    if len(argv) != 5 or argv[2].lower() != b"filterby":
        raise CommandError(SYNTAX)
    kind, arg = argv[3].lower(), argv[4]
    if kind == b"module":
        chosen: list[Command] = []  # no modules
    elif kind == b"aclcat":
        cat = "@" + _text(arg).lower()
        chosen = [cmd for cmd in every if cat in categories(cmd)]
    elif kind == b"pattern":
        match = compile_glob(arg, nocase=True)
        chosen = [cmd for cmd in every if match(cmd.name.encode())]
    else:
        raise CommandError(SYNTAX)
    return enc.bulk_array(cmd.name.encode() for cmd in chosen)


def _keys_of(argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    """COMMAND GETKEYS[ANDFLAGS]: the keys of the command in argv[2:] (their indexes in
    ``argv``) with its flags for this request."""
    args = argv[2:]
    cmd = TABLE.find(args)
    if cmd is None:
        raise CommandError("ERR Invalid command specified")
    if all("not_key" in ks.flags for ks in cmd.key_specs):  # none, or channels (SPUBLISH)
        raise CommandError("ERR The command has no key arguments")
    n, a = len(args), cmd.arity
    if (a > 0 and n != a) or n < -a:
        raise CommandError("ERR Invalid number of arguments specified for command")
    found = cmd.keys_and_flags(args)
    if not found and "no_mandatory_keys" not in cmd.flags:
        raise CommandError("ERR Invalid arguments specified for command")
    return [(i + 2, flags) for i, flags in found]


@handler("command|getkeys")
def command_getkeys(c: Client, argv: list[bytes]) -> bytes:
    return enc.bulk_array(argv[i] for i, _ in _keys_of(argv))


@handler("command|getkeysandflags")
def command_getkeysandflags(c: Client, argv: list[bytes]) -> bytes:
    p: Resp2 = c.p
    return enc.array([enc.array([enc.bulk(argv[i]), _simple_set(p, f)]) for i, f in _keys_of(argv)])


_COMMAND_HELP = [
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
]


@handler("command|help")
def command_help(c: Client, argv: list[bytes]) -> bytes:
    return _help(argv, _COMMAND_HELP)


# -- COMMAND DOCS: argument docs from the syntax strings ---------------------------------

# Argument names whose type is not "string" (Redis's arg types in the commands' JSON).
_KEY_NAMES = frozenset({"key", "newkey", "source", "destination", "srckey", "dstkey"})
_INTEGER_NAMES = frozenset(
    {
        "seconds", "milliseconds", "count", "index", "index1", "index2", "offset", "start",
        "end", "increment", "decrement", "timeout", "db", "destination-db", "cursor",
        "numkeys", "protover", "client-id", "maxage", "numreplicas", "numlocal", "port",
    }
)  # fmt: skip
_SYNTAX_TOKENS = re.compile(r"\.\.\.|[\[\]()|]|[^\s\[\]()|]+")


@dataclass(slots=True)
class ArgDoc:
    """One entry of COMMAND DOCS ``arguments`` (Redis's argument-doc shape)."""

    name: str
    type: str
    display: str = ""  # the placeholder shown in the syntax (display_text)
    token: str = ""
    optional: bool = False
    multiple: bool = False
    multiple_token: bool = False
    args: list[ArgDoc] = field(default_factory=list)

    def shape(self, with_token: bool = True) -> tuple[Any, ...]:
        token = self.token if with_token else ""
        return (self.name, self.type, token, tuple(a.shape() for a in self.args))


@dataclass(slots=True)
class _Node:
    word: str = ""  # a word, or "" for a group
    optional: bool = False  # [...] rather than (...)
    alts: list[list[_Node]] = field(default_factory=list)
    multiple: bool = False  # followed by "..."


class _SyntaxParser:
    """Reads "key value [NX|XX] [EX seconds|PX milliseconds] [key ...]" into nodes."""

    def __init__(self, text: str) -> None:
        self.toks = _SYNTAX_TOKENS.findall(text)
        self.i = 0

    def _peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def alts(self) -> list[list[_Node]]:
        out = [self.seq()]
        while self._peek() == "|":
            self.i += 1
            out.append(self.seq())
        return out

    def seq(self) -> list[_Node]:
        nodes: list[_Node] = []
        while (t := self._peek()) is not None and t not in ("|", "]", ")"):
            self.i += 1
            if t == "...":
                if nodes:
                    nodes[-1].multiple = True
            elif t in ("[", "("):
                node = _Node(optional=t == "[", alts=self.alts())
                if self._peek() in ("]", ")"):
                    self.i += 1
                nodes.append(node)
            else:
                nodes.append(_Node(word=t))
        return nodes


def _is_token(word: str) -> bool:
    return any(ch.isalpha() for ch in word) and word == word.upper()


def _word_arg(name: str, keys: bool) -> ArgDoc:
    if keys and name in _KEY_NAMES:
        kind = "key"
    elif name.startswith("unix-time"):
        kind = "unix-time"
    elif name in _INTEGER_NAMES:
        kind = "integer"
    elif name == "pattern":
        kind = "pattern"
    else:
        kind = "string"
    return ArgDoc(name, kind, display=name)


def _token_arg(token: str, nodes: list[_Node], i: int, keys: bool) -> tuple[ArgDoc, int]:
    """A TOKEN and the values after it: pure-token, TOKEN value, TOKEN (a|b), TOKEN a b."""
    vals: list[_Node] = []
    while i < len(nodes) and nodes[i].word and not _is_token(nodes[i].word):
        vals.append(nodes[i])
        i += 1
        if vals[-1].multiple:
            break
    if not vals and i < len(nodes) and not nodes[i].word and not nodes[i].optional:
        arg = _group_arg(nodes[i], keys)
        if arg.type in ("oneof", "block"):
            arg.name = token.lower()
        i += 1
    elif not vals:
        arg = ArgDoc(token.lower(), "pure-token")
    elif len(vals) == 1:
        arg = _word_arg(vals[0].word, keys)
        arg.multiple = vals[0].multiple
    else:
        arg = ArgDoc(
            "-".join(v.word for v in vals), "block", args=[_word_arg(v.word, keys) for v in vals]
        )
        arg.multiple = vals[-1].multiple
    arg.token = token
    return arg, i


def _seq_args(nodes: list[_Node], keys: bool) -> list[ArgDoc]:
    out: list[ArgDoc] = []
    i = 0
    while i < len(nodes):
        node = nodes[i]
        i += 1
        if node.word and _is_token(node.word):
            arg, i = _token_arg(node.word, nodes, i, keys)
            arg.multiple = arg.multiple or node.multiple
        elif node.word:
            arg = _word_arg(node.word, keys)
            arg.multiple = node.multiple
        else:
            arg = _group_arg(node, keys)
            if arg.optional and arg.multiple and _repeats_previous(out, arg):
                continue
        out.append(arg)
    seen: set[str] = set()
    for arg in out:  # sibling names must differ: "[ADDR ip:port] [LADDR ip:port]"
        if arg.name in seen and arg.token:
            arg.name = arg.token.lower()
        seen.add(arg.name)
    return out


def _repeats_previous(out: list[ArgDoc], arg: ArgDoc) -> bool:
    """Folds "x [x ...]" (and "k v [k v ...]") into one argument flagged multiple."""
    if out and out[-1].shape(with_token=False) == arg.shape():
        out[-1].multiple = True
        return True
    if out and arg.token and out[-1].shape() == arg.shape():
        out[-1].multiple = out[-1].multiple_token = True
        return True
    k = len(arg.args)
    if arg.type == "block" and not arg.token and 1 < k <= len(out):
        if [a.shape() for a in out[-k:]] == [a.shape() for a in arg.args]:
            arg.optional = False
            del out[-k:]
            out.append(arg)
            return True
    return False


def _group_arg(group: _Node, keys: bool) -> ArgDoc:
    alts = [a for a in (_seq_args(s, keys) for s in group.alts) if a]
    if not alts:
        arg = ArgDoc("", "block")
    elif len(alts) == 1:
        arg = alts[0][0] if len(alts[0]) == 1 else _block(alts[0])
    else:
        arg = _oneof(alts)
    arg.optional = arg.optional or group.optional
    arg.multiple = arg.multiple or group.multiple
    return arg


def _block(args: list[ArgDoc]) -> ArgDoc:
    name = "-".join(a.name for a in args) if len(args) <= 2 else "arguments"
    arg = ArgDoc(name, "block", args=args)
    if args[-1].multiple:  # "[key value ...]": the trailing ... repeats the whole group
        args[-1].multiple = False
        arg.multiple = True
    return arg


@functools.lru_cache(maxsize=1024)
def parse_args_doc(syntax: str, keys: bool) -> tuple[ArgDoc, ...]:
    """The argument docs for a syntax string; ``keys`` says whether key names are keys."""
    alts = [a for a in (_seq_args(s, keys) for s in _SyntaxParser(syntax).alts()) if a]
    if len(alts) <= 1:
        return tuple(alts[0]) if alts else ()
    return (_oneof(alts),)


def _oneof(alts: list[list[ArgDoc]]) -> ArgDoc:
    kids = [a[0] if len(a) == 1 else _block(a) for a in alts]
    name = "_".join(k.name for k in kids) if len(kids) <= 4 else "option"
    return ArgDoc(name, "oneof", args=kids)


def _arg_reply(p: Resp2, a: ArgDoc) -> bytes:
    pairs = [(b"name", enc.bulk(a.name.encode())), (b"type", enc.bulk(a.type.encode()))]
    if a.type not in ("oneof", "block", "pure-token"):
        pairs.append((b"display_text", enc.bulk((a.display or a.name).encode())))
    if a.type == "key":
        pairs.append((b"key_spec_index", enc.ZERO))  # the one key spec of the command
    if a.token:
        pairs.append((b"token", enc.bulk(a.token.encode())))
    flags = [
        f
        for f, on in (
            ("optional", a.optional),
            ("multiple", a.multiple),
            ("multiple_token", a.multiple_token),
        )
        if on
    ]
    if flags:
        pairs.append((b"flags", _simple_set(p, flags)))
    if a.args:
        pairs.append((b"arguments", enc.array([_arg_reply(p, x) for x in a.args])))
    return _map(p, pairs)


def command_doc(p: Resp2, cmd: Command) -> bytes:
    """One COMMAND DOCS value: summary, since, group, complexity, arguments, subcommands."""
    complexity = cmd.complexity or ("Depends on subcommand." if cmd.subcommands else "")
    pairs = [
        (b"summary", cmd.summary),
        (b"since", cmd.since),
        (b"group", cmd.group.replace("_", "-")),
        (b"complexity", complexity),
    ]
    out = [(k, enc.bulk(v.encode())) for k, v in pairs if v]
    args = parse_args_doc(cmd.args_doc, cmd.first_key > 0) if cmd.args_doc else ()
    if args:
        out.append((b"arguments", enc.array([_arg_reply(p, a) for a in args])))
    if cmd.subcommands:
        subs = [(enc.bulk(s.name.encode()), command_doc(p, s)) for s in cmd.subcommands.values()]
        out.append((b"subcommands", p.map_encoded(subs)))
    return _map(p, out)
