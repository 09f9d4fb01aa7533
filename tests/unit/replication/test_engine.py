"""The engine: role changes and the glue between cores, driven through the simulated
world of ackdb.sim.replication -- real server cores, the replication driver, simulated
links (deterministic, no faults unless a test adds them)."""

from __future__ import annotations

import dataclasses
import random

from ackdb.replication.actions import ReplyToClient, RoleChanged, SendToPrimary, SnapshotEnd
from ackdb.replication.engine import EngineConfig, Replication
from ackdb.replication.refusal import MASTERDOWN, READONLY, RefusalKind
from ackdb.replication.waiters import UNBLOCKED
from ackdb.sim.repl_world import World
from ackdb.sim.replication import Client, Node


def write(node: Node, n: int, db: int = 0) -> int:
    """``n`` writes by a client of ``node``; returns the client's offset after them."""
    client = Client(node.w.new_id())
    node.attach(client)
    assert node.command(client, [b"SELECT", b"%d" % db]) == b"+OK\r\n"
    for _ in range(n):
        wid = node.w.next_write
        node.w.next_write += 1
        assert node.command(client, [b"SET", b"k%d" % (wid % 7), b"v%d" % wid]) == b"+OK\r\n"
    node.end_pass()
    return client.woff


def settle(w: World, ms: int = 1500) -> None:
    w.run_until(w.now + ms)


def three_nodes() -> tuple[World, Node, Node, Node]:
    w = World(11)
    p = w.add_node("n0", 7000, "always")
    r1 = w.add_node("n1", 7001, "always", replica_of=p)
    r2 = w.add_node("n2", 7002, "everysec", replica_of=p)
    settle(w)
    return w, p, r1, r2


def same_data(*nodes: Node) -> bool:
    return len({(n.digest(), n.engine.state.master_repl_offset) for n in nodes}) == 1


def test_replicas_follow_writes_in_two_dbs() -> None:
    w, p, r1, r2 = three_nodes()
    write(p, 50, db=0)
    write(p, 50, db=1)
    settle(w)
    assert same_data(p, r1, r2) and p.history == r1.history == r2.history
    assert p.engine.table.stats.sync_full == 2


def test_promotion_then_partial_resyncs_via_replid2() -> None:
    # notes: promotion shifts ids; the others and the old primary resync partially.
    w, p, r1, r2 = three_nodes()
    write(p, 80)
    settle(w)
    p.crash()
    r1.promote()
    reply, acts = r2.engine.replicaof([b"REPLICAOF", b"n1", b"7001"], w.now)
    assert reply == b"+OK\r\n"
    r2.run(acts)
    settle(w)
    p.boot(replica_of=r1)  # restarts from its AOF with its saved history
    settle(w)
    write(r1, 20)
    settle(w)
    stats = r1.engine.table.stats
    assert (stats.sync_partial_ok, stats.sync_full) == (2, 0)
    assert same_data(p, r1, r2) and r1.engine.state.replid2 == r2.engine.state.replid2


def test_failover_command_hands_over_without_full_syncs() -> None:
    w, p, r1, r2 = three_nodes()
    write(p, 30)
    settle(w)
    reply, acts = p.engine.failover_command([b"FAILOVER", b"TO", b"n2", b"7002"], w.now)
    assert reply == b"+OK\r\n"
    p.run(acts)
    assert p.paused
    settle(w, 3000)
    assert r2.engine.is_primary and not p.engine.is_primary and not p.paused
    assert p.engine.failover.state == "no-failover" and p.engine.link.host == "n2"
    write(r2, 10)
    settle(w, 3000)
    assert same_data(p, r1, r2)
    assert r2.engine.table.stats.sync_full == 0 and p.engine.table.stats.sync_full == 2


