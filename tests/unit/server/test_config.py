"""Tests for ackdb.server.config: redis.conf parsing, overrides, CONFIG SET and REWRITE.

Expected texts are redis-server 7.2's (src/config.c, src/sds.c, src/server.c main()).
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ackdb.server.config import (
    REWRITE_SIGNATURE,
    Config,
    ConfigError,
    ConfigRewriteError,
    ConfigSetError,
    load_config,
    parse_command_line,
    parse_config_text,
    quote_arg,
    split_args,
)
from ackdb.server.config_table import format_memory, parse_memory


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# -- split_args: Redis sdssplitargs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", []),
        ("   \t ", []),
        ("set key value", ["set", "key", "value"]),
        ("  a   b  ", ["a", "b"]),
        ('save ""', ["save", ""]),
        ('"a b" c', ["a b", "c"]),
        (r'"\n\r\t\b\a\\\""', ['\n\r\t\b\a\\"']),
        (r'"\x41\x7a"', ["Az"]),
        (r'"\xzz"', ["xzz"]),  # not hex: \x is just x
        (r'"\q"', ["q"]),  # unknown escape is the character itself
        (r"'it\'s'", ["it's"]),
        (r"'a\nb'", ["a\\nb"]),  # single quotes: only \' is an escape
        ('ab"c d"e', None),  # closing quote followed by a letter
        ('a"b c"', ["ab c"]),  # a quote starts quoting even mid-argument
        ("x'y z'", ["xy z"]),
        (r'"\xc3\xa9"', ["\u00e9"]),  # bytes decode as UTF-8
    ],
)
def test_split_args(line: str, expected: list[str] | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="unbalanced quotes"):
            split_args(line)
    else:
        assert split_args(line) == expected


@pytest.mark.parametrize("line", ['"abc', "'abc", '"abc\\"', '"a"b', "'a'b", '"ab\\'])
def test_split_args_unbalanced(line: str) -> None:
    with pytest.raises(ValueError, match="unbalanced quotes"):
        split_args(line)


def test_split_args_non_utf8_bytes_survive_as_surrogates() -> None:
    [arg] = split_args(r'"\xff"')
    assert arg.encode("utf-8", "surrogateescape") == b"\xff"
    assert quote_arg(arg) == r'"\xff"'


def test_quote_arg_matches_sdscatrepr() -> None:
    assert quote_arg("dump.rdb") == '"dump.rdb"'
    assert quote_arg('a"b\\c\n\x01') == r'"a\"b\\c\n\x01"'
    assert quote_arg("") == '""'


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(st.lists(_text, max_size=6))
def test_quote_then_split_round_trips(args: list[str]) -> None:
    assert split_args(" ".join(quote_arg(arg) for arg in args)) == args


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_split_args_never_fails_unexpectedly(line: str) -> None:
    try:
        args = split_args(line)
    except ValueError as exc:
        assert str(exc) == "unbalanced quotes"
    else:
        assert all(isinstance(arg, str) for arg in args)


# -- memory units ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("100", 100),
        ("1b", 1),
        ("1k", 1000),
        ("1kb", 1024),
        ("1K", 1000),
        ("1KB", 1024),
        ("2m", 2_000_000),
        ("2mb", 2 * 1024**2),
        ("1g", 10**9),
        ("1Gb", 1024**3),
        ("-1", None),
        ("1tb", None),
        ("1.5mb", None),
        (" 1", None),
        (str(2**64), None),
        ("18014398509481984gb", None),  # overflows unsigned 64 bits
    ],
)
def test_parse_memory(text: str, value: int | None) -> None:
    assert parse_memory(text) == value


def test_format_memory_uses_largest_exact_unit() -> None:
    assert [format_memory(v) for v in (0, 1000, 1024, 3 * 1024**2, 1024**3, 1025)] == [
        "0",
        "1000",
        "1kb",
        "3mb",
        "1gb",
        "1025",
    ]


# -- parsing config text -----------------------------------------------------------------------


def test_parse_config_text_skips_comments_and_lowercases_names() -> None:
    lines = parse_config_text("# c\n\n  PORT 7000\r\n\tSave 1 2\n   # indented\n", "x.conf")
    assert [(e.line_number, e.args) for e in lines] == [
        (3, ["port", "7000"]),
        (4, ["save", "1", "2"]),
    ]
    assert lines[0].source == "x.conf"
    assert lines[0].line == "PORT 7000"


def test_unbalanced_quotes_error_names_file_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text('port 1\nlogfile "x\n', "a.conf")
    text = str(info.value)
    assert "*** FATAL CONFIG FILE ERROR" in text
    assert "'a.conf', at line 2" in text
    assert ">>> 'logfile \"x'" in text
    assert "Unbalanced quotes in configuration line" in text


def test_defaults_match_redis_7_2() -> None:
    cfg = Config()
    expected = {
        "port": "6379",
        "bind": "* -::*",
        "protected-mode": "yes",
        "tcp-backlog": "511",
        "timeout": "0",
        "tcp-keepalive": "300",
        "daemonize": "no",
        "loglevel": "notice",
        "logfile": "",
        "databases": "16",
        "maxclients": "10000",
        "maxmemory": "0",
        "maxmemory-policy": "noeviction",
        "hz": "10",
        "dbfilename": "dump.rdb",
        "save": "3600 1 300 100 60 10000",
        "appendfsync": "everysec",
        "repl-backlog-size": "1048576",
        "proto-max-bulk-len": "536870912",
        "client-query-buffer-limit": "1073741824",
        "client-output-buffer-limit": (
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        ),
        "slowlog-log-slower-than": "10000",
        "slowlog-max-len": "128",
        "notify-keyspace-events": "",
        "hash-max-listpack-entries": "512",
        "hash-max-listpack-value": "64",
        "list-max-listpack-size": "-2",
        "set-max-intset-entries": "512",
        "zset-max-listpack-entries": "128",
        "zset-max-listpack-value": "64",
        "active-expire-effort": "1",
        "enable-debug-command": "local",  # ackdb: Redis says "no"
        "replicaof": "",
        "latency-tracking-info-percentiles": "50 99 99.9",
        "shutdown-on-sigint": "default",
        "unixsocketperm": "0",
        "requirepass": "",
    }
    assert {name: cfg.get_string(name) for name in expected} == expected
    assert cfg.get_string("dir") == os.path.realpath(os.getcwd())


def test_names_include_aliases_but_not_hidden() -> None:
    names = Config.names()
    assert {"replica-read-only", "slave-read-only", "slaveof", "lua-time-limit"} <= set(names)
    assert "key-load-delay" not in names
    assert Config().get("key-load-delay") == 0  # an exact name still works
    assert len(names) == len(set(names))


# -- loading -----------------------------------------------------------------------------------


def test_load_file_values_aliases_and_units(tmp_path: Path) -> None:
    path = write(
        tmp_path / "redis.conf",
        "# comment\n"
        "port 7000\n"
        "MAXMEMORY 1GB\n"
        "slave-read-only no\n"
        "hash-max-ziplist-entries 64\n"
        "maxmemory-policy ALLKEYS-LRU\n"
        'requirepass "s3cr et"\n'
        "bind 127.0.0.1 ::1\n"
        "client-output-buffer-limit replica 1mb 2k 5\n"
        "notify-keyspace-events KEA\n"
        "oom-score-adj relative\n"
        "maxmemory-clients 10%\n"
        "unixsocketperm 0770\n"
        "shutdown-on-sigint save NOW\n"
        "slaveof 10.0.0.1 6380\n",
    )
    cfg = load_config(path)
    assert cfg.config_file == os.path.abspath(path)
    assert cfg.values["port"] == 7000
    assert cfg.get("maxmemory") == 1024**3
    assert cfg.get_string("maxmemory") == "1073741824"
    assert cfg.values["replica-read-only"] is False
    assert cfg.get_string("slave-read-only") == "no"
    assert cfg.values["hash-max-listpack-entries"] == 64
    assert cfg.get_string("maxmemory-policy") == "allkeys-lru"
    assert cfg.get("requirepass") == "s3cr et"
    assert cfg.get("bind") == ("127.0.0.1", "::1")
    assert cfg.get_string("client-output-buffer-limit").split()[4:8] == [
        "slave",
        "1048576",
        "2000",
        "5",
    ]
    assert cfg.get_string("notify-keyspace-events") == "AKE"
    assert cfg.get_string("oom-score-adj") == "yes"
    assert cfg.get_string("maxmemory-clients") == "10%"
    assert cfg.get_string("unixsocketperm") == "770"
    assert cfg.get_string("shutdown-on-sigint") == "save now"
    assert cfg.get("replicaof") == ("10.0.0.1", 6380)
    assert cfg.warnings == []


def test_later_lines_win_and_hz_is_clamped(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "a.conf", "hz 5\nhz 100000\nport 1\nport 2\n"))
    assert cfg.values["hz"] == 500
    assert cfg.values["port"] == 2


def test_save_lines_replace_defaults_then_accumulate(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "a.conf", "save 900 1\nsave 300 10 60 10000\n"))
    assert cfg.get_string("save") == "900 1 300 10 60 10000"
    cfg = load_config(write(tmp_path / "b.conf", 'save 900 1\nsave ""\n'))
    assert cfg.get("save") == ()
    cfg = load_config(write(tmp_path / "c.conf", "port 1\n"))
    assert cfg.get_string("save") == "3600 1 300 100 60 10000"


def test_one_quoted_argument_of_a_multi_argument_directive_is_split(tmp_path: Path) -> None:
    """Redis >= 7.0.1: `--save "3600 1 300 100"` and `save "3600 1"` in a file."""
    cfg = load_config(None, parse_command_line(["--save", "3600 1 300 100"]).overrides)
    assert cfg.get("save") == ((3600, 1), (300, 100))
    cfg = load_config(write(tmp_path / "a.conf", 'save "60 5"\n'))
    assert cfg.get("save") == ((60, 5),)


def test_unknown_directives_warn_and_are_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.conf",
        "tls-port 6380\nport 7001\nloadmodule /x.so\nlist-max-ziplist-entries 512\n"
        'rename-command CONFIG ""\n',
    )
    cfg = load_config(path)
    assert cfg.values["port"] == 7001
    assert len(cfg.warnings) == 3  # tls-port, loadmodule, rename-command; not the deprecated one
    assert "tls-port" in cfg.warnings[0] and f"{path}:1" in cfg.warnings[0]
    assert cfg.command_renames == [("CONFIG", "")]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("port abc", "argument couldn't be parsed into an integer"),
        ("port 65536", "argument must be between 0 and 65535 inclusive"),
        ("port 01", "argument couldn't be parsed into an integer"),
        ("daemonize maybe", "argument must be 'yes' or 'no'"),
        (
            "loglevel loud",
            "argument(s) must be one of the following: debug, verbose, notice, warning, nothing",
        ),
        ("maxmemory 10 mb", "wrong number of arguments"),
        ("maxmemory 1tb", "argument must be a memory value"),
        ("maxmemory -1", "argument must be a memory value"),
        ("maxmemory-clients 101%", "percentage argument must be less or equal to 100"),
        ("maxmemory-clients x", "argument must be a memory or percent value"),
        ("unixsocketperm 999", "argument couldn't be parsed as an octal number"),
        ("unixsocketperm 1777", "argument must be between 0 and 777 inclusive"),
        (
            "proto-max-bulk-len 1k",
            "argument must be between 1048576 and 9223372036854775807 inclusive",
        ),
        ("save 900", "Invalid save parameters"),
        ("save 0 1", "Invalid save parameters"),
        ("dbfilename a/b.rdb", "dbfilename can't be a path, just a filename"),
        ("appenddirname ''", "appenddirname can't be empty"),
        ("notify-keyspace-events Q", "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
        ("client-output-buffer-limit normal 1 2", "Wrong number of arguments in buffer limit"),
        ("client-output-buffer-limit master 0 0 0", "Invalid client class specified"),
        ("replicaof host port", "Invalid master port"),
        ("dir /nonexistent/ackdb/dir", "No such file or directory"),
        ("include a b", "Bad directive or wrong number of arguments"),
        ("proc-title-template {nope}", "template format is invalid or contains unknown variables"),
        ("latency-tracking-info-percentiles 50 101", "should sit between [0.0,100.0]"),
    ],
)
def test_bad_values_are_fatal_with_redis_reasons(tmp_path: Path, line: str, reason: str) -> None:
    path = write(tmp_path / "bad.conf", f"# first\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert reason in error.reason
    assert (error.source, error.line_number, error.line) == (path, 2, line)
    text = str(error)
    assert f"Reading the configuration file '{path}', at line 2" in text
    assert f">>> '{line}'" in text
    if not line.startswith("include"):
        assert f"(directive '{line.split()[0]}')" in text


def test_missing_config_file_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="can't open config file"):
        load_config(str(tmp_path / "nope.conf"))


def test_replicaof_not_allowed_in_cluster_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="replicaof directive not allowed in cluster mode"):
        load_config(write(tmp_path / "a.conf", "cluster-enabled yes\nreplicaof h 1\n"))


# -- include -----------------------------------------------------------------------------------


def test_include_is_relative_to_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf.d").mkdir()
    write(tmp_path / "conf.d" / "b.conf", "maxclients 50\n")
    write(tmp_path / "conf.d" / "a.conf", "maxclients 40\ntimeout 9\n")
    write(tmp_path / "common.conf", "port 7100\ninclude conf.d/*.conf\n")
    write(tmp_path / "main.conf", "include common.conf\nport 7200\ninclude empty.d/*.conf\n")
    cfg = load_config("main.conf")
    assert cfg.values["port"] == 7200  # later lines win over the include
    assert cfg.values["maxclients"] == 50  # the glob is read in sorted order
    assert cfg.values["timeout"] == 9


def test_include_follows_an_earlier_dir_line(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "inc.conf", "port 7300\n")
    cfg = load_config(write(tmp_path / "main.conf", f"dir {tmp_path / 'sub'}\ninclude inc.conf\n"))
    assert cfg.values["port"] == 7300
    assert cfg.values["dir"] == os.path.realpath(tmp_path / "sub")


def test_include_loop_is_detected(tmp_path: Path) -> None:
    a = write(tmp_path / "a.conf", f"include {tmp_path / 'b.conf'}\n")
    write(tmp_path / "b.conf", f"port 1\ninclude {a}\n")
    with pytest.raises(ConfigError, match="include loop") as info:
        load_config(a)
    assert info.value.line_number == 2  # the include line of b.conf that closes the loop


def test_include_missing_file_names_the_include_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conf", f"port 1\ninclude {tmp_path / 'gone.conf'}\n")
    with pytest.raises(ConfigError, match="can't open config file") as info:
        load_config(path)
    assert (info.value.source, info.value.line_number) == (path, 2)


def test_bad_value_inside_include_names_the_included_file(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.conf", "\nport nope\n")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "a.conf", f"include {inc}\n"))
    assert (info.value.source, info.value.line_number) == (inc, 2)


# -- command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "config_file", "overrides", "read_stdin"),
    [
        ([], None, "", False),
        (["redis.conf"], "redis.conf", "", False),
        (["redis.conf", "--port", "7000"], "redis.conf", 'port "7000" ', False),
        (["--save", ""], None, 'save "" ', False),
        (["--save", "900", "1", "--port", "1"], None, 'save "900" "1" \nport "1" ', False),
        (["--save"], None, 'save ""', False),
        (["--save", "--port", "1"], None, 'save ""\nport "1" ', False),
        (["--port 6380"], None, "port 6380 ", False),
        (["-"], None, "", True),
        (["a.conf", "-"], "a.conf", "", True),
        (["--bind", "--weird"], None, 'bind "--weird" ', False),  # a name needs a value first
        (["--requirepass", 'a "b'], None, 'requirepass "a \\"b" ', False),
    ],
)
def test_parse_command_line(
    argv: list[str], config_file: str | None, overrides: str, read_stdin: bool
) -> None:
    assert tuple(parse_command_line(argv)) == (config_file, overrides, read_stdin)


def test_command_line_overrides_apply_after_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conf", "port 7000\nsave 900 1\nmaxclients 5\n")
    cmd = parse_command_line([path, "--port", "7001", "--save", "", "--requirepass", "p w"])
    cfg = load_config(cmd.config_file, cmd.overrides)
    assert cfg.values["port"] == 7001
    assert cfg.values["save"] == ()
    assert cfg.values["maxclients"] == 5
    assert cfg.values["requirepass"] == "p w"


def test_command_line_error_names_the_command_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, parse_command_line(["--port", "x"]).overrides)
    assert info.value.source == "command line"
    assert info.value.line == 'port "x"'


def test_stdin_is_read_between_file_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conf", "port 7000\ntimeout 1\n")
    stdin = io.BytesIO(b"port 7001\nmaxclients 9\n")
    cfg = load_config(path, "maxclients 10", read_stdin=True, stdin=stdin)
    assert (cfg.values["port"], cfg.values["timeout"], cfg.values["maxclients"]) == (7001, 1, 10)


# -- CONFIG SET --------------------------------------------------------------------------------


def test_set_many_applies_and_normalizes() -> None:
    cfg = Config()
    cfg.set_many([("MAXMEMORY", "100mb"), ("slave-read-only", "NO"), ("save", "10 1 20 2")])
    assert cfg.get_string("maxmemory") == "104857600"
    assert cfg.values["replica-read-only"] is False
    assert cfg.get("save") == ((10, 1), (20, 2))
    cfg.set_many([("save", "")])
    assert cfg.get_string("save") == ""
    cfg.set_many([("bind", "")])
    assert cfg.get_string("bind") == ""
    cfg.set_many([("client-output-buffer-limit", "pubsub 1 2 3")])
    assert cfg.get_string("client-output-buffer-limit").endswith("pubsub 1 2 3")
    assert cfg.get_string("client-output-buffer-limit").startswith("normal 0 0 0 slave 268435456")


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (
            [("port", "abc")],
            "ERR CONFIG SET failed (possibly related to argument 'port') - "
            "argument couldn't be parsed into an integer",
        ),
        ([("foo", "1")], "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
        (
            [("databases", "4")],
            "ERR CONFIG SET failed (possibly related to argument 'databases') - "
            "can't set immutable config",
        ),
        (
            [("timeout", "1"), ("TIMEOUT", "2")],
            "ERR CONFIG SET failed (possibly related to argument 'TIMEOUT') - duplicate parameter",
        ),
        (
            [("replica-read-only", "yes"), ("slave-read-only", "no")],
            "ERR CONFIG SET failed (possibly related to argument 'slave-read-only') - "
            "duplicate parameter",
        ),
        (
            [("dir", "/tmp")],
            "ERR CONFIG SET failed (possibly related to argument 'dir') - "
            "can't set protected config",
        ),
        (
            [("MaxMemory-Policy", "lru")],
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - "
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, "
            "volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction",
        ),
        # The first problem wins: an unknown name after an immutable one is not reported.
        (
            [("databases", "4"), ("foo", "1")],
            "ERR CONFIG SET failed (possibly related to argument 'databases') - "
            "can't set immutable config",
        ),
        (
            [("foo", "1"), ("databases", "4")],
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'",
        ),
    ],
)
def test_set_many_errors(pairs: list[tuple[str, str]], message: str) -> None:
    cfg = Config()
    before = dict(cfg.values)
    with pytest.raises(ConfigSetError) as info:
        cfg.set_many(pairs)
    assert str(info.value) == message
    assert cfg.values == before


def test_set_many_is_atomic_on_a_bad_value() -> None:
    cfg = Config()
    with pytest.raises(ConfigSetError, match="argument 'hz'"):
        cfg.set_many([("port", "7000"), ("maxclients", "5"), ("hz", "x")])
    assert (cfg.values["port"], cfg.values["maxclients"]) == (6379, 10000)


def test_protected_config_needs_enable_protected_configs(tmp_path: Path) -> None:
    cfg = load_config(None, "enable-protected-configs local")
    with pytest.raises(ConfigSetError, match="can't set protected config"):
        cfg.set_many([("dbfilename", "x.rdb")], is_local=False)
    cfg.set_many([("dbfilename", "x.rdb"), ("dir", str(tmp_path))], is_local=True)
    assert cfg.values["dir"] == os.path.realpath(tmp_path)


def test_deny_loading_answers_loading() -> None:
    cfg = Config()
    with pytest.raises(ConfigSetError) as info:
        cfg.set_many([("appendonly", "yes")], loading=True)
    assert str(info.value) == "LOADING Redis is loading the dataset in memory"


def test_callbacks_run_on_change_only() -> None:
    cfg = Config()
    calls: list[tuple[str, Any, Any]] = []
    cfg.on_change("slave-read-only", lambda name, old, new: calls.append((name, old, new)))
    cfg.set_many([("replica-read-only", "yes")])  # unchanged
    cfg.set_many([("replica-read-only", "no")])
    assert calls == [("replica-read-only", True, False)]


def test_callback_failure_rolls_back_every_pair() -> None:
    cfg = Config()
    calls: list[tuple[str, Any, Any]] = []

    def on_maxclients(name: str, old: Any, new: Any) -> None:
        calls.append((name, old, new))

    def on_port(name: str, old: Any, new: Any) -> None:
        calls.append((name, old, new))
        if new == 1:
            raise ConfigSetError("Unable to listen on this port. Check server logs.")

    cfg.on_change("maxclients", on_maxclients)
    cfg.on_change("port", on_port)
    with pytest.raises(ConfigSetError) as info:
        cfg.set_many([("maxclients", "5"), ("port", "1"), ("timeout", "3")])
    assert str(info.value) == (
        "ERR CONFIG SET failed (possibly related to argument 'port') - "
        "Unable to listen on this port. Check server logs."
    )
    assert (cfg.values["maxclients"], cfg.values["port"], cfg.values["timeout"]) == (10000, 6379, 0)
    # Applied in order, then undone in reverse order with (name, new, old).
    assert calls == [
        ("maxclients", 10000, 5),
        ("port", 6379, 1),
        ("port", 1, 6379),
        ("maxclients", 5, 10000),
    ]


def test_hz_is_clamped_on_set() -> None:
    cfg = Config()
    cfg.set_many([("hz", "1000")])
    assert cfg.get_string("hz") == "500"
    cfg.set_many([("hz", "0")])
    assert cfg.get_string("hz") == "1"


# -- CONFIG REWRITE ----------------------------------------------------------------------------


def test_rewrite_keeps_comments_and_replaces_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = (
        "# My redis\n"
        "port 7000\n"
        "\n"
        "\n"
        "# memory\n"
        "maxmemory 1mb\n"
        "maxmemory 2mb\n"
        "slave-read-only yes\n"
        "save 900 1\n"
        "save 300 10\n"
        "include other.conf\n"
        "frobnicate on\n"
        "timeout 0\n"
    )
    path = write(tmp_path / "redis.conf", original)
    write(tmp_path / "other.conf", "")
    os.chmod(path, 0o640)
    monkeypatch.chdir(tmp_path)  # the include is relative to the working directory
    cfg = load_config(path)
    cfg.warnings.clear()
    cfg.set_many([("maxmemory", "3gb"), ("replica-read-only", "no"), ("save", "60 5")])
    cfg.set_many([("maxclients", "77"), ("requirepass", "pw")])
    cfg.rewrite()
    text = Path(path).read_text()
    lines = text.splitlines()
    assert lines[:9] == [
        "# My redis",
        "port 7000",
        "",
        "# memory",
        "maxmemory 3gb",
        "",
        "replica-read-only no",
        "save 60 5",
        "",
    ]
    assert "include other.conf" in lines
    assert "# ??? frobnicate on" in lines
    assert "timeout 0" in lines  # present in the file: rewritten even at its default
    tail = lines[lines.index(REWRITE_SIGNATURE) + 1 :]
    assert 'requirepass "pw"' in tail
    assert "maxclients 77" in tail
    assert f'dir "{os.path.realpath(tmp_path)}"' in tail
    assert "latency-tracking-info-percentiles 50 99 99.9" in tail
    assert "hz 10" not in text  # defaults not in the file stay out
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["other.conf", "redis.conf"]  # no temp file left


def test_rewrite_round_trips_through_load(tmp_path: Path) -> None:
    path = write(tmp_path / "redis.conf", "")
    cfg = load_config(path)
    cfg.set_many(
        [
            ("notify-keyspace-events", "Kx"),
            ("client-output-buffer-limit", "normal 1mb 1000 7"),
            ("bind", "127.0.0.1 -::1"),
            ("save", ""),
            ("maxmemory-clients", "5%"),
            ("ignore-warnings", "ARM64-COW-BUG"),
            ("proc-title-template", "{title} {port}"),
            ("shutdown-on-sigterm", "nosave force"),
            ("latency-tracking-info-percentiles", "99.99"),
        ]
    )
    cfg.rewrite()
    again = load_config(path)
    assert again.values == cfg.values
    cfg.rewrite()
    first = Path(path).read_text()
    cfg.rewrite()
    assert Path(path).read_text() == first  # rewriting is idempotent
    assert first.count(REWRITE_SIGNATURE) == 1
    assert 'save ""' in first


def test_rewrite_removes_lines_of_values_back_to_empty(tmp_path: Path) -> None:
    path = write(tmp_path / "redis.conf", 'requirepass "x"\nreplicaof h 1\nport 1\n')
    cfg = load_config(path)
    cfg.set_many([("requirepass", "")])
    cfg.values["replicaof"] = None  # as REPLICAOF NO ONE would leave it
    cfg.rewrite()
    text = Path(path).read_text()
    assert "requirepass" not in text and "replicaof" not in text
    assert text.startswith("port 1\n")


def test_rewrite_without_config_file() -> None:
    with pytest.raises(ConfigRewriteError) as info:
        Config().rewrite()
    assert str(info.value) == "ERR The server is running without a config file"


def test_rewrite_error_reports_strerror(tmp_path: Path) -> None:
    cfg = Config()
    with pytest.raises(ConfigRewriteError, match="^ERR Rewriting config file: "):
        cfg.rewrite(str(tmp_path / "missing-dir" / "redis.conf"))


def test_rewrite_creates_a_missing_file(tmp_path: Path) -> None:
    cfg = Config()
    cfg.set_many([("port", "7777")])
    path = tmp_path / "new.conf"
    cfg.rewrite(str(path))
    assert "port 7777" in path.read_text().splitlines()
