"""A deterministic world for simulating primary/replica replication: time and links.

Owns: virtual time (an event heap), links that deliver bytes in order after random delays
and in random pieces (a broken link drops what is in flight and both ends learn it, like
TCP), the nodes by name, and the bookkeeping the safety checks read (who ever held / ever
durably held each write, writes lost by failures the protocol allows). Never touches
sockets, clocks or global randomness: one ``random.Random`` drives everything, so a seed
replays exactly. The nodes -- real server cores behind simulated ports -- are
``sim/replication.py``; the fault schedule and the checks live in
tests/sim/test_replication_sim.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..replication.wire import LinkReader
from .events import EventQueue

if TYPE_CHECKING:
    from .replication import Client, Node

Event = Callable[[], None]


@dataclass
class Conn:
    """A TCP connection from ``client`` (a replica's link) to ``server`` (its primary)."""

    cid: int
    client: Node  # the replica side
    server: Node  # the side that accepted
    epoch: int = 0  # the client node's crash count when the link was made
    alive: bool = True
    server_client: int = 0  # the id of the server core's client for it
    last_t: list[int] = field(default_factory=lambda: [0, 0])
    reader: LinkReader = field(default_factory=LinkReader)  # server side's command parser


class World:
    """Nodes, links and virtual time for one seed."""

    def __init__(
        self,
        seed: int,
        *,
        queue: EventQueue | None = None,
        step: Callable[[], None] | None = None,
    ) -> None:
        """``queue`` / ``step``: another world's event queue and its way to run one event
        (a Raft world's ``step_event``), so both kinds of process share one clock."""
        self.rng = random.Random(seed)
        self.queue = queue if queue is not None else EventQueue()
        self._step = step if step is not None else self._run_one
        self.nodes: dict[str, Node] = {}
        self.conns: dict[int, Conn] = {}
        self._next_id = 1
        self.next_write = 1
        self.ever_had: dict[int, set[str]] = {}
        self.ever_durable: dict[int, set[str]] = {}
        self.lost: set[int] = set()
        self.violations: list[str] = []
        # The writes a snapshot payload holds (observed when it was taken).
        self.snapshot_history: dict[bytes, list[int]] = {}
        self.on_reply: Callable[[Client, Node, bytes], None] = lambda c, n, r: None
        self.on_promoted: Callable[[Node], None] = lambda n: None
        # A world with its own network rules (partitions between hosts) refuses links.
        self.refuse: Callable[[Node, Node], bool] = lambda client, server: False
        self.latency_ms = (1, 15)

    # -- time -------------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.queue.now

    def at(self, t: int, fn: Event) -> None:
        self.queue.schedule(max(t - self.queue.now, 0), fn)

    def after(self, delay_ms: int, fn: Event) -> None:
        self.queue.schedule(delay_ms, fn)

    def _run_one(self) -> None:
        fn, args = self.queue.pop()
        fn(*args)

    def run_until(self, t_end: int, stop: Callable[[], bool] | None = None) -> bool:
        """Run events up to ``t_end`` (ms), or until ``stop()`` holds (True then)."""
        reached = [False]

        def mark() -> None:
            reached[0] = True

        self.at(t_end, mark)
        while not reached[0] and len(self.queue):
            self._step()
            if stop is not None and stop():
                return True
        return False

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- topology ---------------------------------------------------------------------

    def add_node(self, name: str, port: int, aof: str, replica_of: Node | None = None) -> Node:
        from .replication import Node

        node = Node(self, name, port, aof)
        self.nodes[name] = node
        node.boot(replica_of)
        return node

    def primaries(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.alive and n.engine.is_primary]

    def find(self, host: str, port: int) -> Node | None:
        n = self.nodes.get(host)
        return n if n is not None and n.port == port else None

    # -- links ------------------------------------------------------------------------

    def connect(self, node: Node, host: str, port: int, token: int) -> None:
        """``node`` connects to host:port; it learns the outcome after a latency."""

        def done() -> None:
            if not node.alive or node.connect_token != token:
                return
            target = self.find(host, port)
            if (
                target is None
                or not target.alive
                or target.isolated
                or node.isolated
                or self.refuse(node, target)
            ):
                node.link_failed("Connection refused")
                return
            conn = Conn(self.new_id(), node, target, epoch=node.crashes)
            self.conns[conn.cid] = conn
            target.accept(conn)
            node.link_established(conn)

        self.after(self.rng.randint(*self.latency_ms), done)

    def send(self, conn: Conn, to_server: bool, data: bytes) -> None:
        """Deliver in order, in 1-3 pieces, each after a latency."""
        if not conn.alive or not data:
            return
        d = 0 if to_server else 1
        t = max(self.now + self.rng.randint(*self.latency_ms), conn.last_t[d])
        cuts = sorted(
            self.rng.sample(range(1, len(data)), min(len(data) - 1, self.rng.randint(0, 2)))
        )
        pieces = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        for piece in pieces:
            t += self.rng.randint(0, 3)
            self.at(t, self._delivery(conn, to_server, piece))
        conn.last_t[d] = t

    def _delivery(self, conn: Conn, to_server: bool, data: bytes) -> Event:
        return lambda: self._deliver(conn, to_server, data)

    def _deliver(self, conn: Conn, to_server: bool, data: bytes) -> None:
        if not conn.alive:
            return
        if to_server:
            conn.server.on_server_bytes(conn, data)
        else:
            conn.client.on_link_bytes(conn, data)

    def break_conn(self, conn: Conn, by: Node | None = None) -> None:
        """The link dies (RST): in-flight bytes are lost; each end not ``by`` learns it."""
        if not conn.alive:
            return
        conn.alive = False
        self.conns.pop(conn.cid, None)
        if conn.server is by:
            conn.server.server_conns.pop(conn.server_client, None)
        else:
            self.after(self.rng.randint(*self.latency_ms), lambda: conn.server.on_conn_lost(conn))
        if conn.client is by:
            if conn.client.link_conn is conn:
                conn.client.link_conn = None
        else:
            self.after(self.rng.randint(*self.latency_ms), lambda: conn.client.on_link_lost(conn))

    # -- writes -----------------------------------------------------------------------

    def mark_had(self, node: Node, ids: list[int]) -> None:
        for w in ids:
            self.ever_had.setdefault(w, set()).add(node.name)

    def mark_durable(self, node: Node, ids: list[int]) -> None:
        for w in ids:
            self.ever_durable.setdefault(w, set()).add(node.name)
