"""A shard failing over, as one client session sees it (issue 15, "proxies follow at
once"; docs/proxy.md, "Failover").

Owns: what becomes of a client's requests for a shard the topology marks ``failing``
(``Router.failing``): they are parked (``park``) instead of sent to the old primary, and
sent in order to the new one once a topology names it (``resume``), or answered
``EXPIRED`` (-TRYAGAIN) when ``Router.wait_ms`` passes first (``tick``); which requests a
lost shard connection retries (``requeue``: reads, when the shard is failing or its
primary just moved; a write in flight gets -TRYAGAIN, it may have run); WAIT's zero for a
shard whose primary changed under the client's writes (``wait_zero``); and a request a
primary refused because it was demoted (-READONLY) or fenced (-TRYAGAIN ... fenced), which
proves it did not run: it is sent again (``take``), with every later request of the
client still in flight on that connection, once the topology names the shard's new
primary (or marks it failing; or after ``RESEND_AFTER_MS`` without a change, to the
primary it names), at most ``RESEND_MAX`` times. Never does IO and never
reads a clock: the shell passes ``now_ms`` to ``tick`` while a shard is failing or a
request waits.

States of a shard in a session: normal; stalled (``Session.stalled`` bit set: failing in
the router, demoted, or holding parked requests): every request for it is parked, in
order; demoted (``Session.demoted`` bit set: its primary refused a request and the
topology has not changed the shard since). The parked requests of a shard leave all at
once, in the order they came (requests taken back from a connection first -- reads lost
with it, requests a demoted primary refused and those in flight behind them: they were
sent before the others; ``Parked.front``), when the router marks it neither failing nor
demoted.
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
# Replies that prove the command did not run (replication/refusal.py's texts; the tests
# check they match): a write refused by a replica (the primary was demoted), a write
# refused by a primary without a lease (docs/fencing.md), and EXEC refused whole for
# either reason. The shell looks for ``RO_MARK`` or ``FENCED_MARK`` in what a shard sent
# (both appear in the EXECABORT forms too) before it looks at single replies.
RO_MARK = b"READONLY You can't write"
FENCED_MARK = b"TRYAGAIN this shard is fenced"
_REFUSED = (b"-" + RO_MARK, b"-" + FENCED_MARK)
_EXECABORT = b"-EXECABORT Transaction discarded because of: "
_EXEC_REFUSED = (RO_MARK, FENCED_MARK)
# The refusals of a replica (a demoted primary): it refuses every later write too.
_STICKY = (b"-" + RO_MARK, _EXECABORT + RO_MARK)
# How often one request is sent again after refusals before the client gets the error.
RESEND_MAX = 3
# How long refused requests wait for a topology that changes their shard before they are
# sent again to the primary it names anyway: the topology was current and the shard lags
# it (a new primary its agent has not switched to primary yet, a lease not renewed yet).
# A planned failover's new topology comes well within it (tens of ms after the demotion).
RESEND_AFTER_MS = 500
# WAIT's and WAITAOF's count for a shard whose primary changed under the client's writes
# (or is failing): nothing the endpoint can vouch for.
WAIT_ZERO = b":0\r\n"
WAITAOF_ZERO = b"*2\r\n:0\r\n:0\r\n"


class Parked:
    """A request waiting for its shard's new primary: what ``Session._send`` was given,
    its deadline (0: not stamped yet), and ``front``: taken back from a connection (sent
    before every request parked without it)."""

    __slots__ = ("argv", "sink", "shared", "deadline", "front")

    def __init__(
        self, argv: list[bytes] | bytes, sink: Sink, shared: bool, front: bool = False
    ) -> None:
        self.argv = argv
        self.sink = sink
        self.shared = shared
        self.deadline = 0
        self.front = front


class Gone:
    """The sink left on a connection for a request taken back from it (sent again): the
    old primary's reply to it is dropped."""

    __slots__ = ()

    def deliver(self, raw: bytes) -> None:
        pass


