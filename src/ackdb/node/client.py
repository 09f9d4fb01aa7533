"""A small RESP client for the cluster tools: ``ackdb cluster ...``, a joining node asking
to be added, the benchmark and the tests.

Owns: one connection, commands packed as RESP arrays, replies parsed by hiredis. Error
replies come back as ``ReplyError`` (its text without the leading ``-``). ``Client`` is
blocking (for command-line tools); ``AsyncClient`` runs on asyncio (for the agent).
Never pipelines silently: ``call`` sends one command and waits for its reply, ``pipeline``
sends several at once and returns their replies in order.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import hiredis

from ackdb.node.peerframes import parse_addr

DEFAULT_TIMEOUT_S = 10.0
READ_CHUNK_BYTES = 64 * 1024


class ReplyError(Exception):
    """An error reply (``-TRYAGAIN ...``): ``code`` is its first word."""

    @property
    def code(self) -> str:
        return str(self).split(" ", 1)[0]


Arg = bytes | str | int


def pack(*args: Arg) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _reader() -> Any:
    return hiredis.Reader(replyError=ReplyError)


class Client:
    def __init__(self, addr: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        host, port = parse_addr(addr)
        self.addr = addr
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = _reader()

    def call(self, *args: Arg) -> Any:
        return self.pipeline([args])[0]

    def pipeline(self, commands: list[tuple[Arg, ...]]) -> list[Any]:
        """Send all ``commands``, then read their replies; error replies are returned as
        ``ReplyError`` objects, not raised (``call`` raises them)."""
        self.sock.sendall(b"".join(pack(*c) for c in commands))
        out: list[Any] = []
        while len(out) < len(commands):
            reply = self.reader.gets()
            if reply is False:
                data = self.sock.recv(READ_CHUNK_BYTES)
                if not data:
                    raise ConnectionError(f"{self.addr} closed the connection")
                self.reader.feed(data)
                continue
            out.append(reply)
        if len(commands) == 1 and isinstance(out[0], ReplyError):
            raise out[0]
        return out

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r = reader
        self.w = writer
        self.parser = _reader()

    @classmethod
    async def connect(cls, addr: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> AsyncClient:
        host, port = parse_addr(addr)
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        return cls(r, w)

    async def call(self, *args: Arg) -> Any:
        self.w.write(pack(*args))
        while True:
            reply = self.parser.gets()
            if reply is not False:
                if isinstance(reply, ReplyError):
                    raise reply
                return reply
            data = await self.r.read(READ_CHUNK_BYTES)
            if not data:
                raise ConnectionError("connection closed")
            self.parser.feed(data)

    async def close(self) -> None:
        self.w.close()
        try:
            await self.w.wait_closed()
        except OSError:
            pass
