"""A shard process of the failover simulator: the real server core and replication engine
(sim/replication.py ``Node``, with ``ackdb-lease yes``: the engine's own lease, freeze and
divergence of issue 15) on its host's clock, with pauses.

Owns, per node: the host's monotonic clock the engine reads for its lease (the agent on
the same host writes the deadlines in it) and the pause: across a SIGSTOP every input of
the process -- link bytes, accepted connections, its timer, wake-ups, commands -- waits
until it resumes, in the order it came; its clock goes on meanwhile. Also the endpoints'
connections to the process (sim/fo_endpoint.py), served as server/network.py serves a
client's socket: requests parsed from the link's bytes and run in batches, the replies
written back as RESP bytes, a batch held by a blocking command or CLIENT PAUSE (its rest
waits, ``resume_commands`` runs it); each ``SET k v<id>`` it answers ``+OK`` is reported
to ``on_ack`` (the checks' observation, never read by the product). Never does IO and
reads no real clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine.client import NullConn
from .replication import Node

if TYPE_CHECKING:
    from .repl_process import SimProcess
    from .repl_world import Conn, World

_OK = b"+OK\r\n"


class Socket(NullConn):
    """The shard's side of one endpoint connection, as server/network.py runs a client's
    socket (its ``_run`` and ``resume_commands``)."""

    def __init__(self, node: ShardNode, conn: Conn) -> None:
        self.node = node
        self.conn = conn
        self.client: Any = None  # the core's client

    def write(self, data: bytes) -> None:
        if data:
            self.node.w.send(self.conn, False, data)

    def close(self) -> None:
        """The server closes it (after QUIT, say): the endpoint learns as from a RST."""
        node, conn = self.node, self.conn
        node.w.break_conn(conn, by=node)
        node.sockets.pop(conn.server_client, None)
        proc = node.proc

        def gone() -> None:
            c = proc.core.clients.get(conn.server_client)
            if c is not None and proc.live:
                proc.core.client_gone(c)
                node.end_pass()

        node.w.after(0, gone)

    def feed(self, data: bytes) -> None:
        reader = self.conn.reader
        reader.feed(data)
        cmds = []
        while (argv := reader.next_command()) is not None:
            reader.take_until(reader.command_end)
            cmds.append(argv)
        if self.client.pending:
            self.client.pending.extend(cmds)
        elif cmds:
            self.run(cmds)

    def run(self, cmds: list[list[bytes]]) -> None:
        c = self.client
        out: list[bytes] = []
        held = self.node.proc.core.process_batch(c, cmds, out)
        if held is not None:  # a blocking command or CLIENT PAUSE: it and the rest wait
            c.pending = cmds[held:]
            c.blocked_since_ms = self.node.w.now
        for argv, reply in zip(cmds, out, strict=False):  # one reply per command (RESP2)
            if reply == _OK and len(argv) == 3 and argv[0] == b"SET" and argv[2][:1] == b"v":
                self.node.on_ack(self.node, int(argv[2][1:]))
        if out:
            self.write(b"".join(out))
        if c.close_after_reply:
            self.close()

    def resume_commands(self, skip_first_with: bytes | None = None) -> None:
        c = self.client
        if c is None or c.closed or not self.conn.alive:
            return
        held, c.pending = c.pending, []
        c.blocked_since_ms = 0
        if skip_first_with is not None and held:
            self.write(skip_first_with)
            held = held[1:]
        if held:
            self.run(held)


class ShardNode(Node):
    def __init__(
        self, world: World, name: str, port: int, aof: str, clock: Callable[[], int]
    ) -> None:
        super().__init__(world, name, port, aof)
        self.clock = clock  # this host's monotonic clock (ms)
        self.paused_until = 0
        self._inbox: list[Callable[[], None]] = []  # inputs held by a pause, in order
        self._draining = False
        self.sockets: dict[int, Socket] = {}  # the endpoints' connections, by core client id
        self.on_ack: Callable[[ShardNode, int], None] = lambda shard, wid: None

    @property
    def stopped(self) -> bool:
        """Paused (SIGSTOP): takes no input until ``paused_until``."""
        return self.w.now < self.paused_until

    def mono_ms(self) -> int:
        return self.clock()

    def boot(self, replica_of: Node | None) -> None:
        self.paused_until = 0
        self.sockets = {}
        super().boot(replica_of)

    def crash(self) -> None:
        self._inbox.clear()  # what a dead process had not read is gone with it
        self.paused_until = 0
        # Connections whose accept a pause held die too (the kernel had accepted them).
        for conn in [c for c in self.w.conns.values() if c.server is self]:
            self.w.break_conn(conn, by=self)
        self.sockets = {}
        super().crash()

    @property
    def epoch(self) -> int:
        return int(self.engine.fencing.epoch) if self.alive else 0

    def acknowledges_writes(self) -> bool:
        """Would the engine take a write now (a primary, not fenced; a pause aside)?"""
        if not self.alive:
            return False
        e = self.engine
        return (
            e.is_primary
            and e.refusal(writes=True, stale_ok=False, now_ms=0, mono_ms=self.clock()) is None
        )

    # -- a pause holds every input until the process resumes --

    def _held(self, fn: Callable[[], None]) -> bool:
        """Hold ``fn`` while the process is stopped -- and while inputs held before it
        wait, so the process takes its inputs in the order they came."""
        if self._draining or (not self.stopped and not self._inbox):
            return False
        if not self._inbox:
            self.w.at(self.paused_until, self._drain)
        self._inbox.append(fn)
        return True

    def _drain(self) -> None:
        if self.stopped:  # paused again meanwhile
            self.w.at(self.paused_until, self._drain)
            return
        inbox, self._inbox = self._inbox, []
        self._draining = True
        try:
            for fn in inbox:
                fn()
        finally:
            self._draining = False

    def run_or_hold(self, fn: Callable[[], None]) -> None:
        """An input from outside the links (a command on a connection): now or, when the
        process is stopped, once it resumes."""
        if not self._held(fn):
            fn()

    def _tick(self, proc: SimProcess) -> None:
        if not self._held(lambda: self._tick(proc)):
            super()._tick(proc)

    def end_pass(self) -> None:
        if not self._held(self.end_pass):
            super().end_pass()

    def link_established(self, conn: Conn) -> None:
        if not self._held(lambda: self.link_established(conn)):
            super().link_established(conn)

    def link_failed(self, why: str) -> None:
        if not self._held(lambda: self.link_failed(why)):
            super().link_failed(why)

    def on_link_bytes(self, conn: Conn, data: bytes) -> None:
        if not self._held(lambda: self.on_link_bytes(conn, data)):
            super().on_link_bytes(conn, data)

    def on_link_lost(self, conn: Conn) -> None:
        if not self._held(lambda: self.on_link_lost(conn)):
            super().on_link_lost(conn)

    def accept(self, conn: Conn) -> None:
        if not self._held(lambda: self.accept(conn)):
            super().accept(conn)

    def accept_endpoint(self, conn: Conn) -> None:
        """An endpoint's connection (sim/fo_endpoint.py): a client of the core."""
        if self._held(lambda: self.accept_endpoint(conn)) or not self.alive or not conn.alive:
            return
        sock = Socket(self, conn)
        sock.client = self.proc.core.new_client(sock, f"{conn.client.name}:ep", "", -1)
        conn.server_client = sock.client.id
        self.server_conns[sock.client.id] = conn
        self.sockets[sock.client.id] = sock

    def on_server_bytes(self, conn: Conn, data: bytes) -> None:
        if self._held(lambda: self.on_server_bytes(conn, data)):
            return
        sock = self.sockets.get(conn.server_client)
        if sock is None or sock.conn is not conn:
            super().on_server_bytes(conn, data)
        elif self.alive and conn.alive:
            sock.feed(data)
            self.end_pass()

    def on_conn_lost(self, conn: Conn) -> None:
        if not self._held(lambda: self.on_conn_lost(conn)):
            sock = self.sockets.get(conn.server_client)
            if sock is not None and sock.conn is conn:
                del self.sockets[conn.server_client]
            super().on_conn_lost(conn)
