"""The asyncio shell: listeners, one protocol object per client, the cron timer, signals.

Owns: sockets and the event loop. It feeds each read to the client's request reader, runs
every complete command through the core, and sends all replies of a read in one write.
It branches on nothing protocol-specific beyond that; decisions live in ``core``.

Limits: ``maxclients`` (refused with Redis's error), the query buffer (closed by the
reader), output buffers per client class (``client-output-buffer-limit``: hard limit
closes at once, soft limit after its seconds), and back-pressure — a client whose
socket buffer passes the high-water mark is not read until it drains.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
from typing import Any

from ..engine.client import Client
from ..engine.core import Server
from ..resp import encoder as enc

# Socket send buffer above which a client's reads pause until it drains (bytes).
WRITE_HIGH_WATER_BYTES = 1024 * 1024
WRITE_LOW_WATER_BYTES = 256 * 1024
# Commands a held client (blocked, paused, WAIT) may queue before its reads pause. Not
# pausing at once saves two system calls per WAIT (measured: bench/replication_bench.py).
HOLD_PENDING_MAX = 1024

_LOOPBACK = ("127.", "::1", "localhost")


class ClientConnection(asyncio.Protocol):
    __slots__ = ("node", "core", "transport", "client", "_read_paused_by", "_out")

    def __init__(self, node: Any) -> None:
        self.node = node
        self.core: Server = node.core
        self.transport: Any = None
        self.client: Client | None = None
        self._read_paused_by: set[str] = set()
        self._out: list[bytes] = []  # replies waiting for the end-of-pass flush

    # -- Conn interface used by the core ------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data``; it goes out when the node flushes, at the end of this pass of
        the event loop. Replies to many clients then leave in one burst, which wakes
        their readers far less often than one send per read (measured: +25% req/s)."""
        if not self._out:
            self.node.schedule_flush(self)
        self._out.append(data)

    def flush(self) -> None:
        out = self._out
        if not out:
            return
        self._out = []
        t = self.transport
        if t is None or t.is_closing():
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        t.write(data)
        core = self.core
        core.stat_writes_processed += 1
        c = self.client
        kind = c.kind if c is not None else "normal"
        if kind == "replica":
            core.stat_net_repl_output += len(data)  # Redis 7: apart from clients' bytes
        else:
            core.stat_net_output += len(data)
        if c is not None and (kind != "normal" or self.node.normal_limited):
            self._check_output_limits()

    def flush_now(self, fd: int) -> None:
        """Write the queued replies to the socket at once (``serve_while_busy``: the event
        loop, which may defer a transport's writes to the end of its pass, is not running).
        Data the transport still holds keeps its order: then the replies queue behind it."""
        out = self._out
        t = self.transport
        if not out or t is None or t.is_closing():
            return
        self._out = []
        data = b"".join(out)
        self.core.stat_net_output += len(data)
        if not t.get_write_buffer_size():
            try:
                data = data[os.write(fd, data) :]
            except OSError:
                pass  # EAGAIN, or a reset the event loop reports later
        if data:
            t.write(data)

    def close(self) -> None:
        if self.transport is not None:
            if self.node.may_flush(self):
                self.flush()
            else:
                self._out = []  # never acknowledge what is not on disk (always)
            self.transport.close()

    def buffer_size(self) -> int:
        t = self.transport
        return t.get_write_buffer_size() if t is not None else 0

    def pause_reading(self, why: str = "pause") -> None:
        if not self._read_paused_by and self.transport is not None:
            self.transport.pause_reading()
        self._read_paused_by.add(why)

    def resume_reading(self, why: str = "pause") -> None:
        paused = self._read_paused_by
        if why not in paused:
            return  # never paused for this: no system call
        paused.discard(why)
        if not paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def resume_commands(self, skip_first_with: bytes | None = None) -> None:
        """Run the commands held by CLIENT PAUSE or by a blocking command, then read again.

        ``skip_first_with``: the held blocking command timed out; this is its reply."""
        c = self.client
        if c is None or c.closed:
            return
        held, c.pending = c.pending, []
        c.blocked_since_ms = 0
        if skip_first_with is not None and held:
            self.write(skip_first_with)
            held = held[1:]
        self.resume_reading("hold")
        if held:
            self._run(held)

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        if self.client is not None:
            # Accepted while a script was busy (``_adopt``): only the transport changes.
            self.transport = transport
            transport.set_write_buffer_limits(WRITE_HIGH_WATER_BYTES, WRITE_LOW_WATER_BYTES)
            return
        self.transport = transport
        core = self.core
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        addr = _format_addr(peer)
        laddr = _format_addr(local)
        sock = transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        cfg = core.config
        if len(core.clients) >= cfg.get("maxclients"):
            core.stat_rejected_conn += 1
            transport.write(b"-ERR max number of clients reached\r\n")
            transport.close()
            return
        if self.node.protected_mode_denies(addr):
            core.stat_rejected_conn += 1
            transport.write(_DENIED)
            transport.close()
            return
        transport.set_write_buffer_limits(WRITE_HIGH_WATER_BYTES, WRITE_LOW_WATER_BYTES)
        keepalive = cfg.get("tcp-keepalive")
        if sock is not None and keepalive > 0 and sock.family in (socket.AF_INET, socket.AF_INET6):
            _set_keepalive(sock, keepalive)
        self.client = core.new_client(self, addr, laddr, fd)

    def data_received(self, data: bytes) -> None:
        c = self.client
        if c is None or c.closed:
            return
        core = self.core
        core.stat_net_input += len(data)
        core.stat_reads_processed += 1
        c.last_ms = self.node.cached_ms
        cmds = c.reader.feed(data)
        if c.pending:
            c.pending.extend(cmds)
            if len(c.pending) > HOLD_PENDING_MAX:
                self.pause_reading("hold")  # a held client pipelining without end
        elif cmds:
            self._run(cmds)
        reader = c.reader
        while reader.more and not c.closed and not c.pending:
            # Unauthenticated: one command per feed, so an AUTH runs before the rest
            # is parsed (with the limits its outcome decides).
            cmds = reader.feed(b"")
            if cmds:
                self._run(cmds)
        err = c.reader.error
        if err is not None:
            if err.reply is not None:
                self.write(enc.error(err.reply))
                self.node.log.verbose(
                    f"Protocol error ({err.reply}) from client: id={c.id} addr={c.addr}"
                )
            else:
                self.node.log.warning(f"{err.log}: id={c.id} addr={c.addr}")
            self.close()

    def _run(self, cmds: list[list[bytes]]) -> None:
        c = self.client
        assert c is not None
        out: list[bytes] = []
        held = self.core.process_batch(c, cmds, out)
        if held is not None:  # CLIENT PAUSE or a blocking command: hold it and the rest
            c.pending = cmds[held:]
            c.blocked_since_ms = self.node.cached_ms
        if out:
            data = b"".join(out)
            if data:
                self.write(data)
        if c.close_after_reply:
            self.close()
        if self.core.shutdown_requested is not None:
            self.node.shutdown_soon()

    def connection_lost(self, exc: Exception | None) -> None:
        self._out = []
        if self.client is not None:
            self.core.client_gone(self.client)

    def pause_writing(self) -> None:
        self.pause_reading("backpressure")

    def resume_writing(self) -> None:
        self.resume_reading("backpressure")

    # -- output buffer limits -----------------------------------------------------------

    def _check_output_limits(self) -> None:
        c = self.client
        t = self.transport
        if c is None or t is None:
            return
        limits = self.node.output_limits.get(c.kind)
        if limits is None:
            return
        hard, soft, soft_s = limits
        if not hard and not soft:
            return
        size = t.get_write_buffer_size()
        if hard and size >= hard:
            self._close_for_output(size)
        elif soft and size >= soft:
            if not c.out_soft_since_ms:
                c.out_soft_since_ms = self.node.cached_ms
            elif self.node.cached_ms - c.out_soft_since_ms >= soft_s * 1000:
                self._close_for_output(size)
        else:
            c.out_soft_since_ms = 0

    def _close_for_output(self, size: int) -> None:
        c = self.client
        assert c is not None
        self.node.log.warning(
            f"Client id={c.id} addr={c.addr} scheduled to be closed ASAP for overcoming of "
            f"output buffer limits (omem={size})."
        )
        self.transport.abort()


_DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
    b"password is set for the default user. In this mode connections are only accepted from "
    b"the loopback interface. If you want to connect from external computers to Redis you "
    b"may adopt one of the following solutions: 1) Just disable protected mode sending the "
    b"command 'CONFIG SET protected-mode no' from the loopback interface by connecting to "
    b"Redis from the same host the server is running, however MAKE SURE Redis is not "
    b"publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change "
    b"permanent. 2) Alternatively you can just disable the protected mode by editing the "
    b"Redis configuration file, and setting the protected mode option to 'no', and then "
    b"restarting the server. 3) If you started the server manually just for testing, restart "
    b"it with the '--protected-mode no' option. 4) Set up an authentication password for "
    b"the default user. NOTE: You only need to do one of the above things in order for the "
    b"server to start accepting connections from the outside.\r\n"
)


# Bytes read from one client's socket per pass while a script is busy.
BUSY_READ_BYTES = 64 * 1024


class _BusyTransport:
    """The transport of a connection accepted while a script is busy (the event loop is
    not running): blocking writes with a deadline, until the loop adopts the socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closing = False

    def write(self, data: bytes) -> None:
        if not self.closing:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            try:
                return self.sock.getpeername()
            except OSError:
                return default
        if name == "sockname":
            return self.sock.getsockname()
        if name == "socket":
            return self.sock
        return default

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


# Longest a write to a connection accepted during a busy script may block (s).
BUSY_ACCEPTED_SEND_TIMEOUT_S = 1.0


def _accept_while_busy(node: Any) -> None:
    """New connections while a script is busy: served by the pump (HELLO, AUTH, SCRIPT
    KILL...; -BUSY for the rest), handed to the event loop once it runs again."""
    loop = node.loop
    for srv in node.listeners:
        for lsock in srv.sockets or ():
            fd = lsock.fileno()
            p = select.poll()
            p.register(fd, select.POLLIN)
            if not p.poll(0):
                continue
            sock = _accept_one(fd)
            if sock is None:
                continue
            sock.settimeout(BUSY_ACCEPTED_SEND_TIMEOUT_S)
            conn = ClientConnection(node)
            conn.connection_made(_BusyTransport(sock))
            if conn.client is None:
                sock.close()  # refused (maxclients, protected mode)
                continue
            loop.create_task(_adopt(loop, conn, sock))


def _accept_one(fd: int) -> socket.socket | None:
    """One connection from the listening socket ``fd``, or None (EAGAIN, an error)."""
    listener = socket.socket(fileno=os.dup(fd))
    try:
        listener.setblocking(False)
        sock, _ = listener.accept()
    except OSError:
        return None
    finally:
        listener.close()
    return sock


async def _adopt(loop: Any, conn: ClientConnection, sock: socket.socket) -> None:
    """Give a connection accepted during a busy script to the event loop."""
    if conn.transport is None or conn.transport.is_closing():
        conn.connection_lost(None)
        sock.close()
        return
    sock.setblocking(False)
    await loop.connect_accepted_socket(lambda: conn, sock)


def serve_while_busy(node: Any) -> None:
    """``serve_busy_clients`` and ``_accept_while_busy``: the engine's ``busy_pump``."""
    _accept_while_busy(node)
    serve_busy_clients(node.core)


