"""RawNode: the public face of the Raft core (etcd raft rawnode.go).

Owns: the input methods (tick, step, propose, ...) and the Ready handshake (has_ready,
ready, advance). Never does IO, never reads a clock or global randomness.
"""

from __future__ import annotations

import random

from ackdb.consensus.storage import MemoryStorage
from ackdb.consensus.types import ConfChange, Config, Message, Ready, Snapshot, Status


class RawNode:
    def __init__(self, config: Config, storage: MemoryStorage, rng: random.Random) -> None:
        self.config = config
        self.storage = storage
        self.rng = rng

    def bootstrap(self, voters: tuple[str, ...]) -> None:
        raise NotImplementedError

    def tick(self) -> None:
        raise NotImplementedError

    def step(self, msg: Message) -> None:
        raise NotImplementedError

    def propose(self, data: bytes) -> int:
        raise NotImplementedError

    def propose_conf_change(self, cc: ConfChange) -> int:
        raise NotImplementedError

    def read_index(self, ctx: bytes) -> None:
        raise NotImplementedError

    def transfer_leadership(self, to: str) -> None:
        raise NotImplementedError

    def campaign(self) -> None:
        raise NotImplementedError

    def has_ready(self) -> bool:
        raise NotImplementedError

    def ready(self) -> Ready:
        raise NotImplementedError

    def advance(self, rd: Ready) -> None:
        raise NotImplementedError

    def status(self) -> Status:
        raise NotImplementedError

    def compact(self, index: int, data: bytes) -> Snapshot:
        raise NotImplementedError

    def report_unreachable(self, peer: str) -> None:
        raise NotImplementedError

    def report_snapshot(self, peer: str, ok: bool) -> None:
        raise NotImplementedError
