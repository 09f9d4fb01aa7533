"""Simulated leaderless replicas and the network between them and coordinators.

Owns: ``SimReplica`` -- one replica process running the real server core and the real
``LL.*`` commands, with an ``appendfsync always`` disk: a command's effect is durable
only after the next fsync (``disk_ms`` later), and every reply produced before that
fsync leaves only after it (as the server holds replies behind an fsync). A crash drops
the unsynced effects and the replies not yet sent; a restart rebuilds the dataset by
replaying the synced effects through a fresh core (as an AOF load does). Its wall clock
is the world's plus a fixed skew. A paused replica (SIGSTOP) keeps what arrives in its
inbox and neither runs nor fsyncs until it resumes, then works through the inbox in
order. ``SimNet`` carries requests and replies with seeded delays and drops, slow
messages that overtake (reordering), and cut links (partitions). Never reads a real
clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import hiredis

from ..commands import load_all
from ..engine.client import Client, NullConn
from ..engine.core import Server
from ..server.config import load_config
from .events import EventQueue

ReplyFn = Callable[[Any], None]


class _Clock:
    def __init__(self, q: EventQueue, skew_ms: int) -> None:
        self.q, self.skew_ms = q, skew_ms

    def now_ms(self) -> int:
        return self.q.now + self.skew_ms

    def time_s(self) -> float:
        return self.now_ms() / 1000

    def now_us(self) -> int:
        return self.now_ms() * 1000

    def perf_ns(self) -> int:
        return self.q.now * 1_000_000

    def sleep(self, seconds: float) -> None:
        pass


def parse_reply(data: bytes) -> Any:
    """One RESP reply as a value (errors as hiredis.ReplyError instances)."""
    r = hiredis.Reader()
    r.feed(data)
    return r.gets()


class SimReplica:
    def __init__(self, index: int, q: EventQueue, rng: random.Random, skew_ms: int) -> None:
        self.index, self.q, self.rng = index, q, rng
        self.clock = _Clock(q, skew_ms)
        self.alive = True
        self.crashes = 0
        self.synced: list[list[bytes]] = []  # the durable AOF: effects, in order
        self.pending: list[list[bytes]] = []  # effects written, not yet fsynced
        self.outbox: list[tuple[ReplyFn, bytes]] = []  # replies held behind the fsync
        self.fsync_due = False
        self.paused = False
        self.inbox: list[tuple[list[bytes], ReplyFn, int]] = []  # arrived while paused
        self._boot()

    def _boot(self) -> None:
        load_all()
        config = load_config(None, "appendfsync always\n")
        self.core = Server(config, None, random.Random(self.rng.random()), clock=self.clock)
        self.client: Client = self.core.new_client(NullConn(), "sim:1", "sim:2", 0)
        for argv in self.synced:  # the AOF load of a restart
            self.core.process(self.client, list(argv))
        self.core.add_feed(lambda db, argv: self.pending.append(list(argv)))

    def handle(self, argv: list[bytes], reply: ReplyFn, disk_ms: int) -> None:
        """Run one command; its reply leaves after the next fsync."""
        assert self.alive
        out = self.core.process(self.client, argv)
        assert isinstance(out, bytes)
        self.outbox.append((reply, out))
        if not self.fsync_due:
            self.fsync_due = True
            self.q.schedule(disk_ms, self._fsync, self.crashes)

    def _fsync(self, incarnation: int) -> None:
        if not self.alive or incarnation != self.crashes:
            return
        if self.paused:
            self.q.schedule(5, self._fsync, incarnation)
            return
        self.fsync_due = False
        self.synced += self.pending
        self.pending = []
        out, self.outbox = self.outbox, []
        for reply, data in out:
            reply(parse_reply(data))

    def crash(self) -> None:
        self.alive = False
        self.crashes += 1
        self.pending, self.outbox, self.fsync_due = [], [], False
        self.paused, self.inbox = False, []

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        """Work through what arrived while paused, in arrival order."""
        if not self.paused:
            return
        self.paused = False
        inbox, self.inbox = self.inbox, []
        for argv, reply, disk_ms in inbox:
            if self.alive and not self.paused:
                self.handle(argv, reply, disk_ms)

    def restart(self) -> None:
        assert not self.alive
        self.alive = True
        self._boot()

    def records(self) -> dict[bytes, Any]:
        return dict(self.core.dbs[0].data)


class SimNet:
    """Coordinator <-> replica messages: delays, drops, cut links. A request to a dead
    replica fails at once (connection refused); a lost message is only found by the
    caller's timeout."""

    def __init__(self, q: EventQueue, rng: random.Random, replicas: list[SimReplica]) -> None:
        self.q, self.rng, self.replicas = q, rng, replicas
        self.drop_p = 0.0
        self.delay_ms = (1, 8)
        self.disk_ms = (1, 4)
        self.cut: set[tuple[int, int]] = set()  # (coordinator, replica) links down
        self.slow_p = 0.0  # chance a message is slow (overtaken by later ones)
        self.slow_ms = (20, 80)
        self.sent = 0

    def _delay(self) -> int:
        if self.slow_p and self.rng.random() < self.slow_p:
            return self.rng.randint(*self.slow_ms)
        return self.rng.randint(*self.delay_ms)

    def _lost(self, coord: int, replica: int) -> bool:
        return (coord, replica) in self.cut or self.rng.random() < self.drop_p

    def request(
        self,
        coord: int,
        replica: int,
        argv: list[bytes],
        reply: ReplyFn,
        refused: Callable[[], None],
    ) -> None:
        self.sent += 1
        if self._lost(coord, replica):
            return
        self.q.schedule(self._delay(), self._arrive, coord, replica, argv, reply, refused)

    def _arrive(
        self,
        coord: int,
        replica: int,
        argv: list[bytes],
        reply: ReplyFn,
        refused: Callable[[], None],
    ) -> None:
        r = self.replicas[replica]
        if not r.alive:
            self.q.schedule(self._delay(), refused)
            return

        def back(value: Any) -> None:
            if not self._lost(coord, replica):
                self.q.schedule(self._delay(), reply, value)

        disk_ms = self.rng.randint(*self.disk_ms)
        if r.paused:
            r.inbox.append((argv, back, disk_ms))
            return
        r.handle(argv, back, disk_ms)
