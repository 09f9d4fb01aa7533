"""Frames between cluster members: what travels on a peer link, as RESP arrays.

Owns: encoding and checking the frames of the cluster port. Each frame is a RESP array
of bulk strings (the framing every Redis tool can dump), read with resp.reader's
``RequestReader``. Every connection opens with the handshake of peerauth.py (``HELLO``
says who is dialling and where it listens, which lets a new member answer a leader it
has no address for yet; both ends prove they hold the cluster secret); then:

    RAFT <bytes>                     one Raft message, ``encode_message(m)``
    FWD <bytes>                      a metadata command for the leader to propose
                                     (a follower forwarding a client's write)
    REMOVED <node-id>                "you were removed from the cluster": a removed
                                     member may never learn that the change committed
                                     (the leader stops replicating to it), so the others
                                     tell it, as etcd's peers answer 410 Gone

Never does IO and never trusts a frame: anything else -- an unknown verb, a wrong
argument count, a bad node id or address, undecodable Raft bytes -- is a ``FrameError``,
and the link that carried it is closed.

Links are one-way: a member dials each peer and only writes on that connection; the
peer only reads from it. Replies travel on the peer's own link back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ackdb.consensus import DecodeError, Message, decode_message, encode_message
from ackdb.resp.addr import parse_addr as parse_addr
from ackdb.resp.request import encode_command

# A node id: letters, digits, '.', '_', '-' (it appears in logs, file names, replies).
NODE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Largest frame a member accepts (bytes): a snapshot message and its framing.
FRAME_MAX_BYTES = 256 * 1024 * 1024 + 1024


class FrameError(ValueError):
    """A frame this member does not accept; the link that carried it is closed."""


@dataclass(frozen=True, slots=True)
class RaftFrame:
    msg: Message


@dataclass(frozen=True, slots=True)
class Forward:
    data: bytes


@dataclass(frozen=True, slots=True)
class Removed:
    node_id: str


Frame = RaftFrame | Forward | Removed


def encode_raft(msg: Message) -> bytes:
    return encode_command((b"RAFT", encode_message(msg)))


def encode_forward(data: bytes) -> bytes:
    return encode_command((b"FWD", data))


def encode_removed(node_id: str) -> bytes:
    return encode_command((b"REMOVED", node_id.encode()))


def valid_node_id(node_id: str) -> bool:
    return NODE_ID_RE.fullmatch(node_id) is not None


def parse_frame(argv: list[bytes]) -> Frame:
    """One frame from the arguments ``RequestReader`` produced; FrameError if invalid."""
    verb = argv[0].upper() if argv else b""
    if verb == b"RAFT" and len(argv) == 2:
        try:
            return RaftFrame(decode_message(argv[1]))
        except DecodeError as e:
            raise FrameError(f"undecodable Raft message: {e}") from None
    if verb == b"FWD" and len(argv) == 2:
        return Forward(argv[1])
    if verb == b"REMOVED" and len(argv) == 2:
        node_id = argv[1].decode("utf-8", "replace")
        if not valid_node_id(node_id):
            raise FrameError(f"bad node id in REMOVED: {node_id!r:.70}")
        return Removed(node_id)
    shown = b" ".join(a[:32] for a in argv[:3])
    raise FrameError(f"unexpected frame {shown!r:.100}")
