"""End to end: persistence of a real ``ackdb server`` across restarts (issue 3).

Restart round trips (AOF under ``always`` and ``everysec``, snapshots by save rule and by
SAVE, rewrites under a concurrent writer, RESP bases, turning the AOF on and off at
runtime), the INFO persistence fields and the replies of SAVE / BGSAVE / BGREWRITEAOF
while a child runs, damaged files at start-up (truncated and corrupt AOF files, a
snapshot with a flipped byte, a cut MULTI/EXEC), and the ``ackdb check-aof`` /
``ackdb check-snapshot`` tools. Crashes (SIGKILL) and disk faults are in test_crash.py,
which shares the helpers defined here.

Every server runs on its own data directory under pytest's tmp_path; a restart reuses
the directory and the port. Equality of datasets is DEBUG DIGEST (which covers every
type, and whether a key has a TTL).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ackdb.resp.replies import NEED_DATA, ReplyReader
from ackdb.resp.request import pack
from conftest import ServerProcess, ackdb_argv, free_port, wait_until

pytestmark = pytest.mark.e2e

# A refused start or a check tool must finish within this (s).
COMMAND_TIMEOUT_S = 30.0
# How long a background save or rewrite of the small datasets here may take (s).
CHILD_TIMEOUT_S = 20.0
AOF_DIR = "appendonlydir"
MANIFEST = "appendonly.aof.manifest"
CHECK_AOF_FIX = "ackdb check-aof --fix"


# -- helpers shared with test_crash.py ------------------------------------------------------


class DataDir:
    """A data directory and the ackdb processes started on it, one at a time, always on
    the same port. ``args`` are directives every start gets; ``start(*extra)`` adds more
    (later directives override earlier ones)."""

    def __init__(self, root: Path, *args: str, data: Path | None = None) -> None:
        self.root = root  # logs and the working directory
        self.dir = data or root / "data"
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.args = list(args)
        self.proc: ServerProcess | None = None
        self.starts = 0

    @property
    def aof_dir(self) -> Path:
        return self.dir / AOF_DIR

    @property
    def manifest(self) -> Path:
        return self.aof_dir / MANIFEST

    @property
    def snapshot(self) -> Path:
        return self.dir / "dump.rdb"

    def argv(self, *extra: str) -> list[str]:
        return ackdb_argv(
            self.port, "--dir", str(self.dir), "--enable-debug-command", "yes", *self.args, *extra
        )

    def start(self, *extra: str) -> redis.Redis:
        if self.proc is not None:
            assert self.proc.proc.poll() is not None, "already running"
            self.proc.stop()  # closes the log of the exited process
        self.starts += 1
        self.proc = ServerProcess(self.argv(*extra), self.port, self.root, f"ackdb{self.starts}")
        r = self.client()
        wait_until(lambda: info(r)["loading"] == 0, CHILD_TIMEOUT_S)
        return r

    def client(self, **kw: Any) -> redis.Redis:
        # No retries: a test must see every failed request, never a silent resend.
        kw.setdefault("socket_timeout", 10)
        return redis.Redis(port=self.port, retry=Retry(NoBackoff(), 0), **kw)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing more is written or fsynced."""
        assert self.proc is not None
        self.proc.stop(signal.SIGKILL)

    def stop(self) -> int | None:
        """SIGTERM: the clean shutdown (final save when save rules exist)."""
        assert self.proc is not None
        return self.proc.stop()

    def log(self) -> str:
        assert self.proc is not None
        return self.proc.log()

    def refused_start(self, *extra: str) -> tuple[int, str]:
        """Start a server expected to refuse (it exits): its exit code and output."""
        done = subprocess.run(
            self.argv(*extra),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        return done.returncode, done.stdout.decode(errors="replace")

    def manifest_entries(self) -> list[tuple[str, str]]:
        """(file name, type) of every manifest line."""
        out = []
        for line in self.manifest.read_text().splitlines():
            words = line.split()
            fields = dict(zip(words[0::2], words[1::2], strict=True))
            out.append((fields["file"], fields["type"]))
        return out

    def last_incr(self) -> Path:
        incrs = [name for name, kind in self.manifest_entries() if kind == "i"]
        return self.aof_dir / incrs[-1]


@pytest.fixture
def datadir(tmp_path: Path) -> Iterator[DataDir]:
    d = DataDir(tmp_path)
    yield d
    if d.proc is not None:
        d.proc.stop(signal.SIGKILL)


def info(r: redis.Redis, section: str = "persistence") -> dict[str, Any]:
    return r.info(section)  # type: ignore[no-any-return]


def digest(r: redis.Redis) -> bytes:
    return r.execute_command("DEBUG", "DIGEST")  # type: ignore[no-any-return]


def raw(port: int, *args: str | bytes, timeout_s: float = 10.0) -> Any:
    """One command on a fresh connection, the reply as hiredis parses it (an error is a
    ``hiredis.ReplyError`` whose str is the exact text, prefix included)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(encode(*args))
        return read_reply(s)


def encode(*args: str | bytes) -> bytes:
    return pack(*args)


def read_reply(s: socket.socket) -> Any:
    reader = ReplyReader()
    while True:
        reply = reader.get()
        if reply is not NEED_DATA:
            return reply
        data = s.recv(65536)
        if not data:
            raise ConnectionError("connection closed before the reply")
        reader.feed(data)


def wait_children_done(r: redis.Redis) -> None:
    """Until no save or rewrite runs or is scheduled."""

    def idle() -> bool:
        i = info(r)
        return not (
            i["rdb_bgsave_in_progress"]
            or i["aof_rewrite_in_progress"]
            or i["aof_rewrite_scheduled"]
        )

    wait_until(idle, CHILD_TIMEOUT_S)


def aof_written(r: redis.Redis) -> None:
    """Until the AOF buffer is written to the file. Under ``everysec`` a write may wait
    (up to 2 s) behind a background fsync while its reply is already sent: a SIGKILL then
    loses it, as in Redis. Tests that compare digests across a SIGKILL wait for this."""
    wait_until(lambda: info(r)["aof_buffer_length"] == 0, 5)


def write_every_type(r: redis.Redis, prefix: str = "", n: int = 12) -> None:
    """Keys of every type, some with a TTL, some binary, collections past 64 elements
    (several commands per key in a RESP base)."""
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.set(f"{prefix}str:{i}", f"v{i}" * (i + 1))
        p.set(f"{prefix}ttl:{i}", i, ex=3600 + i)
        p.hset(f"{prefix}hash:{i}", mapping={f"f{j}": j for j in range(i + 1)})
        p.rpush(f"{prefix}list:{i}", *range(i + 1))
        p.sadd(f"{prefix}set:{i}", *range(i + 1))
        p.zadd(f"{prefix}zset:{i}", {f"m{j}": j / 3 for j in range(i + 1)})
    p.set(prefix.encode() + bytes(range(256)), bytes(range(255, -1, -1)))
    p.hset(f"{prefix}bighash", mapping={f"f{j}": "x" * j for j in range(200)})
    p.rpush(f"{prefix}biglist", *range(300))
    p.sadd(f"{prefix}bigset", *range(300))
    p.zadd(f"{prefix}bigzset", {f"m{j}": j * 0.5 for j in range(150)})
    p.zadd(f"{prefix}infzset", {"lo": float("-inf"), "hi": float("inf"), "mid": 1e-300})
    p.expire(f"{prefix}hash:3", 7200)
    p.pexpire(f"{prefix}zset:4", 9_000_000)
    p.incrbyfloat(f"{prefix}float", 0.1)
    p.incrbyfloat(f"{prefix}float", 0.2)
    p.execute()


def run_cli(*args: str) -> tuple[int, str]:
    """``ackdb <args>`` (check-aof, check-snapshot): exit code and output."""
    done = subprocess.run(
        [sys.executable, "-m", "ackdb", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    return done.returncode, done.stdout.decode(errors="replace")


def child_pids(log: str, what: str) -> list[int]:
    """Pids of the children the log says were started (``what``: "saving", "rewriting")."""
    return [int(m) for m in re.findall(rf"{what} started by pid (\d+)", log)]


def pid_gone(pid: int) -> bool:
    """Whether a process has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


# -- restart round trips ----------------------------------------------------------------


@pytest.mark.parametrize("policy", ["always", "everysec"])
def test_aof_restart_round_trip(datadir: DataDir, policy: str) -> None:
    datadir.args += ["--appendonly", "yes", "--appendfsync", policy]
    r = datadir.start()
    i = info(r)
    assert (i["aof_enabled"], i["loading"], i["aof_rewrite_in_progress"]) == (1, 0, 0)
    write_every_type(r)
    r.delete("str:0")
    r.lpop("list:5")
    r.hdel("hash:6", "f0")
    r.srem("set:7", "0")
    r.zrem("zset:8", "m0")
    with r.pipeline(transaction=True) as p:
        p.set("tx:a", 1)
        p.incr("tx:b")
        p.execute()
    i = info(r)
    assert i["aof_written_offset"] > 0
    if policy == "always":
        # Every acknowledged write is on disk before its reply.
        assert i["aof_fsynced_offset"] == i["aof_written_offset"]
    else:
        wait_until(lambda: info(r)["aof_fsynced_offset"] == info(r)["aof_written_offset"], 5)
    before = digest(r)
    pttl = r.pttl("ttl:5")
    assert datadir.stop() == 0
    assert "Calling fsync() on the AOF file." in datadir.log()

    r = datadir.start()
    assert digest(r) == before
    assert 0 < r.pttl("ttl:5") <= pttl  # absolute expiry, not reset by the load
    assert r.get(bytes(range(256))) == bytes(range(255, -1, -1))
    assert r.zscore("infzset", "hi") == float("inf")
    i = info(r)
    assert (i["aof_enabled"], i["loading"]) == (1, 0)
    assert "DB loaded from append only file" in datadir.log()
    # Appending continues where the loaded file ended.
    r.set("after-restart", 1)
    aof_written(r)
    before = digest(r)
    datadir.kill()
    assert digest(datadir.start()) == before


def test_snapshot_restart_round_trip_by_save_rule(datadir: DataDir) -> None:
    datadir.args += ["--save", "3600", "1"]
    r = datadir.start()
    assert info(r)["aof_enabled"] == 0
    write_every_type(r)
    assert info(r)["rdb_changes_since_last_save"] > 0
    before = digest(r)
    assert datadir.stop() == 0  # save rules exist: the shutdown saves
    assert "Saving the final snapshot before exiting." in datadir.log()
    assert "DB saved on disk" in datadir.log()
    assert datadir.snapshot.exists()
    assert not list(datadir.dir.glob("temp-*"))

    r = datadir.start()
    assert digest(r) == before
    i = info(r)
    assert (i["loading"], i["rdb_changes_since_last_save"]) == (0, 0)
    assert i["rdb_last_load_keys_loaded"] == r.dbsize()
    assert "DB loaded from disk" in datadir.log()


def test_snapshot_restart_after_explicit_save(datadir: DataDir) -> None:
    r = datadir.start()
    write_every_type(r)
    assert r.save()
    saved = digest(r)
    i = info(r)
    assert (i["rdb_changes_since_last_save"], i["rdb_saves"]) == (0, 1)
    r.set("after-save", 1)
    assert info(r)["rdb_changes_since_last_save"] == 1
    datadir.kill()  # no final save: the write after SAVE is lost, as it must be

    r = datadir.start()
    assert digest(r) == saved
    assert r.get("after-save") is None
    # Without save rules a clean shutdown does not save either.
    r.set("unsaved", 1)
    assert datadir.stop() == 0
    assert digest(datadir.start()) == saved


def test_bgsave_moves_lastsave_and_info_fields(datadir: DataDir) -> None:
    r = datadir.start()
    r.set("a", 1)
    first = r.lastsave()
    i = info(r)
    assert (i["rdb_bgsave_in_progress"], i["rdb_saves"], i["rdb_last_bgsave_status"]) == (
        0,
        0,
        "ok",
    )
    # LASTSAVE counts seconds: let the clock pass the second of the start.
    wait_until(lambda: int(time.time()) > first.timestamp(), 3)
    r.config_set("rdb-key-save-delay", 200_000)  # 0.2 s per key: observably in progress
    assert raw(datadir.port, "BGSAVE") == b"Background saving started"
    assert info(r)["rdb_bgsave_in_progress"] == 1
    err = raw(datadir.port, "BGSAVE")
    assert str(err) == "ERR Background save already in progress"
    err = raw(datadir.port, "SAVE")
    assert str(err) == "ERR Background save already in progress"
    r.config_set("rdb-key-save-delay", 0)
    wait_children_done(r)
    i = info(r)
    assert (i["rdb_bgsave_in_progress"], i["rdb_saves"], i["rdb_last_bgsave_status"]) == (
        0,
        1,
        "ok",
    )
    assert i["rdb_changes_since_last_save"] == 0
    assert i["rdb_last_bgsave_time_sec"] >= 0
    assert r.lastsave() > first
    assert "Background saving terminated with success" in datadir.log()
    assert not list(datadir.dir.glob("temp-*"))
    r.set("b", 2)
    assert info(r)["rdb_changes_since_last_save"] == 1


def test_child_busy_replies_and_bgsave_schedule(datadir: DataDir) -> None:
    datadir.args += ["--appendonly", "yes"]
    r = datadir.start()
    r.mset({f"k{i}": i for i in range(10)})
    # 10 keys at 80 ms each: the rewrite runs for about 0.8 s.
    r.config_set("rdb-key-save-delay", 80_000)
    assert raw(datadir.port, "BGREWRITEAOF") == b"Background append only file rewriting started"
    i = info(r)
    assert (i["aof_rewrite_in_progress"], i["rdb_bgsave_in_progress"]) == (1, 0)
    assert str(raw(datadir.port, "BGREWRITEAOF")) == (
        "ERR Background append only file rewriting already in progress"
    )
    assert str(raw(datadir.port, "BGSAVE")) == (
        "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE "
        "SCHEDULE in order to schedule a BGSAVE whenever possible."
    )
    assert raw(datadir.port, "BGSAVE", "SCHEDULE") == b"Background saving scheduled"
    # Writes go on while the child runs.
    r.set("during-rewrite", 1)
    r.config_set("rdb-key-save-delay", 0)  # the scheduled BGSAVE forks later, fast
    wait_until(lambda: info(r)["rdb_saves"] == 1, CHILD_TIMEOUT_S)
    wait_children_done(r)
    i = info(r)
    assert (i["aof_rewrites"], i["aof_last_bgrewrite_status"], i["rdb_last_bgsave_status"]) == (
        1,
        "ok",
        "ok",
    )
    assert datadir.snapshot.exists()

    # The other way round: a rewrite asked for while a BGSAVE runs is scheduled.
    r.config_set("rdb-key-save-delay", 80_000)
    assert raw(datadir.port, "BGSAVE") == b"Background saving started"
    assert raw(datadir.port, "BGREWRITEAOF") == (b"Background append only file rewriting scheduled")
    assert info(r)["aof_rewrite_scheduled"] == 1
    r.config_set("rdb-key-save-delay", 0)
    wait_until(lambda: info(r)["aof_rewrites"] == 2, CHILD_TIMEOUT_S)
    wait_children_done(r)
    aof_written(r)
    before = digest(r)
    datadir.kill()
    assert digest(datadir.start()) == before


def test_bgrewriteaof_under_concurrent_writer(datadir: DataDir) -> None:
    datadir.args += ["--appendonly", "yes", "--appendfsync", "everysec"]
    r = datadir.start()
    write_every_type(r)
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = [0]

    def writer() -> None:
        w = datadir.client()
        try:
            i = 0
            while not stop.is_set():
                with w.pipeline(transaction=False) as p:
                    p.set(f"w:{i % 300}", i)
                    p.incr("w:counter")
                    p.hset("w:hash", f"f{i % 50}", i)
                    p.rpush("w:list", i)
                    if i % 7 == 0:
                        p.lpop("w:list")
                    p.zincrby("w:zset", 1.5, f"m{i % 20}")
                    p.execute()
                i += 1
                counts[0] = i
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        # Slow the child a little so writes land while each rewrite runs.
        r.config_set("rdb-key-save-delay", 300)
        for n in (1, 2, 3):
            wait_until(lambda n=n: counts[0] >= 50 * n, 10)  # type: ignore[misc]
            assert r.bgrewriteaof()
            wait_until(lambda n=n: info(r)["aof_rewrites"] == n, CHILD_TIMEOUT_S)  # type: ignore[misc]
            # The new base replaced the old files: one base, one incr, no history.
            kinds = [k for _, k in datadir.manifest_entries()]
            assert kinds == ["b", "i"], kinds
    finally:
        stop.set()
        t.join(10)
    assert not errors, errors
    assert info(r)["aof_last_bgrewrite_status"] == "ok"
    names = {p.name for p in datadir.aof_dir.iterdir()}
    assert names == {MANIFEST, *(n for n, _ in datadir.manifest_entries())}
    aof_written(r)
    before = digest(r)
    datadir.kill()
    r = datadir.start()
    assert digest(r) == before
    assert int(r.get("w:counter")) == counts[0]


def test_aof_base_without_snapshot_preamble(datadir: DataDir) -> None:
    datadir.args += ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]
    r = datadir.start()
    bases = [n for n, k in datadir.manifest_entries() if k == "b"]
    assert len(bases) == 1 and bases[0].endswith(".base.aof")
    write_every_type(r)
    assert r.bgrewriteaof()
    wait_until(lambda: info(r)["aof_rewrites"] == 1, CHILD_TIMEOUT_S)
    base = [n for n, k in datadir.manifest_entries() if k == "b"][0]
    assert base.endswith(".base.aof")
    data = (datadir.aof_dir / base).read_bytes()
    assert data.startswith(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n")
    assert b"PEXPIREAT" in data and b"ZADD" in data
    r.set("after-rewrite", 1)
    aof_written(r)
    before = digest(r)
    datadir.kill()
    r = datadir.start()
    assert digest(r) == before
    # A check of the whole AOF passes too.
    code, out = run_cli("check-aof", str(datadir.manifest))
    assert code == 0, out
    assert "All AOF files and manifest are valid" in out


def test_config_set_appendonly_yes_on_populated_server(datadir: DataDir) -> None:
    r = datadir.start()
    write_every_type(r)
    assert not datadir.aof_dir.exists()
    r.config_set("rdb-key-save-delay", 2000)
    assert r.config_set("appendonly", "yes")
    assert info(r)["aof_enabled"] == 1
    r.set("during-first-rewrite", 1)
    r.config_set("rdb-key-save-delay", 0)

    def has_base() -> bool:
        return (
            info(r)["aof_rewrite_in_progress"] == 0
            and datadir.manifest.exists()
            and any(k == "b" for _, k in datadir.manifest_entries())
        )

    wait_until(has_base, CHILD_TIMEOUT_S)
    r.set("after-first-rewrite", 1)
    aof_written(r)
    before = digest(r)
    datadir.kill()
    r = datadir.start("--appendonly", "yes")
    assert digest(r) == before
    assert r.get("during-first-rewrite") == b"1"


def test_config_set_appendonly_yes_retries_a_failed_first_rewrite(datadir: DataDir) -> None:
    r = datadir.start()
    r.mset({f"k{i}": i for i in range(30)})
    r.config_set("rdb-key-save-delay", 20_000)
    assert r.config_set("appendonly", "yes")
    wait_until(lambda: child_pids(datadir.log(), "rewriting"), 5)
    (first,) = child_pids(datadir.log(), "rewriting")
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: info(r)["aof_last_bgrewrite_status"] == "err", 5)
    r.set("between", 1)
    # Without a base, no manifest may list the new files: a restart would take the
    # incremental file alone for the whole dataset.
    assert not datadir.manifest.exists()
    # By hand or by the server's own retry (whichever comes first), a new attempt runs.
    reply = raw(datadir.port, "BGREWRITEAOF")
    assert reply == b"Background append only file rewriting started" or str(reply) == (
        "ERR Background append only file rewriting already in progress"
    )
    assert info(r)["aof_rewrite_in_progress"] == 1
    assert not datadir.manifest.exists()
    r.config_set("rdb-key-save-delay", 0)
    wait_until(lambda: info(r)["aof_rewrites"] == 1, CHILD_TIMEOUT_S)
    wait_children_done(r)
    assert [k for _, k in datadir.manifest_entries()] == ["b", "i"]
    r.set("after", 1)
    aof_written(r)
    before = digest(r)
    datadir.kill()
    assert digest(datadir.start("--appendonly", "yes")) == before


