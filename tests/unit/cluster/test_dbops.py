"""Databases in the metadata state machine (ackdb.cluster.dbops): db.create / db.delete as
they apply, refusals that change nothing, the topology version, determinism and
snapshots, and records or options that are garbage."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.cluster import commands as c
from ackdb.cluster import dbops
from ackdb.cluster.commands import Command, Health, Op, RecordKind, Result
from ackdb.cluster.databases import Database, Persistence, Topology
from ackdb.cluster.dbops import DbOptions
from ackdb.cluster.metadata import MetadataStore, encode_member_context
from ackdb.cluster.status import parse_status, status_text
from ackdb.consensus import ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, Role, Status
from ackdb.consensus.codec import encode_conf_entry


class Log:
    def __init__(self) -> None:
        self.store = MetadataStore()
        self.entries: list[Entry] = []
        self.seq = 0

    def _apply(self, data: bytes, kind: EntryKind = EntryKind.NORMAL) -> Result | None:
        e = Entry(term=1, index=self.store.applied_index + 1, kind=kind, data=data)
        self.entries.append(e)
        applied = self.store.apply_entry(e)
        return None if applied is None else applied.result

    def cmd(self, op: Op, *args: bytes | str | int) -> Result:
        self.seq += 1
        r = self._apply(c.encode_command(Command("c1", self.seq, op, args)))
        assert r is not None
        return r

    def add_node(self, node: str, host: str = "127.0.0.1", port: int = 7001) -> None:
        voters = (*self.store.voters, node)
        ctx = encode_member_context(f"{host}:{port}", f"{host}:{port + 100}")
        cc = ConfChange(ConfChangeKind.ADD_NODE, node, ctx)
        self._apply(encode_conf_entry(cc, ConfState(voters=voters)), EntryKind.CONF_CHANGE)

    def create(self, name: str, **opts: object) -> Result:
        return self.cmd(Op.DB_CREATE, name, DbOptions(**opts).to_bytes())  # type: ignore[arg-type]


def cluster(n: int) -> Log:
    log = Log()
    for i in range(1, n + 1):
        log.add_node(f"n{i}", port=7000 + i)
    return log


def db(log: Log, name: str) -> Database:
    r = log.store.record(RecordKind.DATABASE, name)
    assert r is not None
    return Database.from_body(r.body)


def test_create_places_and_records_the_database() -> None:
    log = cluster(3)
    assert log.create("db1", shards=3, replicas=1, persistence=Persistence.AOF_ALWAYS) == c.OK
    d = db(log, "db1")
    assert d.uid == log.store.applied_index  # the log index of its create
    assert (d.replication, d.replicas, d.persistence) == (True, 1, Persistence.AOF_ALWAYS)
    assert [s.primary.node for s in d.shards] == ["n1", "n2", "n3"]
    t = dbops.topology(log.store, "db1", "n2")
    assert t is not None and t.version == d.uid and t.node == "n2"
    assert t.hosts == {"n1": "127.0.0.1", "n2": "127.0.0.1", "n3": "127.0.0.1"}
    assert Topology.from_bytes(t.to_bytes()) == t
    # The defaults: one shard, no replication, no persistence, the next free port.
    assert log.create("db2") == c.OK
    d2 = db(log, "db2")
    assert (len(d2.shards), d2.replication, d2.replicas) == (1, False, 0)
    assert (d2.persistence, d2.cluster_api, d2.password_sha256) == (Persistence.NONE, False, "")
    assert d2.port == d.port + 1
    assert [x.name for x in dbops.databases(log.store)] == ["db1", "db2"]


def test_refused_requests_create_nothing() -> None:
    log = cluster(1)
    log.create("keep")
    records = dict(log.store.records)
    refusals = [
        (log.create("a", replicas=1), "cannot place 1 replica per shard: needs 2 nodes, "
         "the cluster has 1 active node"),
        (log.create("keep"), "database 'keep' already exists"),
        (log.create("bad name"), "invalid database name"),
        (log.create("x" * 65), "invalid database name"),
        (log.create("a", replication=False, replicas=1), "replicas need replication"),
        (log.create("a", replication=True, replicas=0), "needs at least 1 replica"),
        (log.create("a", shards=0), "shards must be between 1 and 128"),
        (log.create("a", shards=129), "shards must be between 1 and 128"),
        (log.create("a", port=7001), "port 7001 is already used by node n1's client port"),
        (log.create("a", port=7101), "node n1's cluster port"),
        (log.cmd(Op.DB_CREATE, "a", b"\xc1garbage"), "not a msgpack map"),
        (log.cmd(Op.DB_CREATE, "a", msgpack.packb([1])), "not a msgpack map"),
        (log.cmd(Op.DB_CREATE, "a", msgpack.packb({"color": 1})), "unknown database option"),
        (log.cmd(Op.DB_CREATE, "a", msgpack.packb({"shards": "3"})), "bad value"),
        (log.cmd(Op.DB_CREATE, "a", msgpack.packb({"persistence": "x"})), "persistence must"),
        (log.cmd(Op.DB_CREATE, "a", msgpack.packb({"password_sha256": "pw"})), "64 lowercase"),
    ]  # fmt: skip
    for r, message in refusals:
        assert not r.ok and r.error.startswith("ERR ") and message in r.error, r
    assert log.store.records == records


def test_voters_not_registered_yet_get_a_hint() -> None:
    log = Log()
    cc = ConfChange(ConfChangeKind.ADD_NODE, "n1", b"")
    log._apply(encode_conf_entry(cc, ConfState(voters=("n1", "n2"))), EntryKind.CONF_CHANGE)
    r = log.create("d")
    assert r.error == (
        "ERR cannot place a database: the cluster has no active node "
        "(2 more not registered yet: try again shortly)"
    )


def test_delete_and_recreate() -> None:
    log = cluster(2)
    log.create("d", replicas=1)
    v1 = dbops.topology_version(log.store, "d")
    assert log.cmd(Op.DB_DELETE, "d") == c.OK
    assert dbops.topology_version(log.store, "d") is None
    r = log.cmd(Op.DB_DELETE, "d")
    assert not r.ok and r.error == "ERR no such database 'd'"
    log.create("d", replicas=1)
    v2 = dbops.topology_version(log.store, "d")
    assert v1 is not None and v2 is not None and v2 > v1
    assert db(log, "d").uid == v2


def test_nodes_down_joining_or_without_address_take_no_shards() -> None:
    log = cluster(3)
    assert log.cmd(Op.MEMBER_HEALTH, "n3", Health.DOWN.value) == c.OK
    assert dbops.eligible_nodes(log.store) == ["n1", "n2"]
    r = log.create("d", replicas=2)
    assert r.error.endswith("needs 3 nodes, the cluster has 2 active nodes")
    log.create("d", shards=4, replicas=1)
    assert {i.node for s in db(log, "d").shards for i in s.instances()} == {"n1", "n2"}
    log.cmd(Op.MEMBER_JOIN, "n4", "127.0.0.1:7004", "127.0.0.1:7104")  # not a voter yet
    assert dbops.eligible_nodes(log.store) == ["n1", "n2"]


def test_topology_version_moves_with_hosts_only() -> None:
    log = cluster(3)
    log.create("d", shards=2, replicas=1)
    v = dbops.topology_version(log.store, "d")
    log.cmd(Op.MEMBER_HEALTH, "n2", Health.OK.value)
    log.cmd(Op.MEMBER_PUT, "n2", "127.0.0.1:9999", "127.0.0.1:9998")  # same host
    log.cmd(Op.KV_SET, b"k", b"v")
    log.create("other")
    assert dbops.topology_version(log.store, "d") == v
    log.cmd(Op.MEMBER_PUT, "n2", "10.0.0.2:7002", "10.0.0.2:7102")  # a new host
    v2 = dbops.topology_version(log.store, "d")
    assert v2 == log.store.applied_index and v is not None and v2 > v
    t = dbops.topology(log.store, "d", "n1")
    assert t is not None and t.hosts["n2"] == "10.0.0.2"
    log.add_node("n4", port=7004)  # a new member: every endpoint's host list grows
    assert dbops.topology_version(log.store, "d") == log.store.applied_index
    # A failover's record put moves it too.
    r = log.store.record(RecordKind.DATABASE, "d")
    assert r is not None
    log.cmd(Op.RECORD_PUT, "database", "d", r.body, r.version)
    assert dbops.topology_version(log.store, "d") == log.store.applied_index


def test_garbage_database_records_are_skipped_not_fatal() -> None:
    log = cluster(2)
    log.cmd(Op.RECORD_PUT, "database", "junk", msgpack.packb({"shards": 4}), -1)
    assert log.create("good", replicas=1) == c.OK
    assert [d.name for d in dbops.databases(log.store)] == ["good"]
    with pytest.raises(ValueError):
        dbops.topology(log.store, "junk", "n1")
    assert not log.create("junk").ok  # the name is taken all the same
    status = Status("n1", Role.LEADER, 1, "n1", 5, 5, log.store.voters, {}, 5, None)
    view = parse_status(status_text(status, log.store, "127.0.0.1:7001", 0))
    assert [d.id for d in view.databases] == ["good"]
    assert [s.id for s in view.shards] == ["good/0"]
    assert view.shards[0].fields["replicas"].startswith("n2:")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_bodies_and_options_raise_value_error_only(data: bytes) -> None:
    for decode in (Database.from_body, Topology.from_bytes, DbOptions.from_bytes):
        try:
            decode(data)
        except ValueError:
            pass


ops = st.one_of(
    st.tuples(
        st.just(Op.DB_CREATE),
        st.sampled_from(["a", "b", "c"]),
        st.builds(
            lambda s, r, p: DbOptions(shards=s, replicas=r, port=p).to_bytes(),
            st.integers(1, 4),
            st.sampled_from([None, 0, 1, 2]),
            st.sampled_from([0, 0, 12005, 7001]),
        ),
    ),
    st.tuples(st.just(Op.DB_DELETE), st.sampled_from(["a", "b", "c"])),
    st.tuples(
        st.just(Op.MEMBER_HEALTH),
        st.sampled_from(["n1", "n2", "n3"]),
        st.sampled_from(["ok", "down"]),
    ),
    st.tuples(
        st.just(Op.MEMBER_PUT),
        st.sampled_from(["n2", "n3"]),
        st.sampled_from(["127.0.0.1:7002", "127.0.0.2:7002"]),
        st.just("127.0.0.1:7102"),
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(ops, max_size=25), st.integers(0, 30))
def test_members_agree_and_snapshots_restore(cmds: list[tuple], cut: int) -> None:  # type: ignore[type-arg]
    a = cluster(3)
    for op, *args in cmds:
        a.cmd(op, *args)
    # The same log on a second member, restarted from a snapshot part-way.
    b = MetadataStore()
    cut = min(cut, len(a.entries))
    for e in a.entries[:cut]:
        b.apply_entry(e)
    b = MetadataStore.restore(b.snapshot())
    for e in a.entries[cut:]:
        b.apply_entry(e)
    assert a.store.snapshot() == b.snapshot()
    assert b.hosts_index == a.store.hosts_index
    for d in dbops.databases(a.store):
        assert dbops.topology(a.store, d.name, "n1") == dbops.topology(b, d.name, "n1")


def test_a_version_1_snapshot_restores() -> None:
    log = cluster(1)
    log.cmd(Op.RECORD_PUT, "schema", "s", msgpack.packb({}), -1)
    v = msgpack.unpackb(log.store.snapshot(), raw=False, strict_map_key=False)
    old = [1, *v[1:5], [r[:4] for r in v[5]], v[6]]
    s = MetadataStore.restore(msgpack.packb(old, use_bin_type=True))
    rec = s.record(RecordKind.SCHEMA, "s")
    assert rec is not None and rec.modified == 0 and s.hosts_index == 0
