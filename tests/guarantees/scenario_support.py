"""Shared pieces of the guarantee scenarios: acknowledgement levels, the writers of a
replication group, and the assertions that print a checker's explanation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jepsen.checkers import CountResult, DurabilityResult
from jepsen.history import History
from jepsen.procs import Node
from jepsen.trio import Trio
from jepsen.workloads import Level, ListWriter, Workers

ACK_TIMEOUT_MS = 300
WAIT1 = Level("wait", numreplicas=1, timeout_ms=ACK_TIMEOUT_MS, label="wait1")
WAITAOF01 = Level("waitaof", 0, 1, ACK_TIMEOUT_MS, label="waitaof01")
WAITAOF11 = Level("waitaof", 1, 1, ACK_TIMEOUT_MS, label="waitaof11")
WAITAOF02 = Level("waitaof", 0, 2, ACK_TIMEOUT_MS, label="waitaof02")
KEYS = [f"list:{i}" for i in range(8)]


def none_level(label: str) -> Level:
    """No acknowledgement command: the write's reply is all (``label``: the primary's
    appendfsync policy, which is what the reply then means)."""
    return Level("none", label=label)


def start_writers(
    history: History, trio: Trio, levels: list[Level], seed: int, per_level: int = 1
) -> tuple[Workers, list[ListWriter]]:
    workers = Workers()
    writers = []
    target: Callable[[], Node] = lambda: trio.primary  # noqa: E731
    for i, level in enumerate(levels):
        for j in range(per_level):
            name = f"{level.label}.{j}"
            w = ListWriter(history, name, target, KEYS, level, seed * 1000 + i * 10 + j)
            writers.append(w)
            workers.spawn(name, w)
    return workers, writers


def wait_acked(
    writers: list[ListWriter], at_least: int, timeout_s: float, min_s: float = 0.0
) -> None:
    """Until every writer in ``writers`` has ``at_least`` acknowledgements and ``min_s``
    passed, or ``timeout_s`` passed (a level the setup cannot reach never blocks the
    run)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if time.monotonic() - t0 >= min_s and all(w.acked >= at_least for w in writers):
            return
        time.sleep(0.05)


def assert_durable(result: DurabilityResult, what: str, run: Any) -> None:
    run.note(f"{what}: {result.explain()}")
    assert result.ok, f"{what}: {result.explain()}"


def assert_counts(result: CountResult, what: str, run: Any) -> None:
    run.note(f"{what}: {result.explain()}")
    assert result.ok, f"{what}: {result.explain()}"
