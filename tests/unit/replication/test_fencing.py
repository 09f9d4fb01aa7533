"""Fencing (issue 15, docs/fencing.md): the lease and epoch rules of ``fencing.Fencing``,
the diverged range against a naive reference, the command count of a stream stretch,
and the engine's freeze and fence driven through the simulated world
(``ackdb.sim.repl_world``: real cores, the driver, simulated links)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from ackdb.replication.engine import EngineConfig, Replication
from ackdb.replication.fencing import Fencing, count_commands, diverged_range
from ackdb.replication.refusal import FENCED, NOREPLICAS, READONLY
from ackdb.replication.state import ReplicationState
from ackdb.replication.util import encode_command
from ackdb.server.replication_core import FIRST_LEASE_WAIT_MS
from ackdb.sim.repl_world import World
from ackdb.sim.replication import Client, Node


def write(node: Node, n: int, key: bytes = b"k") -> None:
    client = Client(node.w.new_id())
    node.attach(client)
    for _ in range(n):
        wid = node.w.next_write
        node.w.next_write += 1
        assert node.command(client, [b"SET", key, b"v%d" % wid]) == b"+OK\r\n"
    node.end_pass()


def settle(w: World, ms: int = 1500) -> None:
    w.run_until(w.now + ms)


# -- the lease ------------------------------------------------------------------------------


def test_lease_epochs_and_deadlines() -> None:
    f = Fencing(enabled=True)
    assert f.fencing and f.fenced(0)
    assert f.lease(b"2", b"1000", primary=True) is None
    assert not f.fenced(999) and f.fenced(1000) and f.remaining_ms(400) == 600
    assert f.lease(b"1", b"5000", primary=True) == "ERR stale epoch 1 (current 2)"
    assert f.deadline_ms == 1000  # a refused lease changes nothing
    assert f.lease(b"x", b"1", primary=True) == "ERR invalid epoch"
    assert f.lease(b"2", b"-1", primary=True) == "ERR invalid deadline"
    assert f.lease(b"2", b"0", primary=True) is None and f.fenced(0)  # deadline 0 fences at once


def test_freeze_fences_even_without_ackdb_lease_until_a_lease() -> None:
    f = Fencing(enabled=False)
    assert not f.fencing
    assert f.freeze(b"3") is None
    assert f.fencing and f.frozen and f.epoch == 3 and f.fenced(10**12)
    assert f.freeze(b"2") == "ERR stale epoch 2 (current 3)"
    assert f.lease(b"3", b"100", primary=False) is None
    assert f.frozen and f.fencing  # a frozen replica stays frozen
    assert f.lease(b"3", b"100", primary=True) is None
    assert not f.frozen and not f.fencing  # the lease lifted a primary's freeze
    f.freeze(b"4")
    f.drop_lease()  # REPLICAOF
    assert not f.frozen and not f.fencing
    f.set_enabled(True)
    assert f.fencing


# -- the diverged range ---------------------------------------------------------------------


def _state(rng: random.Random, sizes: list[int]) -> ReplicationState:
    s = ReplicationState(rng, backlog_bytes_max=16 * 1024)
    s.ensure_backlog(new_history=False)
    for n in sizes:
        s.append(b"x" * n)
    return s


@given(
    sizes=st.lists(st.integers(1, 4000), max_size=20),
    after=st.lists(st.integers(1, 4000), max_size=5),
    fork=st.integers(0, 80_000),
    shifted=st.booleans(),
)
def test_diverged_range_matches_a_naive_reference(
    sizes: list[int], after: list[int], fork: int, shifted: bool
) -> None:
    """Reference: the bytes of history ``old`` we hold past the fork are ``(fork,
    end of old]``, where old ends at our offset, or where we left it (a shift)."""
    s = _state(random.Random(1), sizes)
    old = s.replid
    old_end = s.master_repl_offset
    if shifted:  # a promotion or a +CONTINUE: the history we held is replid2 now
        s.shift_replid()
    for n in after:
        s.append(b"y" * n)
    if not shifted:
        old_end = s.master_repl_offset
    got = diverged_range(s, old, fork, has_data=True)
    if old_end <= fork:
        assert got is None
        return
    assert got is not None and (got.first_offset, got.last_offset) == (fork + 1, old_end)
    b = s.backlog
    assert b is not None
    if b.first_byte_offset <= fork + 1:
        assert got.data is not None and len(got.data) == old_end - fork
        assert set(got.data) == {ord("x")} or not shifted
    else:
        assert got.data is None


def test_diverged_range_of_another_history() -> None:
    s = _state(random.Random(2), [100])
    # A history we know (here: a backlog of our own writes... as a synced replica):
    s.history_known = True
    assert diverged_range(s, "f" * 40, 0, has_data=True) is None
    assert diverged_range(s, s.replid2, 0, has_data=True) is None  # the null replid2
    # Started without a saved history and never synced since: the whole dataset.
    s.history_known = False
    got = diverged_range(s, "f" * 40, 0, has_data=True)
    assert got is not None and (got.first_offset, got.last_offset, got.data) == (0, 100, None)
    assert diverged_range(s, "f" * 40, 0, has_data=False) is None  # nothing to save


def test_the_winner_and_its_partial_replicas_hold_nothing_diverged() -> None:
    """The promoted replica and a replica that continued on it partially have the
    fork's history as replid2, left exactly at (or before) the fork."""
    s = _state(random.Random(3), [500])
    old, fork = s.replid, s.master_repl_offset
    s.shift_replid()  # promoted (or +CONTINUE with the new id)
    s.append(b"z" * 300)
    assert diverged_range(s, old, fork, has_data=True) is None
    assert diverged_range(s, old, fork + 50, has_data=True) is None  # left before it


