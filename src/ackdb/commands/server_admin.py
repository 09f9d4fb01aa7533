"""Server administration: INFO, CONFIG, DBSIZE, FLUSHDB, FLUSHALL, TIME, LASTSAVE, SHUTDOWN,
ROLE, SLOWLOG, DEBUG, MONITOR.

Owns: Redis 7.2 replies and error texts of these commands (checked against redis-server
7.0.15 where 7.0 and 7.2 agree). INFO's text is built by ``server.info``; configuration
values and their errors come from ``server.config``. Never touches the network: SHUTDOWN
only asks the core (``request_shutdown``), the shell stops the server.

Facts worth knowing:
- CONFIG SET with an odd number (>= 4) of arguments answers "ERR syntax error" (Redis
  7.0-7.2 ``configSetCommand``); fewer than 4 is the arity error.
- CONFIG GET: a name without glob characters is looked up exactly (hidden directives too)
  and echoed as typed; a glob matches canonical names and aliases, hidden ones excepted;
  a name matched twice is returned once (compared case-insensitively).
- FLUSHDB / FLUSHALL add the number of removed keys to ``dirty`` and are propagated even
  when nothing was removed (Redis forces their propagation).
- DEBUG is allowed by ``enable-debug-command`` (ackdb default "local": loopback and unix
  socket clients). Redis rejects it before queueing in MULTI; here the check runs when it
  executes. DEBUG POPULATE writes without touching ``dirty`` and is not propagated.
- DEBUG RELOAD saves the snapshot, flushes and loads it back through the server's
  ``persist``. A core without persistence (unit tests) rebuilds the databases from an
  in-memory copy instead and checks that the dataset digest is unchanged.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Any

from ..engine.blocking import BlockRequest
from ..engine.client import Client
from ..engine.ports import ConfigRewriteError, ConfigSetError, Info
from ..keyspace.db import Database
from ..keyspace.digest import dataset_digest, digest_value_hex
from ..keyspace.glob import compile_glob
from ..keyspace.numbers import parse_int
from ..keyspace.types import encoding
from ..resp import encoder as enc
from .base import SYNTAX, CommandError
from .keys import encoding_limits
from .table import handler

_ADMIN = "admin noscript loading stale"


def is_local_client(c: Client) -> bool:
    """Redis islocalClient: a unix socket, or a peer at exactly 127.0.0.1 or ::1."""
    addr = c.addr
    if addr.startswith("/"):
        return True
    return addr.rsplit(":", 1)[0] in ("127.0.0.1", "::1")


def help_reply(name: str, lines: list[str]) -> bytes:
    """Redis addReplyHelp: a header, the given lines, then HELP; all simple strings."""
    out = [f"{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", *lines]
    out += ["HELP", "    Prints this help."]
    return enc.array([enc.simple(line) for line in out])


# -- INFO ---------------------------------------------------------------------------------


@handler("info")
def info(c: Client, argv: list[bytes]) -> bytes:
    reply: bytes = c.p.verbatim(_info(c).text(argv[1:]).encode())
    return reply


def _info(c: Any) -> Info:
    source: Info | None = c.server.info
    if source is None:
        raise CommandError("ERR INFO is not available in this process")
    return source


# -- CONFIG -------------------------------------------------------------------------------

_GLOB_CHARS = re.compile(r"[*?\[]")


@handler("config|get")
def config_get(c: Client, argv: list[bytes]) -> bytes:
    cfg = c.server.config
    found: dict[str, tuple[str, str]] = {}  # lower-case name -> (name as shown, value)
    for raw in argv[2:]:
        pattern = raw.decode("utf-8", "surrogateescape")
        if not _GLOB_CHARS.search(pattern):
            if pattern.lower() not in found and cfg.directive(pattern) is not None:
                found[pattern.lower()] = (pattern, cfg.get_string(pattern))
            continue
        match = compile_glob(raw, nocase=True)
        for name in cfg.names():
            if name not in found and match(name.encode()):
                found[name] = (name, cfg.get_string(name))
    pairs = [
        (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
        for k, v in found.values()
    ]
    reply: bytes = c.p.map_bulks(pairs)
    return reply


@handler("config|set")
def config_set(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) % 2:
        raise CommandError(SYNTAX)
    args = [a.decode("utf-8", "surrogateescape") for a in argv[2:]]
    pairs = list(zip(args[::2], args[1::2], strict=True))
    srv = c.server
    try:
        srv.config.set_many(pairs, is_local=is_local_client(c), loading=bool(srv.loading))
    except ConfigSetError as e:
        raise CommandError(str(e)) from None
    srv.refresh_config()
    return enc.OK


@handler("config|resetstat")
def config_resetstat(c: Client, argv: list[bytes]) -> bytes:
    # Redis: server stats, command and error stats, the memory peak; not the slowlog.
    c.server.reset_stats()
    _info(c).reset_memory_peak()
    return enc.OK


@handler("config|rewrite")
def config_rewrite(c: Client, argv: list[bytes]) -> bytes:
    srv = c.server
    try:
        srv.config.rewrite()
    except ConfigRewriteError as e:
        if srv.log is not None:
            srv.log.warning(f"CONFIG REWRITE failed: {e}")
        raise CommandError(str(e)) from None
    if srv.log is not None:
        srv.log.notice("CONFIG REWRITE executed with success.")
    return enc.OK


_CONFIG_HELP = [
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
]


@handler("config|help")
def config_help(c: Client, argv: list[bytes]) -> bytes:
    return help_reply("CONFIG", _CONFIG_HELP)


# -- keyspace-wide ------------------------------------------------------------------------


@handler("dbsize")
def dbsize(c: Client, argv: list[bytes]) -> bytes:
    return enc.integer(len(c.db.data))


def _check_flush_args(argv: list[bytes]) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        raise CommandError(SYNTAX)


def _flushed(c: Client, argv: list[bytes], removed: int) -> bytes:
    srv = c.server
    srv.dirty += removed
    if not removed:  # the core propagates only changes; Redis forces FLUSH* through
        srv.propagate(c.db.index, argv)
    return enc.OK


@handler("flushdb")
def flushdb(c: Client, argv: list[bytes]) -> bytes:
    _check_flush_args(argv)
    if c.server.tracking.clients:
        c.server.tracking.flush()
    return _flushed(c, argv, c.db.clear())


@handler("flushall")
def flushall(c: Client, argv: list[bytes]) -> bytes:
    _check_flush_args(argv)
    if c.server.tracking.clients:
        c.server.tracking.flush()
    return _flushed(c, argv, sum(db.clear() for db in c.server.dbs))


# -- time, persistence, role, shutdown ----------------------------------------------------


@handler("time")
def time_(c: Client, argv: list[bytes]) -> bytes:
    seconds, micros = divmod(c.server.clock.now_us(), 1_000_000)
    return enc.bulk_array([b"%d" % seconds, b"%d" % micros])


@handler("lastsave")
def lastsave(c: Client, argv: list[bytes]) -> bytes:
    srv = c.server
    if srv.persist is not None:
        return enc.integer(srv.persist.lastsave_s)
    return enc.integer(int(srv.start_time_s))


_SHUTDOWN_FLAGS = frozenset({b"nosave", b"save", b"now", b"force"})


@handler("shutdown")
def shutdown(c: Client, argv: list[bytes]) -> bytes:
    flags: set[bytes] = set()
    abort = False
    for arg in argv[1:]:
        word = arg.lower()
        if word in _SHUTDOWN_FLAGS:
            flags.add(word)
        elif word == b"abort":
            abort = True
        else:
            raise CommandError(SYNTAX)
    if (abort and flags) or {b"nosave", b"save"} <= flags:
        raise CommandError(SYNTAX)
    srv = c.server
    if abort:
        if not srv.shutdown_waiting:
            raise CommandError("ERR No shutdown in progress.")
        srv.shutdown_waiting = False  # the node's wait sees it and gives up
        return enc.OK
    mode = "nosave" if b"nosave" in flags else "save" if b"save" in flags else "default"
    repl = srv.repl
    if (
        b"now" not in flags
        and repl is not None
        and srv.config.get("shutdown-timeout")
        and repl.lagging_replicas()
    ):
        # Redis 7: lagging replicas get up to shutdown-timeout seconds (writes paused)
        # before the save and exit; the client waits without a reply.
        srv.defer_shutdown(c, mode, b"force" in flags)
        raise BlockRequest([], 0, b"")
    p = srv.persist
    if p is not None:
        if not p.prepare_shutdown(mode) and b"force" not in flags:
            raise CommandError("ERR Errors trying to SHUTDOWN. Check logs.")
        mode = "nosave"  # done: the shell must not save again
    srv.request_shutdown(mode)
    c.close_after_reply = True  # nothing after SHUTDOWN runs, and no reply is sent
    return b""


# -- SLOWLOG ------------------------------------------------------------------------------


def _slowlog_entry(e: Any) -> bytes:
    return (
        b"*6\r\n"
        + enc.integer(e.id)
        + enc.integer(e.time_s)
        + enc.integer(e.usec)
        + enc.bulk_array(e.argv)
        + enc.bulk(e.addr)
        + enc.bulk(e.name)
    )


@handler("slowlog|get")
def slowlog_get(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 3:
        raise CommandError("ERR wrong number of arguments for 'slowlog|get' command")
    log = c.server.slowlog
    count = 10
    if len(argv) == 3:
        n = parse_int(argv[2])
        if n is None or n < -1:
            raise CommandError("ERR count should be greater than or equal to -1")
        count = len(log) if n == -1 else n
    return enc.array([_slowlog_entry(e) for e in islice(log, count)])


@handler("slowlog|len")
def slowlog_len(c: Client, argv: list[bytes]) -> bytes:
    return enc.integer(len(c.server.slowlog))


@handler("slowlog|reset")
def slowlog_reset(c: Client, argv: list[bytes]) -> bytes:
    c.server.slowlog.clear()  # entry ids keep counting, as in Redis
    return enc.OK


_SLOWLOG_HELP = [
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
]


@handler("slowlog|help")
def slowlog_help(c: Client, argv: list[bytes]) -> bytes:
    return help_reply("SLOWLOG", _SLOWLOG_HELP)


# -- MONITOR ------------------------------------------------------------------------------


@handler("monitor")
def monitor(c: Client, argv: list[bytes]) -> bytes:
    srv = c.server
    if srv.in_exec:
        # Redis: a client inside EXEC (or a script) must get one reply per command.
        raise CommandError("ERR MONITOR isn't allowed for DENY BLOCKING client")
    if c.monitor or c.kind == "replica":
        return b""  # Redis ignores it silently
    c.monitor = True
    srv.monitors.append(c)
    return enc.OK


# -- DEBUG ----------------------------------------------------------------------------------

_DEBUG_DENIED = (
    'ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", '
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server."
)
_MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
_C_DOUBLE_PREFIX = re.compile(rb"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_C_INT_PREFIX = re.compile(rb"\s*[+-]?\d+")
# Redis builds POPULATE key names in a 128-byte buffer: at most 127 bytes survive.
POPULATE_KEY_BYTES_MAX = 127
# Longest DEBUG SLEEP (s): beyond it the process's sleep overflows (Redis: undefined behaviour).
DEBUG_SLEEP_S_MAX = 2**31


def _strtod(b: bytes) -> float:
    """C strtod on the leading number; no number is 0 (DEBUG SLEEP's parsing)."""
    m = _C_DOUBLE_PREFIX.match(b)
    return float(m.group(0)) if m else 0.0


def _atoi(b: bytes) -> int:
    m = _C_INT_PREFIX.match(b)
    return int(m.group(0)) if m else 0


def _positive(b: bytes) -> int:
    n = parse_int(b)
    if n is None or n < 0:
        raise CommandError(_MUST_BE_POSITIVE)
    return n


def _db_entries(db: Database) -> Any:
    expires = db.expires
    return ((k, v, k in expires) for k, v in db.data.items())


def _digest(srv: Any) -> str:
    return dataset_digest([(db.index, _db_entries(db)) for db in srv.dbs])


def _debug_digest(c: Client, argv: list[bytes]) -> bytes:
    return enc.simple(_digest(c.server))


def _debug_digest_value(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    out = []
    for key in argv[2:]:
        v = db.lookup(key)
        out.append(enc.simple(digest_value_hex(v, v is not None and key in db.expires)))
    return enc.array(out)


def _debug_sleep(c: Client, argv: list[bytes]) -> bytes:
    seconds = _strtod(argv[2])
    if seconds > 0:
        # Blocks the whole server, as Redis's DEBUG SLEEP does.
        c.server.clock.sleep(min(seconds, DEBUG_SLEEP_S_MAX))
    return enc.OK


def _debug_set_active_expire(c: Client, argv: list[bytes]) -> bytes:
    c.server.active_expire = bool(_atoi(argv[2]))
    return enc.OK


def _debug_populate(c: Client, argv: list[bytes]) -> bytes:
    count = _positive(argv[2])
    prefix = argv[3] if len(argv) > 3 else b"key"
    size = _positive(argv[4]) if len(argv) > 4 else 0
    db = c.db
    data = db.data
    add = db.add_new
    lookup = db.lookup
    truncate = len(prefix) + 21 > POPULATE_KEY_BYTES_MAX
    for j in range(count):
        key = b"%s:%d" % (prefix, j)
        if truncate:
            key = key[:POPULATE_KEY_BYTES_MAX]
        if key in data and (not db.expires or lookup(key) is not None):
            continue  # existing keys are left alone
        value = b"value:%d" % j
        if size:
            value = value[:size].ljust(size, b"\0")
        add(key, value)
    return enc.OK


def _copy_value(v: Any) -> Any:
    """A copy of one value through its constructor (bytes are immutable: shared)."""
    if v.__class__ is bytes:
        return v
    copy = getattr(v, "copy", None)
    return copy() if copy is not None else v.__class__(v)


def _debug_reload(c: Client, argv: list[bytes]) -> bytes:
    options = {a.lower() for a in argv[2:]}
    if not options <= {b"merge", b"noflush", b"nosave"}:
        raise CommandError("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
    srv = c.server
    if srv.persist is not None:
        if not srv.persist.debug_reload(
            save=b"nosave" not in options,
            flush=b"noflush" not in options and b"merge" not in options,
        ):
            raise CommandError("ERR Error trying to load the RDB dump, check server logs.")
        return enc.OK
    if b"nosave" in options:
        raise CommandError("ERR Error trying to load the RDB dump, check server logs.")
    now = srv.now_ms()
    snapshot = []
    for db in srv.dbs:
        exp = db.expires
        live = [
            (k, _copy_value(v), exp.get(k))
            for k, v in db.data.items()
            if k not in exp or exp[k] > now
        ]
        snapshot.append((db.index, live))
    before = dataset_digest(
        (i, ((k, v, when is not None) for k, v, when in live)) for i, live in snapshot
    )
    for db, (_, live) in zip(srv.dbs, snapshot, strict=True):
        db.clear()
        # Loading a snapshot announces no key (no `new` event), as in Redis.
        created, db.notify_created = db.notify_created, False
        try:
            for k, v, when in live:
                db.add_new(k, v)
                if when is not None:
                    db.set_expire(k, when)
        finally:
            db.notify_created = created
    if _digest(srv) != before:
        raise CommandError("ERR Error trying to load the RDB dump, check server logs.")
    if srv.log is not None:
        srv.log.notice("DB reloaded by DEBUG RELOAD")
    return enc.OK


def _debug_disk_fault(c: Client, argv: list[bytes]) -> bytes:
    p = c.server.persist
    if p is None:
        raise CommandError("ERR persistence is not available in this process")
    try:
        p.faults.set(argv[2].decode("utf-8", "replace").lower(), argv[3].decode("utf-8", "replace"))
    except ValueError as e:
        raise CommandError(f"ERR {e}") from None
    return enc.OK


def _debug_object(c: Client, argv: list[bytes]) -> bytes:
    v = c.db.lookup(argv[2])
    if v is None:
        raise CommandError("ERR no such key")
    kind = encoding(v, encoding_limits(c)).decode()
    size = len(v) if v.__class__ is bytes else sum(len(x) for x in _flat(v))
    lru = int(c.server.clock.time_s()) & ((1 << 24) - 1)
    return enc.simple(
        f"Value at:{id(v):#x} refcount:1 encoding:{kind} serializedlength:{size} "
        f"lru:{lru} lru_seconds_idle:0"
    )


def _flat(v: Any) -> Any:
    if isinstance(v, dict):
        for k, x in v.items():
            yield k
            if isinstance(x, bytes):
                yield x
    else:
        for x in v:
            yield x if isinstance(x, bytes) else x[0]


_DEBUG_HELP = [
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas.",
    "RELOAD [option ...]",
    "    Save the snapshot on disk, flush the dataset and load it back. Valid <option>",
    "    values: MERGE (load on top of the dataset), NOFLUSH (the same), NOSAVE (load",
    "    the snapshot already on disk).",
    "DISK-FAULT <aof-write|aof-fsync|save> <errno-name|off>",
    "    ackdb: make AOF writes, AOF fsyncs or snapshot saves fail with that error",
    "    (for example ENOSPC or EIO) until turned off, to test disk failures.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
]

# name -> (handler, fewest arguments, most arguments; the count includes DEBUG itself)
_DEBUG: dict[bytes, tuple[Any, int, int]] = {
    b"help": (lambda c, argv: help_reply("DEBUG", _DEBUG_HELP), 2, 2),
    b"digest": (_debug_digest, 2, 2),
    b"digest-value": (_debug_digest_value, 2, 1 << 30),
    b"sleep": (_debug_sleep, 3, 3),
    b"set-active-expire": (_debug_set_active_expire, 3, 3),
    b"populate": (_debug_populate, 3, 5),
    b"reload": (_debug_reload, 2, 1 << 30),
    b"object": (_debug_object, 3, 3),
    b"disk-fault": (_debug_disk_fault, 4, 4),
}


@handler("debug")
def debug(c: Client, argv: list[bytes]) -> bytes:
    mode = c.server.config.get("enable-debug-command")
    if not (mode == "yes" or (mode == "local" and is_local_client(c))):
        raise CommandError(_DEBUG_DENIED)
    entry = _DEBUG.get(argv[1].lower())
    if entry is None or not entry[1] <= len(argv) <= entry[2]:
        name = argv[1].decode("utf-8", "replace")[:128]
        raise CommandError(
            f"ERR unknown subcommand or wrong number of arguments for '{name}'. Try DEBUG HELP."
        )
    reply: bytes = entry[0](c, argv)
    return reply
