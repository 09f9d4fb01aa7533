"""The handshake of a peer link: both ends prove they hold the cluster secret before any
frame is accepted. Sans-IO: bytes in, actions out.

Owns: the handshake's frames, its two state machines (``Dialer`` for the member that
dialled, ``Acceptor`` for the one that accepted), its proofs and its limits; the proof a
joining node sends with ``CLUSTER.JOIN``; and ``LogBudget``, which keeps refusals from
flooding the log. Never does IO and never reads a clock or global randomness: nonces
come from an injected function, the shell calls ``expire()`` when its timer fires.

The four flights (RESP arrays, like every frame after them):

    dialer   -> acceptor   HELLO <dialer-id> <dialer-addr> <nonce-d>
    acceptor -> dialer     CHALLENGE <acceptor-id> <nonce-a>
    dialer   -> acceptor   PROOF <mac-d>
    acceptor -> dialer     PROOF <mac-a>

    mac-x = HMAC-SHA256(key, label-x, dialer-id, dialer-addr, acceptor-id, nonce-d, nonce-a)

with every field length-prefixed, ``key = derive(secret, PEER_AUTH)`` and the labels
``DIALER_LABEL`` / ``ACCEPTOR_LABEL``. Why this shape:
- each side's fresh 32-byte nonce is in both proofs, so a recorded handshake proves
  nothing on another connection (replay), and a proof names both ends and the dialer's
  address, so it cannot be moved to another pair of members;
- the direction label means a proof of one side is never a proof of the other
  (reflection: an attacker cannot make a member answer its own challenge);
- the acceptor proves only after the dialer did, so a process without the secret gets
  nothing from a member but one random nonce;
- the dialer sends no frame before the acceptor's proof checks out (a process listening
  at a peer's old address learns nothing), and refuses an acceptor that is not the member
  it meant to dial;
- proofs are compared in constant time (``hmac.compare_digest``).

Limits: the whole handshake is at most ``HANDSHAKE_MAX_BYTES`` from the other side (a
peer that sends more, or anything after its last flight before the handshake ends, is
refused); its time limit is the shell's timer (transport.py), which calls ``expire()``.

States: Dialer  START -> CHALLENGE_WAIT -> PROOF_WAIT -> DONE | FAILED;
        Acceptor HELLO_WAIT -> PROOF_WAIT -> DONE | FAILED.
After DONE the connection carries peer frames (peerframes.py) with no per-frame cost.
The handshake authenticates the ends of a connection, not each byte: someone who can
rewrite TCP between two members is out of scope (keep the cluster network private).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from ackdb.node.peerframes import parse_addr, valid_node_id
from ackdb.node.secrets import PEER_AUTH, derive
from ackdb.resp.reader import RequestReader
from ackdb.resp.request import encode_command

NONCE_BYTES = 32
MAC_BYTES = 32
# Bytes the other side may send during the whole handshake; a HELLO with the longest
# node id and host name is about 420 bytes.
HANDSHAKE_MAX_BYTES = 1024
# Time to finish the handshake (ms), counted from the TCP connection by the shell
# (transport.py, inbound.py), which then calls ``expire()``.
HANDSHAKE_TIMEOUT_MS = 2000
# Longest argument of a handshake frame (bytes): a host name is at most 253.
HANDSHAKE_ARG_MAX_BYTES = 512
DIALER_LABEL = b"ackdb peer link v1: dialer"
ACCEPTOR_LABEL = b"ackdb peer link v1: acceptor"
JOIN_LABEL = b"ackdb cluster join v1"

Nonces = Callable[[], bytes]


def peer_key(secret: bytes) -> bytes:
    """The key of the peer links and of join proofs, derived from the cluster secret."""
    return derive(secret, PEER_AUTH)


def _mac(key: bytes, *parts: bytes) -> bytes:
    h = hmac.new(key, digestmod=hashlib.sha256)
    for p in parts:
        h.update(len(p).to_bytes(4, "big"))
        h.update(p)
    return h.digest()


def link_proof(
    key: bytes, label: bytes, dialer: str, dialer_addr: str, acceptor: str, nd: bytes, na: bytes
) -> bytes:
    return _mac(key, label, dialer.encode(), dialer_addr.encode(), acceptor.encode(), nd, na)


def join_proof(key: bytes, node_id: str, client_addr: str, cluster_addr: str) -> bytes:
    """What ``CLUSTER.JOIN`` carries (hex) to show the joining node holds the cluster's
    secret, so a node with another cluster's secret is refused before it is added."""
    return _mac(key, JOIN_LABEL, node_id.encode(), client_addr.encode(), cluster_addr.encode())