def test_config_set_appendonly_no_stops_appending(datadir: DataDir) -> None:
    datadir.args += ["--appendonly", "yes", "--appendfsync", "always"]
    r = datadir.start()
    r.set("kept", 1)
    incr = datadir.last_incr()
    assert r.config_set("appendonly", "no")
    assert info(r)["aof_enabled"] == 0
    size = incr.stat().st_size
    r.set("not-logged", 1)
    r.delete("kept")
    time.sleep(0.3)  # three cron ticks: nothing may reach the file meanwhile
    assert incr.stat().st_size == size
    datadir.kill()
    r = datadir.start()
    assert r.get("kept") == b"1"
    assert r.get("not-logged") is None


def test_appendonly_off_then_on_again_does_not_replay_old_commands(datadir: DataDir) -> None:
    """Commands of an earlier AOF must not come back when the AOF is turned on again:
    neither onto an emptied dataset nor over values changed while it was off."""
    datadir.args += ["--appendfsync", "always"]
    r = datadir.start("--appendonly", "yes")
    r.set("old", "stale")
    r.set("changed", "before")
    assert r.config_set("appendonly", "no")
    r.set("changed", "while-off")
    assert r.config_set("appendonly", "yes")  # populated: a background rewrite
    wait_until(
        lambda: info(r)["aof_rewrites"] == 1 and not info(r)["aof_rewrite_in_progress"],
        CHILD_TIMEOUT_S,
    )
    aof_written(r)
    before = digest(r)
    datadir.kill()
    r = datadir.start("--appendonly", "yes")
    assert digest(r) == before
    assert r.get("changed") == b"while-off"

    assert r.config_set("appendonly", "no")
    r.flushall()
    assert r.config_set("appendonly", "yes")  # empty: the base is written at once
    r.set("new", 1)
    datadir.kill()
    r = datadir.start("--appendonly", "yes")
    assert r.keys("*") == [b"new"]


