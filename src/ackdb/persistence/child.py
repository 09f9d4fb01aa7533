"""Background work in a forked child: snapshots (BGSAVE) and AOF rewrites.

Owns: forking, what the child must do first (die with the parent, default signal handling,
no cyclic GC, no event loop), reporting progress through a pipe, and collecting the exit
status. The child sees the dataset as it was at the fork (the kernel's copy-on-write), so
the parent keeps serving while it writes; the fork itself is the only pause clients see
(measured in bench/persistence_bench.py).

Never used by the sans-IO cores. The parent must not fork again while a child runs.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# How often the child reports progress (seconds).
PROGRESS_INTERVAL_S = 0.5
# prctl(2) option: the signal a process gets when its parent dies (Linux).
PR_SET_PDEATHSIG = 1


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def _die_with_parent(parent: int) -> None:
    """The child must not outlive a killed server: an orphan would go on and rename its
    file into place later, over a snapshot or a base the restarted server wrote since
    (both use the same names). Linux delivers SIGKILL to the child when the parent dies;
    a parent that died before this call is caught by the pid check."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


class Progress:
    """The child's side of the progress pipe: ``report(done, total)``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._last = 0.0

    def report(self, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = now
        try:
            os.write(self.fd, b"%d %d\n" % (done, total))
        except OSError:
            pass


@dataclass
class Child:
    pid: int
    kind: str  # "save" or "rewrite"
    started_ms: int
    read_fd: int
    fork_usec: int = 0  # how long the parent was stopped by fork() (INFO latest_fork_usec)
    done: int = 0
    total: int = 0
    info: dict[str, object] = field(default_factory=dict)
    _partial: bytes = b""

    def poll_progress(self) -> None:
        """Read what the child reported (non-blocking)."""
        while True:
            try:
                data = os.read(self.read_fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                return
            if not data:
                return
            lines = (self._partial + data).split(b"\n")
            self._partial = lines.pop()
            for line in lines:
                parts = line.split()
                if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                    self.done, self.total = int(parts[0]), int(parts[1])

    def reap(self) -> int | None:
        """The exit code once the child ended (a signal gives 128 + signum), else None."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return 1
        if pid == 0:
            return None
        self.poll_progress()
        os.close(self.read_fd)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.waitstatus_to_exitcode(status)

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGUSR1)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            os.close(self.read_fd)
        except OSError:
            pass


def fork(kind: str, work: Callable[[Progress], None], now_ms: int) -> Child:
    """Run ``work`` in a child process; the child exits 0 when it returns, 1 when it
    raises. Raises OSError when the fork fails."""
    r, w = os.pipe()
    parent = os.getpid()
    t0 = time.perf_counter_ns()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            _die_with_parent(parent)
            os.close(r)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
                signal.signal(sig, signal.SIG_DFL)
            gc.disable()  # walking every object would copy every page
            work(Progress(w))
            code = 0
        except BaseException as e:  # noqa: BLE001 - the child must always exit
            try:
                os.write(2, f"{kind} child failed: {e!r}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    fork_usec = (time.perf_counter_ns() - t0) // 1000
    os.close(w)
    os.set_blocking(r, False)
    return Child(pid=pid, kind=kind, started_ms=now_ms, read_fd=r, fork_usec=fork_usec)
