"""The serving side of replication: the table of replicas attached to this node.

Owns: per connection, what a replica told us (REPLCONF listening-port / ip-address /
capa), its state (``wait_bgsave`` -> ``send_bulk`` -> ``online``), its ACK and FACK
offsets and the time of its last ACK; serving PSYNC (partial from the backlog, or full via
a snapshot the shell produces); queueing stream bytes for attached replicas and flushing
them once per loop iteration; repl-timeout; min-replicas-to-write; the replica lines of
INFO and ROLE. Every node has one: a replica serves its own sub-replicas with it.

Never touches sockets, clocks or the keyspace. Never decides roles (the engine does) and
never produces snapshot bytes (the shell does, between ``begin_snapshot`` and
``on_bulk_sent``).

States of one replica (Redis SLAVE_STATE_*; the INFO names):
  wait_bgsave  PSYNC answered with a full resync, waiting for the snapshot to start;
               gets bare "\\n" keep-alives each second, no stream bytes.
  send_bulk    +FULLRESYNC sent with offset O; the shell writes the snapshot, then every
               stream byte after O follows it on the same connection.
  online       streaming; counted by WAIT/WAITAOF, ROLE, min-replicas and repl-timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .actions import Action, CloseReplica, Log, SendToReplica, SnapshotNeeded
from .psync import Continue, FullResync, PsyncError, SyncStats, decide, parse_psync
from .state import ReplicationState
from .stream import GETACK
from .util import error_reply, parse_ll

WAIT_BGSAVE = "wait_bgsave"
SEND_BULK = "send_bulk"
ONLINE = "online"

ERR_SYNTAX = "ERR syntax error"
ERR_NOT_INTEGER = "ERR value is not an integer or out of range"
# Redis NET_HOST_STR_LEN: the longest ip-address a replica may announce.
ANNOUNCED_IP_MAX_BYTES = 255
# How long a GETACK keeps a replica acknowledging every read, as the primary counts it
# (ms): well inside the replica's own window (replica.EAGER_ACK_MS, 2000 ms, counted from
# when it receives the GETACK).
GETACK_REFRESH_MS = 1000
# Redis: pre-sync keep-alive newline to replicas waiting for the snapshot (ms).
PRESYNC_KEEPALIVE_MS = 1000
OK = b"+OK\r\n"


@dataclass(slots=True)
class Replica:
    """What the primary knows about one attached replica (mutable, owned by the table)."""

    conn: int
    peer_ip: str
    listening_port: int = 0
    announced_ip: str | None = None
    capa: set[str] = field(default_factory=set)
    state: str = WAIT_BGSAVE
    ack_offset: int = 0
    fack_offset: int = 0
    ack_time_ms: int = 0
    # The stream offset its data starts from (snapshot offset, or the PSYNC offset - 1).
    sync_offset: int = -1
    last_keepalive_ms: int = 0
    # When the last GETACK was queued for it: an ackdb replica acknowledges every read for
    # a while after a GETACK (replica.EAGER_ACK_MS), so WAITs need none meanwhile.
    getack_ms: int = -(2**62)

    @property
    def ip(self) -> str:
        return self.announced_ip if self.announced_ip is not None else self.peer_ip


def ip_of(addr: str) -> str:
    """A replica's IP from its connection's address (``ip:port``); a Unix socket's is the
    loopback's. Only a handshake needs it (never an ACK)."""
    if addr.startswith("/"):
        return "127.0.0.1"
    return addr.rsplit(":", 1)[0]


@dataclass(frozen=True, slots=True)
class ReplconfOutcome:
    """``reply`` None means no reply at all (``ack``, ``getack``); ``send_ack`` asks a
    replica node to send its own ACK upstream (``REPLCONF GETACK`` from a client)."""

    reply: bytes | None
    send_ack: bool = False


# An ACK's outcome, the same for each one (the outcomes are frozen): one allocation less
# on the path of every ACK.
_NO_REPLY = ReplconfOutcome(None)


@dataclass(frozen=True, slots=True)
class PsyncOutcome:
    """``reply`` is an error to send as the command's reply; ``actions`` the rest."""

    reply: bytes | None
    actions: list[Action]


@dataclass(frozen=True, slots=True)
class SnapshotStart:
    """A snapshot must be written now, at ``offset`` of history ``replid``, to each of
    ``conns`` (after the ``actions``, which carry their ``+FULLRESYNC`` lines)."""

    replid: str
    offset: int
    conns: tuple[int, ...]
    actions: list[Action]
    # The db the stream has selected at ``offset``: store it in the snapshot; the
    # replica's shell passes it to ``snapshot_loaded``.
    stream_db: int = 0


