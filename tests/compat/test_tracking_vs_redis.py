"""CLIENT REPLY and CLIENT TRACKING (with CACHING, GETREDIR, TRACKINGINFO) against
redis-server: the same scripts on both servers, every byte each connection receives
compared — replies, muted replies, RESP3 ``invalidate`` pushes (after the reply of the
command that caused them), RESP2 ``__redis__:invalidate`` messages on a redirect client,
``tracking-redir-broken``, flushes (a null key list) and the option errors.

Each step sends its commands and then ``PING <marker>``, and reads until the marker's
reply: whatever a server sent that connection before it (pushes caused by other clients
included) is in the step's bytes, with no timing involved.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from ackdb.resp.request import encode_command
from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

READ_TIMEOUT_S = 10.0


class Raw:
    """A connection whose every received byte a step returns."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S)
        self.marks = 0
        self.id = self.step(["CLIENT", "ID"]).split(b"\r\n")[0][1:]

    def step(self, *cmds: list[str | bytes]) -> bytes:
        self.marks += 1
        mark = b"mark-%d" % self.marks
        data = b"".join(
            encode_command([a if isinstance(a, bytes) else a.encode() for a in c]) for c in cmds
        )
        self.sock.sendall(data + encode_command([b"PING", mark]))
        end = b"$%d\r\n%s\r\n" % (len(mark), mark)
        got = b""
        while not got.endswith(end):
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            got += chunk
        return got[: -len(end)]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("tracking")) as pair:
        yield pair


def run(port: int, script: list[tuple[str, list[list[str | bytes]]]]) -> list[bytes]:
    """Run ``script`` (connection name, commands) with connections a, b, c and d; client
    ids in commands are written "@a"..., and in the output replaced by "<a>"...; HELLO's
    reply is left out."""
    conns = {name: Raw(port) for name in "abcd"}
    try:
        out = []
        for name, cmds in script:
            cmds = [
                [conns[a[1:]].id if a in ("@a", "@b", "@c", "@d") else a for a in c] for c in cmds
            ]
            for hello in [c for c in cmds if c[0] == "HELLO"]:
                conns[name].step(hello)  # the server's name and version differ
            got = conns[name].step(*[c for c in cmds if c[0] != "HELLO"])
            for other, conn in conns.items():
                got = got.replace(b":%s\r\n" % conn.id, b":<%s>\r\n" % other.encode())
            out.append(got)
            if name == "d" and ["QUIT"] in cmds:
                break
        return out
    finally:
        for conn in conns.values():
            conn.close()


def compare(ports: tuple[int, int], script: list[tuple[str, list[list[str | bytes]]]]) -> None:
    theirs, ours = run(ports[0], script), run(ports[1], script)
    for i, (t, o) in enumerate(zip(theirs, ours, strict=True)):
        assert t == o, (i, script[i], t, o)


def test_client_reply(ports: tuple[int, int]) -> None:
    compare(ports, [
        ("a", [["CLIENT", "REPLY", "SKIP"], ["PING"], ["PING", "x"], ["CLIENT", "REPLY", "OFF"],
               ["SET", "k", "v"], ["GET", "nokey", "extra"], ["CLIENT", "REPLY", "SKIP"],
               ["PING"], ["CLIENT", "REPLY", "ON"], ["GET", "k"]]),
        ("a", [["CLIENT", "REPLY", "SKIP"], ["CLIENT", "REPLY", "ON"], ["PING", "y"]]),
        ("a", [["CLIENT", "REPLY", "SKIP"], ["CLIENT", "REPLY", "SKIP"], ["PING"], ["PING", "z"]]),
        ("a", [["CLIENT", "REPLY", "maybe"], ["CLIENT", "REPLY"]]),
    ])  # fmt: skip


def test_tracking_default_mode(ports: tuple[int, int]) -> None:
    compare(ports, [
        ("a", [["FLUSHALL"], ["HELLO", "3"]]),
        ("a", [["CLIENT", "TRACKING", "on"], ["GET", "k"], ["MGET", "k", "j"], ["HGET", "h", "f"],
               ["CLIENT", "TRACKINGINFO"], ["CLIENT", "GETREDIR"]]),
        ("b", [["SET", "k", "1"], ["SET", "j", "2"], ["HSET", "h", "f", "v"], ["SET", "k", "3"]]),
        ("a", [["GET", "k"], ["SET", "k", "2"], ["GET", "k"], ["SELECT", "1"], ["SET", "k", "x"]]),
        ("a", [["SELECT", "0"], ["GET", "k"], ["INCR", "k"], ["GET", "j"], ["EXPIRE", "j", "100"]]),
        ("a", [["CLIENT", "TRACKING", "on", "NOLOOP"], ["GET", "k"], ["SET", "k", "9"], ["GET", "k"]]),
        ("b", [["DEL", "k"], ["SET", "k", "1"]]),
        ("a", [["GET", "k"], ["MULTI"], ["GET", "k"], ["SET", "k", "5"], ["EXEC"]]),
        ("a", [["CLIENT", "TRACKING", "on"], ["GET", "k"]]),
        ("b", [["FLUSHDB"]]),
        ("a", [["CLIENT", "TRACKING", "off"], ["GET", "k"], ["CLIENT", "TRACKINGINFO"], ["CLIENT", "GETREDIR"]]),
        ("b", [["SET", "k", "1"]]),
        ("a", []),
    ])  # fmt: skip


