"""Tests for ackdb.commands.introspection: CLIENT and COMMAND.

Expected replies and error texts are redis-server's (7.0.15 checked by hand with redis-cli
and raw RESP2/RESP3; Redis 7.2 docs for CLIENT SETINFO, NO-TOUCH and the lib-name/lib-ver
fields of CLIENT LIST).
"""

from __future__ import annotations

from typing import Any

import pytest

import ackdb.commands  # noqa: F401  (registers the command table before the core imports it)
from ackdb.commands.introspection import ArgDoc, parse_args_doc
from ackdb.commands.table import TABLE
from ackdb.engine.core import PAUSED, Server
from ackdb.server.config import load_config
from ackdb.server.engine_host import build_engine

# -- harness ---------------------------------------------------------------------------------


class FakeConn:
    def __init__(self) -> None:
        self.closed = False
        self.written: list[bytes] = []
        self.buffered = 0

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def buffer_size(self) -> int:
        return self.buffered

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def resume_commands(self) -> None:
        pass


class Verbatim(str):
    """A RESP3 verbatim string (``=``), told apart from a bulk string in assertions."""


class Simple(str):
    """A status reply (``+``), told apart from a bulk string in assertions."""


class Err(str):
    pass


class RespSet(list[Any]):
    """A RESP3 set (``~``), kept in order."""


def parse(data: bytes) -> Any:
    value, rest = _parse(data, 0)
    assert rest == len(data), f"trailing bytes: {data[rest:]!r}"
    return value


def _parse(data: bytes, i: int) -> tuple[Any, int]:
    end = data.index(b"\r\n", i)
    kind, line, i = data[i : i + 1], data[i + 1 : end], end + 2
    if kind == b"+":
        return Simple(line.decode()), i
    if kind == b"-":
        return Err(line.decode()), i
    if kind == b":":
        return int(line), i
    if kind == b"_":
        return None, i
    if kind in (b"$", b"="):
        n = int(line)
        if n < 0:
            return None, i
        body = data[i : i + n]
        assert data[i + n : i + n + 2] == b"\r\n"
        if kind == b"=":
            assert body[:4] == b"txt:"
            return Verbatim(body[4:].decode()), i + n + 2
        return body.decode(), i + n + 2
    if kind in (b"*", b"~", b"%"):
        n = int(line)
        if n < 0:
            return None, i
        items = []
        for _ in range(2 * n if kind == b"%" else n):
            v, i = _parse(data, i)
            items.append(v)
        if kind == b"%":
            return dict(zip(items[::2], items[1::2], strict=True)), i
        return (RespSet(items) if kind == b"~" else items), i
    raise AssertionError(f"unexpected RESP type {kind!r}")


@pytest.fixture
def server() -> Server:
    return build_engine(load_config(None))


def connect(server: Server, port: int = 50000) -> Any:
    return server.new_client(FakeConn(), f"127.0.0.1:{port}", "127.0.0.1:6379", 9)


def run(server: Server, c: Any, *args: str | bytes) -> Any:
    argv = [a.encode() if isinstance(a, str) else a for a in args]
    reply = server.process(c, argv)
    assert isinstance(reply, bytes)
    return parse(reply)


def raw(server: Server, c: Any, *args: str) -> bytes:
    reply = server.process(c, [a.encode() for a in args])
    assert isinstance(reply, bytes)
    return reply


def fields(line: str) -> dict[str, str]:
    return dict(tok.split("=", 1) for tok in line.split(" "))


