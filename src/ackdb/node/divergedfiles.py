"""The files of divergent writes on a node's disk (issue 15, docs/failover.md): where they
are, keeping them when their shard's directory goes, listing and clearing them.

Owns the node's two places for them --

    DATA/shards/<db uid>-<shard>/diverged-<epoch>.aof|rdb   saved by ACKDB.DIVERGED in
                                                           the shard's own directory
    DATA/diverged/<db uid>-<shard>/diverged-<epoch>.aof|rdb kept from a shard directory
                                                           removed from this node

-- and nothing else: never reads the files, never decides which to keep (the
supervisor's ``RemoveDir.keep_diverged`` does). Blocking file operations: the shell runs
``remove_unit_dir`` in an executor; listing and clearing are a directory scan and
unlinks, done inline (a handful of files).
"""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass

from ackdb.cluster.retirecheck import parse_shard_unit

KEPT_DIR = "diverged"
PREFIX = "diverged-"


@dataclass(frozen=True, slots=True)
class DivergedFile:
    db_uid: int
    shard: int
    epoch: int | None  # from the name (the agents tag files with the fork's epoch)
    path: str  # absolute
    size: int  # bytes
    kept: bool  # in DATA/diverged/ (its shard directory is gone from this node)


def epoch_of(path: str) -> int | None:
    """The epoch in ``diverged-<epoch>.<ext>`` (a copy kept twice: ``...-<epoch>.1.<ext>``)."""
    tag = os.path.basename(path)[len(PREFIX) :].split(".", 1)[0]
    return int(tag) if tag.isdigit() else None


def find(base: str) -> list[DivergedFile]:
    """Every file of divergent writes under the data directory ``base``, sorted."""
    out = []
    for kind, kept in (("shards", False), (KEPT_DIR, True)):
        pattern = os.path.join(glob.escape(base), kind, "*", PREFIX + "*")
        for path in sorted(glob.glob(pattern)):
            parsed = parse_shard_unit("shards/" + os.path.basename(os.path.dirname(path)))
            if parsed is None or path.endswith(".tmp"):
                continue
            try:
                size = os.path.getsize(path)
            except OSError:
                continue  # removed meanwhile
            out.append(DivergedFile(parsed[0], parsed[1], epoch_of(path), path, size, kept))
    return out


def keep(base: str, unit: str) -> list[tuple[str, str]]:
    """Move the unit's files of divergent writes to ``DATA/diverged/<uid>-<shard>/``
    (never over an older one: a second copy of a name gets ``.1``, ``.2``...).
    Returns (old path, new path) of each file moved."""
    src = os.path.join(base, unit)
    dest = os.path.join(base, KEPT_DIR, os.path.basename(unit))
    moved = []
    for path in sorted(glob.glob(os.path.join(glob.escape(src), PREFIX + "*"))):
        if path.endswith(".tmp"):
            continue
        os.makedirs(dest, mode=0o700, exist_ok=True)
        name = os.path.basename(path)
        target, n = os.path.join(dest, name), 0
        while os.path.exists(target):
            n += 1
            stem, dot, ext = name.rpartition(".")
            target = os.path.join(dest, f"{stem}.{n}{dot}{ext}" if dot else f"{name}.{n}")
        os.rename(path, target)
        moved.append((path, target))
    return moved


def remove_unit_dir(base: str, unit: str, keep_diverged: bool) -> list[tuple[str, str]]:
    """Remove the unit's directory; first keep its files of divergent writes when asked."""
    moved = keep(base, unit) if keep_diverged else []
    shutil.rmtree(os.path.join(base, unit), ignore_errors=True)
    return moved


def clear(files: list[DivergedFile], which: str | None) -> list[str]:
    """Remove ``files`` -- all of them when ``which`` is None, else those whose path or
    file name is ``which`` -- and the kept directories left empty. The paths removed."""
    gone = []
    for f in files:
        if which is not None and which not in (f.path, os.path.basename(f.path)):
            continue
        try:
            os.unlink(f.path)
        except FileNotFoundError:
            continue
        gone.append(f.path)
        if f.kept:
            try:
                os.rmdir(os.path.dirname(f.path))
            except OSError:
                pass  # other files remain
    return gone
