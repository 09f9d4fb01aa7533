"""Publish/subscribe: who listens to which channel or pattern, and delivery.

Owns: the channel, pattern and shard-channel subscriptions of every client and the
messages PUBLISH delivers (``message`` to channel subscribers, ``pmessage`` to pattern
subscribers, in subscription order) and SPUBLISH delivers (``smessage`` to shard-channel
subscribers only: shard channels are a namespace of their own, patterns never see them),
as RESP2 arrays or RESP3 pushes depending on each receiver. Never touches sockets:
messages are queued through each client's connection handle.

Counts in the (un)subscribe replies follow Redis 7.0: SUBSCRIBE / PSUBSCRIBE and their
UNSUBSCRIBEs count the client's channels plus patterns, SSUBSCRIBE / SUNSUBSCRIBE its
shard channels; the client stays in Pub/Sub mode while any of the three is non-empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..keyspace.glob import compile_glob
from ..resp import encoder as enc

if TYPE_CHECKING:
    from .client import Client


def push(c: Client, kind: bytes, *items: bytes | int | None) -> bytes:
    """One pub/sub frame for ``c``: an array in RESP2, a push in RESP3."""
    parts = [enc.bulk(kind)]
    for item in items:
        if item is None:
            parts.append(c.p.null)
        elif isinstance(item, int):
            parts.append(enc.integer(item))
        else:
            parts.append(enc.bulk(item))
    return c.p.push_header(len(parts)) + b"".join(parts)


def _classic(c: Client) -> int:
    """What a (P)(UN)SUBSCRIBE reply counts: channels plus patterns."""
    return len(c.channels) + len(c.patterns)


def _message_frame(kind: bytes, channel: bytes, message: bytes) -> bytes:
    """``kind channel message`` as a RESP2 array (a RESP3 push swaps the first byte)."""
    return b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(kind),
        kind,
        len(channel),
        channel,
        len(message),
        message,
    )


def _deliver(subs: dict[Client, None], frame: bytes) -> None:
    """One frame for every RESP2 receiver; RESP3 ones get it as a push ('>')."""
    pushed = None
    for c in subs:
        if c.resp == 3:
            if pushed is None:
                pushed = b">" + frame[1:]
            c.conn.write(pushed)
        else:
            c.conn.write(frame)


class PubSub:
    def __init__(self) -> None:
        self.channels: dict[bytes, dict[Client, None]] = {}
        self.patterns: dict[bytes, dict[Client, None]] = {}
        self.shard_channels: dict[bytes, dict[Client, None]] = {}
        self._matchers: dict[bytes, Callable[[bytes], bool]] = {}

    # -- subscriptions -----------------------------------------------------------------

    def subscribe(self, c: Client, channel: bytes) -> bytes:
        if channel not in c.channels:
            c.channels[channel] = None
            self.channels.setdefault(channel, {})[c] = None
            c.refresh_gate()
        return push(c, b"subscribe", channel, _classic(c))

    def unsubscribe(self, c: Client, channel: bytes) -> bytes:
        if c.channels.pop(channel, 1) is None:
            subs = self.channels[channel]
            del subs[c]
            if not subs:
                del self.channels[channel]
            c.refresh_gate()
        return push(c, b"unsubscribe", channel, _classic(c))

    def psubscribe(self, c: Client, pattern: bytes) -> bytes:
        if pattern not in c.patterns:
            c.patterns[pattern] = None
            if pattern not in self.patterns:
                self.patterns[pattern] = {}
                self._matchers[pattern] = compile_glob(pattern)
            self.patterns[pattern][c] = None
            c.refresh_gate()
        return push(c, b"psubscribe", pattern, _classic(c))

    def punsubscribe(self, c: Client, pattern: bytes) -> bytes:
        if c.patterns.pop(pattern, 1) is None:
            subs = self.patterns[pattern]
            del subs[c]
            if not subs:
                del self.patterns[pattern]
                del self._matchers[pattern]
            c.refresh_gate()
        return push(c, b"punsubscribe", pattern, _classic(c))

    def ssubscribe(self, c: Client, channel: bytes) -> bytes:
        if channel not in c.shard_channels:
            c.shard_channels[channel] = None
            self.shard_channels.setdefault(channel, {})[c] = None
            c.refresh_gate()
        return push(c, b"ssubscribe", channel, len(c.shard_channels))

    def sunsubscribe(self, c: Client, channel: bytes) -> bytes:
        if c.shard_channels.pop(channel, 1) is None:
            subs = self.shard_channels[channel]
            del subs[c]
            if not subs:
                del self.shard_channels[channel]
            c.refresh_gate()
        return push(c, b"sunsubscribe", channel, len(c.shard_channels))

    def unsubscribe_all(self, c: Client) -> None:
        for channel in list(c.channels):
            self.unsubscribe(c, channel)
        for pattern in list(c.patterns):
            self.punsubscribe(c, pattern)
        for channel in list(c.shard_channels):
            self.sunsubscribe(c, channel)

    # -- delivery ----------------------------------------------------------------------

    def publish(self, channel: bytes, message: bytes) -> int:
        """Deliver to every subscriber; returns how many received it."""
        subs = self.channels.get(channel)
        if subs:
            _deliver(subs, _message_frame(b"message", channel, message))
            n = len(subs)
        else:
            n = 0
        if self.patterns:
            for pattern, pclients in self.patterns.items():
                if self._matchers[pattern](channel):
                    for c in pclients:
                        c.conn.write(push(c, b"pmessage", pattern, channel, message))
                        n += 1
        return n

    def spublish(self, channel: bytes, message: bytes) -> int:
        """Deliver to the shard channel's subscribers; returns how many received it."""
        subs = self.shard_channels.get(channel)
        if not subs:
            return 0
        _deliver(subs, _message_frame(b"smessage", channel, message))
        return len(subs)

    def numpat(self) -> int:
        return len(self.patterns)
