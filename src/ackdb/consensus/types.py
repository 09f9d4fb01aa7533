"""Value types of the Raft core: entries, hard state, snapshots, messages, Ready, Config.

Owns: the immutable records that cross the boundary between the sans-IO core and its shell
(and the wire, through codec.py). Never does IO; every record is a frozen, slotted
dataclass so the core can hand it out without copying.

Naming follows etcd-io/raft (raftpb) where it has a name; node ids are ``str``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class EntryKind(enum.IntEnum):
    """What an entry carries: application data, a configuration, or a leader's no-op."""

    NORMAL = 0
    CONF_CHANGE = 1
    # Raft §8: a leader appends a blank entry at the start of its term so that it commits an
    # entry of its own term (and with it every earlier entry) without waiting for a client.
    NOOP = 2


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""

    def size(self) -> int:
        """Bytes counted against message and uncommitted-log limits."""
        return len(self.data) + 16


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on stable storage before any message depending on it is sent (Raft §5)."""

    term: int = 0
    vote: str | None = None
    commit: int = 0


EMPTY_HARD_STATE = HardState()


@dataclass(frozen=True, slots=True)
class ConfState:
    """The voting members of the cluster, sorted."""

    voters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine at ``index`` (of ``term``) and the configuration in force there."""

    index: int = 0
    term: int = 0
    conf: ConfState = field(default_factory=ConfState)
    data: bytes = b""


EMPTY_SNAPSHOT = Snapshot()


class ConfChangeKind(enum.IntEnum):
    ADD_NODE = 0
    REMOVE_NODE = 1


@dataclass(frozen=True, slots=True)
class ConfChange:
    """One server added or removed (Raft dissertation §4.1). ``context`` is opaque to the
    core (the node agent puts the new member's address there)."""

    kind: ConfChangeKind
    node_id: str
    context: bytes = b""


class MsgType(enum.IntEnum):
    """Messages between peers (etcd raftpb names in comments)."""

    APPEND = 1  # MsgApp: AppendEntries (Raft §5.3)
    APPEND_RESP = 2  # MsgAppResp
    VOTE = 3  # MsgVote: RequestVote (Raft §5.2)
    VOTE_RESP = 4  # MsgVoteResp
    PRE_VOTE = 5  # MsgPreVote (Raft dissertation §9.6)
    PRE_VOTE_RESP = 6  # MsgPreVoteResp
    HEARTBEAT = 7  # MsgHeartbeat: an empty AppendEntries carrying commit and read context
    HEARTBEAT_RESP = 8  # MsgHeartbeatResp
    SNAPSHOT = 9  # MsgSnap: InstallSnapshot (Raft §7)
    TIMEOUT_NOW = 10  # MsgTimeoutNow: leadership transfer (Raft dissertation §3.10)
    READ_INDEX = 11  # MsgReadIndex: a follower forwards a read to the leader (§6.4)
    READ_INDEX_RESP = 12  # MsgReadIndexResp


@dataclass(frozen=True, slots=True)
class Message:
    """One peer message. Field use per type (as in etcd raftpb):

    APPEND: ``index``/``log_term`` = the entry preceding ``entries``; ``commit``.
    APPEND_RESP: ``index`` = last index matched, or on ``reject`` the rejected index;
        ``reject_hint``/``log_term`` = the follower's hint for fast backtracking.
    VOTE/PRE_VOTE: ``index``/``log_term`` = the candidate's last entry;
        ``context`` = b"transfer" when campaigning for a leadership transfer.
    HEARTBEAT: ``commit``; ``context`` = read-index round id (echoed in the response).
    SNAPSHOT: ``snapshot``.
    READ_INDEX: ``context`` = the client's read id; READ_INDEX_RESP adds ``index``.
    """

    type: MsgType
    frm: str
    to: str
    term: int
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    snapshot: Snapshot | None = None
    context: bytes = b""


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once the state machine has applied ``index``."""

    ctx: bytes
    index: int


class Campaign(enum.Enum):
    """Why a member campaigns: a pre-vote round, a real election, or a transfer."""

    PRE_ELECTION = "pre-election"
    ELECTION = "election"
    TRANSFER = "transfer"


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class PeerProgress:
    """The leader's view of one peer (Status.progress)."""

    match: int
    next: int
    recent_active: bool
    state: str


