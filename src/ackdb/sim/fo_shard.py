"""A shard process of the failover simulator: the real server core and replication engine
(sim/replication.py ``Node``) with the lease, freeze and divergence semantics of issue
15's contract, and pauses.

Owns, per process incarnation: the lease (``ackdb-lease yes``: the epoch last seen and
the deadline on this host's monotonic clock), whether it is frozen (a frozen replica's
links are refused: it accepts nothing from its old primary), and the writes it saved as
divergent (``ACKDB.DIVERGED``: the commands of its backlog past the fork, or its whole
dataset when the backlog does not cover them). Across a pause (SIGSTOP) every input of
the process -- link bytes, accepted connections, its timer, wake-ups, commands -- waits
until it resumes; its clock goes on meanwhile.

The lease and freeze are modelled here, as the contract states them, until the engine
grows them (branch ``foserver``). Never does IO and reads no real clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..replication.wire import LinkReader
from .replication import Node

if TYPE_CHECKING:
    from .repl_process import SimProcess
    from .repl_world import Conn, World

TRYAGAIN_FENCED = b"-TRYAGAIN this shard is fenced: no valid lease (a failover may be in progress)\r\n"


@dataclass(frozen=True, slots=True)
class Frozen:
    """ACKDB.FREEZE's answer: where this instance's history stands."""

    replid: str
    offset: int
    replid2: str
    second_offset: int


@dataclass(frozen=True, slots=True)
class Diverged:
    """ACKDB.DIVERGED's answer, and the write ids the saved file holds."""

    count: int  # commands saved; -1: the whole dataset was saved
    first_offset: int
    last_offset: int
    ids: frozenset[int]


class ShardNode(Node):
    def __init__(
        self, world: World, name: str, port: int, aof: str, clock: Callable[[], int]
    ) -> None:
        super().__init__(world, name, port, aof)
        self.clock = clock  # this host's monotonic clock (ms)
        self.paused_until = 0
        self.epoch = 0
        self.deadline: int | None = None
        self.frozen = False
        self.following = ""  # the config file's replicaof (who it was last told to follow)
        self.saved: list[tuple[str, Diverged]] = []  # (tag, what was saved)
        self._inbox: list[Callable[[], None]] = []  # inputs held by a pause, in order
        self._draining = False

    # -- lease, freeze, divergence (the contract's shard server commands) --

    @property
    def stopped(self) -> bool:
        """Paused (SIGSTOP): takes no input until ``paused_until``."""
        return self.w.now < self.paused_until

    def boot(self, replica_of: Node | None) -> None:
        self.epoch, self.deadline, self.frozen, self.paused_until = 0, None, False, 0
        self.following = replica_of.name if replica_of is not None else ""
        super().boot(replica_of)

    def crash(self) -> None:
        self._inbox.clear()  # what a dead process had not read is gone with it
        self.paused_until = 0
        super().crash()

    def lease_valid(self) -> bool:
        return self.deadline is not None and self.clock() < self.deadline

    def acknowledges_writes(self) -> bool:
        """Would a write sent now be acknowledged (not counting a pause)?"""
        return self.alive and self.engine.is_primary and self.lease_valid()

    def lease(self, epoch: int, deadline: int) -> bytes:
        if epoch < self.epoch:
            return b"-ERR stale epoch %d (current %d)\r\n" % (epoch, self.epoch)
        self.epoch = epoch
        self.deadline = deadline if deadline > 0 else None
        return b"+OK\r\n"

    def freeze(self, epoch: int) -> Frozen | bytes:
        if epoch < self.epoch:
            return b"-ERR stale epoch %d (current %d)\r\n" % (epoch, self.epoch)
        self.epoch, self.deadline = epoch, None
        if not self.engine.is_primary:
            self.frozen = True
            self.proc.drop_link()
            self.end_pass()
        st = self.engine.state
        return Frozen(st.replid, st.master_repl_offset, st.replid2, st.second_repl_offset)

    def replicaof(self, primary: ShardNode | None) -> bytes:
        """REPLICAOF host port / NO ONE; either undoes a freeze."""
        self.frozen = False
        if primary is None:
            self.following = ""
            return self.admin([b"REPLICAOF", b"NO", b"ONE"])
        self.following = primary.name
        return self.admin([b"REPLICAOF", primary.name.encode(), b"%d" % primary.port])

    def diverged(self, replid: str, offset: int, tag: str) -> Diverged:
        """The writes of this history past ``offset`` (the fork), saved before a resync
        could drop them."""
        st = self.engine.state
        if st.replid == replid:
            end = st.master_repl_offset
        elif st.replid2 == replid and offset < st.second_repl_offset:
            end = st.second_repl_offset - 1
        else:
            end = offset
        if end <= offset:
            return Diverged(0, 0, 0, frozenset())
        b = st.backlog
        if b is None or not b.contains(offset + 1) or b.end_offset < end + 1:
            out = Diverged(-1, offset + 1, end, frozenset(self.history_set))
        else:
            reader = LinkReader()
            reader.feed(b.read_from(offset + 1)[: end - offset])
            ids: set[int] = set()
            count = 0
            while (argv := reader.next_command()) is not None:
                reader.take_until(reader.command_end)
                count += 1
                if len(argv) == 3 and argv[0].upper() == b"SET" and argv[2][:1] == b"v":
                    ids.add(int(argv[2][1:]))
            out = Diverged(count, offset + 1, end, frozenset(ids))
        self.saved.append((tag, out))
        return out

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
