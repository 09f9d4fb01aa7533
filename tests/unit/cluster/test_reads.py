"""ReadIndex batching (ackdb.cluster.reads)."""

from __future__ import annotations

from ackdb.cluster.reads import Reads
from ackdb.consensus import ProposalDropped, ReadState


class World:
    def __init__(self) -> None:
        self.asked: list[bytes] = []
        self.no_leader = False
        self.out: list[str] = []
        self.reads = Reads(self._ask, retry_ms=500, timeout_ms=5000)

    def _ask(self, ctx: bytes) -> None:
        if self.no_leader:
            raise ProposalDropped(None, "no leader known")
        self.asked.append(ctx)

    def add(self, tag: str, now: int = 0) -> None:
        self.reads.add(lambda: self.out.append(tag), lambda e: self.out.append(f"{tag}:{e}"), now)


def test_one_request_per_pass_and_served_after_apply() -> None:
    w = World()
    w.add("a")
    w.add("b")
    w.reads.flush(0)
    assert len(w.asked) == 1
    w.add("c")
    w.reads.flush(1)
    assert len(w.asked) == 2
    w.reads.on_read_state(ReadState(w.asked[0], 10))
    w.reads.on_read_state(ReadState(w.asked[1], 12))
    w.reads.on_applied(9)
    assert w.out == []
    w.reads.on_applied(11)
    assert w.out == ["a", "b"]
    w.reads.on_applied(12)
    assert w.out == ["a", "b", "c"] and len(w.reads) == 0


def test_lost_answer_is_asked_again_and_late_answer_ignored() -> None:
    w = World()
    w.add("a")
    w.reads.flush(0)
    w.reads.tick(499)
    assert len(w.asked) == 1
    w.reads.tick(500)
    assert len(w.asked) == 2
    w.reads.on_read_state(ReadState(w.asked[0], 3))  # the retried request's late answer
    w.reads.on_applied(100)
    assert w.out == []
    w.reads.on_read_state(ReadState(w.asked[1], 4))
    w.reads.on_applied(100)
    assert w.out == ["a"]


def test_no_leader_waits_then_fails_noquorum() -> None:
    w = World()
    w.no_leader = True
    w.add("a")
    w.reads.flush(0)
    w.reads.tick(100)
    assert w.asked == [] and w.out == []
    w.reads.tick(5000)
    assert w.out == ["a:NOQUORUM no leader: this node cannot reach a majority"]


def test_confirmed_but_not_applied_times_out_tryagain() -> None:
    w = World()
    w.reads.leader_known = True
    w.add("a")
    w.reads.flush(0)
    w.reads.on_read_state(ReadState(w.asked[0], 50))
    w.reads.tick(5000)
    assert w.out == ["a:TRYAGAIN read not confirmed within 5000 ms"]
    assert len(w.reads) == 0


def test_fail_all() -> None:
    w = World()
    w.add("a")
    w.add("b")
    w.reads.flush(0)
    w.add("c")
    w.reads.fail_all("ERR shutting down")
    assert sorted(w.out) == ["a:ERR shutting down", "b:ERR shutting down", "c:ERR shutting down"]
