"""The follower and candidate roles (etcd raft stepFollower / stepCandidate).

Owns: what a non-leader does with AppendEntries, heartbeats, InstallSnapshot, vote
answers, TimeoutNow and forwarded reads. Never does IO; functions queue messages on the
Raft they are given. Every acknowledgement queued here promises durable state: the shell
sends it only after persisting the Ready it comes in (types.Ready).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ackdb.consensus.progress import VoteResult
from ackdb.consensus.types import Campaign, Message, MsgType, ReadState, Role, Snapshot

if TYPE_CHECKING:
    from ackdb.consensus.raft import Raft


def step_follower(r: Raft, m: Message) -> None:
    if m.type in (MsgType.APPEND, MsgType.HEARTBEAT, MsgType.SNAPSHOT):
        # Raft §5.2: hearing from the leader of our term resets the election timer.
        r.election_elapsed = 0
        r.lead = m.frm
        _on_leader_message(r, m)
    elif m.type == MsgType.TIMEOUT_NOW:
        # Dissertation §3.10: the leader asks us to campaign now, skipping PreVote.
        if r.promotable():
            r.campaign(Campaign.TRANSFER)
    elif m.type == MsgType.READ_INDEX_RESP:
        r.read_states.append(ReadState(ctx=m.context, index=m.index))


def step_candidate(r: Raft, m: Message) -> None:
    """Both PRE_CANDIDATE and CANDIDATE."""
    my_resp = MsgType.PRE_VOTE_RESP if r.role == Role.PRE_CANDIDATE else MsgType.VOTE_RESP
    if m.type in (MsgType.APPEND, MsgType.HEARTBEAT, MsgType.SNAPSHOT):
        # Raft §5.2: a leader of our term exists; stand down.
        r.become_follower(m.term, m.frm)
        _on_leader_message(r, m)
    elif m.type == my_resp:
        r.votes.setdefault(m.frm, not m.reject)
        result = r.poll()
        if result == VoteResult.WON:
            if r.role == Role.PRE_CANDIDATE:
                r.campaign(Campaign.ELECTION)
            else:
                r.become_leader()
        elif result == VoteResult.LOST:
            r.become_follower(r.term, None)


def _on_leader_message(r: Raft, m: Message) -> None:
    if m.type == MsgType.APPEND:
        handle_append_entries(r, m)
    elif m.type == MsgType.HEARTBEAT:
        handle_heartbeat(r, m)
    else:
        assert m.snapshot is not None
        handle_snapshot(r, m.frm, m.snapshot)


def _resp(
    r: Raft, to: str, index: int, reject: bool = False, hint: int = 0, hint_term: int = 0
) -> Message:
    return Message(
        type=MsgType.APPEND_RESP,
        frm=r.id,
        to=to,
        term=r.term,
        index=index,
        reject=reject,
        reject_hint=hint,
        log_term=hint_term,
    )


def handle_append_entries(r: Raft, m: Message) -> None:
    if m.index < r.log.committed:
        # Everything up to our commit index already matches the leader (Log Matching).
        r.send(_resp(r, m.frm, index=r.log.committed))
        return
    last = r.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
    if last is not None:
        r.send(_resp(r, m.frm, index=last))
        return
    # Raft §5.3: reject; hint the leader where our log could match so it can skip a
    # whole term of entries per round trip instead of one entry.
    hint = min(m.index, r.log.last_index())
    hint_index, hint_term = r.log.find_conflict_by_term(hint, m.log_term)
    r.send(_resp(r, m.frm, m.index, reject=True, hint=hint_index, hint_term=hint_term))


def handle_heartbeat(r: Raft, m: Message) -> None:
    # The leader sends min(match, commit), so this never exceeds what matches; clamp
    # anyway so a garbage commit cannot point past our log.
    r.log.commit_to(min(m.commit, r.log.last_index()))
    r.send(Message(type=MsgType.HEARTBEAT_RESP, frm=r.id, to=m.frm, term=r.term, context=m.context))


def handle_snapshot(r: Raft, frm: str, snap: Snapshot) -> None:
    if restore(r, snap):
        r.send(_resp(r, frm, index=r.log.last_index()))
    else:
        r.send(_resp(r, frm, index=r.log.committed))


def restore(r: Raft, snap: Snapshot) -> bool:
    """Raft §7: install ``snap`` unless we already hold what it covers."""
    if snap.index <= r.log.committed:
        return False
    if r.log.match_term(snap.index, snap.term):
        # Our log already contains the snapshot's last entry: keep the log and just
        # learn that everything up to it is committed.
        r.log.commit_to(snap.index)
        return False
    r.log.restore(snap)
    return True