def test_psync_failover_with_a_foreign_replid_is_refused() -> None:
    w, p, r1, _ = three_nodes()
    reply, acts = r1.engine.psync(99, [b"PSYNC", b"f" * 40, b"5", b"FAILOVER"], w.now, "x")
    assert reply == b"-ERR PSYNC FAILOVER replid must match my replid.\r\n" and acts == []
    assert not r1.engine.is_primary


def test_demotion_unblocks_waiters() -> None:
    w, p, r1, _ = three_nodes()
    off = write(p, 1)
    r1.isolated = True
    for conn in list(w.conns.values()):
        if r1 in (conn.client, conn.server):
            w.break_conn(conn)
    reply = p.engine.wait(5, [b"WAIT", b"2", b"0"], target_offset=off, now_ms=w.now, can_block=True)
    assert reply is None
    acts = p.engine.demote("n1", 7001, w.now)
    assert ReplyToClient(5, b"-" + UNBLOCKED.encode() + b"\r\n", close=True) in acts
    assert RoleChanged("n1", 7001) in acts


def test_replicaof_command_replies() -> None:
    w, p, r1, _ = three_nodes()
    assert r1.engine.replicaof([b"REPLICAOF", b"n0", b"7000"], w.now) == (
        b"+OK Already connected to specified master\r\n",
        [],
    )
    for port in (b"x", b"65536", b"-1"):
        reply, _ = r1.engine.replicaof([b"REPLICAOF", b"n0", port], w.now)
        assert reply == b"-ERR Invalid master port\r\n"
    reply, _ = p.engine.replicaof([b"REPLICAOF", b"n1", b"7001"], w.now, from_replica=True)
    assert reply == b"-ERR Command is not valid when client is a replica.\r\n"
    assert p.engine.replicaof([b"REPLICAOF", b"NO", b"ONE"], w.now) == (b"+OK\r\n", [])


def role(e: Replication) -> bytes:
    return e.role_reply()


def test_role_replies() -> None:
    # notes: ["master", offset, [[ip, "port", "ackoffset"], ...]] / ["slave", host, port, state, offset]
    w, p, r1, r2 = three_nodes()
    settle(w, 2500)
    off = p.engine.state.master_repl_offset
    assert (
        r1.engine.role_reply()
        == b"*5\r\n$5\r\nslave\r\n$2\r\nn0\r\n:7000\r\n$9\r\nconnected\r\n:%d\r\n" % off
    )
    online = p.engine.table.online()
    assert sorted(r.ip for r in online) == ["n1", "n2"]
    entries = b"".join(
        b"*3\r\n$2\r\n%s\r\n$4\r\n%d\r\n$%d\r\n%d\r\n"
        % (r.ip.encode(), r.listening_port, len(b"%d" % r.ack_offset), r.ack_offset)
        for r in online
    )
    assert p.engine.role_reply() == b"*3\r\n$6\r\nmaster\r\n:%d\r\n*2\r\n" % off + entries


def test_info_order_on_a_replica() -> None:
    # notes: "INFO replication, in order".
    w, p, r1, _ = three_nodes()
    names = [k for k, _ in r1.engine.info_fields(w.now)]
    assert names == [
        "role",
        "master_host",
        "master_port",
        "master_link_status",
        "master_last_io_seconds_ago",
        "master_sync_in_progress",
        "slave_read_repl_offset",
        "slave_repl_offset",
        "slave_priority",
        "slave_read_only",
        "replica_announced",
        "connected_slaves",
        "master_failover_state",
        "master_replid",
        "master_replid2",
        "master_repl_offset",
        "second_repl_offset",
        "repl_backlog_active",
        "repl_backlog_size",
        "repl_backlog_first_byte_offset",
        "repl_backlog_histlen",
    ]
    assert [k for k, _ in p.engine.info_fields(w.now)][:4] == [
        "role",
        "connected_slaves",
        "slave0",
        "slave1",
    ]


