"""PUBSUB CHANNELS / SHARDCHANNELS / NUMSUB / SHARDNUMSUB / NUMPAT through an endpoint:
asked of the shards that know, merged into the reply one Redis would give.

Owns: where each is sent and how the shards' replies merge. A channel (or shard channel)
lives on the shard of its slot (proxy/pubsub.py), so CHANNELS joins every shard's list
(no channel is on two shards), NUMSUB asks each channel's shard and keeps the request's
order, and NUMPAT, every shard holding every pattern, takes the largest count. Never does
IO; runs inside the session core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .replies import as_int, is_error, items
from .router import Merge, Route, slot_of

if TYPE_CHECKING:
    from .session import Session


def channels(s: Session, r: Route, argv: list[bytes]) -> None:
    """PUBSUB CHANNELS / SHARDCHANNELS: every shard's, joined (a channel lives on one)."""
    if len(argv) > 3:
        s._forward(0, argv, False)  # the shard words the syntax error
        return
    s.merged(s.all_shards(), argv, Merge.CONCAT)


def numsub(s: Session, r: Route, argv: list[bytes]) -> None:
    """PUBSUB NUMSUB / SHARDNUMSUB: each channel asked of its shard, pairs in order."""
    chans = argv[2:]
    groups: dict[int, list[int]] = {}
    for i, ch in enumerate(chans):
        groups.setdefault(s.router.shard_of[slot_of(ch)], []).append(i)
    if len(groups) <= 1:
        s._forward(next(iter(groups), 0), argv, False)
        return
    shards = sorted(groups)
    requests = [argv[:2] + [chans[i] for i in groups[sh]] for sh in shards]

    def finish(parts: list[bytes]) -> bytes:
        pairs: list[bytes] = [b""] * len(chans)
        for sh, part in zip(shards, parts, strict=True):
            if is_error(part):
                return part
            flat = items(part)
            for j, i in enumerate(groups[sh]):
                pairs[i] = flat[2 * j] + flat[2 * j + 1]
        return b"*%d\r\n" % (2 * len(chans)) + b"".join(pairs)

    s.fan(shards, requests, finish)


def numpat(s: Session, r: Route, argv: list[bytes]) -> None:
    """PUBSUB NUMPAT: every shard holds every pattern; the largest count (a shard that
    lost a connection may briefly hold fewer)."""
    if len(argv) != 2:
        s._forward(0, argv, False)
        return

    def finish(parts: list[bytes]) -> bytes:
        err = next((p for p in parts if is_error(p)), None)
        if err is not None:
            return err
        return b":%d\r\n" % max(as_int(p) or 0 for p in parts)

    s.fan(s.all_shards(), [argv] * s.router.nshards, finish)
