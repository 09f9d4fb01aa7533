"""Loading the dataset at start-up (and for DEBUG RELOAD): the AOF if on, else the snapshot.

Owns: which files to load, executing AOF commands through the command handlers, the
``loading`` state and its INFO fields, progress logs for large files, and the messages a
user can act on when a file is damaged:

- a truncated AOF tail (a crash mid-write) is cut off with a log line saying how many
  bytes, under ``aof-load-truncated yes``; under ``no`` the start is refused;
- corruption before the tail refuses the start, naming the file and byte offset and
  pointing to ``ackdb check-aof --fix``;
- a snapshot failing its checksum refuses the start with the offset of the bad frame.

``steps()`` is a generator: the shell serves clients between steps (they get
``-LOADING``), so a long load never looks like a hung server.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

from ..commands.functions import restore_libraries
from ..commands.table import TABLE
from ..engine.access import login
from ..engine.client import Client, NullConn
from ..persistence import manifest as mf
from ..persistence import snapshot as snap
from ..persistence.aofread import AofFormatError, AofReader
from ..persistence.dataset import DbTarget

# A step of loading runs at most this long before clients are served (ms).
STEP_MS = 20
# How often progress is logged (ms).
PROGRESS_LOG_MS = 2000


class LoadFailure(Exception):
    """The dataset cannot be loaded; the message says what to do."""


class Loader:
    def __init__(self, persist: Any) -> None:
        self.p = persist
        self.core = persist.core
        self.log = persist.log
        self.total_bytes = 0
        self.loaded_bytes = 0
        self.start_ms = 0
        self.keys = 0
        self._logged_ms = 0
        self._file_base = 0

    # -- state for INFO ------------------------------------------------------------------

    def info_fields(self) -> list[tuple[str, Any]]:
        now = time.time()
        elapsed = max(now - self.start_ms / 1000, 1e-3)
        perc = 100.0 * self.loaded_bytes / self.total_bytes if self.total_bytes else 0.0
        rate = self.loaded_bytes / elapsed
        eta = int((self.total_bytes - self.loaded_bytes) / rate) if rate else 1
        return [
            ("loading_start_time", self.start_ms // 1000),
            ("loading_total_bytes", self.total_bytes),
            ("loading_rdb_used_mem", 0),
            ("loading_loaded_bytes", self.loaded_bytes),
            ("loading_loaded_perc", f"{perc:.2f}"),
            ("loading_eta_seconds", eta),
        ]

    def _progress(self, what: str) -> None:
        now = int(time.time() * 1000)
        if now - self._logged_ms >= PROGRESS_LOG_MS and self.total_bytes:
            self._logged_ms = now
            self.log.notice(
                f"Loading {what}: {100 * self.loaded_bytes // self.total_bytes}% "
                f"({self.loaded_bytes} of {self.total_bytes} bytes, {self.keys} keys so far)"
            )

    # -- start-up --------------------------------------------------------------------------

    def steps(self) -> Iterator[None]:
        p = self.p
        self.start_ms = self._logged_ms = int(time.time() * 1000)
        t0 = time.monotonic()
        self._remove_stale_temp_files()
        if self.p.config.get("appendonly"):
            if os.path.exists(p.manifest_path):
                yield from self._load_aof()
                self.log.notice(
                    f"DB loaded from append only file: {time.monotonic() - t0:.3f} seconds"
                )
                return
            if os.path.exists(p.snapshot_path):
                # Better than Redis, which starts empty here: keep the snapshot's data
                # and build the AOF from it.
                yield from self.load_snapshot(
                    p.snapshot_path, as_primary=self._primary_at_start(), start_up=True
                )
                self.log.notice(
                    f"DB loaded from disk: {time.monotonic() - t0:.3f} seconds; no AOF yet, "
                    "creating it from the loaded data"
                )
            p.create_aof()
            return
        if os.path.exists(p.snapshot_path):
            yield from self.load_snapshot(
                p.snapshot_path, as_primary=self._primary_at_start(), start_up=True
            )
            self.log.notice(f"DB loaded from disk: {time.monotonic() - t0:.3f} seconds")

    def _primary_at_start(self) -> bool:
        """Start-up: the configuration says whether this server starts as a primary."""
        return self.p.config.get("replicaof") is None

    def _remove_stale_temp_files(self) -> None:
        """Delete the temp files (``files.atomic_write``: ``temp-<pid>-<name>``) that a
        killed server and its child (which dies with it) left unfinished: never loaded,
        they only take space. A file whose process still lives is left alone."""
        p = self.p
        spots = (
            (p.dir, re.compile(rf"temp-(\d+)-{re.escape(str(p.config.get('dbfilename')))}")),
            (p.dir, re.compile(r"temp-(\d+)-sync-.+\.ackdb")),  # full syncs (replication)
            (p.aof_dir, re.compile(rf"temp-(\d+)-{re.escape(p.aof_prefix)}\..+")),
        )
        for directory, pattern in spots:
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                m = pattern.fullmatch(name)
                if m is None or _alive(int(m.group(1))):
                    continue
                try:
                    os.unlink(os.path.join(directory, name))
                except OSError:
                    continue
                self.log.notice(f"Removed {name}, left unfinished by a stopped process")

    # -- snapshots --------------------------------------------------------------------------

    def load_snapshot(
        self, path: str, aof_base: bool = False, *, as_primary: bool = True, start_up: bool = False
    ) -> Iterator[None]:
        """Load the snapshot at ``path`` into the databases, one step per yield (start-up,
        DEBUG RELOAD, a replica's full sync).

        Keys whose time passed are dropped only by a primary loading a plain snapshot
        (Redis rdbLoad: a replica's primary expires them; an AOF base is continued by its
        commands); at start-up the primary's replicas must hear of them: each dropped key
        is kept in ``expired_at_load`` for the replication stream."""
        size = os.path.getsize(path)
        self.total_bytes += size
        expired_keys: list[tuple[int, bytes]] | None = [] if start_up and as_primary else None
        target = DbTarget(
            self.core.dbs,
            self.core.now_ms(),
            keep_expired=aof_base or not as_primary,
            expired_keys=None if aof_base else expired_keys,
        )
        deadline = time.monotonic() + STEP_MS / 1000
        base = self.loaded_bytes
        try:
            with open(path, "rb", buffering=1 << 20) as f:
                loader = snap.Loader(f, target)
                for done, keys in loader.steps():
                    self.loaded_bytes = base + done
                    self.keys = keys
                    self._progress("snapshot")
                    if time.monotonic() > deadline:
                        yield
                        deadline = time.monotonic() + STEP_MS / 1000
        except snap.SnapshotError as e:
            raise LoadFailure(
                f"The snapshot {path} cannot be loaded: {e}. Its data is damaged; ackdb will "
                "not start from it. Run `ackdb check-snapshot "
                f"{path}` for details, restore the file from a backup, or move it away to "
                "start empty."
            ) from e
        except ValueError as e:
            raise LoadFailure(f"The snapshot {path} cannot be loaded: {e}") from e
        target.finish()
        meta = loader.meta
        codes = meta.get("functions", [])
        try:
            restore_libraries(self.core, codes if isinstance(codes, list) else [])
        except ValueError as e:
            raise LoadFailure(f"The snapshot {path} cannot be loaded: {e}") from e
        if not aof_base:
            self.p.loaded_meta = meta
            if expired_keys is not None:
                self.p.expired_at_load = expired_keys
        self.p.last_load_keys = loader.keys - target.expired
        self.p.last_load_expired = target.expired
        self.loaded_bytes = base + size
        self.log.notice(
            f"Done loading {'AOF base' if aof_base else 'snapshot'}, keys loaded: "
            f"{loader.keys - target.expired}, keys expired: {target.expired}."
        )

    # -- the AOF ----------------------------------------------------------------------------

    def _load_aof(self) -> Iterator[None]:
        p = self.p
        try:
            with open(p.manifest_path) as f:
                m = mf.parse(f.read(mf.MANIFEST_MAX_BYTES))
        except (OSError, UnicodeDecodeError, mf.ManifestError) as e:
            raise LoadFailure(
                f"The AOF manifest {p.manifest_path} cannot be read: {e}. Run `ackdb "
                f"check-aof {p.manifest_path}`."
            ) from e
        if not m.incrs:
            raise LoadFailure(f"The AOF manifest {p.manifest_path} lists no incremental file.")
        for af in m.files:
            path = os.path.join(p.aof_dir, af.name)
            if not os.path.exists(path):
                raise LoadFailure(
                    f"The AOF file {path} listed in {p.manifest_path} does not exist."
                )
            self.total_bytes += os.path.getsize(path)
        files = m.files
        for i, af in enumerate(files):
            path = os.path.join(p.aof_dir, af.name)
            if af.kind == "b" and af.name.endswith(".ackdb"):
                yield from self.load_snapshot(path, aof_base=True)
            else:
                yield from self._load_resp(path, last=i == len(files) - 1)
        p.loaded_meta = p.take_aof_history(m)
        p.open_aof(m)
        if p.aof is not None and m.history:
            p.aof.forget_history()
        self.core.dirty = 0

    def _load_resp(self, path: str, last: bool) -> Iterator[None]:
        p = self.p
        size = os.path.getsize(path)
        core = self.core
        c = Client(0, core, NullConn(), "aof-loader", "", -1)
        login(c, None)  # the superuser: the AOF is replayed whatever the ACLs say
        c.kind = "aof"
        base = self.loaded_bytes
        deadline = time.monotonic() + STEP_MS / 1000
        lookup = TABLE.get
        with open(path, "rb") as f:
            reader = AofReader(f, size)
            try:
                for cmds, done in reader.batches():
                    for argv in cmds:
                        cmd = lookup(argv[0])
                        if cmd is not None and cmd.subcommands and len(argv) >= 2:
                            # XGROUP CREATE, XGROUP SETID... (an AOF rewrite of streams)
                            cmd = cmd.subcommands.get(argv[1].lower())
                        if cmd is None or cmd.subcommands or cmd.handler is None:
                            raise AofFormatError(
                                f"unknown command '{argv[0].decode('utf-8', 'replace')}'", done
                            )
                        try:
                            cmd.handler(c, argv)
                        except Exception:  # noqa: BLE001 - Redis ignores a failing command
                            pass
                        c.prop = None
                    self.loaded_bytes = base + done
                    if time.monotonic() > deadline:
                        self.keys = sum(len(db.data) for db in core.dbs)
                        self._progress("AOF")
                        yield
                        deadline = time.monotonic() + STEP_MS / 1000
            except AofFormatError as e:
                raise LoadFailure(
                    f"Bad file format reading the append only file {path} at byte offset "
                    f"{e.offset} ({e.msg}): make a backup of your AOF directory, then use "
                    f"`ackdb check-aof --fix {p.manifest_path}`."
                ) from e
        if reader.truncated_bytes:
            self._truncated(path, reader, last)
        self.loaded_bytes = base + size

    def _truncated(self, path: str, reader: AofReader, last: bool) -> None:
        p = self.p
        self.log.warning(f"!!! Warning: short read while loading the AOF file {path}!!!")
        if not last:
            raise LoadFailure(
                f"The AOF file {path} is truncated at byte offset {reader.valid_bytes}, and it "
                f"is not the last file of the AOF. Use `ackdb check-aof {p.manifest_path}`."
            )
        if not p.config.get("aof-load-truncated"):
            raise LoadFailure(
                f"Unexpected end of file reading the append only file {path} (the last "
                f"{reader.truncated_bytes} bytes, from byte offset {reader.valid_bytes}, are "
                "an incomplete command). You can: 1) Make a backup of your AOF directory, then "
                f"use `ackdb check-aof --fix {p.manifest_path}`. 2) Alternatively you can set "
                "the 'aof-load-truncated' configuration option to yes and restart the server."
            )
        with open(path, "r+b") as f:
            f.truncate(reader.valid_bytes)
            f.flush()
            os.fsync(f.fileno())
        self.log.warning(
            f"AOF {path} loaded anyway because aof-load-truncated is enabled: dropped the "
            f"last {reader.truncated_bytes} bytes (an incomplete last write, from byte "
            f"offset {reader.valid_bytes})"
        )


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, which a container's init may never reap, does not)."""
    if pid == os.getpid():
        return True
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                return f.read().rsplit(b")", 1)[-1].split()[:1] != [b"Z"]
        except FileNotFoundError:
            return False
        except OSError:
            pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
