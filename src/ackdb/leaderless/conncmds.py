"""A leaderless endpoint's connection commands and its command prefixes, sans-IO.

Owns: what one request of a client is before anything is sent (``classify``): answered
here (PING ECHO AUTH HELLO SELECT CLIENT QUIT RESET COMMAND CONFIG GET, CONSISTENCY,
RECEIPTS, RECEIPT, TOKEN), one for the shell (INFO, TIME, CONVERGE: ``ShellCmd``), or a
data command with its prefixes taken off (``DataCmd``: ``AT <level>`` this command's
level, ``AFTER <token>`` a read that sees the token's write, ``REQID <id>`` a retried
write applies once; composable, in any order). Also AUTH's two passwords: the database's
(its SHA-256 in the database record) and ``AUTH ackdb-internal <shard password>`` for
the cluster's own tools. Never does IO, never reads a clock.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .. import REDIS_COMPAT_VERSION
from ..resp import encoder as enc
from ..resp.hello import (
    HELLO_NOAUTH,
    NOAUTH,
    NOPASS,
    WRONGPASS,
    hello_reply,
    parse_hello_options,
    parse_hello_version,
)
from .levels import Level
from .session import LastReceipt, Session, Token

INTERNAL_USER = b"ackdb-internal"
_NO_AUTH_NEEDED = {b"auth", b"hello", b"quit", b"reset"}
SHELL_CMDS = {b"info", b"time", b"converge"}


@dataclass(frozen=True, slots=True)
class Access:
    password_sha256: str  # the database's password ("" = none)
    internal: bytes | None  # the shards' password (AUTH ackdb-internal ...)


@dataclass(frozen=True, slots=True)
class DataCmd:
    argv: list[bytes]
    read: Level
    write: Level
    level: str  # the level named in receipts (the command's own, else the session's)
    after: Token | None = None
    reqid: bytes | None = None


@dataclass(frozen=True, slots=True)
class ShellCmd:
    argv: list[bytes]


def login_needed(access: Access) -> bool:
    return bool(access.password_sha256)


def _check(s: Session, access: Access, user: bytes, password: bytes) -> bool:
    if user == INTERNAL_USER:
        ok = access.internal is not None and hmac.compare_digest(password, access.internal)
        s.internal = s.internal or ok
        return ok
    if user.lower() != b"default":
        return False
    if not access.password_sha256:
        return True
    digest = hashlib.sha256(password).hexdigest()
    return hmac.compare_digest(digest, access.password_sha256)


def classify(s: Session, access: Access, argv: list[bytes]) -> bytes | DataCmd | ShellCmd:
    name = argv[0].lower()
    if not s.authenticated and name not in _NO_AUTH_NEEDED:
        return NOAUTH
    handler = _HANDLERS.get(name)
    if handler is not None:
        return handler(s, access, argv)
    if name in SHELL_CMDS:
        return ShellCmd(argv)
    return _prefixed(s, argv)


def _prefixed(s: Session, argv: list[bytes]) -> bytes | DataCmd:
    read, write = s.levels()
    level = ""
    after: Token | None = None
    reqid: bytes | None = None
    i = 0
    while i + 1 < len(argv) and argv[i].lower() in (b"at", b"after", b"reqid"):
        word, arg = argv[i].lower(), argv[i + 1]
        if word == b"at":
            try:
                read = write = Level.parse(arg)
            except ValueError:
                return enc.error("ERR AT takes a level: ONE, QUORUM or ALL")
            level = read.value
        elif word == b"after":
            try:
                after = Token.parse(arg)
            except ValueError:
                return enc.error("ERR AFTER takes a session token (from TOKEN)")
        else:
            reqid = arg
        i += 2
    rest = argv[i:]
    if not rest or (i and rest[0].lower() in (b"at", b"after", b"reqid")):
        return enc.error("ERR a prefix (AT, AFTER, REQID) needs an argument and a command")
    return DataCmd(rest, read, write, level, after, reqid)


# -- connection commands ----------------------------------------------------------------


def _arity(name: str) -> bytes:
    return f"-ERR wrong number of arguments for '{name}' command\r\n".encode()


def _ping(s: Session, access: Access, argv: list[bytes]) -> bytes:
    if len(argv) > 2:
        return _arity("ping")
    return enc.bulk(argv[1]) if len(argv) == 2 else enc.PONG


def _echo(s: Session, access: Access, argv: list[bytes]) -> bytes:
    return enc.bulk(argv[1]) if len(argv) == 2 else _arity("echo")


def _auth(s: Session, access: Access, argv: list[bytes]) -> bytes:
    if len(argv) not in (2, 3):
        return _arity("auth") if len(argv) < 2 else b"-ERR syntax error\r\n"
    if len(argv) == 2:
        if not access.password_sha256:
            return NOPASS
        user, password = b"default", argv[1]
    else:
        user, password = argv[1], argv[2]
    if not _check(s, access, user, password):
        return WRONGPASS
    s.authenticated = True
    return enc.OK


def _hello(s: Session, access: Access, argv: list[bytes]) -> bytes:
    ver = parse_hello_version(argv)
    if isinstance(ver, bytes):
        return ver
    opts = parse_hello_options(argv)
    if isinstance(opts, str):
        return enc.error(opts)
    if opts.auth is not None:
        if not _check(s, access, *opts.auth):
            return WRONGPASS
        s.authenticated = True
    if not s.authenticated:
        return HELLO_NOAUTH
    if opts.setname is not None:
        s.name = opts.setname
    if ver is not None:
        s.protocol = ver
    p = enc.RESP3 if s.protocol == 3 else enc.RESP2
    return hello_reply(
        p,
        server=b"redis",
        version=REDIS_COMPAT_VERSION.encode(),
        client_id=s.client_id,
        mode=b"standalone",
        role=b"master",
    )


def _select(s: Session, access: Access, argv: list[bytes]) -> bytes:
    if len(argv) != 2:
        return _arity("select")
    if argv[1] != b"0":
        return b"-ERR SELECT is not allowed on a leaderless database (it has database 0 only)\r\n"
    return enc.OK


def _quit(s: Session, access: Access, argv: list[bytes]) -> bytes:
    s.closing = True
    return enc.OK


def _reset(s: Session, access: Access, argv: list[bytes]) -> bytes:
    s.reset()
    s.authenticated = not login_needed(access)
    s.internal = False
    return b"+RESET\r\n"


def _client(s: Session, access: Access, argv: list[bytes]) -> bytes:
    sub = argv[1].lower() if len(argv) > 1 else b""
    if sub == b"setname" and len(argv) == 3:
        s.name = argv[2]
        return enc.OK
    if sub == b"getname" and len(argv) == 2:
        return (enc.RESP3 if s.protocol == 3 else enc.RESP2).bulk_or_null(s.name or None)
    if sub == b"id" and len(argv) == 2:
        return enc.integer(s.client_id)
    if sub == b"setinfo" and len(argv) == 4:
        return enc.OK
    if sub == b"info" and len(argv) == 2:
        line = f"id={s.client_id} name={s.name.decode('utf-8', 'replace')} db=0 resp={s.protocol}\n"
        return (enc.RESP3 if s.protocol == 3 else enc.RESP2).verbatim(line.encode())
    return enc.error("ERR CLIENT on a leaderless database: SETNAME, GETNAME, ID, SETINFO, INFO")


def _command(s: Session, access: Access, argv: list[bytes]) -> bytes:
    from .usercmds import PLANS

    sub = argv[1].lower() if len(argv) > 1 else b""
    if sub == b"count":
        return enc.integer(len(PLANS))
    if sub == b"docs":
        return (enc.RESP3 if s.protocol == 3 else enc.RESP2).map_header(0)
    return enc.EMPTY_ARRAY


def _config(s: Session, access: Access, argv: list[bytes]) -> bytes:
    if len(argv) >= 3 and argv[1].lower() == b"get":
        known = {b"databases": b"1", b"appendonly": b"no", b"save": b""}
        pairs = [(k, v) for k, v in known.items() if any(p.lower() == k for p in argv[2:])]
        return (enc.RESP3 if s.protocol == 3 else enc.RESP2).map_bulks(pairs)
    return enc.error("ERR CONFIG on a leaderless database endpoint: GET only")


def _consistency(s: Session, access: Access, argv: list[bytes]) -> bytes:
    """``CONSISTENCY`` -> the levels; ``[READ l] [WRITE l]`` sets; ``RESET`` -> defaults."""
    if len(argv) == 2 and argv[1].lower() == b"reset":
        s.read_level = s.write_level = None
        return enc.OK
    if len(argv) > 1:
        if len(argv) % 2 == 0:
            return enc.error("ERR syntax error: CONSISTENCY [READ <level>] [WRITE <level>]")
        new = {}
        for i in range(1, len(argv), 2):
            which = argv[i].lower()
            try:
                lvl = Level.parse(argv[i + 1])
            except ValueError:
                return enc.error("ERR a consistency level is ONE, QUORUM or ALL")
            if which not in (b"read", b"write"):
                return enc.error("ERR syntax error: CONSISTENCY [READ <level>] [WRITE <level>]")
            new[which] = lvl
        s.read_level = new.get(b"read", s.read_level)
        s.write_level = new.get(b"write", s.write_level)
        return enc.OK
    read, write = s.levels()
    p = enc.RESP3 if s.protocol == 3 else enc.RESP2
    return p.map_bulks([(b"read", read.value.encode()), (b"write", write.value.encode())])


def _receipts(s: Session, access: Access, argv: list[bytes]) -> bytes:
    if len(argv) != 2 or argv[1].lower() not in (b"on", b"off"):
        return enc.error("ERR syntax error: RECEIPTS ON|OFF")
    s.receipts = argv[1].lower() == b"on"
    return enc.OK


def receipt_reply(protocol: int, r: LastReceipt | None) -> bytes:
    """The receipt as a map (RESP3) or a flat array (RESP2); nil when there is none."""
    p = enc.RESP3 if protocol == 3 else enc.RESP2
    if r is None:
        return p.null
    return p.map_encoded(receipt_pairs(r))


def receipt_pairs(r: LastReceipt) -> list[tuple[bytes, bytes]]:
    return [
        (enc.bulk(b"replicas"), enc.bulk_array(n.encode() for n in r.replicas)),
        (enc.bulk(b"version"), enc.bulk(r.version.to_bytes())),
        (enc.bulk(b"repaired"), enc.bulk_array(n.encode() for n in r.repaired)),
        (enc.bulk(b"level"), enc.bulk(r.level.encode())),
    ]


def attribute(r: LastReceipt) -> bytes:
    """The RESP3 attribute (``|``) a data reply carries with RECEIPTS ON."""
    pairs = receipt_pairs(r)
    return b"|%d\r\n" % len(pairs) + b"".join(k + v for k, v in pairs)


def _receipt(s: Session, access: Access, argv: list[bytes]) -> bytes:
    return receipt_reply(s.protocol, s.last_receipt)


def _token(s: Session, access: Access, argv: list[bytes]) -> bytes:
    t = s.last_token
    return (enc.RESP3 if s.protocol == 3 else enc.RESP2).bulk_or_null(
        None if t is None else t.text()
    )


_HANDLERS = {
    b"ping": _ping,
    b"echo": _echo,
    b"auth": _auth,
    b"hello": _hello,
    b"select": _select,
    b"quit": _quit,
    b"reset": _reset,
    b"client": _client,
    b"command": _command,
    b"config": _config,
    b"consistency": _consistency,
    b"receipts": _receipts,
    b"receipt": _receipt,
    b"token": _token,
}
