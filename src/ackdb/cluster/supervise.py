"""The shard supervisor's decisions: which processes a node runs for its databases, and
what to do when what runs differs from what should.

Owns: ``Supervisor``, a pure state machine over the node's *units* (a unit is one process
and its directory, named as cluster/shardspec.py says; what each should be is a
``ShardSpec`` or ``ProxySpec`` from ``desired_units``). Inputs are method calls --
the desired specs, processes started, adopted, exited, probe answers -- each with
``now_ms``; outputs are actions the shell (node/shards.py) carries out in order. Never
does IO, reads no clock, starts nothing itself.

Life of a unit:

    (new, desired) --Start--> STARTING --probe answered--> RUNNING
    STARTING/RUNNING --process exited--> RESTARTING --backoff elapsed--> Start ...
    RUNNING --no answer for hang_ms--> Kill (then exits as above)
    any --no longer desired / changed beyond replication--> STOPPING --exited--> gone
                                                           (or Start again when changed)
    adopted (found running at start-up) --> RUNNING-like, as STARTING until it answers

Restarts back off: ``backoff_first_ms`` doubling up to ``backoff_max_ms``, back to the
first after a unit stayed up ``stable_ms``. A change of a shard's role or primary in the
metadata is applied live (``SetReplication``: REPLICAOF), never by a restart; the
probes also compare a shard's reported role with the desired one and repair it (a shard
adopted after an agent crash, or one that missed the command).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

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
    """The unit is gone for good: remove its directory."""

    unit: str


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
class Note:
    """A line for the node's log."""

    level: str  # "notice" | "warning" | "verbose"
    text: str


Action = Start | Stop | Kill | RemoveDir | Probe | SetReplication | Note


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


@dataclass(slots=True)
class Timing:
    backoff_first_ms: int = BACKOFF_FIRST_MS
    backoff_max_ms: int = BACKOFF_MAX_MS
    stable_ms: int = STABLE_MS
    probe_interval_ms: int = PROBE_INTERVAL_MS
    start_timeout_ms: int = START_TIMEOUT_MS
    hang_ms: int = HANG_MS
    reconf_retry_ms: int = RECONF_RETRY_MS


