"""FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]: a coordinated hand-over of the
primary role to a replica without losing acknowledged writes.

Owns: argument parsing with Redis's error texts, the failover state and its transitions.
Never touches sockets or clocks, never changes roles itself: it returns ``Demote`` (become
a replica of the target, sending ``PSYNC <replid> <offset> FAILOVER``) or
``RestorePrimary`` (abort after demoting) for the engine, and ``PauseWrites`` /
``UnpauseWrites`` for the shell.

States (INFO ``master_failover_state``; Redis failoverCommand / updateFailoverStatus):
  no-failover           nothing to do.
  waiting-for-sync      writes paused; waiting for the target (or any replica) to ACK
                        exactly our offset. On the deadline: FORCE -> in progress anyway,
                        else abort.
  failover-in-progress  demoted, connecting to the target with PSYNC ... FAILOVER; a
                        +CONTINUE / +FULLRESYNC reply completes it, an error reply aborts
                        (we become primary again). Link failures before the reply are
                        retried by the replica link (the target may already have promoted
                        itself, and serves the retry as a regular PSYNC).
"""

from __future__ import annotations

from dataclasses import dataclass

from .actions import Log, PauseWrites, UnpauseWrites
from .primary import ONLINE, ReplicaTable
from .util import error_reply, parse_ll

NO_FAILOVER = "no-failover"
WAITING_FOR_SYNC = "waiting-for-sync"
IN_PROGRESS = "failover-in-progress"

ERR_SYNTAX = "ERR syntax error"
ERR_NOT_INTEGER = "ERR value is not an integer or out of range"
ERR_TIMEOUT = "ERR FAILOVER timeout must be greater than 0"
ERR_ALREADY = "ERR FAILOVER already in progress."
ERR_REPLICA = "ERR FAILOVER is not valid when server is a replica."
ERR_NO_REPLICAS = "ERR FAILOVER requires connected replicas."
ERR_FORCE = "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
ERR_NOT_A_REPLICA = "ERR FAILOVER target HOST and PORT is not a replica."
ERR_NOT_ONLINE = "ERR FAILOVER target replica is not online."
ERR_NONE = "ERR No failover in progress."
ERR_REPLICAOF = "ERR REPLICAOF not allowed while failing over."
OK = b"+OK\r\n"


