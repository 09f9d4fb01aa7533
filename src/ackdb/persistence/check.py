"""``ackdb check-aof [--fix] FILE`` and ``ackdb check-snapshot FILE``.

Owns: verifying persistence files offline and telling a person what is wrong and what to
do, in the manner of redis-check-aof / redis-check-rdb. ``--fix`` cuts an AOF file at the
last intact command; the bytes cut off are kept beside it (``FILE.cut-<unix time>``), so
fixing never destroys anything. A manifest checks every file it lists; only the last
incremental file may be fixed by truncation (a hole in the middle cannot be repaired by
cutting, as Redis also refuses).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import TextIO

from . import manifest as mf
from . import snapshot as snap
from .aofread import AofFormatError, AofReader

USAGE_AOF = "Usage: ackdb check-aof [--fix] <file.manifest|file.aof|file.ackdb>\n"
USAGE_SNAPSHOT = "Usage: ackdb check-snapshot <file>\n"


def check_snapshot_main(argv: list[str], out: TextIO = sys.stdout) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write(USAGE_SNAPSHOT)
        return 2
    return 0 if _check_snapshot(argv[0], out) else 1


def _check_snapshot(path: str, out: TextIO) -> bool:
    out.write(f"[offset 0] Checking snapshot file {path}\n")
    t0 = time.monotonic()
    try:
        with open(path, "rb", buffering=1 << 20) as f:
            loader = snap.Loader(f, None)
            for _ in loader.steps():
                pass
    except OSError as e:
        out.write(f"Cannot open {path}: {e.strerror}\n")
        return False
    except snap.SnapshotError as e:
        out.write(f"--- SNAPSHOT ERROR DETECTED ---\n[offset {e.offset}] {e}\n")
        out.write(
            "The snapshot is damaged and ackdb will refuse to start from it. Restore it "
            "from a backup or a replica, or move it away to start without it.\n"
        )
        return False
    meta = loader.meta
    out.write(
        f"[offset {os.path.getsize(path)}] Checksums OK: {loader.keys} keys, written by ackdb "
        f"{meta.get('ackdb', '?')}, replication id {meta.get('replid', '?')} offset "
        f"{meta.get('repl_offset', '?')} ({time.monotonic() - t0:.3f} s)\n"
    )
    out.write("\\o/ snapshot looks OK! \\o/\n")
    return True


def check_aof_main(argv: list[str], out: TextIO = sys.stdout) -> int:
    fix = "--fix" in argv
    rest = [a for a in argv if a != "--fix"]
    if len(rest) != 1 or rest[0].startswith("-"):
        sys.stderr.write(USAGE_AOF)
        return 2
    path = rest[0]
    if path.endswith(".manifest"):
        return 0 if _check_manifest(path, fix, out) else 1
    if path.endswith(".ackdb"):
        return 0 if _check_snapshot(path, out) else 1
    return 0 if _check_resp(path, fix, True, out) else 1


def _check_manifest(path: str, fix: bool, out: TextIO) -> bool:
    try:
        with open(path) as f:
            m = mf.parse(f.read(mf.MANIFEST_MAX_BYTES))
    except (OSError, UnicodeDecodeError, mf.ManifestError) as e:
        out.write(f"Invalid AOF manifest {path}: {e}\n")
        return False
    out.write(f"Start checking multi part AOF, manifest {path}\n")
    directory = os.path.dirname(path) or "."
    files = m.files
    ok = True
    for i, af in enumerate(files):
        fpath = os.path.join(directory, af.name)
        if not os.path.exists(fpath):
            out.write(f"AOF {fpath} listed in the manifest does not exist\n")
            return False
        if af.kind == "b" and af.name.endswith(".ackdb"):
            good = _check_snapshot(fpath, out)
        else:
            good = _check_resp(fpath, fix, i == len(files) - 1, out)
        ok = ok and good
        if not good:
            break
    out.write(f"All AOF files and manifest are {'valid' if ok else 'NOT valid'}\n")
    return ok


def _check_resp(path: str, fix: bool, last: bool, out: TextIO) -> bool:
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            reader = AofReader(f, size)
            for _ in reader.transactions():
                pass
            cut_at, why = reader.valid_bytes, "truncated (an incomplete last write)"
    except OSError as e:
        out.write(f"Cannot open {path}: {e.strerror}\n")
        return False
    except AofFormatError as e:
        cut_at, why = e.offset, f"corrupt ({e.msg})"
    diff = size - cut_at
    out.write(
        f"AOF analyzed: filename={path}, size={size}, ok_up_to={cut_at}, "
        f"commands={reader.commands}, diff={diff}\n"
    )
    if not diff:
        out.write(f"AOF {path} is valid\n")
        return True
    out.write(f"AOF {path} is {why} from byte offset {cut_at}.\n")
    if not fix:
        out.write("AOF is not valid. Use the --fix option to try fixing it.\n")
        return False
    if not last:
        out.write(
            "This is not the last file of the AOF: cutting it would drop the files after "
            "it. Restore it from a backup instead.\n"
        )
        return False
    kept = f"{path}.cut-{int(time.time())}"
    with open(path, "rb") as src, open(kept, "wb") as dst:
        src.seek(cut_at)
        shutil.copyfileobj(src, dst)
    with open(path, "r+b") as f:
        f.truncate(cut_at)
        f.flush()
        os.fsync(f.fileno())
    out.write(
        f"Successfully truncated AOF {path} to {cut_at} bytes; the {diff} bytes cut are in {kept}\n"
    )
    return True
