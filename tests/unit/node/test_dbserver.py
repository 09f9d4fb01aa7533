"""The database commands of the client port (ackdb.node.dbserver) and DB.TOPOLOGY's long
polls (ackdb.node.topowatch), against a fake agent whose writes apply at once to a real
metadata store."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from ackdb.cluster import commands as c
from ackdb.cluster import dbops
from ackdb.cluster.commands import Command, Op, RecordKind, Result
from ackdb.cluster.databases import Database, Persistence, Topology
from ackdb.cluster.dbtext import parse_info
from ackdb.cluster.metadata import MetadataStore, encode_member_context
from ackdb.consensus import ConfChange, ConfChangeKind, ConfState, Entry, EntryKind
from ackdb.consensus.codec import encode_conf_entry
from ackdb.node import topowatch
from ackdb.node.dbserver import parse_create
from ackdb.node.metaserver import MetaConnection
from ackdb.node.topowatch import TopologyWatches
from ackdb.resp.replies import NEED_DATA, ReplyReader
from ackdb.resp.request import encode_command
from ackdb.server.log import Log


class FakeTransport:
    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class FakeAgent:
    """Writes apply to ``meta`` at once (as if this node were a one-member cluster);
    reads run at once."""

    def __init__(self) -> None:
        self.clients: set[Any] = set()
        self.log = Log("warning")
        self.meta = MetadataStore()
        self.node_id = "n1"
        self.watches = TopologyWatches(lambda: self.meta)
        self.stopping = False
        self.seq = 0
        self.to_flush: list[MetaConnection] = []
        for i in (1, 2):
            ctx = encode_member_context(f"127.0.0.{i}:700{i}", f"127.0.0.{i}:710{i}")
            voters = tuple(f"n{j}" for j in range(1, i + 1))
            cc = ConfChange(ConfChangeKind.ADD_NODE, f"n{i}", ctx)
            self._append(encode_conf_entry(cc, ConfState(voters=voters)), EntryKind.CONF_CHANGE)

    def _append(self, data: bytes, kind: EntryKind = EntryKind.NORMAL) -> Any:
        e = Entry(term=1, index=self.meta.applied_index + 1, kind=kind, data=data)
        return self.meta.apply_entry(e)

    def submit(self, op: Op, args: tuple[Any, ...], done: Callable[[Result], None]) -> None:
        self.seq += 1
        applied = self._append(c.encode_command(Command("t", self.seq, op, args)))
        self.watches.check()
        done(applied.result)

    def read(self, run: Callable[[], None], failed: Callable[[str], None]) -> None:
        run()

    def schedule_flush(self, conn: MetaConnection) -> None:
        self.to_flush.append(conn)

    def flush(self) -> None:
        conns, self.to_flush = self.to_flush, []
        for conn in conns:
            conn.flush()


class Conn:
    def __init__(self, agent: FakeAgent) -> None:
        self.agent = agent
        self.c = MetaConnection(agent)  # type: ignore[arg-type]
        self.t = FakeTransport()
        self.c.connection_made(self.t)  # type: ignore[arg-type]
        self.reader = ReplyReader()

    def send(self, *args: str | bytes) -> None:
        self.c.data_received(
            encode_command([a if isinstance(a, bytes) else a.encode() for a in args])
        )
        self.agent.flush()

    def replies(self) -> list[Any]:
        self.reader.feed(self.t.data)
        self.t.data = b""
        out = []
        while (r := self.reader.get()) is not NEED_DATA:
            out.append(r)
        return out

    def call(self, *args: str | bytes) -> Any:
        self.send(*args)
        (r,) = self.replies()
        return r


def test_create_info_list_delete() -> None:
    conn = Conn(FakeAgent())
    text = conn.call("DB.CREATE", "db1", "shards", "2", "REPLICAS", "1", "PASSWORD", "pw",
                     "persistence", "AOF-EVERYSEC", "cluster-api", "YES", "PORT", "12345")  # fmt: skip
    info = parse_info(text.decode())
    assert info.name == "db1" and info.port == 12345 and len(info.shards) == 2
    f = info.fields
    assert (f["replication"], f["replicas"], f["persistence"]) == ("yes", "1", "aof-everysec")
    assert (f["password"], f["cluster_api"], f["endpoints"]) == (
        "yes",
        "yes",
        "127.0.0.1:12345,127.0.0.2:12345",
    )
    assert info.shards[0].primary.startswith("n1:127.0.0.1:")
    assert info.shards[0].replicas[0].startswith("n2:127.0.0.2:")
    r = conn.agent.meta.record(RecordKind.DATABASE, "db1")
    assert r is not None
    assert Database.from_body(r.body).password_sha256 == hashlib.sha256(b"pw").hexdigest()
    assert b"pw" not in r.body
    assert conn.call("DB.LIST") == [b"db1"]
    assert parse_info(conn.call("DB.INFO", "db1").decode()).fields == f
    assert conn.call("DB.DELETE", "db1") == b"OK"
    assert conn.call("DB.LIST") == []
    assert str(conn.call("DB.INFO", "db1")) == "ERR no such database 'db1'"
    assert str(conn.call("DB.DELETE", "db1")) == "ERR no such database 'db1'"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["x", "SHARDS"], "ERR syntax error"),
        (["x", "COLOR", "red"], "ERR syntax error"),
        (["x", "SHARDS", "two"], "ERR value is not an integer or out of range"),
        (["x", "SHARDS", "-1"], "ERR value is not an integer or out of range"),
        (["x", "SHARDS", "0"], "ERR shards must be between 1 and 128"),
        (["x", "REPLICATION", "maybe"], "ERR REPLICATION must be yes or no"),
        (["x", "REPLICATION", "no", "REPLICAS", "1"], "ERR replicas need replication"),
        (["x", "PORT", "0"], "ERR port must be between 1 and 65535"),
        (["x", "PERSISTENCE", "rdb"], "ERR persistence must be"),
        (["-x"], "ERR invalid database name"),
    ],
)
def test_argument_errors(args: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_create([b"DB.CREATE", *(a.encode() for a in args)])
    conn = Conn(FakeAgent())
    assert str(conn.call("DB.CREATE", *args)).startswith(error)
    assert conn.agent.meta.record_list(RecordKind.DATABASE) == []


def test_parse_create_defaults() -> None:
    name, opts = parse_create([b"DB.CREATE", b"d"])
    assert name == "d" and opts.resolved() == (False, 0)
    assert opts.persistence is Persistence.NONE and opts.port == 0
    _, opts = parse_create([b"DB.CREATE", b"d", b"REPLICATION", b"yes"])
    assert opts.resolved() == (True, 1)


def test_refusal_from_the_state_machine() -> None:
    conn = Conn(FakeAgent())
    r = conn.call("DB.CREATE", "d", "REPLICAS", "2")
    assert (
        str(r)
        == "ERR cannot place 2 replicas per shard: needs 3 nodes, the cluster has 2 active nodes"
    )
    assert conn.call("DB.LIST") == []


def test_topology_now_and_long_poll() -> None:
    async def run() -> None:
        agent = FakeAgent()
        conn, other = Conn(agent), Conn(agent)
        assert str(conn.call("DB.TOPOLOGY", "d")) == "ERR no such database 'd'"
        conn.call("DB.CREATE", "d", "SHARDS", "2")
        t = Topology.from_bytes(conn.call("DB.TOPOLOGY", "d"))
        assert t.node == "n1" and t.hosts == {"n1": "127.0.0.1", "n2": "127.0.0.2"}
        assert t.version == t.db.uid
        # An older known version answers at once.
        assert Topology.from_bytes(conn.call("DB.TOPOLOGY", "d", str(t.version - 1))) == t
        # The current one waits: a timeout answers with the same bytes.
        conn.send("DB.TOPOLOGY", "d", str(t.version), "50")
        assert conn.replies() == [] and agent.watches.count == 1
        await asyncio.sleep(0.2)
        agent.flush()
        assert conn.replies() == [t.to_bytes()]
        assert agent.watches.count == 0
        # A change answers at once, to every poll of that database.
        conn.send("DB.TOPOLOGY", "d", str(t.version), "10000")
        conn.send("PING")  # waits behind the poll: replies keep request order
        other.send("DB.TOPOLOGY", "d", str(t.version), "10000")
        assert conn.replies() == [] and agent.watches.count == 2
        third = Conn(agent)
        third.call("DB.CREATE", "unrelated")
        assert agent.watches.count == 2  # another database's change wakes nobody
        agent.submit(Op.MEMBER_PUT, ("n2", "10.0.0.2:7002", "10.0.0.2:7102"), lambda r: None)
        agent.flush()
        (r1, pong) = conn.replies()
        (r2,) = other.replies()
        assert r1 == r2 and pong == b"PONG"
        t2 = Topology.from_bytes(r1)
        assert t2.version > t.version and t2.hosts["n2"] == "10.0.0.2"
        # A deleted database answers its polls with the error.
        conn.send("DB.TOPOLOGY", "d", str(t2.version), "10000")
        third.call("DB.DELETE", "d")
        agent.flush()
        assert [str(r) for r in conn.replies()] == ["ERR no such database 'd'"]
        assert agent.watches.count == 0

    asyncio.run(run())


def test_topology_polls_are_bounded_and_cleaned_up(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        agent = FakeAgent()
        conn = Conn(agent)
        conn.call("DB.CREATE", "d")
        v = Topology.from_bytes(conn.call("DB.TOPOLOGY", "d")).version
        assert str(conn.call("DB.TOPOLOGY", "d", str(v), "300001")).startswith("ERR timeout-ms")
        assert str(conn.call("DB.TOPOLOGY", "d", "x")).startswith("ERR value is not an integer")
        assert str(conn.call("DB.TOPOLOGY", "d", "1", "2", "3")).startswith("ERR wrong number")
        # timeout 0: the current topology at once
        assert Topology.from_bytes(conn.call("DB.TOPOLOGY", "d", str(v), "0")).version == v
        monkeypatch.setattr(topowatch, "TOPOLOGY_WATCHES_MAX", 2)
        for _ in range(2):
            Conn(agent).send("DB.TOPOLOGY", "d", str(v), "10000")
        assert str(conn.call("DB.TOPOLOGY", "d", str(v), "10000")).startswith("TRYAGAIN")
        # A closed connection's poll goes away with its timer.
        gone = Conn(agent)
        monkeypatch.setattr(topowatch, "TOPOLOGY_WATCHES_MAX", 10)
        gone.send("DB.TOPOLOGY", "d", str(v), "10000")
        assert agent.watches.count == 3
        gone.c.connection_lost(None)
        assert agent.watches.count == 2
        agent.watches.close()
        assert agent.watches.count == 0 and agent.watches.by_db == {}

    asyncio.run(run())


def test_acl_users_are_stored_hashed_with_the_database() -> None:
    _, opts = parse_create(
        [b"DB.CREATE", b"d", b"ACL-USER", b"alice on >apw ~a* +get", b"ACL-USER", b"bob on"]
    )
    assert [u.split()[0] for u in opts.acl_users] == ["alice", "bob"]
    assert all("apw" not in u for u in opts.acl_users)
    assert dbops.DbOptions.from_bytes(opts.to_bytes()).acl_users == opts.acl_users
    with pytest.raises(ValueError, match="Unknown command"):
        parse_create([b"DB.CREATE", b"d", b"ACL-USER", b"carol +nosuch"])
