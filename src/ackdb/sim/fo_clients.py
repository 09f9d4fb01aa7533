"""Clients of the failover simulator, writing and WAITing through a simulated proxy.

Owns: ``FoClient`` -- one application connection: it picks a node's endpoint, which
routes by that node's applied metadata (the proxy follows the metadata: a shard in
failover answers ``-TRYAGAIN``, a primary it cannot reach fails the request), sends
``SET key v<id>`` then ``WAIT n timeout`` to the primary on its own connection there, and
reports each acknowledgement and WAIT count to the checker. A request to a paused
process waits for it; one whose process died is abandoned after ``REQUEST_TIMEOUT_MS``.
Never does IO and reads no real clock.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ackdb.cluster.databases import ShardState
from ackdb.sim.fo_shard import ShardNode
from ackdb.sim.replication import Client

if TYPE_CHECKING:
    from ackdb.sim.failover_world import FailoverWorld

REQUEST_TIMEOUT_MS = 3000
KEYS = 20


class FoClient:
    def __init__(self, w: FailoverWorld, cid: int, rng: random.Random) -> None:
        self.w = w
        self.rng = rng
        self.conn = Client(cid)
        w.conns[cid] = self
        self.active = True
        self.busy_since: int | None = None
        self.token = 0
        self.wid = 0  # the write the pending WAIT covers
        self.completed = 0  # writes acknowledged and WAITed
        self.wait_n = 1

    def schedule(self) -> None:
        self.w.queue.schedule(self.rng.randint(3, 40), self.step)

    def step(self) -> None:
        w = self.w
        if self.busy_since is not None and w.now - self.busy_since >= REQUEST_TIMEOUT_MS:
            self._done()  # abandoned: the answer never came
        if self.active or self.busy_since is not None:
            self.schedule()
        if not self.active or self.busy_since is not None:
            return
        via = self.rng.choice(sorted(w.agents))
        if not w.node_up(via):
            return  # the endpoint refuses the connection
        rec = w.shard_record(via)
        if rec is None:
            return
        if rec.state is not ShardState.OK:
            w.checker.outcome.refused += 1  # TRYAGAIN: the shard is failing over
            return
        primary = rec.primary.node
        if w.cut(via, primary) or primary not in w.shards:
            return
        self.busy_since = w.now
        self.token += 1
        self.wid = w.repl.next_write
        w.repl.next_write += 1
        self.wait_n = self.rng.randint(1, w.replicas)
        token = self.token
        w.queue.schedule(self.rng.randint(1, 3), self._deliver, primary, token)

    def _done(self) -> None:
        self.busy_since = None
        self.token += 1
        if self.conn.waiting is not None:  # abandoned: a new connection for the next one
            old = self.conn
            if old.node is not None:
                old.node.clients.pop(old.cid, None)
            self.conn = self.w.new_conn(self)

    def _deliver(self, node: str, token: int) -> None:
        w = self.w
        shard = w.shards[node]
        if token == self.token and shard.alive:
            shard.run_or_hold(lambda: self._request(shard, token))

    def _request(self, shard: ShardNode, token: int) -> None:
        w, node = self.w, shard.name
        if token != self.token or not shard.alive:
            return
        c = self.conn
        if c.node is not shard or c.cid not in shard.clients:
            if c.node is not None:
                c.node.clients.pop(c.cid, None)
            shard.attach(c)
        key = b"k%d" % self.rng.randrange(KEYS)
        reply = shard.command(c, [b"SET", key, b"v%d" % self.wid])
        if reply is None:
            # Held by FAILOVER's write pause: this connection is given up (its held
            # command is never re-run here, so it never executes).
            c.waiting = ("held", 0, self.wid)
            w.checker.outcome.refused += 1
            self._done()
            return
        if not reply.startswith(b"+OK"):
            assert reply[:6] in (
                b"-TRYAG",
                b"-READO",
                b"-LOADI",
                b"-MASTE",
            ), reply
            w.checker.outcome.refused += 1
            shard.end_pass()
            self._done()
            return
        w.checker.on_ack(w.now, node, shard.epoch, self.wid)
        timeout = self.rng.choice((50, 200, 1000))
        c.waiting = ("wait", c.woff, self.wid)
        reply = shard.command(c, [b"WAIT", b"%d" % self.wait_n, b"%d" % timeout])
        shard.end_pass()
        if reply is not None:
            self.on_wait_reply(shard, reply)

    def on_wait_reply(self, shard: ShardNode, data: bytes) -> None:
        self.conn.waiting = None
        if self.busy_since is None:
            return
        if data.startswith(b":"):
            self.w.checker.on_wait(self.wid, int(data[1:-2]))
            self.completed += 1
        self._done()
