"""Raft consensus as a sans-IO state machine (etcd-io/raft style); see docs/consensus.md.

Never does IO: no sockets, files, clocks, threads or module-level randomness anywhere in
this package. The shell feeds ticks and messages in and carries out each Ready in order.
"""

from ackdb.consensus.codec import (
    DecodeError,
    decode_conf_entry,
    decode_message,
    encode_conf_entry,
    encode_message,
)
from ackdb.consensus.rawnode import RawNode
from ackdb.consensus.storage import (
    CompactedError,
    MemoryStorage,
    SnapshotOutOfDateError,
    StorageError,
    UnavailableError,
)
from ackdb.consensus.types import (
    ConfChange,
    ConfChangeKind,
    Config,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Message,
    MsgType,
    PeerProgress,
    ProposalDropped,
    ReadState,
    Ready,
    Role,
    Snapshot,
    Status,
)

__all__ = [
    "CompactedError",
    "ConfChange",
    "ConfChangeKind",
    "ConfState",
    "Config",
    "DecodeError",
    "Entry",
    "EntryKind",
    "HardState",
    "MemoryStorage",
    "Message",
    "MsgType",
    "PeerProgress",
    "ProposalDropped",
    "RawNode",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotOutOfDateError",
    "Status",
    "StorageError",
    "UnavailableError",
    "decode_conf_entry",
    "decode_message",
    "encode_conf_entry",
    "encode_message",
]