# -- damaged files at start-up --------------------------------------------------------------


def _aof_with_keys(datadir: DataDir, n: int) -> Path:
    """A stopped server whose AOF's last incr file holds SET k0 .. k<n-1>."""
    r = datadir.start("--appendonly", "yes")
    for i in range(n):
        r.set(f"k{i}", f"value-{i}")
    assert datadir.stop() == 0
    return datadir.last_incr()


def test_truncated_aof_tail_loads_with_aof_load_truncated_yes(datadir: DataDir) -> None:
    incr = _aof_with_keys(datadir, 5)
    size = incr.stat().st_size
    with open(incr, "r+b") as f:
        f.truncate(size - 7)  # the last SET loses its last 7 bytes
    last = b"*3\r\n$3\r\nSET\r\n$2\r\nk4\r\n$7\r\nvalue-4\r\n"
    r = datadir.start("--appendonly", "yes", "--aof-load-truncated", "yes")
    dropped = len(last) - 7
    log = datadir.log()
    assert f"dropped the last {dropped} bytes" in log
    assert str(incr) in log
    assert [r.get(f"k{i}") for i in range(5)] == [
        b"value-0",
        b"value-1",
        b"value-2",
        b"value-3",
        None,
    ]
    # The cut tail is gone from the file: new writes follow intact commands.
    assert incr.stat().st_size == size - len(last)
    r.set("k4", "again")
    aof_written(r)
    before = digest(r)
    datadir.kill()
    assert digest(datadir.start("--appendonly", "yes", "--aof-load-truncated", "no")) == before


