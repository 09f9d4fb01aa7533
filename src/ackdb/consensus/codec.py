"""Wire codec of Raft messages (msgpack) and of the records they carry.

Owns: ``encode_message`` / ``decode_message`` and the entry, snapshot and conf-change
encodings the durable store reuses. Never trusts input: every field is type- and
range-checked, sizes are bounded before allocation, and anything malformed raises
``DecodeError`` (never another exception). Never uses pickle.

Layout of a message: a msgpack array ``[VERSION, type, frm, to, term, log_term, index,
entries, commit, reject, reject_hint, snapshot|nil, context]``; an entry is
``[term, index, kind, data]``; a snapshot ``[index, term, [voters...], data]``.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ackdb.consensus.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    Message,
    MsgType,
    Snapshot,
)

WIRE_VERSION = 1
# A whole message, snapshots included (bytes).
MAX_MESSAGE_BYTES = 256 << 20
# Entries in one message (count).
MAX_ENTRIES_PER_MESSAGE = 1 << 20
# A node id (characters) and a cluster (voters).
MAX_NODE_ID_CHARS = 255
MAX_VOTERS = 1024
# Terms and indexes are unsigned 63-bit: larger values are garbage.
MAX_U63 = (1 << 63) - 1


class DecodeError(ValueError):
    """Bytes that are not a valid record of this codec."""


def _u63(v: object, what: str) -> int:
    if type(v) is not int or not 0 <= v <= MAX_U63:
        raise DecodeError(f"bad {what}: {v!r:.40}")
    return v


def _bytes(v: object, what: str) -> bytes:
    if type(v) is not bytes:
        raise DecodeError(f"bad {what}: not bytes")
    return v


def _node_id(v: object, what: str, allow_empty: bool = False) -> str:
    if type(v) is not str or len(v) > MAX_NODE_ID_CHARS or (not v and not allow_empty):
        raise DecodeError(f"bad {what}: {v!r:.40}")
    return v


def _array(v: object, what: str, n: int | None = None) -> list[Any]:
    if type(v) is not list or (n is not None and len(v) != n):
        raise DecodeError(f"bad {what}: expected an array of {n}")
    return v


def entry_to_wire(e: Entry) -> list[Any]:
    return [e.term, e.index, int(e.kind), e.data]


def entry_from_wire(v: object) -> Entry:
    term, index, kind, data = _array(v, "entry", 4)
    try:
        k = EntryKind(_u63(kind, "entry kind"))
    except ValueError as exc:
        raise DecodeError(f"bad entry kind {kind!r}") from exc
    return Entry(
        term=_u63(term, "entry term"),
        index=_u63(index, "entry index"),
        kind=k,
        data=_bytes(data, "entry data"),
    )


def conf_state_to_wire(c: ConfState) -> list[str]:
    return list(c.voters)


def conf_state_from_wire(v: object) -> ConfState:
    voters = _array(v, "voters")
    if len(voters) > MAX_VOTERS:
        raise DecodeError("too many voters")
    ids = tuple(_node_id(x, "voter") for x in voters)
    if list(ids) != sorted(set(ids)):
        raise DecodeError("voters not sorted and unique")
    return ConfState(voters=ids)


def snapshot_to_wire(s: Snapshot) -> list[Any]:
    return [s.index, s.term, conf_state_to_wire(s.conf), s.data]


def snapshot_from_wire(v: object) -> Snapshot:
    index, term, conf, data = _array(v, "snapshot", 4)
    return Snapshot(
        index=_u63(index, "snapshot index"),
        term=_u63(term, "snapshot term"),
        conf=conf_state_from_wire(conf),
        data=_bytes(data, "snapshot data"),
    )


def encode_message(m: Message) -> bytes:
    snap = None if m.snapshot is None else snapshot_to_wire(m.snapshot)
    out = msgpack.packb(
        [
            WIRE_VERSION,
            int(m.type),
            m.frm,
            m.to,
            m.term,
            m.log_term,
            m.index,
            [entry_to_wire(e) for e in m.entries],
            m.commit,
            m.reject,
            m.reject_hint,
            snap,
            m.context,
        ],
        use_bin_type=True,
    )
    assert isinstance(out, bytes)
    return out


def _unpack(data: bytes, max_bytes: int) -> object:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("not bytes")
    if len(data) > max_bytes:
        raise DecodeError(f"record of {len(data)} bytes exceeds {max_bytes}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_str_len=max_bytes,
            max_array_len=MAX_ENTRIES_PER_MESSAGE,
            max_map_len=16,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise DecodeError(f"not msgpack: {exc}") from exc


def decode_message(data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Parse one message; raises DecodeError on anything malformed."""
    v = _array(_unpack(data, max_bytes), "message", 13)
    version, typ, frm, to, term, log_term, index, ents, commit, reject, hint, snap, ctx = v
    if version != WIRE_VERSION:
        raise DecodeError(f"unsupported wire version {version!r:.20}")
    try:
        mtype = MsgType(_u63(typ, "type"))
    except ValueError as exc:
        raise DecodeError(f"unknown message type {typ!r}") from exc
    if type(reject) is not bool:
        raise DecodeError("bad reject flag")
    entries = tuple(entry_from_wire(e) for e in _array(ents, "entries"))
    for a, b in zip(entries, entries[1:], strict=False):
        if b.index != a.index + 1:
            raise DecodeError("entries not consecutive")
    return Message(
        type=mtype,
        frm=_node_id(frm, "frm"),
        to=_node_id(to, "to"),
        term=_u63(term, "term"),
        log_term=_u63(log_term, "log_term"),
        index=_u63(index, "index"),
        entries=entries,
        commit=_u63(commit, "commit"),
        reject=reject,
        reject_hint=_u63(hint, "reject_hint"),
        snapshot=None if snap is None else snapshot_from_wire(snap),
        context=_bytes(ctx, "context"),
    )


def encode_conf_entry(cc: ConfChange | None, conf: ConfState) -> bytes:
    """The data of a CONF_CHANGE entry: the change (None at bootstrap) and the whole
    resulting configuration, so a log prefix alone tells the configuration in force."""
    change = None if cc is None else [int(cc.kind), cc.node_id, cc.context]
    out = msgpack.packb([WIRE_VERSION, change, conf_state_to_wire(conf)], use_bin_type=True)
    assert isinstance(out, bytes)
    return out


def decode_conf_entry(data: bytes) -> tuple[ConfChange | None, ConfState]:
    version, change, conf = _array(_unpack(data, 1 << 20), "conf entry", 3)
    if version != WIRE_VERSION:
        raise DecodeError(f"unsupported conf entry version {version!r:.20}")
    cc = None
    if change is not None:
        kind, node_id, context = _array(change, "conf change", 3)
        try:
            k = ConfChangeKind(_u63(kind, "conf change kind"))
        except ValueError as exc:
            raise DecodeError(f"bad conf change kind {kind!r}") from exc
        cc = ConfChange(
            kind=k, node_id=_node_id(node_id, "conf node"), context=_bytes(context, "conf context")
        )
    return cc, conf_state_from_wire(conf)
