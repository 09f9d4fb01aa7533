"""RawNode: the public face of the Raft core (etcd raft rawnode.go).

Owns: the input methods (tick, step, propose, read_index, ...) and the Ready handshake:
``ready()`` hands out everything the shell must do, ``advance(rd)`` records that it was
done. Never does IO, never reads a clock or global randomness.

States of the handshake: idle, or one Ready handed out and not yet advanced. Inputs are
accepted in both states (a shell may step messages while persisting); what they produce
goes into the next Ready.
"""

from __future__ import annotations

import random

from ackdb.consensus import leader
from ackdb.consensus.codec import encode_conf_entry
from ackdb.consensus.raft import Raft
from ackdb.consensus.storage import MemoryStorage
from ackdb.consensus.types import (
    ConfChange,
    Config,
    ConfState,
    Entry,
    EntryKind,
    Message,
    MsgType,
    PeerProgress,
    ProposalDropped,
    Ready,
    Role,
    Snapshot,
    Status,
)


class RawNode:
    def __init__(self, config: Config, storage: MemoryStorage, rng: random.Random) -> None:
        self.config = config
        self.storage = storage
        self.raft = Raft(config, storage, rng)
        self._prev_hs = storage.hard_state
        self._outstanding: Ready | None = None

    # -- inputs --

    def bootstrap(self, voters: tuple[str, ...]) -> None:
        """Start a brand-new cluster: the first entry names the initial voters. It comes out
        in the first Ready (entries, hard state, committed entries) like any other."""
        r = self.raft
        assert r.log.last_index() == 0 and r.term == 0, "bootstrap on a non-empty log"
        assert voters and len(set(voters)) == len(voters), "voters must be distinct"
        data = encode_conf_entry(None, ConfState(voters=tuple(sorted(voters))))
        r.become_follower(1, None)
        # Every bootstrapped member writes the identical entry, so it counts as committed.
        r.log.append([Entry(term=1, index=1, kind=EntryKind.CONF_CHANGE, data=data)])
        r.log.commit_to(1)

    def tick(self) -> None:
        self.raft.tick()
        leader.maybe_step_down_removed(self.raft)

    def step(self, msg: Message) -> None:
        """A message from a peer; stale, misaddressed or inconsistent ones are ignored."""
        self.raft.step(msg)
        leader.maybe_step_down_removed(self.raft)

    def campaign(self) -> None:
        self.raft.hup()

    def propose(self, data: bytes) -> int:
        """Append ``data`` to the log; returns its index (it may still never commit)."""
        return leader.propose(self.raft, data)

    def propose_conf_change(self, cc: ConfChange) -> int:
        return leader.propose_conf_change(self.raft, cc)

    def read_index(self, ctx: bytes) -> None:
        r = self.raft
        if r.role == Role.LEADER:
            if r.read_only.full():
                raise ProposalDropped(r.id, "too many pending reads")
            leader.read_index(r, ctx, r.id)
        elif r.lead is not None:
            r.send(Message(type=MsgType.READ_INDEX, frm=r.id, to=r.lead, term=r.term, context=ctx))
        else:
            raise ProposalDropped(None, "no leader known")

    def transfer_leadership(self, to: str) -> None:
        leader.transfer_leadership(self.raft, to)

    def report_unreachable(self, peer: str) -> None:
        leader.report_unreachable(self.raft, peer)

    def report_snapshot(self, peer: str, ok: bool) -> None:
        leader.report_snapshot(self.raft, peer, ok)

    # -- the Ready handshake --

    def has_ready(self) -> bool:
        r = self.raft
        leader.flush(r)
        log = r.log
        return bool(
            r.hard_state() != self._prev_hs
            or log.unstable
            or log.unstable_snapshot is not None
            or r.msgs
            or r.read_states
            or log.has_next_committed_entries()
        )

    def ready(self) -> Ready:
        r = self.raft
        assert self._outstanding is None, "ready() again before advance()"
        leader.flush(r)
        log = r.log
        hs = r.hard_state()
        changed = hs != self._prev_hs
        entries = tuple(log.unstable)
        snap = log.unstable_snapshot
        rd = Ready(
            hard_state=hs if changed else None,
            entries=entries,
            snapshot=snap,
            messages=tuple(r.msgs),
            committed_entries=tuple(
                log.next_committed_entries(self.config.max_entries_bytes_per_msg)
            ),
            read_states=tuple(r.read_states),
            must_sync=bool(
                entries
                or snap is not None
                or hs.term != self._prev_hs.term
                or hs.vote != self._prev_hs.vote
            ),
        )
        r.msgs = []
        r.read_states = []
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        assert rd is self._outstanding, "advance() with a Ready not handed out"
        self._outstanding = None
        log = self.raft.log
        if rd.hard_state is not None:
            self._prev_hs = rd.hard_state
        if rd.snapshot is not None:
            log.stable_snap_to(rd.snapshot.index)
            log.applied_to(rd.snapshot.index)
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)

    # -- inspection and compaction --

    def status(self) -> Status:
        r = self.raft
        progress: dict[str, PeerProgress] = {}
        if r.role == Role.LEADER:
            progress = {
                v: PeerProgress(pr.match, pr.next, pr.recent_active, pr.state.value)
                for v, pr in r.prs.items()
            }
        return Status(
            id=r.id,
            role=r.role,
            term=r.term,
            leader=r.lead,
            commit=r.log.committed,
            applied=r.log.applied,
            voters=r.voters(),
            progress=progress,
            last_index=r.log.last_index(),
            transferee=r.lead_transferee,
        )

    def compact(self, index: int, data: bytes) -> Snapshot:
        """The application's snapshot ``data`` of its state at ``index`` (<= applied):
        recorded in the storage, which then drops the entries it covers."""
        log = self.raft.log
        assert index <= log.applied, f"compact at {index} beyond applied {log.applied}"
        assert index <= self.storage.last_index(), "compact beyond the persisted log"
        snap = self.storage.create_snapshot(index, log.conf_at(index), data)
        self.storage.compact(index)
        log.compacted_to(index)
        return snap