def pairs(flat: list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def hello3(server: Server, c: Any) -> None:
    run(server, c, "HELLO", "3")


# -- CLIENT ID / GETNAME / SETNAME / SETINFO ---------------------------------------------------


def test_client_id(server: Server) -> None:
    a, b = connect(server), connect(server, 50001)
    assert run(server, a, "CLIENT", "ID") == a.id
    assert run(server, b, "client", "id") == b.id == a.id + 1


def test_getname_null_when_unset(server: Server) -> None:
    c = connect(server)
    assert raw(server, c, "CLIENT", "GETNAME") == b"$-1\r\n"
    hello3(server, c)
    assert raw(server, c, "CLIENT", "GETNAME") == b"_\r\n"


def test_setname_getname_and_clear(server: Server) -> None:
    c = connect(server)
    assert run(server, c, "CLIENT", "SETNAME", "worker-1") == "OK"
    assert run(server, c, "CLIENT", "GETNAME") == "worker-1"
    assert run(server, c, "CLIENT", "SETNAME", "") == "OK"  # the empty name clears it
    assert run(server, c, "CLIENT", "GETNAME") is None


@pytest.mark.parametrize("name", ["a b", "a\nb", "caf\xe9", "tab\t"])
def test_setname_rejects_special_characters(server: Server, name: str) -> None:
    c = connect(server)
    assert run(server, c, "CLIENT", "SETNAME", name) == (
        "ERR Client names cannot contain spaces, newlines or special characters."
    )
    assert c.name == b""


def test_client_arity_errors(server: Server) -> None:
    c = connect(server)
    assert run(server, c, "CLIENT") == "ERR wrong number of arguments for 'client' command"
    assert run(server, c, "CLIENT", "SETNAME") == (
        "ERR wrong number of arguments for 'client|setname' command"
    )
    assert run(server, c, "CLIENT", "ID", "x") == (
        "ERR wrong number of arguments for 'client|id' command"
    )
    assert run(server, c, "CLIENT", "KILL") == (
        "ERR wrong number of arguments for 'client|kill' command"
    )
    assert run(server, c, "CLIENT", "foo") == "ERR unknown subcommand 'foo'. Try CLIENT HELP."


def test_setinfo_lib_name_and_version(server: Server) -> None:
    # redis-py 5+ sends both right after connecting; they must succeed (Redis 7.2).
    c = connect(server)
    assert run(server, c, "CLIENT", "SETINFO", "LIB-NAME", "redis-py") == "OK"
    assert run(server, c, "CLIENT", "SETINFO", "lib-ver", "5.0.1") == "OK"
    info = fields(run(server, c, "CLIENT", "INFO").rstrip("\n"))
    assert (info["lib-name"], info["lib-ver"]) == ("redis-py", "5.0.1")
    assert run(server, c, "CLIENT", "SETINFO", "lib-name", "") == "OK"
    assert c.lib_name == b""


def test_setinfo_errors(server: Server) -> None:
    c = connect(server)
    c.lib_name = b"keep"
    assert run(server, c, "CLIENT", "SETINFO", "badger", "x") == "ERR Unrecognized option 'badger'"
    assert run(server, c, "CLIENT", "SETINFO", "LIB-NAME", "redis py") == (
        "ERR LIB-NAME cannot contain spaces, newlines or special characters."
    )
    assert run(server, c, "CLIENT", "SETINFO", "lib-name") == (
        "ERR wrong number of arguments for 'client|setinfo' command"
    )
    assert c.lib_name == b"keep"


# -- CLIENT INFO / LIST -------------------------------------------------------------------------

# Redis 7.2 CLIENT LIST field order.
FIELDS_72 = (
    "id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free argv-mem "
    "multi-mem rbs rbp obl oll omem tot-mem events cmd user redir resp lib-name lib-ver"
).split()


def test_client_info_line(server: Server) -> None:
    c = connect(server)
    text = run(server, c, "CLIENT", "INFO")
    assert text.endswith("\n") and text.count("\n") == 1
    got = fields(text.rstrip("\n"))
    assert list(got) == FIELDS_72
    assert got["id"] == str(c.id)
    assert got["addr"] == "127.0.0.1:50000"
    assert got["laddr"] == "127.0.0.1:6379"
    assert got["fd"] == "9"
    assert got["flags"] == "N"
    assert got["db"] == "0"
    assert got["multi"] == "-1"
    assert got["cmd"] == "client|info"  # the running command, as Redis shows it
    assert got["argv-mem"] == str(len(b"CLIENT") + len(b"INFO"))
    assert got["user"] == "default"
    assert got["redir"] == "-1"
    assert got["resp"] == "2"
    assert got["events"] == "r"


def test_client_info_is_verbatim_in_resp3(server: Server) -> None:
    c = connect(server)
    hello3(server, c)
    reply = run(server, c, "CLIENT", "INFO")
    assert isinstance(reply, Verbatim)
    assert fields(reply.rstrip("\n"))["resp"] == "3"
    assert isinstance(run(server, c, "CLIENT", "LIST"), Verbatim)


def test_client_info_age_idle_db_name(server: Server) -> None:
    c = connect(server)
    now = server.now_ms()
    c.created_ms = now - 65_000
    c.last_ms = now - 3_500
    run(server, c, "SELECT", "3")
    run(server, c, "CLIENT", "SETNAME", "me")
    got = fields(run(server, c, "CLIENT", "INFO").rstrip("\n"))
    assert got["age"] in ("65", "66")
    assert got["idle"] in ("3", "4")
    assert (got["db"], got["name"]) == ("3", "me")


def test_client_list_shows_everyone_in_id_order(server: Server) -> None:
    a, b, d = connect(server), connect(server, 50001), connect(server, 50002)
    run(server, b, "PING")
    lines = run(server, a, "CLIENT", "LIST").split("\n")
    assert lines[-1] == ""
    got = [fields(line) for line in lines[:-1]]
    assert [int(f["id"]) for f in got] == [a.id, b.id, d.id]
    assert [list(f) for f in got] == [FIELDS_72] * 3
    assert [f["cmd"] for f in got] == ["client|list", "ping", "NULL"]
    assert [f["argv-mem"] for f in got] == ["10", "0", "0"]


def test_client_list_reports_multi_and_flags(server: Server) -> None:
    a, b = connect(server), connect(server, 50001)
    run(server, b, "MULTI")
    run(server, b, "SET", "k", "v")
    run(server, b, "GET", "k")
    run(server, b, "CLIENT", "NO-EVICT", "on")
    got = fields(run(server, a, "CLIENT", "LIST", "ID", str(b.id)).rstrip("\n"))
    assert got["multi"] == "3"
    assert got["flags"] == "x"
    assert got["multi-mem"] == str(len(b"SETkvGETkCLIENTNO-EVICTon"))
    run(server, b, "DISCARD")
    run(server, b, "CLIENT", "NO-EVICT", "on")
    run(server, b, "CLIENT", "NO-TOUCH", "on")
    got = fields(run(server, a, "CLIENT", "LIST", "ID", str(b.id)).rstrip("\n"))
    assert (got["multi"], got["flags"]) == ("-1", "eT")


def test_client_list_omem_and_events(server: Server) -> None:
    a, b = connect(server), connect(server, 50001)
    b.conn.buffered = 4096
    got = fields(run(server, a, "CLIENT", "LIST", "ID", str(b.id)).rstrip("\n"))
    assert (got["omem"], got["events"]) == ("4096", "rw")


def test_client_list_type_filter(server: Server) -> None:
    a, b, r = connect(server), connect(server, 50001), connect(server, 50002)
    r.kind = "replica"
    b.subscriptions = 2

    def ids(*args: str) -> list[int]:
        text = run(server, a, "CLIENT", "LIST", *args)
        return [int(fields(line)["id"]) for line in text.splitlines()]

    assert ids("TYPE", "normal") == [a.id]
    assert ids("type", "PUBSUB") == [b.id]
    assert ids("TYPE", "replica") == [r.id]
    assert ids("TYPE", "slave") == [r.id]
    assert ids("TYPE", "master") == []
    assert run(server, a, "CLIENT", "LIST", "TYPE", "foo") == "ERR Unknown client type 'foo'"


def test_client_list_id_filter(server: Server) -> None:
    a, b = connect(server), connect(server, 50001)

    def ids(*args: str) -> list[int]:
        text = run(server, a, "CLIENT", "LIST", "ID", *args)
        return [int(fields(line)["id"]) for line in text.splitlines()]

    assert ids(str(b.id), str(a.id)) == [b.id, a.id]  # in the order asked
    assert ids(str(b.id), str(b.id)) == [b.id, b.id]
    assert ids("999", "0", "-1") == []
    assert raw(server, a, "CLIENT", "LIST", "ID", "999") == b"$0\r\n\r\n"
    assert run(server, a, "CLIENT", "LIST", "ID", "abc") == "ERR Invalid client ID"
    # ID takes every remaining argument, so a later TYPE is an invalid ID.
    assert run(server, a, "CLIENT", "LIST", "ID", "1", "TYPE", "normal") == "ERR Invalid client ID"


@pytest.mark.parametrize(
    "args",
    [["foo"], ["ID"], ["TYPE"], ["TYPE", "normal", "extra"], ["TYPE", "normal", "ID", "1"]],
)
def test_client_list_syntax_errors(server: Server, args: list[str]) -> None:
    c = connect(server)
    assert run(server, c, "CLIENT", "LIST", *args) == "ERR syntax error"


# -- CLIENT KILL --------------------------------------------------------------------------------


def test_kill_old_form(server: Server) -> None:
    a, b = connect(server), connect(server, 50001)
    assert run(server, a, "CLIENT", "KILL", "127.0.0.1:50001") == "OK"
    assert b.conn.closed and b.id not in server.clients
    assert run(server, a, "CLIENT", "KILL", "127.0.0.1:50001") == "ERR No such client"
    assert run(server, a, "CLIENT", "KILL", "ID") == "ERR No such client"  # one argument: old form


def test_kill_old_form_self_closes_after_reply(server: Server) -> None:
    a = connect(server)
    assert run(server, a, "CLIENT", "KILL", "127.0.0.1:50000") == "OK"
    assert a.close_after_reply and not a.conn.closed


def test_kill_new_form_filters(server: Server) -> None:
    a, b, d = connect(server), connect(server, 50001), connect(server, 50002)
    assert run(server, a, "CLIENT", "KILL", "ID", "999") == 0
    assert run(server, a, "CLIENT", "KILL", "ADDR", "127.0.0.1:50002") == 1
    assert d.conn.closed and d.id not in server.clients
    assert run(server, a, "CLIENT", "KILL", "LADDR", "127.0.0.1:1") == 0
    assert run(server, a, "CLIENT", "KILL", "TYPE", "pubsub") == 0
    assert run(server, a, "CLIENT", "KILL", "USER", "default", "ID", str(b.id)) == 1
    assert b.conn.closed
    assert not a.close_after_reply  # SKIPME yes is the default


def test_kill_laddr_and_type_spare_the_caller(server: Server) -> None:
    a, b = connect(server), connect(server, 50001)
    assert run(server, a, "CLIENT", "KILL", "LADDR", "127.0.0.1:6379") == 1
    assert b.conn.closed and not a.close_after_reply
    assert run(server, a, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") == 0


def test_kill_skipme_no_kills_the_caller_after_the_reply(server: Server) -> None:
    a, b = connect(server), connect(server, 50001)
    assert run(server, a, "CLIENT", "KILL", "SKIPME", "no") == 2
    assert b.conn.closed
    assert a.close_after_reply and not a.conn.closed and a.id in server.clients


def test_kill_maxage(server: Server) -> None:
    a, b, d = connect(server), connect(server, 50001), connect(server, 50002)
    b.created_ms = server.now_ms() - 120_000
    assert run(server, a, "CLIENT", "KILL", "MAXAGE", "60") == 1
    assert b.conn.closed and not d.conn.closed


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["ID", "abc"], "ERR client-id should be greater than 0"),
        (["ID", "0"], "ERR client-id should be greater than 0"),
        (["TYPE", "foo"], "ERR Unknown client type 'foo'"),
        (["SKIPME", "maybe"], "ERR syntax error"),
        (["USER", "nobody"], "ERR No such user 'nobody'"),
        (["ADDR", "1.1.1.1:1", "LADDR"], "ERR syntax error"),
        (["ID", "5", "TYPE"], "ERR syntax error"),
        (["foo", "bar"], "ERR syntax error"),
        (["MAXAGE", "x"], "ERR value is not an integer or out of range"),
    ],
)
def test_kill_errors(server: Server, args: list[str], error: str) -> None:
    c = connect(server)
    assert run(server, c, "CLIENT", "KILL", *args) == error


