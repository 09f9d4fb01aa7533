"""The AOF's write and fsync accounting: a sans-IO core.

Owns: the ``appendfsync`` policy (``always`` / ``everysec`` / ``no``) and every decision
it implies -- whether a buffered write goes to the file now or waits behind a slow
background fsync, when ``everysec`` starts a background fsync and what it covers, what
counts as fsynced after an fsync succeeds -- and the marks WAITAOF and INFO read:

- ``mark``: the replication offset after the last effect buffered;
- ``written_mark`` / ``aof_offset``: the mark and the byte count the file holds;
- ``fsynced_mark`` / ``fsynced_offset``: what a successful fsync covered.

Errors: ``write_errno`` is set by a failed write and cleared by the next good one;
``fsync_broken`` (the errno of a failed fsync) stays set until a rewrite has saved the
dataset again (``on_recovered``): after a failed fsync the page cache may have dropped
data (Linux "fsyncgate"), so nothing written since can be trusted, and no fsync moves the
marks meanwhile. ``delayed_fsync`` counts writes that stopped waiting for a slow fsync.

Must never: touch files, clocks, threads or the event loop. Time comes in as ``now_ms``;
the shell (``persistence.aof.AofWriter``) does the writes and fsyncs and reports results.

Threads: the shell's background fsync thread calls ``background_fsync_finished`` only;
it makes single stores (a ``max`` of a mark, the pending error, the in-progress flag),
which are atomic under the GIL, and the event loop applies the error (``everysec``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# everysec: how long writes may wait for a slow background fsync before they go to the
# file anyway, in ms (Redis flushAppendOnlyFile: 2 s).
FSYNC_POSTPONE_MAX_MS = 2000
# everysec: the interval between background fsyncs, in ms (Redis: once a second).
EVERYSEC_INTERVAL_MS = 1000
# An error whose errno the OS did not give (EIO).
EIO = 5

Policy = Literal["always", "everysec", "no"]


@dataclass(frozen=True, slots=True)
class WriteNow:
    """Write the buffer to the file; ``delayed``: it stopped waiting for a slow fsync
    (log it: Redis's "Asynchronous AOF fsync is taking too long")."""

    delayed: bool = False


@dataclass(frozen=True, slots=True)
class Postpone:
    """Keep the buffer: a background fsync is running and writing would block behind it."""


@dataclass(frozen=True, slots=True)
class FsyncNow:
    """fsync in the event loop now (``always``), if anything written is not covered."""


@dataclass(frozen=True, slots=True)
class Fsync:
    """Start a background fsync of the current file covering ``mark`` and ``offset``."""

    mark: int
    offset: int


WriteDecision = WriteNow | Postpone
WRITE_NOW = WriteNow()
WRITE_DELAYED = WriteNow(delayed=True)
POSTPONE = Postpone()
FSYNC_NOW = FsyncNow()


class FsyncAccounting:
    """The marks and error states of one AOF writer (see the module docstring)."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.mark = 0
        self.written_mark = 0
        self.fsynced_mark = 0
        self.aof_offset = 0
        self.fsynced_offset = 0
        self.write_errno = 0
        self.fsync_broken = 0
        self.delayed_fsync = 0
        self.postponed_since_ms = 0
        self.last_fsync_ms = 0
        self.fsync_in_progress = False
        self.background_error = 0  # set by the fsync thread, applied by ``everysec``

    # -- the policy -----------------------------------------------------------------------

    def set_policy(self, policy: str) -> bool:
        """CONFIG SET appendfsync; True when what is written must be fsynced at once
        (switching to ``always``: from now on replies wait for the fsynced mark)."""
        self.policy = policy
        return policy == "always"

    @property
    def fsync_before_replies(self) -> bool:
        """``always``: every event-loop pass fsyncs what it wrote before any reply
        leaves (one fsync for all the pass's writes: group commit)."""
        return self.policy == "always"

    def durable_mark(self) -> int | None:
        """Under ``always``: replies to writes past this mark must wait; else None."""
        return self.fsynced_mark if self.policy == "always" else None

    def tick(self, now_ms: int) -> tuple[int, Fsync | FsyncNow | None]:
        """Every cron tick, after the buffer was written: the fsync work of the policy
        (``always``: in the loop; ``everysec``: see ``everysec``; ``no``: none) and,
        first, the errno of a background fsync that broke the AOF (0 if none; log it)."""
        if self.policy == "everysec":
            return self.everysec(now_ms)
        if self.policy == "always":
            return 0, FSYNC_NOW
        return 0, None

    def follow(self, offset: int) -> None:
        """The numbering of offsets moved to ``offset`` with nothing buffered."""
        self.mark = self.written_mark = self.fsynced_mark = offset

    # -- writes -------------------------------------------------------------------------

    def write_decision(self, now_ms: int, force: bool) -> WriteDecision:
        """Whether a non-empty buffer goes to the file now (``force``: a caller that
        must have it written, e.g. a rewrite's switch of files or a shutdown)."""
        if self.policy == "everysec" and not force and self.fsync_in_progress:
            # Writing now would block behind the fsync: wait, but not for ever (Redis).
            if not self.postponed_since_ms:
                self.postponed_since_ms = now_ms
                return POSTPONE
            if now_ms - self.postponed_since_ms < FSYNC_POSTPONE_MAX_MS:
                return POSTPONE
            self.delayed_fsync += 1
            self.postponed_since_ms = 0
            return WRITE_DELAYED
        self.postponed_since_ms = 0
        return WRITE_NOW

    def on_written(self, nbytes: int) -> bool:
        """The buffer reached the file; True when this ends a write error (log it)."""
        self.aof_offset += nbytes
        self.written_mark = self.mark
        solved = bool(self.write_errno)
        self.write_errno = 0
        return solved

    def on_write_failed(self, errno: int) -> bool:
        """A write failed (the buffer is kept); True when it is the first (log it)."""
        first = not self.write_errno
        self.write_errno = errno or EIO
        return first

    # -- fsyncs ---------------------------------------------------------------------------

    @property
    def fsync_needed(self) -> bool:
        """Whether something written is not yet covered by an fsync."""
        return self.fsynced_mark < self.written_mark or self.fsynced_offset < self.aof_offset

    @property
    def healthy(self) -> bool:
        return not self.fsync_broken

    def on_fsynced(self, mark: int, offset: int) -> None:
        """An fsync covering ``mark`` / ``offset`` succeeded; it counts only while no
        earlier fsync failed (what was written since then may be lost)."""
        if not self.fsync_broken:
            self.fsynced_mark = max(self.fsynced_mark, mark)
            self.fsynced_offset = max(self.fsynced_offset, offset)

    def fsynced_all_written(self) -> None:
        """An fsync of everything written succeeded (``always``, or a clean close)."""
        self.on_fsynced(self.written_mark, self.aof_offset)

    def on_fsync_failed(self, errno: int) -> bool:
        """An fsync failed; True when it breaks a healthy AOF (log it)."""
        first = not self.fsync_broken
        self.fsync_broken = errno or EIO
        return first

    def everysec(self, now_ms: int) -> tuple[int, Fsync | None]:
        """Every cron tick under ``everysec``: apply the background thread's error (the
        int: its errno when it broke a healthy AOF, to log; else 0), and once a second
        start a background fsync when something written is not covered yet."""
        broke = 0
        code = self.background_error
        if code:
            broke = code if self.on_fsync_failed(code) else 0
            self.background_error = 0
        if self.fsync_in_progress or now_ms - self.last_fsync_ms < EVERYSEC_INTERVAL_MS:
            return broke, None
        if not self.fsync_needed:
            return broke, None
        self.last_fsync_ms = now_ms
        self.fsync_in_progress = True
        return broke, Fsync(self.written_mark, self.aof_offset)

    def background_fsync_finished(self, mark: int, offset: int, errno: int) -> None:
        """The fsync thread's report (see "Threads" in the module docstring)."""
        if errno:
            self.background_error = errno
        else:
            self.on_fsynced(mark, offset)
        self.fsync_in_progress = False

    def on_recovered(self) -> bool:
        """A rewrite saved the dataset and the current file was fsynced: everything
        written is on disk again; True when this forgives a failed fsync (log it)."""
        was_broken = bool(self.fsync_broken)
        self.fsync_broken = 0
        self.fsynced_mark = self.written_mark
        self.fsynced_offset = self.aof_offset
        return was_broken

    def on_closed(self) -> None:
        """A final fsync at close succeeded."""
        if not self.fsync_broken:
            self.fsynced_mark = self.written_mark
