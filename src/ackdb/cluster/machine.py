"""The cluster metadata as the Raft driver applies it (its ``StateMachine`` port).

Owns: the member's current ``MetadataStore`` (replaced whole when a snapshot is
installed) and what follows from applying an entry: the proposer learns the outcome of
the commands it is waiting for, and configuration entries go to ``on_conf_entry`` (the
member's membership shell). Never does IO; time comes in through ``now_ms``.

On a snapshot install the commands of ours the snapshot covers can no longer be matched
with their entries: the session knows the last one's result only, so every such command
fails with ``TRYAGAIN`` -- never a guess, since it may have applied.
"""

from __future__ import annotations

from collections.abc import Callable

from ackdb.cluster.commands import fail
from ackdb.cluster.metadata import MetadataStore
from ackdb.cluster.proposer import Proposer
from ackdb.consensus import Entry, EntryKind, Snapshot


class MetadataMachine:
    def __init__(
        self,
        meta: MetadataStore,
        proposer: Proposer,
        on_conf_entry: Callable[[Entry], None],
        now_ms: Callable[[], int],
        on_restored: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.meta = meta
        self.proposer = proposer
        self.on_conf_entry = on_conf_entry
        self.now_ms = now_ms
        self.on_restored = on_restored

    @property
    def applied_index(self) -> int:
        return self.meta.applied_index

    def restore(self, snap: Snapshot) -> None:
        self.meta = MetadataStore.restore(snap.data) if snap.data else MetadataStore()
        if self.on_restored is not None:
            self.on_restored(snap)
        p = self.proposer
        last = self.meta.sessions.last_seq(p.client_id)
        for seq, pending in list(p.pending.items()):
            if seq <= last:
                del p.pending[seq]
                pending.done(fail("TRYAGAIN outcome unknown: this node caught up from a snapshot"))

    def apply(self, entry: Entry) -> None:
        applied = self.meta.apply_entry(entry)
        if applied is not None:
            self.proposer.on_applied(applied, self.now_ms())
        elif entry.kind is EntryKind.CONF_CHANGE:
            self.on_conf_entry(entry)

    def snapshot_data(self) -> bytes:
        return self.meta.snapshot()
