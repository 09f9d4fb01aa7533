"""The engine's ports: what the engine and its command handlers need from the world.

Owns: the typed boundary between the sans-IO engine and what hosts it. The server shell
(``server/``) implements every port with clocks, files, forks and sockets; the simulator
(``sim/``) and in-process tests implement them with fakes. The engine calls nothing else
outside itself, and nothing here may import a shell: a port is a ``typing.Protocol``, so
the shell's classes satisfy it by shape.

Must never: hold state, do I/O, or import asyncio, sockets, threads, files or clocks.

Ports:
- ``Clock``: wall time (expiry, TIME, SLOWLOG, LASTSAVE) and a monotonic counter (command
  durations, the expiry cycle's budget).
- ``Log``: the server log (Redis's levels: notice, warning).
- ``Config``: directive values and CONFIG GET / SET / REWRITE.
- ``Replication``: the replication shell and its engine — the command gate's refusals,
  the replication offset, the replication commands, waiters, ROLE.
- ``Persistence``: SAVE / BGSAVE / BGREWRITEAOF, LASTSAVE, SHUTDOWN's save, DEBUG RELOAD
  and the disk-fault switches.
- ``AclFile``: the ``aclfile`` ACL LOAD reads and ACL SAVE writes.
- ``Info``: INFO's text (process facts the engine cannot read itself) and CONFIG
  RESETSTAT's memory peak.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..replication.refusal import Refusal
    from .client import Client


class ConfigSetError(Exception):
    """A CONFIG SET failure; `str()` is the error reply text, "ERR ..." or "LOADING ...".

    `on_change` callbacks raise it with just a reason; `set_many` adds the argument name.
    """

    def __init__(
        self, reason: str | None = None, argument: str | None = None, *, unknown: bool = False
    ) -> None:
        self.reason = reason
        self.argument = argument
        self.unknown = unknown
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.unknown:
            return f"ERR Unknown option or number of arguments for CONFIG SET - '{self.argument}'"
        if self.argument is None:
            return f"ERR {self.reason}"
        text = f"ERR CONFIG SET failed (possibly related to argument '{self.argument}')"
        return f"{text} - {self.reason}" if self.reason else text

    def __str__(self) -> str:
        return self.message


class ConfigRewriteError(Exception):
    """A CONFIG REWRITE failure; `str()` is the error reply text."""


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time in ms since the epoch (expiry, TIME, client ages)."""
        ...

    def time_s(self) -> float:
        """Wall-clock time in seconds since the epoch (SLOWLOG, start time)."""
        ...

    def now_us(self) -> int:
        """Wall-clock time in microseconds since the epoch (TIME)."""
        ...

    def perf_ns(self) -> int:
        """A monotonic counter in ns, for durations only (commandstats, time budgets)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Stop the whole process for ``seconds`` (DEBUG SLEEP; a simulator advances)."""
        ...


class Log(Protocol):
    def notice(self, msg: str) -> None: ...

    def warning(self, msg: str, exc: bool = False) -> None: ...


class Config(Protocol):
    def get(self, name: str) -> Any:
        """The typed value of a directive (canonical name or alias)."""
        ...

    def get_string(self, name: str) -> str: ...

    def directive(self, name: str) -> Any:
        """The directive for a name or alias, or None when there is none."""
        ...

    def names(self) -> list[str]: ...

    def set_many(
        self, pairs: Sequence[tuple[str, str]], *, is_local: bool = True, loading: bool = False
    ) -> None:
        """CONFIG SET: all pairs apply or none (raises ``ConfigSetError``)."""
        ...

    def rewrite(self, path: str | None = None) -> None:
        """CONFIG REWRITE (raises ``ConfigRewriteError``)."""
        ...


