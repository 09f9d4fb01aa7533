"""node/shardfiles.py: finding a node's unit directories and their live processes (the
pid file and /proc/<pid>/cmdline must agree), and stopping leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ackdb.node import secrets
from ackdb.node.shardfiles import (
    alive,
    exit_text,
    find_units,
    load_or_create_secret,
    stop_leftovers,
    write_file,
)


def fake_shard(d: Path) -> subprocess.Popen[bytes]:
    """A process whose command line names ``d/shard.conf``, as a shard's does."""
    d.mkdir(parents=True)
    p = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(d / "shard.conf")]
    )
    (d / "shard.pid").write_text(f"{p.pid}\n")
    return p


def test_find_units_takes_only_processes_naming_their_unit(tmp_path: Path) -> None:
    live = fake_shard(tmp_path / "shards" / "7-0")
    other = fake_shard(tmp_path / "elsewhere")
    try:
        stale = tmp_path / "shards" / "7-1"  # its pid file names someone else's process
        stale.mkdir()
        (stale / "shard.pid").write_text(f"{other.pid}\n")
        gone = tmp_path / "proxies" / "7"  # no pid file at all
        gone.mkdir(parents=True)
        assert find_units(str(tmp_path)) == [
            ("shards/7-0", live.pid),
            ("shards/7-1", None),
            ("proxies/7", None),
        ]
        assert stop_leftovers(str(tmp_path), timeout_s=5) == [live.pid]
        assert live.wait(5) == -15
        assert other.poll() is None  # never a process of another unit
    finally:
        for p in (live, other):
            p.kill()
            p.wait()
    assert not alive(live.pid)
    assert exit_text(-9) == "killed by SIGKILL" and exit_text(1) == "exit code 1"


def test_secret_and_file_modes(tmp_path: Path) -> None:
    s = load_or_create_secret(str(tmp_path))
    assert load_or_create_secret(str(tmp_path)) == s  # created once, then read
    assert os.stat(tmp_path / "cluster.secret").st_mode & 0o777 == 0o600
    assert secrets.read_secret(str(tmp_path / "cluster.secret")) == s
    write_file(str(tmp_path / "f"), "x\n", 0o600)
    assert (tmp_path / "f").read_text() == "x\n"
    assert os.stat(tmp_path / "f").st_mode & 0o777 == 0o600
