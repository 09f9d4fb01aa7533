"""What a node's disk really holds: an fsync log and a power-loss simulation.

SIGKILL loses nothing the process wrote (the kernel keeps its page cache), so a test that
only kills processes cannot tell an fsynced write from one that was merely written. The
oracle can: ``fsync_oracle/sitecustomize.py`` logs the size of each file at every
successful fsync, and ``power_loss(dir, log)`` truncates every file under ``dir`` to the
largest size recorded for it (by device and inode, so renames are followed), or to zero
when it was never fsynced — the most a power failure may take. Restarting the node on
what is left shows what an acknowledgement that claims the disk was really worth.

Limits (stated, not hidden): a rename is assumed durable once made (directory fsyncs are
not modelled), and the size read just before an fsync is a lower bound of what it
covered, so the simulation errs toward losing more, never less.
"""

from __future__ import annotations

import os
from pathlib import Path

ORACLE_DIR = Path(__file__).parent / "fsync_oracle"


def durable_sizes(log: Path) -> dict[tuple[int, int], int]:
    sizes: dict[tuple[int, int], int] = {}
    if not log.exists():
        return sizes
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue  # a line cut by SIGKILL
        dev, ino, size = (int(p) for p in parts)
        sizes[(dev, ino)] = max(sizes.get((dev, ino), 0), size)
    return sizes


def power_loss(data_dir: Path, log: Path) -> dict[str, tuple[int, int]]:
    """Truncate every regular file under ``data_dir`` to its durable size; returns
    {relative path: (size before, size after)} for the files that shrank."""
    sizes = durable_sizes(log)
    cut: dict[str, tuple[int, int]] = {}
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            p = Path(root) / name
            st = p.stat()
            keep = sizes.get((st.st_dev, st.st_ino), 0)
            if st.st_size > keep:
                os.truncate(p, keep)
                cut[str(p.relative_to(data_dir))] = (st.st_size, keep)
    return cut