@dataclass(frozen=True, slots=True)
class Demote:
    """Become a replica of host:port, sending PSYNC ... FAILOVER (engine-internal)."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class RestorePrimary:
    """Abort after demoting: become a primary again (engine-internal)."""


FailoverAction = Demote | RestorePrimary | PauseWrites | UnpauseWrites | Log


@dataclass(frozen=True, slots=True)
class _Request:
    host: str | None
    port: int
    timeout_ms: int
    force: bool


class Failover:
    """The FAILOVER state machine of one node."""

    def __init__(self) -> None:
        self.state = NO_FAILOVER
        self.target_host: str | None = None
        self.target_port = 0
        self.end_ms = 0  # 0: no deadline
        self.force = False

    @property
    def active(self) -> bool:
        return self.state != NO_FAILOVER

    def command(
        self, argv: list[bytes], now_ms: int, *, is_replica: bool, table: ReplicaTable
    ) -> tuple[bytes, list[FailoverAction]]:
        """The FAILOVER command: its reply and what to do."""
        if len(argv) == 2 and argv[1].lower() == b"abort":
            if not self.active:
                return error_reply(ERR_NONE), []
            return OK, self.abort("Failover manually aborted")
        req = _parse(argv)
        if isinstance(req, str):
            return error_reply(req), []
        refusal = self._refusal(req, is_replica, table)
        if refusal is not None:
            return error_reply(refusal), []
        self.target_host, self.target_port = req.host, req.port
        self.end_ms = now_ms + req.timeout_ms if req.timeout_ms else 0
        self.force = req.force
        self.state = WAITING_FOR_SYNC
        to = f"{req.host}:{req.port}" if req.host is not None else "any replica"
        return OK, [Log("notice", f"FAILOVER requested to {to}."), PauseWrites()]

    def _refusal(self, req: _Request, is_replica: bool, table: ReplicaTable) -> str | None:
        if self.active:
            return ERR_ALREADY
        if is_replica:
            return ERR_REPLICA
        if not table.replicas:
            return ERR_NO_REPLICAS
        if req.force and (not req.timeout_ms or req.host is None):
            return ERR_FORCE
        if req.host is not None:
            r = table.find(req.host, req.port)
            if r is None:
                return ERR_NOT_A_REPLICA
            if r.state != ONLINE:
                return ERR_NOT_ONLINE
        return None

    def update(self, now_ms: int, offset: int, table: ReplicaTable) -> list[FailoverAction]:
        """Each loop iteration while waiting: start the hand-over once a replica caught up."""
        if self.state != WAITING_FOR_SYNC:
            return []
        if self.end_ms and self.end_ms <= now_ms:
            if self.force:
                assert self.target_host is not None
                self.state = IN_PROGRESS
                msg = f"FAILOVER to {self.target_host}:{self.target_port} time out exceeded, failing over."
                return [Log("notice", msg), Demote(self.target_host, self.target_port)]
            return self.abort("Replica never caught up before timeout")
        if self.target_host is not None:
            r = table.find(self.target_host, self.target_port)
            caught_up = r is not None and r.state == ONLINE and r.ack_offset == offset
        else:
            r = next((x for x in table.online() if x.ack_offset == offset), None)
            caught_up = r is not None
            if r is not None:
                self.target_host, self.target_port = r.ip, r.listening_port
        if not caught_up:
            return []
        assert self.target_host is not None
        self.state = IN_PROGRESS
        msg = f"Failover target {self.target_host}:{self.target_port} is synced, failing over."
        return [Log("notice", msg), Demote(self.target_host, self.target_port)]

    def on_psync_reply(self, accepted: bool) -> list[FailoverAction]:
        """The target answered our PSYNC ... FAILOVER."""
        if self.state != IN_PROGRESS:
            return []
        if accepted:
            return self._clear()
        return self.abort("Failover target rejected psync request")

    def abort(self, reason: str) -> list[FailoverAction]:
        if not self.active:
            return []
        to = f"{self.target_host}:{self.target_port}" if self.target_host else "any replica"
        actions: list[FailoverAction] = [Log("notice", f"FAILOVER to {to} aborted: {reason}")]
        if self.state == IN_PROGRESS:
            actions.append(RestorePrimary())
        return actions + self._clear()

    def _clear(self) -> list[FailoverAction]:
        self.state = NO_FAILOVER
        self.target_host, self.target_port, self.end_ms, self.force = None, 0, 0, False
        return [UnpauseWrites()]

    def replicaof_refusal(self) -> bytes | None:
        return error_reply(ERR_REPLICAOF) if self.active else None


def _parse(argv: list[bytes]) -> _Request | str:
    """Redis failoverCommand's loop: each option at most once, else a syntax error."""
    host: str | None = None
    port = timeout_ms = 0
    force = False
    j, n = 1, len(argv)
    while j < n:
        opt = argv[j].lower()
        if opt == b"timeout" and j + 1 < n and timeout_ms == 0:
            t = parse_ll(argv[j + 1])
            if t is None:
                return ERR_NOT_INTEGER
            if t <= 0:
                return ERR_TIMEOUT
            timeout_ms, j = t, j + 2
        elif opt == b"to" and j + 2 < n and host is None:
            p = parse_ll(argv[j + 2])
            if p is None:
                return ERR_NOT_INTEGER
            host, port, j = argv[j + 1].decode("latin-1"), p, j + 3
        elif opt == b"force" and not force:
            force, j = True, j + 1
        else:
            return ERR_SYNTAX
    return _Request(host, port, timeout_ms, force)