# The error code of a CLUSTER.JOIN whose proof does not match the cluster's secret.
WRONG_SECRET_ERROR = "WRONGSECRET"


def join_proof_ok(
    key: bytes, node_id: str, client_addr: str, cluster_addr: str, proof_hex: bytes
) -> bool:
    want = join_proof(key, node_id, client_addr, cluster_addr).hex().encode()
    return hmac.compare_digest(want, proof_hex)


# -- actions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The other end proved it holds the secret. ``addr``: the cluster address a dialer
    said it listens at (empty on the dialer's side)."""

    peer_id: str
    addr: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The handshake failed; the shell closes the connection and logs ``reason``."""

    reason: str


Action = Send | Authenticated | Refused

WRONG_SECRET = "wrong cluster secret (its proof does not match this node's secret)"


class State(enum.Enum):
    START = "start"
    HELLO_WAIT = "hello-wait"
    CHALLENGE_WAIT = "challenge-wait"
    PROOF_WAIT = "proof-wait"
    DONE = "done"
    FAILED = "failed"


class _Handshake:
    """What both sides share: reading bounded frames, failing once."""

    def __init__(self, node_id: str, key: bytes, nonces: Nonces) -> None:
        self.node_id = node_id
        self.key = key
        self.nonce = nonces()
        assert len(self.nonce) == NONCE_BYTES
        self.peer_id: str | None = None  # as the other side claims it, for logs
        self.state = State.START
        self.received_bytes = 0
        self._reader = RequestReader(
            max_bulk_bytes=HANDSHAKE_ARG_MAX_BYTES,
            max_query_bytes=HANDSHAKE_MAX_BYTES,
            authenticated=False,
        )

    @property
    def done(self) -> bool:
        return self.state in (State.DONE, State.FAILED)

    def receive_data(self, data: bytes) -> list[Action]:
        if self.done:
            return [] if self.state is State.FAILED else [self._fail("data after the handshake")]
        if self.received_bytes == 0 and data[:1] != b"*":
            # Every flight is a RESP array: an HTTP or TLS client, a Redis error reply...
            return [self._fail(f"not a peer (first byte {data[:1]!r})")]
        self.received_bytes += len(data)
        if self.received_bytes > HANDSHAKE_MAX_BYTES:
            return [self._fail(f"handshake longer than {HANDSHAKE_MAX_BYTES} bytes")]
        out: list[Action] = []
        for argv in self._reader.feed(data):
            if self.done:  # a frame after the last flight, before the answer
                return [self._fail("frames before the handshake finished")]
            out.extend(self._on_frame(argv))
            if self.state is State.FAILED:
                return out
        err = self._reader.error
        if err is not None:
            return [self._fail(f"protocol error: {err.reply or err.log}")]
        if self.state is State.DONE and not self._reader.at_boundary():
            return [self._fail("frames before the handshake finished")]
        return out

    def expire(self) -> Refused | None:
        """The shell's handshake timer fired: a Refused unless the handshake is over."""
        if self.done:
            return None
        return self._fail(f"no handshake in time (stuck in {self.state.value})")

    def _on_frame(self, argv: list[bytes]) -> list[Action]:
        raise NotImplementedError

    def _fail(self, reason: str) -> Refused:
        self.state = State.FAILED
        return Refused(reason)


def _unexpected(argv: list[bytes], expected: str) -> str:
    verb = argv[0][:16] if argv else b""
    return f"expected {expected}, got {verb!r} with {len(argv) - 1} arguments"


class Dialer(_Handshake):
    """The dialling side: ``start()`` gives the HELLO to send, then feed what comes back.
    ``expected`` is the member we meant to reach."""

    def __init__(self, node_id: str, addr: str, expected: str, key: bytes, nonces: Nonces):
        super().__init__(node_id, key, nonces)
        self.addr = addr
        self.expected = expected
        self._peer_nonce = b""

    def start(self) -> bytes:
        assert self.state is State.START
        self.state = State.CHALLENGE_WAIT
        return encode_command((b"HELLO", self.node_id.encode(), self.addr.encode(), self.nonce))

    def _on_frame(self, argv: list[bytes]) -> list[Action]:
        verb = argv[0].upper()
        if self.state is State.CHALLENGE_WAIT:
            if verb != b"CHALLENGE" or len(argv) != 3 or len(argv[2]) != NONCE_BYTES:
                return [self._fail(_unexpected(argv, "CHALLENGE"))]
            peer = argv[1].decode("utf-8", "replace")
            self.peer_id = peer
            if peer != self.expected:
                return [self._fail(f"{peer!r:.70} answered where {self.expected} was expected")]
            self._peer_nonce = argv[2]
            self.state = State.PROOF_WAIT
            mac = self._proof(DIALER_LABEL)
            return [Send(encode_command((b"PROOF", mac)))]
        assert self.state is State.PROOF_WAIT
        if verb != b"PROOF" or len(argv) != 2:
            return [self._fail(_unexpected(argv, "PROOF"))]
        if not hmac.compare_digest(argv[1], self._proof(ACCEPTOR_LABEL)):
            return [self._fail(WRONG_SECRET)]
        self.state = State.DONE
        return [Authenticated(self.expected, "")]

    def _proof(self, label: bytes) -> bytes:
        return link_proof(
            self.key, label, self.node_id, self.addr, self.expected, self.nonce, self._peer_nonce
        )

    def lost_reason(self) -> str:
        """Why a connection that closed during the handshake failed, as best we know."""
        if self.state is State.PROOF_WAIT:
            return (
                "the peer closed the link after our proof: it does not accept this node's "
                "cluster secret (does it hold another cluster's?)"
            )
        return "the peer closed the link before its challenge (not an ackdb member?)"


class Acceptor(_Handshake):
    """The accepting side: feed what the dialer sends."""

    def __init__(self, node_id: str, key: bytes, nonces: Nonces) -> None:
        super().__init__(node_id, key, nonces)
        self.state = State.HELLO_WAIT
        self.peer_addr = ""
        self._peer_nonce = b""

    def _on_frame(self, argv: list[bytes]) -> list[Action]:
        verb = argv[0].upper()
        if self.state is State.HELLO_WAIT:
            if verb != b"HELLO" or len(argv) != 4:
                return [self._fail(_unexpected(argv, "HELLO"))]
            why = self._check_hello(argv)
            if why:
                return [self._fail(why)]
            self.state = State.PROOF_WAIT
            return [Send(encode_command((b"CHALLENGE", self.node_id.encode(), self.nonce)))]
        assert self.state is State.PROOF_WAIT
        if verb != b"PROOF" or len(argv) != 2:
            return [self._fail(_unexpected(argv, "PROOF"))]
        if not hmac.compare_digest(argv[1], self._proof(DIALER_LABEL)):
            return [self._fail(WRONG_SECRET)]
        assert self.peer_id is not None
        self.state = State.DONE
        mac = self._proof(ACCEPTOR_LABEL)
        return [Send(encode_command((b"PROOF", mac))), Authenticated(self.peer_id, self.peer_addr)]

    def _check_hello(self, argv: list[bytes]) -> str:
        try:
            peer, addr = argv[1].decode(), argv[2].decode()
            parse_addr(addr)
        except (UnicodeDecodeError, ValueError) as e:
            return f"bad HELLO: {e}"
        if not valid_node_id(peer):
            return f"bad node id in HELLO: {peer!r:.70}"
        if len(argv[3]) != NONCE_BYTES:
            return f"bad HELLO: a nonce is {NONCE_BYTES} bytes"
        self.peer_id = peer
        if peer == self.node_id:
            return "it claims to be this node"
        self.peer_addr = addr
        self._peer_nonce = argv[3]
        return ""

    def _proof(self, label: bytes) -> bytes:
        assert self.peer_id is not None
        return link_proof(
            self.key,
            label,
            self.peer_id,
            self.peer_addr,
            self.node_id,
            self._peer_nonce,
            self.nonce,
        )


class LogBudget:
    """At most ``lines`` log lines per ``window_ms``; the rest are counted, and the next
    line allowed says how many were left out (so a scanner cannot flood the log)."""

    def __init__(self, lines: int, window_ms: int) -> None:
        self.lines = lines
        self.window_ms = window_ms
        self._window_start = -window_ms
        self._used = 0
        self.suppressed = 0

    def allow(self, now_ms: int) -> tuple[bool, int]:
        """(may log now, lines left out since the last one logged)."""
        if now_ms - self._window_start >= self.window_ms:
            self._window_start = now_ms
            self._used = 0
        if self._used >= self.lines:
            self.suppressed += 1
            return False, 0
        self._used += 1
        skipped, self.suppressed = self.suppressed, 0
        return True, skipped
