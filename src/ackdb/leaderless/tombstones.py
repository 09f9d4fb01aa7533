"""When a delete's trace (a tombstone) may be dropped without resurrecting the key.

Owns: the purge rule. A tombstone at version v of key k may be dropped (``LL.PURGE k v``
on every replica, which drops it only if it still holds exactly that tombstone) when

1. **every** replica of k is known to hold that tombstone durably (each answered it in a
   full read: ``holders`` covers the whole replica set), and
2. no write of k older than v can still arrive: hints live at most ``hint_age_ms_max``,
   a request at most ``request_timeout_ms``, and peers' clocks differ by at most
   ``max_skew_ms`` -- so once ``now_ms`` is past ``v.ms`` plus those, every older write
   of k is either on the replicas (and beaten by the tombstone) or gone.

Never by a timer alone (Cassandra's gc_grace zombies: a replica down longer than the
grace period brings the key back), and never on one replica's word. The trade-off: a
replica down for good holds every tombstone of its keys until it is replaced, and
deleted keys cost space for at least the grace period.
"""

from __future__ import annotations

from ..keyspace.lww import Record, Version


def grace_ms(hint_age_ms_max: int, request_timeout_ms: int, max_skew_ms: int) -> int:
    return hint_age_ms_max + request_timeout_ms + max_skew_ms


def may_purge(
    tombstone: Version,
    holders: dict[int, Record | None],
    replicas: tuple[int, ...],
    now_ms: int,
    grace: int,
) -> bool:
    """True when the tombstone at ``tombstone`` may be purged everywhere."""
    if now_ms <= tombstone.ms + grace:
        return False
    for r in replicas:
        rec = holders.get(r)
        if rec is None or not rec.is_tombstone() or rec.base_version != tombstone:
            return False
    return True