# -- CLIENT PAUSE / UNPAUSE / NO-EVICT / NO-TOUCH ----------------------------------------------


def test_pause_all_and_write(server: Server) -> None:
    c = connect(server)
    before = server.now_ms()
    assert run(server, c, "CLIENT", "PAUSE", "10000", "write") == "OK"
    assert server.pause_until_ms >= before + 10000 and not server.pause_all
    assert run(server, c, "CLIENT", "UNPAUSE") == "OK"  # not a write: runs during the pause
    assert server.pause_until_ms == 0 and not server.pause_all
    assert run(server, c, "CLIENT", "PAUSE", "10000") == "OK"
    assert server.pause_until_ms >= before + 10000 and server.pause_all
    # Redis holds even CLIENT UNPAUSE during PAUSE ALL (seen with redis-server 7.0.15).
    assert server.process(c, [b"CLIENT", b"UNPAUSE"]) is PAUSED
    server.unpause()
    assert run(server, c, "CLIENT", "PAUSE", "10000", "WRITE") == "OK"
    assert run(server, c, "CLIENT", "PAUSE", "10000", "ALL") == "OK"
    assert server.pause_all


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["abc"], "ERR timeout is not an integer or out of range"),
        (["1.5"], "ERR timeout is not an integer or out of range"),
        (["-1"], "ERR timeout is negative"),
        (["10", "foo"], "ERR CLIENT PAUSE mode must be WRITE or ALL"),
        (["abc", "foo"], "ERR CLIENT PAUSE mode must be WRITE or ALL"),  # mode is checked first
        (["9223372036854775807"], "ERR timeout is out of range"),
        (
            ["10", "write", "extra"],
            "ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.",
        ),
    ],
)
def test_pause_errors(server: Server, args: list[str], error: str) -> None:
    c = connect(server)
    assert run(server, c, "CLIENT", "pause", *args) == error
    assert server.pause_until_ms == 0


