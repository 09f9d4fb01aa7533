"""The cluster's metadata: the state machine every member applies from the Raft log.

Owns: the members (id, client address, cluster address, health, state), the voters as
the log last configured them, typed versioned records (databases, shards, schemas), a
key/value configuration store, client sessions, and snapshots of all of it. Never does
IO, reads no clock and draws no random number: applying the same log gives the same
state -- and the same snapshot bytes -- on every member.

Member states (the leader's reconciler, cluster/reconcile.py, acts on them):

    (absent) --member.join--> JOINING --conf ADD applied--> ACTIVE
    ACTIVE --member.remove--> REMOVING --conf REMOVE applied--> (absent)
    (absent) --member.put / conf ADD--> ACTIVE     (a bootstrap voter registering itself)

A key's version is the log index of its last write (etcd's mod_revision), so it grows
and is the same on every member. A record's version counts its writes from 1; its
``modified`` is the log index of its last write. ``hosts_index`` is the log index of the
last change to the hosts of the members (cluster/dbops.py: the topology version of a
database is the larger of the two). Databases (``db.create``, ``db.delete``) are applied
by cluster/dbops.py, the failover ops (``shard.*``, ``node.maintenance``) by
cluster/shardops.py, a leaderless database's schema (``schema.*``) by cluster/schemaops.py.

Every client command runs through the client sessions (ackdb.consensus.sessions): a
command retried with the same (client id, seq) applies once and its retry gets the
first result (Raft dissertation §6.3).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

import msgpack

from ackdb.cluster import dbops, schemaops, shardops
from ackdb.cluster.commands import (
    BODY_MAX_BYTES,
    KEY_MAX_BYTES,
    OK,
    VALUE_MAX_BYTES,
    Command,
    CommandError,
    Health,
    Op,
    RecordKind,
    Result,
    decode_command,
    fail,
)
from ackdb.consensus import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    DecodeError,
    Entry,
    EntryKind,
    decode_conf_entry,
)
from ackdb.consensus.sessions import Sessions, StaleRequest

# 1: without record ``modified`` and ``hosts_index``; 2: members without ``maintenance``
SNAPSHOT_VERSION = 3


class MemberState(enum.Enum):
    JOINING = "joining"
    ACTIVE = "active"
    REMOVING = "removing"


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    client_addr: str
    cluster_addr: str
    health: Health = Health.UNKNOWN
    state: MemberState = MemberState.ACTIVE
    maintenance: bool = False  # node.maintenance on: primaries move off it, no new shards


@dataclass(frozen=True, slots=True)
class KvItem:
    value: bytes
    version: int  # log index of the last write
    created: int  # log index of the write that created it


@dataclass(frozen=True, slots=True)
class Record:
    kind: RecordKind
    name: str
    version: int
    body: bytes  # an encoded msgpack map with str keys
    modified: int = 0  # log index of the last write

    def fields(self) -> dict[str, Any]:
        v = msgpack.unpackb(self.body, raw=False)
        assert isinstance(v, dict)
        return v


@dataclass(frozen=True, slots=True)
class Applied:
    """One client command applied: ``fresh`` is False for a retry (deduplicated)."""

    index: int
    client_id: str
    seq: int
    result: Result
    fresh: bool


def encode_member_context(client_addr: str, cluster_addr: str) -> bytes:
    """What an ADD_NODE conf change carries: the new member's addresses."""
    out = msgpack.packb([client_addr, cluster_addr], use_bin_type=True)
    assert isinstance(out, bytes)
    return out


def decode_member_context(data: bytes) -> tuple[str, str] | None:
    try:
        v = msgpack.unpackb(data, raw=False)
    except Exception:  # garbage context: the member is added without addresses
        return None
    if type(v) is list and len(v) == 2 and all(type(a) is str for a in v):
        return v[0], v[1]
    return None


def valid_body(body: bytes) -> bool:
    if len(body) > BODY_MAX_BYTES:
        return False
    try:
        v = msgpack.unpackb(body, raw=False, strict_map_key=True, max_ext_len=0)
    except Exception:
        return False
    return type(v) is dict and all(type(k) is str for k in v)


_SHARD_OPS = frozenset(
    {
        Op.SHARD_DOWN,
        Op.SHARD_FENCE,
        Op.SHARD_REPORT,
        Op.SHARD_PROMOTE,
        Op.SHARD_ABORT,
        Op.SHARD_MOVE,
        Op.NODE_MAINTENANCE,
    }
)


