"""Commands of the metadata state machine and their results, as they travel in the log.

Owns: the encoding of a command (msgpack ``[CMD_VERSION, client_id, seq, op, args]``),
checking a decoded command's shape, the limits on keys, values and names, and the
result record. Never does IO. ``decode_command`` never raises anything but
``CommandError`` whatever the bytes: an entry in the log may be garbage (a bug, a foreign
writer) and must still apply deterministically -- as an error result.

``client_id`` and ``seq`` identify a command for client sessions (Raft dissertation §6.3):
the proposer numbers its commands; a retried command keeps its number and applies once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import msgpack

CMD_VERSION = 1
# Limits (bytes) on what the metadata store keeps; larger commands are refused at the
# client port and, should one reach the log anyway, fail deterministically at apply.
KEY_MAX_BYTES = 64 * 1024
VALUE_MAX_BYTES = 1024 * 1024
NAME_MAX_BYTES = 256  # record names, node ids, addresses
BODY_MAX_BYTES = 1024 * 1024  # a record's body (an encoded msgpack map)
COMMAND_MAX_BYTES = 4 * 1024 * 1024
CLIENT_ID_MAX_CHARS = 128


class CommandError(ValueError):
    """Bytes that are not a well-formed command."""


class Op(enum.Enum):
    KV_SET = "kv.set"  # [key, value]
    KV_DEL = "kv.del"  # [key]
    KV_CAS = "kv.cas"  # [key, expected, new]
    MEMBER_PUT = "member.put"  # [id, client_addr, cluster_addr]: register / update addresses
    MEMBER_JOIN = "member.join"  # [id, client_addr, cluster_addr]: ask to become a voter
    MEMBER_REMOVE = "member.remove"  # [id]: ask to stop being a member
    MEMBER_HEALTH = "member.health"  # [id, health]
    RECORD_PUT = "record.put"  # [kind, name, body, expected_version | -1]
    RECORD_DEL = "record.del"  # [kind, name, expected_version | -1]
    DB_CREATE = "db.create"  # [name, options]: place and create a database (cluster/dbops.py)
    DB_DELETE = "db.delete"  # [name]
    # Failover (issue 15; cluster/shardops.py applies them, docs/failover.md): each
    # applies only at the shard's current epoch (and state); a stale one fails.
    SHARD_DOWN = "shard.down"  # [db, shard, epoch, node, reason]: an agent's fact
    SHARD_FENCE = "shard.fence"  # [db, shard, epoch, planned 0|1, target node | ""]
    SHARD_REPORT = "shard.report"  # [db, shard, epoch, node, replid, offset]
    SHARD_PROMOTE = "shard.promote"  # [db, shard, epoch, node, note]
    SHARD_ABORT = "shard.abort"  # [db, shard, epoch, reason]
    SHARD_MOVE = "shard.move"  # [db, shard, old node, new node]: a replica moves
    NODE_MAINTENANCE = "node.maintenance"  # [node, "on" | "off"]
    # A leaderless database's schema (issue 16; cluster/schemaops.py applies them): each
    # bumps the database's schema_version, or fails having changed nothing.
    SCHEMA_CREATE = "schema.create"  # [db, collection, prefix, properties]
    SCHEMA_ADD = "schema.add"  # [db, collection, properties]
    SCHEMA_DROP = "schema.drop"  # [db, collection]


class RecordKind(enum.Enum):
    """The typed records the cluster keeps (filled by later layers: databases, their
    shards and placement, collection schemas)."""

    DATABASE = "database"
    SHARD = "shard"
    SCHEMA = "schema"


class Health(enum.Enum):
    UNKNOWN = "unknown"  # never judged yet
    OK = "ok"  # the leader heard from it within an election timeout
    DOWN = "down"  # the leader has not


# Argument types per op: b = bytes, s = short str, i = int.
_ARG_TYPES: dict[Op, str] = {
    Op.KV_SET: "bb",
    Op.KV_DEL: "b",
    Op.KV_CAS: "bbb",
    Op.MEMBER_PUT: "sss",
    Op.MEMBER_JOIN: "sss",
    Op.MEMBER_REMOVE: "s",
    Op.MEMBER_HEALTH: "ss",
    Op.RECORD_PUT: "ssbi",
    Op.RECORD_DEL: "ssi",
    Op.DB_CREATE: "sb",
    Op.DB_DELETE: "s",
    Op.SHARD_DOWN: "siiss",
    Op.SHARD_FENCE: "siiis",
    Op.SHARD_REPORT: "siissi",
    Op.SHARD_PROMOTE: "siiss",
    Op.SHARD_ABORT: "siis",
    Op.SHARD_MOVE: "siss",
    Op.NODE_MAINTENANCE: "ss",
    Op.SCHEMA_CREATE: "ssbb",
    Op.SCHEMA_ADD: "ssb",
    Op.SCHEMA_DROP: "ss",
}


@dataclass(frozen=True, slots=True)
class Command:
    client_id: str
    seq: int
    op: Op
    args: tuple[bytes | str | int, ...]


@dataclass(frozen=True, slots=True)
class Result:
    """What applying a command gave. ``value``: None, an int or bytes; ``error``: a
    message starting with its code (``ERR``, ``NOTFOUND``, ``VERSION``...) when not ok."""

    ok: bool
    value: int | bytes | None = None
    error: str = ""

    def to_wire(self) -> list[Any]:
        return [self.ok, self.value, self.error]

    @staticmethod
    def from_wire(v: Any) -> Result:
        ok, value, error = v
        return Result(bool(ok), value, str(error))


OK = Result(True)


def fail(error: str) -> Result:
    return Result(False, None, error)


def encode_command(cmd: Command) -> bytes:
    out = msgpack.packb(
        [CMD_VERSION, cmd.client_id, cmd.seq, cmd.op.value, list(cmd.args)], use_bin_type=True
    )
    assert isinstance(out, bytes)
    return out


def _check_arg(v: object, t: str) -> bytes | str | int:
    if t == "b" and type(v) is bytes:
        return v
    if t == "s" and type(v) is str and len(v.encode()) <= NAME_MAX_BYTES:
        return v
    if t == "i" and type(v) is int and -1 <= v < 1 << 63:
        return v
    raise CommandError(f"bad argument {v!r:.40}")


def decode_command(data: bytes) -> Command:
    """The command in ``data``; CommandError if malformed."""
    if len(data) > COMMAND_MAX_BYTES:
        raise CommandError("command too large")
    try:
        v = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True, max_ext_len=0)
    except Exception as e:  # msgpack raises several unrelated types on garbage
        raise CommandError(f"not msgpack: {e}") from None
    if type(v) is not list or len(v) != 5:
        raise CommandError("not a command array")
    version, client_id, seq, op_name, args = v
    if version != CMD_VERSION:
        raise CommandError(f"unsupported command version {version!r:.20}")
    if type(client_id) is not str or not 0 < len(client_id) <= CLIENT_ID_MAX_CHARS:
        raise CommandError("bad client id")
    if type(seq) is not int or not 0 < seq < 1 << 63:
        raise CommandError("bad sequence number")
    try:
        op = Op(op_name)
    except ValueError:
        raise CommandError(f"unknown op {op_name!r:.40}") from None
    types = _ARG_TYPES[op]
    if type(args) is not list or len(args) != len(types):
        raise CommandError(f"{op.value}: expected {len(types)} arguments")
    return Command(
        client_id, seq, op, tuple(_check_arg(a, t) for a, t in zip(args, types, strict=True))
    )
