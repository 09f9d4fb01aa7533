"""A shard failing over, as one client session sees it (issue 15, "proxies follow at
once"; docs/proxy.md, "Failover").

Owns: what becomes of a client's requests for a shard the topology marks ``failing``
(``Router.failing``): they are parked (``park``) instead of sent to the old primary, and
sent in order to the new one once a topology names it (``resume``), or answered
``EXPIRED`` (-TRYAGAIN) when ``Router.wait_ms`` passes first (``tick``); which requests a
lost shard connection retries (``requeue``: reads, when the shard is failing or its
primary just moved; a write in flight gets -TRYAGAIN, it may have run); WAIT's zero for a
shard whose primary changed under the client's writes (``wait_zero``); and a demoted
shard's -READONLY, answered -TRYAGAIN (``demoted``). Never does IO and never reads a
clock: the shell passes ``now_ms`` to ``tick`` while a shard is failing.

States of a shard in a session: normal; stalled (``Session.stalled`` bit set: failing in
the router, or holding parked requests): every request for it is parked, in order. The
parked requests of a shard leave all at once, in the order they came (retried reads
first: they were sent before the others), when the router no longer marks it failing.
A parked request's deadline is stamped at the first ``tick`` after it came (the shell
ticks every ``TICK_MS`` while any shard fails), so it waits ``wait_ms`` to
``wait_ms + TICK_MS``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from .router import Router

if TYPE_CHECKING:
    from .session import Session, Sink

TICK_MS = 100  # how often the shell ticks sessions while a shard is failing
# A request that waited the bound for a failing shard's new primary.
EXPIRED = b"-TRYAGAIN the shard is failing over and has no new primary yet; retry later\r\n"
# A write answered -READONLY: the shard was demoted and the endpoint's topology is stale.
DEMOTED = (
    b"-TRYAGAIN the shard is no longer the primary (the endpoint's topology was stale);"
    b" the command did not run\r\n"
)
READONLY_PREFIX = b"-READONLY"
# WAIT's and WAITAOF's count for a shard whose primary changed under the client's writes
# (or is failing): nothing the endpoint can vouch for.
WAIT_ZERO = b":0\r\n"
WAITAOF_ZERO = b"*2\r\n:0\r\n:0\r\n"


class Parked:
    """A request waiting for its shard's new primary: what ``Session._send`` was given,
    and its deadline (0: not stamped yet)."""

    __slots__ = ("argv", "sink", "shared", "deadline")

    def __init__(self, argv: list[bytes] | bytes, sink: Sink, shared: bool) -> None:
        self.argv = argv
        self.sink = sink
        self.shared = shared
        self.deadline = 0


def park(s: Session, shard: int, argv: list[bytes] | bytes, sink: Sink, shared: bool) -> None:
    q = s.parked.get(shard)
    if q is None:
        q = s.parked[shard] = deque()
    q.append(Parked(argv, sink, shared))
    s.stalled |= 1 << shard


def retry_argv(sink: Sink) -> list[bytes] | None:
    """The request to send again if ``sink``'s reply is lost (a read), else None."""
    return getattr(sink, "retry", None)


def retrying(s: Session, shard: int) -> bool:
    """Are reads lost on ``shard``'s connection sent again? Only when it is failing over
    or its primary just moved: else the connection broke for another reason, and the
    client decides (it gets -TRYAGAIN)."""
    return bool((s.router.failing | s.relocated) >> shard & 1)


def requeue(s: Session, shard: int, again: list[tuple[list[bytes], Sink]]) -> None:
    """Reads lost in flight on ``shard``, in the order sent: they go before what was
    parked since (they were sent earlier); sent at once when the shard is not failing."""
    if not again:
        return
    q = s.parked.get(shard) or deque()
    q.extendleft(Parked(argv, sink, True) for argv, sink in reversed(again))
    s.parked[shard] = q
    s.stalled |= 1 << shard
    if not s.router.failing >> shard & 1:
        _replay(s, shard)


def resume(s: Session) -> None:
    """After a new topology (and after the shell dropped the connections to primaries
    that moved): send what waited for shards no longer failing."""
    failing = s.router.failing
    for shard in [i for i in s.parked if not failing >> i & 1]:
        _replay(s, shard)
    s.relocated = 0
    s.stalled = failing | _parked_mask(s)
    s._flush()


