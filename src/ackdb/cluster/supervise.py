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
    any --no longer desired, may hold divergent writes--> checking: Start as a fenced
        primary (or as it runs) --answered--> CheckDiverged --checked--> STOPPING --> gone,
        its diverged-* files kept (RemoveDir.keep_diverged; cluster/retirecheck.py)
    adopted (found running at start-up) --> RUNNING-like, as STARTING until it answers

Restarts back off: ``backoff_first_ms`` doubling up to ``backoff_max_ms``, back to the
first after a unit stayed up ``stable_ms``. A change of a shard's role or primary in the
metadata is applied live (``SetReplication``: REPLICAOF), never by a restart; the
probes also compare a shard's reported role with the desired one and repair it (a shard
adopted after an agent crash, or one that missed the command).

A leaderless replica (issue 16) is a standalone primary for ever; after each probe of it
that finds it behind its database's schema, and when that schema changes, it is sent
``PushSchema`` (cluster/schemapush.py says when).

Failover (issue 15, docs/failover.md; the spec's ``Mode`` says which step): a FROZEN
unit is sent ``Freeze`` (the shell sends ACKDB.FREEZE and proposes shard.report) until
its report is in the metadata; a HANDOVER unit is sent ``HandOver`` once per epoch (the
shell runs FAILOVER TO and proposes shard.report or shard.abort); a HOLD unit is left
alone; a unit becoming a REPLICA of a shard with forks gets ``CheckDiverged`` right before
its ``SetReplication``. A primary of a database that fails over whose process exits
after it answered is not restarted as a primary (it may come back empty or behind, and its replicas would
full-sync from it): it is *held* until its spec changes (the failover froze it), and
``down_facts`` (cluster/leases.py) has its agent propose shard.down at once. So is such a
primary *adopted without a process* (``held_after_restart``: the node came back, faster
than the leader's node timeout, with its processes gone). Such
units are probed every quarter of their ``timeout_ms``; ``answered`` (any reply, such as
a lease renewal's) counts as a probe answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ackdb.cluster.databases import Persistence
from ackdb.cluster.schemapush import push_due
from ackdb.cluster.shardspec import Mode, Observed, ShardSpec, Spec
from ackdb.cluster.unitactions import (
    BACKOFF_FIRST_MS,
    BACKOFF_MAX_MS,
    CHECK_RETRY_MS,
    CHECK_STARTS_MAX,
    FAILOVER_RETRY_MS,
    HANG_MS,
    PROBE_INTERVAL_MS,
    RECONF_RETRY_MS,
    STABLE_MS,
    START_TIMEOUT_MS,
    Action,
    CheckDiverged,
    Freeze,
    HandOver,
    Kill,
    Note,
    Phase,
    Probe,
    PushSchema,
    RemoveDir,
    SetReplication,
    Start,
    Stop,
    Timing,
    Unit,
)

__all__ = [
    "BACKOFF_FIRST_MS",
    "BACKOFF_MAX_MS",
    "CHECK_RETRY_MS",
    "CHECK_STARTS_MAX",
    "FAILOVER_RETRY_MS",
    "HANG_MS",
    "HELD_AT_START",
    "PROBE_INTERVAL_MS",
    "RECONF_RETRY_MS",
    "STABLE_MS",
    "START_TIMEOUT_MS",
    "Action",
    "CheckDiverged",
    "Freeze",
    "HandOver",
    "Kill",
    "Note",
    "Phase",
    "Probe",
    "PushSchema",
    "RemoveDir",
    "SetReplication",
    "Start",
    "Stop",
    "Supervisor",
    "Timing",
    "Unit",
    "held_after_restart",
]


@dataclass(slots=True)
class Supervisor:
    """See the module docstring. ``units`` is the state; read it, never write it."""

    timing: Timing = field(default_factory=Timing)
    units: dict[str, Unit] = field(default_factory=dict)
    desired: dict[str, Spec] | None = None  # None: the metadata is not known yet
    shutting_down: bool = False

    # -- inputs ---------------------------------------------------------------------------

    def adopt(
        self, unit: str, pid: int | None, now_ms: int, clean_stop: tuple[str, int] | None = None
    ) -> None:
        """At start-up, before any ``set_desired``: a unit directory on disk, with the
        process still running from an earlier agent (``pid``) or none (``clean_stop``: the
        mode and epoch its clean-stop mark names, if it has one)."""
        assert self.desired is None, "adopt before the first set_desired"
        if pid is None:
            self.units[unit] = Unit(
                unit, None, Phase.RESTARTING, restart_at_ms=now_ms, clean_stop=clean_stop
            )
        else:
            self.units[unit] = Unit(
                unit, None, Phase.STARTING, pid, now_ms, now_ms, now_ms, adopted=True
            )

    def set_desired(
        self, specs: dict[str, Spec], now_ms: int, checks: Mapping[str, ShardSpec] | None = None
    ) -> list[Action]:
        """``checks``: for units no longer desired whose data must be checked for
        divergent writes before their directory goes, the spec of the checking process
        (cluster/retirecheck.py); the others are stopped and removed at once."""
        out: list[Action] = []
        self.desired = dict(specs)
        if self.shutting_down:
            return out
        for uid, u in list(self.units.items()):
            spec = specs.get(uid)
            check = None if checks is None else checks.get(uid)
            if spec is None and check is not None:
                self._check_then_retire(u, check, now_ms, out)
            elif spec is None:
                u.checking = False  # (its database was deleted meanwhile: nothing to keep)
                self._retire(u, out)
            elif u.checking:
                u.checking = False  # desired again: its data stays anyway
                self._change(u, spec, now_ms, out)
            elif u.spec is None:
                u.spec = spec  # adopted: the metadata says what it is
                u.last_ok_ms = now_ms  # its start-up grace begins now
                if u.phase is Phase.RESTARTING:
                    u.restart_at_ms = now_ms
                    if held_after_restart(spec, u.clean_stop):
                        u.held = True
                        out.append(Note("warning", f"{uid} {HELD_AT_START}"))
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
                out.append(RemoveDir(unit, keep_diverged=u.checking))
                out.append(Note("notice", f"{unit} stopped and removed ({status})"))
            else:
                del self.units[unit]
                out.append(Note("notice", f"{unit} stopped ({status})"))
            return out
        if self.shutting_down:
            del self.units[unit]
            return out
        if u.checking and u.restarts + 1 >= self.timing.check_starts_max:
            del self.units[unit]
            out.append(
                Note(
                    "warning",
                    f"{unit} exited ({status}) before its divergence check, "
                    f"{u.restarts + 1} times: its directory is left on disk for the operator",
                )
            )
            return out
        if was is Phase.RUNNING and _fails_over_as_primary(u.spec):
            u.phase, u.held = Phase.RESTARTING, True
            u.restarts += 1
            out.append(
                Note("warning", f"{unit} exited ({status}); held until the failover moves on")
            )
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
            self._push_schema(u, u.spec, now_ms, out)
        return out

    def checked(self, unit: str, ok: bool, now_ms: int) -> list[Action]:
        """The divergence check of a unit no longer desired answered (``ok``) or failed:
        then it goes (its files of divergent writes kept), else it is checked again
        after ``check_retry_ms``."""
        out: list[Action] = []
        u = self.units.get(unit)
        if u is None or not u.checking:
            return out
        if ok:
            out.append(Note("notice", f"{unit} checked for divergent writes"))
            self._retire(u, out)
        return out

    def answered(self, unit: str, pid: int, now_ms: int) -> None:
        """The unit's process answered some command (a lease renewal): it is alive."""
        u = self.units.get(unit)
        if u is not None and u.pid == pid and u.phase is Phase.RUNNING:
            u.last_ok_ms = now_ms

    def tick(self, now_ms: int) -> list[Action]:
        out: list[Action] = []
        if self.shutting_down:
            return out
        for u in list(self.units.values()):
            if u.phase is Phase.RESTARTING:
                if u.spec is not None and not u.held and now_ms >= u.restart_at_ms:
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
        u.held, u.freeze_ms, u.handed_over, u.schema_push_ms = False, None, None, None
        out.append(Start(u.id, u.spec))

    def _check_then_retire(self, u: Unit, check: ShardSpec, now_ms: int, out: list[Action]) -> None:
        """Not desired any more, but its data may hold divergent writes: run it as the
        check's fenced primary, send it CheckDiverged once it answers (``_watch``), and
        retire it when ``checked``."""
        if u.checking:
            return
        u.checking, u.remove, u.held, u.freeze_ms, u.restarts = True, False, False, None, 0
        out.append(Note("notice", f"{u.id} left this node: checking it for divergent writes"))
        if u.phase is Phase.STOPPING:
            u.then_start = check  # (stopping for a restart already: it comes back as this)
        elif u.pid is None:
            u.spec = check
            self._start(u, now_ms, out)
        elif u.spec is not None and check.same_process(u.spec):
            u.spec = check  # running with the same files and port: check it as it is
        else:
            u.phase, u.then_start = Phase.STOPPING, check
            out.append(Stop(u.id, u.pid))

    def _retire(self, u: Unit, out: list[Action]) -> None:
        """Not desired any more: stop it, then remove its directory."""
        u.remove, u.then_start = True, None
        if u.pid is None:
            del self.units[u.id]
            out.append(RemoveDir(u.id, keep_diverged=u.checking))
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
        if u.held and (not _fails_over_as_primary(spec) or _epoch(spec) != _epoch(old)):
            u.held, u.restart_at_ms = False, now_ms  # the failover moved on: start again
        if old.same_process(spec) and isinstance(spec, ShardSpec):
            assert isinstance(old, ShardSpec)
            u.spec = spec
            if u.pid is not None and _step(spec) != _step(old):
                self._carry_out(u, spec, now_ms, out)
            if spec.schema_version != old.schema_version:
                u.schema_push_ms = None  # a new schema: push it now, not after a retry wait
                if u.phase is Phase.RUNNING:
                    self._push_schema(u, spec, now_ms, out)
            return
        if u.pid is None:
            u.spec = spec  # not running: the next start uses it
            return
        u.phase, u.then_start = Phase.STOPPING, spec
        out.append(Stop(u.id, u.pid))
        out.append(Note("notice", f"{u.id} restarting with a changed configuration"))

    def _carry_out(self, u: Unit, spec: ShardSpec, now_ms: int, out: list[Action]) -> None:
        """The spec's role or failover step changed: act on the running process."""
        if spec.mode is Mode.FROZEN:
            self._freeze(u, spec, now_ms, out)
        elif spec.mode is Mode.HANDOVER:
            self._hand_over(u, spec, out)
        elif spec.mode is Mode.HOLD:
            out.append(Note("notice", f"{u.id} waits for a planned failover (epoch {spec.epoch})"))
        else:
            self._reconfigure(u, spec, now_ms, out)

    def _freeze(self, u: Unit, spec: ShardSpec, now_ms: int, out: list[Action]) -> None:
        if spec.reported:
            return
        first = u.freeze_ms is None
        u.freeze_ms = now_ms
        out.append(Freeze(u.id, spec.epoch))
        if first:
            out.append(Note("notice", f"{u.id} freezing for a failover (epoch {spec.epoch})"))

    def _hand_over(self, u: Unit, spec: ShardSpec, out: list[Action]) -> None:
        if spec.reported or spec.target is None or u.handed_over == spec.epoch:
            return
        u.handed_over = spec.epoch
        host, port = spec.target
        out.append(HandOver(u.id, host, port, spec.epoch))
        out.append(Note("notice", f"{u.id} hands over to {host}:{port} (epoch {spec.epoch})"))

    def _reconfigure(self, u: Unit, spec: ShardSpec, now_ms: int, out: list[Action]) -> None:
        assert u.pid is not None
        u.reconf_ms = now_ms
        if spec.mode is Mode.REPLICA and spec.forks:
            out.append(CheckDiverged(u.id, spec.forks))
        out.append(SetReplication(u.id, u.pid, spec))
        to = (
            "primary" if spec.primary is None else f"replica of {spec.primary[0]}:{spec.primary[1]}"
        )
        out.append(Note("notice", f"{u.id} becomes {to} (epoch {spec.epoch})"))

    def _push_schema(self, u: Unit, spec: ShardSpec, now_ms: int, out: list[Action]) -> None:
        """A leaderless replica behind its database's schema: LL.SCHEMA (schemapush.py)."""
        seen = u.observed.ll_schema if u.observed is not None else -1
        if u.pid is not None and push_due(spec, seen, u.schema_push_ms, now_ms):
            u.schema_push_ms = now_ms
            out.append(PushSchema(u.id, u.pid, spec.schema_version, spec.schema))

    def _check_role(
        self, u: Unit, spec: ShardSpec, seen: Observed, now_ms: int, out: list[Action]
    ) -> None:
        if spec.mode in (Mode.FROZEN, Mode.HANDOVER, Mode.HOLD):
            self._carry_out_again(u, spec, now_ms, out)
            return
        if not seen.role:
            return  # it answered without saying its role (loading): ask again later
        if spec.mode is Mode.PRIMARY:
            right = seen.role == "master" and not seen.frozen
        else:
            right = (
                seen.role == "slave"
                and (seen.master_host, seen.master_port) == spec.primary
                and not seen.frozen
            )
        if right:
            u.reconf_ms = None
        elif u.reconf_ms is None or now_ms - u.reconf_ms >= self.timing.reconf_retry_ms:
            self._reconfigure(u, spec, now_ms, out)

    def _carry_out_again(self, u: Unit, spec: ShardSpec, now_ms: int, out: list[Action]) -> None:
        """A failover step not confirmed yet: a Freeze every failover_retry_ms until the
        report is in the metadata; a HandOver once per epoch."""
        if spec.mode is Mode.HANDOVER:
            self._hand_over(u, spec, out)
        elif spec.mode is Mode.FROZEN and (
            u.freeze_ms is None or now_ms - u.freeze_ms >= self.timing.failover_retry_ms
        ):
            self._freeze(u, spec, now_ms, out)

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
        spec = u.spec
        if u.phase is Phase.RUNNING and isinstance(spec, ShardSpec):
            self._carry_out_again(u, spec, now_ms, out)
            if u.checking and (u.freeze_ms is None or now_ms - u.freeze_ms >= t.check_retry_ms):
                u.freeze_ms = now_ms  # (a checking unit is never frozen: the field is free)
                out.append(CheckDiverged(u.id, spec.forks))
        if not u.probing and now_ms >= u.next_probe_ms:
            u.probing = True
            interval = t.probe_interval_ms
            if isinstance(spec, ShardSpec) and spec.timeout_ms:
                interval = min(interval, max(1, spec.timeout_ms // 4))
            u.next_probe_ms = now_ms + interval
            out.append(Probe(u.id, u.pid, spec))


HELD_AT_START = "was gone when the agent started; held until the failover moves on"


def held_after_restart(spec: Spec, clean_stop: tuple[str, int] | None = None) -> bool:
    """A unit found on disk with no process (the node or the agent restarted after its
    process died unseen): held, like a primary whose exit the agent saw, when it is a
    primary of a database that fails over and may have come back behind its replicas --
    persistence ``none``, ``snapshot`` or ``aof-everysec`` lose the last writes -- whose
    resync from it would lose what WAIT acknowledged; the failover compares it with them
    instead. Under ``aof-always`` it holds every write it acknowledged; so does a primary
    of the same epoch that exited cleanly at its agent's stop (``clean_stop``: its final
    fsync of the AOF, or its final snapshot, done), except under ``none``, which keeps
    nothing (docs/failover.md, "A node back before node_timeout_ms")."""
    if not (isinstance(spec, ShardSpec) and _fails_over_as_primary(spec)):
        return False
    if spec.persistence is Persistence.AOF_ALWAYS:
        return False
    clean = clean_stop == (Mode.PRIMARY.value, spec.epoch)
    return not clean or spec.persistence is Persistence.NONE


def _fails_over_as_primary(spec: Spec | None) -> bool:
    """A primary of a database that fails over: not restarted when it exits."""
    return isinstance(spec, ShardSpec) and spec.lease and spec.mode is Mode.PRIMARY


def _epoch(spec: Spec) -> int:
    return spec.epoch if isinstance(spec, ShardSpec) else 0


def _step(spec: ShardSpec) -> tuple[object, ...]:
    """What the running process must be told about when it changes."""
    return (spec.mode, spec.follows, spec.epoch, spec.target)
