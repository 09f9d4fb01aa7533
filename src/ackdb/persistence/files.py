"""Files on disk: atomic replacement, directory fsync, and injected disk faults.

Owns: the one way ackdb replaces a file (write a temp file in the same directory, fsync
it, rename over the target, fsync the directory) so a crash at any instant leaves either
the old or the new file, never a mix; and ``DiskFaults``, the switch tests use to make
writes or fsyncs fail on a live server (``DEBUG DISK-FAULT``) without a full disk.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import BinaryIO

# Buffer of the file objects snapshots are written through (bytes).
WRITE_BUFFER_BYTES = 1 << 20


class DiskFaults:
    """Errors to inject, by kind: ``aof-write``, ``aof-fsync``, ``save``; 0 = none."""

    KINDS = ("aof-write", "aof-fsync", "save")

    def __init__(self) -> None:
        self.errnos: dict[str, int] = dict.fromkeys(self.KINDS, 0)

    def set(self, kind: str, name: str) -> None:
        if kind not in self.errnos:
            raise ValueError(f"unknown fault kind '{kind}'")
        if name.lower() == "off":
            self.errnos[kind] = 0
            return
        code = getattr(errno, name.upper(), None)
        if not isinstance(code, int):
            raise ValueError(f"unknown errno name '{name}'")
        self.errnos[kind] = code

    def check(self, kind: str) -> None:
        code = self.errnos[kind]
        if code:
            raise OSError(code, os.strerror(code))


NO_FAULTS = DiskFaults()


def fsync_dir(path: str) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: str, produce: Callable[[BinaryIO], object], faults: DiskFaults = NO_FAULTS
) -> int:
    """Write ``path`` through ``produce(file)`` atomically; returns the size written.

    The temp file is removed if anything fails, and the old file stays untouched."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f"temp-{os.getpid()}-{os.path.basename(path)}")
    try:
        with open(tmp, "wb", buffering=WRITE_BUFFER_BYTES) as f:
            produce(f)
            f.flush()
            faults.check("save")
            os.fsync(f.fileno())
            size = f.tell()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)
    return size
