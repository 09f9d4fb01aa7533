"""The actions and results of the coordinator's request state machines.

Owns: what a request asks its shell to do (``SendApply``, ``SendRead``, ``SendRange``,
``StoreHint``) and what it answers (``Done`` with a ``Receipt``, or an error: a missed
level, ``LevelError``, or a delete/update conflict, ``ConflictError``). Data only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..keyspace.lww import Record, Version
from .levels import Level


@dataclass(frozen=True, slots=True)
class SendApply:
    replica: int
    key: bytes
    record: Record
    repair: bool = False


@dataclass(frozen=True, slots=True)
class SendRead:
    replica: int
    key: bytes
    full: bool  # False: the digest only


@dataclass(frozen=True, slots=True)
class SendRange:
    replica: int
    depth: int
    lo: int  # first leaf
    hi: int  # leaf after the last


@dataclass(frozen=True, slots=True)
class StoreHint:
    replica: int
    key: bytes
    record: Record


@dataclass(frozen=True, slots=True)
class Receipt:
    answered: tuple[int, ...]  # replicas that acknowledged (write) or answered (read)
    version: Version  # written, or newest read (ZERO: nothing there)
    repaired: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class LevelError:
    """A request that missed its level; ``applied`` replicas did apply a write."""

    op: str
    level: Level
    needed: int
    reached: int
    n: int

    def text(self) -> str:
        tail = (
            "; the write stands on the replicas that applied it and will spread"
            " (it is not rolled back)"
            if self.op == "write"
            else ""
        )
        return (
            f"LEVEL {self.op} at {self.level.value} reached {self.reached} of {self.n}"
            f" replicas, {self.needed} required{tail}"
        )


@dataclass(frozen=True, slots=True)
class ConflictError:
    """NoAutomatedResolution: replicas disagree on whether the key was deleted."""

    key: bytes

    def text(self) -> str:
        return (
            "CONFLICT the key is deleted on some replicas and written on others"
            " (deletion strategy NoAutomatedResolution); write or delete it to settle it"
        )


@dataclass(frozen=True, slots=True)
class TokenError:
    """A read with a session token found no replica holding the token's write."""

    def text(self) -> str:
        return (
            "TRYAGAIN the write of the session token is not visible on its replicas yet"
            " (retry, or read at a higher level)"
        )


@dataclass(frozen=True, slots=True)
class Done:
    receipt: Receipt
    record: Record | None = None  # reads: the merged record (None: nothing anywhere)
    error: LevelError | ConflictError | TokenError | None = None


Action = SendApply | SendRead | SendRange | StoreHint | Done
