"""The persistence shell in one process: no fork, no event loop.

A real core, a real ``Persistence`` on a temporary directory, injected disk faults and
a failing fork; what is checked is what a user sees: errors refused with MISCONF, INFO
fields, log lines, files, and the AOF's offset marks.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import ackdb.commands  # noqa: F401
from ackdb.engine.core import Server
from ackdb.persistence.policy import MISCONF_BGSAVE
from ackdb.replication.stream import GETACK, PING
from ackdb.server import persist as persist_module
from ackdb.server import persist_aof
from ackdb.server.config import load_config
from ackdb.server.engine_host import build_engine
from ackdb.server.persist import Persistence
from ackdb.server.replication import ReplicationShell
from conftest import FakeConn


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.role = "M"

    def __getattr__(self, level: str) -> Any:
        return lambda msg, exc=False: self.lines.append((level, msg))

    def has(self, text: str) -> bool:
        return any(text in msg for _, msg in self.lines)


def make(tmp_path: Path, *directives: str) -> tuple[Server, Persistence, Log]:
    cfg = load_config(None, "\n".join([f"dir {tmp_path}", *directives]))
    core = build_engine(cfg)
    log = Log()
    return core, Persistence(core, cfg, log), log


def run(core: Server, c: Any, *args: str) -> bytes:
    reply = core.process(c, [a.encode() for a in args])
    assert isinstance(reply, bytes)
    return reply


def client(core: Server) -> Any:
    return core.new_client(FakeConn(), "127.0.0.1:40000", "127.0.0.1:6379", 7)


def info(p: Persistence) -> dict[str, Any]:
    return dict(p.info_fields())


def failing_fork(*_: Any) -> Any:
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))


# -- snapshots --------------------------------------------------------------------------------


def test_save_writes_the_snapshot_and_the_info_fields(tmp_path: Path) -> None:
    core, p, log = make(tmp_path)
    c = client(core)
    run(core, c, "SET", "k", "v")
    assert info(p)["rdb_changes_since_last_save"] == 1
    assert run(core, c, "SAVE") == b"+OK\r\n"
    assert os.path.exists(p.snapshot_path)
    fields = info(p)
    assert fields["rdb_changes_since_last_save"] == 0
    assert fields["rdb_saves"] == 1 and fields["rdb_last_bgsave_status"] == "ok"
    assert log.has("DB saved on disk")


def test_failed_save_refuses_writes_until_a_save_succeeds(tmp_path: Path) -> None:
    # Redis stop-writes-on-bgsave-error (with the default save rules).
    core, p, log = make(tmp_path)
    c = client(core)
    p.faults.set("save", "EIO")
    assert run(core, c, "SAVE").startswith(b"-ERR")
    assert core.write_denied == MISCONF_BGSAVE
    assert run(core, c, "SET", "k", "v").startswith(b"-MISCONF")
    assert log.has("Failed saving the DB")
    p.faults.set("save", "off")
    assert run(core, c, "SAVE") == b"+OK\r\n"
    assert core.write_denied is None
    assert run(core, c, "SET", "k", "v") == b"+OK\r\n"


def test_failed_save_without_save_rules_keeps_writes(tmp_path: Path) -> None:
    core, p, _ = make(tmp_path, 'save ""')
    c = client(core)
    p.faults.set("save", "EIO")
    run(core, c, "SAVE")
    assert core.write_denied is None


def test_a_due_save_rule_that_cannot_fork_is_retried_after_the_delay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis serverCron: "N changes in S seconds. Saving..."; a failed BGSAVE is retried
    # after CONFIG_BGSAVE_RETRY_DELAY, and meanwhile writes are refused (MISCONF).
    monkeypatch.setattr(persist_module, "fork", failing_fork)
    core, p, log = make(tmp_path, "save 1 1")
    c = client(core)
    run(core, c, "SET", "k", "v")
    now = p.policy.lastsave_s * 1000 + 1000
    p.cron(now)
    assert log.has("1 changes in 1 seconds. Saving...")
    assert log.has("Can't save in background: fork:")
    assert core.write_denied == MISCONF_BGSAVE
    assert info(p)["rdb_last_bgsave_status"] == "err"
    log.lines.clear()
    p.cron(now + 1000)
    assert not log.has("Saving...")
    p.cron(p.policy.last_bgsave_try_ms + 5000)
    assert log.has("Saving...")


def test_bgsave_fork_failure_is_the_commands_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(persist_module, "fork", failing_fork)
    core, _, _ = make(tmp_path)
    reply = run(core, client(core), "BGSAVE")
    assert reply.startswith(b"-ERR Can't save in background: fork: ")


@pytest.mark.parametrize("save,saved", [("3600 1", True), ('""', False)])
def test_shutdown_saves_with_save_rules(tmp_path: Path, save: str, saved: bool) -> None:
    # Redis SHUTDOWN: "If persistence is enabled" (save points) the dataset is saved.
    _, p, log = make(tmp_path, f"save {save}")
    assert p.prepare_shutdown("default")
    assert log.has("Saving the final snapshot before exiting.") == saved
    assert os.path.exists(p.snapshot_path) == saved


def test_shutdown_that_cannot_save_keeps_running(tmp_path: Path) -> None:
    _, p, log = make(tmp_path)
    p.faults.set("save", "EIO")
    assert not p.prepare_shutdown("save")
    assert log.has("Error trying to save the DB, can't exit.")


# -- the AOF ------------------------------------------------------------------------------------


def aof_server(tmp_path: Path, *directives: str) -> tuple[Server, Persistence, Log]:
    core, p, log = make(tmp_path, "appendonly yes", *directives)
    p.create_aof()  # an empty dataset: the base is written at once, no child
    assert p.aof is not None and p.aof_state == "on"
    return core, p, log


def test_an_empty_dataset_gets_its_aof_at_once(tmp_path: Path) -> None:
    _, p, log = aof_server(tmp_path)
    names = sorted(os.listdir(tmp_path / "appendonlydir"))
    assert any(n.endswith(".manifest") for n in names)
    assert any(".base." in n for n in names) and any(".incr." in n for n in names)
    assert log.has("Creating AOF base file")
    assert info(p)["aof_enabled"] == 1


def test_aof_write_error_refuses_writes_until_a_write_succeeds(tmp_path: Path) -> None:
    # Redis: "-MISCONF Errors writing to the AOF file: ..." while aof_last_write_status
    # is err; "AOF write error looks solved" when a retry succeeds.
    core, p, log = aof_server(tmp_path)
    c = client(core)
    p.faults.set("aof-write", "ENOSPC")
    run(core, c, "SET", "k", "v")
    p.before_replies()
    assert core.write_denied == f"MISCONF Errors writing to the AOF file: {os.strerror(28)}"
    assert info(p)["aof_last_write_status"] == "err"
    assert log.has("Error writing to the AOF file")
    p.faults.set("aof-write", "off")
    p.cron(0)
    assert core.write_denied is None
    assert log.has("AOF write error looks solved")


def test_always_fsyncs_before_replies(tmp_path: Path) -> None:
    # Redis redis.conf "appendfsync always": the reply leaves after the fsync.
    core, p, _ = aof_server(tmp_path, "appendfsync always")
    c = client(core)
    run(core, c, "SET", "k", "v")
    mark = p.durable_mark()
    assert mark is not None and c.woff > mark  # must wait
    p.before_replies()
    assert p.durable_mark() == c.woff
    fields = info(p)
    assert fields["aof_fsynced_offset"] == fields["aof_written_offset"] == c.woff


def test_config_set_appendfsync_reaches_the_accounting(tmp_path: Path) -> None:
    core, p, _ = aof_server(tmp_path)
    assert p.durable_mark() is None  # everysec
    core.config.set_many([("appendfsync", "always")])
    assert p.aof is not None and p.aof.acct.policy == "always"
    assert p.durable_mark() is not None


def test_config_set_save_reaches_the_policy(tmp_path: Path) -> None:
    core, p, _ = make(tmp_path)
    core.config.set_many([("save", "10 20")])
    assert p.policy.settings.save_rules == ((10, 20),)
    core.config.set_many([("auto-aof-rewrite-percentage", "0")])
    assert p.policy.settings.rewrite_percentage == 0


def test_auto_rewrite_that_cannot_fork_is_logged_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis redis.conf auto-aof-rewrite-percentage / -min-size.
    monkeypatch.setattr(persist_aof, "fork", failing_fork)
    core, p, log = aof_server(tmp_path, 'save ""', "auto-aof-rewrite-min-size 0")
    c = client(core)
    for i in range(50):
        run(core, c, "SET", f"k{i}", "v" * 100)
    p.before_replies()
    p.cron(p.policy.lastsave_s * 1000)
    assert log.has("Starting automatic rewriting of AOF on")
    assert log.has("Can't rewrite append only file in background: fork:")
    assert info(p)["aof_last_bgrewrite_status"] == "err"


# -- the AOF's offsets do not depend on the order of the feeds ------------------------------------


def with_replication(core: Server, p: Persistence, log: Log) -> ReplicationShell:
    node = SimpleNamespace(
        core=core,
        config=core.config,
        log=log,
        persist=p,
        loop=None,
        output_limits={},
        request_before_sleep=lambda: None,
    )
    return ReplicationShell(node, None)


@pytest.mark.parametrize("aof_first", [False, True])
def test_aof_marks_are_the_streams_offsets_in_either_feed_order(
    tmp_path: Path, aof_first: bool
) -> None:
    core, p, log = aof_server(tmp_path, "appendfsync always")
    repl = with_replication(core, p, log)
    feed = repl._feed
    core.feeds.remove(feed)
    if aof_first:
        core.feeds.append(feed)  # registered after the AOF's feed
    else:
        core.feeds.insert(0, feed)
    c = client(core)
    other = client(core)
    run(core, c, "SET", "a", "1")
    run(core, other, "SELECT", "3")
    run(core, other, "SET", "b", "2")
    run(core, c, "MULTI")
    run(core, c, "INCR", "n")
    run(core, c, "INCR", "n")
    run(core, c, "EXEC")
    aof = p.aof
    assert aof is not None
    offset = core.master_repl_offset
    assert c.woff == offset and other.woff < offset
    assert aof.mark == offset
    p.before_replies()
    assert aof.written_mark == aof.fsynced_mark == offset
    run(core, other, "SET", "b", "3")
    assert aof.mark == other.woff == core.master_repl_offset > offset


def test_the_replication_feed_hands_offsets_only_while_the_aof_is_on(tmp_path: Path) -> None:
    core, p, log = aof_server(tmp_path)
    repl = with_replication(core, p, log)
    assert repl.aof_offsets is not None
    p.stop_aof()
    assert repl.aof_offsets is None
    c = client(core)
    run(core, c, "SET", "k", "v")  # no AOF: nothing to hand
    run(core, c, "FLUSHALL")  # an empty dataset: the AOF is created without a child
    p.create_aof()
    assert repl.aof_offsets is not None


# -- appendfsync always and the bytes of the stream that are no write (issue 14) ---------------


def test_durable_mark_covers_stream_bytes_that_never_reach_the_aof(tmp_path: Path) -> None:
    # Keep-alives, GETACK and PUBLISH move the stream offset, not the AOF: once every
    # effect is fsynced they leave nothing to wait for.
    core, p, log = aof_server(tmp_path, "appendfsync always")
    repl = with_replication(core, p, log)
    c = client(core)
    run(core, c, "SET", "k", "v")
    p.before_replies()
    repl.engine.table.feed(PING)
    assert p.durable_mark() == core.master_repl_offset == c.woff + len(PING)
    run(core, c, "SET", "k", "w")  # buffered, not fsynced: its reply waits
    mark = p.durable_mark()
    assert mark is not None and mark < c.woff
    p.before_replies()
    assert p.durable_mark() == c.woff


@pytest.mark.parametrize("keepalive", [PING, GETACK], ids=["ping", "getack"])
def test_syncwoff_after_a_keepalive_is_the_last_writes_offset(
    tmp_path: Path, keepalive: bytes
) -> None:
    # The endpoint's SET over its shared connection, then ACKDB.SYNCWOFF + WAIT on the
    # client's own: a PING or GETACK fed in between was taken as the client's last write
    # offset, so under always the replies waited for a write that never came (issue 14:
    # every client of the endpoint stalled), and WAIT waited for the keep-alive's ACK.
    core, p, log = aof_server(tmp_path, "appendfsync always")
    repl = with_replication(core, p, log)
    shared, own = client(core), client(core)
    run(core, shared, "SET", "k", "v")
    p.before_replies()
    repl.engine.table.feed_keepalive(keepalive)
    assert core.master_repl_offset == shared.woff + len(keepalive)
    assert run(core, own, "ACKDB.SYNCWOFF") == b"+OK\r\n"
    assert own.woff == shared.woff
    mark = p.durable_mark()
    assert mark is not None and own.woff <= mark  # the replies may leave