def test_pause_arity(server: Server) -> None:
    c = connect(server)
    assert run(server, c, "CLIENT", "PAUSE") == (
        "ERR wrong number of arguments for 'client|pause' command"
    )
    assert run(server, c, "CLIENT", "UNPAUSE", "x") == (
        "ERR wrong number of arguments for 'client|unpause' command"
    )


@pytest.mark.parametrize(
    ("sub", "attr", "flag"), [("NO-EVICT", "no_evict", "e"), ("NO-TOUCH", "no_touch", "T")]
)
def test_no_evict_no_touch(server: Server, sub: str, attr: str, flag: str) -> None:
    c = connect(server)
    assert run(server, c, "CLIENT", sub, "on") == "OK"
    assert getattr(c, attr) and flag in c.flags()
    assert run(server, c, "CLIENT", sub, "OFF") == "OK"
    assert not getattr(c, attr)
    assert run(server, c, "CLIENT", sub, "maybe") == "ERR syntax error"
    assert run(server, c, "CLIENT", sub) == (
        f"ERR wrong number of arguments for 'client|{sub.lower()}' command"
    )


# -- CLIENT GETREDIR / TRACKINGINFO / HELP ------------------------------------------------------


def test_getredir_and_trackinginfo_without_tracking(server: Server) -> None:
    c = connect(server)
    assert run(server, c, "CLIENT", "GETREDIR") == -1
    assert run(server, c, "CLIENT", "TRACKINGINFO") == [
        "flags",
        ["off"],
        "redirect",
        -1,
        "prefixes",
        [],
    ]
    hello3(server, c)
    got = run(server, c, "CLIENT", "TRACKINGINFO")
    assert got == {"flags": ["off"], "redirect": -1, "prefixes": []}
    assert isinstance(got["flags"], RespSet)