@dataclass(frozen=True, slots=True)
class Status:
    id: str
    role: Role
    term: int
    leader: str | None
    commit: int
    applied: int
    voters: tuple[str, ...]
    progress: dict[str, PeerProgress]
    last_index: int
    transferee: str | None


@dataclass(frozen=True, slots=True)
class Ready:
    """One batch of work for the shell. The ordering rule (etcd raft node.go, Raft §5):

    1. install ``snapshot``, append ``entries`` (truncating any conflicting suffix) and
       write ``hard_state`` to stable storage -- fsync if ``must_sync``;
    2. only THEN send ``messages``: a vote or an append acknowledgement promises that the
       vote or the entries are durable;
    3. apply ``committed_entries`` in order; serve each ``read_states`` entry once the
       state machine has applied its index;
    4. call ``RawNode.advance(ready)``.
    """

    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    messages: tuple[Message, ...]
    committed_entries: tuple[Entry, ...]
    read_states: tuple[ReadState, ...]
    must_sync: bool


@dataclass(frozen=True, slots=True)
class Config:
    """Tuning of one Raft member. Ticks are logical; the shell decides their length."""

    node_id: str
    # Raft §5.2: a follower that hears nothing for a randomised timeout in
    # [election_tick, 2*election_tick) campaigns.
    election_tick: int = 10
    heartbeat_tick: int = 1
    # Raft dissertation §9.6: a pre-vote round first, so a partitioned server rejoining
    # does not disrupt the cluster by bumping terms.
    pre_vote: bool = True
    # Raft dissertation §6.2: a leader that has not heard from a quorum in an election
    # timeout steps down; followers ignore votes while they have a live leader (§4.2.3).
    check_quorum: bool = True
    # Flow control: appends in flight per follower in the replicate state (messages).
    max_inflight_msgs: int = 256
    # Entries carried by one append (bytes, at least one entry is always sent).
    max_entries_bytes_per_msg: int = 1 << 20
    # Proposals are dropped while the leader's uncommitted tail exceeds this (bytes).
    max_uncommitted_bytes: int = 64 << 20
    # Reads waiting for the leader's first commit or a heartbeat quorum (requests).
    max_pending_reads: int = 4096
    # A follower in the snapshot state returns to probing after this many ticks without
    # an answer (a lost InstallSnapshot must not stall it forever).
    snapshot_timeout_ticks: int = 50
    # TEST ONLY: commit entries of earlier terms by counting replicas, i.e. drop the rule of
    # Raft §5.4.2. Exists so the simulator can prove its safety checks catch a broken core.
    test_only_unsafe_commit_any_term: bool = False

    def __post_init__(self) -> None:
        assert self.node_id, "node_id must be non-empty"
        assert self.heartbeat_tick >= 1, "heartbeat_tick must be >= 1"
        assert self.election_tick > self.heartbeat_tick, "election_tick must exceed heartbeat"
        assert self.max_inflight_msgs >= 1
        assert self.max_entries_bytes_per_msg >= 1
        assert self.max_uncommitted_bytes >= 1
        assert self.max_pending_reads >= 1
        assert self.snapshot_timeout_ticks >= 1


class ProposalDropped(Exception):
    """A proposal (or read, conf change, transfer) this member cannot take now; ``leader``
    names the member to retry at, when known."""

    def __init__(self, leader: str | None, reason: str) -> None:
        super().__init__(f"{reason} (leader: {leader})")
        self.leader = leader
        self.reason = reason
