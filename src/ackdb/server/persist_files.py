"""The files of persistence: paths, snapshot writing, manifests, history records.

Owns: where persistence's files live (``dir``/``dbfilename`` for snapshots;
``dir``/``appenddirname``/ for the AOF: ``appendfilename``.manifest plus the files it
lists, docs/persistence.md), writing the dataset as a snapshot or an AOF base (atomic
replacement), the manifest of an AOF written while the AOF is off, the temp files a
failed child leaves, and the replication-history record of a clean stop.

Decides nothing: ``server.persist.Persistence`` (a subclass) calls these when its
policy (``persistence.policy``) says so. Never forks, never touches the event loop.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, BinaryIO

from .. import __version__
from ..commands.functions import library_codes
from ..persistence import dataset
from ..persistence import manifest as mf
from ..persistence.aof import AofWriter
from ..persistence.child import Child, Progress
from ..persistence.files import DiskFaults, atomic_write, fsync_dir


def _now_ms() -> int:
    return int(time.time() * 1000)


class PersistenceFiles:
    core: Any
    config: Any
    log: Any
    faults: DiskFaults

    @property
    def dir(self) -> str:
        return str(self.config.get("dir"))

    @property
    def snapshot_path(self) -> str:
        return os.path.join(self.dir, self.config.get("dbfilename"))

    @property
    def aof_dir(self) -> str:
        return os.path.join(self.dir, self.config.get("appenddirname"))

    @property
    def aof_prefix(self) -> str:
        return str(self.config.get("appendfilename"))

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.aof_dir, self.aof_prefix + ".manifest")

    def _meta(self, aof_base: bool = False) -> dict[str, Any]:
        core = self.core
        meta: dict[str, Any] = {
            "ackdb": __version__,
            "ctime_ms": _now_ms(),
            "replid": core.replid,
            "repl_offset": core.master_repl_offset,
            "databases": len(core.dbs),
            "aof_base": aof_base,
            # Function libraries are part of the dataset (Redis saves them in the RDB).
            "functions": library_codes(core),
        }
        if core.repl is not None:
            # The history as of the moment the data is captured (in a child: the fork).
            meta.update(core.repl.saved_meta())
        return meta

    def write_snapshot_to(self, path: str, progress: Progress | None, meta: dict[str, Any]) -> None:
        """A snapshot for a replica's full sync: ``meta`` names the history it starts."""
        now = _now_ms()
        cb = progress.report if progress else None
        full = {**self._meta(), **meta}
        # Sent and deleted at once: no fsync, no rename (a crash leaves a temp file that
        # the next start removes).
        with open(path, "wb", buffering=1 << 20) as f:
            dataset.write_snapshot(
                f, self.core.dbs, full, now, cb, self.config.get("rdb-key-save-delay")
            )

    def write_dataset(self, f: BinaryIO) -> None:
        """The dataset as a snapshot into ``f``, in this process (ACKDB.DIVERGED)."""
        dataset.write_snapshot(f, self.core.dbs, self._meta(), _now_ms(), None, 0)

    def _write_snapshot(self, path: str, progress: Progress | None, aof_base: bool = False) -> None:
        """Write the dataset to ``path`` atomically: a snapshot, or with ``aof_base`` an
        AOF base (a snapshot, or RESP commands when ``aof-use-rdb-preamble no``)."""
        dbs = self.core.dbs
        now = _now_ms()
        delay = self.config.get("rdb-key-save-delay")
        cb = progress.report if progress else None
        if aof_base and not self.config.get("aof-use-rdb-preamble"):

            def produce(f: Any) -> None:
                loads = [[b"FUNCTION", b"LOAD", code] for code in library_codes(self.core)]
                dataset.write_resp(f, dbs, now, cb, delay, preamble=loads)
        else:

            def produce(f: Any) -> None:
                dataset.write_snapshot(f, dbs, self._meta(aof_base), now, cb, delay)

        atomic_write(path, produce, self.faults)

    def _read_manifest_or_empty(self) -> mf.Manifest:
        try:
            with open(self.manifest_path) as f:
                return mf.parse(f.read())
        except (OSError, mf.ManifestError):
            return mf.Manifest()

    def _install_detached(self, m: mf.Manifest, name: str, first_incr: str) -> None:
        """A rewrite made while the AOF is off finished: install ``name`` as the base of
        the detached manifest ``m`` (whose incremental file starts at ``first_incr``)."""
        mf.install_base(m, name, first_incr)
        old, m.history = m.history, []  # earlier history files go too
        text = m.dump().encode()
        atomic_write(self.manifest_path, lambda f: f.write(text))
        for f in old:
            try:
                os.unlink(os.path.join(self.aof_dir, f.name))
            except OSError:
                pass

    def _remove_temp(self, child: Child, base_name: str) -> None:
        """Delete the temp file a failed or killed child left (``files.atomic_write``
        names it ``temp-<child pid>-<name>``): a snapshot's as well as a rewrite's
        (``base_name``: the base file it was writing)."""
        if child.kind == "save":
            directory, name = self.dir, str(self.config.get("dbfilename"))
        else:
            directory, name = self.aof_dir, base_name
        try:
            os.unlink(os.path.join(directory, f"temp-{child.pid}-{name}"))
        except OSError:
            pass

    @property
    def history_path(self) -> str:
        return os.path.join(self.aof_dir, self.aof_prefix + ".history")

    def _save_aof_history(self, aof: AofWriter) -> None:
        """A clean stop with the AOF: record the replication history its data ends at,
        and the incremental file's name and size then, so a restart can continue the
        history partially (Redis cannot: the AOF carries no replication id). Anything
        appended later changes the size, and the record is then ignored."""
        repl = self.core.repl
        if repl is None or aof.fsync_broken or not aof.manifest.incrs:
            return
        incr = aof.manifest.incrs[-1].name
        try:
            size = os.path.getsize(os.path.join(self.aof_dir, incr))
            record = {**repl.saved_meta(), "incr": incr, "size": size}
            text = json.dumps(record).encode()
            atomic_write(self.history_path, lambda f: f.write(text))
        except OSError as e:
            self.log.warning(f"Could not record the replication history: {e.strerror or e}")

    def take_aof_history(self, m: mf.Manifest) -> dict[str, Any]:
        """The history recorded at the last clean stop, if the AOF ends exactly there
        (the record is removed: it describes one moment only)."""
        path = self.history_path
        try:
            with open(path, "rb") as f:
                record = json.loads(f.read(4096))
        except (OSError, ValueError):
            return {}
        try:
            os.unlink(path)
            fsync_dir(self.aof_dir)
        except OSError:
            pass
        if not isinstance(record, dict) or not m.incrs:
            return {}
        incr = m.incrs[-1].name
        try:
            size = os.path.getsize(os.path.join(self.aof_dir, incr))
        except OSError:
            return {}
        if record.get("incr") != incr or record.get("size") != size:
            self.log.notice("The recorded replication history does not match the AOF: ignored")
            return {}
        return record
