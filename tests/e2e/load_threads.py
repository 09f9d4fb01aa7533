"""Writer threads for the failover tests: a context manager that starts one thread per
target running the subclass's ``_run(target)`` until it leaves, and the writes they saw
acknowledged (``acked``, under ``lock``)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Self


class LoadThreads:
    def __init__(self, targets: Iterable[object]) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: dict[str, bytes] = {}
        self.threads = [threading.Thread(target=self._run, args=(t,)) for t in targets]

    def _run(self, target: Any) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)