GONE = Gone()


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
    parked since (they were sent earlier); sent at once when the shard is neither failing
    nor demoted."""
    if not again:
        return
    _park_front(s, shard, [Parked(argv, sink, True, True) for argv, sink in again])
    if not (s.router.failing | s.demoted) >> shard & 1:
        _replay(s, shard)


def _park_front(s: Session, shard: int, entries: list[Parked]) -> None:
    """Park ``entries`` (taken back from a connection, in the order sent) after those
    taken back before them and before every request parked since."""
    q = s.parked.get(shard)
    if q is None:
        q = s.parked[shard] = deque()
    at = 0
    for e in q:
        if not e.front:
            break
        at += 1
    for e in entries:
        q.insert(at, e)
        at += 1
    s.stalled |= 1 << shard


def refused(raw: bytes) -> bool:
    """Does ``raw`` prove its command did not run (refused as demoted or fenced)?"""
    if raw.startswith(_REFUSED):
        return True
    return raw.startswith(_EXECABORT) and raw.startswith(_EXEC_REFUSED, len(_EXECABORT))


def replies_checked(s: Session, shard: int, raws: list[bytes]) -> None:
    """``Session.replies`` when some of ``raws`` are refusals: a refused request is
    taken (``take``) with those in flight behind it, and ``GONE`` takes their place on
    the connection; the rest is delivered as usual."""
    sinks = s.sinks[shard]
    batch: list[bytes] = []
    for raw in raws:
        if not (sinks and refused(raw)):
            batch.append(raw)
            continue
        if batch:
            s.replies(shard, batch)
            batch = []
        sink = sinks[0] if sinks else GONE  # (the batch may have ended them)
        if sink is None:  # a transaction's queued command: its EXEC is sent again
            _exec_refused(s, shard, raw)
            batch.append(raw)
            continue
        taken = take(s, shard, sink, raw, list(sinks)[1:])
        if taken is None:
            batch.append(as_error(raw))
            continue
        sinks.popleft()
        _drop_sinks(s, shard, [sink, *taken])
    if batch:
        s.replies(shard, batch)
    s._flush()


def _exec_refused(s: Session, shard: int, raw: bytes) -> None:
    """A command queued in a transaction was refused (its reply is swallowed): the EXEC
    after it (whose EXECABORT will say "previous errors") is taken with the whole
    transaction and what follows, when it can be sent again."""
    items = list(s.sinks[shard])
    at = next((i for i, x in enumerate(items) if x is not None), len(items))
    if at == len(items) or getattr(items[at], "before", None) is None:
        return
    taken = take(s, shard, items[at], raw, items[at + 1 :])
    if taken is not None:
        _drop_sinks(s, shard, [items[at], *taken])


def _drop_sinks(s: Session, shard: int, taken: list[Sink]) -> None:
    """Leave ``GONE`` on the dedicated connection in place of ``taken`` (sent again)."""
    from .session import Pending

    sinks = s.sinks[shard]
    ids = {id(x) for x in taken}
    s.plain[shard] -= sum(1 for x in taken if x.__class__ is Pending and id(x) in ids)
    items = list(sinks)
    sinks.clear()
    sinks.extend(GONE if id(x) in ids else x for x in items)


def _entries(argv: list[bytes], sink: Sink) -> list[Parked]:
    """What sending ``sink``'s request again sends: an EXEC goes after its MULTI and
    queued commands (their replies are swallowed, as at the first EXEC)."""
    before: list[list[bytes]] = getattr(sink, "before", None) or []
    return [Parked(a, None, False, True) for a in before] + [Parked(argv, sink, False, True)]


def as_error(raw: bytes) -> bytes:
    """What the client gets for a refusal that is not sent again: -READONLY (the shard's
    word for our stale topology) as -TRYAGAIN; a fenced -TRYAGAIN as it is."""
    return DEMOTED if raw.startswith(READONLY_PREFIX) else raw


def resend_argv(sink: Sink) -> list[bytes] | None:
    """The request to send again when ``sink``'s request was refused, or when it was in
    flight behind one refused, or None (it is answered with what comes)."""
    argv = getattr(sink, "retry", None)
    return argv if argv is not None else getattr(sink, "resend", None)


def take(s: Session, shard: int, sink: Sink, raw: bytes, later: list[Sink]) -> list[Sink] | None:
    """``sink``'s request was refused by ``shard``'s primary with ``raw`` (``refused``):
    park it to be sent again, with each of ``later`` (the client's requests in flight
    behind it on that connection, in order) that can be: a read behind a refused write
    must see it; a write too when ``raw`` says the primary was demoted (a replica refuses
    every later write: sticky). A fenced primary may get its lease back before a later
    write, which would then run there before this one: with a write in flight behind it,
    this one is not sent again. A WAIT behind it counts 0 at once (it cannot vouch for a
    write that has not run yet; after a fenced refusal, a later WAIT counts 0 there too:
    ``unsure``). Returns the sinks of ``later`` taken (the shell leaves
    ``GONE`` in their place), or None when ``sink`` is not sent again (also when it is
    not a request kept for it, or was sent ``RESEND_MAX`` times): it gets ``as_error``.
    The shard's requests wait until the topology changes it (``Session.set_router``),
    ``RESEND_AFTER_MS`` or the bound passes (``tick``)."""
    argv = resend_argv(sink)
    if argv is None or getattr(sink, "tries", 0) >= RESEND_MAX:
        return None
    sticky = raw.startswith(_STICKY)
    if not sticky:
        if any(getattr(x, "resend", None) is not None for x in later):
            return None
        # The client's writes there before this one may have run on the fenced primary and
        # be lost with it: a WAIT cannot vouch for them on the new one. (A demoted one was
        # a planned hand-over's, whose target had every write; or the endpoint saw the
        # failover first, which marked them.)
        s.unsure |= s.written & (1 << shard)
    sink.tries = getattr(sink, "tries", 0) + 1  # type: ignore[union-attr]
    entries = _entries(argv, sink)
    taken: list[Sink] = []
    for later_sink in later:
        zero = getattr(later_sink, "zero", None)
        if zero is not None:  # a WAIT's part
            later_sink.deliver(zero)  # type: ignore[union-attr]
            taken.append(later_sink)
            continue
        a = resend_argv(later_sink)
        tries = getattr(later_sink, "tries", 0)
        if a is None or tries >= RESEND_MAX:
            continue
        later_sink.tries = tries + 1  # type: ignore[union-attr]
        entries += _entries(a, later_sink)
        taken.append(later_sink)
    _park_front(s, shard, entries)
    if not s.router.failing >> shard & 1:
        s.demoted |= 1 << shard
    return taken


def resume(s: Session) -> None:
    """After a new topology (and after the shell dropped the connections to primaries
    that moved): send what waited for shards no longer failing."""
    waiting = s.router.failing | s.demoted
    for shard in [i for i in s.parked if not waiting >> i & 1]:
        _replay(s, shard)
    s.relocated = 0
    s.stalled = waiting | _parked_mask(s)
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
    s.demoted &= _parked_mask(s)  # nothing waits: the next request tries the primary again
    if s.demoted:
        _resend_lagging(s, now_ms)
    s.stalled = s.router.failing | s.demoted | _parked_mask(s)
    s._flush()


def _resend_lagging(s: Session, now_ms: int) -> None:
    """Send again what a demoted shard's primary refused ``RESEND_AFTER_MS`` ago with no
    topology change since (``RESEND_AFTER_MS``): to the primary the topology names."""
    since = s.router.wait_ms - RESEND_AFTER_MS  # a deadline this far ahead: waited enough
    for shard in [i for i in s.parked if s.demoted >> i & 1]:
        head = s.parked[shard][0]
        if head.deadline and head.deadline - since <= now_ms:
            s.demoted &= ~(1 << shard)
            _replay(s, shard)


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
