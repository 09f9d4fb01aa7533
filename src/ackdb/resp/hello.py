"""HELLO's pure parts, shared by every RESP port (the server's and a node's client port):
the option parser and the reply builder.

Owns: the grammar ``HELLO [protover [AUTH username password] [SETNAME clientname]]``
after the version, with Redis's syntax error text, and the reply map's fields in Redis's
order. What a port does with the options (checking a password, naming the client) and
how it reads the version stays with the port. Never does IO.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import encoder as enc
from .encoder import Resp2


@dataclass(frozen=True, slots=True)
class HelloOptions:
    auth: tuple[bytes, bytes] | None = None  # (username, password)
    setname: bytes | None = None


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