def test_client_help(server: Server) -> None:
    c = connect(server)
    lines = run(server, c, "client", "help")
    assert all(isinstance(x, Simple) for x in lines)
    assert lines[0] == "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert lines[-2:] == ["HELP", "    Print this help."]
    assert "SETINFO <option> <value>" in lines


# -- COMMAND / COMMAND INFO ---------------------------------------------------------------------

# COMMAND INFO get, as redis-server 7.0.15 replies in RESP2.
GET_INFO = [
    "get",
    2,
    ["readonly", "fast"],
    1,
    1,
    1,
    ["@read", "@string", "@fast"],
    [],
    [
        [
            "flags",
            ["RO", "access"],
            "begin_search",
            ["type", "index", "spec", ["index", 1]],
            "find_keys",
            ["type", "range", "spec", ["lastkey", 0, "keystep", 1, "limit", 0]],
        ]
    ],
    [],
]


def test_command_info_get_matches_redis(server: Server) -> None:
    c = connect(server)
    got = run(server, c, "COMMAND", "INFO", "get")
    assert got == [GET_INFO]
    assert all(isinstance(f, Simple) for f in got[0][2] + got[0][6])


def test_command_info_resp3_uses_sets_and_maps(server: Server) -> None:
    c = connect(server)
    hello3(server, c)
    (entry,) = run(server, c, "COMMAND", "INFO", "GET")
    assert isinstance(entry[2], RespSet) and entry[2] == ["readonly", "fast"]
    assert isinstance(entry[6], RespSet)
    assert isinstance(entry[7], RespSet) and entry[7] == []  # tips
    assert isinstance(entry[8], RespSet)
    assert entry[8][0] == {
        "flags": ["RO", "access"],
        "begin_search": {"type": "index", "spec": {"index": 1}},
        "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}},
    }
    assert isinstance(entry[9], RespSet) and entry[9] == []


def test_command_info_key_specs_for_ranges(server: Server) -> None:
    c = connect(server)
    mset, delete = run(server, c, "COMMAND", "INFO", "mset", "del")
    assert mset[1:6] == [-3, ["write", "denyoom"], 1, -1, 2]
    assert pairs(pairs(mset[8][0])["find_keys"])["spec"] == [
        "lastkey",
        -1,
        "keystep",
        2,
        "limit",
        0,
    ]
    assert pairs(pairs(delete[8][0])["find_keys"])["spec"] == [
        "lastkey",
        -1,
        "keystep",
        1,
        "limit",
        0,
    ]


