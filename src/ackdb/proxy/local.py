"""Commands the endpoint answers itself: PING, ECHO, AUTH, HELLO, SELECT, QUIT, RESET,
CLIENT SETNAME / GETNAME / ID / SETINFO / INFO, and the text of INFO.

Owns: ``HANDLERS`` -- full command name -> handler ``(session, argv) -> reply bytes`` -- the
table grows by adding the name to ``router.LOCAL`` and the handler here (the cluster API's
CLUSTER, READONLY, READWRITE, ASKING have a route of their own: proxy/clusterapi.py). Redis's texts for the errors these commands give.
Never does IO.

AUTH checks the database's password (its SHA-256 against ``Database.password_sha256``);
a database without a password answers AUTH as Redis without requirepass does. HELLO sets
the client's protocol; the shard connections follow it (the session sends HELLO to them),
so shards' replies are already in the client's protocol and are forwarded unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import REDIS_COMPAT_VERSION
from ..resp import encoder as enc
from ..resp.hello import (
    HELLO_NOAUTH,
    NOPASS,
    WRONGPASS,
    hello_reply,
    parse_hello_options,
    parse_hello_version,
)
from ..resp.ints import parse_ll
from . import access, pubsub
from .router import Route

if TYPE_CHECKING:
    from .session import Session

Handler = Callable[["Session", list[bytes]], bytes]

OK = b"+OK\r\n"


def arity_error(name: str) -> bytes:
    return f"-ERR wrong number of arguments for '{name}' command\r\n".encode()


def unknown_command(argv: list[bytes]) -> bytes:
    from .router import ROUTES

    top = ROUTES.get(argv[0].lower())
    if top is not None and top.subs:
        if len(argv) < 2:
            return arity_error(top.name)
        sub = argv[1].decode("utf-8", "replace")
        return f"-ERR unknown subcommand '{sub}'. Try {top.name.upper()} HELP.\r\n".encode()
    name = argv[0].decode("utf-8", "replace")[:128]
    args = "".join(f"'{a.decode('utf-8', 'replace')[:128]}' " for a in argv[1:])
    return enc.error(f"ERR unknown command '{name}', with args beginning with: {args}")


def run(s: Session, r: Route, argv: list[bytes]) -> bytes:
    cmd = r.cmd
    if cmd is not None and not cmd.argc_min <= len(argv) <= cmd.argc_max:
        return arity_error(r.name)
    return HANDLERS[r.name](s, argv)


def password_ok(s: Session, password: bytes) -> bool:
    digest = hashlib.sha256(password).hexdigest()
    return hmac.compare_digest(digest, s.router.password_sha256)


def _check(s: Session, user: bytes, password: bytes) -> bool:
    """AUTH's test: the database's ACL users when it has some (proxy/access.py logs the
    session in as the user), else the default user with the database's password."""
    if s.router.acl is not None:
        return access.authenticate(s, user, password)
    if user.lower() != b"default":
        return False
    if not s.router.password_sha256:
        return True  # the default user has nopass
    return password_ok(s, password)


def ping(s: Session, argv: list[bytes]) -> bytes:
    if len(argv) > 2:
        return arity_error("ping")
    if pubsub.subscribed_resp2(s):
        msg = argv[1] if len(argv) == 2 else b""
        return b"*2\r\n$4\r\npong\r\n$%d\r\n%s\r\n" % (len(msg), msg)
    if len(argv) == 2:
        return enc.bulk(argv[1])
    return enc.PONG


def echo(s: Session, argv: list[bytes]) -> bytes:
    return enc.bulk(argv[1])


def auth(s: Session, argv: list[bytes]) -> bytes:
    if len(argv) > 3:
        return b"-ERR syntax error\r\n"
    if len(argv) == 2:
        acl = s.router.acl
        if (acl is not None and acl.default.nopass) or (
            acl is None and not s.router.password_sha256
        ):
            return NOPASS
        user, password = b"default", argv[1]
    else:
        user, password = argv[1], argv[2]
    if not _check(s, user, password):
        return WRONGPASS
    s.authenticated = True
    return OK


def hello(s: Session, argv: list[bytes]) -> bytes:
    ver = parse_hello_version(argv)
    if isinstance(ver, bytes):
        return ver
    opts = parse_hello_options(argv)
    if isinstance(opts, str):
        return enc.error(opts)
    if opts.auth is not None:
        if not _check(s, *opts.auth):
            return WRONGPASS
        s.authenticated = True
    if not s.authenticated:
        return HELLO_NOAUTH
    if opts.setname is not None:
        if not _name_ok(opts.setname):
            return BAD_NAME
        s.name = opts.setname
    if ver is not None:
        set_protocol(s, ver)
    p = enc.RESP3 if s.protocol == 3 else enc.RESP2
    return hello_reply(
        p,
        server=b"redis",
        version=REDIS_COMPAT_VERSION.encode(),
        client_id=s.client_id,
        mode=b"standalone" if s.router.cluster is None else b"cluster",
        role=b"master",
    )


