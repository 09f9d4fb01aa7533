"""The replication driver against recording fake ports: what it does with the engine's
actions, and the decisions it owns (held streams, bytes held while a snapshot loads,
snapshot framing)."""

from __future__ import annotations

import random
from typing import Any

from ackdb.replication import actions as act
from ackdb.replication.driver import ReplicationDriver
from ackdb.replication.engine import EngineConfig, Replication
from ackdb.replication.primary import SnapshotStart
from ackdb.server.replication import ReplicationShell
from ackdb.server.replication_core import CoreReplication
from ackdb.sim.repl_world import World


class Ports:
    """Every port at once; each call is recorded as (name, args)."""

    def __init__(self, limit: int = 0) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.limit = limit
        self.serve_ok = True
        self.now = 1000

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record

    def now_ms(self) -> int:
        return self.now

    def replica_buffer_limit_bytes(self) -> int:
        return self.limit

    def active(self) -> bool:
        return False

    def fsynced_mark(self, offset: int) -> int | None:
        return None

    def writes_paused(self) -> bool:
        return False

    def serve(self, start: SnapshotStart) -> bool:
        self.calls.append(("serve", (start.conns,)))
        return self.serve_ok

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]


def driver(limit: int = 0) -> tuple[ReplicationDriver, Ports]:
    ports = Ports(limit)
    engine = Replication(EngineConfig(listening_port=1), random.Random(1))
    d = ReplicationDriver(
        engine,
        host=ports,
        links=ports,
        dataset=ports,
        aof=ports,
        served=ports,
        received=ports,
    )
    return d, ports


def test_runs_of_apply_reach_the_dataset_as_one_batch_in_order() -> None:
    d, ports = driver()
    d.execute(
        [
            act.Apply([[b"SET", b"a", b"1"]]),
            act.Apply([[b"SET", b"b", b"2"]]),
            act.SendToPrimary(b"x"),
            act.Apply([[b"DEL", b"a"]]),
        ]
    )
    names = [n for n, _ in ports.calls if n in ("apply", "send_to_primary")]
    assert names == ["apply", "send_to_primary", "apply"]
    assert ports.named("apply")[0][0] == [[b"SET", b"a", b"1"], [b"SET", b"b", b"2"]]
    assert ports.calls[-1][0] == "engine_changed"  # after every batch


def test_a_replica_waiting_for_its_snapshot_gets_the_stream_after_it() -> None:
    d, ports = driver()
    d.engine.psync(7, [b"PSYNC", b"?", b"-1"], 0, "10.0.0.1")
    d._serve_snapshot()
    assert ports.named("serve") == [((7,),)]
    (_, fullresync), *_ = ports.named("send_to_replica")
    assert fullresync.startswith(b"+FULLRESYNC ")  # before the snapshot starts
    ports.calls.clear()
    d.execute([act.SendToReplica(7, b"held")])
    assert ports.named("send_to_replica") == []  # held while the snapshot is written
    d.snapshot_written((7,), b"DATA")
    assert ports.named("send_to_replica") == [(7, b"$4\r\nDATA"), (7, b"held")]
    assert d.engine.table.replicas[7].state == "online"


def test_the_eof_framing_when_asked() -> None:
    d, ports = driver()
    d.engine.psync(7, [b"PSYNC", b"?", b"-1"], 0, "ip")
    d._serve_snapshot()
    ports.calls.clear()
    d.snapshot_written((7,), b"DATA", eof_mark=b"m" * 40)
    assert ports.named("send_to_replica") == [(7, b"$EOF:" + b"m" * 40 + b"\r\nDATA" + b"m" * 40)]


def test_a_held_stream_past_the_buffer_limit_drops_the_replica() -> None:
    d, ports = driver(limit=10)
    d.engine.psync(7, [b"PSYNC", b"?", b"-1"], 0, "ip")
    d._serve_snapshot()
    ports.calls.clear()
    d.execute([act.SendToReplica(7, b"0123456789")])
    assert ports.named("close_replica") == [(7, "output buffer limit")]
    assert 7 not in d.engine.table.replicas
    d.snapshot_written((7,), b"DATA")
    assert ports.named("send_to_replica") == []


def test_a_failed_snapshot_or_fork_drops_its_replicas() -> None:
    d, ports = driver()
    ports.serve_ok = False
    d.engine.psync(7, [b"PSYNC", b"?", b"-1"], 0, "ip")
    d._serve_snapshot()
    assert ports.named("close_replica") == [(7, "fork failed")]
    d, ports = driver()
    d.engine.psync(8, [b"PSYNC", b"?", b"-1"], 0, "ip")
    d._serve_snapshot()
    d.snapshot_written((8,), None)
    assert ports.named("close_replica") == [(8, "snapshot failed")]


def test_link_bytes_wait_while_a_received_snapshot_loads() -> None:
    d, ports = driver()
    d.execute([act.SnapshotEnd()])
    assert d.loading_snapshot and ports.named("load") == [()]
    d.link_data(b"+PONG")  # not given to the engine yet
    assert d._link_pending == [b"+PONG"]
    d.link_lost()  # remembered, reported after the load
    d.execute([act.ClosePrimaryLink("timeout")])  # the engine closed it: its bytes go
    assert d._link_pending == []


def test_the_server_and_the_simulator_run_the_same_driver() -> None:
    assert issubclass(ReplicationShell, CoreReplication)
    w = World(1)
    node = w.add_node("n0", 7000, "always")
    assert isinstance(node.proc, CoreReplication)
    assert type(node.proc.driver) is ReplicationDriver
