"""This member's side of membership changes: who the peers are and where, joining a
cluster, and leaving it when removed.

Owns: the reaction to applied configuration entries (learning a new member's address
from the change's context, telling a removed member with a ``REMOVED`` frame, forgetting
its address later, asking the host to exit when this member is the one removed),
refreshing peer addresses from the member records, and the ``--join`` loop. Decisions
about *which* change to make live in cluster/reconcile.py; this module only follows the
log. It is given narrow ports -- the peer links (``Peers``), a view of the metadata, and
``Exit`` -- never the member or the host.

States of this member: JOINING (``--join`` given, not a voter yet: asking, then waiting)
-> MEMBER -> REMOVED (exits after ``REMOVED_EXIT_DELAY_MS``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from ackdb.cluster.metadata import MetadataStore, decode_member_context
from ackdb.consensus import ConfChangeKind, DecodeError, Entry, decode_conf_entry
from ackdb.node.options import AgentOptions
from ackdb.node.peerauth import WRONG_SECRET_ERROR, join_proof
from ackdb.node.peerframes import encode_removed
from ackdb.node.service import Exit
from ackdb.resp.client import Client as AsyncClient
from ackdb.resp.client import ReplyError
from ackdb.server.log import Log

# A removed member waits this long before exiting, so the commit reaches the others (ms);
# the others forget its address after twice that.
REMOVED_EXIT_DELAY_MS = 1000
JOIN_RETRY_MIN_MS = 200
JOIN_RETRY_MAX_MS = 2000


class Peers(Protocol):
    """The peer links (transport.Transport)."""

    def set_address(self, peer_id: str, addr: str, pinned: bool = False) -> None: ...

    def send(self, peer_id: str, frame: bytes) -> bool: ...

    def forget(self, peer_id: str) -> None: ...


class Membership:
    def __init__(
        self,
        opts: AgentOptions,
        log: Log,
        peers: Peers,
        meta: Callable[[], MetadataStore],
        exit: Exit,
        join_key: bytes,
    ) -> None:
        self.opts = opts
        self.node_id = opts.node_id
        self.log = log
        self.peers = peers
        self.meta = meta
        self.exit = exit
        self.join_key = join_key
        self.removing = False

    def on_conf_entry(self, e: Entry) -> None:
        try:
            cc, conf = decode_conf_entry(e.data)
        except DecodeError:
            return
        self.log.notice(f"Configuration at index {e.index}: voters {', '.join(conf.voters)}")
        if cc is None:
            return
        t = self.peers
        if cc.kind is ConfChangeKind.ADD_NODE:
            addrs = decode_member_context(cc.context)
            if addrs is not None:
                t.set_address(cc.node_id, addrs[1])
        elif cc.node_id == self.node_id:
            self.removed(f"configuration entry {e.index}")
        else:
            # Tell it (it may never see the commit), then stop dialling it.
            t.send(cc.node_id, encode_removed(cc.node_id))
            loop = asyncio.get_running_loop()
            loop.call_later(2 * REMOVED_EXIT_DELAY_MS / 1000, self._forget, cc.node_id)

    def _forget(self, node_id: str) -> None:
        if node_id not in self.meta().voters:
            self.peers.forget(node_id)

    def removed(self, why: str) -> None:
        if self.removing:
            return
        self.removing = True
        self.log.warning(f"This node was removed from the cluster ({why}); exiting")
        asyncio.get_running_loop().call_later(REMOVED_EXIT_DELAY_MS / 1000, self.exit, 0, "removed")

    def sync_addresses(self) -> None:
        """Peer addresses from the member records (pinned --bootstrap ones stay)."""
        for m in self.meta().members.values():
            if m.cluster_addr and m.id != self.node_id:
                self.peers.set_address(m.id, m.cluster_addr)

    async def join(self) -> None:
        """Ask the member at ``--join`` (its client port) to add us, until we are a voter."""
        o = self.opts
        assert o.join is not None
        delay_ms = JOIN_RETRY_MIN_MS
        asked = False
        attempts = 0
        proof = join_proof(self.join_key, o.node_id, o.client_addr, o.cluster_addr).hex()
        while self.node_id not in self.meta().voters:
            if not asked:
                try:
                    c = await AsyncClient.connect(o.join, timeout_s=2)
                    try:
                        await asyncio.wait_for(
                            c.call("CLUSTER.JOIN", o.node_id, o.client_addr, o.cluster_addr, proof),
                            o.request_timeout_ms / 1000 + 1,
                        )
                    finally:
                        await c.close()
                    asked = True
                    self.log.notice(f"Asked {o.join} to add this node; waiting to be a voter")
                except ReplyError as e:
                    if str(e).startswith(WRONG_SECRET_ERROR):
                        self.log.warning(
                            f"Cannot join through {o.join}: the cluster refused this node's "
                            f"cluster secret ({e}). This node's secret is not that cluster's: "
                            "remove this node's data directory (it holds no data yet) and start "
                            "it again with --cluster-secret-file holding the cluster's secret "
                            "('ackdb cluster secret --dir DATA' on a member prints it)"
                        )
                        self.exit(1, "wrong cluster secret")
                        return
                    attempts += 1
                    say = self.log.notice if attempts == 1 else self.log.verbose
                    say(f"Join through {o.join} not done yet (retrying): {e}")
                except (OSError, ConnectionError, TimeoutError) as e:
                    attempts += 1
                    say = self.log.notice if attempts == 1 else self.log.verbose
                    say(f"Join through {o.join} not done yet (retrying): {e}")
            await asyncio.sleep(delay_ms / 1000)
            delay_ms = min(JOIN_RETRY_MAX_MS, delay_ms * 2)
        self.log.notice("This node is now a voter")
