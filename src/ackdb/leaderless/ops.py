"""What a user command asks of the coordinator's shell, and what it gets back.

Owns: the operations a command's plan yields (``Read``, ``Write``, ``ScanPage``), the
outcome each gets (``Outcome``: the core's ``Done``, and a scan's merged items), the
per-command context (``Ctx``: levels, protocol, time, schema), and the plan's type.

A command is a **plan**: a generator (``Plan``) that yields a list of operations, is
sent back their outcomes in the same order (the shell runs one list concurrently, each
operation as one core request -- ``WriteRequest``, ``ReadRequest``, ``ScanRequest``
-- on the key's replica set), and finally returns the reply bytes. So the decisions
("read first, then write only if NX holds") stay here, sans-IO, and the shell only
carries them out. Data only; never does IO.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from ..cluster.schema import Collection
from ..keyspace.lww import Record, Version
from ..resp.encoder import Resp2
from .actions import Done
from .levels import Level


@dataclass(frozen=True, slots=True)
class Read:
    key: bytes
    level: Level


@dataclass(frozen=True, slots=True)
class Write:
    """A write of ``key``: ``make(version)`` is its record at the version the shell
    stamps (after the plan's reads were observed, so it sorts above them)."""

    key: bytes
    make: Callable[[Version], Record]
    level: Level


@dataclass(frozen=True, slots=True)
class ScanPage:
    """Leaves [lo, hi) of one partition's keys at ``level`` (``LL.RANGE``)."""

    partition: int
    lo: int
    hi: int
    level: Level


Op = Read | Write | ScanPage


@dataclass(frozen=True, slots=True)
class Outcome:
    done: Done
    items: dict[bytes, Record] = field(default_factory=dict)  # a scan's merged records

    @property
    def record(self) -> Record | None:
        return self.done.record


Plan = Generator[list[Op], list[Outcome], bytes]


@dataclass(frozen=True, slots=True)
class Ctx:
    p: Resp2  # the connection's protocol (RESP2 or RESP3 shapes)
    read: Level
    write: Level
    now_ms: int
    collections: tuple[Collection, ...] = ()
    partitions: int = 1
