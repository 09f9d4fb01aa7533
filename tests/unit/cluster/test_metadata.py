"""The metadata state machine (ackdb.cluster.metadata): commands, sessions, members,
records, determinism and snapshots."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.cluster import commands as c
from ackdb.cluster.commands import Command, Health, Op, RecordKind, Result
from ackdb.cluster.metadata import (
    MemberState,
    MetadataStore,
    decode_member_context,
    encode_member_context,
)
from ackdb.consensus import ConfChange, ConfChangeKind, ConfState, Entry, EntryKind
from ackdb.consensus.codec import encode_conf_entry


class Log:
    """Feeds entries to a store with consecutive indexes."""

    def __init__(self, store: MetadataStore | None = None) -> None:
        self.store = store or MetadataStore()
        self.seq = 0

    def entry(self, data: bytes, kind: EntryKind = EntryKind.NORMAL) -> Entry:
        return Entry(term=1, index=self.store.applied_index + 1, kind=kind, data=data)

    def cmd(self, op: Op, *args: bytes | str | int, client: str = "c1", seq: int | None = None):  # type: ignore[no-untyped-def]
        if seq is None:
            self.seq += 1
            seq = self.seq
        data = c.encode_command(Command(client, seq, op, args))
        return self.store.apply_entry(self.entry(data))

    def result(self, op: Op, *args: bytes | str | int) -> Result:
        applied = self.cmd(op, *args)
        assert applied is not None
        return applied.result

    def conf(self, cc: ConfChange | None, voters: tuple[str, ...]) -> None:
        data = encode_conf_entry(cc, ConfState(voters=voters))
        assert self.store.apply_entry(self.entry(data, EntryKind.CONF_CHANGE)) is None


def test_kv_set_get_del_and_versions() -> None:
    log = Log()
    assert log.result(Op.KV_SET, b"k", b"v1") == Result(True)
    item = log.store.get(b"k")
    assert item is not None and (item.value, item.version, item.created) == (b"v1", 1, 1)
    log.store.apply_entry(log.entry(b"", EntryKind.NOOP))
    assert log.result(Op.KV_SET, b"k", b"v2") == Result(True)
    item = log.store.get(b"k")
    assert item is not None and (item.value, item.version, item.created) == (b"v2", 3, 1)
    assert log.result(Op.KV_DEL, b"k") == Result(True, 1)
    assert log.result(Op.KV_DEL, b"k") == Result(True, 0)
    assert log.store.get(b"k") is None


def test_cas() -> None:
    log = Log()
    assert log.result(Op.KV_CAS, b"k", b"", b"x") == Result(True, 0)  # missing never matches
    log.result(Op.KV_SET, b"k", b"a")
    assert log.result(Op.KV_CAS, b"k", b"b", b"x") == Result(True, 0)
    assert log.store.get(b"k").value == b"a"  # type: ignore[union-attr]
    assert log.result(Op.KV_CAS, b"k", b"a", b"x") == Result(True, 1)
    assert log.store.get(b"k").value == b"x"  # type: ignore[union-attr]


def test_limits_fail_deterministically() -> None:
    log = Log()
    r = log.result(Op.KV_SET, b"k" * (c.KEY_MAX_BYTES + 1), b"v")
    assert not r.ok and r.error.startswith("ERR key longer")
    r = log.result(Op.KV_SET, b"k", b"v" * (c.VALUE_MAX_BYTES + 1))
    assert not r.ok and r.error.startswith("ERR value longer")
    assert log.store.kv == {}


def test_session_applies_a_retry_once() -> None:
    log = Log()
    first = log.cmd(Op.KV_SET, b"k", b"a")  # client c1, seq 1
    assert first is not None and first.fresh
    # Client c2 retries its CAS: applied once, the retry gets the first result.
    a1 = log.cmd(Op.KV_CAS, b"k", b"a", b"b", client="c2", seq=7)
    a2 = log.cmd(Op.KV_CAS, b"k", b"a", b"b", client="c2", seq=7)
    assert a1 is not None and a2 is not None
    assert a1.fresh and not a2.fresh
    assert a1.result == a2.result == Result(True, 1)
    log.result(Op.KV_SET, b"k", b"a")
    a3 = log.cmd(Op.KV_CAS, b"k", b"a", b"b", client="c2", seq=7)
    assert a3 is not None and not a3.fresh and log.store.get(b"k").value == b"a"  # type: ignore[union-attr]
    # An older number than the client's latest is a late duplicate: never executed.
    late = log.cmd(Op.KV_SET, b"k", b"zzz", client="c2", seq=3)
    assert late is not None and not late.fresh and not late.result.ok
    assert log.store.get(b"k").value == b"a"  # type: ignore[union-attr]


@given(st.binary(max_size=64))
def test_garbage_entries_apply_as_nothing(data: bytes) -> None:
    s = MetadataStore()
    for kind in EntryKind:
        e = Entry(term=1, index=s.applied_index + 1, kind=kind, data=data)
        s.apply_entry(e)  # never raises
    assert s.applied_index == len(EntryKind)
    assert s.kv == {} and s.records == {}


def test_members_join_add_remove() -> None:
    log = Log()
    log.conf(None, ("n1", "n2", "n3"))
    assert log.store.voters == ("n1", "n2", "n3")
    # A bootstrap voter registers itself: active at once.
    log.result(Op.MEMBER_PUT, "n1", "127.0.0.1:7001", "127.0.0.1:7101")
    m1 = log.store.members["n1"]
    assert (m1.state, m1.health, m1.client_addr) == (
        MemberState.ACTIVE,
        Health.UNKNOWN,
        "127.0.0.1:7001",
    )
    # n4 asks to join: joining until the conf change that adds it applies.
    log.result(Op.MEMBER_JOIN, "n4", "h:7004", "h:7104")
    assert log.store.members["n4"].state is MemberState.JOINING
    ctx = encode_member_context("h:7004", "h:7104")
    log.conf(ConfChange(ConfChangeKind.ADD_NODE, "n4", ctx), ("n1", "n2", "n3", "n4"))
    assert log.store.members["n4"].state is MemberState.ACTIVE
    # Joining again as a voter changes nothing.
    log.result(Op.MEMBER_JOIN, "n4", "h:7004", "h:7104")
    assert log.store.members["n4"].state is MemberState.ACTIVE
    # Health.
    assert log.result(Op.MEMBER_HEALTH, "n4", "down").ok
    assert log.store.members["n4"].health is Health.DOWN
    assert not log.result(Op.MEMBER_HEALTH, "n4", "weird").ok
    assert not log.result(Op.MEMBER_HEALTH, "n9", "ok").ok
    # A voter without a record (it has not registered yet) gets one with its health.
    assert log.result(Op.MEMBER_HEALTH, "n2", "down").ok
    m2 = log.store.members["n2"]
    assert (m2.health, m2.client_addr, m2.state) == (Health.DOWN, "", MemberState.ACTIVE)
    log.result(Op.MEMBER_PUT, "n2", "c:2", "k:2")
    assert log.store.members["n2"].health is Health.DOWN  # registering keeps it
    # Removing a voter: removing, then gone when the conf change applies.
    assert log.result(Op.MEMBER_REMOVE, "n4").ok
    assert log.store.members["n4"].state is MemberState.REMOVING
    log.conf(ConfChange(ConfChangeKind.REMOVE_NODE, "n4"), ("n1", "n2", "n3"))
    assert "n4" not in log.store.members
    # Removing a member that never became a voter deletes it at once.
    log.result(Op.MEMBER_JOIN, "n5", "h:7005", "h:7105")
    assert log.result(Op.MEMBER_REMOVE, "n5").ok
    assert "n5" not in log.store.members
    assert log.result(Op.MEMBER_REMOVE, "n5").error.startswith("NOTFOUND")


def test_conf_add_without_record_takes_addresses_from_context() -> None:
    log = Log()
    log.conf(None, ("n1",))
    log.conf(
        ConfChange(ConfChangeKind.ADD_NODE, "n2", encode_member_context("a:1", "a:2")), ("n1", "n2")
    )
    m = log.store.members["n2"]
    assert (m.client_addr, m.cluster_addr, m.state) == ("a:1", "a:2", MemberState.ACTIVE)
    log.conf(ConfChange(ConfChangeKind.ADD_NODE, "n3", b"garbage"), ("n1", "n2", "n3"))
    assert log.store.members["n3"].cluster_addr == ""
    assert decode_member_context(b"\x92\x01\x02") is None


def test_records_are_typed_and_versioned() -> None:
    log = Log()
    body = msgpack.packb({"shards": 4, "replicas": 1})
    assert log.result(Op.RECORD_PUT, "database", "db1", body, 0) == Result(True, 1)
    assert log.result(Op.RECORD_PUT, "database", "db1", body, -1) == Result(True, 2)
    r = log.result(Op.RECORD_PUT, "database", "db1", body, 1)
    assert not r.ok and r.error.startswith("VERSION database 'db1' is at version 2")
    rec = log.store.record(RecordKind.DATABASE, "db1")
    assert rec is not None and rec.version == 2 and rec.fields() == {"shards": 4, "replicas": 1}
    assert not log.result(Op.RECORD_PUT, "table", "x", body, -1).ok
    assert not log.result(Op.RECORD_PUT, "schema", "x", b"\x01", -1).ok
    assert not log.result(Op.RECORD_PUT, "schema", "x", msgpack.packb({1: 2}), -1).ok
    log.result(Op.RECORD_PUT, "schema", "b", msgpack.packb({}), -1)
    log.result(Op.RECORD_PUT, "schema", "a", msgpack.packb({}), -1)
    assert [x.name for x in log.store.record_list(RecordKind.SCHEMA)] == ["a", "b"]
    assert log.result(Op.RECORD_DEL, "database", "db1", 1).error.startswith("VERSION")
    assert log.result(Op.RECORD_DEL, "database", "db1", 2) == Result(True, 1)
    assert log.result(Op.RECORD_DEL, "database", "db1", -1) == Result(True, 0)


# -- determinism, snapshots, a naive model ------------------------------------------------

keys = st.sampled_from([b"a", b"b", b"c", b""])
vals = st.sampled_from([b"", b"x", b"y", b"\x00\xff"])
ops = st.one_of(
    st.tuples(st.just(Op.KV_SET), keys, vals),
    st.tuples(st.just(Op.KV_DEL), keys),
    st.tuples(st.just(Op.KV_CAS), keys, vals, vals),
    st.tuples(
        st.just(Op.MEMBER_JOIN), st.sampled_from(["n1", "n2"]), st.just("h:1"), st.just("h:2")
    ),
    st.tuples(st.just(Op.MEMBER_REMOVE), st.sampled_from(["n1", "n2"])),
    st.tuples(
        st.just(Op.RECORD_PUT),
        st.just("shard"),
        st.sampled_from(["s1", "s2"]),
        st.just(msgpack.packb({"n": 1})),
        st.sampled_from([-1, 0, 1, 2]),
    ),
)
clients = st.sampled_from(["c1", "c2"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(clients, st.integers(1, 6), ops), max_size=40), st.integers(0, 40))
def test_replicas_agree_and_snapshots_restore(
    cmds: list[tuple[str, int, tuple]],
    cut: int,  # type: ignore[type-arg]
) -> None:
    entries = []
    for i, (client, seq, (op, *args)) in enumerate(cmds, start=1):
        data = c.encode_command(Command(client, seq, op, tuple(args)))
        entries.append(Entry(term=1, index=i, data=data))
    a = MetadataStore()
    results = [a.apply_entry(e) for e in entries]
    # A second replica restarts from a snapshot taken part-way and applies the rest.
    b = MetadataStore()
    cut = min(cut, len(entries))
    for e in entries[:cut]:
        b.apply_entry(e)
    b = MetadataStore.restore(b.snapshot())
    later = [b.apply_entry(e) for e in entries[cut:]]
    assert later == results[cut:]
    assert a.snapshot() == b.snapshot()
    # The key/value part against a naive model with the same session rule.
    model: dict[bytes, bytes] = {}
    last: dict[str, int] = {}
    for client, seq, (op, *args) in cmds:
        if seq <= last.get(client, 0):
            continue
        last[client] = seq
        if op is Op.KV_SET:
            model[args[0]] = args[1]
        elif op is Op.KV_DEL:
            model.pop(args[0], None)
        elif op is Op.KV_CAS and model.get(args[0]) == args[1]:
            model[args[0]] = args[2]
    assert {k: i.value for k, i in a.kv.items()} == model


def test_snapshot_bytes_do_not_depend_on_insertion_order() -> None:
    x, y = Log(), Log()
    x.result(Op.KV_SET, b"1", b"a")
    x.result(Op.KV_SET, b"2", b"b")
    y.result(Op.KV_SET, b"2", b"b")
    y.result(Op.KV_SET, b"1", b"a")
    # Same keys and values; versions differ by index, so compare after normalising.
    assert sorted(x.store.kv) == sorted(y.store.kv)
    restored = MetadataStore.restore(x.store.snapshot())
    assert restored.snapshot() == x.store.snapshot()
    assert restored.applied_index == 2


# -- command encoding --------------------------------------------------------------------


def test_command_round_trip() -> None:
    cmd = Command("n1.ab", 42, Op.RECORD_PUT, ("shard", "s1", b"\x80", -1))
    assert c.decode_command(c.encode_command(cmd)) == cmd


@pytest.mark.parametrize(
    "v",
    [
        [2, "c", 1, "kv.set", [b"k", b"v"]],
        [1, "", 1, "kv.set", [b"k", b"v"]],
        [1, "c", 0, "kv.set", [b"k", b"v"]],
        [1, "c", 1, "kv.nope", [b"k", b"v"]],
        [1, "c", 1, "kv.set", [b"k"]],
        [1, "c", 1, "kv.set", ["k", b"v"]],
        [1, "c", 1, "record.del", ["shard", "s", -2]],
        [1, "c", 1, "member.put", ["x" * 300, "a", "b"]],
        [1, "c", 1, "kv.set"],
        {"a": 1},
    ],
)
def test_decode_rejects_malformed(v: object) -> None:
    with pytest.raises(c.CommandError):
        c.decode_command(msgpack.packb(v, use_bin_type=True))


@given(st.binary(max_size=80))
def test_decode_garbage_only_raises_command_error(data: bytes) -> None:
    try:
        c.decode_command(data)
    except c.CommandError:
        pass
