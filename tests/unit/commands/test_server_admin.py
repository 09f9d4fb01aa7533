"""Server administration commands run through the core: INFO, CONFIG, DBSIZE, FLUSHDB,
FLUSHALL, TIME, LASTSAVE, ROLE, SHUTDOWN, SLOWLOG, DEBUG, MONITOR.

Expected replies and error texts are redis-server 7.0.15's (run side by side while writing
these tests) where 7.0 and 7.2 agree, and the Redis 7.2 INFO field lists otherwise.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import hiredis
import pytest

import ackdb.commands  # noqa: F401  (registers the command table)
from ackdb import REDIS_COMPAT_VERSION, __version__
from ackdb.commands.table import TABLE
from ackdb.engine.core import Server
from ackdb.resp.encoder import RESP3
from ackdb.server.config import load_config
from ackdb.server.engine_host import build_engine
from ackdb.server.info import bytes_to_human, info_text, select_sections

ZEROS = "0" * 40


class FakeConn:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def make_server(overrides: str = "", config_file: str | None = None) -> Server:
    return build_engine(load_config(config_file, overrides))


@pytest.fixture
def srv() -> Server:
    return make_server()


def connect(srv: Server, addr: str = "127.0.0.1:50000") -> Any:
    return srv.new_client(FakeConn(), addr, "127.0.0.1:6379", 10)


@pytest.fixture
def c(srv: Server) -> Any:
    return connect(srv)


def raw(c: Any, *args: str | bytes) -> bytes:
    argv = [a.encode() if isinstance(a, str) else a for a in args]
    reply = c.server.process(c, argv)
    assert isinstance(reply, bytes)
    return reply


def run(c: Any, *args: str | bytes) -> Any:
    """The decoded reply; a top-level error or status comes back as its text (str)."""
    data = raw(c, *args)
    if data[:1] in (b"-", b"+"):
        return data[1:-2].decode()
    reader = hiredis.Reader()
    reader.feed(data)
    reply = reader.gets()
    assert reply is not False, data
    return reply


def info_fields(c: Any, *sections: str) -> dict[str, str]:
    text = run(c, "INFO", *sections).decode()
    return dict(line.split(":", 1) for line in text.split("\r\n") if line and line[0] != "#")


def titles(c: Any, *sections: str) -> list[str]:
    text = run(c, "INFO", *sections).decode()
    return [line[2:] for line in text.split("\r\n") if line.startswith("# ")]


def resp3(c: Any) -> None:
    c.resp = 3
    c.p = RESP3


# -- INFO: sections ---------------------------------------------------------------------------

DEFAULT_TITLES = [
    "Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU", "Modules",
    "Errorstats", "Cluster", "Keyspace",
]  # fmt: skip
ALL_TITLES = (
    DEFAULT_TITLES[:8] + ["Commandstats", "Errorstats", "Latencystats"] + DEFAULT_TITLES[9:]
)


def test_info_default_sections_in_order(c: Any) -> None:
    assert titles(c) == DEFAULT_TITLES
    assert titles(c, "default") == DEFAULT_TITLES


@pytest.mark.parametrize("word", ["all", "everything", "ALL", "all server"])
def test_info_all_adds_commandstats_and_latencystats(c: Any, word: str) -> None:
    assert titles(c, *word.split()) == ALL_TITLES


def test_info_several_sections_print_in_fixed_order(c: Any) -> None:
    # Redis 7.0+: several sections at once, always in the server's order.
    assert titles(c, "keyspace", "CLIENTS", "server") == ["Server", "Clients", "Keyspace"]
    assert (
        titles(c, "default", "commandstats")
        == DEFAULT_TITLES[:8] + ["Commandstats"] + DEFAULT_TITLES[8:]
    )
    assert titles(c, "module_list") == ["Modules"]


def test_info_text_layout(c: Any) -> None:
    raw(c, "SET", "k", "v")
    text = run(c, "INFO", "cluster", "keyspace").decode()
    assert (
        text
        == "# Cluster\r\ncluster_enabled:0\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"
    )


def test_info_unknown_section_is_empty(c: Any) -> None:
    assert raw(c, "INFO", "nosuch") == b"$0\r\n\r\n"
    resp3(c)
    assert raw(c, "INFO", "nosuch") == b"=4\r\ntxt:\r\n"


def test_info_resp3_is_verbatim_text(c: Any) -> None:
    resp3(c)
    reply = raw(c, "INFO", "cluster")
    body = b"txt:# Cluster\r\ncluster_enabled:0\r\n"
    assert reply == b"=%d\r\n%s\r\n" % (len(body), body)


def test_select_sections() -> None:
    assert select_sections([]) == select_sections([b"default"])
    assert "commandstats" not in select_sections([])
    assert select_sections([b"bogus"]) == set()
    assert select_sections([b"Modules"]) == {"modules"}


# -- INFO: fields (Redis 7.2.3 INFO output, field names and order) -----------------------------

SERVER_72 = (
    "redis_version redis_git_sha1 redis_git_dirty redis_build_id redis_mode os arch_bits "
    "monotonic_clock multiplexing_api atomicvar_api gcc_version process_id process_supervised "
    "run_id tcp_port server_time_usec uptime_in_seconds uptime_in_days hz configured_hz "
    "lru_clock executable config_file io_threads_active listener0"
).split()
CLIENTS_72 = (
    "connected_clients cluster_connections maxclients client_recent_max_input_buffer "
    "client_recent_max_output_buffer blocked_clients tracking_clients "
    "clients_in_timeout_table total_blocking_keys total_blocking_keys_on_nokey"
).split()
PERSISTENCE_72 = (
    "loading async_loading current_cow_peak current_cow_size current_cow_size_age "
    "current_fork_perc current_save_keys_processed current_save_keys_total "
    "rdb_changes_since_last_save rdb_bgsave_in_progress rdb_last_save_time "
    "rdb_last_bgsave_status rdb_last_bgsave_time_sec rdb_current_bgsave_time_sec rdb_saves "
    "rdb_last_cow_size rdb_last_load_keys_expired rdb_last_load_keys_loaded aof_enabled "
    "aof_rewrite_in_progress aof_rewrite_scheduled aof_last_rewrite_time_sec "
    "aof_current_rewrite_time_sec aof_last_bgrewrite_status aof_rewrites "
    "aof_rewrites_consecutive_failures aof_last_write_status aof_last_cow_size "
    "module_fork_in_progress module_fork_last_cow_size"
).split()
REPLICATION_72 = (
    "role connected_slaves master_failover_state master_replid master_replid2 "
    "master_repl_offset second_repl_offset repl_backlog_active repl_backlog_size "
    "repl_backlog_first_byte_offset repl_backlog_histlen"
).split()
CPU_72 = (
    "used_cpu_sys used_cpu_user used_cpu_sys_children used_cpu_user_children "
    "used_cpu_sys_main_thread used_cpu_user_main_thread"
).split()
STATS_72_SOME = (
    "total_connections_received total_commands_processed instantaneous_ops_per_sec "
    "total_net_input_bytes total_net_output_bytes rejected_connections sync_full "
    "sync_partial_ok sync_partial_err expired_keys evicted_keys keyspace_hits keyspace_misses "
    "pubsub_channels unexpected_error_replies total_error_replies total_reads_processed "
    "acl_access_denied_channel"
).split()
MEMORY_72_SOME = (
    "used_memory used_memory_human used_memory_rss used_memory_rss_human used_memory_peak "
    "used_memory_peak_human used_memory_startup maxmemory maxmemory_human maxmemory_policy "
    "mem_fragmentation_ratio mem_allocator lazyfreed_objects"
).split()


def ordered_subsequence(names: list[str], fields: list[str]) -> bool:
    it = iter(fields)
    return all(name in it for name in names)


@pytest.mark.parametrize(
    ("section", "names", "exact"),
    [
        ("server", SERVER_72, False),
        ("clients", CLIENTS_72, False),
        ("persistence", PERSISTENCE_72, True),
        ("replication", REPLICATION_72, True),
        ("cpu", CPU_72, True),
        ("stats", STATS_72_SOME, False),
        ("memory", MEMORY_72_SOME, False),
    ],
)
def test_info_field_order(c: Any, section: str, names: list[str], exact: bool) -> None:
    fields = list(info_fields(c, section))
    if exact:
        assert fields == names
    else:
        assert ordered_subsequence(names, fields), fields


def test_info_server_fields(srv: Server, c: Any) -> None:
    f = info_fields(c, "server")
    assert f["redis_version"] == REDIS_COMPAT_VERSION
    assert f["ackdb_version"] == __version__
    assert list(f).index("ackdb_version") == 1
    assert f["redis_mode"] == "standalone"
    assert f["process_id"] == str(srv.pid)
    assert f["run_id"] == srv.run_id
    assert f["tcp_port"] == "6379"
    assert f["hz"] == f["configured_hz"] == "10"
    assert abs(int(f["server_time_usec"]) / 1e6 - time.time()) < 60
    assert f["listener0"] == "name=tcp,bind=*,bind=-::*,port=6379"
    assert f["config_file"] == ""


def test_info_clients(srv: Server, c: Any) -> None:
    other = connect(srv)
    raw(other, "WATCH", "a", "b")
    f = info_fields(c, "clients")
    assert f["connected_clients"] == "2"
    assert f["maxclients"] == "10000"
    assert f["watching_clients"] == "1"
    assert f["total_watched_keys"] == "2"
    assert f["blocked_clients"] == "0"


def test_info_memory_is_plausible(c: Any) -> None:
    f = info_fields(c, "memory")
    used = int(f["used_memory"])
    assert used > 1024 * 1024
    assert int(f["used_memory_peak"]) >= used
    assert int(f["used_memory_startup"]) <= used
    assert f["maxmemory"] == "0" and f["maxmemory_human"] == "0B"
    assert f["maxmemory_policy"] == "noeviction"
    assert re.fullmatch(r"\d+\.\d\dM", f["used_memory_human"])


def test_info_stats_and_persistence_follow_the_core(srv: Server, c: Any) -> None:
    raw(c, "SET", "a", "1")
    raw(c, "GET", "a")
    raw(c, "GET", "nope")
    raw(c, "NOSUCHCOMMAND")
    f = info_fields(c, "stats", "persistence")
    assert f["total_commands_processed"] == "3"  # INFO counts once it has run
    assert f["keyspace_hits"] == "1" and f["keyspace_misses"] == "1"
    assert f["total_error_replies"] == "1"
    assert f["total_connections_received"] == "1"
    assert f["rdb_changes_since_last_save"] == "1"
    assert f["rdb_last_save_time"] == str(int(srv.start_time_s))
    assert f["aof_enabled"] == "0" and f["loading"] == "0"


def test_info_replication(srv: Server, c: Any) -> None:
    f = info_fields(c, "replication")
    assert f["role"] == "master"
    assert re.fullmatch("[0-9a-f]{40}", f["master_replid"])
    assert f["master_replid"] != srv.run_id
    assert info_fields(c, "replication")["master_replid"] == f["master_replid"]
    assert f["master_replid2"] == ZEROS
    assert f["second_repl_offset"] == "-1"
    assert f["repl_backlog_size"] == "1048576"


def test_info_keyspace_lists_non_empty_dbs_with_ttl(srv: Server, c: Any) -> None:
    raw(c, "SET", "a", "1")
    raw(c, "SET", "b", "1", "EX", "100")
    raw(c, "SELECT", "3")
    raw(c, "SET", "x", "1")
    f = info_fields(c, "keyspace")
    assert list(f) == ["db0", "db3"]
    m = re.fullmatch(r"keys=2,expires=1,avg_ttl=(\d+)", f["db0"])
    assert m and 90_000 < int(m.group(1)) <= 100_000
    assert f["db3"] == "keys=1,expires=0,avg_ttl=0"


def test_info_commandstats_and_errorstats(c: Any) -> None:
    raw(c, "SET", "s", "x")
    raw(c, "INCR", "s")  # failed call
    raw(c, "GET")  # rejected call (arity)
    raw(c, "CONFIG", "GET", "hz")
    raw(c, "SET", "s", "1", "EX", "0")  # failed
    f = info_fields(c, "commandstats", "errorstats")
    assert re.fullmatch(
        r"calls=2,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=0,failed_calls=1",
        f["cmdstat_set"],
    )
    assert f["cmdstat_incr"].endswith("rejected_calls=0,failed_calls=1")
    assert f["cmdstat_get"].startswith("calls=0,usec=0,usec_per_call=0.00,rejected_calls=1")
    assert f["cmdstat_config|get"].startswith("calls=1,")
    assert f["errorstat_ERR"] == "count=3"
    assert "cmdstat_del" not in f


def test_info_errorstats_sorted_by_code(srv: Server, c: Any) -> None:
    srv.error_stats = {"WRONGTYPE": 1, "ERR": 2, "NOAUTH": 3}
    assert info_text(srv, [b"errorstats"]).split("\r\n")[1:4] == [
        "errorstat_ERR:count=2",
        "errorstat_NOAUTH:count=3",
        "errorstat_WRONGTYPE:count=1",
    ]


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0B"), (1023, "1023B"), (1024, "1.00K"), (916520, "895.04K"), (6742016, "6.43M"),
     (25276518400, "23.54G"), (2**40, "1.00T"), (2**50 * 3, "3.00P")],
)  # fmt: skip
def test_bytes_to_human(n: int, text: str) -> None:
    assert bytes_to_human(n) == text  # values from redis-server 7.0.15's INFO memory


# -- CONFIG ---------------------------------------------------------------------------------


def test_config_get_exact_and_glob(c: Any) -> None:
    assert run(c, "CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
    # An exact name is echoed as typed; a name matched again is not repeated.
    reply = run(c, "CONFIG", "GET", "MAXMEMORY", "maxmemory", "maxmem*")
    names = reply[::2]
    assert names[0] == b"MAXMEMORY"
    assert sorted(names[1:]) == [
        b"maxmemory-clients", b"maxmemory-eviction-tenacity", b"maxmemory-policy",
        b"maxmemory-samples",
    ]  # fmt: skip
    assert run(c, "CONFIG", "GET", "nosuch") == []


def test_config_get_glob_matches_aliases(c: Any) -> None:
    reply = run(c, "CONFIG", "GET", "*read-only")
    assert dict(zip(reply[::2], reply[1::2], strict=True)) == {
        b"replica-read-only": b"yes",
        b"slave-read-only": b"yes",
    }
    everything = run(c, "CONFIG", "GET", "*")
    names = everything[::2]
    assert len(names) == len(set(names)) > 150
    assert b"slaveof" in names and b"replicaof" in names


def test_config_get_hidden_only_by_exact_name(c: Any) -> None:
    assert run(c, "CONFIG", "GET", "watchdog-period") == [b"watchdog-period", b"0"]
    assert run(c, "CONFIG", "GET", "watchdog*") == []


def test_config_get_resp3_is_a_map(c: Any) -> None:
    resp3(c)
    assert raw(c, "CONFIG", "GET", "maxmemory") == b"%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"


def test_config_set(srv: Server, c: Any) -> None:
    assert run(c, "CONFIG", "SET", "maxmemory", "10mb", "hz", "20") == "OK"
    assert run(c, "CONFIG", "GET", "maxmemory") == [b"maxmemory", b"10485760"]
    assert srv.config.get("hz") == 20
    assert run(c, "CONFIG", "SET", "slowlog-log-slower-than", "12345") == "OK"
    assert srv.slowlog_slower_than_us == 12345  # the core's copy follows


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["maxmemory"], "ERR wrong number of arguments for 'config|set' command"),
        (["a", "b", "c"], "ERR syntax error"),
        (["foo", "bar"], "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
        (
            ["maxmemory", "abc"],
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value",
        ),
        (
            ["databases", "4"],
            "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config",
        ),
        (
            ["hz", "5", "HZ", "6"],
            "ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter",
        ),
    ],
)
def test_config_set_errors(c: Any, args: list[str], error: str) -> None:
    assert run(c, "CONFIG", "SET", *args) == error


def test_config_set_is_atomic(srv: Server, c: Any) -> None:
    assert run(c, "CONFIG", "SET", "hz", "30", "maxmemory", "bad").startswith(
        "ERR CONFIG SET failed"
    )
    assert srv.config.get("hz") == 10


def test_config_resetstat(srv: Server, c: Any) -> None:
    raw(c, "CONFIG", "SET", "slowlog-log-slower-than", "0")
    raw(c, "SET", "a", "1")
    raw(c, "NOSUCH")
    assert run(c, "CONFIG", "RESETSTAT") == "OK"
    f = info_fields(c, "stats", "commandstats", "errorstats")
    assert f["total_commands_processed"] == "1"  # RESETSTAT itself, counted after the reset
    assert f["total_error_replies"] == "0"
    assert f["total_connections_received"] == "0"
    assert list(k for k in f if k.startswith("cmdstat_")) == ["cmdstat_config|resetstat"]
    assert not any(k.startswith("errorstat_") for k in f)
    assert run(c, "SLOWLOG", "LEN") > 0  # Redis leaves the slowlog alone


def test_config_rewrite(tmp_path: Path, c: Any) -> None:
    assert run(c, "CONFIG", "REWRITE") == "ERR The server is running without a config file"
    path = tmp_path / "ackdb.conf"
    path.write_text("port 7777\n")
    srv = make_server(config_file=str(path))
    c2 = connect(srv)
    assert run(c2, "CONFIG", "SET", "maxmemory", "1mb") == "OK"
    assert run(c2, "CONFIG", "REWRITE") == "OK"
    text = path.read_text()
    assert "port 7777" in text and "maxmemory 1mb" in text


def test_config_rewrite_error_text(tmp_path: Path) -> None:
    path = tmp_path / "ackdb.conf"
    path.write_text("")
    srv = make_server(config_file=str(path))
    path.unlink()
    path.mkdir()  # the config file became a directory: reading it fails
    assert run(connect(srv), "CONFIG", "REWRITE") == "ERR Rewriting config file: Is a directory"


def test_config_help_and_unknown(c: Any) -> None:
    lines = run(c, "CONFIG", "HELP")
    assert lines[0] == b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert lines[1] == b"GET <pattern>"
    assert lines[-2:] == [b"HELP", b"    Prints this help."]
    assert raw(c, "CONFIG", "HELP").startswith(b"*11\r\n+CONFIG <subcommand>")
    assert run(c, "CONFIG", "foo") == "ERR unknown subcommand 'foo'. Try CONFIG HELP."
    assert run(c, "CONFIG", "GET") == "ERR wrong number of arguments for 'config|get' command"
    assert (
        run(c, "CONFIG", "RESETSTAT", "x")
        == "ERR wrong number of arguments for 'config|resetstat' command"
    )


# -- DBSIZE, FLUSHDB, FLUSHALL ------------------------------------------------------------------


def test_dbsize_and_flushdb(srv: Server, c: Any) -> None:
    for k in "abc":
        raw(c, "SET", k, "1")
    raw(c, "SELECT", "1")
    raw(c, "SET", "z", "1")
    assert run(c, "DBSIZE") == 1
    dirty = srv.dirty
    assert run(c, "FLUSHDB") == "OK"
    assert srv.dirty == dirty + 1
    assert run(c, "DBSIZE") == 0
    raw(c, "SELECT", "0")
    assert run(c, "DBSIZE") == 3
    assert run(c, "FLUSHALL", "SYNC") == "OK"
    assert srv.dirty == dirty + 4
    assert run(c, "DBSIZE") == 0


@pytest.mark.parametrize("cmd", ["FLUSHDB", "FLUSHALL"])
@pytest.mark.parametrize("args", [["foo"], ["async", "sync"], ["sync", "x"]])
def test_flush_syntax_errors(c: Any, cmd: str, args: list[str]) -> None:
    raw(c, "SET", "k", "v")
    assert run(c, cmd, *args) == "ERR syntax error"
    assert run(c, "DBSIZE") == 1


@pytest.mark.parametrize("cmd", [["FLUSHDB"], ["FLUSHALL", "ASYNC"], ["flushdb", "sync"]])
def test_flush_is_propagated_as_is_even_when_empty(srv: Server, c: Any, cmd: list[str]) -> None:
    effects: list[tuple[int, list[bytes]]] = []
    srv.add_feed(lambda db, argv: effects.append((db, argv)))
    raw(c, *cmd)
    raw(c, "SET", "k", "v")
    raw(c, *cmd)
    argv = [a.encode() for a in cmd]
    assert effects == [(0, argv), (0, [b"SET", b"k", b"v"]), (0, argv)]


def test_flush_touches_watched_keys(srv: Server, c: Any) -> None:
    raw(c, "SET", "w", "1")
    raw(c, "WATCH", "w")
    other = connect(srv)
    raw(other, "FLUSHALL")
    raw(c, "MULTI")
    raw(c, "GET", "w")
    assert raw(c, "EXEC") == b"*-1\r\n"


def test_flush_inside_exec_is_wrapped(srv: Server, c: Any) -> None:
    effects: list[list[bytes]] = []
    srv.add_feed(lambda db, argv: effects.append(argv))
    raw(c, "MULTI")
    raw(c, "FLUSHDB")
    raw(c, "SET", "a", "1")
    raw(c, "EXEC")
    assert effects == [[b"MULTI"], [b"FLUSHDB"], [b"SET", b"a", b"1"], [b"EXEC"]]


# -- TIME, LASTSAVE, ROLE -----------------------------------------------------------------------


def test_time(c: Any) -> None:
    seconds, micros = run(c, "TIME")
    assert abs(int(seconds) + int(micros) / 1e6 - time.time()) < 5
    assert 0 <= int(micros) < 1_000_000


def test_lastsave_and_role(srv: Server, c: Any) -> None:
    assert run(c, "LASTSAVE") == int(srv.start_time_s)
    assert raw(c, "ROLE") == b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"


# -- SHUTDOWN ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "mode"),
    [
        ([], "default"),
        (["NOSAVE"], "nosave"),
        (["save", "now", "force"], "save"),
        (["now", "now"], "default"),
    ],
)
def test_shutdown_requests_and_replies_nothing(
    srv: Server, c: Any, args: list[str], mode: str
) -> None:
    assert raw(c, "SHUTDOWN", *args) == b""
    assert srv.shutdown_requested == mode
    assert c.close_after_reply


@pytest.mark.parametrize("args", [["foo"], ["nosave", "save"], ["abort", "now"], ["save", "abort"]])
def test_shutdown_syntax_errors(srv: Server, c: Any, args: list[str]) -> None:
    assert run(c, "SHUTDOWN", *args) == "ERR syntax error"
    assert srv.shutdown_requested is None


def test_shutdown_abort_and_multi(srv: Server, c: Any) -> None:
    assert run(c, "SHUTDOWN", "ABORT") == "ERR No shutdown in progress."
    raw(c, "MULTI")
    assert run(c, "SHUTDOWN") == "ERR Command not allowed inside a transaction"
    assert srv.shutdown_requested is None


# -- SLOWLOG ----------------------------------------------------------------------------------


def test_slowlog_get_len_reset(srv: Server, c: Any) -> None:
    raw(c, "CONFIG", "SET", "slowlog-log-slower-than", "0")
    for i in range(12):
        raw(c, "SET", f"k{i}", "v")
    assert run(c, "SLOWLOG", "LEN") == 13  # CONFIG SET and the SETs; LEN is logged after
    entries = run(c, "SLOWLOG", "GET")
    assert len(entries) == 10
    newest = entries[1]  # entries[0] is the SLOWLOG LEN
    assert newest[0] == 12  # ids count from 0
    assert abs(newest[1] - time.time()) < 60
    assert isinstance(newest[2], int)
    assert newest[3] == [b"SET", b"k11", b"v"]
    assert newest[4] == b"127.0.0.1:50000"
    assert len(run(c, "SLOWLOG", "GET", "2")) == 2
    assert run(c, "SLOWLOG", "GET", "0") == []
    assert len(run(c, "SLOWLOG", "GET", "-1")) == len(srv.slowlog) - 1  # not itself
    next_id = srv.slowlog_next_id
    assert run(c, "SLOWLOG", "RESET") == "OK"
    assert run(c, "SLOWLOG", "LEN") == 1  # the RESET itself was slow enough
    oldest = run(c, "SLOWLOG", "GET")[-1]
    assert oldest[0] == next_id and oldest[3] == [b"SLOWLOG", b"RESET"]


@pytest.mark.parametrize("count", ["abc", "-2", "1.5"])
def test_slowlog_get_bad_count(c: Any, count: str) -> None:
    assert run(c, "SLOWLOG", "GET", count) == "ERR count should be greater than or equal to -1"


def test_slowlog_errors_and_help(c: Any) -> None:
    assert (
        run(c, "SLOWLOG", "LEN", "x") == "ERR wrong number of arguments for 'slowlog|len' command"
    )
    assert (
        run(c, "SLOWLOG", "GET", "1", "2")
        == "ERR wrong number of arguments for 'slowlog|get' command"
    )
    assert run(c, "SLOWLOG", "foo") == "ERR unknown subcommand 'foo'. Try SLOWLOG HELP."
    help_lines = run(c, "SLOWLOG", "HELP")
    assert help_lines[1] == b"GET [<count>]"
    assert len(help_lines) == 12


def test_slowlog_entry_resp_shape(srv: Server, c: Any) -> None:
    raw(c, "CONFIG", "SET", "slowlog-log-slower-than", "0")
    raw(c, "SET", "a", "b")
    entry = raw(c, "SLOWLOG", "GET", "1")
    assert re.fullmatch(
        rb"\*1\r\n\*6\r\n:1\r\n:\d+\r\n:\d+\r\n\*3\r\n\$3\r\nSET\r\n\$1\r\na\r\n\$1\r\nb\r\n"
        rb"\$15\r\n127\.0\.0\.1:50000\r\n\$0\r\n\r\n",
        entry,
    )


# -- DEBUG ----------------------------------------------------------------------------------


def test_debug_digest_matches_redis(c: Any) -> None:
    assert run(c, "DEBUG", "DIGEST") == ZEROS
    raw(c, "SET", "a", "1")
    assert run(c, "DEBUG", "DIGEST-VALUE", "a", "zz") == [
        b"b4fc66738120fba0b5aa500ab5c2bf89cea1c5da",
        ZEROS.encode(),
    ]
    assert run(c, "DEBUG", "DIGEST-VALUE") == []
    raw(c, "DEBUG", "POPULATE", "3")
    # redis-server 7.0.15: FLUSHALL, SET a 1, DEBUG POPULATE 3, DEBUG DIGEST
    assert raw(c, "DEBUG", "DIGEST") == b"+cc50add1a4b500b6af2c618728b5bd8746d15bff\r\n"
    raw(c, "DEBUG", "POPULATE", "2", "p", "20")
    assert run(c, "DEBUG", "DIGEST") == "05562c871ecb3f1a482629a8c5a4357a6d3c1f58"


def test_debug_populate(srv: Server, c: Any) -> None:
    raw(c, "SET", "key:1", "mine")
    dirty = srv.dirty
    assert run(c, "DEBUG", "POPULATE", "3") == "OK"
    assert run(c, "MGET", "key:0", "key:1", "key:2", "key:3") == [
        b"value:0",
        b"mine",
        b"value:2",
        None,
    ]
    assert srv.dirty == dirty  # Redis: not counted, not propagated
    raw(c, "DEBUG", "POPULATE", "2", "p", "2")
    raw(c, "DEBUG", "POPULATE", "2", "z", "10")
    raw(c, "DEBUG", "POPULATE", "1", "q", "0")
    assert run(c, "MGET", "p:0", "p:1", "z:1", "q:0") == [
        b"va",
        b"va",
        b"value:1\0\0\0",
        b"value:0",
    ]
    assert run(c, "DEBUG", "POPULATE", "0") == "OK"


def test_debug_populate_replaces_expired_keys(srv: Server, c: Any) -> None:
    raw(c, "SET", "key:0", "old", "PX", "1")
    srv.dbs[0].expires[b"key:0"] = 1  # long gone
    raw(c, "DEBUG", "POPULATE", "1")
    assert run(c, "GET", "key:0") == b"value:0"
    assert run(c, "TTL", "key:0") == -1


@pytest.mark.parametrize("args", [["abc"], ["-1"], ["3", "q", "-1"], ["3", "q", "x"]])
def test_debug_populate_errors(c: Any, args: list[str]) -> None:
    assert run(c, "DEBUG", "POPULATE", *args) == "ERR value is out of range, must be positive"


@pytest.mark.parametrize(
    "args", [["POPULATE"], ["populate", "1", "a", "2", "3"], ["nosuch"], ["SLEEP"], ["digest", "x"]]
)
def test_debug_unknown_or_wrong_arity(c: Any, args: list[str]) -> None:
    assert run(c, "DEBUG", *args) == (
        f"ERR unknown subcommand or wrong number of arguments for '{args[0]}'. Try DEBUG HELP."
    )


def test_debug_sleep_blocks(c: Any) -> None:
    t0 = time.monotonic()
    assert run(c, "DEBUG", "SLEEP", "0.05") == "OK"
    assert time.monotonic() - t0 >= 0.05
    assert run(c, "DEBUG", "SLEEP", "abc") == "OK"  # strtod: no number is 0
    assert run(c, "DEBUG", "SLEEP", "-1") == "OK"


def test_debug_set_active_expire(srv: Server, c: Any) -> None:
    assert run(c, "DEBUG", "SET-ACTIVE-EXPIRE", "0") == "OK"
    assert srv.active_expire is False
    assert run(c, "DEBUG", "SET-ACTIVE-EXPIRE", "2") == "OK"  # atoi: non-zero is on
    assert srv.active_expire is True
    run(c, "DEBUG", "SET-ACTIVE-EXPIRE", "x")
    assert srv.active_expire is False


def test_debug_reload_keeps_the_dataset(srv: Server, c: Any) -> None:
    raw(c, "SET", "a", "1")
    srv.dbs[0].set(b"h", {b"f": b"v"})
    raw(c, "SET", "t", "1", "EX", "100")
    raw(c, "SELECT", "5")
    raw(c, "SET", "b", "2")
    raw(c, "SELECT", "0")
    raw(c, "SET", "gone", "1", "PX", "1")
    srv.dbs[0].expires[b"gone"] = 1
    expected = srv.dbs[0].expires[b"t"]
    before = run(c, "DEBUG", "DIGEST")
    hash_before = srv.dbs[0].data[b"h"]
    assert run(c, "DEBUG", "RELOAD") == "OK"
    assert b"gone" not in srv.dbs[0].data  # an RDB load on a primary drops expired keys
    raw(c, "DEL", "gone")
    assert srv.dbs[0].expires[b"t"] == expected
    assert srv.dbs[0].data[b"h"] == hash_before and srv.dbs[0].data[b"h"] is not hash_before
    assert run(c, "DEBUG", "RELOAD", "MERGE", "noflush") == "OK"
    assert run(c, "DBSIZE") == 3
    assert run(c, "DEBUG", "DIGEST") != before  # "gone" was part of the old digest
    srv.dbs[0].data[b"gone"] = b"1"
    srv.dbs[0].expires[b"gone"] = 1
    assert run(c, "DEBUG", "DIGEST") == before


def test_debug_reload_errors(c: Any) -> None:
    raw(c, "SET", "a", "1")
    assert run(c, "DEBUG", "RELOAD", "x") == (
        "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."
    )
    assert run(c, "DEBUG", "RELOAD", "NOSAVE") == (
        "ERR Error trying to load the RDB dump, check server logs."
    )
    assert run(c, "DBSIZE") == 1  # not flushed


def test_debug_object(c: Any) -> None:
    raw(c, "SET", "a", "123")
    raw(c, "SET", "s", "hello")
    assert re.fullmatch(
        r"Value at:0x[0-9a-f]+ refcount:1 encoding:int serializedlength:3 lru:\d+ lru_seconds_idle:0",
        run(c, "DEBUG", "OBJECT", "a"),
    )
    assert "encoding:embstr" in run(c, "DEBUG", "OBJECT", "s")
    assert run(c, "DEBUG", "OBJECT", "zz") == "ERR no such key"


def test_debug_help(c: Any) -> None:
    lines = run(c, "DEBUG", "HELP")
    assert lines[0] == b"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    names = {line.split()[0] for line in lines[1:] if not line.startswith(b" ")}
    assert names == {
        b"DIGEST", b"DIGEST-VALUE", b"DISK-FAULT", b"OBJECT", b"POPULATE", b"RELOAD",
        b"SET-ACTIVE-EXPIRE", b"SLEEP", b"HELP",
    }  # fmt: skip


DEBUG_DENIED = (
    'ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", '
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server."
)


@pytest.mark.parametrize(
    ("setting", "addr", "allowed"),
    [
        ("local", "127.0.0.1:5000", True),
        ("local", "::1:5000", True),
        ("local", "/unix", True),
        ("local", "10.0.0.7:5000", False),
        ("local", "127.0.0.2:5000", False),
        ("no", "127.0.0.1:5000", False),
        ("yes", "10.0.0.7:5000", True),
    ],
)
def test_debug_gate(setting: str, addr: str, allowed: bool) -> None:
    srv = make_server(f"enable-debug-command {setting}")
    reply = run(connect(srv, addr), "DEBUG", "DIGEST")
    assert reply == (ZEROS if allowed else DEBUG_DENIED)


def test_debug_default_allows_local_only(srv: Server) -> None:
    assert srv.config.get("enable-debug-command") == "local"


@pytest.mark.slow
def test_debug_populate_a_million_keys_quickly(c: Any) -> None:
    t0 = time.process_time()
    raw(c, "DEBUG", "POPULATE", "1000000")
    assert time.process_time() - t0 < 3
    assert run(c, "DBSIZE") == 1_000_000


# -- MONITOR ----------------------------------------------------------------------------------


def test_monitor(srv: Server, c: Any) -> None:
    assert run(c, "MONITOR") == "OK"
    assert c.monitor and srv.monitors == [c]
    assert raw(c, "MONITOR") == b""  # already monitoring: ignored silently
    assert srv.monitors == [c]
    other = connect(srv, "127.0.0.1:50001")
    raw(other, "SET", "k", "v")
    line = c.conn.written[-1]
    assert re.fullmatch(rb'\+\d+\.\d{6} \[0 127\.0\.0\.1:50001\] "SET" "k" "v"\r\n', line)
    srv.client_gone(c)
    assert srv.monitors == []


def test_monitor_inside_exec(srv: Server, c: Any) -> None:
    raw(c, "MULTI")
    assert run(c, "MONITOR") == "QUEUED"
    assert raw(c, "EXEC") == b"*1\r\n-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n"
    assert not c.monitor and srv.monitors == []


# -- the command table --------------------------------------------------------------------------

# redis-server 7.0.15 COMMAND INFO (arity, flags); none of these commands takes keys.
TABLE_ENTRIES = {
    "info": (-1, "loading stale"),
    "config|get": (-3, "admin noscript loading stale"),
    "config|set": (-4, "admin noscript loading stale"),
    "config|resetstat": (2, "admin noscript loading stale"),
    "config|rewrite": (2, "admin noscript loading stale"),
    "config|help": (2, "loading stale"),
    "dbsize": (1, "readonly fast"),
    "flushdb": (-1, "write"),
    "flushall": (-1, "write"),
    "time": (1, "loading stale fast"),
    "lastsave": (1, "loading stale fast"),
    "shutdown": (-1, "admin noscript loading stale no_multi allow_busy"),
    "role": (1, "noscript loading stale fast"),
    "slowlog|get": (-2, "admin loading stale"),
    "slowlog|len": (2, "admin loading stale"),
    "slowlog|reset": (2, "admin loading stale"),
    "slowlog|help": (2, "loading stale"),
    "debug": (-2, "admin noscript loading stale"),
    "monitor": (1, "admin noscript loading stale"),
}


@pytest.mark.parametrize("name", sorted(TABLE_ENTRIES))
def test_command_table_entries(name: str) -> None:
    top, _, sub = name.partition("|")
    cmd = TABLE.get(top.encode())
    assert cmd is not None
    if sub:
        cmd = cmd.subcommands[sub.encode()]
    arity, flags = TABLE_ENTRIES[name]
    assert cmd.name == name
    assert cmd.arity == arity
    assert cmd.flags == frozenset(flags.split())
    assert (cmd.first_key, cmd.last_key, cmd.step) == (0, 0, 0)
    assert cmd.summary