def test_command_info_unknown_is_null(server: Server) -> None:
    c = connect(server)
    assert raw(server, c, "COMMAND", "INFO", "nosuch").startswith(b"*1\r\n$-1\r\n")
    got = run(server, c, "COMMAND", "INFO", "nosuch", "get", "get|x", "a|b|c")
    assert got[0] is None and got[1][0] == "get" and got[2:] == [None, None]
    hello3(server, c)
    assert raw(server, c, "COMMAND", "INFO", "nosuch") == b"*1\r\n_\r\n"


def test_command_info_subcommands(server: Server) -> None:
    c = connect(server)
    (client,) = run(server, c, "COMMAND", "INFO", "client")
    assert client[:8] == ["client", -2, [], 0, 0, 0, ["@slow"], []]
    subs = {s[0]: s for s in client[9]}
    assert subs["client|kill"][1:3] == [-3, ["admin", "noscript", "loading", "stale"]]
    assert subs["client|kill"][6] == ["@admin", "@slow", "@dangerous", "@connection"]
    assert subs["client|id"][6] == ["@slow", "@connection"]
    (enc_info,) = run(server, c, "COMMAND", "INFO", "OBJECT|Encoding")
    assert enc_info[:7] == [
        "object|encoding",
        3,
        ["readonly"],
        2,
        2,
        1,
        ["@keyspace", "@read", "@slow"],
    ]
    assert pairs(pairs(enc_info[8][0])["begin_search"])["spec"] == ["index", 2]


def test_command_without_args_lists_every_command(server: Server) -> None:
    c = connect(server)
    everything = run(server, c, "COMMAND")
    assert len(everything) == len(TABLE.all()) == run(server, c, "COMMAND", "COUNT")
    assert all(len(entry) == 10 for entry in everything)
    assert {e[0] for e in everything} == {cmd.name for cmd in TABLE.all()}
    assert run(server, c, "COMMAND", "INFO") == everything


def test_command_subcommand_errors(server: Server) -> None:
    c = connect(server)
    assert run(server, c, "COMMAND", "foo") == "ERR unknown subcommand 'foo'. Try COMMAND HELP."
    assert run(server, c, "COMMAND", "COUNT", "x") == (
        "ERR wrong number of arguments for 'command|count' command"
    )
    assert run(server, c, "COMMAND", "HELP", "x") == (
        "ERR wrong number of arguments for 'command|help' command"
    )


def test_command_family_categories_and_tips(server: Server) -> None:
    c = connect(server)
    (cmd,) = run(server, c, "COMMAND", "INFO", "command")
    assert cmd[:8] == [
        "command", -1, ["loading", "stale"], 0, 0, 0, ["@slow", "@connection"],
        ["nondeterministic_output_order"],
    ]  # fmt: skip
    subs = {s[0]: s for s in cmd[9]}
    assert subs["command|getkeys"][1] == subs["command|getkeysandflags"][1] == -4
    assert subs["command|count"][6] == ["@slow", "@connection"]
    (info,) = run(server, c, "COMMAND", "INFO", "client|info")
    assert info[7] == ["nondeterministic_output"]


def test_command_help(server: Server) -> None:
    c = connect(server)
    lines = run(server, c, "command", "help")
    assert lines[0] == "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert "GETKEYSANDFLAGS <full-command>" in lines
    assert lines[-1] == "    Print this help."


# -- COMMAND LIST ---------------------------------------------------------------------------------


def test_command_list(server: Server) -> None:
    c = connect(server)
    names = run(server, c, "COMMAND", "LIST")
    assert "get" in names and "client" in names and "client|list" in names
    assert len(names) == len(set(names)) == sum(1 + len(x.subcommands) for x in TABLE.all())
    cl = run(server, c, "COMMAND", "LIST", "FILTERBY", "PATTERN", "CL*")  # no case
    assert cl[0] == "client" and all(n.startswith("client") for n in cl)
    assert "client|kill" in cl
    conn = run(server, c, "COMMAND", "LIST", "filterby", "aclcat", "CONNECTION")
    assert "ping" in conn and "client|id" in conn and "client" not in conn and "get" not in conn
    assert run(server, c, "COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch") == []
    assert run(server, c, "COMMAND", "LIST", "FILTERBY", "MODULE", "json") == []


@pytest.mark.parametrize(
    "args", [["foo"], ["FILTERBY"], ["FILTERBY", "foo", "x"], ["x", "PATTERN", "y"]]
)
def test_command_list_syntax_errors(server: Server, args: list[str]) -> None:
    c = connect(server)
    assert run(server, c, "COMMAND", "LIST", *args) == "ERR syntax error"


