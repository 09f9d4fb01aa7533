"""The safety properties of Raft (Figure 3 of the paper), checked as the simulation runs.

Owns: global knowledge no single member has -- the leader of every term, every (index,
term) entry ever written, every committed and applied entry -- and the checks against it.
Never does IO; a violation raises ``SafetyViolation``.

- Election Safety: at most one leader per term.
- Log Matching: checked incrementally. Whenever a member writes an entry, its content and
  the term of the entry before it must equal those of every other entry with the same
  (index, term) ever written. By induction two logs that share an (index, term) are then
  identical up to that index.
- Leader Completeness: when a member first leads a term, its log holds every entry known
  to be committed (that is not inside its snapshot).
- State Machine Safety: no two members commit or apply different entries at one index.
"""

from __future__ import annotations

from ackdb.consensus import Entry, EntryKind, Snapshot
from ackdb.consensus.log import RaftLog


class SafetyViolation(AssertionError):
    pass


EntryId = tuple[int, EntryKind, bytes]  # term, kind, data


class SafetyChecker:
    def __init__(self) -> None:
        self.leaders: dict[int, str] = {}
        self.written: dict[tuple[int, int], tuple[EntryKind, bytes, int]] = {}
        self.committed: dict[int, EntryId] = {}
        self.max_committed = 0
        self.checks = 0

    def on_leader(self, node: str, term: int, log: RaftLog) -> None:
        """Called after every event for every member that is leader."""
        self.checks += 1
        known = self.leaders.get(term)
        if known == node:
            return
        if known is not None:
            raise SafetyViolation(f"Election Safety: {known} and {node} both lead term {term}")
        self.leaders[term] = node
        self._check_complete(node, term, log)

    def _check_complete(self, node: str, term: int, log: RaftLog) -> None:
        first = log.first_index()
        for index in range(first, self.max_committed + 1):
            want = self.committed.get(index)
            if want is None:
                continue
            have = log.term(index)
            if have != want[0] or _content(log, index) != want:
                raise SafetyViolation(
                    f"Leader Completeness: {node} leads term {term} but holds "
                    f"term {have} at committed index {index} (committed term {want[0]})"
                )

    def on_write(self, node: str, log: RaftLog, entries: tuple[Entry, ...]) -> None:
        """Entries a member just wrote to its log (Log Matching)."""
        for e in entries:
            prev_term = log.term(e.index - 1)
            assert prev_term is not None, f"{node}: no term before written entry {e.index}"
            seen = self.written.setdefault((e.index, e.term), (e.kind, e.data, prev_term))
            if seen != (e.kind, e.data, prev_term):
                raise SafetyViolation(
                    f"Log Matching: {node} wrote index {e.index} term {e.term} with "
                    f"previous term {prev_term}, another member wrote it with {seen[2]} "
                    f"or different content"
                )

    def on_snapshot(self, node: str, snap: Snapshot) -> None:
        want = self.committed.get(snap.index)
        if want is not None and want[0] != snap.term:
            raise SafetyViolation(
                f"State Machine Safety: {node} installed a snapshot at {snap.index} of term "
                f"{snap.term}, committed term there is {want[0]}"
            )

    def on_commit(self, node: str, log: RaftLog, old: int, new: int) -> None:
        """A member's commit index moved from ``old`` to ``new``."""
        for index in range(max(old + 1, log.first_index()), new + 1):
            got = _content(log, index)
            want = self.committed.setdefault(index, got)
            if want != got:
                raise SafetyViolation(
                    f"State Machine Safety: {node} commits term {got[0]} at index {index}, "
                    f"another member committed term {want[0]}"
                )
        self.max_committed = max(self.max_committed, new)

    def on_apply(self, node: str, e: Entry) -> None:
        got = (e.term, e.kind, e.data)
        want = self.committed.setdefault(e.index, got)
        if want != got:
            raise SafetyViolation(
                f"State Machine Safety: {node} applies term {e.term} at index {e.index}, "
                f"committed there: term {want[0]}"
            )


def _content(log: RaftLog, index: int) -> EntryId:
    e = log.slice(index, index + 1)[0]
    return (e.term, e.kind, e.data)
