"""Pub/Sub through a database endpoint: a message published through any node's endpoint
reaches the subscribers of every node's endpoint, with the replies one Redis would send.

Owns: a client's subscriptions as the endpoint sees them (``Subscriptions``: channels,
patterns and shard channels, and how many of them each shard connection holds), the
(un)subscribe frames the client gets (its own counts, RESP2 arrays or RESP3 pushes), where
each Pub/Sub command goes (PUBSUB's introspection: proxy/pubsubinfo.py). Never does IO;
runs inside the session core (proxy/session.py), which sends and orders. Pub/Sub commands
are refused inside MULTI (they change the connection's state, not a shard's data).

Where things go. A channel lives on the shard of its slot (CRC16 of the channel name, as
Redis Cluster hashes shard channels): SUBSCRIBE sends it there on the client's own
connection to that shard, and PUBLISH sends the message there, so every subscriber of
every endpoint is on the one shard that receives the message, and PUBLISH's count is the
count one Redis would give. A pattern can match channels of any slot: PSUBSCRIBE goes to
every shard. Shard channels (SSUBSCRIBE / SPUBLISH) go by slot too, all the channels of
one SSUBSCRIBE in one slot (CROSSSLOT otherwise, as a Redis Cluster answers); with the
cluster API the endpoint that does not own the slot answers MOVED.

Frames. The client's (un)subscribe replies are built here with the client's own counts
(channels plus patterns; shard channels apart, as Redis 7.0 counts them) and wait for the
shards' confirmations (a message published after the client saw ``subscribe`` reaches
it). A shard connection that holds subscriptions runs RESP3 whatever the client speaks,
so the shard's messages arrive as pushes that no reply can be mistaken for; the endpoint
hands them on as pushes to a RESP3 client and as arrays to a RESP2 one. When a
connection's last subscription goes, it returns to the client's protocol. A lost shard
connection is reopened and its subscriptions renewed (messages published meanwhile are
lost, as Pub/Sub's at-most-once delivery allows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import pubsubinfo
from .replies import is_error
from .router import CROSSSLOT, Route, slot_of

if TYPE_CHECKING:
    from .session import Session

# A push the shard sends on its own (a message), as opposed to a reply it owes.
_MESSAGE_PUSHES = (
    b">3\r\n$7\r\nmessage\r\n",
    b">4\r\n$8\r\npmessage\r\n",
    b">3\r\n$8\r\nsmessage\r\n",
)
SUBSCRIBED_ONLY = (
    "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
    "are allowed in this context"
)
# What a RESP2 client may run while subscribed (Redis's rule).
ALLOWED_SUBSCRIBED = frozenset(
    {"subscribe", "ssubscribe", "psubscribe", "unsubscribe", "sunsubscribe", "punsubscribe"}
    | {"ping", "quit", "reset"}
)


def is_message(raw: bytes) -> bool:
    return raw.startswith(_MESSAGE_PUSHES)


class Subscriptions:
    """One client's subscriptions. ``held[i]``: how many of them shard connection i holds
    (a pattern is held by every shard's connection)."""

    __slots__ = ("channels", "patterns", "shard_channels", "held", "unconfirmed")

    def __init__(self, shards: int) -> None:
        self.channels: dict[bytes, int] = {}  # channel -> shard
        self.patterns: dict[bytes, None] = {}
        self.shard_channels: dict[bytes, int] = {}  # shard channel -> shard
        self.held = [0] * shards
        self.unconfirmed = 0  # (un)subscribe replies waiting for the shards

    def classic(self) -> int:
        return len(self.channels) + len(self.patterns)

    def total(self) -> int:
        return len(self.channels) + len(self.patterns) + len(self.shard_channels)


def subscribed_resp2(s: Session) -> bool:
    """Is the client in RESP2 subscribed mode (only ALLOWED_SUBSCRIBED may run)?"""
    ps = s.pubsub
    return ps is not None and s.protocol == 2 and ps.total() > 0


def refused(s: Session, r: Route) -> bool:
    """Refuse (with Redis's error) what a RESP2 client may not run while subscribed."""
    ps = s.pubsub
    if s.protocol != 2 or ps is None or not ps.total() or r.name in ALLOWED_SUBSCRIBED:
        return False
    s._reply(b"-" + (SUBSCRIBED_ONLY % r.name).encode() + b"\r\n")
    if s.txn is not None:
        s.txn.error = True
    return True


def deliver(s: Session, raw: bytes) -> None:
    """A message pushed by a shard: to the client, in the client's protocol. Out of band
    (before replies still owed, as Redis sends a push while a command blocks), except
    while a (un)subscribe reply is owed: then after it, so no message of a channel comes
    before the client was told it subscribed."""
    frame = raw if s.protocol == 3 else b"*" + raw[1:]
    ps = s.pubsub
    if ps is not None and ps.unconfirmed:
        s._reply(frame)
    else:
        s._flush()  # replies already complete go first
        s.out.append(frame)


def _frame(s: Session, kind: bytes, name: bytes | None, count: int) -> bytes:
    head = b">3\r\n" if s.protocol == 3 else b"*3\r\n"
    if name is None:
        item = b"_\r\n" if s.protocol == 3 else b"$-1\r\n"
    else:
        item = b"$%d\r\n%s\r\n" % (len(name), name)
    return head + b"$%d\r\n%s\r\n" % (len(kind), kind) + item + b":%d\r\n" % count


def _subs(s: Session) -> Subscriptions:
    if s.pubsub is None:
        s.pubsub = Subscriptions(s.router.nshards)
    return s.pubsub


def _hold(s: Session, ps: Subscriptions, shard: int) -> None:
    """Count one more subscription on a shard connection; the first switches the
    connection to RESP3 (before the subscribe is sent)."""
    ps.held[shard] += 1
    if ps.held[shard] == 1:
        _resp3(s, shard)


def _resp3(s: Session, shard: int) -> None:
    """Open shard connection ``shard`` if it is closed, and switch it to RESP3."""
    if not s.proto[shard]:
        s._open(shard)  # AUTH, and HELLO 3 for a RESP3 client
    if s.proto[shard] != 3:
        s._send(shard, [b"HELLO", b"3"], None)
        s.proto[shard] = 3


def _release(s: Session, ps: Subscriptions, shard: int, emptied: list[int]) -> None:
    """Count one subscription less; ``emptied`` collects the connections left with none."""
    ps.held[shard] -= 1
    if ps.held[shard] == 0:
        emptied.append(shard)


def _confirmed(
    s: Session,
    sends: list[tuple[int, list[bytes]]],
    frames: list[bytes],
    emptied: list[int] | None = None,
) -> None:
    """Reply ``frames`` once every shard confirmed its part of ``sends``; then the
    ``emptied`` connections return to the client's protocol."""
    reply = b"".join(frames)
    ps = s.pubsub
    if ps is not None and not ps.total():
        s.pubsub = None  # back to the plain path
    if not sends:
        s._reply(reply)
        return

    if ps is not None:
        ps.unconfirmed += 1

    def finish(parts: list[bytes]) -> bytes:
        if ps is not None:
            ps.unconfirmed -= 1
        for p in parts:
            if is_error(p) and not p.startswith(b"-TRYAGAIN"):  # lost: renewed on reconnect
                return p
        return reply

    s.fan([sh for sh, _ in sends], [argv for _, argv in sends], finish)
    for shard in emptied or ():
        if s.proto[shard] != s.protocol and s.proto[shard]:
            s._send(shard, [b"HELLO", b"%d" % s.protocol], None)
            s.proto[shard] = s.protocol


def _arity_ok(s: Session, r: Route, argv: list[bytes]) -> bool:
    cmd = r.cmd
    if cmd is not None and not cmd.argc_min <= len(argv) <= cmd.argc_max:
        s._reply(b"-ERR wrong number of arguments for '%s' command\r\n" % r.name.encode())
        return False
    return True


# -- channels ---------------------------------------------------------------------------


def subscribe(s: Session, r: Route, argv: list[bytes]) -> None:
    ps = _subs(s)
    sends, frames = [], []
    for ch in argv[1:]:
        if ch not in ps.channels:
            shard = s.router.shard_of[slot_of(ch)]
            ps.channels[ch] = shard
            _hold(s, ps, shard)
            sends.append((shard, [b"SUBSCRIBE", ch]))
        frames.append(_frame(s, b"subscribe", ch, ps.classic()))
    _confirmed(s, sends, frames)


def unsubscribe(s: Session, r: Route, argv: list[bytes]) -> None:
    ps = _subs(s)
    chans = argv[1:] or list(ps.channels)
    if not chans:
        s._reply(_frame(s, b"unsubscribe", None, ps.classic()))
        return
    sends: list[tuple[int, list[bytes]]] = []
    frames: list[bytes] = []
    emptied: list[int] = []
    for ch in chans:
        shard = ps.channels.pop(ch, -1)
        if shard >= 0:
            sends.append((shard, [b"UNSUBSCRIBE", ch]))
            _release(s, ps, shard, emptied)
        frames.append(_frame(s, b"unsubscribe", ch, ps.classic()))
    _confirmed(s, sends, frames, emptied)


def psubscribe(s: Session, r: Route, argv: list[bytes]) -> None:
    ps = _subs(s)
    sends, frames = [], []
    for pattern in argv[1:]:
        if pattern not in ps.patterns:
            ps.patterns[pattern] = None
            for shard in s.all_shards():
                _hold(s, ps, shard)
                sends.append((shard, [b"PSUBSCRIBE", pattern]))
        frames.append(_frame(s, b"psubscribe", pattern, ps.classic()))
    _confirmed(s, sends, frames)


def punsubscribe(s: Session, r: Route, argv: list[bytes]) -> None:
    ps = _subs(s)
    patterns = argv[1:] or list(ps.patterns)
    if not patterns:
        s._reply(_frame(s, b"punsubscribe", None, ps.classic()))
        return
    sends: list[tuple[int, list[bytes]]] = []
    frames: list[bytes] = []
    emptied: list[int] = []
    for pattern in patterns:
        if ps.patterns.pop(pattern, 1) is None:
            for shard in s.all_shards():
                sends.append((shard, [b"PUNSUBSCRIBE", pattern]))
                _release(s, ps, shard, emptied)
        frames.append(_frame(s, b"punsubscribe", pattern, ps.classic()))
    _confirmed(s, sends, frames, emptied)


def _one_slot(s: Session, chans: list[bytes]) -> int:
    """The one slot of shard channels ``chans``; -1 when answered (CROSSSLOT, MOVED)."""
    slots = {slot_of(ch) for ch in chans}
    if len(slots) > 1:
        s._reply(CROSSSLOT)
        return -1
    slot = slots.pop()
    if s.redirect is not None:
        moved = s.redirect(slot)
        if moved is not None:
            s._reply(moved)
            return -1
    return slot


def ssubscribe(s: Session, r: Route, argv: list[bytes]) -> None:
    if not _arity_ok(s, r, argv):
        return
    slot = _one_slot(s, argv[1:])
    if slot < 0:
        return
    ps = _subs(s)
    shard = s.router.shard_of[slot]
    sends, frames = [], []
    for ch in argv[1:]:
        if ch not in ps.shard_channels:
            ps.shard_channels[ch] = shard
            _hold(s, ps, shard)
            sends.append((shard, [b"SSUBSCRIBE", ch]))
        frames.append(_frame(s, b"ssubscribe", ch, len(ps.shard_channels)))
    _confirmed(s, sends, frames)


def sunsubscribe(s: Session, r: Route, argv: list[bytes]) -> None:
    ps = _subs(s)
    if len(argv) > 1 and _one_slot(s, argv[1:]) < 0:
        return
    chans = argv[1:] or list(ps.shard_channels)
    if not chans:
        s._reply(_frame(s, b"sunsubscribe", None, 0))
        return
    sends: list[tuple[int, list[bytes]]] = []
    frames: list[bytes] = []
    emptied: list[int] = []
    for ch in chans:
        shard = ps.shard_channels.pop(ch, -1)
        if shard >= 0:
            sends.append((shard, [b"SUNSUBSCRIBE", ch]))
            _release(s, ps, shard, emptied)
        frames.append(_frame(s, b"sunsubscribe", ch, len(ps.shard_channels)))
    _confirmed(s, sends, frames, emptied)


def publish(s: Session, r: Route, argv: list[bytes]) -> None:
    """To the shard of the channel's slot, where its subscribers are."""
    if not _arity_ok(s, r, argv):
        return
    s._forward(s.router.shard_of[slot_of(argv[1])], argv, False)


# -- the connection's life --------------------------------------------------------------


def renew(s: Session, shard: int) -> None:
    """Shard connection ``shard`` was lost: open a new one with the same subscriptions
    (their confirmations are swallowed: the client was told already)."""
    ps = s.pubsub
    if ps is None or not ps.held[shard]:
        return
    _resp3(s, shard)
    for ch, sh in ps.channels.items():
        if sh == shard:
            s._send(shard, [b"SUBSCRIBE", ch], None)
    for pattern in ps.patterns:
        s._send(shard, [b"PSUBSCRIBE", pattern], None)
    for ch, sh in ps.shard_channels.items():
        if sh == shard:
            s._send(shard, [b"SSUBSCRIBE", ch], None)


def reset(s: Session) -> None:
    """RESET (and the client going away): drop every subscription."""
    ps = s.pubsub
    if ps is None:
        return
    for ch, shard in list(ps.channels.items()):
        s._send(shard, [b"UNSUBSCRIBE", ch], None)
    for pattern in ps.patterns:
        for shard in s.all_shards():
            s._send(shard, [b"PUNSUBSCRIBE", pattern], None)
    for ch, shard in list(ps.shard_channels.items()):
        s._send(shard, [b"SUNSUBSCRIBE", ch], None)
    s.pubsub = None
    for shard, held in enumerate(ps.held):
        if held and s.proto[shard] == 3 and s.protocol != 3:
            s._send(shard, [b"HELLO", b"%d" % s.protocol], None)
            s.proto[shard] = s.protocol


HANDLERS: dict[str, Callable[[Session, Route, list[bytes]], None]] = {
    "subscribe": subscribe,
    "unsubscribe": unsubscribe,
    "psubscribe": psubscribe,
    "punsubscribe": punsubscribe,
    "ssubscribe": ssubscribe,
    "sunsubscribe": sunsubscribe,
    "publish": publish,
    "pubsub|channels": pubsubinfo.channels,
    "pubsub|shardchannels": pubsubinfo.channels,
    "pubsub|numsub": pubsubinfo.numsub,
    "pubsub|shardnumsub": pubsubinfo.numsub,
    "pubsub|numpat": pubsubinfo.numpat,
}


def handle(s: Session, r: Route, argv: list[bytes]) -> None:
    HANDLERS[r.name](s, r, argv)