def set_protocol(s: Session, ver: int) -> None:
    """The client's protocol, and every open shard connection's with it."""
    s.protocol = ver
    held = s.pubsub.held if s.pubsub is not None else None
    for shard, proto in enumerate(s.proto):
        if proto and proto != ver and not (held and held[shard]):  # subscribed: stays RESP3
            s._send(shard, [b"HELLO", b"%d" % ver], None)
            s.proto[shard] = ver


BAD_NAME = b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"


def _name_ok(name: bytes) -> bool:
    return all(0x21 <= ch <= 0x7E for ch in name)


def select(s: Session, argv: list[bytes]) -> bytes:
    idx = parse_ll(argv[1])
    if idx is None:
        return b"-ERR value is not an integer or out of range\r\n"
    if idx != 0:
        return (
            b"-ERR SELECT is not allowed through a database endpoint (it has database 0 only)\r\n"
        )
    return OK


def quit_(s: Session, argv: list[bytes]) -> bytes:
    s.closing = True
    return OK


def reset(s: Session, argv: list[bytes]) -> bytes:
    from .txn import _end

    _end(s)
    pubsub.reset(s)
    set_protocol(s, 2)
    s.name = b""
    s.readonly = False
    access.reset_login(s)
    return b"+RESET\r\n"


def acl_whoami(s: Session, argv: list[bytes]) -> bytes:
    return enc.bulk(s.user.name if s.user is not None else b"default")


def client_setname(s: Session, argv: list[bytes]) -> bytes:
    if not _name_ok(argv[2]):
        return BAD_NAME
    s.name = argv[2]
    return OK


def client_getname(s: Session, argv: list[bytes]) -> bytes:
    if not s.name:
        return b"_\r\n" if s.protocol == 3 else b"$-1\r\n"
    return enc.bulk(s.name)


def client_id(s: Session, argv: list[bytes]) -> bytes:
    return enc.integer(s.client_id)


def client_setinfo(s: Session, argv: list[bytes]) -> bytes:
    attr = argv[2].lower()
    if attr not in (b"lib-name", b"lib-ver"):
        return enc.error(f"ERR Unrecognized option '{argv[2].decode('utf-8', 'replace')}'")
    if not _name_ok(argv[3]) and argv[3]:
        return enc.error(
            f"ERR {attr.decode()} cannot contain spaces, newlines or special characters."
        )
    return OK


def client_info(s: Session, argv: list[bytes]) -> bytes:
    line = f"id={s.client_id} name={s.name.decode('utf-8', 'replace')} db=0 resp={s.protocol}\n"
    p = enc.RESP3 if s.protocol == 3 else enc.RESP2
    return p.verbatim(line.encode())


def client_help(s: Session, argv: list[bytes]) -> bytes:
    lines = [
        b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"GETNAME, SETNAME <name>, ID, INFO, SETINFO <LIB-NAME|LIB-VER> <value>",
        b"(through a database endpoint; docs/proxy.md lists the rest)",
    ]
    return b"*%d\r\n" % len(lines) + b"".join(b"+%s\r\n" % x for x in lines)


HANDLERS: dict[str, Handler] = {
    "ping": ping,
    "echo": echo,
    "auth": auth,
    "hello": hello,
    "select": select,
    "quit": quit_,
    "reset": reset,
    "client|setname": client_setname,
    "client|getname": client_getname,
    "client|id": client_id,
    "client|setinfo": client_setinfo,
    "client|info": client_info,
    "client|help": client_help,
    "acl|whoami": acl_whoami,
}


def info_reply(
    fields: dict[str, list[tuple[str, Any]]],
    sections: list[str],
    keyspace: list[str],
    protocol: int,
) -> bytes:
    """INFO's text: the endpoint's sections from ``fields``, then the keyspace."""
    blocks = []
    for name in sections:
        if name == "keyspace":
            blocks.append("# Keyspace\r\n" + "".join(f"{x}\r\n" for x in keyspace))
        elif name in fields:
            title = name.capitalize()
            body = "".join(f"{k}:{v}\r\n" for k, v in fields[name])
            blocks.append(f"# {title}\r\n{body}")
    text = "\r\n".join(blocks).encode()
    return enc.RESP3.verbatim(text) if protocol == 3 else enc.bulk(text)
