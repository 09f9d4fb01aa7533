"""HELLO's and AUTH's pure parts, shared by every RESP port (the server's, a node's
client port, the endpoints'): the version and option parsers, the reply builder and the
login error replies.

Owns: the grammar ``HELLO [protover [AUTH username password] [SETNAME clientname]]``
with Redis's error texts, the reply map's fields in Redis's order, and the NOAUTH /
WRONGPASS / no-password replies as RESP bytes. What a port does with the options
(checking a password, naming the client) stays with the port. Never does IO.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import encoder as enc
from .encoder import Resp2
from .ints import parse_ll

NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
NOPASS = (
    b"-ERR AUTH <password> called without any password configured for the default user. "
    b"Are you sure your configuration is correct?\r\n"
)
HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise "
    b"the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
    b"client and select the RESP protocol version at the same time\r\n"
)


@dataclass(frozen=True, slots=True)
class HelloOptions:
    auth: tuple[bytes, bytes] | None = None  # (username, password)
    setname: bytes | None = None


def parse_hello_version(argv: list[bytes]) -> int | None | bytes:
    """HELLO's protocol version (None: not given), or the error reply (bytes)."""
    if len(argv) < 2:
        return None
    ver = parse_ll(argv[1])
    if ver is None:
        return b"-ERR Protocol version is not an integer or out of range\r\n"
    if ver not in (2, 3):
        return b"-NOPROTO unsupported protocol version\r\n"
    return ver


def parse_hello_options(argv: list[bytes]) -> HelloOptions | str:
    """The options after ``HELLO protover`` (``argv[2:]``), or the error reply text.

    A later AUTH or SETNAME replaces an earlier one, as in Redis's helloCommand."""
    auth: tuple[bytes, bytes] | None = None
    name: bytes | None = None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        more = len(argv) - i - 1
        if opt == b"auth" and more >= 2:
            auth = (argv[i + 1], argv[i + 2])
            i += 3
        elif opt == b"setname" and more >= 1:
            name = argv[i + 1]
            i += 2
        else:
            return f"ERR Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'"
    return HelloOptions(auth, name)


def hello_reply(
    p: Resp2, *, server: bytes, version: bytes, client_id: int, mode: bytes, role: bytes
) -> bytes:
    """HELLO's reply: a map (RESP3) or a flat array (RESP2) of the connection's facts."""
    fields = [
        (b"server", enc.bulk(server)),
        (b"version", enc.bulk(version)),
        (b"proto", enc.integer(p.version)),
        (b"id", enc.integer(client_id)),
        (b"mode", enc.bulk(mode)),
        (b"role", enc.bulk(role)),
        (b"modules", enc.EMPTY_ARRAY),
    ]
    return p.map_encoded([(enc.bulk(k), v) for k, v in fields])