class Replication(Protocol):
    @property
    def master_repl_offset(self) -> int:
        """The replication offset: every byte of the replication stream."""
        ...

    @property
    def write_offset(self) -> int:
        """The offset less the keep-alives (PING, REPLCONF GETACK) that end the stream:
        the highest any client's last write offset can be (ACKDB.SYNCWOFF)."""
        ...

    @property
    def is_primary(self) -> bool:
        """The node's role, as the replication engine holds it (the one place it lives)."""
        ...

    def refusal(self, c: Client, cmd: Any) -> Refusal | None:
        """Why ``cmd`` may not run now (READONLY, MASTERDOWN, NOREPLICAS, TRYAGAIN of a
        fenced primary), or None; the core encodes its text as the error reply."""
        ...

    def client_gone(self, c: Client) -> None: ...

    def propagate(self, db_index: int, argv: list[bytes]) -> None:
        """To the replication stream only (PUBLISH), never the AOF."""
        ...

    def replconf(self, c: Client, argv: list[bytes]) -> bytes: ...

    def psync(self, c: Client, argv: list[bytes]) -> bytes: ...

    def wait(self, c: Client, argv: list[bytes], aof: bool) -> bytes | None:
        """WAIT / WAITAOF: the reply now, or None when ``c`` was parked."""
        ...

    def failover(self, argv: list[bytes]) -> bytes: ...

    def replicaof(self, c: Client, argv: list[bytes]) -> bytes: ...

    def lease(self, argv: list[bytes]) -> bytes:
        """ACKDB.LEASE (docs/fencing.md)."""
        ...

    def freeze(self, argv: list[bytes]) -> bytes:
        """ACKDB.FREEZE (docs/fencing.md)."""
        ...

    def diverged(self, argv: list[bytes]) -> bytes:
        """ACKDB.DIVERGED (docs/fencing.md)."""
        ...

    def role_reply(self) -> bytes: ...

    def unblock_waiter(self, client_id: int, now_ms: int, error: bool) -> bytes | None:
        """CLIENT UNBLOCK of a client parked in WAIT / WAITAOF: its reply, or None when
        it is not parked there."""
        ...

    def lagging_replicas(self) -> list[str]: ...


class OffsetCounter(Protocol):
    """The replication offset alone, counted while nobody needs the effects' bytes (no
    replica, backlog or AOF): each write adds one (see the core's ``_propagate_call``)."""

    master_repl_offset: int


class DiskFaults(Protocol):
    def set(self, kind: str, name: str) -> None:
        """DEBUG DISK-FAULT kind errno|off (raises ValueError on a bad name)."""
        ...


class Persistence(Protocol):
    @property
    def lastsave_s(self) -> int: ...

    @property
    def faults(self) -> DiskFaults: ...

    def save_allowed(self) -> bool:
        """SAVE: not while a BGSAVE runs."""
        ...

    def bgsave_request(self, schedule: bool) -> str:
        """BGSAVE [SCHEDULE], decided by the persistence policy: "start", "scheduled",
        "in-progress" (a BGSAVE runs) or "busy" (another child runs, no SCHEDULE)."""
        ...

    def rewrite_request(self) -> str:
        """BGREWRITEAOF, decided by the persistence policy: "start", "scheduled" (a
        BGSAVE runs) or "in-progress"."""
        ...

    def save(self) -> bool: ...

    def start_bgsave(self) -> str | None:
        """Fork the snapshot child; an error text, or None when it started."""
        ...

    def start_rewrite(self) -> str | None:
        """Start an AOF rewrite; an error text, or None when it started."""
        ...

    def prepare_shutdown(self, mode: str) -> bool:
        """SHUTDOWN's final save and AOF flush; False when it failed."""
        ...

    def debug_reload(self, save: bool, flush: bool) -> bool: ...


class Loading(Protocol):
    """A dataset being loaded (the AOF or a snapshot at start, a replica's full sync)."""

    def info_fields(self) -> list[tuple[str, Any]]:
        """INFO persistence's loading_* fields."""
        ...


class Info(Protocol):
    def text(self, args: Iterable[bytes]) -> str:
        """The whole INFO reply text for the arguments after ``INFO``."""
        ...

    def reset_memory_peak(self) -> None: ...


class AclFile(Protocol):
    """The configured ``aclfile`` (ACL LOAD / ACL SAVE); OSError when the disk fails."""

    path: str

    def read(self) -> str: ...
    def write(self, data: bytes) -> None:
        """Replace the file's content (atomically: a crash leaves the old or the new)."""