def _replay(s: Session, shard: int) -> None:
    q = s.parked.pop(shard, None)
    s.stalled &= ~(1 << shard)
    if not q:
        return
    # All on the dedicated connection: a parked request that needs it may follow one that
    # could have gone shared, and a client's requests to a shard are never in flight on
    # both at once.
    for e in q:
        s._send(shard, e.argv, e.sink)


def tick(s: Session, now_ms: int) -> None:
    """Stamp new parked requests with their deadline; answer those past it."""
    wait_ms = s.router.wait_ms
    for shard in list(s.parked):
        q = s.parked[shard]
        expired = False
        for e in q:
            if not e.deadline:
                e.deadline = now_ms + wait_ms
            elif e.deadline <= now_ms:
                expired = True
        if not expired:
            continue
        keep: deque[Parked] = deque()
        for e in q:
            if e.deadline <= now_ms:
                fail(e.sink, EXPIRED)
            else:
                keep.append(e)
        if keep:
            s.parked[shard] = keep
        else:
            del s.parked[shard]
    s.stalled = s.router.failing | _parked_mask(s)
    s._flush()


def fail(sink: Sink, raw: bytes) -> None:
    from .session import Pending

    if isinstance(sink, Pending):
        sink.value = raw
    elif sink is not None:
        sink.deliver(raw)


def _parked_mask(s: Session) -> int:
    mask = 0
    for shard, q in s.parked.items():
        if q:
            mask |= 1 << shard
    return mask


def unsure(old: Router, new: Router, written: int) -> int:
    """Of the shards ``written`` since the client's last WAIT, those whose writes may have
    gone to a primary that is not the shard's any more: a shard that starts failing (its
    writes so far went to the old primary), and one whose primary or epoch changed while
    the endpoint did not see it failing. Not a shard that was failing: its writes since
    were parked, and run on the new primary."""
    moved, epochs = moved_shards(old, new)
    return written & ((new.failing & ~old.failing) | ((moved | epochs) & ~old.failing))


def wait_zero(s: Session, shards: list[int]) -> set[int]:
    """The shards WAIT must count as 0 for this client (``Session.unsure``): its writes
    there may have gone to a primary whose replicas are not the ones counted now. (WAIT
    for a failing shard the client did not write to before it failed is parked like any
    request, and runs on the new primary after the writes parked before it.)"""
    return {i for i in shards if s.unsure >> i & 1}


def zero_for(argv: list[bytes]) -> bytes:
    return WAITAOF_ZERO if argv[0].lower() == b"waitaof" else WAIT_ZERO


# WAIT's errors from a shard whose primary was demoted under it (a planned failover's
# hand-over, or a WAIT blocked when the demotion came): the client's writes there are
# nothing the endpoint can vouch for, not an error of the client's WAIT.
_DEMOTED_WAIT = (b"-ERR WAIT cannot be used with replica", b"-UNBLOCKED")


def wait_part(raw: bytes, zero: bytes) -> bytes:
    """A shard's WAIT reply, or 0 when it never came (the connection was lost mid-WAIT, or
    the shard stayed failing past the bound) or the shard was demoted meanwhile: the count
    reached that the endpoint can vouch for."""
    if raw is EXPIRED or raw[:9] == b"-TRYAGAIN" or raw.startswith(_DEMOTED_WAIT):
        return zero
    return raw


def demoted(raws: list[bytes]) -> list[bytes]:
    """A shard's replies with each -READONLY (a write sent to a primary that was demoted:
    the topology is stale) turned into -TRYAGAIN."""
    return [DEMOTED if r.startswith(READONLY_PREFIX) else r for r in raws]


def moved_shards(old: Router, new: Router) -> tuple[int, int]:
    """(shards whose primary address changed, shards whose epoch changed), as bit masks,
    between two routers of the same shard count."""
    moved = epochs = 0
    for i in range(new.nshards):
        if new.addrs[i] != old.addrs[i]:
            moved |= 1 << i
        if old.epochs[i : i + 1] != new.epochs[i : i + 1]:
            epochs |= 1 << i
    return moved, epochs