class MetadataStore:
    def __init__(self) -> None:
        self.applied_index = 0
        self.voters: tuple[str, ...] = ()
        self.kv: dict[bytes, KvItem] = {}
        self.members: dict[str, Member] = {}
        self.records: dict[tuple[str, str], Record] = {}
        self.hosts_index = 0  # log index of the last change to dbops.hosts(self)
        self.sessions = Sessions()

    # -- applying the log -------------------------------------------------------------

    def apply_entry(self, entry: Entry) -> Applied | None:
        """Apply one committed entry (in log order); the client command's outcome, if
        the entry held one."""
        assert entry.index == self.applied_index + 1, (entry.index, self.applied_index)
        self.applied_index = entry.index
        if entry.kind is EntryKind.CONF_CHANGE:
            try:
                cc, conf = decode_conf_entry(entry.data)
            except DecodeError:
                return None  # the core checks its own entries; nothing for us to do
            before = dbops.hosts(self)
            self.apply_conf(cc, conf)
            self._hosts_changed(before, entry.index)
            return None
        if entry.kind is EntryKind.NOOP or not entry.data:
            return None
        try:
            cmd = decode_command(entry.data)
        except CommandError:
            return None  # garbage: applies as nothing, identically everywhere
        fresh = [False]

        def run() -> list[Any]:
            fresh[0] = True
            return self._execute(cmd, entry.index).to_wire()  # sessions keep msgpack data

        try:
            wire = self.sessions.apply(cmd.client_id, cmd.seq, run, index=entry.index)
        except StaleRequest:
            # A late copy of a command this client has moved past: nobody waits for it.
            return Applied(entry.index, cmd.client_id, cmd.seq, fail("ERR stale retry"), False)
        return Applied(entry.index, cmd.client_id, cmd.seq, Result.from_wire(wire), fresh[0])

    def apply_conf(self, cc: ConfChange | None, conf: ConfState) -> None:
        """A configuration entry: the voters are now ``conf.voters``."""
        self.voters = conf.voters
        if cc is None:
            return
        m = self.members.get(cc.node_id)
        if cc.kind is ConfChangeKind.REMOVE_NODE:
            self.members.pop(cc.node_id, None)
            return
        addrs = decode_member_context(cc.context)
        if m is None:
            client, cluster = addrs or ("", "")
            self.members[cc.node_id] = Member(cc.node_id, client, cluster)
        else:
            self.members[cc.node_id] = replace(m, state=MemberState.ACTIVE)

    def _execute(self, cmd: Command, index: int) -> Result:
        op = cmd.op
        a: tuple[Any, ...] = cmd.args
        if op in (Op.KV_SET, Op.KV_DEL, Op.KV_CAS):
            return self._kv(op, a, index)
        if op in (Op.RECORD_PUT, Op.RECORD_DEL):
            return self._record(op, a, index)
        if op is Op.DB_CREATE:
            return dbops.apply_create(self, a[0], a[1], index)
        if op is Op.DB_DELETE:
            return dbops.apply_delete(self, a[0])
        if op in _SHARD_OPS:
            return shardops.apply(self, op, a, index)
        if op in schemaops.SCHEMA_OPS:
            return schemaops.apply(self, op, a, index)
        before = dbops.hosts(self)
        result = self._member(op, a)
        self._hosts_changed(before, index)
        return result

    def _hosts_changed(self, before: dict[str, str], index: int) -> None:
        if dbops.hosts(self) != before:
            self.hosts_index = index

    def put_record(self, kind: RecordKind, name: str, body: bytes, index: int) -> int:
        """Write a record (its version + 1, modified at ``index``); its new version."""
        old = self.records.get((kind.value, name))
        version = 1 if old is None else old.version + 1
        self.records[(kind.value, name)] = Record(kind, name, version, body, index)
        return version

    def del_record(self, kind: RecordKind, name: str) -> bool:
        return self.records.pop((kind.value, name), None) is not None

    def _kv(self, op: Op, a: tuple[Any, ...], index: int) -> Result:
        key: bytes = a[0]
        if len(key) > KEY_MAX_BYTES:
            return fail(f"ERR key longer than {KEY_MAX_BYTES} bytes")
        if op is Op.KV_DEL:
            return Result(True, 1 if self.kv.pop(key, None) is not None else 0)
        new: bytes = a[-1]
        if len(new) > VALUE_MAX_BYTES:
            return fail(f"ERR value longer than {VALUE_MAX_BYTES} bytes")
        old = self.kv.get(key)
        if op is Op.KV_CAS and (old is None or old.value != a[1]):
            return Result(True, 0)
        self.kv[key] = KvItem(new, index, index if old is None else old.created)
        return OK if op is Op.KV_SET else Result(True, 1)

    def _record(self, op: Op, a: tuple[Any, ...], index: int) -> Result:
        try:
            kind = RecordKind(a[0])
        except ValueError:
            return fail(f"ERR unknown record kind '{a[0]}'")
        name: str = a[1]
        expected: int = a[-1]
        old = self.records.get((kind.value, name))
        have = 0 if old is None else old.version
        if expected != -1 and expected != have:
            return fail(f"VERSION {kind.value} '{name}' is at version {have}, not {expected}")
        if op is Op.RECORD_DEL:
            return Result(True, 1 if self.del_record(kind, name) else 0)
        if not valid_body(a[2]):
            return fail("ERR a record body must be a msgpack map with string keys")
        return Result(True, self.put_record(kind, name, a[2], index))

    def _member(self, op: Op, a: tuple[Any, ...]) -> Result:
        node_id: str = a[0]
        m = self.members.get(node_id)
        if op is Op.MEMBER_HEALTH:
            if m is None and node_id not in self.voters:
                return fail(f"NOTFOUND no member '{node_id}'")
            try:
                health = Health(a[1])
            except ValueError:
                return fail(f"ERR unknown health '{a[1]}'")
            # A voter that has not registered its addresses yet still has a health.
            m = m or Member(node_id, "", "")
            self.members[node_id] = replace(m, health=health)
            return OK
        if op is Op.MEMBER_REMOVE:
            if m is None:
                return fail(f"NOTFOUND no member '{node_id}'")
            if node_id in self.voters:
                self.members[node_id] = replace(m, state=MemberState.REMOVING)
            else:
                del self.members[node_id]  # never became a voter: nothing to reconfigure
            return OK
        client, cluster = a[1], a[2]
        if op is Op.MEMBER_JOIN and node_id not in self.voters:
            state = MemberState.JOINING
        elif m is not None:
            state = m.state
        else:
            state = MemberState.ACTIVE
        health = Health.UNKNOWN if m is None else m.health
        maintenance = m is not None and m.maintenance
        self.members[node_id] = Member(node_id, client, cluster, health, state, maintenance)
        return OK

    # -- reading ------------------------------------------------------------------------

    def get(self, key: bytes) -> KvItem | None:
        return self.kv.get(key)

    def member_list(self) -> list[Member]:
        return [self.members[k] for k in sorted(self.members)]

    def record(self, kind: RecordKind, name: str) -> Record | None:
        return self.records.get((kind.value, name))

    def record_list(self, kind: RecordKind) -> list[Record]:
        return sorted(
            (r for (k, _), r in self.records.items() if k == kind.value), key=lambda r: r.name
        )

    # -- snapshots ----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state as msgpack; sorted, so equal states give equal bytes."""
        state = [
            SNAPSHOT_VERSION,
            self.applied_index,
            list(self.voters),
            [[k, i.value, i.version, i.created] for k, i in sorted(self.kv.items())],
            [
                [m.id, m.client_addr, m.cluster_addr, m.health.value, m.state.value, m.maintenance]
                for m in self.member_list()
            ],
            [
                [r.kind.value, r.name, r.version, r.body, r.modified]
                for _, r in sorted(self.records.items())
            ],
            self.sessions.snapshot(),
            self.hosts_index,
        ]
        out = msgpack.packb(state, use_bin_type=True)
        assert isinstance(out, bytes)
        return out

    @classmethod
    def restore(cls, data: bytes) -> MetadataStore:
        """The store a ``snapshot()`` saved. The data comes from our own snapshots (on
        disk, checksummed, or from the leader), so a malformed one is a bug: assert."""
        v = msgpack.unpackb(data, raw=False, strict_map_key=False)
        assert v[0] in (1, 2, SNAPSHOT_VERSION), f"unsupported metadata snapshot {v[0]}"
        if v[0] == 1:  # records without ``modified``, no ``hosts_index``: both 0
            v = [*v[:5], [[*r, 0] for r in v[5]], v[6], 0]
        if v[0] in (1, 2):  # members without ``maintenance``: off
            v = [*v[:4], [[*m, False] for m in v[4]], *v[5:]]
        _, applied, voters, kv, members, records, sessions, hosts_index = v
        s = cls()
        s.applied_index = applied
        s.voters = tuple(voters)
        s.kv = {k: KvItem(val, ver, created) for k, val, ver, created in kv}
        s.members = {
            m[0]: Member(m[0], m[1], m[2], Health(m[3]), MemberState(m[4]), bool(m[5]))
            for m in members
        }
        s.records = {
            (k, n): Record(RecordKind(k), n, ver, body, mod) for k, n, ver, body, mod in records
        }
        s.hosts_index = hosts_index
        s.sessions = Sessions.restore(sessions)
        return s
