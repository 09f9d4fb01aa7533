"""Bringing the Raft configuration and the member records in line with what was asked.

Owns: the decisions that follow from the metadata, taken each tick:
- every member registers its own addresses once it is a voter (``member.put``), so the
  others can reach its client and cluster ports;
- the leader adds JOINING members as voters and removes REMOVING ones, one
  configuration change at a time (Raft dissertation §4.1: single-server changes, the next
  only after the previous one applied); a removed leader steps down by itself (§4.2.2);
- the leader records each voter's health: DOWN once it has not heard from it for
  ``settle_ms``, OK again as soon as it does. The core's ``recent_active`` is cleared at
  every quorum check and set by the next reply, so one look at it would flap: the
  reconciler remembers when it last saw each voter active instead. A new leader counts
  every voter as seen when it took office.

Never does IO: ``step`` looks at a Status and the metadata and returns actions for the
Raft member (node/member.py) to carry out; each kind of action is rate-limited here
(``retry_ms``) so a slow commit is not flooded with copies.
"""

from __future__ import annotations

from dataclasses import dataclass

from ackdb.cluster.commands import Health, Op
from ackdb.cluster.metadata import MemberState, MetadataStore, encode_member_context
from ackdb.consensus import ConfChange, ConfChangeKind, Role, Status


@dataclass(frozen=True, slots=True)
class Submit:
    op: Op
    args: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ProposeConf:
    cc: ConfChange


Action = Submit | ProposeConf


class Reconciler:
    def __init__(
        self,
        node_id: str,
        client_addr: str,
        cluster_addr: str,
        retry_ms: int = 2000,
        settle_ms: int = 2000,
    ) -> None:
        self.node_id = node_id
        self.client_addr = client_addr
        self.cluster_addr = cluster_addr
        self.retry_ms = retry_ms
        self.settle_ms = settle_ms
        self._last: dict[tuple[str, str], int] = {}  # (what, member) -> when last acted
        self._leading_since: int | None = None
        self._term = 0
        self._seen: dict[str, int] = {}  # voter -> when the leader last saw it active

    def _due(self, what: str, member: str, now_ms: int) -> bool:
        last = self._last.get((what, member))
        if last is not None and now_ms - last < self.retry_ms:
            return False
        self._last[(what, member)] = now_ms
        return True

    def step(self, st: Status, meta: MetadataStore, now_ms: int) -> list[Action]:
        out: list[Action] = []
        me = meta.members.get(self.node_id)
        if (
            st.leader is not None
            and self.node_id in meta.voters
            and (
                me is None
                or (me.client_addr, me.cluster_addr) != (self.client_addr, self.cluster_addr)
            )
            and self._due("register", self.node_id, now_ms)
        ):
            out.append(Submit(Op.MEMBER_PUT, (self.node_id, self.client_addr, self.cluster_addr)))
        if st.role is not Role.LEADER:
            self._leading_since = None
            return out
        if self._leading_since is None or st.term != self._term:
            self._leading_since, self._term = now_ms, st.term
            self._seen = {}
        out.extend(self._membership(st, meta, now_ms))
        out.extend(self._health(st, meta, now_ms))
        return out

    def _membership(self, st: Status, meta: MetadataStore, now_ms: int) -> list[Action]:
        voters = set(st.voters)
        for m in meta.member_list():
            if m.state is MemberState.JOINING and m.id not in voters:
                if self._due("conf", "", now_ms):
                    ctx = encode_member_context(m.client_addr, m.cluster_addr)
                    return [ProposeConf(ConfChange(ConfChangeKind.ADD_NODE, m.id, ctx))]
                return []
            if m.state is MemberState.REMOVING and m.id in voters:
                if self._due("conf", "", now_ms):
                    return [ProposeConf(ConfChange(ConfChangeKind.REMOVE_NODE, m.id))]
                return []
        return []

    def _health(self, st: Status, meta: MetadataStore, now_ms: int) -> list[Action]:
        assert self._leading_since is not None
        out: list[Action] = []
        for v in st.voters:
            pr = st.progress.get(v)
            if v == self.node_id or (pr is not None and pr.recent_active):
                self._seen[v] = now_ms
        for v in st.voters:
            m = meta.members.get(v)
            have = Health.UNKNOWN if m is None else m.health
            seen = self._seen.get(v, self._leading_since)
            want = Health.OK if now_ms - seen < self.settle_ms else Health.DOWN
            if have is not want and self._due("health", v, now_ms):
                out.append(Submit(Op.MEMBER_HEALTH, (v, want.value)))
        return out
