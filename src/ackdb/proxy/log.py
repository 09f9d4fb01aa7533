"""The endpoint process's log: Redis-style lines ``PID:P DD Mon YYYY HH:MM:SS.mmm L msg``.

SHELL MODULE (reads the clock, writes a file). Owns level filtering and the destination
(a file, or standard output). proxy/ may not import server/, so this is its own small
logger with the server log's format.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

LEVELS = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3, "nothing": 4}
_MARKS = ".-*#"


class Log:
    def __init__(self, level: str = "notice", path: str = "") -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown log level '{level}'")
        self.level = LEVELS[level]
        self.pid = os.getpid()
        self._out: TextIO = open(path, "a", buffering=1) if path else sys.stdout  # noqa: SIM115

    def write(self, level: int, msg: str) -> None:
        if level < self.level:
            return
        now = time.time()
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now))
        try:
            self._out.write(
                f"{self.pid}:P {stamp}.{int(now * 1000) % 1000:03d} {_MARKS[level]} {msg}\n"
            )
            self._out.flush()
        except (OSError, ValueError):
            pass  # a log that cannot be written must not stop the endpoint

    def debug(self, msg: str) -> None:
        self.write(0, msg)

    def verbose(self, msg: str) -> None:
        self.write(1, msg)

    def notice(self, msg: str) -> None:
        self.write(2, msg)

    def warning(self, msg: str) -> None:
        self.write(3, msg)