class ReplicaTable:
    """Attached replicas, the stream queued for them, and their acknowledgements."""

    def __init__(
        self,
        state: ReplicationState,
        *,
        repl_timeout_ms: int = 60_000,
        min_replicas_to_write: int = 0,
        min_replicas_max_lag_s: int = 10,
    ) -> None:
        self.state = state
        self.repl_timeout_ms = repl_timeout_ms
        self.min_replicas_to_write = min_replicas_to_write
        self.min_replicas_max_lag_s = min_replicas_max_lag_s
        self.stats = SyncStats()
        self.replicas: dict[int, Replica] = {}
        self._handshakes: dict[int, Replica] = {}
        self._pending = bytearray()
        self._awaiting_snapshot = 0

    # -- connections ------------------------------------------------------------------

    def on_replconf(
        self, conn: int, argv: list[bytes], now_ms: int, peer_addr: str
    ) -> ReplconfOutcome:
        """REPLCONF option value [option value ...] (Redis replconfCommand). ``peer_addr``:
        the connection's address as ``ip:port`` (or a socket path)."""
        if len(argv) % 2 == 0:
            # notes: options come in pairs (odd count of arguments -> syntax error).
            return ReplconfOutcome(error_reply(ERR_SYNTAX))
        r = self.replicas.get(conn) or self._handshakes.get(conn)
        for j in range(1, len(argv), 2):
            opt, val = argv[j].lower(), argv[j + 1]
            if opt == b"ack":
                if r is not None and conn in self.replicas:
                    self._on_ack(r, argv, j, now_ms)
                return _NO_REPLY  # notes: `ack` gets no reply.
            if opt == b"getack":
                return ReplconfOutcome(None, send_ack=True)
            if r is None:
                r = self._handshakes[conn] = Replica(conn, ip_of(peer_addr))
            if opt == b"listening-port":
                port = parse_ll(val)
                if port is None:
                    return ReplconfOutcome(error_reply(ERR_NOT_INTEGER))
                r.listening_port = port
            elif opt == b"ip-address":
                if len(val) > ANNOUNCED_IP_MAX_BYTES:
                    msg = f"ERR REPLCONF ip-address provided by replica instance is too long: {len(val)} bytes"
                    return ReplconfOutcome(error_reply(msg))
                r.announced_ip = val.decode("latin-1")
            elif opt == b"capa":
                # Redis ignores capabilities it does not understand.
                if val.lower() in (b"eof", b"psync2"):
                    r.capa.add(val.lower().decode())
            else:
                name = argv[j].decode("latin-1")
                return ReplconfOutcome(error_reply(f"ERR Unrecognized REPLCONF option: {name}"))
        return ReplconfOutcome(OK)

    def _on_ack(self, r: Replica, argv: list[bytes], j: int, now_ms: int) -> None:
        offset = parse_ll(argv[j + 1])
        if offset is None:
            return
        # ACKs only move forward (Redis: "if (offset > c->repl_ack_off)").
        r.ack_offset = max(r.ack_offset, offset)
        if len(argv) > j + 3 and argv[j + 2].lower() == b"fack":
            fack = parse_ll(argv[j + 3])
            if fack is None:
                return
            r.fack_offset = max(r.fack_offset, fack)
        r.ack_time_ms = now_ms

    def on_psync(
        self,
        conn: int,
        argv: list[bytes],
        now_ms: int,
        peer_addr: str,
        *,
        is_primary: bool,
        refuse: str | None = None,
    ) -> PsyncOutcome:
        """PSYNC from ``conn``. ``refuse`` is an error the engine wants sent instead
        (failover in progress, replica link down); a PSYNC ... FAILOVER has already
        been handled by the engine when this is called."""
        if conn in self.replicas:
            return PsyncOutcome(None, [])  # Redis: SYNC from a replica is ignored.
        if refuse is not None:
            return PsyncOutcome(error_reply(refuse), [])
        req = parse_psync(argv)
        if isinstance(req, PsyncError):
            return PsyncOutcome(error_reply(req.message), [])
        r = self._handshakes.pop(conn, None) or Replica(conn, ip_of(peer_addr))
        actions = self._drop_previous_incarnation(r)
        decision = decide(self.state, req.replid, req.offset)
        self.stats.record(decision)
        if isinstance(decision, Continue):
            return PsyncOutcome(None, actions + self._continue(r, decision, now_ms))
        return PsyncOutcome(None, actions + self._full(r, decision, now_ms, is_primary))

    def _drop_previous_incarnation(self, r: Replica) -> list[Action]:
        """A replica reconnecting before we noticed its old connection died would be
        counted twice by WAIT; its old entry goes (ackdb departs from Redis here)."""
        if not r.listening_port:
            return []
        for old in list(self.replicas.values()):
            if old.ip == r.ip and old.listening_port == r.listening_port:
                self.on_disconnect(old.conn)
                return [CloseReplica(old.conn, "replaced by a new connection of the same replica")]
        return []

    def _continue(self, r: Replica, d: Continue, now_ms: int) -> list[Action]:
        # Existing replicas get the queued bytes first; the newcomer gets them (and all
        # it missed) from the backlog, so nothing is sent twice.
        actions = self.flush()
        backlog = self.state.backlog
        assert backlog is not None
        head = b"+CONTINUE %s\r\n" % d.replid.encode() if "psync2" in r.capa else b"+CONTINUE\r\n"
        missed = backlog.read_from(d.from_offset)
        r.state, r.ack_time_ms, r.sync_offset = ONLINE, now_ms, d.from_offset - 1
        self.replicas[r.conn] = r
        actions.append(SendToReplica(r.conn, head + missed))
        msg = f"Partial resynchronization request from {r.ip}:{r.listening_port} accepted. Sending {len(missed)} bytes of backlog starting from offset {d.from_offset}."
        actions.append(Log("notice", msg))
        return actions

    def _full(self, r: Replica, d: FullResync, now_ms: int, is_primary: bool) -> list[Action]:
        self.state.ensure_backlog(new_history=is_primary and not self.replicas)
        r.state, r.ack_time_ms, r.last_keepalive_ms = WAIT_BGSAVE, now_ms, now_ms
        self.replicas[r.conn] = r
        self._awaiting_snapshot += 1
        msg = f"Full resync requested by replica {r.ip}:{r.listening_port} ({d.reason})"
        return [Log("notice", msg), SnapshotNeeded()]

    def on_disconnect(self, conn: int) -> None:
        self._handshakes.pop(conn, None)
        r = self.replicas.pop(conn, None)
        if r is not None and r.state == WAIT_BGSAVE:
            self._awaiting_snapshot -= 1

    def drop_all(self, reason: str) -> list[Action]:
        """Close every replica (they must learn a new history by reconnecting)."""
        actions: list[Action] = [CloseReplica(c, reason) for c in self.replicas]
        for conn in list(self.replicas):
            self.on_disconnect(conn)
        self._pending.clear()
        return actions

    # -- full sync --------------------------------------------------------------------

    @property
    def snapshot_needed(self) -> bool:
        return self._awaiting_snapshot > 0

    def begin_snapshot(self) -> SnapshotStart:
        """The shell is about to snapshot its dataset, synchronously, at the current
        offset. Every replica in wait_bgsave gets ``+FULLRESYNC`` and moves to
        send_bulk; the shell then writes the snapshot to each of them."""
        actions = self.flush()
        offset = self.state.master_repl_offset
        replid = self.state.replid
        conns = []
        for r in self.replicas.values():
            if r.state != WAIT_BGSAVE:
                continue
            r.state, r.sync_offset = SEND_BULK, offset
            conns.append(r.conn)
            actions.append(
                SendToReplica(r.conn, b"+FULLRESYNC %s %d\r\n" % (replid.encode(), offset))
            )
        self._awaiting_snapshot = 0
        return SnapshotStart(replid, offset, tuple(conns), actions)

    def on_bulk_sent(self, conn: int, now_ms: int) -> None:
        """The snapshot reached ``conn``'s socket: the replica is online."""
        r = self.replicas.get(conn)
        if r is not None and r.state == SEND_BULK:
            r.state, r.ack_time_ms = ONLINE, now_ms

    # -- stream -----------------------------------------------------------------------

    def feed(self, data: bytes) -> int:
        """Append ``data`` to this node's stream and queue it for attached replicas."""
        offset = self.state.append(data)
        self.queue(data)
        return offset

    @property
    def has_queued(self) -> bool:
        """Stream bytes are queued for the next ``flush``."""
        return bool(self._pending)

    def queue(self, data: bytes) -> None:
        """Queue bytes already counted into the stream (a replica proxying its primary)."""
        if self.replicas:
            self._pending += data

    def flush(self) -> list[Action]:
        """Send the queued stream to every replica past wait_bgsave."""
        if not self._pending:
            return []
        data = bytes(self._pending)
        self._pending.clear()
        return [
            SendToReplica(r.conn, data) for r in self.replicas.values() if r.state != WAIT_BGSAVE
        ]

    # -- timers -----------------------------------------------------------------------

    def cron(self, now_ms: int) -> list[Action]:
        """Pre-sync keep-alives and repl-timeout of online replicas (Redis replicationCron)."""
        actions: list[Action] = []
        for r in list(self.replicas.values()):
            if r.state == WAIT_BGSAVE and now_ms - r.last_keepalive_ms >= PRESYNC_KEEPALIVE_MS:
                # notes: while preparing a full sync the primary sends bare "\n".
                r.last_keepalive_ms = now_ms
                actions.append(SendToReplica(r.conn, b"\n"))
            elif r.state == ONLINE and now_ms - r.ack_time_ms > self.repl_timeout_ms:
                msg = f"Disconnecting timedout replica (streaming sync): {r.ip}:{r.listening_port}"
                actions += [Log("warning", msg), CloseReplica(r.conn, "timeout")]
                self.on_disconnect(r.conn)
        return actions

    # -- queries ----------------------------------------------------------------------

    def getack_needed(self, now_ms: int) -> bool:
        """Whether a waiting client needs a GETACK sent: some online replica has not had
        one for GETACK_REFRESH_MS, so it may not be acknowledging every read."""
        return any(
            r.state == ONLINE and now_ms - r.getack_ms >= GETACK_REFRESH_MS
            for r in self.replicas.values()
        )

    def feed_keepalive(self, data: bytes) -> int:
        """``feed`` of bytes that carry no write (PING, REPLCONF GETACK): the state
        notes them, so ``write_offset`` leaves them out."""
        start = self.state.master_repl_offset
        offset = self.feed(data)
        self.state.keepalive_appended(start)
        return offset

    def feed_getack(self, now_ms: int) -> None:
        self.feed_keepalive(GETACK)
        for r in self.replicas.values():
            if r.state == ONLINE:
                r.getack_ms = now_ms

    def online(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.state == ONLINE]

    def count_acked(self, offset: int) -> int:
        """notes: WAIT counts ONLINE replicas with acked offset >= target."""
        return sum(
            1 for r in self.replicas.values() if r.state == ONLINE and r.ack_offset >= offset
        )

    def count_facked(self, offset: int) -> int:
        """notes: WAITAOF counts ONLINE replicas whose FACK >= target."""
        return sum(
            1 for r in self.replicas.values() if r.state == ONLINE and r.fack_offset >= offset
        )

    def good_replicas(self, now_ms: int) -> int:
        """notes: good = online and last ACK at most min-replicas-max-lag seconds old."""
        lag_max = self.min_replicas_max_lag_s
        return sum(
            1
            for r in self.replicas.values()
            if r.state == ONLINE and (now_ms - r.ack_time_ms) // 1000 <= lag_max
        )

    def write_refused(self, now_ms: int) -> bool:
        """min-replicas-to-write is not met (NOREPLICAS on a primary)."""
        need = self.min_replicas_to_write
        return bool(need and self.min_replicas_max_lag_s and self.good_replicas(now_ms) < need)

    def find(self, host: str, port: int) -> Replica | None:
        """Redis findReplica: by announced (else peer) ip, case-insensitive, and port."""
        for r in self.replicas.values():
            if r.ip.lower() == host.lower() and r.listening_port == port:
                return r
        return None

    def info_fields(self, now_ms: int) -> list[tuple[str, str]]:
        """connected_slaves, [min_slaves_good_slaves], slaveN (lag in s, and in bytes)."""
        fields = [("connected_slaves", str(len(self.replicas)))]
        if self.min_replicas_to_write and self.min_replicas_max_lag_s:
            fields.append(("min_slaves_good_slaves", str(self.good_replicas(now_ms))))
        top = self.state.master_repl_offset
        for i, r in enumerate(self.replicas.values()):
            lag_s = (now_ms - r.ack_time_ms) // 1000 if r.state == ONLINE else 0
            behind = max(0, top - r.ack_offset) if r.state == ONLINE else 0
            value = (
                f"ip={r.ip},port={r.listening_port},state={r.state},"
                f"offset={r.ack_offset},lag={lag_s},lag_bytes={behind}"
            )
            fields.append((f"slave{i}", value))
        return fields

    def role_entries(self) -> list[tuple[str, str, str]]:
        """notes: ROLE lists online replicas as [ip, "port", "ackoffset"]."""
        return [(r.ip, str(r.listening_port), str(r.ack_offset)) for r in self.online()]
