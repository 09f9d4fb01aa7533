"""Connections peers dialled to this member (the inbound half of transport.py).

Owns: one accepted connection -- its handshake (peerauth.py's ``Acceptor``, within
``peerauth.HANDSHAKE_TIMEOUT_MS``), then reading and checking its frames and handing each
to the transport's ``on_frame``. A refused handshake is counted and logged through the
transport's log budget; after it, a bad frame, a protocol error or an exception while
handling one closes that connection with a log line -- never the node. Links are
one-way: after the handshake nothing is ever written here.

States: HANDSHAKE (``auth`` set) -> LINKED (``reader`` set) -> closed. At most
``INBOUND_MAX_CONNECTIONS`` at once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ackdb.node import peerauth
from ackdb.node.peerauth import Acceptor, Action, Authenticated, Send
from ackdb.node.peerframes import FRAME_MAX_BYTES, FrameError, RaftFrame, parse_frame
from ackdb.resp.reader import RequestReader

if TYPE_CHECKING:
    from ackdb.node.transport import Transport

# Inbound peer connections accepted at once (count).
INBOUND_MAX_CONNECTIONS = 256


class InboundConnection(asyncio.Protocol):
    """A connection a peer dialled to us: the handshake first, then frames for the agent."""

    def __init__(self, owner: Transport) -> None:
        self.owner = owner
        self.auth: Acceptor | None = Acceptor(owner.node_id, owner.key, owner.nonces)
        self.reader: RequestReader | None = None  # once authenticated
        self.peer_id = ""
        self.addr = "?"
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.addr = f"{peer[0]}:{peer[1]}" if peer else "?"
        if self.owner.closed:
            transport.close()
            return
        if len(self.owner.inbound) >= INBOUND_MAX_CONNECTIONS:
            self.owner.log.warning(f"Refusing peer connection from {self.addr}: too many")
            transport.close()
            return
        self.owner.inbound.add(self)
        self.owner.loop.call_later(peerauth.HANDSHAKE_TIMEOUT_MS / 1000, self._handshake_deadline)

    def _handshake_deadline(self) -> None:
        if self.auth is not None and self.transport is not None and not self.transport.is_closing():
            refused = self.auth.expire()
            if refused is not None:
                self._refuse(f"{refused.reason}, {peerauth.HANDSHAKE_TIMEOUT_MS} ms")

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.auth is not None:
            self._handshake(self.auth.receive_data(data))
            return
        # (No "starts with '*'" check here: the reader's pending_bytes() is 0 between a
        # multibulk header and its bulks too, so a read ending there looked like garbage.)
        reader = self.reader
        assert reader is not None
        for argv in reader.feed(data):
            if not self._handle(argv):
                return
        err = reader.error
        if err is not None:
            self._close(f"protocol error: {err.reply or err.log}")

    def _handshake(self, actions: list[Action]) -> None:
        t = self.transport
        assert t is not None and self.auth is not None
        for action in actions:
            if isinstance(action, Send):
                t.write(action.data)
            elif isinstance(action, Authenticated):
                self.auth = None
                self.peer_id = action.peer_id
                self.reader = RequestReader(
                    max_bulk_bytes=FRAME_MAX_BYTES, max_query_bytes=2 * FRAME_MAX_BYTES
                )
                self.owner.log.verbose(f"Peer {action.peer_id} linked from {self.addr}")
                self.owner.set_address(action.peer_id, action.addr)
            else:
                self._refuse(action.reason)

    def _refuse(self, reason: str) -> None:
        claims = self.auth.peer_id if self.auth is not None else None
        who = f" (claims to be {claims})" if claims else ""
        self.auth = None
        self.owner.auth_refused += 1
        self.owner.log_refusal(f"Refused peer connection from {self.addr}{who}: {reason}")
        if self.transport is not None:
            self.transport.abort()

    def _handle(self, argv: list[bytes]) -> bool:
        try:
            frame = parse_frame(argv)
            if isinstance(frame, RaftFrame) and frame.msg.frm != self.peer_id:
                raise FrameError(f"message from {frame.msg.frm!r} on {self.peer_id}'s link")
            self.owner.on_frame(self.peer_id, frame)
        except FrameError as e:
            self._close(str(e))
            return False
        except Exception:
            self.owner.log.warning(
                f"Error handling a frame from peer {self.peer_id} ({self.addr})", exc=True
            )
            self._close("handler error")
            return False
        return True

    def _close(self, why: str) -> None:
        self.owner.log.warning(f"Closing link from {self.peer_id} ({self.addr}): {why}")
        self.owner.garbage_closes += 1
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.inbound.discard(self)
