"""Clients of the failover simulator, writing and WAITing through the real endpoint.

Owns: ``FoClient`` -- one application: for each write it picks a node's endpoint
(sim/fo_endpoint.py, the product's ``Session`` behind a simulated shell; a connection is
kept while it picks the same endpoint), sends ``SET key v<id>`` as RESP, and once the
reply is ``+OK`` sends ``WAIT n timeout``; it reports to the checker what the replies
say: the acknowledgement (any other reply to SET, -TRYAGAIN included, is a refusal) and
WAIT's count. A write whose replies have not come within ``REQUEST_TIMEOUT_MS`` is
abandoned with its connection (closed); an endpoint that dies closes it too.
Never does IO and reads no real clock.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ackdb.proxy.replies import ReplySplitter
from ackdb.resp.request import encode_command

from .fo_endpoint import CLIENT_LATENCY_MS
from .fo_epconns import EpClient, Peer

if TYPE_CHECKING:
    from ackdb.sim.failover_world import FailoverWorld

# Past the low profile's bound on a failing shard's wait (8 s) and WAIT's longest timeout.
REQUEST_TIMEOUT_MS = 10_000
KEYS = 20
_OK = b"+OK\r\n"


class FoClient(Peer):
    def __init__(self, w: FailoverWorld, cid: int, rng: random.Random) -> None:
        self.w = w
        self.cid = cid
        self.rng = rng
        self.active = True
        self.busy_since: int | None = None
        self.conn: EpClient | None = None
        self.splitter = ReplySplitter()
        self.last_t = 0  # when its last bytes reach the endpoint (in order)
        self.stage = ""  # "set" | "wait": the reply awaited
        self.wid = 0  # the write being made
        self.completed = 0  # writes acknowledged and WAITed
        self.wait_n = 1

    def schedule(self) -> None:
        self.w.queue.schedule(self.rng.randint(3, 40), self.step)

    def step(self) -> None:
        w = self.w
        if self.busy_since is not None and w.now - self.busy_since >= REQUEST_TIMEOUT_MS:
            self._hang_up()  # abandoned: the answer never came
            self._done()
        if self.active or self.busy_since is not None:
            self.schedule()
        if not self.active or self.busy_since is not None:
            return
        via = self.rng.choice(sorted(w.agents))
        ep = w.endpoints.get(via)
        if ep is None or not ep.listening:
            return  # the connection is refused
        if self.conn is None or self.conn.ep is not ep:
            self._hang_up()
            self.conn = ep.accept(self)
        self.busy_since = w.now
        self.wid = w.repl.next_write
        w.repl.next_write += 1
        self.wait_n = self.rng.randint(1, w.replicas)
        key = b"k%d" % self.rng.randrange(KEYS)
        self.stage = "set"
        self._send([b"SET", key, b"v%d" % self.wid])

    def _send(self, argv: list[bytes]) -> None:
        c = self.conn
        assert c is not None
        w = self.w
        t = max(w.now + self.rng.randint(*CLIENT_LATENCY_MS), self.last_t)
        self.last_t = t
        w.queue.schedule(t - w.now, c.ep.from_client, c, encode_command(argv))

    def _hang_up(self) -> None:
        c = self.conn
        if c is None:
            return
        self.conn = None
        self.splitter = ReplySplitter()
        t = max(self.w.now + self.rng.randint(*CLIENT_LATENCY_MS), self.last_t)
        self.w.queue.schedule(t - self.w.now, c.ep.client_closed, c)

    def _done(self) -> None:
        self.busy_since = None
        self.stage = ""

    # -- Peer: what the endpoint sends --

    def on_closed(self, conn: EpClient) -> None:
        if conn is self.conn:
            self.conn = None
            self.splitter = ReplySplitter()
            self._done()  # the write's outcome is unknown: abandoned

    def on_bytes(self, conn: EpClient, data: bytes) -> None:
        if conn is not self.conn:
            return
        for raw in self.splitter.feed(data):
            self._reply(raw)

    def _reply(self, raw: bytes) -> None:
        w = self.w
        assert self.stage, f"client {self.cid}: a reply nothing was asked for: {raw!r}"
        if self.stage == "set":
            if raw != _OK:
                assert raw[:1] == b"-", raw
                w.checker.outcome.refused += 1  # -TRYAGAIN: failing over, fenced, lost
                self._done()
                return
            w.checker.on_ack(self.wid)
            self.stage = "wait"
            timeout = self.rng.choice((50, 200, 1000))
            self._send([b"WAIT", b"%d" % self.wait_n, b"%d" % timeout])
            return
        if raw[:1] == b":":
            w.checker.on_wait(self.wid, int(raw[1:-2]))
            self.completed += 1
        self._done()
