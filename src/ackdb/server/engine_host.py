"""The process-side implementations of the engine's ports that need no other shell part.

Owns: the system clock, the INFO text source (process facts: rusage, memory, the host)
and ``build_engine``, the one way a process (the server, a test's in-process engine)
builds an engine: handlers loaded, the clock and INFO attached, the real pid. The
replication and persistence ports are attached by their own shells when they start.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable

from ..commands import load_all
from ..engine.core import Server
from ..engine.ports import Config, Log
from . import info


class SystemClock:
    """The engine's ``Clock`` on the process's clocks.

    ``perf_ns`` is read once per command (commandstats): it is the C function itself, not
    a method around it, so the engine's bound ``clock.perf_ns`` costs no Python frame
    (a wrapper cost about 4% of SET/GET at pipeline 16, paired runs).
    """

    __slots__ = ()

    perf_ns = staticmethod(time.perf_counter_ns)

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def time_s(self) -> float:
        return time.time()

    def now_us(self) -> int:
        return time.time_ns() // 1000

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class InfoSource:
    """The engine's ``Info`` port: INFO's text, read from the engine and this process."""

    __slots__ = ("core",)

    def __init__(self, core: Server) -> None:
        self.core = core

    def text(self, args: Iterable[bytes]) -> str:
        return info.info_text(self.core, args)

    def reset_memory_peak(self) -> None:
        info.reset_memory_peak()


def build_engine(
    config: Config, log: Log | None = None, rng: random.Random | None = None
) -> Server:
    load_all()
    core = Server(config, log, rng, clock=SystemClock(), pid=os.getpid())
    core.info = InfoSource(core)
    core.secure_rng = random.SystemRandom()  # ACL GENPASS: the OS's randomness
    return core