def test_a_primary_restarted_onto_a_new_id_diverges_to_its_own_offset() -> None:
    """A primary restarted onto a new id (the old one its replid2) wrote on the new one:
    a fork on the old history lacks everything past the fork, old and new bytes alike
    (the failover simulator's seed 5). A replica in the same state holds the new
    primary's history after it left the old one: only the old bytes."""
    s = _state(random.Random(4), [500])
    old, fork = s.replid, 300
    s.shift_replid()  # the restart: a new id
    s.append(b"w" * 200)  # writes acknowledged on the new id
    got = diverged_range(s, old, fork, has_data=True, own=True)
    assert got is not None and (got.first_offset, got.last_offset) == (301, 700)
    assert got.data == b"x" * 200 + b"w" * 200
    got = diverged_range(s, old, fork, has_data=True, own=False)
    assert got is not None and (got.first_offset, got.last_offset) == (301, 500)
    # A fork on a history the primary never had: all of its data, whatever is known.
    s.history_known = True
    got = diverged_range(s, "f" * 40, 0, has_data=True, own=True)
    assert got is not None and (got.first_offset, got.last_offset, got.data) == (0, 700, None)


def test_count_commands_skips_stream_housekeeping() -> None:
    parts = [
        [b"SELECT", b"1"],
        [b"SET", b"a", b"1"],
        [b"PING"],
        [b"MULTI"],
        [b"INCR", b"n"],
        [b"EXEC"],
        [b"REPLCONF", b"GETACK", b"*"],
        [b"DEL", b"a"],
    ]
    data = b"".join(encode_command(p) for p in parts)
    assert count_commands(data) == 3
    assert count_commands(data[:-3]) is None  # a torn command
    assert count_commands(b"") == 0


# -- the engine -----------------------------------------------------------------------------


def test_refusal_order_and_gate() -> None:
    e = Replication(EngineConfig(listening_port=1, lease=True), random.Random(3))
    assert e.gated
    assert e.refusal(writes=True, stale_ok=False, now_ms=0, mono_ms=5) is FENCED
    assert e.refusal(writes=False, stale_ok=False, now_ms=0, mono_ms=5) is None
    assert e.lease([b"ACKDB.LEASE", b"1", b"100"]) == b"+OK\r\n"
    assert e.refusal(writes=True, stale_ok=False, now_ms=0, mono_ms=99) is None
    assert e.refusal(writes=True, stale_ok=False, now_ms=0, mono_ms=100) is FENCED
    e.table.min_replicas_to_write = 1
    assert e.refusal(writes=True, stale_ok=False, now_ms=0, mono_ms=100) is FENCED
    assert e.refusal(writes=True, stale_ok=False, now_ms=0, mono_ms=1) is NOREPLICAS
    plain = Replication(EngineConfig(listening_port=1), random.Random(4))
    assert not plain.gated  # ackdb-lease no: the command gate stays open


def three_nodes() -> tuple[World, Node, Node, Node]:
    w = World(21)
    p = w.add_node("n0", 7000, "no")
    r1 = w.add_node("n1", 7001, "no", replica_of=p)
    r2 = w.add_node("n2", 7002, "no", replica_of=p)
    settle(w)
    return w, p, r1, r2


