"""The table entries of the leaderless replica commands (``LL.*``): data only.

ackdb's own commands (Redis has no ``LL.`` names, so none can collide): what a
leaderless coordinator sends to a replica. Versions are ``ms.logical.node``; records are
``keyspace.lww`` encodings. See docs/leaderless.md.
"""

from __future__ import annotations

from .keyspecs import BeginIndex, FindRange, spec
from .model import Command, entry

_G = "leaderless"
_RW = (spec("RW update", BeginIndex(1), FindRange(0, 1, 0)),)
_RO = (spec("RO access", BeginIndex(1), FindRange(0, 1, 0)),)

ENTRIES: list[Command] = [
    entry(
        "ll.apply",
        -3,
        "write denyoom fast",
        (1, 1, 1),
        group=_G,
        summary="Merges a versioned record into a key (newer parts win); replies 1 if it changed.",
        since="0.1.0",
        complexity="O(N) where N is the number of fields of the record.",
        args="key record [MAXSKEW ms]",
        acl="@write @fast",
        specs=_RW,
    ),
    entry(
        "ll.set",
        -4,
        "write denyoom fast",
        (1, 1, 1),
        group=_G,
        summary="Sets a string at a version unless the key holds a newer write.",
        since="0.1.0",
        complexity="O(1)",
        args="key version value [MAXSKEW ms]",
        acl="@write @fast",
        specs=_RW,
    ),
    entry(
        "ll.del",
        -3,
        "write fast",
        (1, 1, 1),
        group=_G,
        summary="Writes a tombstone at a version unless the key holds a newer write.",
        since="0.1.0",
        complexity="O(N) where N is the number of fields superseded.",
        args="key version [MAXSKEW ms]",
        acl="@write @fast",
        specs=_RW,
    ),
    entry(
        "ll.hset",
        -5,
        "write denyoom fast",
        (1, 1, 1),
        group=_G,
        summary="Sets hash fields at a version; each field keeps its newest write.",
        since="0.1.0",
        complexity="O(N) where N is the number of fields.",
        args="key version field value [field value ...]",
        acl="@write @fast",
        specs=_RW,
    ),
    entry(
        "ll.hdel",
        -4,
        "write fast",
        (1, 1, 1),
        group=_G,
        summary="Writes field tombstones at a version; each field keeps its newest write.",
        since="0.1.0",
        complexity="O(N) where N is the number of fields.",
        args="key version field [field ...]",
        acl="@write @fast",
        specs=_RW,
    ),
    entry(
        "ll.get",
        2,
        "readonly fast",
        (1, 1, 1),
        group=_G,
        summary="Returns the versioned record of a key (tombstones included), or nil.",
        since="0.1.0",
        complexity="O(N) where N is the number of fields.",
        args="key",
        acl="@read @fast",
        specs=_RO,
    ),
    entry(
        "ll.digest",
        2,
        "readonly fast",
        (1, 1, 1),
        group=_G,
        summary="Returns 8 bytes identifying a key's record (empty when absent).",
        since="0.1.0",
        complexity="O(N) where N is the number of fields.",
        args="key",
        acl="@read @fast",
        specs=_RO,
    ),
    entry(
        "ll.purge",
        3,
        "write fast",
        (1, 1, 1),
        group=_G,
        summary="Drops a key's tombstone if it is still exactly the one at the version given.",
        since="0.1.0",
        complexity="O(1)",
        args="key version",
        acl="@write @fast",
        specs=_RW,
    ),
    entry(
        "ll.tree",
        2,
        "readonly",
        group=_G,
        summary="Returns the anti-entropy hash-tree leaves (8 bytes each) at a depth.",
        since="0.1.0",
        complexity="O(N) where N is the number of keys.",
        args="depth",
        acl="@read @slow",
    ),
    entry(
        "ll.range",
        4,
        "readonly",
        group=_G,
        summary="Returns the keys and records of the hash-tree leaves [lo, hi) at a depth.",
        since="0.1.0",
        complexity="O(N) where N is the number of keys.",
        args="depth lo hi",
        acl="@read @slow",
    ),
]
