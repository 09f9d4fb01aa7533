"""The proposer (ackdb.cluster.proposer): routing, retries, reissue, timeouts -- against a
real MetadataStore as the log's consumer."""

from __future__ import annotations

from ackdb.cluster.commands import Op, Result, decode_command
from ackdb.cluster.metadata import MetadataStore
from ackdb.cluster.proposer import Proposer
from ackdb.consensus import Entry, ProposalDropped


class World:
    """One member's proposer; ``log`` collects what reaches a leader, in order."""

    def __init__(self, node_id: str = "n2") -> None:
        self.local: list[bytes] = []
        self.forwarded: list[tuple[str, bytes]] = []
        self.drop_local = False
        self.results: dict[int, Result] = {}
        self.p = Proposer(node_id, f"{node_id}.x", self._propose, self._forward, 1000, 5000)
        self.store = MetadataStore()

    def _propose(self, data: bytes) -> int:
        if self.drop_local:
            raise ProposalDropped(None, "not leader")
        self.local.append(data)
        return len(self.local)

    def _forward(self, leader: str, data: bytes) -> bool:
        self.forwarded.append((leader, data))
        return True

    def submit(self, tag: int, key: bytes, now: int = 0) -> None:
        self.p.submit(
            Op.KV_SET, (key, b"v"), now, lambda r, tag=tag: self.results.__setitem__(tag, r)
        )

    def commit(self, data: bytes, now: int = 0) -> None:
        e = Entry(term=1, index=self.store.applied_index + 1, data=data)
        applied = self.store.apply_entry(e)
        assert applied is not None
        self.p.on_applied(applied, now)


def seq_of(data: bytes) -> int:
    return decode_command(data).seq


def test_waits_for_a_leader_then_forwards_in_order() -> None:
    w = World()
    w.submit(1, b"a")
    w.submit(2, b"b")
    assert w.forwarded == [] and w.local == []
    w.p.on_leader("n1", 10)
    assert [(ld, seq_of(d)) for ld, d in w.forwarded] == [("n1", 1), ("n1", 2)]
    for _, d in w.forwarded:
        w.commit(d)
    assert w.results == {1: Result(True), 2: Result(True)}
    assert w.p.pending == {}


def test_leader_proposes_locally() -> None:
    w = World("n1")
    w.p.on_leader("n1", 0)
    w.submit(1, b"a")
    assert len(w.local) == 1 and w.forwarded == []
    w.commit(w.local[0])
    assert w.results[1] == Result(True)


def test_retry_after_silence_and_duplicates_apply_once() -> None:
    w = World()
    w.p.on_leader("n1", 0)
    w.submit(1, b"a")
    w.p.tick(999)
    assert len(w.forwarded) == 1
    w.p.tick(1000)  # unanswered for retry_ms: sent again, same number
    assert len(w.forwarded) == 2
    assert seq_of(w.forwarded[0][1]) == seq_of(w.forwarded[1][1])
    w.commit(w.forwarded[0][1])
    w.commit(w.forwarded[1][1])  # the copy: a retry, answered from the session
    assert w.results == {1: Result(True)}
    assert w.store.applied_index == 2 and len(w.store.kv) == 1


def test_new_leader_gets_everything_pending() -> None:
    w = World()
    w.p.on_leader("n1", 0)
    w.submit(1, b"a")
    w.submit(2, b"b")
    w.p.on_leader(None, 5)
    w.p.on_leader("n3", 6)
    assert [ld for ld, _ in w.forwarded] == ["n1", "n1", "n3", "n3"]


def test_lost_earlier_command_is_reissued() -> None:
    w = World()
    w.p.on_leader("n1", 0)
    w.submit(1, b"a")
    w.submit(2, b"b")
    lost, kept = w.forwarded[0][1], w.forwarded[1][1]
    w.commit(kept)  # seq 2 applied; seq 1 can never apply now
    assert w.results == {2: Result(True)}
    assert w.p.reissued == 1
    reissued = w.forwarded[-1][1]
    assert seq_of(reissued) == 3 and decode_command(reissued).args == (b"a", b"v")
    w.commit(lost)  # a late copy of seq 1: refused by the session, not applied
    assert b"a" not in w.store.kv
    w.commit(reissued)
    assert w.results[1] == Result(True) and w.store.kv[b"a"].value == b"v"


def test_timeouts_name_the_reason() -> None:
    w = World()
    w.submit(1, b"a", now=0)
    w.p.tick(5000)
    assert w.results[1].error.startswith("NOQUORUM")
    w.p.on_leader("n1", 5000)
    w.submit(2, b"b", now=5000)
    w.p.tick(10_000)
    assert w.results[2].error.startswith("TRYAGAIN")
    assert w.p.pending == {}


def test_dropped_local_proposal_is_retried_on_tick() -> None:
    w = World("n1")
    w.drop_local = True
    w.p.on_leader("n1", 0)
    w.submit(1, b"a")
    assert w.local == []
    w.drop_local = False
    w.p.tick(10)
    assert len(w.local) == 1


def test_other_clients_entries_are_ignored() -> None:
    w = World()
    other = World("n3")
    other.p.on_leader("n3", 0)
    other.submit(1, b"z")
    w.commit(other.local[0])
    assert w.results == {}
