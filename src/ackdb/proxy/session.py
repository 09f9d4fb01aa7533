"""One client connection of the endpoint, as a sans-IO state machine.

Owns: the order of the client's replies (a queue of ``Pending`` replies, flushed from its
head), which shard each request goes to and what is written to each shard connection,
which shard reply fills which pending reply (one FIFO of sinks per shard connection), the
connection's state (protocol, authentication, name), WAIT's set of written shards, the
transaction (MULTI queued here, sent whole to one shard at EXEC) and WATCH's shard.
Never does IO: the shell (proxy/shell.py) feeds it parsed requests and the shards' raw
replies, writes ``out`` to the client and ``take(shard)`` to each shard connection.

Two kinds of shard connection (docs/proxy.md): the endpoint's *shared* one per shard
(``mux``: RESP2, no session state; ``mux_up`` / ``mux_sinks`` hold what this client sends
there, the shell keeps the FIFO of sinks across clients) and the client's own *dedicated*
ones (``up`` / ``sinks``), opened lazily, which carry what needs the shard to hold state
for this client: blocking commands, WATCH, EXEC, WAIT, and everything of a RESP3 client.
A client's requests to one shard are never in flight on both kinds at once, so they run in
the order sent: a plain request goes shared only while the dedicated connection owes
nothing, and a request that needs the dedicated connection while shared replies are owed
is held (``held``, with every request after it) until they have arrived. WAIT is sent
after ``ACKDB.SYNCWOFF`` on each shard written since the last WAIT, which raises
the dedicated connection's last write offset to the shard's offset (>= this client's
last write there), so WAIT still waits for this client's writes.

A shard failing over (``Router.failing``) is *stalled*: ``_send`` parks its requests
until the topology names its new primary or the bound passes (proxy/failover.py), and
the plain keyed path is left for ``_other`` while any shard is stalled.

States: open; in a transaction (``txn`` set); closing (after QUIT: later requests are
dropped). A shard connection is closed (``proto[i] == 0``: the next request opens it and
sends AUTH, and HELLO 3 for a RESP3 client, first) or open in protocol 2 or 3.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from ..acl import User
from ..resp.hello import NOAUTH
from ..resp.request import encode_command
from . import access, clustercmd, failover, fanout, local, pubsub, txn
from .merge import ScanCursors, merge
from .replies import ReplyCounter, ReplySplitter, is_error
from .router import CROSSSLOT, ROUTES, Kind, Merge, Route, Router, find_route, keys_of, slot_of

LOST = b"-TRYAGAIN the connection to the shard was lost; the command may or may not have run\r\n"
_NO_KEYS = -1
_GATE_QUEUED, _GATE_SENT = 1, 2
_CROSS = -2


class Pending:
    """One reply the client is owed, in request order; ``value`` once it is known.
    ``retry`` (set only for reads, read with getattr): the request, sent again when its
    connection is lost while the shard fails over (proxy/failover.py); ``resend`` (set
    only for writes): the request, sent again when a demoted or fenced primary refused
    it, after ``before`` (an EXEC's MULTI and queued commands); ``tries``: how often it
    was sent again so (unset: 0)."""

    __slots__ = ("value", "parts", "left", "finish", "retry", "resend", "before", "tries")
    retry: list[bytes] | None  # unset unless a read: read it with getattr
    resend: list[bytes] | None  # unset unless a write: read it with getattr
    before: list[list[bytes]]  # unset unless an EXEC: read it with getattr
    tries: int  # unset until sent again: read it with getattr

    def __init__(self, value: bytes | None = None) -> None:
        self.value = value
        self.parts: list[bytes] = []
        self.left = 0
        self.finish: Callable[[list[bytes]], bytes] | None = None


class Part:
    """A sink for one shard's share of a merged reply (``retry``, ``resend`` and
    ``tries`` as in ``Pending``; ``zero``, set only for WAIT's parts: what stands for the
    shard's reply when the endpoint cannot vouch for it, read with getattr)."""

    __slots__ = ("pending", "index", "retry", "resend", "tries", "zero")
    tries: int
    zero: bytes

    def __init__(
        self,
        pending: Pending,
        index: int,
        retry: list[bytes] | None = None,
        resend: list[bytes] | None = None,
    ) -> None:
        self.pending = pending
        self.index = index
        self.retry = retry
        self.resend = resend

    def deliver(self, raw: bytes) -> None:
        p = self.pending
        p.parts[self.index] = raw
        p.left -= 1
        if not p.left:
            assert p.finish is not None
            p.value = p.finish(p.parts)


# None: a reply the proxy swallows; ``failover.Gone``: one whose request was sent again
Sink = Pending | Part | clustercmd.ScanSink | failover.Gone | None


class Txn:
    __slots__ = ("queued", "error", "slots", "write")

    def __init__(self) -> None:
        self.queued: list[list[bytes]] = []
        self.error = False
        self.slots: set[int] = set()
        self.write = False


class Session:
    def __init__(
        self,
        router: Router,
        client_id: int,
        shard_password: bytes | None = None,
        rng: random.Random | None = None,
        info: Callable[[], dict[str, list[tuple[str, Any]]]] | None = None,
        cursors: ScanCursors | None = None,
    ) -> None:
        self.router = router
        self.client_id = client_id
        self.shard_password = shard_password
        self.rng = rng or random.Random(client_id)
        self.info = info or (lambda: {})
        self.cursors = cursors or ScanCursors()  # the endpoint's, shared by its clients
        self.protocol = 2
        self.authenticated = not router.password_sha256
        # The ACL user (proxy/access.py): None without database users; acl_limited sends
        # every request through the checked path.
        self.user: User | None = None
        self.acl_limited = False
        if router.acl is not None:
            access.reset_login(self)
        self.name = b""
        self.closing = False
        self.out: list[bytes] = []  # bytes for the client, in order
        self.queue: deque[Pending] = deque()
        n = router.nshards
        self.sinks: list[deque[Sink]] = [deque() for _ in range(n)]
        self.up: list[list[Any]] = [[] for _ in range(n)]  # requests (argv or bytes) to send
        self.proto = [0] * n  # 0: the shard connection is closed
        self.gate = [0] * n  # _GATE_*: a new connection's AUTH not yet answered
        self.plain = [0] * n  # plain pending replies in each shard's sinks
        self.touched: list[int] = []  # shards with requests to send
        self.written = 0  # bit i: wrote to shard i since the last WAIT
        self.txn: Txn | None = None
        self.watched_slot = -1
        self.watched_shard = -1
        self.watch_lost = False
        self.prologue_errors: list[bytes] = []
        self.commands_processed = 0
        # The shared connections (the shell sets ``mux``): see the module docstring.
        self.mux = False
        self.mux_up: list[list[Any]] = [[] for _ in range(n)]
        self.mux_sinks: list[list[Sink]] = [[] for _ in range(n)]
        self.mux_n = [0] * n  # replies owed over each shared connection
        self.mux_touched: list[int] = []
        self.held: deque[list[bytes]] = deque()
        # The cluster API's hook: (slot) -> a MOVED reply, or None to serve the slot here.
        self.redirect: Callable[[int], bytes | None] | None = (
            router.cluster.redirect if router.cluster is not None else None
        )
        self.pubsub: pubsub.Subscriptions | None = None  # from the first (P|S)SUBSCRIBE
        self.readonly = False  # the cluster API's READONLY (reads of replicated slots)
        # The shell's pool: (shard) -> True when it attached an idle connection that is
        # already authenticated, in RESP2.
        self.acquire: Callable[[int], bool] = _fresh
        # Failover (proxy/failover.py): bit i of ``stalled``: requests for shard i are
        # parked in ``parked[i]`` (it is failing over); ``relocated``: shards whose
        # primary just moved (reads lost on their old connections are sent again);
        # ``unsure``: shards written since the last WAIT whose writes may have gone to a
        # primary that is no longer the shard's (WAIT counts 0 there).
        self.stalled = router.failing
        self.parked: dict[int, deque[failover.Parked]] = {}
        # Shards whose primary refused a request as demoted or fenced while the topology
        # still names it: their requests wait for a topology that changes the shard.
        self.demoted = 0
        self.relocated = 0
        self.unsure = 0
        # The last WAIT / WAITAOF sent to the shards (its pending reply) and when, by
        # ``clock_ms`` (the shell's monotonic ms): the endpoint's INFO shows WAITs in
        # flight and the oldest one's age, so a stalled WAIT is visible from outside.
        self.wait_pending: Pending | None = None
        self.wait_sent_ms = 0
        self.clock_ms: Callable[[], int] = _no_clock

    # -- inputs ------------------------------------------------------------------------

    def commands(self, cmds: list[list[bytes]], raw: bytes | None = None) -> None:
        """Requests from the client. ``raw``: exactly the bytes they were parsed from,
        when the shell knows it (forwarded as they are when all go to one shard)."""
        self.commands_processed += len(cmds)
        if self.held:
            self.held.extend(cmds)
            return
        self._run(cmds, raw)

    def _run(self, cmds: list[list[bytes]], raw: bytes | None) -> None:
        plain = 0
        plain_dest = -1  # shard * 2 + 1 when shared
        single = self.router.nshards == 1 and self.redirect is None
        # The keyed path below is _forward inlined (it runs for nearly every request).
        keyed = Kind.KEYED
        queue, proto, up, sinks, counts = self.queue, self.proto, self.up, self.sinks, self.plain
        # Re-read after any other handler: AUTH, MULTI, QUIT... change them.
        plain_ok = self._plain_ok()
        mux = self.mux and self.protocol == 2
        mux_n = self.mux_n
        for i, argv in enumerate(cmds):
            r = ROUTES.get(argv[0])
            if r is None or r.kind is Kind.CONTAINER:
                r = find_route(argv)
            if plain_ok and r is not None and r.kind is keyed:
                if not r.shared and any(mux_n):
                    self.held.extend(cmds[i:])  # a blocking command waits for them
                    plain = -1
                    break
                shard = 0 if single else self._keyed_shard(r, argv)
                if shard < 0:
                    continue
                p = Pending()
                if mux and r.shared and not sinks[shard]:
                    queue.append(p)
                    buf = self.mux_up[shard]
                    if not buf:
                        self.mux_touched.append(shard)
                    buf.append(argv)
                    self.mux_sinks[shard].append(p)
                    mux_n[shard] += 1
                    if r.write:
                        self.written |= 1 << shard
                        p.resend = argv
                    else:
                        p.retry = argv
                    dest = shard * 2 + 1
                    if plain == 0 or plain_dest == dest:
                        plain_dest = dest
                        plain += 1
                    continue
                queue.append(p)
                if not proto[shard]:
                    self._open(shard)
                buf = up[shard]
                if not buf:
                    self.touched.append(shard)
                buf.append(argv)
                sinks[shard].append(p)
                counts[shard] += 1
                if r.write:
                    self.written |= 1 << shard
                    p.resend = argv
                else:
                    p.retry = argv
                dest = shard * 2
                if plain == 0 or plain_dest == dest:
                    plain_dest = dest
                    plain += 1
                continue
            if self.closing:
                break
            if self._other(r, argv):
                self.held.extend(cmds[i:])
                plain = -1
                break
            plain_ok = self._plain_ok()
            mux = self.mux and self.protocol == 2
        if raw is not None and plain == len(cmds) and plain:
            buf = (self.mux_up if plain_dest & 1 else self.up)[plain_dest >> 1]
            del buf[-plain:]
            buf.append(raw)
        self._flush()

    def _plain_ok(self) -> bool:
        """May keyed requests take the plain path (no AUTH, MULTI, QUIT, Pub/Sub, or a
        shard failing over)?"""
        return (
            self.authenticated
            and self.txn is None
            and not self.closing
            and not self.pubsub
            and not self.acl_limited
            and not self.stalled
        )

    def _other(self, r: Route | None, argv: list[bytes]) -> bool:
        """Any request but a plain keyed one of an authenticated client outside MULTI.
        True: not run, held until the shared connections owe this client nothing."""
        if r is None:
            self._unknown(argv)
            return False
        if not self.authenticated and not r.no_auth:
            self._reply(NOAUTH)
            if self.txn is not None:
                self.txn.error = True
            return False
        if self.acl_limited:
            denied = access.denial(self, argv)
            if denied is not None:
                self._reply(denied)
                if self.txn is not None:
                    self.txn.error = True
                return False
        if (r.kind not in _SHAREABLE or not r.shared) and any(self.mux_n):
            return True
        if self.pubsub is not None and pubsub.refused(self, r):
            return False
        if self.txn is not None and r.kind not in _IMMEDIATE and r.name not in _IMMEDIATE_NAMES:
            self._reply(txn.queue_command(self, r, argv))
            return False
        if r.kind is Kind.KEYED:
            shard = 0 if self.router.nshards == 1 and self.redirect is None else -1
            if shard < 0:
                shard = self._keyed_shard(r, argv)
                if shard < 0:
                    return False
            self._forward(shard, argv, r.write, r.shared, True)
            return False
        _HANDLERS[r.kind](self, r, argv)
        return False

    def replies(self, shard: int, raws: list[bytes]) -> None:
        """Complete replies from shard ``shard``'s connection, in order."""
        sinks = self.sinks[shard]
        for raw in raws:
            # nothing owed: a RESP3 push (out of band), or a shard's stray; or a message
            if not sinks or (raw[0] == 0x3E and pubsub.is_message(raw)):
                if raw[0] == 0x3E:
                    pubsub.deliver(self, raw)
                continue
            s = sinks.popleft()
            if s.__class__ is Pending:
                self.plain[shard] -= 1
                s.value = raw
            elif s is None:
                if is_error(raw):
                    self.prologue_errors.append(raw)
                if self.gate[shard] == _GATE_SENT:  # AUTH answered: send what waited
                    self.gate[shard] = 0
                    if self.up[shard]:
                        self.touched.append(shard)
            else:
                s.deliver(raw)  # type: ignore[union-attr]
        self._flush()

    def replies_checked(self, shard: int, raws: list[bytes]) -> None:
        """``replies``, when some are refusals (``failover.refused``): a refused request
        is sent again with those in flight behind it (``failover.replies_checked``)."""
        failover.replies_checked(self, shard, raws)

    def mux_refused(self, shard: int, sink: Sink, raw: bytes, later: list[Sink]) -> list[Sink]:
        """A refusal from the shared connection to ``shard`` for ``sink``; ``later``: this
        client's sinks still owed there, in order. Returns those sent again (the shell
        leaves ``GONE`` in their place); ``mux_settled`` follows."""
        taken = failover.take(self, shard, sink, raw, later)
        if taken is None:
            self.mux_reply(shard, sink, failover.as_error(raw))
            return []
        self.mux_n[shard] -= 1
        return taken

    def lost(self, shard: int) -> None:
        """The shard connection broke: what it owed gets an error (reads are sent again
        when the shard is failing over: proxy/failover.py); the next request to the shard
        opens a new connection."""
        sinks = self.sinks[shard]
        self.plain[shard] = 0
        retrying = failover.retrying(self, shard)
        if not retrying:  # (else ``set_router`` marked what it must: failover.unsure)
            self.unsure |= self.written & (1 << shard)
        again: list[tuple[list[bytes], Sink]] = []
        while sinks:
            s = sinks.popleft()
            argv = failover.retry_argv(s) if retrying else None
            if argv is not None:
                again.append((argv, s))
            elif s.__class__ is Pending:
                s.value = LOST
            elif s is not None:
                s.deliver(LOST)  # type: ignore[union-attr]
        self.proto[shard] = 0
        self.gate[shard] = 0
        self.up[shard].clear()
        if self.watched_shard == shard:
            self.watch_lost = True
        pubsub.renew(self, shard)
        failover.requeue(self, shard, again)
        self._flush()

    def mux_lost(self, shard: int, sinks: list[Sink]) -> None:
        """The shared connection to ``shard`` broke owing this client ``sinks`` (in
        order): each gets an error, or is sent again as in ``lost``."""
        self.mux_n[shard] -= len(sinks)
        retrying = failover.retrying(self, shard)
        if not retrying:
            self.unsure |= self.written & (1 << shard)
        again: list[tuple[list[bytes], Sink]] = []
        for sink in sinks:
            argv = failover.retry_argv(sink) if retrying else None
            if argv is not None:
                again.append((argv, sink))
            else:
                failover.fail(sink, LOST)
        failover.requeue(self, shard, again)

    def mux_reply(self, shard: int, sink: Sink, raw: bytes) -> None:
        """One reply (or ``LOST``) from the shared connection to ``shard``, for this
        client; ``mux_settled`` follows a batch of them."""
        self.mux_n[shard] -= 1
        if sink.__class__ is Pending:
            sink.value = raw
        elif sink is not None:
            sink.deliver(raw)  # type: ignore[union-attr]

    def mux_settled(self) -> None:
        """After replies from shared connections: deliver what is ready, and run the held
        requests once the shared connections owe this client nothing."""
        if self.held and not any(self.mux_n):
            cmds = list(self.held)
            self.held.clear()
            self._run(cmds, None)
            return
        q = self.queue  # _flush, inlined
        out = self.out
        while q and q[0].value is not None:
            out.append(q.popleft().value)  # type: ignore[arg-type]

    def take_mux(self, shard: int) -> tuple[bytes, list[Sink]]:
        """The bytes for the shared connection to ``shard`` and the sinks of their
        replies, in order."""
        buf, sinks = self.mux_up[shard], self.mux_sinks[shard]
        self.mux_sinks[shard] = []
        if len(buf) == 1 and buf[0].__class__ is bytes:
            data: bytes = buf.pop()
        else:
            data = b"".join(x if x.__class__ is bytes else encode_command(x) for x in buf)
            buf.clear()
        return data, sinks

    def take_mux_touched(self) -> list[int]:
        t = self.mux_touched
        self.mux_touched = []
        return t

    def can_pass(self, shard: int) -> bool:
        """Is every reply the client is owed a plain one from this shard's connection, in
        order? Then the shard's bytes may go to the client as they are (``passed``)."""
        n = self.plain[shard]
        return (
            n > 0
            and n == len(self.queue) == len(self.sinks[shard])
            and (self.pubsub is None or not self.pubsub.held[shard])  # messages come too
        )

    def pass_through(self, shard: int, counter: ReplyCounter, data: bytes) -> bool:
        """A read from the client's dedicated connection to ``shard`` handed on unchanged
        when it is whole replies the client is owed there and none is a refusal the
        failover path must see (-READONLY, fenced); True when it was (``passed``)."""
        if not self.can_pass(shard):
            return False
        n = counter.count(data)
        if (
            n is None
            or n > self.in_flight(shard)
            or failover.RO_MARK in data
            or failover.FENCED_MARK in data
        ):
            return False
        self.passed(shard, data, n)
        return True

    def dedicated_read(
        self,
        shard: int,
        counter: ReplyCounter,
        splitter: ReplySplitter,
        data: bytes,
        stale: Callable[[int], None],
    ) -> None:
        """A read from the client's dedicated connection to ``shard`` (the asyncio shell's
        and the simulator's): passed through unchanged when it can be, else split into
        replies. When a demoted or fenced primary refused a request, ``stale(shard)``
        first (the topology is stale: proxy/failover.py), then the refused requests wait
        to be sent again. Raises ``ReplyProtocolError`` / ``ValueError`` on a broken
        stream."""
        split = splitter.pending_bytes()  # a reply may have begun in an earlier read
        if not split and self.pass_through(shard, counter, data):
            return
        raws = splitter.feed(data)
        if (split or failover.RO_MARK in data or failover.FENCED_MARK in data) and any(
            map(failover.refused, raws)
        ):
            stale(shard)
            self.replies_checked(shard, raws)
        else:
            self.replies(shard, raws)

    def passed(self, shard: int, data: bytes, n: int) -> None:
        """``data``, exactly ``n`` complete replies from the shard (``can_pass`` held),
        goes to the client unchanged."""
        sinks, q = self.sinks[shard], self.queue
        assert n <= len(sinks)
        if n == len(sinks):
            sinks.clear()
            q.clear()
        else:
            for _ in range(n):
                sinks.popleft()
                q.popleft()
        self.plain[shard] -= n
        self.out.append(data)

    # -- outputs -----------------------------------------------------------------------

    def take(self, shard: int) -> bytes:
        """The bytes to write to shard ``shard``'s connection now."""
        buf = self.up[shard]
        if self.gate[shard]:
            return self._take_gated(shard)
        if len(buf) == 1 and buf[0].__class__ is bytes:  # one read forwarded as it came
            data: bytes = buf.pop()
            return data
        data = b"".join(x if x.__class__ is bytes else encode_command(x) for x in buf)
        buf.clear()
        return data

    def _take_gated(self, shard: int) -> bytes:
        """A new connection's AUTH goes alone: a shard parses a whole read with the limits
        of an unauthenticated client (a request of more than 10 arguments would fail), so
        what follows waits for AUTH's reply (``replies``)."""
        if self.gate[shard] == _GATE_QUEUED:
            self.gate[shard] = _GATE_SENT
            return encode_command(self.up[shard].pop(0))
        return b""

    def take_touched(self) -> list[int]:
        t = self.touched
        self.touched = []
        return t

    def in_flight(self, shard: int) -> int:
        return len(self.sinks[shard])

    def reusable(self, shard: int) -> bool:
        """May the shard connection serve another client (nothing owed, no WATCH, RESP2)?"""
        return (
            not self.sinks[shard]
            and self.proto[shard] == 2
            and self.watched_shard != shard
            and not self.up[shard]
            and (self.pubsub is None or not self.pubsub.held[shard])
        )

    # -- plumbing ------------------------------------------------------------------------

    def _reply(self, value: bytes) -> None:
        if self.queue:
            self.queue.append(Pending(value))
        else:
            self.out.append(value)

    def _flush(self) -> None:
        q = self.queue
        out = self.out
        while q and q[0].value is not None:
            out.append(q.popleft().value)  # type: ignore[arg-type]

    def _open(self, shard: int) -> None:
        """The first request to a closed shard connection: authenticate (and HELLO 3)."""
        self.proto[shard] = 2
        if not self.acquire(shard) and self.shard_password is not None:
            self._send(shard, [b"AUTH", self.shard_password], None)
            self.gate[shard] = _GATE_QUEUED
        if self.protocol == 3:
            self._send(shard, [b"HELLO", b"3"], None)
            self.proto[shard] = 3

    def _send(
        self, shard: int, argv: list[bytes] | bytes, sink: Sink, shared: bool = False
    ) -> None:
        """Queue a request for the shard; ``shared``: over the shared connection when
        this client's dedicated one owes nothing (and its protocol is RESP2). Parked
        instead while the shard fails over (proxy/failover.py)."""
        if self.stalled >> shard & 1:
            failover.park(self, shard, argv, sink, shared)
            return
        if shared and self.mux and self.protocol == 2 and not self.sinks[shard]:
            buf = self.mux_up[shard]
            if not buf:
                self.mux_touched.append(shard)
            buf.append(argv)
            self.mux_sinks[shard].append(sink)
            self.mux_n[shard] += 1
            return
        if not self.proto[shard]:
            self._open(shard)
        buf = self.up[shard]
        if not buf:
            self.touched.append(shard)
        buf.append(argv)
        self.sinks[shard].append(sink)
        if sink.__class__ is Pending:
            self.plain[shard] += 1

    def _forward(
        self, shard: int, argv: list[bytes], write: bool, shared: bool = False, retry: bool = False
    ) -> None:
        """``retry``: the request may be sent again: a read if lost while the shard fails
        over, a write if a demoted or fenced primary refused it (proxy/failover.py)."""
        p = Pending()
        if retry:
            if write:
                p.resend = argv
            else:
                p.retry = argv
        self.queue.append(p)
        self._send(shard, argv, p, shared)
        if write:
            self.written |= 1 << shard

    def fan(
        self,
        shards: list[int],
        requests: list[list[bytes]],
        finish: Callable[[list[bytes]], bytes],
        shared: bool = False,
        retry: bool = False,
        resend: bool = False,
        zero: bytes | None = None,
    ) -> Pending:
        """Send ``requests[i]`` to ``shards[i]``; the reply is ``finish`` of theirs.
        ``shared``: the requests hold no session state and may go over the shared
        connections (only for kinds in ``_SHAREABLE``). ``retry``: reads, sent again if
        lost while their shard fails over; ``resend``: writes, sent again if a demoted or
        fenced primary refused them; ``zero``: WAIT's zero (``Part.zero``)."""
        p = Pending()
        p.parts = [b""] * len(shards)
        p.left = len(shards)
        p.finish = finish
        self.queue.append(p)
        for i, (shard, argv) in enumerate(zip(shards, requests, strict=True)):
            part = Part(p, i, argv if retry else None, argv if resend else None)
            if zero is not None:
                part.zero = zero
            self._send(shard, argv, part, shared)
        return p

    def merged(
        self,
        shards: list[int],
        argv: list[bytes],
        kind: Merge,
        shared: bool = False,
        retry: bool = False,
        resend: bool = False,
    ) -> None:
        rng = self.rng
        self.fan(
            shards,
            [argv] * len(shards),
            lambda parts: merge(kind, parts, rng),
            shared,
            retry,
            resend,
        )

    def slot_of_keys(self, keys: list[bytes]) -> int:
        """The one slot of ``keys``; _NO_KEYS or _CROSS."""
        if not keys:
            return _NO_KEYS
        slot = slot_of(keys[0])
        for k in keys[1:]:
            if slot_of(k) != slot:
                return _CROSS
        return slot

    def _keyed_shard(self, r: Route, argv: list[bytes]) -> int:
        """The shard of the request's keys (0 for none); -1 when answered here already."""
        ka = r.key_at
        if ka:
            if len(argv) <= ka:
                return 0
            slot = slot_of(argv[ka])
        else:
            slot = self.slot_of_keys(keys_of(r, argv))
            if slot == _NO_KEYS:
                return 0
            if slot == _CROSS:
                self._reply(CROSSSLOT)
                return -1
        if self.redirect is not None:
            moved = self.redirect(slot)
            if moved is not None and not (self.readonly and not r.write and self._reads(slot)):
                self._reply(moved)
                return -1
        return self.router.shard_of[slot]

    def _reads(self, slot: int) -> bool:
        """After READONLY: does this endpoint, a replica of ``slot``'s master in the
        cluster API, serve reads of it (proxy/clusterapi.py)?"""
        api = self.router.cluster
        return api is not None and api.reads(slot)

    def _unknown(self, argv: list[bytes]) -> None:
        self._reply(local.unknown_command(argv))
        if self.txn is not None:
            self.txn.error = True

    def all_shards(self) -> list[int]:
        return list(range(self.router.nshards))

    def keyspace_shards(self) -> list[int]:
        """The shards DBSIZE, KEYS, SCAN, FLUSHALL... cover: with the cluster API, those
        whose slots this endpoint owns (as a Redis Cluster node covers its own)."""
        return self.router.keyspace_shards

    def set_router(self, router: Router) -> None:
        """A new topology with the same shard count. The shell then drops the connections
        of shards whose primary moved (``lost``: their reads are sent again) and calls
        ``resume`` (what waited for a failing shard goes to its new primary)."""
        assert router.nshards == self.router.nshards, "resharding is not supported"
        self.unsure |= failover.unsure(self.router, router, self.written)
        moved, epochs = failover.moved_shards(self.router, router)
        self.relocated |= moved
        # A refused request waits for a topology that changes its shard (or fails it).
        self.demoted &= ~(moved | epochs | router.failing)
        self.router = router
        self.redirect = router.cluster.redirect if router.cluster is not None else None
        self.stalled |= router.failing

    def resume(self) -> None:
        """After ``set_router`` and the connections it dropped (proxy/failover.py)."""
        failover.resume(self)

    def tick(self, now_ms: int) -> None:
        """While a shard fails over: the bound on the wait of parked requests."""
        failover.tick(self, now_ms)

    def wait_age_ms(self, now_ms: int) -> int | None:
        """How long this client's WAIT / WAITAOF has waited for its shards' replies
        (``clock_ms`` time), or None when none is in flight."""
        p = self.wait_pending
        if p is None or p.value is not None:
            return None
        return now_ms - self.wait_sent_ms


def _fresh(shard: int) -> bool:
    return False


def _no_clock() -> int:
    return 0


def _local(s: Session, r: Route, argv: list[bytes]) -> None:
    s._reply(local.run(s, r, argv))


def _refused(s: Session, r: Route, argv: list[bytes]) -> None:
    s._reply(r.refusal)


def _container(s: Session, r: Route, argv: list[bytes]) -> None:
    if r.cmd is not None and not r.cmd.container:  # COMMAND alone: the whole table
        s._forward(0, argv, False, True)
        return
    s._reply(local.arity_error(r.name))  # CLIENT, CONFIG... without a subcommand


# Run at once inside a transaction (Redis's MULTI-immediate commands).
_IMMEDIATE = frozenset({Kind.MULTI, Kind.EXEC, Kind.DISCARD, Kind.WATCH})
_IMMEDIATE_NAMES = frozenset({"quit", "reset"})
# What may run while the shared connections owe the client replies: it sends nothing,
# or only over the shared connections when the client's dedicated ones owe nothing
# (``shared=True``). Anything else (WAIT, EXEC, WATCH, Pub/Sub...) is held until then, so
# a client's requests to a shard are never in flight on two connections at once.
_SHAREABLE = frozenset(
    {
        Kind.KEYED,
        Kind.SPLIT,
        Kind.FANOUT,
        Kind.SCAN,
        Kind.INFO,
        Kind.LOCAL,
        Kind.REFUSED,
        Kind.CONTAINER,
        Kind.MULTI,
    }
)

_HANDLERS: dict[Kind, Callable[[Session, Route, list[bytes]], None]] = {
    Kind.LOCAL: _local,
    Kind.REFUSED: _refused,
    Kind.CONTAINER: _container,
    Kind.SPLIT: fanout.split,
    Kind.FANOUT: fanout.fan_out,
    Kind.SCAN: fanout.scan,
    Kind.WAIT: fanout.wait,
    Kind.INFO: fanout.info,
    Kind.MULTI: txn.checked(txn.multi),
    Kind.EXEC: txn.checked(txn.exec_),
    Kind.DISCARD: txn.checked(txn.discard),
    Kind.WATCH: txn.checked(txn.watch),
    Kind.UNWATCH: txn.checked(txn.unwatch),
    Kind.PUBSUB: pubsub.handle,
    Kind.CLUSTER: clustercmd.handle,
}