@dataclass(slots=True)
class Supervisor:
    """See the module docstring. ``units`` is the state; read it, never write it."""

    timing: Timing = field(default_factory=Timing)
    units: dict[str, Unit] = field(default_factory=dict)
    desired: dict[str, Spec] | None = None  # None: the metadata is not known yet
    shutting_down: bool = False

    # -- inputs ---------------------------------------------------------------------------

    def adopt(self, unit: str, pid: int | None, now_ms: int) -> None:
        """At start-up, before any ``set_desired``: a unit directory on disk, with the
        process still running from an earlier agent (``pid``) or none."""
        assert self.desired is None, "adopt before the first set_desired"
        if pid is None:
            self.units[unit] = Unit(unit, None, Phase.RESTARTING, restart_at_ms=now_ms)
        else:
            self.units[unit] = Unit(
                unit, None, Phase.STARTING, pid, now_ms, now_ms, now_ms, adopted=True
            )

    def set_desired(self, specs: dict[str, Spec], now_ms: int) -> list[Action]:
        out: list[Action] = []
        self.desired = dict(specs)
        if self.shutting_down:
            return out
        for uid, u in list(self.units.items()):
            spec = specs.get(uid)
            if spec is None:
                self._retire(u, out)
            elif u.spec is None:
                u.spec = spec  # adopted: the metadata says what it is
                u.last_ok_ms = now_ms  # its start-up grace begins now
                if u.phase is Phase.RESTARTING:
                    u.restart_at_ms = now_ms
            elif spec != u.spec:
                self._change(u, spec, now_ms, out)
        for uid, spec in specs.items():
            if uid not in self.units:
                u = self.units[uid] = Unit(uid, spec, Phase.STARTING)
                self._start(u, now_ms, out)
        return out

    def started(self, unit: str, pid: int, now_ms: int) -> None:
        u = self.units[unit]
        u.pid, u.started_ms, u.last_ok_ms = pid, now_ms, now_ms
        u.next_probe_ms = now_ms + self.timing.probe_interval_ms // 4

    def exited(self, unit: str, pid: int | None, status: str, now_ms: int) -> list[Action]:
        """The unit's process is gone (``status`` for the log), or could not start
        (``pid`` None)."""
        out: list[Action] = []
        u = self.units.get(unit)
        if u is None or (pid is not None and u.pid != pid):
            return out
        was = u.phase
        u.pid, u.probing, u.observed, u.reconf_ms = None, False, None, None
        if was is Phase.STOPPING:
            if u.then_start is not None and not self.shutting_down:
                u.spec, u.then_start = u.then_start, None
                self._start(u, now_ms, out)
            elif u.remove:
                del self.units[unit]
                out.append(RemoveDir(unit))
                out.append(Note("notice", f"{unit} stopped and removed ({status})"))
            else:
                del self.units[unit]
                out.append(Note("notice", f"{unit} stopped ({status})"))
            return out
        if self.shutting_down:
            del self.units[unit]
            return out
        if now_ms - u.started_ms >= self.timing.stable_ms:
            u.backoff_ms = self.timing.backoff_first_ms
        delay = u.backoff_ms
        u.backoff_ms = min(2 * u.backoff_ms, self.timing.backoff_max_ms)
        u.phase, u.restart_at_ms = Phase.RESTARTING, now_ms + delay
        u.restarts += 1
        out.append(Note("warning", f"{unit} exited ({status}); restarting in {delay} ms"))
        return out

    def probed(self, unit: str, pid: int, seen: Observed | None, now_ms: int) -> list[Action]:
        out: list[Action] = []
        u = self.units.get(unit)
        if u is None or u.pid != pid:
            return out
        u.probing = False
        if seen is None:
            return out
        u.last_ok_ms, u.observed = now_ms, seen
        if u.phase is Phase.STARTING:
            u.phase = Phase.RUNNING
            how = "adopted" if u.adopted else "answering"
            out.append(Note("notice", f"{unit} {how} (pid {pid}, {seen.role or 'up'})"))
        if u.phase is Phase.RUNNING and isinstance(u.spec, ShardSpec):
            self._check_role(u, u.spec, seen, now_ms, out)
        return out

    def tick(self, now_ms: int) -> list[Action]:
        out: list[Action] = []
        if self.shutting_down:
            return out
        for u in list(self.units.values()):
            if u.phase is Phase.RESTARTING:
                if u.spec is not None and now_ms >= u.restart_at_ms:
                    self._start(u, now_ms, out)
                continue
            if u.phase is Phase.STOPPING or u.pid is None:
                continue
            self._watch(u, now_ms, out)
        return out

    def stop_all(self) -> list[Action]:
        """The agent is stopping: stop every process (and start nothing again)."""
        self.shutting_down = True
        out: list[Action] = []
        for uid, u in list(self.units.items()):
            if u.pid is None:
                del self.units[uid]
            elif u.phase is not Phase.STOPPING:
                u.phase, u.then_start = Phase.STOPPING, None
                out.append(Stop(uid, u.pid))
        return out

    # -- decisions --------------------------------------------------------------------

    def _start(self, u: Unit, now_ms: int, out: list[Action]) -> None:
        assert u.spec is not None
        u.phase, u.pid, u.started_ms, u.adopted = Phase.STARTING, None, now_ms, False
        u.observed, u.reconf_ms, u.last_ok_ms = None, None, now_ms
        out.append(Start(u.id, u.spec))

    def _retire(self, u: Unit, out: list[Action]) -> None:
        """Not desired any more: stop it, then remove its directory."""
        u.remove, u.then_start = True, None
        if u.pid is None:
            del self.units[u.id]
            out.append(RemoveDir(u.id))
            out.append(Note("notice", f"{u.id} removed (no longer in the metadata)"))
        elif u.phase is not Phase.STOPPING:
            u.phase = Phase.STOPPING
            out.append(Stop(u.id, u.pid))
            out.append(Note("notice", f"{u.id} stopping (no longer in the metadata)"))

    def _change(self, u: Unit, spec: Spec, now_ms: int, out: list[Action]) -> None:
        old = u.spec
        assert old is not None
        if u.phase is Phase.STOPPING:
            if not u.remove:
                u.then_start = spec
            return
        if old.same_process(spec) and isinstance(spec, ShardSpec):
            u.spec = spec
            if u.pid is not None and spec.primary != getattr(old, "primary", None):
                self._reconfigure(u, spec, now_ms, out)
            return
        if u.pid is None:
            u.spec = spec  # not running: the next start uses it
            return
        u.phase, u.then_start = Phase.STOPPING, spec
        out.append(Stop(u.id, u.pid))
        out.append(Note("notice", f"{u.id} restarting with a changed configuration"))

    def _reconfigure(self, u: Unit, spec: ShardSpec, now_ms: int, out: list[Action]) -> None:
        assert u.pid is not None
        u.reconf_ms = now_ms
        out.append(SetReplication(u.id, u.pid, spec))
        to = (
            "primary" if spec.primary is None else f"replica of {spec.primary[0]}:{spec.primary[1]}"
        )
        out.append(Note("notice", f"{u.id} becomes {to} (epoch {spec.epoch})"))

    def _check_role(
        self, u: Unit, spec: ShardSpec, seen: Observed, now_ms: int, out: list[Action]
    ) -> None:
        if not seen.role:
            return  # it answered without saying its role (loading): ask again later
        if spec.primary is None:
            right = seen.role == "master"
        else:
            right = seen.role == "slave" and (seen.master_host, seen.master_port) == spec.primary
        if right:
            u.reconf_ms = None
        elif u.reconf_ms is None or now_ms - u.reconf_ms >= self.timing.reconf_retry_ms:
            self._reconfigure(u, spec, now_ms, out)

    def _watch(self, u: Unit, now_ms: int, out: list[Action]) -> None:
        assert u.pid is not None
        if u.spec is None:
            return  # adopted, the metadata not read yet: nothing to probe it against
        t = self.timing
        silent = now_ms - u.last_ok_ms
        limit = t.start_timeout_ms if u.phase is Phase.STARTING else t.hang_ms
        if silent >= limit:
            u.last_ok_ms = now_ms  # one Kill; the exit restarts it
            out.append(Kill(u.id, u.pid, f"no answer for {silent} ms"))
            return
        if not u.probing and now_ms >= u.next_probe_ms:
            u.probing = True
            u.next_probe_ms = now_ms + t.probe_interval_ms
            out.append(Probe(u.id, u.pid, u.spec))
