"""A minimal RESP2/RESP3 client that keeps every reply's TYPE (the differential tests need
to tell ``+OK`` from ``$2 OK``, ``$-1`` from ``*-1`` from ``_``), and nothing else.

A reply is a tuple ``(type_char, payload)``:
``('+', b'OK')``, ``('-', b'ERR ...')``, ``(':', 5)``, ``('$', b'...' | None)``,
``('*', [reply, ...] | None)``, and for RESP3 ``('_', None)``, ``(',', b'1.5')``,
``('#', True)``, ``('=', b'txt:...')``, ``('(', 123)``, ``('%', [k, v, k, v, ...])``,
``('~', [...])``, ``('>', [...])``, ``('!', b'...')``. Attributes (``|``) are skipped.
"""

from __future__ import annotations

import socket

from ackdb.resp.request import encode_command as encode_command

Reply = tuple[str, object]

REPLY_TIMEOUT_S = 20.0
RECV_BYTES = 1 << 20


class Incomplete(Exception):
    """The buffer ends inside a reply: read more and parse again from the start."""


def parse_reply(buf: bytes | bytearray, pos: int) -> tuple[Reply, int]:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    kind = chr(buf[pos])
    line = bytes(buf[pos + 1 : end])
    pos = end + 2
    if kind in "+-,":
        return (kind, line), pos
    if kind in ":(":
        return (kind, int(line)), pos
    if kind == "#":
        return (kind, line == b"t"), pos
    if kind == "_":
        return (kind, None), pos
    if kind in "$=!":
        n = int(line)
        if n < 0:
            return (kind, None), pos
        if len(buf) < pos + n + 2:
            raise Incomplete
        return (kind, bytes(buf[pos : pos + n])), pos + n + 2
    if kind in "*~>%|":
        n = int(line)
        if n < 0:
            return (kind, None), pos
        items: list[Reply] = []
        for _ in range(n * 2 if kind in "%|" else n):
            item, pos = parse_reply(buf, pos)
            items.append(item)
        if kind == "|":  # an attribute precedes the real reply
            return parse_reply(buf, pos)
        return (kind, items), pos
    raise ValueError(f"bad RESP type byte {kind!r} in {bytes(buf[pos - 20 : pos + 20])!r}")


class RespConnection:
    """One blocking connection; ``call`` sends a command and returns its typed reply."""

    def __init__(self, port: int, timeout_s: float = REPLY_TIMEOUT_S) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.buf = bytearray()

    def send(self, args: list[bytes]) -> None:
        self.sock.sendall(encode_command(args))

    def read(self) -> Reply:
        while True:
            if self.buf:
                try:
                    reply, pos = parse_reply(self.buf, 0)
                except Incomplete:
                    pass
                else:
                    del self.buf[:pos]
                    return reply
            chunk = self.sock.recv(RECV_BYTES)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def call(self, *args: bytes | str | int) -> Reply:
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.send(argv)
        return self.read()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RespConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
