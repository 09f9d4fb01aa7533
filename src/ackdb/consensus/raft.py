"""Raft: one member's protocol state and the transitions between roles (etcd raft raft.go).

Owns: term, vote, leader, role, election and heartbeat timers, the log (log.py), the
leader's progress map (progress.py), the outgoing message queue and the read states.
Never does IO, never reads a clock, and draws randomness only from the injected
``random.Random``.

Roles and how they change (Raft §5.2, dissertation §9.6 for PreVote):
- FOLLOWER --(election timeout, PreVote on)--> PRE_CANDIDATE --(majority)--> CANDIDATE
- FOLLOWER --(election timeout, PreVote off, or TimeoutNow)--> CANDIDATE
- CANDIDATE --(majority of votes)--> LEADER
- any --(a message of a higher term)--> FOLLOWER (except PreVote traffic, see ``step``)
- LEADER --(no quorum heard in an election timeout, CheckQuorum)--> FOLLOWER

The message handling of each role lives in leader.py and follower.py (follower and both
candidate roles); this module holds what they share.
"""

from __future__ import annotations

import random
from collections import deque

from ackdb.consensus import follower, leader
from ackdb.consensus.log import RaftLog
from ackdb.consensus.progress import Progress, VoteResult, vote_result
from ackdb.consensus.readonly import ReadOnly
from ackdb.consensus.storage import MemoryStorage
from ackdb.consensus.types import (
    Campaign,
    Config,
    Entry,
    EntryKind,
    HardState,
    Message,
    MsgType,
    ReadState,
    Role,
)

# Context of a vote request sent for a leadership transfer: voters must not ignore it
# because of their leader lease (dissertation §3.10 and §4.2.3).
TRANSFER_CONTEXT = b"transfer"


