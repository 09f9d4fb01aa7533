"""The long polls of ``DB.TOPOLOGY name known-version timeout-ms`` on one node.

Owns: the waiting polls (``Watch``), grouped by database, their timers, and the rule that
wakes them: after every pass of the Raft loop that applied something (``check``), a poll
wakes when its database's topology version (cluster/dbops.py) is above the version its
client knows, or when the database is gone; otherwise at its timeout. Waking calls the
poll's ``respond`` (the client port builds the reply); nothing here encodes anything.

Limits: ``TOPOLOGY_WATCHES_MAX`` polls per node (beyond it new polls are refused) and
``TOPOLOGY_WAIT_MAX_MS`` per poll. A poll whose connection closes is cancelled (its timer
too). States of a poll: WAITING -> answered (changed or timed out) | cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ackdb.cluster import dbops
from ackdb.cluster.metadata import MetadataStore

TOPOLOGY_WATCHES_MAX = 10_000
TOPOLOGY_WAIT_MAX_MS = 300_000
TOPOLOGY_WAIT_DEFAULT_MS = 30_000


class Watch:
    __slots__ = ("name", "known", "respond", "timer", "owner", "done")

    def __init__(self, name: str, known: int, respond: Callable[[], None]) -> None:
        self.name = name
        self.known = known
        self.respond = respond
        self.timer: asyncio.TimerHandle | None = None
        self.owner: TopologyWatches | None = None
        self.done = False

    def cancel(self) -> None:
        """Forget this poll without answering it (its connection is gone)."""
        if self.owner is not None:
            self.owner.remove(self)


class TopologyWatches:
    def __init__(self, meta: Callable[[], MetadataStore]) -> None:
        self.meta = meta
        self.by_db: dict[str, set[Watch]] = {}
        self.count = 0
        self._seen = -1  # the applied index of the last check

    def add(self, watch: Watch, timeout_ms: int) -> bool:
        """Wait for ``watch``'s database to change, at most ``timeout_ms``. False (and
        nothing added) when too many polls wait already."""
        if self.count >= TOPOLOGY_WATCHES_MAX:
            return False
        watch.owner = self
        self.by_db.setdefault(watch.name, set()).add(watch)
        self.count += 1
        loop = asyncio.get_running_loop()
        watch.timer = loop.call_later(timeout_ms / 1000, self._wake, watch)
        return True

    def remove(self, watch: Watch) -> None:
        if watch.done:
            return
        watch.done = True
        if watch.timer is not None:
            watch.timer.cancel()
        ws = self.by_db.get(watch.name)
        if ws is not None:
            ws.discard(watch)
            if not ws:
                del self.by_db[watch.name]
        self.count -= 1

    def _wake(self, watch: Watch) -> None:
        if watch.done:
            return
        self.remove(watch)
        watch.respond()

    def check(self) -> None:
        """Wake the polls whose database changed (call after each pass of the Raft loop;
        nearly free when nothing waits or nothing was applied)."""
        if not self.count:
            return
        meta = self.meta()
        if meta.applied_index == self._seen:
            return
        self._seen = meta.applied_index
        for name, ws in list(self.by_db.items()):
            version = dbops.topology_version(meta, name)
            for w in [w for w in ws if version is None or version > w.known]:
                self._wake(w)

    def close(self) -> None:
        """Cancel every poll (the port is stopping: connections close unanswered)."""
        for ws in list(self.by_db.values()):
            for w in list(ws):
                self.remove(w)