def test_zero_filled_aof_tail_is_cut_and_keeps_every_command_before(datadir: DataDir) -> None:
    """A crashed filesystem may leave a run of zero bytes where the last write was."""
    incr = _aof_with_keys(datadir, 200)
    size = incr.stat().st_size
    with open(incr, "ab") as f:
        f.write(b"\0" * 4096)
    r = datadir.start("--appendonly", "yes", "--aof-load-truncated", "yes")
    assert "dropped the last 4096 bytes" in datadir.log()
    assert r.dbsize() == 200
    assert r.get("k0") == b"value-0" and r.get("k199") == b"value-199"
    assert incr.stat().st_size == size


def test_truncated_aof_tail_refused_with_aof_load_truncated_no(datadir: DataDir) -> None:
    incr = _aof_with_keys(datadir, 5)
    size = incr.stat().st_size
    with open(incr, "r+b") as f:
        f.truncate(size - 3)
    code, out = datadir.refused_start("--appendonly", "yes", "--aof-load-truncated", "no")
    assert code != 0, out
    assert str(incr) in out
    assert f"{CHECK_AOF_FIX} {datadir.manifest}" in out
    assert "aof-load-truncated" in out
    assert "ackdb cannot start" in out
    assert incr.stat().st_size == size - 3  # nothing changed on a refused start

    code, out = run_cli("check-aof", "--fix", str(datadir.manifest))
    assert code == 0, out
    cut = list(datadir.aof_dir.glob(incr.name + ".cut-*"))
    assert len(cut) == 1
    assert cut[0].read_bytes() == b"*3\r\n$3\r\nSET\r\n$2\r\nk4\r\n$7\r\nvalue-"
    r = datadir.start("--appendonly", "yes", "--aof-load-truncated", "no")
    assert r.get("k3") == b"value-3"
    assert r.get("k4") is None


