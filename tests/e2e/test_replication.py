"""End to end: primary/replica replication between real ``ackdb server`` processes, under
failures (issue: replication e2e).

- A full sync of a large dataset while writers keep writing converges (DEBUG DIGEST and
  offsets equal); 100k keys by default, 1M keys in the ``slow`` variant.
- Partial resyncs: after ``CLIENT KILL TYPE master`` on the replica, and after a replica
  restart from the snapshot it saved with its history (``SHUTDOWN SAVE``, or save rules
  and SIGTERM): the primary's ``sync_partial_ok`` grows, ``sync_full`` does not.
- WAIT with SIGSTOPped replicas times out after about its timeout with the count reached;
  after SIGCONT the replicas catch up.
- Writes acknowledged by ``WAITAOF 0 1`` survive a SIGKILL of the primary (and of the
  replica too, restarted from its AOF) once the replica is promoted.
- FAILOVER under a write load loses no acknowledged write, swaps the roles, and the old
  primary continues partially.
- Protocol details: WAIT / WAITAOF inside MULTI and their errors, REPLICAOF's port
  checks, -READONLY, -MASTERDOWN (``replica-serve-stale-data no``, the link cut by a fault
  proxy), -NOREPLICAS, ROLE and the INFO replication field order on both sides.
- A chain A -> B -> C: C converges to A's data, replid and offset.
- More failures: a backlog overrun (full sync), a silent link (repl-timeout on both
  sides), a primary restarted from its snapshot and a manual switchover (replicas
  continue partially), an old primary holding writes the new one lacks (must sync
  fully), FAILOVER timing out / aborted with a stopped or unreachable target,
  min-replicas-max-lag with a stopped replica.

``slow`` variants (``pytest -m slow``): a 1M-key full sync, ten FAILOVERs back and forth
under load, and 30 link cuts under load (seed: ``ACKDB_REPL_SEED``, default 1).

Every server is started by the ``start_ackdb`` fixture, which stops it; SIGSTOPped
processes are continued in ``finally`` blocks; writer threads are bounded in time.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hiredis
import pytest
import redis
from repl_support import (
    SYNC_TIMEOUT_S,
    Ledger,
    Session,
    Threads,
    client,
    digest,
    info,
    info_fields,
    link_up,
    mixed_load,
    offset,
    replid,
    start_replica_of,
    sync_stats,
    wait_caught_up,
)

from conftest import ServerProcess, free_port, wait_until
from faultproxy import FaultProxy

pytestmark = pytest.mark.e2e

Start = Callable[..., ServerProcess]

# INFO replication, in Redis's order (the notes); optional fields are inserted by tests.
TAIL_FIELDS = [
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
REPLICA_HEAD_FIELDS = [
    "role",
    "master_host",
    "master_port",
    "master_link_status",
    "master_last_io_seconds_ago",
    "master_sync_in_progress",
    "slave_read_repl_offset",
    "slave_repl_offset",
]
REPLICA_MID_FIELDS = ["slave_priority", "slave_read_only", "replica_announced"]

READONLY = "READONLY You can't write against a read only replica."
MASTERDOWN = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
NOREPLICAS = "NOREPLICAS Not enough good replicas to write."
WAITAOF_NO_AOF = "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
WAITAOF_REPLICA = (
    "ERR WAITAOF cannot be used with replica instances. Please also note that writes to "
    "replicas are just local and are not propagated."
)
WAIT_REPLICA = (
    "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 "
    "if a replica is configured to be writable (which is not the default) writes to "
    "replicas are just local and are not propagated."
)


@pytest.fixture
def clients() -> Iterator[Callable[..., redis.Redis]]:
    """Opens clients (``repl_support.client``) and closes them all at the end."""
    opened: list[redis.Redis] = []

    def open_client(port: int, **kw: object) -> redis.Redis:
        r = client(port, **kw)  # type: ignore[arg-type]
        opened.append(r)
        return r

    yield open_client
    for r in opened:
        r.close()


def error_text(reply: object) -> str:
    assert isinstance(reply, hiredis.ReplyError), f"expected an error, got {reply!r}"
    return str(reply)


# -- 1. full sync under load -----------------------------------------------------------------

FULL_SYNC_LOG = re.compile(r"Starting a full sync for \d+ replica\(s\) at offset (\d+)")


def full_sync_under_load(
    start: Start, open_client: Callable[..., redis.Redis], n_keys: int, sync_timeout_s: float
) -> None:
    primary = start()
    rp = open_client(primary.port, timeout_s=60)
    rp.execute_command("DEBUG", "POPULATE", n_keys)
    load = Threads()
    counters = [[0], [0]]
    load.spawn(mixed_load(primary.port, 0, 1, counters[0]))
    load.spawn(mixed_load(primary.port, 3, 2, counters[1]))
    try:
        wait_until(lambda: counters[0][0] > 3 and counters[1][0] > 3, 10)
        replica = start_replica_of(start, primary.port)
        rr = open_client(replica.port, timeout_s=60)
        wait_until(lambda: link_up(rr), sync_timeout_s, interval_s=0.05)
        offset_at_link_up = offset(rp)
        # Keep writing a while after the sync: the stream must follow the snapshot.
        done = counters[0][0] + counters[1][0]
        wait_until(lambda: counters[0][0] + counters[1][0] >= done + 10, 10)
    finally:
        load.stop()
    wait_caught_up(rp, rr, timeout_s=sync_timeout_s)
    assert digest(rr) == digest(rp)
    assert rr.dbsize() == rp.dbsize() >= n_keys // 2
    m = FULL_SYNC_LOG.search(primary.log())
    assert m is not None, "the primary did not log its full sync"
    # The writers kept writing while the snapshot was written, sent and loaded.
    assert offset_at_link_up > int(m.group(1))
    assert sync_stats(rp)[0] == 1


def test_full_sync_of_100k_keys_under_write_load(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """A replica started while two writers (two databases, every type, MULTI/EXEC) load a
    primary holding 100k keys ends with the primary's digest and offset."""
    full_sync_under_load(start_ackdb, clients, 100_000, SYNC_TIMEOUT_S)


