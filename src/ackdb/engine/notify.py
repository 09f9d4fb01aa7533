"""Keyspace notifications (``notify-keyspace-events``): events published on changes.

Owns: the event classes, which of them are on, and the two channels an event goes to —
``__keyspace@<db>__:<key>`` (message: the event) when K is on, and
``__keyevent@<db>__:<event>`` (message: the key) when E is on. Commands call
``Server.notify(cls, event, key, db_index)`` after each change, with Redis's event names;
when no class is on, a call costs one bit test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .pubsub import PubSub

# Event classes, as Redis's notify-keyspace-events characters.
GENERIC: Final = 1 << 0  # g: DEL, EXPIRE, RENAME, ...
STRING: Final = 1 << 1  # $
LIST: Final = 1 << 2  # l
SET: Final = 1 << 3  # s
HASH: Final = 1 << 4  # h
ZSET: Final = 1 << 5  # z
EXPIRED: Final = 1 << 6  # x: a key reached its TTL
EVICTED: Final = 1 << 7  # e
STREAM: Final = 1 << 8  # t
KEYMISS: Final = 1 << 9  # m
MODULE: Final = 1 << 10  # d
NEW: Final = 1 << 11  # n: a key was created
KEYSPACE: Final = 1 << 12  # K
KEYEVENT: Final = 1 << 13  # E

_CHARS = {
    "g": GENERIC,
    "$": STRING,
    "l": LIST,
    "s": SET,
    "h": HASH,
    "z": ZSET,
    "x": EXPIRED,
    "e": EVICTED,
    "t": STREAM,
    "m": KEYMISS,
    "d": MODULE,
    "n": NEW,
    "K": KEYSPACE,
    "E": KEYEVENT,
}


def flags_of(chars: frozenset[str] | str) -> int:
    """The bit mask of a notify-keyspace-events value (its characters, 'A' expanded)."""
    mask = 0
    for ch in chars:
        mask |= _CHARS.get(ch, 0)
    # Nothing is published unless at least one of K and E is on.
    if not mask & (KEYSPACE | KEYEVENT):
        return 0
    return mask


class Notifier:
    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub
        self.flags = 0

    def publish(self, cls: int, event: bytes, key: bytes, db_index: int) -> None:
        flags = self.flags
        if not flags & cls:
            return
        if flags & KEYSPACE:
            self.pubsub.publish(b"__keyspace@%d__:%s" % (db_index, key), event)
        if flags & KEYEVENT:
            self.pubsub.publish(b"__keyevent@%d__:%s" % (db_index, event), key)
