"""A synchronous in-memory network of RawNodes for the consensus unit tests.

Every ``stabilize()`` round persists each member's Ready (as a correct shell would: write,
then send, then apply) and delivers the messages at once, unless a link is cut. Tests can
also pull one member's messages without delivering them (``take``) and hand-craft input.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from ackdb.consensus import (
    Config,
    Entry,
    EntryKind,
    MemoryStorage,
    Message,
    MsgType,
    RawNode,
    ReadState,
    Role,
)
from ackdb.consensus.raft import Raft


def config(node_id: str, **kw: object) -> Config:
    kw.setdefault("pre_vote", False)
    kw.setdefault("check_quorum", False)
    return Config(node_id=node_id, **kw)  # type: ignore[arg-type]


def ids(n: int) -> tuple[str, ...]:
    return tuple(f"n{i}" for i in range(1, n + 1))


class Net:
    def __init__(self, members: Iterable[str], seed: int = 1, **cfg: object) -> None:
        self.ids = tuple(members)
        self.nodes: dict[str, RawNode] = {}
        self.applied: dict[str, list[Entry]] = {}
        self.reads: dict[str, list[ReadState]] = {}
        self.cut: set[tuple[str, str]] = set()
        self.down: set[str] = set()
        self.sent: list[Message] = []
        for i, nid in enumerate(self.ids):
            self.add(nid, seed=seed * 100 + i, bootstrap=self.ids, **cfg)

    def add(
        self, nid: str, seed: int = 0, bootstrap: tuple[str, ...] | None = None, **cfg: object
    ) -> RawNode:
        node = RawNode(config(nid, **cfg), MemoryStorage(), random.Random(seed))
        if bootstrap is not None:
            node.bootstrap(bootstrap)
        self.nodes[nid] = node
        self.applied[nid] = []
        self.reads[nid] = []
        self.persist(nid)
        return node

    def raft(self, nid: str) -> Raft:
        return self.nodes[nid].raft

    def persist(self, nid: str) -> list[Message]:
        """Carry out the member's pending Readys; returns the messages to send."""
        node = self.nodes[nid]
        out: list[Message] = []
        while node.has_ready():
            rd = node.ready()
            if rd.snapshot is not None:
                node.storage.apply_snapshot(rd.snapshot)
            node.storage.append(rd.entries)
            if rd.hard_state is not None:
                node.storage.set_hard_state(rd.hard_state)
            out.extend(rd.messages)
            self.applied[nid].extend(rd.committed_entries)
            self.reads[nid].extend(rd.read_states)
            node.advance(rd)
        return out

    def take(self, nid: str, type_: MsgType | None = None) -> list[Message]:
        """Persist and return the member's messages without delivering them."""
        msgs = self.persist(nid)
        return [m for m in msgs if type_ is None or m.type == type_]

    def deliver(self, msgs: Iterable[Message]) -> None:
        for m in msgs:
            self.sent.append(m)
            if (m.frm, m.to) in self.cut or m.to in self.down or m.frm in self.down:
                continue
            if m.to in self.nodes:
                self.nodes[m.to].step(m)

    def stabilize(self, rounds: int = 200) -> None:
        for _ in range(rounds):
            msgs: list[Message] = []
            for nid in self.nodes:
                if nid not in self.down:
                    msgs.extend(self.persist(nid))
            if not msgs:
                return
            self.deliver(msgs)
        raise AssertionError("network did not stabilize")

    def tick(self, nid: str, n: int = 1) -> None:
        for _ in range(n):
            self.nodes[nid].tick()

    def elect(self, nid: str) -> None:
        self.nodes[nid].campaign()
        self.stabilize()
        assert self.raft(nid).role == Role.LEADER, f"{nid} did not win"

    def isolate(self, nid: str) -> None:
        for o in self.nodes:
            if o != nid:
                self.cut |= {(nid, o), (o, nid)}

    def heal(self) -> None:
        self.cut.clear()

    def propose(self, nid: str, data: bytes) -> int:
        index = self.nodes[nid].propose(data)
        self.stabilize()
        return index

    def data_applied(self, nid: str) -> list[bytes]:
        return [e.data for e in self.applied[nid] if e.kind == EntryKind.NORMAL]


def msg(type_: MsgType, frm: str, to: str, term: int, **kw: object) -> Message:
    return Message(type=type_, frm=frm, to=to, term=term, **kw)  # type: ignore[arg-type]


def entries(*terms: int, start: int = 1) -> list[Entry]:
    return [Entry(term=t, index=start + i) for i, t in enumerate(terms)]


def raft_with_log(
    nid: str, voters: tuple[str, ...], terms: list[int], term: int, **cfg: object
) -> RawNode:
    """A member whose stable log has entries of ``terms`` (index 1 is the bootstrap entry
    of term 1) and whose current term is ``term``."""
    from ackdb.consensus import ConfState, HardState, encode_conf_entry

    storage = MemoryStorage()
    boot = Entry(
        term=1,
        index=1,
        kind=EntryKind.CONF_CHANGE,
        data=encode_conf_entry(None, ConfState(voters=tuple(sorted(voters)))),
    )
    storage.append([boot] + [Entry(term=t, index=i + 2, data=b"x") for i, t in enumerate(terms)])
    storage.set_hard_state(HardState(term=term, vote=None, commit=1))
    return RawNode(config(nid, **cfg), storage, random.Random(7))
