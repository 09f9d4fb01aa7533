"""Connection commands and transactions: PING, ECHO, HELLO, AUTH, SELECT, SWAPDB, QUIT,
RESET, MULTI, EXEC, DISCARD, WATCH, UNWATCH.

Owns: per-connection state changes (protocol version, authentication, selected
database) and the transaction rules: EXECABORT after a queued error, WATCH seeing every
modification (expiry and FLUSH included), effects of EXEC wrapped in MULTI/EXEC.
"""

from __future__ import annotations

from .. import REDIS_COMPAT_VERSION
from ..engine import access
from ..engine.client import Client
from ..resp import encoder as enc
from ..resp.encoder import RESP2, RESP3
from ..resp.hello import hello_reply, parse_hello_options
from .base import SYNTAX, CommandError, arg_int
from .table import handler

WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@handler("ping")
def ping(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    if c.subscriptions and c.resp == 2:
        msg = argv[1] if len(argv) == 2 else b""
        return b"*2\r\n$4\r\npong\r\n" + enc.bulk(msg)
    if len(argv) == 2:
        return enc.bulk(argv[1])
    return enc.PONG


@handler("echo")
def echo(c: Client, argv: list[bytes]) -> bytes:
    return enc.bulk(argv[1])


def _login(c: Client, cmd_name: bytes, user: bytes, password: bytes) -> None:
    """AUTH / HELLO AUTH: run as ``user`` from now on, or WRONGPASS (and an ACL LOG entry)."""
    u = c.server.acl.authenticate(user, password)
    if u is None:
        access.log_failed_login(c.server, c, cmd_name, user)
        raise CommandError(WRONGPASS)
    access.login(c, u)


@handler("auth")
def auth(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    if len(argv) == 2:
        if c.server.acl.default.nopass:
            raise CommandError(
                "ERR AUTH <password> called without any password configured for the "
                "default user. Are you sure your configuration is correct?"
            )
        user, password = b"default", argv[1]
    else:
        user, password = argv[1], argv[2]
    _login(c, argv[0], user, password)
    return enc.OK


@handler("hello")
def hello(c: Client, argv: list[bytes]) -> bytes:
    ver = None
    if len(argv) >= 2:
        ver = arg_int(argv[1], "ERR Protocol version is not an integer or out of range")
        if ver not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
    opts = parse_hello_options(argv)
    if isinstance(opts, str):
        raise CommandError(opts)
    if opts.auth is not None:
        user, password = opts.auth
        _login(c, argv[0], user, password)
    if not c.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client "
            "and select the RESP protocol version at the same time"
        )
    if opts.setname is not None:
        validate_client_name(opts.setname)
        c.name = opts.setname
    if ver is not None:
        c.resp = ver
        c.p = RESP3 if ver == 3 else RESP2
        c.refresh_gate()
    role = b"replica" if c.server.is_replica() else b"master"
    return hello_reply(
        c.p,
        server=b"redis",
        version=REDIS_COMPAT_VERSION.encode(),
        client_id=c.id,
        mode=b"standalone",
        role=role,
    )


def validate_client_name(name: bytes) -> None:
    for ch in name:
        if ch < 0x21 or ch > 0x7E:
            raise CommandError(
                "ERR Client names cannot contain spaces, newlines or special characters."
            )


@handler("select")
def select(c: Client, argv: list[bytes]) -> bytes:
    idx = arg_int(argv[1])
    if idx < 0 or idx >= len(c.server.dbs):
        raise CommandError("ERR DB index is out of range")
    c.db = c.server.dbs[idx]
    return enc.OK


@handler("swapdb")
def swapdb(c: Client, argv: list[bytes]) -> bytes:
    a = arg_int(argv[1], "ERR invalid first DB index")
    b = arg_int(argv[2], "ERR invalid second DB index")
    dbs = c.server.dbs
    if not (0 <= a < len(dbs)) or not (0 <= b < len(dbs)):
        raise CommandError("ERR DB index is out of range")
    if a != b:
        dbs[a].swap_contents(dbs[b])
    c.server.dirty += 1
    return enc.OK


@handler("quit")
def quit_(c: Client, argv: list[bytes]) -> bytes:
    c.close_after_reply = True
    return enc.OK


@handler("reset")
def reset(c: Client, argv: list[bytes]) -> bytes:
    srv = c.server
    c.multi = None
    c.multi_error = False
    srv.unwatch_all(c)
    c.db = srv.dbs[0]
    c.resp = 2
    c.p = RESP2
    c.name = b""
    if c.monitor:
        c.monitor = False
        srv.monitors.remove(c)
    srv.pubsub.unsubscribe_all(c)
    c.no_evict = c.no_touch = False
    access.reset_login(c)
    return b"+RESET\r\n"


# -- transactions ----------------------------------------------------------------------


@handler("multi")
def multi(c: Client, argv: list[bytes]) -> bytes:
    if c.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    c.multi = []
    c.multi_error = False
    return enc.OK


@handler("discard")
def discard(c: Client, argv: list[bytes]) -> bytes:
    if c.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    c.multi = None
    c.multi_error = False
    c.server.unwatch_all(c)
    return enc.OK


def _watched_key_expired(c: Client) -> bool:
    srv = c.server
    now = srv.now_ms()
    for (db_index, key), was_expired in c.watched.items():
        if was_expired:
            continue
        db = srv.dbs[db_index]
        when = db.expires.get(key)
        if when is not None and when <= now and key in db.data:
            return True
    return False


@handler("exec")
def exec_(c: Client, argv: list[bytes]) -> bytes:
    srv = c.server
    if c.multi is None:
        raise CommandError("ERR EXEC without MULTI")
    queued = c.multi
    c.multi = None
    if c.multi_error:
        c.multi_error = False
        srv.unwatch_all(c)
        raise CommandError("EXECABORT Transaction discarded because of previous errors.")
    if c.dirty_cas or _watched_key_expired(c):
        srv.unwatch_all(c)
        return c.p.null_array
    srv.unwatch_all(c)
    replies = []
    offset_before = srv.master_repl_offset
    srv.begin_transaction_effects()
    try:
        for cmd, args in queued:
            if c.acl_limited:
                denied = access.check_at_exec(srv, c, cmd.spec, args)
                if denied is not None:
                    replies.append(enc.error(denied))
                    continue
            replies.append(srv.call_unblocked(c, cmd, args))
    finally:
        srv.end_transaction_effects()
    if srv.master_repl_offset != offset_before:
        c.woff = srv.master_repl_offset  # the wrapped effects went out just now
    return b"*%d\r\n" % len(replies) + b"".join(replies)


@handler("watch")
def watch(c: Client, argv: list[bytes]) -> bytes:
    if c.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    db = c.db
    now = c.server.now_ms()
    for key in argv[1:]:
        wk = (db.index, key)
        if wk in c.watched:
            continue
        when = db.expires.get(key)
        c.watched[wk] = when is not None and when <= now and key in db.data
        db.watched.setdefault(key, set()).add(c)
    return enc.OK


@handler("unwatch")
def unwatch(c: Client, argv: list[bytes]) -> bytes:
    c.server.unwatch_all(c)
    return enc.OK
