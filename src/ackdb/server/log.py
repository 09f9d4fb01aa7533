"""Redis-style log lines: ``PID:ROLE DD Mon YYYY HH:MM:SS.mmm LEVEL message``.

Owns: the log format, level filtering (``loglevel``) and the destination (``logfile``,
standard output when empty). Role letters as Redis: M primary, S replica, C child/setup.
Level marks: ``.`` debug, ``-`` verbose, ``*`` notice, ``#`` warning.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import TextIO

LEVELS = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3, "nothing": 4}
_MARKS = ".-*#"


class Log:
    def __init__(self, level: str = "notice", path: str = "") -> None:
        self.level = LEVELS[level]
        self.role = "C"
        self.pid = os.getpid()
        self._path = ""
        self._out: TextIO = sys.stdout
        self.set_file(path)

    def set_level(self, level: str) -> None:
        self.level = LEVELS[level]

    def set_file(self, path: str) -> None:
        if path == self._path:
            return
        if self._out is not sys.stdout:
            self._out.close()
        self._out = open(path, "a", buffering=1) if path else sys.stdout  # noqa: SIM115
        self._path = path

    def write(self, level: int, msg: str) -> None:
        if level < self.level:
            return
        now = time.time()
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now))
        line = (
            f"{self.pid}:{self.role} {stamp}.{int(now * 1000) % 1000:03d} {_MARKS[level]} {msg}\n"
        )
        try:
            self._out.write(line)
            self._out.flush()
        except (OSError, ValueError):
            pass  # a log that cannot be written must not stop the server

    def debug(self, msg: str) -> None:
        self.write(0, msg)

    def verbose(self, msg: str) -> None:
        self.write(1, msg)

    def notice(self, msg: str) -> None:
        self.write(2, msg)

    def warning(self, msg: str, exc: bool = False) -> None:
        self.write(3, msg)
        if exc:
            for line in traceback.format_exc().rstrip().splitlines():
                self.write(3, line)