@pytest.mark.parametrize("load_truncated", ["yes", "no"])
def test_corruption_before_the_tail_refuses_to_start(datadir: DataDir, load_truncated: str) -> None:
    incr = _aof_with_keys(datadir, 10)
    data = bytearray(incr.read_bytes())
    at = data.index(b"*3\r\n$3\r\nSET\r\n$2\r\nk5\r\n")
    data[at] = ord("?")  # no longer an array: not a command
    incr.write_bytes(bytes(data))
    code, out = datadir.refused_start("--appendonly", "yes", "--aof-load-truncated", load_truncated)
    assert code != 0, out
    assert f"Bad file format reading the append only file {incr} at byte offset {at}" in out
    assert f"{CHECK_AOF_FIX} {datadir.manifest}" in out

    code, out = run_cli("check-aof", str(datadir.manifest))
    assert code == 1
    assert "is corrupt" in out and f"from byte offset {at}" in out
    assert "All AOF files and manifest are NOT valid" in out


def test_flipped_byte_in_length_is_corruption(datadir: DataDir) -> None:
    """A damaged bulk length that swallows later commands is not a truncation."""
    incr = _aof_with_keys(datadir, 10)
    data = bytearray(incr.read_bytes())
    at = data.index(b"$7\r\nvalue-3\r\n")
    data[at + 1] = ord("9")  # $9: the value now eats into the next command
    incr.write_bytes(bytes(data))
    code, out = datadir.refused_start("--appendonly", "yes", "--aof-load-truncated", "yes")
    assert code != 0, out
    assert f"Bad file format reading the append only file {incr} at byte offset" in out
    assert CHECK_AOF_FIX in out