# -- COMMAND GETKEYS / GETKEYSANDFLAGS ----------------------------------------------------------


def test_getkeys(server: Server) -> None:
    c = connect(server)
    assert run(server, c, "COMMAND", "GETKEYS", "set", "a", "b") == ["a"]
    assert run(server, c, "COMMAND", "GETKEYS", "MSET", "a", "1", "c", "2") == ["a", "c"]
    assert run(server, c, "COMMAND", "GETKEYS", "del", "x", "y", "z") == ["x", "y", "z"]
    assert run(server, c, "COMMAND", "GETKEYS", "object", "encoding", "k") == ["k"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["foo", "bar"], "ERR Invalid command specified"),
        (["object", "foo", "k"], "ERR Invalid command specified"),
        (["ping", "x"], "ERR The command has no key arguments"),
        (["client", "list"], "ERR The command has no key arguments"),
        (["command", "info"], "ERR The command has no key arguments"),
        (["mset", "a"], "ERR Invalid number of arguments specified for command"),
        (["get", "a", "b"], "ERR Invalid number of arguments specified for command"),
        (["get"], "ERR wrong number of arguments for 'command|getkeys' command"),
        (["ping"], "ERR wrong number of arguments for 'command|getkeys' command"),
    ],
)
def test_getkeys_errors(server: Server, args: list[str], error: str) -> None:
    c = connect(server)
    assert run(server, c, "COMMAND", "GETKEYS", *args) == error


def test_getkeysandflags(server: Server) -> None:
    c = connect(server)
    assert run(server, c, "COMMAND", "GETKEYSANDFLAGS", "get", "k") == [["k", ["RO", "access"]]]
    got = run(server, c, "COMMAND", "GETKEYSANDFLAGS", "mset", "a", "1", "b", "2")
    # Redis 7.0.15 COMMAND GETKEYSANDFLAGS mset: each key "OW update" (its key spec).
    assert got == [["a", ["OW", "update"]], ["b", ["OW", "update"]]]
    hello3(server, c)
    ((key, flags),) = run(server, c, "COMMAND", "GETKEYSANDFLAGS", "get", "k")
    assert key == "k" and isinstance(flags, RespSet)
    assert run(server, c, "COMMAND", "GETKEYSANDFLAGS", "ping", "x") == (
        "ERR The command has no key arguments"
    )


# -- COMMAND DOCS ---------------------------------------------------------------------------------


def test_command_docs_get(server: Server) -> None:
    c = connect(server)
    name, doc = run(server, c, "COMMAND", "DOCS", "get")
    assert name == "get"
    doc = pairs(doc)
    assert list(doc) == ["summary", "since", "group", "complexity", "arguments"]
    assert (doc["since"], doc["group"], doc["complexity"]) == ("1.0.0", "string", "O(1)")
    assert [pairs(a) for a in doc["arguments"]] == [
        {"name": "key", "type": "key", "display_text": "key", "key_spec_index": 0}
    ]


def test_command_docs_set_arguments_resp3(server: Server) -> None:
    c = connect(server)
    hello3(server, c)
    docs = run(server, c, "COMMAND", "DOCS", "SET")
    args = docs["set"]["arguments"]
    assert [a["name"] for a in args[:2]] == ["key", "value"]
    assert args[1] == {"name": "value", "type": "string", "display_text": "value"}
    cond = args[2]
    assert (cond["type"], cond["flags"]) == ("oneof", ["optional"])
    assert isinstance(cond["flags"], RespSet)
    assert cond["arguments"] == [
        {"name": "nx", "type": "pure-token", "token": "NX"},
        {"name": "xx", "type": "pure-token", "token": "XX"},
    ]
    assert args[3] == {"name": "get", "type": "pure-token", "token": "GET", "flags": ["optional"]}
    expiration = args[4]["arguments"]
    assert expiration[0] == {
        "name": "seconds",
        "type": "integer",
        "display_text": "seconds",
        "token": "EX",
    }
    assert expiration[2]["type"] == "unix-time"
    assert expiration[-1] == {"name": "keepttl", "type": "pure-token", "token": "KEEPTTL"}


def test_command_docs_unknown_names_are_left_out(server: Server) -> None:
    c = connect(server)
    assert run(server, c, "COMMAND", "DOCS", "nosuch") == []
    hello3(server, c)
    assert raw(server, c, "COMMAND", "DOCS", "nosuch") == b"%0\r\n"
    assert list(run(server, c, "COMMAND", "DOCS", "nosuch", "get", "object|encoding")) == [
        "get",
        "object|encoding",
    ]