def test_frozen_replica_stays_away_then_continues_on_the_promoted_one() -> None:
    w, p, r1, r2 = three_nodes()
    write(p, 40)
    settle(w)
    reply = r2.admin([b"ACKDB.FREEZE", b"1"])
    assert reply.startswith(b"*4\r\n$40\r\n" + r2.engine.state.replid.encode())
    r1.admin([b"ACKDB.FREEZE", b"1"])
    frozen_at = r2.engine.state.master_repl_offset
    write(p, 10)
    settle(w, 5000)  # many reconnect periods
    assert r2.engine.link.state == "connect" and r2.engine.link.frozen
    assert r2.engine.state.master_repl_offset == frozen_at
    assert not p.engine.table.replicas
    assert r1.admin([b"REPLICAOF", b"NO", b"ONE"]) == b"+OK\r\n"
    # The same host as before would be "already connected" if not for the freeze.
    assert r2.admin([b"REPLICAOF", b"n1", b"7001"]) == b"+OK\r\n"
    settle(w)
    assert r2.engine.link.state == "connected" and not r2.engine.fencing.frozen
    stats = r1.engine.table.stats
    assert (stats.sync_partial_ok, stats.sync_full) == (1, 0)


def test_freeze_on_a_primary_fences_it_and_keeps_its_role() -> None:
    w, p, _, _ = three_nodes()
    reply = p.admin([b"ACKDB.FREEZE", b"2"])
    assert reply.startswith(b"*4\r\n")
    assert p.engine.is_primary and p.engine.fencing.frozen
    client = Client(w.new_id())
    p.attach(client)
    assert p.command(client, [b"SET", b"k", b"x"]) == b"-" + FENCED.text.encode() + b"\r\n"
    assert p.admin([b"ACKDB.LEASE", b"2", b"%d" % (w.now + 10_000)]) == b"+OK\r\n"
    assert p.command(client, [b"SET", b"k", b"x"]) == b"+OK\r\n"


def test_promotion_drops_the_lease() -> None:
    w, _, r1, _ = three_nodes()
    r1.admin([b"CONFIG", b"SET", b"ackdb-lease", b"yes"])
    assert r1.admin([b"ACKDB.LEASE", b"1", b"%d" % (w.now + 10_000)]) == b"+OK\r\n"
    client = Client(w.new_id())
    r1.attach(client)
    assert r1.command(client, [b"SET", b"k", b"x"]) == b"-" + READONLY.text.encode() + b"\r\n"
    r1.promote()
    # A new primary holds writes while it awaits its first lease (a write pause of its
    # own, FIRST_LEASE_WAIT_MS); with no lease by then they are refused as fenced.
    assert r1.command(client, [b"SET", b"k", b"x"]) is None
    # A CLIENT UNPAUSE meanwhile lets no write run without a lease: it is held again.
    assert r1.admin([b"CLIENT", b"UNPAUSE"]) == b"+OK\r\n"
    other = Client(w.new_id())
    r1.attach(other)
    assert r1.command(other, [b"SET", b"k", b"z"]) is None
    assert r1.command(other, [b"GET", b"k"]) == b"$-1\r\n"  # neither held write ran
    assert r1.proc.core.pause_until_ms > 0
    settle(w, FIRST_LEASE_WAIT_MS + 500)
    late = Client(w.new_id())
    r1.attach(late)
    assert r1.command(late, [b"SET", b"k", b"y"]) == b"-" + FENCED.text.encode() + b"\r\n"


def test_freeze_is_refused_while_a_full_sync_loads() -> None:
    e = Replication(EngineConfig(listening_port=1), random.Random(5))
    e.demote("h", 1, 0)
    e.link.loading = True  # SnapshotEnd was sent: the shell is loading the snapshot
    reply, actions = e.freeze([b"ACKDB.FREEZE", b"4"], 0)
    assert reply.startswith(b"-LOADING ") and actions == []
    assert e.fencing.epoch == 0 and not e.link.frozen
    e.link.loading = False
    reply, _ = e.freeze([b"ACKDB.FREEZE", b"4"], 0)
    assert reply.startswith(b"*4\r\n") and e.link.frozen and e.fencing.epoch == 4


def test_the_target_of_a_failover_command_starts_fenced() -> None:
    w, p, _, r2 = three_nodes()
    r2.admin([b"CONFIG", b"SET", b"ackdb-lease", b"yes"])
    write(p, 10)
    settle(w)
    assert p.admin([b"FAILOVER", b"TO", b"n2", b"7002"]) == b"+OK\r\n"
    settle(w, 3000)
    assert r2.engine.is_primary and not p.engine.is_primary
    client = Client(w.new_id())
    r2.attach(client)
    # Held until the first lease (the core's write pause; the real server's shell runs
    # the held command on resume, tests/e2e/test_replication_fencing.py), then writes run.
    assert r2.command(client, [b"SET", b"k", b"x"]) is None
    assert r2.proc.core.pause_until_ms > 0
    assert r2.admin([b"ACKDB.LEASE", b"1", b"%d" % (w.now + 10_000)]) == b"+OK\r\n"
    assert r2.proc.core.pause_until_ms == 0
    other = Client(w.new_id())
    r2.attach(other)
    assert r2.command(other, [b"SET", b"k", b"y"]) == b"+OK\r\n"