def test_snapshot_with_flipped_byte_refuses_to_start(datadir: DataDir) -> None:
    r = datadir.start()
    write_every_type(r)
    assert r.save()
    assert datadir.stop() == 0
    code, out = run_cli("check-snapshot", str(datadir.snapshot))
    assert code == 0, out
    assert "snapshot looks OK" in out

    data = bytearray(datadir.snapshot.read_bytes())
    data[len(data) // 2] ^= 0x40
    datadir.snapshot.write_bytes(bytes(data))
    code, out = datadir.refused_start()
    assert code != 0, out
    assert f"The snapshot {datadir.snapshot} cannot be loaded: snapshot checksum mismatch" in out
    assert f"ackdb check-snapshot {datadir.snapshot}" in out

    code, out = run_cli("check-snapshot", str(datadir.snapshot))
    assert code == 1
    assert "SNAPSHOT ERROR DETECTED" in out
    assert "snapshot checksum mismatch (at byte offset 12)" in out


def test_truncated_snapshot_refuses_to_start(datadir: DataDir) -> None:
    r = datadir.start()
    write_every_type(r)
    assert r.save()
    assert datadir.stop() == 0
    size = datadir.snapshot.stat().st_size
    with open(datadir.snapshot, "r+b") as f:
        f.truncate(size - 1)
    code, out = datadir.refused_start()
    assert code != 0, out
    assert "truncated snapshot" in out
    code, out = run_cli("check-snapshot", str(datadir.snapshot))
    assert code == 1 and "truncated snapshot" in out


def test_damaged_aof_snapshot_base_refuses_to_start(datadir: DataDir) -> None:
    r = datadir.start("--appendonly", "yes")
    write_every_type(r)
    assert r.bgrewriteaof()
    wait_until(lambda: info(r)["aof_rewrites"] == 1, CHILD_TIMEOUT_S)
    assert datadir.stop() == 0
    base = datadir.aof_dir / [n for n, k in datadir.manifest_entries() if k == "b"][0]
    data = bytearray(base.read_bytes())
    data[-5] ^= 0x01
    base.write_bytes(bytes(data))
    code, out = datadir.refused_start("--appendonly", "yes")
    assert code != 0, out
    assert f"The snapshot {base} cannot be loaded: snapshot checksum mismatch" in out
    code, out = run_cli("check-aof", str(datadir.manifest))
    assert code == 1 and "snapshot checksum mismatch" in out


@pytest.mark.parametrize("cut", ["exec", "inside"])
def test_cut_multi_exec_block_is_dropped_whole(datadir: DataDir, cut: str) -> None:
    r = datadir.start("--appendonly", "yes")
    r.set("before", 1)
    with r.pipeline(transaction=True) as p:
        p.set("tx:a", 1)
        p.set("tx:b", 2)
        p.execute()
    assert datadir.stop() == 0
    incr = datadir.last_incr()
    data = incr.read_bytes()
    multi = data.rindex(b"*1\r\n$5\r\nMULTI\r\n")
    assert data.endswith(b"*1\r\n$4\r\nEXEC\r\n")
    if cut == "exec":
        keep = len(data) - 3  # EXEC itself is cut
    else:
        keep = data.index(b"tx:b") + 2  # inside the second SET
    incr.write_bytes(data[:keep])
    r = datadir.start("--appendonly", "yes")
    assert r.get("before") == b"1"
    assert r.get("tx:a") is None and r.get("tx:b") is None
    assert f"dropped the last {keep - multi} bytes" in datadir.log()
    assert incr.stat().st_size == multi


# -- ackdb check-aof / check-snapshot -------------------------------------------------------


def test_check_aof_exit_codes_and_fix_keeps_the_cut_bytes(datadir: DataDir) -> None:
    incr = _aof_with_keys(datadir, 3)
    code, out = run_cli("check-aof", str(datadir.manifest))
    assert code == 0, out
    assert "All AOF files and manifest are valid" in out
    code, out = run_cli("check-aof", str(incr))
    assert code == 0 and f"AOF {incr} is valid" in out

    good = incr.read_bytes()
    tail = b"*3\r\n$3\r\nSET\r\n$1\r\nx"
    incr.write_bytes(good + tail)
    code, out = run_cli("check-aof", str(incr))
    assert code == 1
    assert f"ok_up_to={len(good)}" in out and f"diff={len(tail)}" in out
    assert "Use the --fix option" in out
    assert incr.read_bytes() == good + tail  # a check without --fix changes nothing

    code, out = run_cli("check-aof", "--fix", str(incr))
    assert code == 0, out
    assert incr.read_bytes() == good
    kept = list(datadir.aof_dir.glob(incr.name + ".cut-*"))
    assert len(kept) == 1
    assert re.fullmatch(re.escape(incr.name) + r"\.cut-\d+", kept[0].name)
    assert kept[0].read_bytes() == tail
    assert f"the {len(tail)} bytes cut are in {kept[0]}" in out
    code, out = run_cli("check-aof", str(datadir.manifest))
    assert code == 0, out

    # Usage errors.
    assert run_cli("check-aof")[0] == 2
    assert run_cli("check-aof", "a", "b")[0] == 2
    assert run_cli("check-snapshot")[0] == 2
    code, out = run_cli("check-aof", str(datadir.aof_dir / "missing.aof"))
    assert code == 1 and "Cannot open" in out
    code, out = run_cli("check-snapshot", str(datadir.dir / "missing.rdb"))
    assert code == 1 and "Cannot open" in out


def test_check_aof_refuses_to_fix_a_file_before_the_last(datadir: DataDir) -> None:
    r = datadir.start("--appendonly", "yes")
    r.set("a", 1)
    r.config_set("rdb-key-save-delay", 200_000)  # the rewrite stays unfinished
    assert r.bgrewriteaof()
    r.set("b", 2)
    datadir.kill()
    entries = datadir.manifest_entries()
    incrs = [n for n, k in entries if k == "i"]
    assert len(incrs) == 2, entries
    first = datadir.aof_dir / incrs[0]
    first.write_bytes(first.read_bytes()[:-2])
    code, out = run_cli("check-aof", "--fix", str(datadir.manifest))
    assert code == 1
    assert "This is not the last file of the AOF" in out
    assert not list(datadir.aof_dir.glob("*.cut-*"))
    code, out = datadir.refused_start("--appendonly", "yes")
    assert code != 0 and f"The AOF file {first} is truncated" in out


def test_check_aof_on_a_manifest_missing_a_file(datadir: DataDir) -> None:
    incr = _aof_with_keys(datadir, 2)
    incr.unlink()
    code, out = run_cli("check-aof", str(datadir.manifest))
    assert code == 1 and "does not exist" in out
    code, out = datadir.refused_start("--appendonly", "yes")
    assert code != 0 and f"The AOF file {incr} listed in" in out
    datadir.manifest.write_text("this is not a manifest\n")
    code, out = run_cli("check-aof", str(datadir.manifest))
    assert code == 1 and "Invalid AOF manifest" in out
    code, out = datadir.refused_start("--appendonly", "yes")
    assert code != 0 and "cannot be read" in out


@pytest.mark.parametrize("kind", ["BGSAVE", "BGREWRITEAOF"])
def test_shutdown_while_a_child_runs(datadir: DataDir, kind: str) -> None:
    datadir.args += ["--appendonly", "yes", "--appendfsync", "always"]
    r = datadir.start()
    write_every_type(r)
    r.config_set("rdb-key-save-delay", 100_000)
    r.execute_command(kind)
    where = datadir.dir if kind == "BGSAVE" else datadir.aof_dir
    wait_until(lambda: list(where.glob("temp-*")), 5)
    before = digest(r)
    assert datadir.stop() == 0
    log = datadir.log()
    assert "There is a child saving a snapshot or rewriting the AOF. Killing it!" in log
    assert not list(datadir.dir.glob("temp-*")) and not list(datadir.aof_dir.glob("temp-*"))
    assert digest(datadir.start()) == before


@pytest.mark.parametrize("mode", ["aof", "snapshot"])
def test_several_databases_and_keys_expired_on_disk(datadir: DataDir, mode: str) -> None:
    if mode == "aof":
        datadir.args += ["--appendonly", "yes", "--appendfsync", "always"]
    r = datadir.start()
    for db in (0, 3, 15):
        c = datadir.client(db=db)
        write_every_type(c, prefix=f"db{db}:", n=4)
        c.close()
    if mode == "aof":  # part of it in the base, the rest in the incremental file
        assert r.bgrewriteaof()
        wait_until(lambda: info(r)["aof_rewrites"] == 1, CHILD_TIMEOUT_S)
    r.swapdb(3, 4)
    r.move("db0:str:1", 9)
    c = datadir.client(db=15)
    c.flushdb()
    c.set("db15:only", 1)
    c.set("short", 1, px=300)  # expires while the server is down (or just before)
    if mode == "snapshot":
        assert r.save()  # the key is saved alive
    # Expired in memory: the digest to compare with has it no longer.
    wait_until(lambda: not c.exists("short"), 5)
    c.close()
    before = digest(r)
    datadir.kill()
    r = datadir.start()
    assert digest(r) == before
    assert datadir.client(db=9).get("db0:str:1") == b"v1v1"
    assert datadir.client(db=4).exists("db3:hash:2")
    if mode == "snapshot":
        i = info(r)
        assert (i["rdb_last_load_keys_expired"], i["rdb_last_load_keys_loaded"]) == (
            1,
            r.dbsize() + sum(datadir.client(db=db).dbsize() for db in range(1, 16)),
        )


def test_bgrewriteaof_with_the_aof_off_writes_an_aof_to_start_from(datadir: DataDir) -> None:
    r = datadir.start()
    write_every_type(r)
    assert raw(datadir.port, "BGREWRITEAOF") == b"Background append only file rewriting started"
    wait_until(lambda: info(r)["aof_rewrites"] == 1, CHILD_TIMEOUT_S)
    assert info(r)["aof_enabled"] == 0
    assert [k for _, k in datadir.manifest_entries()] == ["b", "i"]
    before = digest(r)
    r.set("not-in-the-aof", 1)  # the AOF is off: nothing is appended
    datadir.kill()
    r = datadir.start("--appendonly", "yes")
    assert digest(r) == before


def test_start_with_aof_on_and_only_a_snapshot_builds_the_aof(datadir: DataDir) -> None:
    r = datadir.start()
    write_every_type(r)
    assert r.save()
    before = digest(r)
    datadir.kill()
    r = datadir.start("--appendonly", "yes")
    assert digest(r) == before
    wait_until(
        lambda: datadir.manifest.exists() and info(r)["aof_rewrite_in_progress"] == 0,
        CHILD_TIMEOUT_S,
    )
    assert "creating it from the loaded data" in datadir.log()
    r.set("after", 1)
    aof_written(r)
    before = digest(r)
    datadir.snapshot.unlink()  # the AOF alone holds everything now
    datadir.kill()
    assert digest(datadir.start("--appendonly", "yes")) == before


def test_automatic_rewrite_on_growth(datadir: DataDir) -> None:
    datadir.args += [
        "--appendonly",
        "yes",
        "--auto-aof-rewrite-min-size",
        "65536",
        "--auto-aof-rewrite-percentage",
        "100",
    ]
    r = datadir.start()
    with r.pipeline(transaction=False) as p:
        for i in range(200):  # 200 KB written to 50 keys: past the minimum size
            p.set(f"k{i % 50}", "x" * 1000)
        p.execute()
    wait_until(lambda: info(r)["aof_rewrites"] == 1, CHILD_TIMEOUT_S)
    assert "Starting automatic rewriting of AOF" in datadir.log()
    wait_children_done(r)
    # Overwriting the same 50 keys: the rewritten AOF is much smaller than what was written.
    assert info(r)["aof_base_size"] < 65536
    aof_written(r)
    before = digest(r)
    datadir.kill()
    assert digest(datadir.start()) == before


def test_shutdown_save_and_nosave(datadir: DataDir) -> None:
    datadir.args += ["--save", "3600", "1"]
    r = datadir.start()
    r.set("a", 1)
    with socket.create_connection(("127.0.0.1", datadir.port), timeout=10) as s:
        s.sendall(encode("SHUTDOWN", "NOSAVE"))
        assert s.recv(100) == b""  # no reply: the server is gone
    assert datadir.proc is not None and datadir.proc.proc.wait(10) == 0
    assert not datadir.snapshot.exists()

    r = datadir.start("--save", "")
    assert r.dbsize() == 0
    r.set("b", 2)
    with socket.create_connection(("127.0.0.1", datadir.port), timeout=10) as s:
        s.sendall(encode("SHUTDOWN", "SAVE"))
        assert s.recv(100) == b""
    assert datadir.proc.proc.wait(10) == 0
    assert datadir.start("--save", "").get("b") == b"2"


def test_appendfsync_changed_at_runtime(datadir: DataDir) -> None:
    datadir.args += ["--appendonly", "yes", "--appendfsync", "no"]
    r = datadir.start()
    r.set("a", 1)
    assert r.config_set("appendfsync", "always")
    for n in range(5):
        r.set(f"k{n}", n)
        i = info(r)
        assert i["aof_fsynced_offset"] == i["aof_written_offset"]
    assert r.config_set("appendfsync", "everysec")
    r.set("b", 2)
    wait_until(lambda: info(r)["aof_fsynced_offset"] == info(r)["aof_written_offset"], 5)
    before = digest(r)
    datadir.kill()
    assert digest(datadir.start()) == before


def test_debug_reload_keeps_the_dataset(datadir: DataDir) -> None:
    r = datadir.start()
    write_every_type(r)
    before = digest(r)
    assert r.execute_command("DEBUG", "RELOAD") == b"OK"
    assert digest(r) == before
    assert datadir.snapshot.exists()
    assert "DB reloaded by DEBUG RELOAD" in datadir.log()


def test_clients_get_loading_while_a_large_snapshot_loads(datadir: DataDir) -> None:
    r = datadir.start()
    r.execute_command("DEBUG", "POPULATE", 1_000_000)
    assert r.save()
    size = datadir.snapshot.stat().st_size
    datadir.kill()
    datadir.starts += 1
    # ServerProcess returns as soon as PING answers, -LOADING included.
    datadir.proc = ServerProcess(datadir.argv(), datadir.port, datadir.root, "ackdb-loading")
    replies = []
    loading_info = 0
    while True:
        reply = raw(datadir.port, "GET", "key:1")
        if reply == b"value:1":
            break
        replies.append(str(reply))
        fields = dict(
            line.split(":", 1)
            for line in raw(datadir.port, "INFO", "persistence").decode().splitlines()
            if ":" in line
        )
        if fields["loading"] == "1":
            loading_info += 1
            assert int(fields["loading_total_bytes"]) == size
            assert 0 <= float(fields["loading_loaded_perc"]) <= 100
        assert len(replies) < 10_000
    assert replies and set(replies) == {"LOADING Redis is loading the dataset in memory"}
    assert loading_info
    assert info(datadir.client())["loading"] == 0
    assert datadir.client().dbsize() == 1_000_000


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_values_larger_than_a_frame(datadir: DataDir, preamble: str) -> None:
    datadir.args += ["--appendonly", "yes", "--aof-use-rdb-preamble", preamble]
    r = datadir.start()
    big = os.urandom(3 << 20)
    r.set("big", big)
    r.hset("bighash", mapping={"a": big[: 2 << 20], "b": b"small"})
    r.rpush("biglist", big[:1500_000], big[:10])
    assert r.save()
    assert r.bgrewriteaof()
    wait_until(lambda: info(r)["aof_rewrites"] == 1, CHILD_TIMEOUT_S)
    aof_written(r)
    before = digest(r)
    datadir.kill()
    r = datadir.start()  # from the AOF
    assert digest(r) == before
    assert r.get("big") == big
    datadir.kill()
    r = datadir.start("--appendonly", "no")  # from the snapshot
    assert digest(r) == before
    code, out = run_cli("check-snapshot", str(datadir.snapshot))
    assert code == 0, out


def test_failed_bgsave_without_stop_writes_keeps_accepting_writes(datadir: DataDir) -> None:
    datadir.args += ["--save", "3600", "1", "--stop-writes-on-bgsave-error", "no"]
    r = datadir.start()
    r.execute_command("DEBUG", "DISK-FAULT", "save", "EIO")
    assert raw(datadir.port, "BGSAVE") == b"Background saving started"
    wait_until(lambda: info(r)["rdb_last_bgsave_status"] == "err", CHILD_TIMEOUT_S)
    assert raw(datadir.port, "SET", "a", "1") == b"OK"
    r.execute_command("DEBUG", "DISK-FAULT", "save", "off")
