"""The leader role: replication, commitment, reads, conf changes, leadership transfer.

Owns: every transition a leader makes (etcd raft stepLeader, sendAppend, bcastHeartbeat,
maybeCommit). Never does IO; functions take the Raft they act on and only queue messages.

Rules it keeps, with their sources:
- Raft §5.3: a follower's log is repaired by backing ``next`` off until the logs match.
- Raft §5.4.2: only an entry of the current term is committed by counting replicas;
  earlier entries commit with it.
- Raft §7: a follower whose needed entries were compacted gets the snapshot instead.
- Dissertation §4.1 (one server at a time), with the fix Ongaro posted to raft-dev on
  2015-07-10 ("bug in single-server membership changes"): a leader appends a conf change
  only when no other conf change is uncommitted AND it has committed an entry of its own
  term. The configuration takes effect when its entry is appended (log.py).
- Dissertation §4.2.2: a leader removed from the configuration keeps leading until the
  removal commits, then steps down (handing over with TimeoutNow).
- Dissertation §6.4: ReadIndex (readonly.py). §3.10: leadership transfer.
- Dissertation §6.2: CheckQuorum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ackdb.consensus.codec import encode_conf_entry
from ackdb.consensus.progress import Progress, ProgressState, committed_index, quorum
from ackdb.consensus.readonly import ReadRequest, decode_round, encode_round
from ackdb.consensus.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    Message,
    MsgType,
    ProposalDropped,
    ReadState,
    Role,
)

if TYPE_CHECKING:
    from ackdb.consensus.raft import Raft


# -- appending and proposing --


def append_entries(r: Raft, entries: Sequence[Entry]) -> int:
    last = r.log.append(entries)
    for e in entries:
        r.uncommitted.append((e.index, e.size()))
        r.uncommitted_bytes += e.size()
    pr = r.prs.get(r.id)
    if pr is not None:
        pr.maybe_update(last)
    if any(e.kind == EntryKind.CONF_CHANGE for e in entries):
        r.conf_changed()
    maybe_commit(r)
    r.pending_bcast = True
    return last


def _check_can_propose(r: Raft) -> None:
    if r.role != Role.LEADER:
        raise ProposalDropped(r.lead, "not the leader")
    if r.lead_transferee is not None:
        raise ProposalDropped(r.lead_transferee, "leadership transfer in progress")


def propose(r: Raft, data: bytes) -> int:
    _check_can_propose(r)
    e = Entry(term=r.term, index=r.log.last_index() + 1, kind=EntryKind.NORMAL, data=data)
    if r.uncommitted_bytes and r.uncommitted_bytes + e.size() > r.cfg.max_uncommitted_bytes:
        raise ProposalDropped(r.id, "too many uncommitted bytes")
    return append_entries(r, [e])


def propose_conf_change(r: Raft, cc: ConfChange) -> int:
    _check_can_propose(r)
    if r.log.last_conf_index() > r.log.committed:
        raise ProposalDropped(r.id, "a configuration change is still uncommitted")
    if r.log.term(r.log.committed) != r.term:
        raise ProposalDropped(r.id, "no entry of this term committed yet")
    voters = set(r.voters())
    if cc.kind == ConfChangeKind.ADD_NODE:
        if cc.node_id in voters:
            raise ProposalDropped(r.id, f"{cc.node_id} is already a voter")
        voters.add(cc.node_id)
    else:
        if cc.node_id not in voters:
            raise ProposalDropped(r.id, f"{cc.node_id} is not a voter")
        if len(voters) == 1:
            raise ProposalDropped(r.id, "cannot remove the last voter")
        voters.discard(cc.node_id)
    data = encode_conf_entry(cc, ConfState(voters=tuple(sorted(voters))))
    e = Entry(term=r.term, index=r.log.last_index() + 1, kind=EntryKind.CONF_CHANGE, data=data)
    return append_entries(r, [e])


def sync_progress(r: Raft) -> None:
    """Track exactly the voters of the newest configuration."""
    voters = r.voters()
    last = r.log.last_index()
    for v in voters:
        if v not in r.prs:
            pr = Progress(next_index=last + 1, max_inflight=r.cfg.max_inflight_msgs)
            pr.recent_active = True  # a new member gets an election timeout to catch up
            if v == r.id:
                pr.match = last
                pr.become_replicate()
            r.prs[v] = pr
    for v in [v for v in r.prs if v not in voters]:
        del r.prs[v]
    if r.lead_transferee is not None and r.lead_transferee not in r.prs:
        r.lead_transferee = None
    # A smaller quorum may already hold more entries and have confirmed more reads.
    if maybe_commit(r):
        r.pending_bcast = True
    _release_reads(r)


# -- commitment --


def maybe_commit(r: Raft) -> bool:
    voters = r.voters()
    mci = committed_index(voters, {v: pr.match for v, pr in r.prs.items()})
    if mci <= r.log.committed:
        return False
    # Raft §5.4.2: never commit an entry of an earlier term by counting replicas
    # (Figure 8): it could still be overwritten by a leader that lacks it.
    if r.log.term(mci) != r.term and not r.cfg.test_only_unsafe_commit_any_term:
        return False
    r.log.commit_to(mci)
    _on_commit(r)
    return True


def _on_commit(r: Raft) -> None:
    committed = r.log.committed
    while r.uncommitted and r.uncommitted[0][0] <= committed:
        r.uncommitted_bytes -= r.uncommitted.popleft()[1]
    if r.read_only.waiting_commit and r.log.term(committed) == r.term:
        for req in r.read_only.take_waiting():
            read_index(r, req.ctx, req.origin)


def maybe_step_down_removed(r: Raft) -> None:
    """Dissertation §4.2.2: once its removal is committed, the leader hands over."""
    if r.role != Role.LEADER or r.id in r.voters():
        return
    if r.log.last_conf_index() > r.log.committed:
        return
    flush(r)
    last = r.log.last_index()
    heir = next((v for v, pr in sorted(r.prs.items()) if pr.match == last), None)
    if heir is not None:
        r.send(Message(type=MsgType.TIMEOUT_NOW, frm=r.id, to=heir, term=r.term))
    r.become_follower(r.term, None)


# -- sending --


def send_append(r: Raft, to: str, send_if_empty: bool = True) -> bool:
    pr = r.prs[to]
    if pr.is_paused():
        return False
    prev_index = pr.next - 1
    prev_term = r.log.term(prev_index)
    ents = r.log.entries_from(pr.next, r.cfg.max_entries_bytes_per_msg)
    if prev_term is None or ents is None:
        return _send_snapshot(r, to, pr)
    if not ents and not send_if_empty:
        return False
    r.send(
        Message(
            type=MsgType.APPEND,
            frm=r.id,
            to=to,
            term=r.term,
            index=prev_index,
            log_term=prev_term,
            entries=tuple(ents),
            commit=r.log.committed,
        )
    )
    pr.sent_entries(ents[-1].index if ents else prev_index, len(ents))
    return True


def _send_snapshot(r: Raft, to: str, pr: Progress) -> bool:
    # Raft §7: the entries are gone; send the snapshot (only to a peer that answers).
    if not pr.recent_active:
        return False
    snap = r.log.snapshot()
    assert snap.index > 0, "entries compacted without a snapshot"
    r.send(Message(type=MsgType.SNAPSHOT, frm=r.id, to=to, term=r.term, snapshot=snap))
    pr.become_snapshot(snap.index)
    return True


def bcast_append(r: Raft) -> None:
    for v in r.prs:
        if v != r.id and send_append(r, v):
            # In REPLICATE, stream until the inflight window is full or nothing is left.
            while send_append(r, v, send_if_empty=False):
                pass


def flush(r: Raft) -> None:
    if r.pending_bcast and r.role == Role.LEADER:
        r.pending_bcast = False
        bcast_append(r)


def bcast_heartbeat(r: Raft, round_: int | None = None) -> None:
    if round_ is None:
        round_ = r.read_only.last_round()
    ctx = b"" if round_ is None else encode_round(round_)
    for v, pr in r.prs.items():
        if v != r.id:
            # Never tell a follower to commit past what it is known to hold.
            commit = min(pr.match, r.log.committed)
            r.send(
                Message(
                    type=MsgType.HEARTBEAT, frm=r.id, to=v, term=r.term, commit=commit, context=ctx
                )
            )


# -- ticks --


def tick_heartbeat(r: Raft) -> None:
    r.heartbeat_elapsed += 1
    r.election_elapsed += 1
    if r.election_elapsed >= r.cfg.election_tick:
        r.election_elapsed = 0
        if r.cfg.check_quorum and not _quorum_active(r):
            r.become_follower(r.term, None)
            return
        # Dissertation §3.10: a transfer that did not finish in an election timeout is
        # abandoned and the leader takes proposals again.
        r.lead_transferee = None
    for pr in r.prs.values():
        if pr.state == ProgressState.SNAPSHOT:
            pr.snapshot_ticks += 1
            if pr.snapshot_ticks >= r.cfg.snapshot_timeout_ticks:
                pr.become_probe()
    if r.heartbeat_elapsed >= r.cfg.heartbeat_tick:
        r.heartbeat_elapsed = 0
        bcast_heartbeat(r)


def _quorum_active(r: Raft) -> bool:
    voters = r.voters()
    active = sum(1 for v in voters if v == r.id or (v in r.prs and r.prs[v].recent_active))
    for v, pr in r.prs.items():
        if v != r.id:
            pr.recent_active = False
    return active >= quorum(len(voters))


# -- messages --


def step_leader(r: Raft, m: Message) -> None:
    if m.type == MsgType.READ_INDEX:
        if not r.read_only.full():
            read_index(r, m.context, m.frm)
        return
    pr = r.prs.get(m.frm)
    if pr is None:
        return
    if m.type == MsgType.APPEND_RESP:
        pr.recent_active = True
        if m.reject:
            _on_append_rejected(r, m, pr)
        else:
            _on_append_accepted(r, m, pr)
    elif m.type == MsgType.HEARTBEAT_RESP:
        pr.recent_active = True
        pr.probe_sent = False
        if pr.state == ProgressState.REPLICATE and pr.inflights.full():
            pr.inflights.free_first_one()
        if pr.match < r.log.last_index():
            send_append(r, m.frm)
        round_ = decode_round(m.context)
        if round_ is not None:
            r.read_only.recv_ack(m.frm, round_)
            _release_reads(r)


def _on_append_rejected(r: Raft, m: Message, pr: Progress) -> None:
    next_probe = m.reject_hint
    if m.log_term > 0:
        # The follower's hint: its term at reject_hint. Skip every index of ours whose
        # term is above it (they cannot match).
        next_probe, _ = r.log.find_conflict_by_term(m.reject_hint, m.log_term)
    if pr.maybe_decr_to(m.index, next_probe):
        if pr.state == ProgressState.REPLICATE:
            pr.become_probe()
        send_append(r, m.frm)


def _on_append_accepted(r: Raft, m: Message, pr: Progress) -> None:
    was_paused = pr.is_paused()
    if not pr.maybe_update(m.index):
        return
    if pr.state == ProgressState.PROBE:
        pr.become_replicate()
    elif pr.state == ProgressState.SNAPSHOT and (
        pr.match >= pr.pending_snapshot or pr.match + 1 >= r.log.first_index()
    ):
        pr.become_probe()
        pr.become_replicate()
    elif pr.state == ProgressState.REPLICATE:
        pr.inflights.free_le(m.index)
    if maybe_commit(r):
        r.pending_bcast = True
    elif was_paused:
        send_append(r, m.frm)
    while m.frm in r.prs and send_append(r, m.frm, send_if_empty=False):
        pass
    if m.frm == r.lead_transferee and pr.match == r.log.last_index():
        r.send(Message(type=MsgType.TIMEOUT_NOW, frm=r.id, to=m.frm, term=r.term))


# -- reads --


def read_index(r: Raft, ctx: bytes, origin: str) -> None:
    """Dissertation §6.4: answer once a majority confirms we are still the leader."""
    if r.log.term(r.log.committed) != r.term:
        r.read_only.wait_for_commit(ctx, origin)
        return
    index = r.log.committed
    if r.voters() == (r.id,):
        _answer_read(r, ReadRequest(ctx=ctx, origin=origin, index=index))
        return
    round_ = r.read_only.add(ctx, origin, index)
    bcast_heartbeat(r, round_)


def _release_reads(r: Raft) -> None:
    for req in r.read_only.release(r.id, r.voters()):
        _answer_read(r, req)


def _answer_read(r: Raft, req: ReadRequest) -> None:
    if req.origin == r.id:
        r.read_states.append(ReadState(ctx=req.ctx, index=req.index))
    else:
        r.send(
            Message(
                type=MsgType.READ_INDEX_RESP,
                frm=r.id,
                to=req.origin,
                term=r.term,
                index=req.index,
                context=req.ctx,
            )
        )


# -- leadership transfer and shell reports --


def transfer_leadership(r: Raft, to: str) -> None:
    if r.role != Role.LEADER:
        raise ProposalDropped(r.lead, "not the leader")
    if to == r.id or to == r.lead_transferee:
        return
    if to not in r.prs:
        raise ProposalDropped(r.id, f"{to} is not a voter")
    r.lead_transferee = to
    # The transfer must finish within one election timeout (dissertation §3.10).
    r.election_elapsed = 0
    pr = r.prs[to]
    if pr.match == r.log.last_index():
        r.send(Message(type=MsgType.TIMEOUT_NOW, frm=r.id, to=to, term=r.term))
    else:
        send_append(r, to)


def report_unreachable(r: Raft, peer: str) -> None:
    pr = r.prs.get(peer)
    if r.role == Role.LEADER and pr is not None and pr.state == ProgressState.REPLICATE:
        pr.become_probe()


def report_snapshot(r: Raft, peer: str, ok: bool) -> None:
    pr = r.prs.get(peer)
    if r.role != Role.LEADER or pr is None or pr.state != ProgressState.SNAPSHOT:
        return
    if not ok:
        pr.pending_snapshot = 0
    pr.become_probe()
    # Wait for the follower's next heartbeat answer before probing again.
    pr.probe_sent = True
