"""A shard process of the failover simulator: the real server core and replication engine
(sim/replication.py ``Node``, with ``ackdb-lease yes``: the engine's own lease, freeze and
divergence of issue 15) on its host's clock, with pauses.

Owns, per node: the host's monotonic clock the engine reads for its lease (the agent on
the same host writes the deadlines in it) and the pause: across a SIGSTOP every input of
the process -- link bytes, accepted connections, its timer, wake-ups, commands -- waits
until it resumes, in the order it came; its clock goes on meanwhile. Never does IO and
reads no real clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .replication import Node

if TYPE_CHECKING:
    from .repl_process import SimProcess
    from .repl_world import Conn, World


class ShardNode(Node):
    def __init__(
        self, world: World, name: str, port: int, aof: str, clock: Callable[[], int]
    ) -> None:
        super().__init__(world, name, port, aof)
        self.clock = clock  # this host's monotonic clock (ms)
        self.paused_until = 0
        self._inbox: list[Callable[[], None]] = []  # inputs held by a pause, in order
        self._draining = False

    @property
    def stopped(self) -> bool:
        """Paused (SIGSTOP): takes no input until ``paused_until``."""
        return self.w.now < self.paused_until

    def mono_ms(self) -> int:
        return self.clock()

    def boot(self, replica_of: Node | None) -> None:
        self.paused_until = 0
        super().boot(replica_of)

    def crash(self) -> None:
        self._inbox.clear()  # what a dead process had not read is gone with it
        self.paused_until = 0
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

    def on_server_bytes(self, conn: Conn, data: bytes) -> None:
        if not self._held(lambda: self.on_server_bytes(conn, data)):
            super().on_server_bytes(conn, data)

    def on_conn_lost(self, conn: Conn) -> None:
        if not self._held(lambda: self.on_conn_lost(conn)):
            super().on_conn_lost(conn)