def test_command_docs_container_has_subcommands(server: Server) -> None:
    c = connect(server)
    hello3(server, c)
    doc = run(server, c, "COMMAND", "DOCS", "client")["client"]
    assert doc["group"] == "connection"
    assert doc["complexity"] == "Depends on subcommand."
    kill = doc["subcommands"]["client|kill"]
    assert kill["since"] == "2.4.0"
    assert kill["arguments"][0]["type"] == "oneof"


def test_command_docs_all(server: Server) -> None:
    c = connect(server)
    hello3(server, c)
    docs = run(server, c, "COMMAND", "DOCS")
    assert set(docs) == {cmd.name for cmd in TABLE.all()}
    assert all("summary" in d for d in docs.values())


# -- parse_args_doc -------------------------------------------------------------------------------


def tree(args: tuple[ArgDoc, ...] | list[ArgDoc]) -> list[Any]:
    out: list[Any] = []
    for a in args:
        flags = [f for f in ("optional", "multiple", "multiple_token") if getattr(a, f)]
        node: list[Any] = [a.name, a.type, a.token, flags]
        if a.args:
            node.append(tree(a.args))
        out.append(node)
    return out


@pytest.mark.parametrize(
    ("syntax", "keys", "expected"),
    [
        ("", True, []),
        ("key", True, [["key", "key", "", []]]),
        ("key", False, [["key", "string", "", []]]),
        ("key [key ...]", True, [["key", "key", "", ["multiple"]]]),
        ("[key ...]", True, [["key", "key", "", ["optional", "multiple"]]]),
        (
            "key value [key value ...]",
            True,
            [
                [
                    "key-value",
                    "block",
                    "",
                    ["multiple"],
                    [["key", "key", "", []], ["value", "string", "", []]],
                ]
            ],
        ),
        (
            "key [NX|XX]",
            True,
            [
                ["key", "key", "", []],
                [
                    "nx_xx",
                    "oneof",
                    "",
                    ["optional"],
                    [["nx", "pure-token", "NX", []], ["xx", "pure-token", "XX", []]],
                ],
            ],
        ),
        (
            "[GET pattern [GET pattern ...]]",
            True,
            [["pattern", "pattern", "GET", ["optional", "multiple", "multiple_token"]]],
        ),
        (
            "[ID client-id [client-id ...]]",
            False,
            [["client-id", "integer", "ID", ["optional", "multiple"]]],
        ),
        (
            "[AUTH username password]",
            False,
            [
                [
                    "username-password",
                    "block",
                    "AUTH",
                    ["optional"],
                    [["username", "string", "", []], ["password", "string", "", []]],
                ]
            ],
        ),
        (
            "[TYPE (NORMAL|PUBSUB)]",
            False,
            [
                [
                    "type",
                    "oneof",
                    "TYPE",
                    ["optional"],
                    [
                        ["normal", "pure-token", "NORMAL", []],
                        ["pubsub", "pure-token", "PUBSUB", []],
                    ],
                ]
            ],
        ),
        (
            "[ADDR ip:port] [LADDR ip:port]",
            False,
            [
                ["ip:port", "string", "ADDR", ["optional"]],
                ["laddr", "string", "LADDR", ["optional"]],
            ],
        ),
        (
            "ON|OFF",
            False,
            [
                [
                    "on_off",
                    "oneof",
                    "",
                    [],
                    [["on", "pure-token", "ON", []], ["off", "pure-token", "OFF", []]],
                ]
            ],
        ),
        (
            "cursor [COUNT count]",
            False,
            [["cursor", "integer", "", []], ["count", "integer", "COUNT", ["optional"]]],
        ),
    ],
)
def test_parse_args_doc(syntax: str, keys: bool, expected: list[Any]) -> None:
    assert tree(parse_args_doc(syntax, keys)) == expected


@pytest.mark.parametrize("syntax", ["a [b", "] ) | ...", "[[[", "((a|)|b", "... key", "[|]"])
def test_parse_args_doc_never_raises(syntax: str) -> None:
    parse_args_doc(syntax, True)


def test_every_registered_syntax_parses(server: Server) -> None:
    c = connect(server)
    for cmd in TABLE.all():
        for x in [cmd, *cmd.subcommands.values()]:
            if x.args_doc:
                assert parse_args_doc(x.args_doc, x.first_key > 0), x.name
    hello3(server, c)
    assert isinstance(run(server, c, "COMMAND", "DOCS"), dict)