@pytest.mark.slow
def test_full_sync_of_1m_keys_under_write_load(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """The same with 1M keys."""
    full_sync_under_load(start_ackdb, clients, 1_000_000, 180)


# -- 2. partial resync after CLIENT KILL TYPE master -------------------------------------------


def seq_writer(port: int, prefix: str, count: list[int]) -> Callable[[threading.Event], None]:
    """Writes ``<prefix>:<i>`` = i for i = 0, 1, ...; ``count[0]`` is the number acknowledged."""

    def run(stop: threading.Event) -> None:
        r = client(port)
        try:
            while not stop.is_set() and count[0] < 200_000:
                r.set(f"{prefix}:{count[0]}", count[0])
                count[0] += 1
        finally:
            r.close()

    return run


def test_partial_resync_after_client_kill_type_master(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """Three times: the replica's link is killed from its side while a writer writes; it
    continues partially (sync_partial_ok +1 each time on the primary, sync_full stays 1),
    and every write, including those made while the link was down, arrives."""
    primary = start_ackdb()
    rp = clients(primary.port)
    rp.execute_command("DEBUG", "POPULATE", 1000)  # not propagated: the full sync sends it
    replica = start_replica_of(start_ackdb, primary.port)
    rr = clients(replica.port)
    wait_caught_up(rp, rr)
    full0, partial0, err0 = sync_stats(rp)
    assert (full0, partial0) == (1, 0)
    count = [0]
    writer = Threads()
    writer.spawn(seq_writer(primary.port, "seq", count))
    try:
        for round_ in range(3):
            assert rr.client_kill_filter(_type="master") == 1
            rp.set(f"gap:{round_}", round_)
            wait_until(lambda r=round_: sync_stats(rp)[1] >= partial0 + r + 1, SYNC_TIMEOUT_S)
            wait_until(lambda: link_up(rr), SYNC_TIMEOUT_S)
            n = count[0]
            wait_until(lambda n=n: count[0] > n + 20, 10)
    finally:
        writer.stop()
    wait_caught_up(rp, rr)
    assert sync_stats(rp) == (full0, partial0 + 3, err0)
    assert rr.mget([f"gap:{i}" for i in range(3)]) == [b"0", b"1", b"2"]
    assert rr.get(f"seq:{count[0] - 1}") == str(count[0] - 1).encode()
    assert digest(rr) == digest(rp)


def test_backlog_overrun_falls_back_to_a_full_sync(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """With a 16 KiB backlog, a replica cut off (fault proxy) while 200 KiB are written
    cannot continue: its PSYNC fails (sync_partial_err +1), it syncs fully (sync_full +1)
    and converges."""
    primary = start_ackdb("--repl-backlog-size", "16kb")
    rp = clients(primary.port)
    rp.execute_command("DEBUG", "POPULATE", 1000)
    with FaultProxy(("127.0.0.1", primary.port)) as proxy:
        replica = start_replica_of(start_ackdb, proxy.port)
        rr = clients(replica.port)
        wait_caught_up(rp, rr)
        full0, partial0, err0 = sync_stats(rp)
        proxy.drop_all()
        wait_until(lambda: info(rr)["master_link_status"] == "down", 10)
        for i in range(200):
            rp.set(f"big:{i}", b"x" * 1024)
        proxy.heal()
        wait_caught_up(rp, rr)
    assert sync_stats(rp) == (full0 + 1, partial0, err0 + 1)
    assert rr.get("big:199") == b"x" * 1024
    assert digest(rr) == digest(rp)


def test_silent_link_times_out_on_both_sides_then_continues(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """A link that silently loses every byte (fault proxy blackhole): after
    ``repl-timeout`` (2 s) the primary drops the replica and the replica marks its link
    down; once the network heals the replica reconnects and continues partially with the
    writes it missed."""
    timeouts = ["--repl-timeout", "2", "--repl-ping-replica-period", "1"]
    primary = start_ackdb(*timeouts)
    rp = clients(primary.port)
    with FaultProxy(("127.0.0.1", primary.port)) as proxy:
        replica = start_replica_of(start_ackdb, proxy.port, *timeouts)
        rr = clients(replica.port)
        rp.set("before", 1)
        wait_caught_up(rp, rr)
        full0, partial0, _ = sync_stats(rp)
        proxy.blackhole("both")
        rp.set("during", 2)
        t0 = time.monotonic()
        wait_until(lambda: info(rr)["master_link_status"] == "down", 15)
        wait_until(lambda: info(rp)["connected_slaves"] == 0, 15)
        took = time.monotonic() - t0
        assert 1.0 <= took < 15, took
        proxy.heal()
        wait_caught_up(rp, rr)
    assert sync_stats(rp)[:2] == (full0, partial0 + 1)
    assert rr.mget("before", "during") == [b"1", b"2"]
    assert digest(rr) == digest(rp)


def test_primary_restart_from_its_snapshot_keeps_the_replica_partial(
    start_ackdb: Start, clients: Callable[..., redis.Redis], tmp_path: Path
) -> None:
    """A primary stopped with SHUTDOWN SAVE and restarted from its snapshot starts a new
    history with the saved one as replid2: its replica, which stayed up, continues
    partially (sync_partial_ok 1, sync_full 0 on the restarted primary) and gets the
    writes made after the restart."""
    pdir = tmp_path / "primary"
    pdir.mkdir()
    primary = start_ackdb("--dir", str(pdir))
    rp = clients(primary.port)
    rp.execute_command("DEBUG", "POPULATE", 2000)
    replica = start_replica_of(start_ackdb, primary.port)
    rr = clients(replica.port)
    for _ in range(100):
        rp.incr("counter")
    wait_caught_up(rp, rr)
    old_id, old_offset = replid(rp), offset(rp)
    with pytest.raises(redis.ConnectionError):
        rp.execute_command("SHUTDOWN", "SAVE")
    assert primary.proc.wait(20) == 0
    rp.close()
    primary = start_ackdb("--dir", str(pdir), port=primary.port)
    rp = clients(primary.port)
    fields = dict(info_fields(rp))
    assert fields["master_replid2"] == old_id
    # The history continues right after what it had (a GETACK at shutdown may follow
    # the offset read above).
    assert old_offset + 1 <= int(fields["second_repl_offset"]) <= old_offset + 1 + 37
    for _ in range(100):
        rp.incr("counter")
    wait_caught_up(rp, rr)
    assert sync_stats(rp)[:2] == (0, 1)
    assert rr.get("counter") == b"200"
    assert replid(rr) == replid(rp) != old_id
    assert digest(rr) == digest(rp)


def test_manual_switchover_repoints_replicas_partially(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """A controller's switchover: with A's replicas B and C caught up, B gets REPLICAOF NO
    ONE (a new id, A's as replid2), then A and C get REPLICAOF B: both continue
    partially (sync_partial_ok 2, sync_full 0 on B) and follow B's writes."""
    a = start_ackdb()
    ra = clients(a.port)
    ra.execute_command("DEBUG", "POPULATE", 2000)
    b = start_replica_of(start_ackdb, a.port)
    c = start_replica_of(start_ackdb, a.port)
    rb, rc = clients(b.port), clients(c.port)
    for i in range(100):
        ra.rpush("list", i)
    wait_caught_up(ra, rb, rc)
    old_id = replid(ra)
    assert rb.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    fields = dict(info_fields(rb))
    assert fields["role"] == "master" and fields["master_replid2"] == old_id
    assert rb.rpush("list", "from-b") == 101
    assert ra.execute_command("REPLICAOF", "127.0.0.1", b.port) == b"OK"
    assert rc.execute_command("REPLICAOF", "127.0.0.1", b.port) == b"OK"
    wait_caught_up(rb, ra, rc)
    assert sync_stats(rb)[:2] == (0, 2)
    for r in (ra, rc):
        assert r.lindex("list", -1) == b"from-b"
        assert digest(r) == digest(rb)
        assert replid(r) == replid(rb)


def test_old_primary_with_writes_the_new_one_lacks_resyncs_fully(
    start_ackdb: Start, clients: Callable[..., redis.Redis], tmp_path: Path
) -> None:
    """A's replica B is cut off (fault proxy) while A takes more writes; A stops with
    ``SHUTDOWN NOW SAVE`` (its snapshot holds those writes and its history), B is
    promoted and written to. A restarted as B's replica must not continue partially
    (its offset is past what B had of their common history): it syncs fully, drops the
    writes B never had, and ends with B's data."""
    adir = tmp_path / "a"
    adir.mkdir()
    a = start_ackdb("--dir", str(adir))
    ra = clients(a.port)
    ra.execute_command("DEBUG", "POPULATE", 1000)
    with FaultProxy(("127.0.0.1", a.port)) as proxy:
        b = start_replica_of(start_ackdb, proxy.port)
        rb = clients(b.port)
        ra.set("common", 1)
        wait_caught_up(ra, rb)
        proxy.drop_all()
        wait_until(lambda: info(rb)["master_link_status"] == "down", 10)
        for i in range(50):
            ra.set(f"only-a:{i}", i)
        with pytest.raises(redis.ConnectionError):
            ra.execute_command("SHUTDOWN", "NOW", "SAVE")
        assert a.proc.wait(20) == 0
    ra.close()
    assert rb.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    for i in range(20):
        rb.set(f"only-b:{i}", i)
    a = start_replica_of(start_ackdb, b.port, "--dir", str(adir), port=a.port)
    ra = clients(a.port)
    wait_caught_up(rb, ra)
    # A asked to continue its history (sync_partial_err) and was refused.
    assert sync_stats(rb) == (1, 0, 1)
    assert ra.get("only-a:0") is None
    assert ra.get("only-b:19") == b"19" and ra.get("common") == b"1"
    assert digest(ra) == digest(rb)


@pytest.mark.slow
def test_link_flapping_under_write_load_converges(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """The link (through a fault proxy) is cut 30 times at random moments while two
    writers load two databases; partial resyncs, full syncs cut half-way and backlog
    overruns may all happen, and the replica must end with the primary's digest."""
    rng = random.Random(int(os.environ.get("ACKDB_REPL_SEED") or 1))
    primary = start_ackdb()
    rp = clients(primary.port)
    rp.execute_command("DEBUG", "POPULATE", 20_000)
    with FaultProxy(("127.0.0.1", primary.port)) as proxy:
        replica = start_replica_of(start_ackdb, proxy.port)
        rr = clients(replica.port)
        wait_caught_up(rp, rr)
        load = Threads()
        counters = [[0], [0]]
        load.spawn(mixed_load(primary.port, 0, 11, counters[0]))
        load.spawn(mixed_load(primary.port, 5, 12, counters[1]))
        cuts_when_up = 0
        try:
            for _ in range(30):
                # Half the cuts once the link is up, half as soon as a connection is
                # open (in the handshake or a full sync).
                if rng.random() < 0.5:
                    wait_until(lambda: link_up(rr), 60, interval_s=0.01)
                    cuts_when_up += 1
                else:
                    wait_until(lambda: proxy.stats.open_connections > 0, 10, interval_s=0.005)
                n = counters[0][0]
                wait_until(lambda n=n: counters[0][0] >= n + rng.randrange(0, 4), 10)
                proxy.close_connections()
        finally:
            load.stop()
        wait_caught_up(rp, rr, timeout_s=60)
    assert digest(rr) == digest(rp)
    full, partial, _ = sync_stats(rp)
    assert full + partial >= cuts_when_up + 1


# -- 3. WAIT with stopped replicas -------------------------------------------------------------


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    t0 = time.monotonic()
    result = fn()
    return result, time.monotonic() - t0


def test_syncwoff_and_wait_after_a_keepalive_answer_under_always(
    start_node: Start, clients: Callable[..., redis.Redis]
) -> None:
    """Issue 14: an endpoint's ``ACKDB.SYNCWOFF`` + ``WAIT`` on its own connection after a
    keep-alive PING (no write since) answer at once. They got no reply at all: SYNCWOFF
    took the PING as the connection's last write, and under ``appendfsync always`` the
    replies waited for an fsync past it, which no write ever brought."""
    primary = start_node(
        "p", "--appendonly", "yes", "--appendfsync", "always", "--repl-ping-replica-period", "1"
    )
    replica = start_replica_of(lambda *a, **kw: start_node("r", *a, **kw), primary.port)
    rp, rr = clients(primary.port), clients(replica.port)
    rp.set("k", "v")
    wait_caught_up(rp, rr)
    before = offset(rp)
    wait_until(lambda: offset(rp) > before, 10)  # a PING went out; nothing written since
    pipe = clients(primary.port, timeout_s=5).pipeline(transaction=False)
    pipe.execute_command("ACKDB.SYNCWOFF").execute_command("WAIT", 1, 0)
    replies, took = timed(pipe.execute)
    assert replies == [b"OK", 1]
    assert took < 2.0, took


def test_wait_times_out_with_sigstopped_replicas(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """With one of two replicas SIGSTOPped, ``WAIT 2 500`` answers 1 after about 500 ms
    and ``WAIT 1`` answers 1 at once; with both stopped ``WAIT 1 500`` answers 0 after
    about 500 ms. After SIGCONT both catch up and ``WAIT 2`` counts them."""
    primary = start_ackdb()
    r1 = start_replica_of(start_ackdb, primary.port)
    r2 = start_replica_of(start_ackdb, primary.port)
    rp = clients(primary.port)
    rp.set("a", 1)
    assert rp.wait(2, 20_000) == 2
    stopped: list[ServerProcess] = []
    try:
        os.kill(r2.proc.pid, signal.SIGSTOP)
        stopped.append(r2)
        rp.set("b", 2)
        n, took = timed(lambda: rp.wait(2, 500))
        assert n == 1
        assert 0.45 <= took < 3.0, took
        n, took = timed(lambda: rp.wait(1, 10_000))
        assert n == 1
        assert took < 3.0, took
        os.kill(r1.proc.pid, signal.SIGSTOP)
        stopped.append(r1)
        rp.set("c", 3)
        n, took = timed(lambda: rp.wait(1, 500))
        assert n == 0
        assert 0.45 <= took < 3.0, took
    finally:
        for srv in stopped:
            os.kill(srv.proc.pid, signal.SIGCONT)
    rp.set("d", 4)
    assert rp.wait(2, 20_000) == 2
    c1, c2 = clients(r1.port), clients(r2.port)
    wait_caught_up(rp, c1, c2)
    for c in (c1, c2):
        assert c.mget("a", "b", "c", "d") == [b"1", b"2", b"3", b"4"]
        assert digest(c) == digest(rp)


# -- 4. replica restart continues partially ----------------------------------------------------


@pytest.mark.parametrize("how", ["shutdown-save", "save-rules-sigterm"])
def test_replica_restart_resyncs_partially(
    start_ackdb: Start, clients: Callable[..., redis.Redis], tmp_path: Path, how: str
) -> None:
    """A replica stopped with a snapshot of its data and history (SHUTDOWN SAVE, or
    SIGTERM with save rules) and restarted from it with the same ``replicaof`` continues
    partially (sync_partial_ok +1, sync_full unchanged) and gets the writes it missed."""
    rdir = tmp_path / "replica"
    rdir.mkdir()
    extra = ["--dir", str(rdir)]
    if how == "save-rules-sigterm":
        extra += ["--save", "3600 1"]
    primary = start_ackdb()
    rp = clients(primary.port)
    rp.execute_command("DEBUG", "POPULATE", 5000)
    replica = start_replica_of(start_ackdb, primary.port, *extra)
    rr = clients(replica.port)
    for i in range(200):
        rp.set(f"before:{i}", i)
    wait_caught_up(rp, rr)
    full0, partial0, _ = sync_stats(rp)
    if how == "shutdown-save":
        with pytest.raises(redis.ConnectionError):
            rr.execute_command("SHUTDOWN", "SAVE")
        assert replica.proc.wait(20) == 0
    else:
        assert replica.stop() == 0
    rr.close()
    assert any(p.suffix == ".ackdb" or "dump" in p.name for p in rdir.iterdir()), list(
        rdir.iterdir()
    )
    for i in range(200):
        rp.set(f"during:{i}", i)
    replica = start_replica_of(start_ackdb, primary.port, *extra, port=replica.port)
    rr = clients(replica.port)
    wait_caught_up(rp, rr)
    assert sync_stats(rp)[:2] == (full0, partial0 + 1)
    assert rr.get("before:199") == b"199"
    assert rr.get("during:199") == b"199"
    assert digest(rr) == digest(rp)


# -- 5. WAITAOF-acknowledged writes survive the primary's death --------------------------------


def waitaof_writer(
    port: int, tid: int, ledger: Ledger, acked: list[int]
) -> Callable[[threading.Event], None]:
    """SET w<tid>:<v % 16> = v, then WAITAOF 0 1 2000; the write is recorded as
    acknowledged when one replica reported it fsynced. Stops when the primary dies."""

    def run(stop: threading.Event) -> None:
        r = client(port, timeout_s=5)
        v = 0
        try:
            while not stop.is_set() and v < 100_000:
                v += 1
                key = f"w{tid}:{v % 16}"
                ledger.record_sent(key, v)
                try:
                    assert r.set(key, v)
                    local, n = r.execute_command("WAITAOF", 0, 1, 2000)
                except (redis.ConnectionError, redis.TimeoutError):
                    return  # the primary was killed
                assert local == 0
                if n >= 1:
                    ledger.record_acked(key, v)
                    acked[tid] += 1
        finally:
            r.close()

    return run


@pytest.mark.parametrize("replica_crash", [False, True], ids=["replica-alive", "replica-crash"])
def test_waitaof_acknowledged_writes_survive_primary_sigkill(
    start_ackdb: Start, clients: Callable[..., redis.Redis], tmp_path: Path, replica_crash: bool
) -> None:
    """Writers record every write ``WAITAOF 0 1`` acknowledged; the primary is SIGKILLed
    mid-load (and, in the second variant, the replica too, restarted from its AOF); after
    ``REPLICAOF NO ONE`` the replica holds every acknowledged write."""
    rdir = tmp_path / "replica"
    rdir.mkdir()
    raof = ["--dir", str(rdir), "--appendonly", "yes", "--appendfsync", "always"]
    primary = start_ackdb()
    replica = start_replica_of(start_ackdb, primary.port, *raof)
    rp, rr = clients(primary.port), clients(replica.port)
    rp.set("warm", 1)
    wait_caught_up(rp, rr)
    # The replica rebuilds its AOF after the full sync; WAITAOF counts it once that is done.
    wait_until(lambda: rp.execute_command("WAITAOF", 0, 1, 100)[1] == 1, SYNC_TIMEOUT_S)
    ledger = Ledger()
    acked = [0, 0, 0]
    writers = Threads()
    for tid in range(3):
        writers.spawn(waitaof_writer(primary.port, tid, ledger, acked))
    try:
        wait_until(lambda: sum(acked) >= 300, 20)
        primary.stop(signal.SIGKILL)
    finally:
        writers.stop()
    acked_writes, _ = ledger.snapshot()
    assert len(acked_writes) == 48
    if replica_crash:
        replica.stop(signal.SIGKILL)
        rr.close()
        replica = start_replica_of(start_ackdb, primary.port, *raof, port=replica.port)
        rr = clients(replica.port)
        wait_until(lambda: info(rr, "persistence")["loading"] == 0, SYNC_TIMEOUT_S)
    assert rr.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    assert info(rr)["role"] == "master"
    assert ledger.missing_on(rr) == []
    assert rr.set("after", 1)


# -- 6. FAILOVER under a write load -------------------------------------------------------------


def failover_writer(
    ports: tuple[int, int],
    tid: int,
    ledger: Ledger,
    state: dict[int, int],
    patience_s: float = 20.0,
) -> Callable[[threading.Event], None]:
    """SET f<tid>:<v % 16> = v against the primary; a write counts as acknowledged when the
    reply was OK. On -READONLY (the write was not applied) it retries the same write on
    the other node, for at most ``patience_s``. ``state[tid]`` is the port it writes to."""

    def run(stop: threading.Event) -> None:
        conns = {p: client(p, timeout_s=20) for p in ports}
        cur = ports[0]
        state[tid] = cur
        v = 0
        try:
            while not stop.is_set() and v < 100_000:
                v += 1
                key = f"f{tid}:{v % 16}"
                ledger.record_sent(key, v)
                deadline = time.monotonic() + patience_s
                while True:
                    try:
                        ok = conns[cur].set(key, v)
                    except redis.ReadOnlyError:
                        if time.monotonic() > deadline:
                            raise
                        cur = ports[1] if cur == ports[0] else ports[0]
                        state[tid] = cur
                        time.sleep(0.005)
                        continue
                    assert ok is True
                    ledger.record_acked(key, v)
                    break
        finally:
            for c in conns.values():
                c.close()

    return run


def test_failover_under_write_load_loses_no_acknowledged_write(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """``FAILOVER TIMEOUT 10000`` while three writers write: the roles swap (INFO on both),
    every write acknowledged with OK on either node is on the new primary, the writers
    end on it, and the old primary continued partially (sync_partial_ok on the new one)."""
    a = start_ackdb()
    ra = clients(a.port)
    ra.execute_command("DEBUG", "POPULATE", 2000)
    b = start_replica_of(start_ackdb, a.port)
    rb = clients(b.port)
    wait_caught_up(ra, rb)
    assert sync_stats(rb)[:2] == (0, 0)
    ledger = Ledger()
    where: dict[int, int] = {}
    writers = Threads()
    for tid in range(3):
        writers.spawn(failover_writer((a.port, b.port), tid, ledger, where))

    def acked_count() -> int:
        return len(ledger.snapshot()[0])

    def swapped() -> bool:
        ia, ib = info(ra), info(rb)
        return (
            ia["role"] == "slave"
            and ia["master_port"] == b.port
            and ia["master_link_status"] == "up"
            and ia["master_failover_state"] == "no-failover"
            and ib["role"] == "master"
            and ib["master_failover_state"] == "no-failover"
        )

    try:
        wait_until(lambda: acked_count() >= 48, 10)
        assert ra.execute_command("FAILOVER", "TIMEOUT", 10_000) == b"OK"
        wait_until(swapped, SYNC_TIMEOUT_S, interval_s=0.05)
        wait_until(lambda: len(where) == 3 and set(where.values()) == {b.port}, 20)
        n = offset(rb)
        wait_until(lambda: offset(rb) > n + 2000, 20)  # the writers write on b now
    finally:
        writers.stop()
    assert ledger.missing_on(rb) == []
    full, partial, _ = sync_stats(rb)
    assert (full, partial) == (0, 1)
    wait_caught_up(rb, ra)
    assert digest(ra) == digest(rb)
    role_a = ra.execute_command("ROLE")
    assert role_a[0] == b"slave" and role_a[2] == b.port and role_a[3] == b"connected"


@pytest.mark.slow
def test_failover_back_and_forth_under_write_load(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """Ten FAILOVERs alternating between two nodes while three writers write: after each
    the roles are swapped, no acknowledged write is missing on the new primary, and no
    full sync ever happens after the first."""
    a = start_ackdb()
    b = start_replica_of(start_ackdb, a.port)
    ra, rb = clients(a.port), clients(b.port)
    wait_caught_up(ra, rb)
    ledger = Ledger()
    where: dict[int, int] = {}
    writers = Threads()
    for tid in range(3):
        writers.spawn(failover_writer((a.port, b.port), tid, ledger, where, patience_s=60))
    nodes = [ra, rb]
    try:
        for i in range(10):
            r_old, r_new = nodes[i % 2], nodes[(i + 1) % 2]
            n = len(ledger.snapshot()[0])
            off = offset(r_old)
            wait_until(lambda o=off, r=r_old: offset(r) > o + 2000, 20)
            assert r_old.execute_command("FAILOVER", "TIMEOUT", 10_000) == b"OK"

            def swapped(r_old: redis.Redis = r_old, r_new: redis.Redis = r_new) -> bool:
                io, inew = info(r_old), info(r_new)
                return (
                    io["role"] == "slave"
                    and io["master_link_status"] == "up"
                    and io["master_failover_state"] == "no-failover"
                    and inew["role"] == "master"
                )

            wait_until(swapped, SYNC_TIMEOUT_S, interval_s=0.05)
            assert ledger.missing_on(r_new, live=True) == [], f"failover {i}"
            assert len(ledger.snapshot()[0]) >= n
    finally:
        writers.stop()
    assert ledger.missing_on(ra) == []  # ten hand-overs: a is the primary again
    wait_caught_up(ra, rb)
    assert digest(ra) == digest(rb)
    assert sync_stats(ra)[0] == 1 and sync_stats(rb)[0] == 0


def test_failover_with_a_stopped_replica_times_out_and_resumes_writes(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """With its only replica SIGSTOPped and behind, ``FAILOVER TIMEOUT 700`` waits for
    sync with writes paused (a SET blocks), then gives up: the node stays primary, the
    paused SET completes, and no failover state is left. ``FAILOVER ABORT`` ends a second
    attempt the same way. After SIGCONT the replica catches up."""
    primary = start_ackdb()
    replica = start_replica_of(start_ackdb, primary.port)
    rp, rr = clients(primary.port), clients(replica.port)
    rp.set("k", 0)
    wait_caught_up(rp, rr)
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        for attempt, args in enumerate((["TIMEOUT", 700], ["TIMEOUT", 60_000])):
            rp.set("k", attempt + 1)  # the replica cannot acknowledge this
            assert rp.execute_command("FAILOVER", *args) == b"OK"
            assert info(rp)["master_failover_state"] == "waiting-for-sync"
            with Session(primary.port, timeout_s=20) as s:
                s.send("SET", "paused", attempt)
                assert s.silent_for(0.2)  # writes are paused: the SET waits
                if attempt == 1:
                    assert rp.execute_command("FAILOVER", "ABORT") == b"OK"
                t0 = time.monotonic()
                assert s.read() == b"OK"
                if attempt == 0:
                    assert time.monotonic() - t0 < 3.0
            i = info(rp)
            assert i["role"] == "master" and i["master_failover_state"] == "no-failover"
            assert rp.get("paused") == str(attempt).encode()
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    wait_caught_up(rp, rr)
    assert rr.get("paused") == b"1"
    assert digest(rr) == digest(rp)


def test_failover_to_an_unreachable_target_can_be_aborted(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """The replica announces a port behind a fault proxy that loses every byte: FAILOVER
    sees it in sync, demotes the primary and gets stuck sending PSYNC ... FAILOVER (the
    target may have promoted itself, so it does not give up by itself). FAILOVER ABORT
    makes it a primary again; the replica, which never got the request, stays a replica,
    continues without a full sync and gets the writes made after."""
    primary = start_ackdb()
    rp = clients(primary.port)
    rport = free_port()
    with FaultProxy(("127.0.0.1", rport)) as proxy:
        replica = start_replica_of(
            start_ackdb, primary.port, "--replica-announce-port", str(proxy.port), port=rport
        )
        rr = clients(replica.port)
        rp.set("x", 1)
        wait_caught_up(rp, rr)
        proxy.blackhole("both")
        assert rp.execute_command("FAILOVER", "TIMEOUT", 5000) == b"OK"
        wait_until(lambda: info(rp)["master_failover_state"] == "failover-in-progress", 10)
        assert info(rr)["role"] == "slave"
        assert rp.execute_command("FAILOVER", "ABORT") == b"OK"
        i = info(rp)
        assert i["role"] == "master" and i["master_failover_state"] == "no-failover"
        proxy.heal()
        assert rp.set("y", 2)
        wait_caught_up(rp, rr)
    assert info(rr)["role"] == "slave"
    assert rr.mget("x", "y") == [b"1", b"2"]
    assert sync_stats(rp)[0] == 1
    assert digest(rr) == digest(rp)


# -- 7. protocol checks ---------------------------------------------------------------------------


def test_wait_and_waitaof_inside_multi_do_not_block(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """Inside MULTI, ``WAIT 2 0`` (0 = for ever, with one replica only) and
    ``WAITAOF 0 1 0`` answer at once, and the transaction's own write is not covered
    (notes; Redis moves the client's offset after EXEC): the replica acknowledged the
    write before MULTI, so WAIT counts 1. Outside MULTI the same WAIT blocks until its
    timeout and answers the count reached (1)."""
    primary = start_ackdb()
    replica = start_replica_of(start_ackdb, primary.port)
    rr = clients(replica.port)
    wait_until(lambda: link_up(rr), SYNC_TIMEOUT_S)
    with Session(primary.port, timeout_s=5) as s:
        assert s.call("SET", "k", "v") == b"OK"
        assert s.call("WAIT", 1, 10_000) == 1
        assert s.call("MULTI") == b"OK"
        assert s.call("SET", "k", "w") == b"QUEUED"
        assert s.call("WAIT", 2, 0) == b"QUEUED"
        assert s.call("WAITAOF", 0, 1, 0) == b"QUEUED"
        reply, took = timed(lambda: s.call("EXEC"))
        # The transaction's own write is not covered: the replica has the write before.
        assert reply == [b"OK", 1, [0, 0]]
        assert took < 2.0
        n, took = timed(lambda: s.call("WAIT", 2, 300))
        assert n == 1 and 0.28 <= took < 3.0, (n, took)


def test_wait_after_a_write_made_before_any_replica_blocks(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """A client writes on a primary that never had a replica, then ``WAIT 1 20000``; a
    replica attached afterwards makes the WAIT answer 1 (its full sync includes the
    write). The WAIT must not answer 0 before any replica could have the write."""
    primary = start_ackdb()
    node = start_ackdb()
    with Session(primary.port, timeout_s=30) as s:
        assert s.call("SET", "k", "v") == b"OK"
        s.send("WAIT", 1, 20_000)
        assert clients(node.port).execute_command("REPLICAOF", "127.0.0.1", primary.port)
        assert s.read() == 1


def test_wait_and_waitaof_errors(start_ackdb: Start) -> None:
    """WAITAOF with numlocal 1 and the AOF off, WAIT / WAITAOF on a replica, and argument
    errors (checked before the role) answer the notes' exact errors."""
    primary = start_ackdb()
    replica = start_replica_of(start_ackdb, primary.port)
    with Session(primary.port) as s:
        assert error_text(s.call("WAITAOF", 1, 0, 0)) == WAITAOF_NO_AOF
        assert error_text(s.call("WAIT", 1, -1)) == "ERR timeout is negative"
    with Session(replica.port) as s:
        assert error_text(s.call("WAITAOF", 0, 0, 0)) == WAITAOF_REPLICA
        assert error_text(s.call("WAITAOF", 1, 0, 0)) == WAITAOF_REPLICA
        assert error_text(s.call("WAIT", 0, 0)) == WAIT_REPLICA
        assert (
            error_text(s.call("WAITAOF", 2, 0, 0))
            == "ERR value is out of range, value must between 0 and 1"
        )
        assert (
            error_text(s.call("WAITAOF", 0, -1, 0)) == "ERR value is out of range, must be positive"
        )


def test_replicaof_port_checks_and_unreachable_primary(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """REPLICAOF refuses a port that is not a number in 0..65535; a valid port where no
    server listens is accepted, the link stays down (ROLE state connect/connecting) and
    REPLICAOF NO ONE makes the node a writable primary again."""
    node = start_ackdb()
    with Session(node.port) as s:
        for bad in ("notaport", "70000", "-1"):
            assert error_text(s.call("REPLICAOF", "127.0.0.1", bad)) == "ERR Invalid master port"
        assert s.call("ROLE")[0] == b"master"
    r = clients(node.port)
    dead = free_port()  # nobody listens there: connections are refused
    assert r.execute_command("REPLICAOF", "127.0.0.1", dead) == b"OK"
    wait_until(lambda: r.execute_command("ROLE")[3] in (b"connect", b"connecting"), 10)
    role = r.execute_command("ROLE")
    assert role[:3] == [b"slave", b"127.0.0.1", dead]
    assert info(r)["master_link_status"] == "down"
    with Session(node.port) as s:
        assert error_text(s.call("SET", "k", "1")) == READONLY
    assert r.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    assert r.execute_command("ROLE")[0] == b"master"
    assert r.set("k", 1)


def test_writes_on_a_replica_get_readonly(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """A write on a replica (alone or queued in MULTI) gets -READONLY; reads work."""
    primary = start_ackdb()
    replica = start_replica_of(start_ackdb, primary.port)
    rr = clients(replica.port)
    wait_until(lambda: link_up(rr), SYNC_TIMEOUT_S)
    with Session(primary.port) as s:
        assert s.call("SET", "k", "v") == b"OK"
        assert s.call("WAIT", 1, 10_000) == 1
    with Session(replica.port) as s:
        assert error_text(s.call("SET", "k", "w")) == READONLY
        assert error_text(s.call("DEL", "k")) == READONLY
        assert s.call("GET", "k") == b"v"
        assert s.call("MULTI") == b"OK"
        assert error_text(s.call("INCR", "n")) == READONLY
        assert error_text(s.call("EXEC")).startswith("EXECABORT")


def test_serve_stale_data_no_gives_masterdown_while_the_link_is_down(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """With ``replica-serve-stale-data no`` and the link cut by a proxy, reads get
    -MASTERDOWN while INFO still answers (with ``master_link_down_since_seconds`` in its
    place); once the proxy heals the replica reconnects and serves reads again."""
    primary = start_ackdb()
    rp = clients(primary.port)
    rp.set("k", "v")
    with FaultProxy(("127.0.0.1", primary.port)) as proxy:
        replica = start_replica_of(
            start_ackdb, proxy.port, "--replica-serve-stale-data", "no", "--repl-timeout", "5"
        )
        rr = clients(replica.port)
        wait_caught_up(rp, rr)
        assert rr.get("k") == b"v"
        proxy.drop_all()

        def masterdown() -> bool:
            with Session(replica.port) as s:
                reply = s.call("GET", "k")
            if reply == b"v":
                return False
            assert error_text(reply) == MASTERDOWN
            return True

        wait_until(masterdown, 20)
        names = [n for n, _ in info_fields(rr)]
        assert names == (
            REPLICA_HEAD_FIELDS
            + ["master_link_down_since_seconds"]
            + REPLICA_MID_FIELDS
            + ["connected_slaves"]
            + TAIL_FIELDS
        )
        assert info(rr)["master_link_status"] == "down"
        rp.set("k", "v2")
        proxy.heal()
        wait_caught_up(rp, rr)
        assert rr.get("k") == b"v2"


def test_min_replicas_to_write_refuses_writes_without_good_replicas(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """``min-replicas-to-write 1`` with no replica: writes get -NOREPLICAS, reads work,
    INFO shows ``min_slaves_good_slaves:0`` after ``connected_slaves``; once a replica is
    online writes are accepted. With the replica SIGSTOPped its ACKs stop: after
    ``min-replicas-max-lag`` (2 s) writes are refused again, and accepted after SIGCONT."""
    primary = start_ackdb("--min-replicas-to-write", "1", "--min-replicas-max-lag", "2")
    with Session(primary.port) as s:
        assert error_text(s.call("SET", "k", "v")) == NOREPLICAS
        assert s.call("GET", "k") is None
        assert s.call("MULTI") == b"OK"
        assert error_text(s.call("SET", "k", "v")) == NOREPLICAS
        assert error_text(s.call("EXEC")).startswith("EXECABORT")
    rp = clients(primary.port)
    fields = info_fields(rp)
    assert [n for n, _ in fields] == (
        ["role", "connected_slaves", "min_slaves_good_slaves"] + TAIL_FIELDS
    )
    assert dict(fields)["min_slaves_good_slaves"] == "0"
    replica = start_replica_of(start_ackdb, primary.port)

    def accepted() -> bool:
        with Session(primary.port) as s:
            reply = s.call("SET", "k", "v")
        if reply == b"OK":
            return True
        assert error_text(reply) == NOREPLICAS
        return False

    wait_until(accepted, SYNC_TIMEOUT_S, interval_s=0.05)
    assert dict(info_fields(rp))["min_slaves_good_slaves"] == "1"
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        wait_until(lambda: not accepted(), 15, interval_s=0.1)
        assert time.monotonic() - t0 >= 1.0
        assert dict(info_fields(rp))["min_slaves_good_slaves"] == "0"
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    wait_until(accepted, SYNC_TIMEOUT_S, interval_s=0.05)


def test_role_and_info_replication_on_both_sides(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """ROLE on a primary: ["master", offset, [[ip, "port", "ackoffset"]]] (bulk strings);
    on a replica: ["slave", host, port, "connected", offset]. INFO replication lists its
    fields in Redis's order on both, with matching ids and offsets."""
    primary = start_ackdb()
    replica = start_replica_of(start_ackdb, primary.port)
    rp, rr = clients(primary.port), clients(replica.port)
    wait_until(lambda: link_up(rr), SYNC_TIMEOUT_S)
    rp.set("k", "v")
    assert rp.wait(1, 10_000) == 1
    wait_caught_up(rp, rr)

    def role_of(port: int) -> list[object]:
        with Session(port) as s:
            reply: list[object] = s.call("ROLE")
        return reply

    # The ACK answering WAIT's GETACK leaves out the GETACK's own 37 bytes; the next
    # periodic ACK (every second) reports them.
    wait_until(lambda: role_of(primary.port)[2][0][2] == str(offset(rp)).encode(), 10)
    role = role_of(primary.port)
    assert role[0] == b"master" and isinstance(role[1], int) and role[1] > 0
    assert role[2] == [[b"127.0.0.1", str(replica.port).encode(), str(role[1]).encode()]]
    assert role_of(replica.port) == [b"slave", b"127.0.0.1", primary.port, b"connected", role[1]]

    pf = info_fields(rp)
    assert [n for n, _ in pf] == ["role", "connected_slaves", "slave0"] + TAIL_FIELDS
    p = dict(pf)
    assert p["role"] == "master" and p["connected_slaves"] == "1"
    slave0 = dict(kv.split("=", 1) for kv in p["slave0"].split(","))
    assert list(slave0)[:5] == ["ip", "port", "state", "offset", "lag"]
    assert slave0["ip"] == "127.0.0.1" and slave0["port"] == str(replica.port)
    assert slave0["state"] == "online" and slave0["offset"] == str(role[1])
    assert p["master_failover_state"] == "no-failover"
    assert re.fullmatch(r"[0-9a-f]{40}", p["master_replid"])
    assert p["master_replid2"] == "0" * 40 and p["second_repl_offset"] == "-1"
    assert p["master_repl_offset"] == str(role[1])

    rf = info_fields(rr)
    assert [n for n, _ in rf] == (
        REPLICA_HEAD_FIELDS + REPLICA_MID_FIELDS + ["connected_slaves"] + TAIL_FIELDS
    )
    r = dict(rf)
    assert r["role"] == "slave" and r["master_host"] == "127.0.0.1"
    assert r["master_port"] == str(primary.port) and r["master_link_status"] == "up"
    assert r["master_sync_in_progress"] == "0"
    assert r["slave_repl_offset"] == r["master_repl_offset"] == p["master_repl_offset"]
    assert r["master_replid"] == p["master_replid"]
    assert r["slave_read_only"] == "1" and r["connected_slaves"] == "0"


# -- 8. a chain of replicas ---------------------------------------------------------------------


def test_replica_of_a_replica_converges_to_the_primary(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """A -> B -> C under a write load on A: C ends with A's digest, replid and offset
    (B passes A's stream on byte for byte), and B lists C as its replica."""
    a = start_ackdb()
    ra = clients(a.port)
    ra.execute_command("DEBUG", "POPULATE", 20_000)
    load = Threads()
    counter = [0]
    load.spawn(mixed_load(a.port, 0, 7, counter))
    try:
        wait_until(lambda: counter[0] > 3, 10)
        b = start_replica_of(start_ackdb, a.port)
        rb = clients(b.port)
        c = start_replica_of(start_ackdb, b.port)
        rc = clients(c.port)
        wait_until(lambda: link_up(rb) and link_up(rc), SYNC_TIMEOUT_S, interval_s=0.05)
        n = counter[0]
        wait_until(lambda: counter[0] >= n + 10, 10)
    finally:
        load.stop()
    wait_caught_up(ra, rb, rc)
    assert digest(rc) == digest(rb) == digest(ra)
    assert replid(rc) == replid(rb) == replid(ra)
    assert offset(rc) == offset(ra)
    assert info(rb)["connected_slaves"] == 1
    assert info(rc)["master_port"] == b.port
