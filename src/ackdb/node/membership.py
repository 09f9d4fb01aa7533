"""This member's side of membership changes: who the peers are and where, joining a
cluster, and leaving it when removed.

Owns: the reaction to applied configuration entries (learning a new member's address
from the change's context, telling a removed member with a ``REMOVED`` frame, forgetting
its address later, exiting when this member is the one removed), refreshing peer
addresses from the member records, and the ``--join`` loop. Decisions about *which*
change to make live in reconcile.py; this module only follows the log.

States of this member: JOINING (``--join`` given, not a voter yet: asking, then waiting)
-> MEMBER -> REMOVED (exits after ``REMOVED_EXIT_DELAY_MS``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ackdb.cluster.metadata import decode_member_context
from ackdb.consensus import ConfChangeKind, DecodeError, Entry, decode_conf_entry
from ackdb.node.peerframes import encode_removed
from ackdb.resp.client import Client as AsyncClient
from ackdb.resp.client import ReplyError

if TYPE_CHECKING:
    from ackdb.node.agent import Agent

# A removed member waits this long before exiting, so the commit reaches the others (ms);
# the others forget its address after twice that.
REMOVED_EXIT_DELAY_MS = 1000
JOIN_RETRY_MIN_MS = 200
JOIN_RETRY_MAX_MS = 2000


class Membership:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.removing = False

    def on_conf_entry(self, e: Entry) -> None:
        a = self.agent
        try:
            cc, conf = decode_conf_entry(e.data)
        except DecodeError:
            return
        a.log.notice(f"Configuration at index {e.index}: voters {', '.join(conf.voters)}")
        t = a.transport
        if cc is None or t is None:
            return
        if cc.kind is ConfChangeKind.ADD_NODE:
            addrs = decode_member_context(cc.context)
            if addrs is not None:
                t.set_address(cc.node_id, addrs[1])
        elif cc.node_id == a.node_id:
            self.removed(f"configuration entry {e.index}")
        else:
            # Tell it (it may never see the commit), then stop dialling it.
            t.send(cc.node_id, encode_removed(cc.node_id))
            assert a.loop is not None
            a.loop.call_later(2 * REMOVED_EXIT_DELAY_MS / 1000, self._forget, cc.node_id)

    def _forget(self, node_id: str) -> None:
        a = self.agent
        if node_id not in a.meta.voters and a.transport is not None:
            a.transport.forget(node_id)

    def removed(self, why: str) -> None:
        if self.removing:
            return
        self.removing = True
        a = self.agent
        a.log.warning(f"This node was removed from the cluster ({why}); exiting")
        assert a.loop is not None
        a.loop.call_later(REMOVED_EXIT_DELAY_MS / 1000, a.stop, 0, "removed")

    def sync_addresses(self) -> None:
        """Peer addresses from the member records (pinned --bootstrap ones stay)."""
        a = self.agent
        if a.transport is None:
            return
        for m in a.meta.members.values():
            if m.cluster_addr and m.id != a.node_id:
                a.transport.set_address(m.id, m.cluster_addr)

    async def join(self) -> None:
        """Ask the member at ``--join`` (its client port) to add us, until we are a voter."""
        a = self.agent
        o = a.opts
        assert o.join is not None
        delay_ms = JOIN_RETRY_MIN_MS
        asked = False
        attempts = 0
        while a.node_id not in a.meta.voters:
            if not asked:
                try:
                    c = await AsyncClient.connect(o.join, timeout_s=2)
                    try:
                        await asyncio.wait_for(
                            c.call("CLUSTER.JOIN", o.node_id, o.client_addr, o.cluster_addr),
                            o.request_timeout_ms / 1000 + 1,
                        )
                    finally:
                        await c.close()
                    asked = True
                    a.log.notice(f"Asked {o.join} to add this node; waiting to be a voter")
                except (OSError, ConnectionError, ReplyError, TimeoutError) as e:
                    attempts += 1
                    say = a.log.notice if attempts == 1 else a.log.verbose
                    say(f"Join through {o.join} not done yet (retrying): {e}")
            await asyncio.sleep(delay_ms / 1000)
            delay_ms = min(JOIN_RETRY_MAX_MS, delay_ms * 2)
        a.log.notice("This node is now a voter")
