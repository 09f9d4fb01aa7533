"""Nemeses: faults with a start and a stop, composed and driven by a seeded schedule.

Owns: one class per fault, the ``Schedule`` thread that starts and stops them (from a
``random.Random(seed)``, or from a fixed script), and the record of what it did (also
written into the history as ``nemesis`` events, so a checker sees faults and operations
on one time line). Every fault is undone by ``stop()``; ``Schedule.close()`` stops
whatever is still active, so a test never leaves a node paused or a link cut.

Targets are anything with ``name``, ``kill()``, ``restart()``, ``pause()`` and
``resume()`` (``procs.Node``, or ``RaftMember`` for ``ackdb node`` members).

Faults:
- ``KillRestart``: SIGKILL one target (chosen by the seed), restart it on stop.
- ``Pause``: SIGSTOP one target, SIGCONT on stop.
- ``ProxyPartition``: blackhole a fault proxy (one way: ``up`` / ``down``; or both).
- ``NetPartition``: iptables DROP rules between network namespaces (``netns.Network``):
  isolate one node, cut the nodes in two halves, or one way only.
- ``DiskFault``: ``DEBUG DISK-FAULT <kind> <errno>`` on one node, ``off`` on stop.
- ``FullDisk``: fill the (small tmpfs) file system a node writes to; free it on stop.
- ``ClockJump``: move a libfaketime-run node's wall clock by an offset; back on stop.
- ``Compose``: several of the above at once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .history import History

JOIN_TIMEOUT_S = 60.0


class Target(Protocol):
    name: str

    def kill(self) -> None: ...
    def restart(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...


class Nemesis:
    name = "nemesis"

    def start(self, rng: random.Random) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self) -> dict[str, Any]:
        raise NotImplementedError


class KillRestart(Nemesis):
    name = "kill"

    def __init__(self, targets: Callable[[], Sequence[Target]], name: str = "kill") -> None:
        self.targets = targets
        self.name = name
        self.victim: Target | None = None

    def start(self, rng: random.Random) -> dict[str, Any]:
        self.victim = rng.choice(list(self.targets()))
        self.victim.kill()
        return {"killed": self.victim.name}

    def stop(self) -> dict[str, Any]:
        v, self.victim = self.victim, None
        if v is None:
            return {}
        v.restart()
        return {"restarted": v.name}


class Pause(Nemesis):
    name = "pause"

    def __init__(self, targets: Callable[[], Sequence[Target]]) -> None:
        self.targets = targets
        self.victim: Target | None = None

    def start(self, rng: random.Random) -> dict[str, Any]:
        self.victim = rng.choice(list(self.targets()))
        self.victim.pause()
        return {"paused": self.victim.name}

    def stop(self) -> dict[str, Any]:
        v, self.victim = self.victim, None
        if v is None:
            return {}
        v.resume()
        return {"resumed": v.name}


class ProxyPartition(Nemesis):
    """``proxies``: name -> FaultProxy. ``directions``: the choices (``up``: the
    connecting side's bytes are lost; ``down``: the replies; ``both``; ``drop``: both and
    connections closed)."""

    name = "proxy-partition"

    def __init__(self, proxies: dict[str, Any], directions: Sequence[str] = ("both",)) -> None:
        self.proxies = proxies
        self.directions = list(directions)
        self.active: Any = None

    def start(self, rng: random.Random) -> dict[str, Any]:
        name = rng.choice(sorted(self.proxies))
        direction = rng.choice(self.directions)
        self.active = self.proxies[name]
        if direction == "drop":
            self.active.drop_all()
        else:
            self.active.blackhole(direction)
        return {"link": name, "direction": direction, "via": "faultproxy"}

    def stop(self) -> dict[str, Any]:
        # A proxy that discarded bytes of a live connection left a hole in that TCP
        # stream, which no network does (TCP retransmits or the connection dies). So the
        # connections that lived through the fault are closed before traffic flows again:
        # the partition is healed as one that outlasted the peers' timeouts.
        if self.active is not None:
            self.active.refuse()
            self.active.close_connections()
            self.active.heal()
            self.active = None
        return {"healed": True, "connections_closed": True}


class NetPartition(Nemesis):
    """Partitions of a ``netns.Network``. ``modes``: ``isolate`` (one node from all),
    ``halves`` (a random split), ``one-way`` (one node hears nobody, the others hear it).
    ``nodes``: the names that may be cut."""

    name = "net-partition"

    def __init__(self, net: Any, nodes: Sequence[str], modes: Sequence[str] = ("isolate",)):
        self.net = net
        self.nodes = list(nodes)
        self.modes = list(modes)

    def start(self, rng: random.Random) -> dict[str, Any]:
        mode = rng.choice(self.modes)
        if mode == "halves":
            shuffled = self.nodes[:]
            rng.shuffle(shuffled)
            k = rng.randrange(1, len(shuffled))
            a, b = shuffled[:k], shuffled[k:]
            for x in a:
                for y in b:
                    self.net.cut(x, y)
            return {"mode": mode, "sides": [a, b], "via": "netns"}
        victim = rng.choice(self.nodes)
        for other in self.nodes:
            if other != victim:
                self.net.drop(victim, other)
                if mode == "isolate":
                    self.net.drop(other, victim)
        return {"mode": mode, "node": victim, "via": "netns"}

    def stop(self) -> dict[str, Any]:
        self.net.heal()
        return {"healed": True}


class DiskFault(Nemesis):
    """``DEBUG DISK-FAULT kind errno`` on one of ``nodes()`` (procs.Node)."""

    name = "disk-fault"

    def __init__(self, nodes: Callable[[], Sequence[Any]], kind: str = "aof-fsync",
                 errno_name: str = "EIO") -> None:  # fmt: skip
        self.nodes = nodes
        self.kind = kind
        self.errno_name = errno_name
        self.victim: Any = None

    def start(self, rng: random.Random) -> dict[str, Any]:
        self.victim = rng.choice(list(self.nodes()))
        self.victim.call("DEBUG", "DISK-FAULT", self.kind, self.errno_name)
        return {"node": self.victim.name, "kind": self.kind, "errno": self.errno_name}

    def stop(self) -> dict[str, Any]:
        v, self.victim = self.victim, None
        if v is not None and v.running():
            with contextlib.suppress(Exception):
                v.call("DEBUG", "DISK-FAULT", self.kind, "off")
        return {"node": getattr(v, "name", None), "off": True}


class FullDisk(Nemesis):
    """Fill the file system holding ``path`` (a small tmpfs) with a filler file."""

    name = "full-disk"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler.bin"

    def start(self, rng: random.Random) -> dict[str, Any]:
        written = 0
        chunk = b"\0" * 65536
        with open(self.filler, "wb") as fh:
            try:
                while True:
                    fh.write(chunk)
                    fh.flush()
                    written += len(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
        return {"path": str(self.path), "filled_bytes": written}

    def stop(self) -> dict[str, Any]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.filler)
        return {"freed": True}


class ClockJump(Nemesis):
    """Move the wall clock of nodes run under libfaketime (``Node.clock_file``) by
    ``offsets_s`` (chosen by the seed); restore on stop. The monotonic clock is left
    alone (FAKETIME_DONT_FAKE_MONOTONIC), as an NTP step would."""

    name = "clock-jump"

    def __init__(self, nodes: Callable[[], Sequence[Any]], offsets_s: Sequence[int]) -> None:
        self.nodes = nodes
        self.offsets_s = list(offsets_s)
        self.victim: Any = None

    def start(self, rng: random.Random) -> dict[str, Any]:
        self.victim = rng.choice(list(self.nodes()))
        off = rng.choice(self.offsets_s)
        self.victim.clock_file.write_text(f"{off:+d}s\n")
        return {"node": self.victim.name, "offset_s": off, "via": "libfaketime"}

    def stop(self) -> dict[str, Any]:
        v, self.victim = self.victim, None
        if v is not None:
            v.clock_file.write_text("+0\n")
        return {"node": getattr(v, "name", None), "offset_s": 0}


class Compose(Nemesis):
    """Several faults at once: started in order, stopped in reverse order (a partition
    while a disk fails, a pause during a clock jump...)."""

    def __init__(self, *parts: Nemesis) -> None:
        self.parts = parts
        self.name = "+".join(p.name for p in parts)

    def start(self, rng: random.Random) -> dict[str, Any]:
        return {p.name: p.start(rng) for p in self.parts}

    def stop(self) -> dict[str, Any]:
        return {p.name: p.stop() for p in reversed(self.parts)}


@dataclass
class Step:
    at_s: float  # from the schedule's start
    nemesis: Nemesis
    duration_s: float


@dataclass
class Schedule:
    """Runs nemeses in a background thread. Random mode: ``nemeses`` chosen by ``seed``,
    each active for ``active_s`` (a range) after ``quiet_s`` (a range) of calm. Script
    mode: ``script`` steps at fixed times. One fault at a time; ``log`` records each
    start and stop with its details and time (s since start)."""

    history: History
    seed: int
    nemeses: list[Nemesis] = field(default_factory=list)
    quiet_s: tuple[float, float] = (0.5, 1.5)
    active_s: tuple[float, float] = (1.0, 3.0)
    script: list[Step] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _active: Nemesis | None = None
    _t0: float = 0.0
    error: BaseException | None = None

    def start(self) -> Schedule:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="nemesis", daemon=True)
        self._thread.start()
        return self

    def _record(self, what: str, nem: Nemesis, details: dict[str, Any]) -> None:
        entry = {"t_s": round(time.monotonic() - self._t0, 3), "nemesis": nem.name,
                 "what": what, **details}  # fmt: skip
        self.log.append(entry)
        self.history.event(f"{nem.name}:{what}", **details)

    def _wait(self, seconds: float) -> bool:
        return not self._stop.wait(max(0.0, seconds))

    def _run(self) -> None:
        rng = random.Random(self.seed)
        try:
            if self.script:
                for step in sorted(self.script, key=lambda s: s.at_s):
                    if not self._wait(step.at_s - (time.monotonic() - self._t0)):
                        return
                    self._one(step.nemesis, rng, step.duration_s)
                return
            while self._wait(rng.uniform(*self.quiet_s)):
                self._one(rng.choice(self.nemeses), rng, rng.uniform(*self.active_s))
        except BaseException as e:  # noqa: BLE001 -- reported by close()
            self.error = e

    def _one(self, nem: Nemesis, rng: random.Random, duration_s: float) -> None:
        self._active = nem
        self._record("start", nem, nem.start(rng))
        self._wait(duration_s)
        self._record("stop", nem, nem.stop())
        self._active = None

    def close(self) -> None:
        """Stop the schedule and undo the active fault (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
            self._thread = None
        if self._active is not None:
            nem, self._active = self._active, None
            self._record("stop", nem, nem.stop())
        if self.error is not None:
            err, self.error = self.error, None
            raise err

    def describe(self) -> str:
        lines = []
        for e in self.log:
            details = ", ".join(
                f"{k}={v}" for k, v in e.items() if k not in ("t_s", "nemesis", "what")
            )
            lines.append(f"  t={e['t_s']:7.2f}s {e['nemesis']} {e['what']}: {details}")
        return "\n".join(lines) or "  (no fault injected)"