class Raft:
    def __init__(self, config: Config, storage: MemoryStorage, rng: random.Random) -> None:
        self.cfg = config
        self.id = config.node_id
        self.rng = rng
        self.log = RaftLog(storage)
        hs, _ = storage.initial_state()
        assert hs.commit <= self.log.last_index(), f"commit {hs.commit} beyond the log"
        self.term = hs.term
        self.vote: str | None = hs.vote
        self.log.commit_to(hs.commit)
        self.lead: str | None = None
        self.role = Role.FOLLOWER
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.prs: dict[str, Progress] = {}
        self.votes: dict[str, bool] = {}
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = config.election_tick
        self.lead_transferee: str | None = None
        # The leader's appended and not yet committed entries: (index, bytes).
        self.uncommitted: deque[tuple[int, int]] = deque()
        self.uncommitted_bytes = 0
        self.read_only = ReadOnly(config.max_pending_reads)
        # Appends proposed since the last broadcast; sent when the shell asks for a Ready.
        self.pending_bcast = False
        self.become_follower(self.term, None)

    # -- shared state --

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.log.committed)

    def voters(self) -> tuple[str, ...]:
        return self.log.conf_state().voters

    def promotable(self) -> bool:
        """Only a voter of the configuration in its log may campaign (dissertation §4.1)."""
        return self.id in self.voters()

    def send(self, m: Message) -> None:
        assert m.to != self.id, "message to self"
        assert m.term > 0 or m.type in (MsgType.READ_INDEX, MsgType.READ_INDEX_RESP)
        self.msgs.append(m)

    def reset_randomized_election_timeout(self) -> None:
        # Raft §5.2: a random timeout in [election, 2*election) so split votes are rare.
        et = self.cfg.election_tick
        self.randomized_election_timeout = et + self.rng.randrange(et)

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = None
        self.lead = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.lead_transferee = None
        self.votes = {}
        self.prs = {}
        self.uncommitted.clear()
        self.uncommitted_bytes = 0
        self.read_only = ReadOnly(self.cfg.max_pending_reads)
        self.pending_bcast = False

    # -- role transitions --

    def become_follower(self, term: int, lead: str | None) -> None:
        self._reset(term)
        self.lead = lead
        self.role = Role.FOLLOWER

    def become_pre_candidate(self) -> None:
        assert self.role != Role.LEADER, "leader cannot become pre-candidate"
        # A pre-candidate keeps its term and vote: the pre-vote round changes nothing
        # durable (dissertation §9.6).
        self.votes = {}
        self.lead = None
        self.role = Role.PRE_CANDIDATE

    def become_candidate(self) -> None:
        assert self.role != Role.LEADER, "leader cannot become candidate"
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def become_leader(self) -> None:
        assert self.role == Role.CANDIDATE, "only a candidate becomes leader"
        self._reset(self.term)
        self.lead = self.id
        self.role = Role.LEADER
        last = self.log.last_index()
        for v in self.voters():
            pr = Progress(next_index=last + 1, max_inflight=self.cfg.max_inflight_msgs)
            pr.recent_active = True
            if v == self.id:
                pr.match = last
                pr.become_replicate()
            self.prs[v] = pr
        # Raft §8: a no-op of the new term, so the leader learns the commit index (and
        # earlier-term entries commit through it, §5.4.2) without waiting for a client.
        leader.append_entries(self, [Entry(term=self.term, index=last + 1, kind=EntryKind.NOOP)])

    # -- ticks --

    def tick(self) -> None:
        if self.role == Role.LEADER:
            leader.tick_heartbeat(self)
        else:
            self.tick_election()

    def tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self.hup()

    def hup(self) -> None:
        if self.role == Role.LEADER or not self.promotable():
            return
        self.campaign(Campaign.PRE_ELECTION if self.cfg.pre_vote else Campaign.ELECTION)

    # -- elections --

    def campaign(self, kind: Campaign) -> None:
        if kind == Campaign.PRE_ELECTION:
            self.become_pre_candidate()
            vote_type = MsgType.PRE_VOTE
            term = self.term + 1  # the term we would campaign in; ours is unchanged
        else:
            self.become_candidate()
            vote_type = MsgType.VOTE
            term = self.term
        self.votes[self.id] = True
        if self.poll() == VoteResult.WON:  # a single-voter cluster
            if kind == Campaign.PRE_ELECTION:
                self.campaign(Campaign.ELECTION)
            else:
                self.become_leader()
            return
        ctx = TRANSFER_CONTEXT if kind == Campaign.TRANSFER else b""
        for v in self.voters():
            if v != self.id:
                self.send(
                    Message(
                        type=vote_type,
                        frm=self.id,
                        to=v,
                        term=term,
                        index=self.log.last_index(),
                        log_term=self.log.last_term(),
                        context=ctx,
                    )
                )

    def poll(self) -> VoteResult:
        return vote_result(self.voters(), self.votes)

    # -- the message entry point --

    def step(self, m: Message) -> None:
        if m.to != self.id or m.term == 0 or not _well_formed(m):
            return
        if m.term > self.term:
            if not self._accept_higher_term(m):
                return
        elif m.term < self.term:
            self._on_lower_term(m)
            return
        if m.type in (MsgType.VOTE, MsgType.PRE_VOTE):
            self._on_vote_request(m)
        elif self.role == Role.LEADER:
            leader.step_leader(self, m)
        elif self.role == Role.FOLLOWER:
            follower.step_follower(self, m)
        else:
            follower.step_candidate(self, m)

    def _accept_higher_term(self, m: Message) -> bool:
        """Raft §5.1: a higher term makes us a follower -- with the exceptions PreVote and
        the leader lease need. False when the message must be ignored."""
        if m.type in (MsgType.VOTE, MsgType.PRE_VOTE):
            force = m.context == TRANSFER_CONTEXT
            # Dissertation §4.2.3: while we hear from a leader, ignore vote requests, so a
            # removed or partitioned server cannot depose a working leader.
            in_lease = (
                self.cfg.check_quorum
                and self.lead is not None
                and self.election_elapsed < self.cfg.election_tick
            )
            if in_lease and not force:
                return False
        if m.type == MsgType.PRE_VOTE:
            return True  # never change our term for a pre-vote
        if m.type == MsgType.PRE_VOTE_RESP and not m.reject:
            return True  # granted pre-votes carry the term we will campaign in
        lead = m.frm if m.type in (MsgType.APPEND, MsgType.HEARTBEAT, MsgType.SNAPSHOT) else None
        self.become_follower(m.term, lead)
        return True

    def _on_lower_term(self, m: Message) -> None:
        if (self.cfg.check_quorum or self.cfg.pre_vote) and m.type in (
            MsgType.HEARTBEAT,
            MsgType.APPEND,
        ):
            # A stale leader cut off by a partition: our higher term in the response makes
            # it step down (with PreVote/CheckQuorum our term may not reach it otherwise).
            self.send(Message(type=MsgType.APPEND_RESP, frm=self.id, to=m.frm, term=self.term))
        elif m.type == MsgType.PRE_VOTE:
            self.send(
                Message(
                    type=MsgType.PRE_VOTE_RESP, frm=self.id, to=m.frm, term=self.term, reject=True
                )
            )

    def _on_vote_request(self, m: Message) -> None:
        resp = MsgType.VOTE_RESP if m.type == MsgType.VOTE else MsgType.PRE_VOTE_RESP
        # Raft §5.2: one vote per term, first come first served; a pre-vote for a future
        # term promises nothing and may be granted whenever we have no leader.
        can_vote = (
            self.vote == m.frm
            or (self.vote is None and self.lead is None)
            or (m.type == MsgType.PRE_VOTE and m.term > self.term)
        )
        # Raft §5.4.1: only for a candidate whose log is at least as up to date as ours.
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            self.send(Message(type=resp, frm=self.id, to=m.frm, term=m.term))
            if m.type == MsgType.VOTE:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self.send(Message(type=resp, frm=self.id, to=m.frm, term=self.term, reject=True))

    # -- configuration --

    def conf_changed(self) -> None:
        """The configuration at the log tail may have changed (appended or truncated)."""
        if self.role == Role.LEADER:
            leader.sync_progress(self)


def _well_formed(m: Message) -> bool:
    """Drop messages whose fields contradict each other (garbage must not trip asserts)."""
    if m.entries and m.entries[0].index != m.index + 1:
        return False
    if any(e.term > m.term for e in m.entries):
        return False
    if any(a.term > b.term for a, b in zip(m.entries, m.entries[1:], strict=False)):
        return False
    if m.type == MsgType.SNAPSHOT and m.snapshot is None:
        return False
    return not (m.type == MsgType.APPEND and m.entries and m.log_term > m.entries[0].term)
