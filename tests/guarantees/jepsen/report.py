"""A scenario's run record and what it prints when it fails.

Owns: choosing the seed (``ACKDB_SEED`` when set, else the test's fixed default, or a
fresh one for ``slow`` randomized runs), writing the history as JSON lines next to the
test's files, and, when the scenario raises, a report — seed, nemesis schedule, history
path, history summary and the command that replays the run — printed to stderr and added
to the exception as a note, so pytest shows it with the failure.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .history import History
from .nemesis import Schedule

SEED_ENV = "ACKDB_SEED"
# pytest removes old tmp_path trees (and other runs on the machine rotate them fast), so a
# failing run's history is also copied here.
KEEP_DIR_ENV = "ACKDB_HISTORY_DIR"
KEEP_DIR_DEFAULT = "/tmp/ackdb-guarantees"


def choose_seed(default: int | None) -> int:
    env = os.environ.get(SEED_ENV)
    if env:
        return int(env)
    if default is not None:
        return default
    return random.SystemRandom().randrange(1 << 32)


@dataclass
class Run:
    nodeid: str
    seed: int
    workdir: Path
    slow: bool = False
    history: History = field(default_factory=History)
    schedules: list[Schedule] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    @property
    def history_path(self) -> Path:
        return self.workdir / "history.jsonl"

    def schedule(self, **kw: Any) -> Schedule:
        s = Schedule(self.history, self.seed, **kw)
        self.schedules.append(s)
        return s

    def note(self, text: str) -> None:
        self.notes.append(f"[{time.monotonic() - self.t0:6.2f}s] {text}")

    def keep(self) -> None:
        """Copy the history where pytest's clean-up will not remove it."""
        with contextlib.suppress(OSError):
            keep = Path(os.environ.get(KEEP_DIR_ENV, KEEP_DIR_DEFAULT))
            keep.mkdir(parents=True, exist_ok=True)
            name = self.nodeid.rsplit("::", 1)[-1].replace("/", "_").replace("[", "-").strip("]")
            dest = keep / f"{name}-seed{self.seed}-{os.getpid()}.jsonl"
            shutil.copyfile(self.history_path, dest)
            self.notes.append(f"history kept at {dest}")

    def replay_command(self) -> str:
        mark = " -m slow" if self.slow else ""
        return (
            f"{SEED_ENV}={self.seed} PYTHONPATH=src python3 -m pytest -p no:cacheprovider{mark} "
            f"'{self.nodeid}'"
        )

    def report(self) -> str:
        sched = "\n".join(s.describe() for s in self.schedules) or "(no nemesis)"
        return "\n".join([
            f"seed: {self.seed}",
            f"history: {self.history_path}",
            f"ops: {self.history.summary()}",
            "nemesis schedule:",
            sched,
            *self.notes,
            f"replay: {self.replay_command()}",
        ])  # fmt: skip


@contextlib.contextmanager
def scenario(request: Any, workdir: Path, default_seed: int | None) -> Iterator[Run]:
    """Used by a test's ``run`` fixture (or in a test body). A pytest fixture does not
    see the test's exception, so a failure is also detected by the session's failure
    count growing while the scenario ran; the report then goes to stderr at teardown,
    which pytest shows with the failure."""
    slow = request.node.get_closest_marker("slow") is not None
    run = Run(request.node.nodeid, choose_seed(None if slow else default_seed), workdir, slow)
    failed_before = request.session.testsfailed
    failed = False
    try:
        yield run
    except BaseException as e:
        failed = True
        e.add_note(run.report())
        raise
    finally:
        for s in run.schedules:
            with contextlib.suppress(BaseException):
                s.close()
        run.history.dump(run.history_path)
        if failed or request.session.testsfailed > failed_before:
            run.keep()
            print(f"\n--- scenario failed ---\n{run.report()}", file=sys.stderr)
        elif os.environ.get("ACKDB_VERBOSE"):
            print(f"\n--- scenario passed ---\n{run.report()}", file=sys.stderr)