def serve_busy_clients(core: Server) -> None:
    """Answer clients while a script runs past busy-reply-threshold (the engine's
    ``busy_pump``, called from inside the script's Lua hook on the loop's thread).

    The event loop cannot run (this call is inside one of its callbacks), so the sockets
    are read here directly, as Redis's processEventsWhileBlocked does: whatever a client
    sent goes through its protocol object, where the engine refuses it with -BUSY (or runs
    an allow_busy command: SCRIPT KILL, FUNCTION KILL, SHUTDOWN...), and the replies are
    written at once. Skipped: the script's own client, replicas and the primary's link,
    clients whose reads are paused. New connections are accepted by
    ``_accept_while_busy``."""
    conns: dict[int, ClientConnection] = {}
    poller = select.poll()
    for c in list(core.clients.values()):
        conn = c.conn
        if isinstance(conn, ClientConnection) and conn._out and c.fd >= 0:
            # Replies of this loop pass, queued for its end-of-pass flush: that flush
            # waits for the script, so they leave now.
            conn.flush_now(c.fd)
        if (
            c is core.busy_client
            or c.kind not in ("normal", "pubsub")
            or c.closed
            or c.pending
            or not isinstance(conn, ClientConnection)
            or conn._read_paused_by
            or c.fd < 0
        ):
            continue
        conns[c.fd] = conn
        poller.register(c.fd, select.POLLIN)
    if not conns:
        return
    for fd, _ev in poller.poll(0):
        conn = conns[fd]
        try:
            data = os.read(fd, BUSY_READ_BYTES)
        except OSError:
            continue  # EAGAIN, or a reset the event loop reports later
        if data:
            conn.data_received(data)
            conn.flush_now(fd)


def _format_addr(addr: Any) -> str:
    if not addr:
        return "/unix"
    if isinstance(addr, str):
        return addr
    host, port = addr[0], addr[1]
    return f"{host}:{port}"


def is_loopback(addr: str) -> bool:
    return addr.startswith(_LOOPBACK) or addr.startswith("/") or addr.startswith("::ffff:127.")


def _set_keepalive(sock: socket.socket, interval_s: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(interval_s // 3, 1))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:
        pass
