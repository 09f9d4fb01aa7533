"""The replica's side of the handshake, as bytes to send and replies to classify.

Owns: the pipelined handshake commands (notes: PING; then AUTH [user] pass if masterauth,
REPLCONF listening-port, [REPLCONF ip-address], REPLCONF capa eof capa psync2), the PSYNC
request, and the meaning of the primary's replies (PING errors that still allow the
handshake, +FULLRESYNC / +CONTINUE / refusals). Never touches sockets or state; the
``ReplicaLink`` sequences them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .state import is_replid
from .util import encode_command, parse_ll
from .wire import LinkProtocolError

# notes: accept +..., -NOAUTH, -NOPERM or -ERR operation not permitted to PING.
PING_OK_ERRORS = (b"-NOAUTH", b"-NOPERM", b"-ERR operation not permitted")
PING = encode_command([b"PING"])


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    listening_port: int
    announce_ip: str | None = None
    masteruser: str | None = None
    masterauth: str | None = None
    repl_timeout_ms: int = 60_000
    ack_period_ms: int = 1000
    # Reconnection back-off: first retry after reconnect_min_ms, doubling to reconnect_max_ms
    # (Redis retries every second; never slower than that by default).
    reconnect_min_ms: int = 100
    reconnect_max_ms: int = 1000


@dataclass(frozen=True, slots=True)
class FullResyncReply:
    replid: str
    offset: int


@dataclass(frozen=True, slots=True)
class ContinueReply:
    replid: str | None  # None: a primary without psync2 keeps our id


@dataclass(frozen=True, slots=True)
class PsyncRefused:
    """-NOMASTERLINK / -LOADING (try later) or anything else (also retried later: ackdb
    has no SYNC fallback for pre-PSYNC primaries)."""

    line: bytes


def ping_reply_ok(line: bytes) -> bool:
    return not line.startswith(b"-") or line.startswith(PING_OK_ERRORS)


def handshake_commands(c: ReplicaConfig) -> tuple[bytes, list[str]]:
    """The pipelined commands after PING, and the replies they expect, in order."""
    cmds: list[bytes] = []
    expect: list[str] = []
    if c.masterauth is not None:
        user = [c.masteruser.encode()] if c.masteruser else []
        cmds.append(encode_command([b"AUTH", *user, c.masterauth.encode()]))
        expect.append("auth")
    cmds.append(encode_command([b"REPLCONF", b"listening-port", b"%d" % c.listening_port]))
    expect.append("port")
    if c.announce_ip is not None:
        cmds.append(encode_command([b"REPLCONF", b"ip-address", c.announce_ip.encode()]))
        expect.append("ip")
    cmds.append(encode_command([b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]))
    expect.append("capa")
    return b"".join(cmds), expect


def psync_command(replid: str | None, processed_offset: int, failover: bool) -> bytes:
    """notes: PSYNC ? -1 on first sync, else PSYNC <replid> <processed_offset + 1>;
    a primary handing over with FAILOVER appends FAILOVER."""
    if replid is None:
        argv = [b"PSYNC", b"?", b"-1"]
    else:
        argv = [b"PSYNC", replid.encode(), b"%d" % (processed_offset + 1)]
    if failover:
        argv.append(b"FAILOVER")
    return encode_command(argv)


def parse_psync_reply(line: bytes) -> FullResyncReply | ContinueReply | PsyncRefused:
    words = line.split()
    if words[0] == b"+FULLRESYNC":
        offset = parse_ll(words[2]) if len(words) == 3 else None
        replid = words[1].decode("latin-1") if len(words) == 3 else ""
        if offset is None or not is_replid(replid):
            raise LinkProtocolError(f"wrong +FULLRESYNC syntax: {line!r}")
        return FullResyncReply(replid, offset)
    if words[0] == b"+CONTINUE":
        new_id = words[1].decode("latin-1") if len(words) > 1 else ""
        return ContinueReply(new_id if is_replid(new_id) else None)
    return PsyncRefused(line)