def test_offset_counts_bytes_only_when_someone_needs_them() -> None:
    # Nobody needs the bytes: each effect counts 1, so a writer's offset is never 0.
    quiet = Replication(EngineConfig(listening_port=1), random.Random(1))
    assert quiet.propagate(0, [b"SET", b"k", b"v"]) == 1
    assert quiet.propagate(0, [b"SET", b"k", b"v"]) == 2
    # notes: with AOF on, master_repl_offset advances by the bytes even with no replicas.
    aof = Replication(EngineConfig(listening_port=1), random.Random(1), aof_enabled=True)
    assert aof.propagate(0, [b"SET", b"k", b"v"]) == 23 + 27


def test_refusals() -> None:
    config = EngineConfig(listening_port=1, min_replicas_to_write=1, serve_stale_data=False)
    e = Replication(config, random.Random(1))
    assert e.gated
    refused = e.refusal(writes=True, stale_ok=False, now_ms=0)
    assert refused is not None and refused.kind is RefusalKind.NOREPLICAS
    assert refused.text == "NOREPLICAS Not enough good replicas to write."
    assert e.refusal(writes=False, stale_ok=False, now_ms=0) is None
    e.demote("h", 1, 0)
    # notes: replicas ignore min-replicas-to-write; a read-only replica refuses writes.
    assert e.refusal(writes=True, stale_ok=False, now_ms=0) == READONLY
    assert READONLY.text == "READONLY You can't write against a read only replica."
    assert e.refusal(writes=False, stale_ok=True, now_ms=0) is None
    assert e.refusal(writes=False, stale_ok=False, now_ms=0) == MASTERDOWN
    assert MASTERDOWN.text == (
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
    )
    e.reconfigure(dataclasses.replace(config, serve_stale_data=True, replica_read_only=False))
    assert e.refusal(writes=True, stale_ok=False, now_ms=0) is None


def test_fack_restarts_from_zero_after_a_full_sync() -> None:
    # A FACK must never claim data the replica does not hold durably: after a full sync
    # nothing of the new dataset is fsynced until the AOF layer says so.
    e = Replication(EngineConfig(listening_port=6380), random.Random(4), aof_enabled=True)
    e.on_fsynced(10_000, 0)  # fsynced in its previous life
    e.start_replica("h", 6379, 0)
    e.on_link_established(0)
    e.receive_data(b"+PONG\r\n+OK\r\n+OK\r\n", 0)
    acts = e.receive_data(b"+FULLRESYNC " + b"e" * 40 + b" 500\r\n$0\r\n", 0)
    assert acts[-1] == SnapshotEnd()
    sent = [a.data for a in e.snapshot_loaded(0, 0) if isinstance(a, SendToPrimary)]
    assert sent == [b"*5\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$3\r\n500\r\n$4\r\nFACK\r\n$1\r\n0\r\n"]
    sent = [a.data for a in e.on_fsynced(500, 5) if isinstance(a, SendToPrimary)]
    assert sent == [
        b"*5\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$3\r\n500\r\n$4\r\nFACK\r\n$3\r\n500\r\n"
    ]


def test_reconfigure_reaches_every_part() -> None:
    e = Replication(EngineConfig(listening_port=7000), random.Random(1))
    e.reconfigure(
        EngineConfig(
            listening_port=7001,
            masterauth="pw",
            repl_timeout_ms=5000,
            backlog_bytes_max=4096,
            backlog_ttl_ms=10_000,
            min_replicas_to_write=2,
            min_replicas_max_lag_s=3,
        )
    )
    assert e.config.listening_port == 7001
    assert (e.table.repl_timeout_ms, e.table.min_replicas_to_write) == (5000, 2)
    assert e.table.min_replicas_max_lag_s == 3
    assert (e.state.backlog_bytes_max, e.state.backlog_ttl_ms) == (4096, 10_000)
    link = e.link.config
    assert (link.listening_port, link.masterauth, link.repl_timeout_ms) == (7001, "pw", 5000)
