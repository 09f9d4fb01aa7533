"""Files of divergent writes on a node (issue 15): node/divergedfiles.py (where they are,
keeping them when their shard's directory goes, clearing them) and DB.DIVERGED
(node/divergedserver.py) against test_dbserver's fake agent."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tests.unit.node.test_dbserver import Conn, FakeAgent

from ackdb.cluster import dbops
from ackdb.node import divergedfiles
from ackdb.node.divergedfiles import DivergedFile
from ackdb.resp.client import ReplyError


def _write(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_find_keep_and_clear(tmp_path: Path) -> None:
    base = str(tmp_path)
    _write(tmp_path / "shards/7-0/diverged-3.aof", b"*1\r\n$4\r\nPING\r\n")
    _write(tmp_path / "shards/7-0/diverged-5.rdb", b"12345")
    _write(tmp_path / "shards/7-0/diverged-6.rdb.tmp")  # a save in progress
    _write(tmp_path / "shards/7-0/appendonly.aof")
    _write(tmp_path / "shards/8-1/diverged-2.aof")
    found = divergedfiles.find(base)
    assert [(f.db_uid, f.shard, f.epoch, f.size, f.kept) for f in found] == [
        (7, 0, 3, 14, False),
        (7, 0, 5, 5, False),
        (8, 1, 2, 1, False),
    ]
    # The unit leaves the node: its files are kept, the rest goes.
    moved = divergedfiles.remove_unit_dir(base, "shards/7-0", keep_diverged=True)
    assert [os.path.basename(new) for _, new in moved] == ["diverged-3.aof", "diverged-5.rdb"]
    assert not (tmp_path / "shards/7-0").exists()
    kept = [f for f in divergedfiles.find(base) if f.kept]
    assert [(f.db_uid, f.shard, f.epoch) for f in kept] == [(7, 0, 3), (7, 0, 5)]
    assert kept[0].path == str(tmp_path / "diverged/7-0/diverged-3.aof")
    # A later file of the same name never overwrites a kept one.
    _write(tmp_path / "shards/7-0/diverged-3.aof", b"again")
    divergedfiles.remove_unit_dir(base, "shards/7-0", keep_diverged=True)
    assert (tmp_path / "diverged/7-0/diverged-3.1.aof").read_bytes() == b"again"
    assert divergedfiles.epoch_of("diverged-3.1.aof") == 3
    # Without keep_diverged (a deleted database) nothing stays.
    divergedfiles.remove_unit_dir(base, "shards/8-1", keep_diverged=False)
    assert not (tmp_path / "shards/8-1").exists()
    # Clearing: by path, by file name, or all; an emptied kept directory goes too.
    files = [f for f in divergedfiles.find(base) if f.db_uid == 7]
    assert divergedfiles.clear(files, "diverged-5.rdb") == [
        str(tmp_path / "diverged/7-0/diverged-5.rdb")
    ]
    assert divergedfiles.clear(files, "nothing") == []
    assert len(divergedfiles.clear(files, None)) == 2
    assert divergedfiles.find(base) == [] and not (tmp_path / "diverged/7-0").exists()


class DivergedAgent(FakeAgent):
    def __init__(self, files: list[DivergedFile]) -> None:
        super().__init__()
        self.files = files
        self.asked: list[tuple[int, str | None, bool]] = []

    def diverged(self, db_uid: int, clear: str | None, clear_all: bool) -> list[DivergedFile]:
        self.asked.append((db_uid, clear, clear_all))
        mine = [f for f in self.files if f.db_uid == db_uid]
        if clear is None and not clear_all:
            return mine
        return [f for f in mine if clear_all or clear in (f.path, os.path.basename(f.path))]


def test_db_diverged_lists_and_clears() -> None:
    agent = DivergedAgent([])
    conn = Conn(agent)
    conn.call("DB.CREATE", "d", "REPLICAS", "1")
    uid = dbops.databases(agent.meta)[0].uid
    agent.files = [
        DivergedFile(uid, 0, 3, "/data/shards/x/diverged-3.aof", 120, False),
        DivergedFile(uid, 1, None, "/data/diverged/y/diverged-a.rdb", 9, True),
        DivergedFile(uid + 1, 0, 2, "/other", 1, False),
    ]
    rows: Any = conn.call("DB.DIVERGED", "d")
    assert rows == [
        [b"n1", 0, 3, 120, b"/data/shards/x/diverged-3.aof", 0],
        [b"n1", 1, -1, 9, b"/data/diverged/y/diverged-a.rdb", 1],
    ]
    assert conn.call("DB.DIVERGED", "d", "clear", "diverged-3.aof") == [rows[0]]
    assert conn.call("DB.DIVERGED", "d", "CLEAR-ALL") == rows
    assert agent.asked[1:] == [(uid, "diverged-3.aof", False), (uid, None, True)]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["nope"], "ERR no such database 'nope'"),
        (["d", "CLEAR"], "ERR syntax error"),
        (["d", "CLEAR-ALL", "x"], "ERR syntax error"),
        (["d", "WIPE", "x"], "ERR syntax error"),
        ([], "ERR wrong number of arguments"),
    ],
)
def test_db_diverged_errors(args: list[str], error: str) -> None:
    conn = Conn(DivergedAgent([]))
    conn.call("DB.CREATE", "d", "REPLICAS", "1")
    reply = conn.call("DB.DIVERGED", *args)
    assert isinstance(reply, ReplyError) and str(reply).startswith(error), reply
