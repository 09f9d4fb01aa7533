"""The cluster metadata as the simulated Raft members' state machine.

Owns: ``MetaStateMachine`` -- the real ``MetadataStore`` (cluster/metadata.py: members,
databases, shard records and the failover ops of cluster/shardops.py, client sessions,
snapshots) behind the interface sim/node.py's members apply through (sim/kv.py's
``KvStateMachine``). Commands are cluster/commands.py's, proposed by the simulated
agents and controllers; nobody waits on an entry's result (they read the metadata they
applied instead), so ``apply`` hands back nothing. Never does IO.
"""

from __future__ import annotations

from typing import Any

from ackdb.cluster.metadata import MetadataStore
from ackdb.consensus import Entry
from ackdb.sim.kv import Applied, KvStateMachine


class MetaStateMachine(KvStateMachine):
    def __init__(self, meta: MetadataStore | None = None) -> None:
        super().__init__()
        self.meta = meta if meta is not None else MetadataStore()

    def apply(self, e: Entry) -> Applied | None:
        assert e.index == self.meta.applied_index + 1, (e.index, self.meta.applied_index)
        self.meta.apply_entry(e)
        self.applied = self.meta.applied_index
        return None

    def get(self, key: str) -> Any:
        return None  # reads are ReadIndex rounds whose value nobody uses

    def snapshot(self) -> bytes:
        return self.meta.snapshot()

    @classmethod
    def restore(cls, data: bytes, index: int) -> KvStateMachine:
        sm = cls(MetadataStore.restore(data) if data else MetadataStore())
        assert not data or sm.meta.applied_index == index, (sm.meta.applied_index, index)
        sm.applied = sm.meta.applied_index
        return sm

    def digest(self) -> tuple[int, tuple[tuple[str, Any], ...]]:
        return self.applied, (("snapshot", self.meta.snapshot()),)
