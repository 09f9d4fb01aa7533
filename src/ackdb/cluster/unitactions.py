"""The shard supervisor's vocabulary: its actions, its units and their phases, its
timing, as cluster/supervise.py's ``Supervisor`` uses them (supervise.py re-exports every
name, so the shell imports them from there).

Owns: the typed, frozen action records the shell (node/shards.py) carries out and the
limits with their units. Pure data: never does IO.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ackdb.cluster.databases import Fork
from ackdb.cluster.shardspec import Observed, ShardSpec, Spec

# Restart back-off of a crashed process (ms): first delay, cap, and how long a process
# must stay up for the next crash to start again from the first delay.
BACKOFF_FIRST_MS = 100
BACKOFF_MAX_MS = 5000
STABLE_MS = 10_000
# Probes: one per unit every probe_interval_ms; a started process that never answers
# within start_timeout_ms, or a running one silent for hang_ms, is killed (and restarted).
PROBE_INTERVAL_MS = 1000
START_TIMEOUT_MS = 60_000
HANG_MS = 20_000
# A REPLICAOF the probes find not applied is sent again after this long (ms).
RECONF_RETRY_MS = 2000
# A Freeze whose report has not reached the metadata is sent again after this long (ms).
FAILOVER_RETRY_MS = 500
# A unit no longer desired whose data may hold divergent writes is checked before its
# directory goes (supervise.py): the check again after this long when it failed (ms), and
# how many failed starts of its process before the directory is left on disk instead.
CHECK_RETRY_MS = 5000
CHECK_STARTS_MAX = 5


# -- actions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """Write the unit's files and start its process; report ``started`` or ``exited``."""

    unit: str
    spec: Spec


@dataclass(frozen=True, slots=True)
class Stop:
    """SIGTERM, then SIGKILL after the shell's bounded wait; the exit comes as ``exited``."""

    unit: str
    pid: int


@dataclass(frozen=True, slots=True)
class Kill:
    """SIGKILL a process that stopped answering; the exit comes as ``exited``."""

    unit: str
    pid: int
    why: str


@dataclass(frozen=True, slots=True)
class RemoveDir:
    """The unit is gone for good: remove its directory -- after moving its files of
    divergent writes where the node keeps them (``keep_diverged``: the database lives
    on; node/divergedfiles.py)."""

    unit: str
    keep_diverged: bool = False


@dataclass(frozen=True, slots=True)
class Probe:
    """Ask the process how it is (report ``probed``, with None when it did not answer)."""

    unit: str
    pid: int
    spec: Spec


@dataclass(frozen=True, slots=True)
class SetReplication:
    """Rewrite the unit's config and send REPLICAOF (host port, or NO ONE when None)."""

    unit: str
    pid: int
    spec: ShardSpec


@dataclass(frozen=True, slots=True)
class Freeze:
    """ACKDB.FREEZE <epoch>, then propose shard.report with what it answered."""

    unit: str
    epoch: int


@dataclass(frozen=True, slots=True)
class CheckDiverged:
    """ACKDB.DIVERGED for each fork, oldest first, before the SetReplication that follows
    it: when a check fails, the shell must skip that SetReplication (the probes will
    repair the role, checking again)."""

    unit: str
    forks: tuple[Fork, ...]


@dataclass(frozen=True, slots=True)
class HandOver:
    """A planned failover: FAILOVER TO <host> <port> TIMEOUT ..., then propose
    shard.report (this node, the final replid and offset) at ``epoch``, or shard.abort."""

    unit: str
    host: str
    port: int
    epoch: int


@dataclass(frozen=True, slots=True)
class PushSchema:
    """A leaderless replica: ``LL.SCHEMA <version> <payload>`` (cluster/schemapush.py)."""

    unit: str
    pid: int
    version: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Note:
    """A line for the node's log."""

    level: str  # "notice" | "warning" | "verbose"
    text: str


Action = (
    Start
    | Stop
    | Kill
    | RemoveDir
    | Probe
    | SetReplication
    | Freeze
    | CheckDiverged
    | HandOver
    | PushSchema
    | Note
)


class Phase(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"


@dataclass(slots=True)
class Unit:
    id: str
    spec: Spec | None  # None: found on disk, not (yet) known to the metadata
    phase: Phase
    pid: int | None = None
    started_ms: int = 0
    last_ok_ms: int = 0
    next_probe_ms: int = 0
    probing: bool = False
    backoff_ms: int = BACKOFF_FIRST_MS
    restart_at_ms: int = 0
    restarts: int = 0
    reconf_ms: int | None = None  # when the last SetReplication was sent
    observed: Observed | None = None
    # After a STOPPING unit exits: start it again with this spec (a changed process),
    # or remove its directory (no longer desired).
    then_start: Spec | None = None
    remove: bool = False
    adopted: bool = False
    held: bool = False  # an exited primary not restarted until its spec changes
    freeze_ms: int | None = None  # when the last Freeze was sent
    handed_over: int | None = None  # the epoch of the last HandOver sent
    schema_push_ms: int | None = None  # a leaderless replica: when LL.SCHEMA was last sent
    # No longer desired, but checked for divergent writes (ACKDB.DIVERGED) before its
    # directory goes: its spec is the check's (frozen, no replicaof).
    checking: bool = False
    # Adopted without a process: the (mode, epoch) its clean-stop mark says it exited in
    # at its agent's stop (node/shardfiles.py), if any.
    clean_stop: tuple[str, int] | None = None


@dataclass(slots=True)
class Timing:
    backoff_first_ms: int = BACKOFF_FIRST_MS
    backoff_max_ms: int = BACKOFF_MAX_MS
    stable_ms: int = STABLE_MS
    probe_interval_ms: int = PROBE_INTERVAL_MS
    start_timeout_ms: int = START_TIMEOUT_MS
    hang_ms: int = HANG_MS
    reconf_retry_ms: int = RECONF_RETRY_MS
    failover_retry_ms: int = FAILOVER_RETRY_MS
    check_retry_ms: int = CHECK_RETRY_MS
    check_starts_max: int = CHECK_STARTS_MAX