def test_tracking_optin_optout(ports: tuple[int, int]) -> None:
    compare(ports, [
        ("a", [["FLUSHALL"], ["HELLO", "3"], ["CLIENT", "CACHING", "yes"]]),
        ("a", [["CLIENT", "TRACKING", "on", "OPTIN"], ["CLIENT", "CACHING", "no"], ["GET", "x"],
               ["CLIENT", "CACHING", "yes"], ["CLIENT", "TRACKINGINFO"], ["GET", "y"], ["GET", "z"],
               ["CLIENT", "CACHING", "maybe"]]),
        ("b", [["MSET", "x", "1", "y", "1", "z", "1"]]),
        ("a", [["CLIENT", "TRACKING", "on", "OPTOUT"], ["CLIENT", "TRACKING", "off"],
               ["CLIENT", "TRACKING", "on", "OPTOUT"], ["CLIENT", "CACHING", "no"],
               ["CLIENT", "TRACKINGINFO"], ["GET", "x"], ["GET", "y"]]),
        ("b", [["MSET", "x", "2", "y", "2"]]),
        ("a", [["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"], ["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"]]),
    ])  # fmt: skip


def test_tracking_bcast(ports: tuple[int, int]) -> None:
    compare(ports, [
        ("a", [["FLUSHALL"], ["HELLO", "3"]]),
        ("a", [["CLIENT", "TRACKING", "on", "PREFIX", "a"],
               ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "b"],
               ["CLIENT", "TRACKINGINFO"], ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab"],
               ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "x", "PREFIX", "xy"],
               ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "c"],
               ["CLIENT", "TRACKING", "on"], ["CLIENT", "TRACKINGINFO"]]),
        ("b", [["SET", "abc", "1"]]),
        ("b", [["SET", "zzz", "1"]]),
        ("b", [["SET", "b", "1"]]),
        ("b", [["DEL", "abc"]]),
        ("c", [["HELLO", "3"], ["CLIENT", "TRACKING", "on", "BCAST", "NOLOOP"], ["SET", "q", "1"]]),
        ("b", [["SET", "q", "2"]]),
        ("c", [["CLIENT", "TRACKING", "off"]]),
        ("b", [["SET", "q", "3"]]),
        ("a", [["CLIENT", "TRACKING", "off"], ["CLIENT", "TRACKINGINFO"]]),
    ])  # fmt: skip


def test_tracking_redirect(ports: tuple[int, int]) -> None:
    compare(ports, [
        ("a", [["FLUSHALL"]]),
        ("b", [["SUBSCRIBE", "__redis__:invalidate"]]),
        ("a", [["CLIENT", "TRACKING", "on", "REDIRECT", "@b", "REDIRECT", "@b"],
               ["CLIENT", "TRACKING", "on", "REDIRECT", "999999"],
               ["CLIENT", "TRACKING", "on", "REDIRECT", "x"],
               ["CLIENT", "TRACKING", "on", "REDIRECT", "@b"], ["GET", "q"], ["GET", "w"],
               ["CLIENT", "GETREDIR"], ["CLIENT", "TRACKINGINFO"]]),
        ("c", [["MSET", "q", "1", "w", "2"], ["FLUSHDB"]]),
        ("b", []),
        ("c", [["HELLO", "3"], ["CLIENT", "TRACKING", "on", "REDIRECT", "@d"], ["GET", "r"]]),
        ("d", [["HELLO", "3"], ["CLIENT", "TRACKING", "on", "REDIRECT", "@c"], ["GET", "s"]]),
        ("a", [["SET", "r", "1"], ["SET", "s", "1"]]),
        ("c", []),
        ("d", []),
    ])  # fmt: skip


def test_tracking_broken_redirect(ports: tuple[int, int]) -> None:
    script: list[tuple[str, list[list[str | bytes]]]] = [
        ("a", [["FLUSHALL"], ["CLIENT", "TRACKING", "on", "REDIRECT", "@d"], ["GET", "k"]]),
        ("d", [["QUIT"]]),
    ]  # fmt: skip
    theirs, ours = [], []
    for port, out in ((ports[0], theirs), (ports[1], ours)):
        conns = {name: Raw(port) for name in "ad"}
        try:
            out.append(
                conns["a"].step(
                    *[[conns["d"].id if x == "@d" else x for x in c] for c in script[0][1]]
                )
            )
            conns["d"].sock.sendall(encode_command([b"QUIT"]))
            assert conns["d"].sock.recv(100).startswith(b"+OK")
            conns["d"].sock.close()
            sets = [["CLIENT", "ID"]] * 20
            while True:  # until the server has seen the close
                got = conns["a"].step(["CLIENT", "LIST", "ID", conns["d"].id])
                if got.endswith(b"$0\r\n\r\n") or b"id=" not in got:
                    break
                conns["a"].step(*sets)
            writer = Raw(port)
            writer.step(["SET", "k", "1"])
            writer.close()
            got = conns["a"].step(["CLIENT", "TRACKINGINFO"])
            out.append(got.replace(b":%s\r\n" % conns["d"].id, b":<d>\r\n"))
        finally:
            conns["a"].close()
    assert theirs == ours
