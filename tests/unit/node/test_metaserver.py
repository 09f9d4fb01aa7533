"""The client port (ackdb.node.metaserver) against a fake agent: reply shapes, order,
limits and protocol errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ackdb.cluster.commands import KEY_MAX_BYTES, Op, Result
from ackdb.cluster.metadata import KvItem, MetadataStore
from ackdb.consensus import Role
from ackdb.node import metaserver
from ackdb.node.metaserver import MetaConnection
from ackdb.resp.request import encode_command
from ackdb.server.log import Log


class FakeTransport:
    def __init__(self) -> None:
        self.data = b""
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class FakeAgent:
    """Records submits and reads; the test completes them when it wants."""

    def __init__(self) -> None:
        self.clients: set[Any] = set()
        self.log = Log("warning")
        self.meta = MetadataStore()
        self.writes: list[tuple[Op, tuple[Any, ...], Callable[[Result], None]]] = []
        self.reads: list[tuple[Callable[[], None], Callable[[str], None]]] = []
        self.to_flush: list[MetaConnection] = []
        self.stopping = False
        self.role = Role.FOLLOWER

    def submit(self, op: Op, args: tuple[Any, ...], done: Callable[[Result], None]) -> None:
        self.writes.append((op, args, done))

    def read(self, run: Callable[[], None], failed: Callable[[str], None]) -> None:
        self.reads.append((run, failed))

    def schedule_flush(self, conn: MetaConnection) -> None:
        self.to_flush.append(conn)

    def status_text(self) -> str:
        return "node_id:n1\r\n"

    def info_text(self) -> str:
        return "# Cluster\r\n"

    def join_proof_ok(self, node_id: str, client: str, cluster: str, proof: bytes) -> bool:
        return proof == b"good"

    def flush(self) -> None:
        conns, self.to_flush = self.to_flush, []
        for c in conns:
            c.flush()


@pytest.fixture
def conn() -> tuple[FakeAgent, MetaConnection, FakeTransport]:
    agent = FakeAgent()
    c = MetaConnection(agent)  # type: ignore[arg-type]
    t = FakeTransport()
    c.connection_made(t)
    return agent, c, t


def cmd(*args: bytes) -> bytes:
    return encode_command(args)


def test_set_get_del_cas_shapes(conn: Any) -> None:
    agent, c, t = conn
    c.data_received(cmd(b"META.SET", b"k", b"v"))
    assert t.data == b"" and agent.writes[0][:2] == (Op.KV_SET, (b"k", b"v"))
    agent.writes[0][2](Result(True))
    agent.flush()
    assert t.data == b"+OK\r\n"
    c.data_received(cmd(b"meta.del", b"k") + cmd(b"META.CAS", b"k", b"a", b"b"))
    agent.writes[1][2](Result(True, 1))
    agent.writes[2][2](Result(True, 0))
    agent.flush()
    assert t.data == b"+OK\r\n:1\r\n:0\r\n"
    agent.meta.kv[b"k"] = KvItem(b"val", 1, 1)
    c.data_received(cmd(b"META.GET", b"k") + cmd(b"META.GET", b"missing"))
    assert len(agent.reads) == 1  # the second read waits for the first (ordering rule)
    agent.reads[0][0]()
    agent.reads[1][0]()
    agent.flush()
    assert t.data.endswith(b"$3\r\nval\r\n$-1\r\n")


def test_errors_from_the_log(conn: Any) -> None:
    agent, c, t = conn
    c.data_received(cmd(b"META.SET", b"k", b"v") + cmd(b"META.GET", b"k"))
    agent.writes[0][2](Result(False, None, "NOQUORUM no leader: this node cannot reach a majority"))
    agent.reads[0][1]("TRYAGAIN read not confirmed within 5000 ms")
    agent.flush()
    assert t.data == (
        b"-NOQUORUM no leader: this node cannot reach a majority\r\n"
        b"-TRYAGAIN read not confirmed within 5000 ms\r\n"
    )


def test_replies_keep_request_order_and_writes_pipeline(conn: Any) -> None:
    agent, c, t = conn
    c.data_received(cmd(b"META.SET", b"a", b"1") + cmd(b"META.SET", b"b", b"2") + cmd(b"PING"))
    assert len(agent.writes) == 2  # both writes in flight together
    agent.writes[1][2](Result(True))
    agent.flush()
    assert t.data == b""  # the first is not answered yet
    agent.writes[0][2](Result(True))
    agent.flush()
    assert t.data == b"+OK\r\n+OK\r\n+PONG\r\n"


def test_read_waits_for_earlier_write_and_write_for_earlier_read(conn: Any) -> None:
    agent, c, t = conn
    c.data_received(
        cmd(b"META.SET", b"a", b"1") + cmd(b"META.GET", b"a") + cmd(b"META.SET", b"a", b"2")
    )
    assert len(agent.writes) == 1 and agent.reads == []
    agent.meta.kv[b"a"] = KvItem(b"1", 1, 1)
    agent.writes[0][2](Result(True))
    assert len(agent.reads) == 1 and len(agent.writes) == 1
    agent.reads[0][0]()
    assert len(agent.writes) == 2
    agent.writes[1][2](Result(True))
    agent.flush()
    assert t.data == b"+OK\r\n$1\r\n1\r\n+OK\r\n"


def test_local_commands_and_many_pipelined(conn: Any) -> None:
    agent, c, t = conn
    c.data_received(b"PING\r\n" + cmd(b"PING", b"hi") + cmd(b"ECHO", b"x") + cmd(b"SELECT", b"0"))
    c.data_received(cmd(b"CLUSTER.STATUS") + cmd(b"INFO") + cmd(b"COMMAND", b"DOCS"))
    agent.flush()
    assert t.data == (
        b"+PONG\r\n$2\r\nhi\r\n$1\r\nx\r\n+OK\r\n$12\r\nnode_id:n1\r\n\r\n"
        b"$11\r\n# Cluster\r\n\r\n*0\r\n"
    )
    t.data = b""
    c.data_received(cmd(b"PING") * 20000)  # no recursion per command
    agent.flush()
    assert t.data == b"+PONG\r\n" * 20000


def test_usage_errors(conn: Any) -> None:
    agent, c, t = conn
    c.data_received(cmd(b"NOPE", b"a") + cmd(b"META.SET", b"k") + cmd(b"SELECT", b"1"))
    c.data_received(cmd(b"META.SET", b"k" * (KEY_MAX_BYTES + 1), b"v"))
    c.data_received(
        cmd(b"CLUSTER.JOIN", b"n4", b"bad", b"h:1", b"good")
        + cmd(b"CLUSTER.JOIN", b"n 4", b"h:1", b"h:2", b"good")
        + cmd(b"CLUSTER.JOIN", b"n4", b"h:1", b"h:2", b"bad")
        + cmd(b"CLUSTER.JOIN", b"n4", b"h:1", b"h:2")
    )
    agent.flush()
    assert t.data.split(b"\r\n")[:-1] == [
        b"-ERR unknown command 'NOPE', with args beginning with: 'a'",
        b"-ERR wrong number of arguments for 'meta.set' command",
        b"-ERR DB index is out of range",
        b"-ERR key longer than 65536 bytes",
        b"-ERR bad address 'bad': expected host:port",
        b"-ERR invalid node id or address",
        b"-WRONGSECRET node n4 does not hold this cluster's secret",
        b"-ERR wrong number of arguments for 'cluster.join' command",
    ]
    assert agent.writes == []


def test_join_and_remove_submit(conn: Any) -> None:
    agent, c, t = conn
    c.data_received(
        cmd(b"CLUSTER.JOIN", b"n4", b"h:1", b"h:2", b"good") + cmd(b"CLUSTER.REMOVE", b"n2")
    )
    assert [w[:2] for w in agent.writes] == [
        (Op.MEMBER_JOIN, ("n4", "h:1", "h:2")),
        (Op.MEMBER_REMOVE, ("n2",)),
    ]


def test_protocol_error_replies_and_closes(conn: Any) -> None:
    agent, c, t = conn
    c.data_received(b"*1\r\n$4\r\nPING\r\n*x\r\n")
    agent.flush()
    assert t.data == b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
    assert t.closed


def test_quit_closes_after_reply(conn: Any) -> None:
    agent, c, t = conn
    c.data_received(cmd(b"QUIT") + cmd(b"PING"))
    agent.flush()
    assert t.data == b"+OK\r\n" and t.closed


def test_too_many_pending_pauses_reading(conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metaserver, "CONNECTION_PENDING_MAX_COMMANDS", 3)
    agent, c, t = conn
    c.data_received(cmd(b"META.SET", b"a", b"1") * 4)
    assert not t.reading
    for w in agent.writes:
        w[2](Result(True))
    agent.flush()
    assert t.reading and t.data == b"+OK\r\n" * 4


def test_hello_switches_protocol(conn: Any) -> None:
    agent, c, t = conn
    agent.meta.kv[b"k"] = KvItem(b"v", 1, 1)
    c.data_received(cmd(b"HELLO", b"4") + cmd(b"HELLO", b"3", b"BOGUS"))
    agent.flush()
    assert t.data == (
        b"-NOPROTO sorry, this protocol version is not supported\r\n"
        b"-ERR Syntax error in HELLO option 'BOGUS'\r\n"
    )
    t.data = b""
    c.data_received(cmd(b"HELLO", b"3", b"AUTH", b"default", b"pw", b"SETNAME", b"x"))
    agent.flush()
    assert t.data.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nackdb\r\n")
    assert b"$5\r\nproto\r\n:3\r\n" in t.data and b"$8\r\nfollower\r\n" in t.data
    t.data = b""
    c.data_received(cmd(b"META.GET", b"missing"))
    agent.reads[0][0]()
    agent.flush()
    assert t.data == b"_\r\n"  # RESP3 null
    t.data = b""
    c.data_received(cmd(b"HELLO", b"2"))
    agent.flush()
    assert t.data.startswith(b"*14\r\n")
