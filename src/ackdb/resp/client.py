"""The RESP client: the asyncio ``Client`` (the node, the benchmarks) and its blocking
twin ``BlockingClient`` (command-line tools, test helpers, benchmark set-up).

SHELL MODULE: this and resp.aio are the only modules of resp/ that do IO (sockets,
asyncio). Requests are encoded by resp.request and replies parsed by resp.replies; this
module only moves bytes and waits.

Both clients pipeline: ``send`` queues commands without waiting, ``read`` returns the next
reply in order, ``pipeline`` sends several commands and returns their replies, and
``call`` sends one and returns its reply. Error replies are ``ReplyError`` values from
``read`` and ``pipeline`` and raised by ``call``. ``ConnectionError`` when the server
closes the connection; ``TimeoutError`` when a limit passes: ``timeout_s`` bounds the
connect (and, for ``BlockingClient``, every socket operation, as a socket timeout does);
the asyncio ``Client`` bounds reads by ``read_timeout_s`` (None: callers bound a whole
exchange with ``asyncio.wait_for``, as asyncio code does).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Sequence
from typing import Any

from .addr import parse_addr
from .replies import NEED_DATA, ReplyError, ReplyReader
from .request import Arg, pack

__all__ = ["Arg", "BlockingClient", "Client", "ReplyError", "pack", "parse_addr"]

DEFAULT_TIMEOUT_S = 10.0
READ_CHUNK_BYTES = 64 * 1024


def _raise_single(replies: list[Any]) -> Any:
    reply = replies[0]
    if isinstance(reply, ReplyError):
        raise reply
    return reply


class Client:
    """One asyncio connection; see the module docstring. Concurrent callers are served in
    the order they sent their commands."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        read_timeout_s: float | None = None,
        encoding: str | None = None,
    ) -> None:
        self.read_timeout_s = read_timeout_s
        self._r = reader
        self._w = writer
        self._replies = ReplyReader(encoding)
        self._lock = asyncio.Lock()  # one reader of the stream at a time, in send order

    @classmethod
    async def connect(
        cls,
        addr: str,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        read_timeout_s: float | None = None,
        encoding: str | None = None,
    ) -> Client:
        host, port = parse_addr(addr)
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        sock = w.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(r, w, read_timeout_s, encoding)

    def send(self, *args: Arg) -> None:
        """Queue one command; its reply comes from a later ``read``."""
        self._w.write(pack(*args))

    def send_many(self, commands: Iterable[Sequence[Arg]]) -> None:
        self._w.write(b"".join(pack(*c) for c in commands))

    async def read(self) -> Any:
        """The next reply (an error reply as a ``ReplyError`` value)."""
        reply = self._replies.get()
        while reply is NEED_DATA:
            read = self._r.read(READ_CHUNK_BYTES)
            limit = self.read_timeout_s
            data = await (read if limit is None else asyncio.wait_for(read, limit))
            if not data:
                raise ConnectionError("connection closed")
            self._replies.feed(data)
            reply = self._replies.get()
        return reply

    async def read_some(self) -> list[Any]:
        """The next reply and every reply already received after it (a load generator
        refills its pipeline once per read, not once per reply)."""
        out = [await self.read()]
        while (reply := self._replies.get()) is not NEED_DATA:
            out.append(reply)
        return out

    async def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        self.send_many(commands)
        async with self._lock:
            return [await self.read() for _ in commands]

    async def call(self, *args: Arg) -> Any:
        return _raise_single(await self.pipeline([args]))

    async def close(self) -> None:
        self._w.close()
        try:
            await self._w.wait_closed()
        except OSError:
            pass


class BlockingClient:
    """One blocking connection; see the module docstring."""

    def __init__(
        self, addr: str, timeout_s: float | None = DEFAULT_TIMEOUT_S, encoding: str | None = None
    ) -> None:
        host, port = parse_addr(addr)
        self.addr = addr
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._replies = ReplyReader(encoding)

    def settimeout(self, timeout_s: float | None) -> None:
        self.sock.settimeout(timeout_s)

    def send(self, *args: Arg) -> None:
        self.sock.sendall(pack(*args))

    def send_many(self, commands: Iterable[Sequence[Arg]]) -> None:
        self.sock.sendall(b"".join(pack(*c) for c in commands))

    def read(self) -> Any:
        reply = self._replies.get()
        while reply is NEED_DATA:
            data = self.sock.recv(READ_CHUNK_BYTES)
            if not data:
                raise ConnectionError(f"{self.addr} closed the connection")
            self._replies.feed(data)
            reply = self._replies.get()
        return reply

    def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        self.send_many(commands)
        return [self.read() for _ in commands]

    def call(self, *args: Arg) -> Any:
        return _raise_single(self.pipeline([args]))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
