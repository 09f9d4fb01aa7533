"""End to end: the shard server's side of automatic failover (issue 15, docs/fencing.md)
between real ``ackdb server`` processes.

- ``ackdb-lease no`` (the default) changes nothing: writes pass, INFO has no ackdb lines.
- ``ackdb-lease yes``: writes get -TRYAGAIN until ACKDB.LEASE, while the deadline (in
  CLOCK_MONOTONIC ms: the test shares the host's clock) lies ahead, and again after it;
  a stale epoch is refused; deadline 0 fences at once; MULTI/EXEC is refused as a
  whole like NOREPLICAS; CONFIG SET turns it off; a promoted replica starts fenced; the
  ACKDB commands need AUTH.
- ACKDB.FREEZE: a replica drops its link and stays away; a primary is fenced; the frozen
  replica later continues partially on the promoted one (replid2).
- ACKDB.DIVERGED: the old primary's writes beyond the fork land in diverged-<tag>.aof,
  which ``redis-cli --pipe`` replays into a fresh server; past the backlog, the whole
  dataset goes to diverged-<tag>.rdb.
- A WAIT on a primary fenced meanwhile answers with the count reached at its timeout; a
  blocked BLPOP times out as usual.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hiredis
import pytest
import redis
from repl_support import (
    SYNC_TIMEOUT_S,
    Session,
    client,
    info,
    info_fields,
    link_up,
    start_replica_of,
    sync_stats,
    wait_caught_up,
)

from conftest import ServerProcess, wait_until

pytestmark = pytest.mark.e2e

Start = Callable[..., ServerProcess]
FENCED = "TRYAGAIN this shard is fenced: no valid lease (a failover may be in progress)"
ACKDB_FIELDS = [
    "ackdb_lease",
    "ackdb_lease_valid",
    "ackdb_lease_remaining_ms",
    "ackdb_epoch",
    "ackdb_frozen",
]


@pytest.fixture
def clients() -> Iterator[Callable[..., redis.Redis]]:
    opened: list[redis.Redis] = []

    def open_client(port: int, **kw: object) -> redis.Redis:
        r = client(port, **kw)  # type: ignore[arg-type]
        opened.append(r)
        return r

    yield open_client
    for r in opened:
        r.close()


def mono_ms() -> int:
    return int(time.monotonic() * 1000)


def error_text(reply: object) -> str:
    assert isinstance(reply, hiredis.ReplyError), f"expected an error, got {reply!r}"
    return str(reply)


def lease(r: redis.Redis, epoch: int, ms: int) -> object:
    return r.execute_command("ACKDB.LEASE", epoch, mono_ms() + ms if ms else 0)


def freeze(r: redis.Redis, epoch: int) -> tuple[str, int, str, int]:
    replid, off, replid2, second = r.execute_command("ACKDB.FREEZE", epoch)
    return replid.decode(), int(off), replid2.decode(), int(second)


def test_lease_off_changes_nothing(start_ackdb: Start, clients: Callable[..., redis.Redis]) -> None:
    r = clients(start_ackdb().port)
    assert r.config_get("ackdb-lease") == {"ackdb-lease": "no"}
    assert r.set("k", "v")
    assert not any(n.startswith("ackdb_") for n, _ in info_fields(r))


def test_lease_gates_writes(start_ackdb: Start, clients: Callable[..., redis.Redis]) -> None:
    p = start_ackdb("--ackdb-lease", "yes")
    r = clients(p.port)
    with Session(p.port) as s:
        assert error_text(s.call("SET", "k", "v")) == FENCED
        assert s.call("GET", "k") is None  # reads pass
    fields = dict(info_fields(r))
    assert [n for n, _ in info_fields(r)][-5:] == ACKDB_FIELDS
    assert fields["ackdb_lease"] == "on" and fields["ackdb_lease_valid"] == "0"
    assert lease(r, 3, 10_000) == b"OK"
    assert r.set("k", "v")
    fields = dict(info_fields(r))
    assert fields["ackdb_lease_valid"] == "1" and fields["ackdb_epoch"] == "3"
    assert 5_000 < int(fields["ackdb_lease_remaining_ms"]) <= 10_000
    with pytest.raises(redis.ResponseError, match=r"stale epoch 2 \(current 3\)"):
        lease(r, 2, 10_000)
    # A short lease runs out by itself.
    assert lease(r, 3, 300) == b"OK"
    assert r.set("k", "v2")
    wait_until(lambda: dict(info_fields(r))["ackdb_lease_valid"] == "0", 5)
    with Session(p.port) as s:
        assert error_text(s.call("INCR", "n")) == FENCED
    # Deadline 0 fences at once.
    assert lease(r, 4, 10_000) == b"OK"
    assert r.incr("n") == 1
    assert lease(r, 4, 0) == b"OK"
    with Session(p.port) as s:
        assert error_text(s.call("INCR", "n")) == FENCED
    # CONFIG SET turns it off (and on again: still without a lease).
    r.config_set("ackdb-lease", "no")
    assert r.incr("n") == 2
    r.config_set("ackdb-lease", "yes")
    with Session(p.port) as s:
        assert error_text(s.call("INCR", "n")) == FENCED


def test_multi_exec_is_refused_whole_when_fenced(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """As for NOREPLICAS (Redis processCommand): a write queued while fenced is refused
    and EXEC aborts; fenced between MULTI and EXEC, EXEC answers -EXECABORT with the
    reason, and nothing of the transaction ran."""
    p = start_ackdb("--ackdb-lease", "yes")
    r = clients(p.port)
    # Fenced now (a lease with deadline 0): a start awaiting its first lease would hold
    # writes for FIRST_LEASE_WAIT_MS instead (test_a_start_holds_writes_until_the_lease).
    assert lease(r, 1, 0) == b"OK"
    with Session(p.port) as s:
        assert s.call("MULTI") == b"OK"
        assert error_text(s.call("SET", "k", "v")) == FENCED
        assert error_text(s.call("EXEC")).startswith("EXECABORT")
    assert lease(r, 1, 10_000) == b"OK"
    with Session(p.port) as s:
        assert s.call("MULTI") == b"OK"
        assert s.call("SET", "k", "v") == b"QUEUED"
        assert s.call("INCR", "n") == b"QUEUED"
        assert lease(r, 1, 0) == b"OK"
        assert error_text(s.call("EXEC")) == (
            "EXECABORT Transaction discarded because of: " + FENCED
        )
    assert r.get("k") is None and r.get("n") is None
    with Session(p.port) as s:  # a read-only transaction still runs
        assert s.call("MULTI") == b"OK"
        assert s.call("GET", "k") == b"QUEUED"
        assert s.call("EXEC") == [None]


def test_scripts_and_functions_are_fenced(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """EVAL, EVALSHA and FCALL are not write commands, so the gate lets them in; a fenced
    primary must still refuse their writes: a script that declares it may write is
    refused before it runs, and any script at its first write command (nothing written),
    with the fenced TRYAGAIN -- as Redis does for a replica's READONLY and NOREPLICAS."""
    p = start_ackdb("--ackdb-lease", "yes")
    r = clients(p.port)
    assert lease(r, 1, 10_000) == b"OK"
    lib = "#!lua name=lib\nredis.register_function('w', function(k) return redis.call('set', k[1], 'v') end)"
    assert r.function_load(lib) == b"lib"
    sha = r.script_load("return redis.call('set', KEYS[1], 'v')")
    assert lease(r, 1, 0) == b"OK"
    with Session(p.port) as s:
        for call in (
            ("EVAL", "redis.call('get', 'x') redis.call('set', KEYS[1], 'v') return 1", "1", "k"),
            ("EVALSHA", sha, "1", "k"),
            ("FCALL", "w", "1", "k"),
        ):
            assert error_text(s.call(*call)).startswith(FENCED), call
        assert error_text(s.call("EVAL", "#!lua\nreturn 1", "0")) == FENCED
        assert s.call("EVAL", "return redis.call('get', KEYS[1])", "1", "k") is None  # reads run
        assert s.call("EVAL", "#!lua flags=no-writes\nreturn 2", "0") == 2
    assert r.get("k") is None
    assert lease(r, 1, 10_000) == b"OK"
    assert r.fcall("w", 1, "k") == b"OK"


def test_ackdb_commands_need_auth(start_ackdb: Start) -> None:
    p = start_ackdb("--requirepass", "pw", "--ackdb-lease", "yes")
    with Session(p.port) as s:
        for argv in (
            ("ACKDB.LEASE", "1", "0"),
            ("ACKDB.FREEZE", "1"),
            ("ACKDB.DIVERGED", "0" * 40, "0", "1"),
        ):
            assert error_text(s.call(*argv)).startswith("NOAUTH")
        assert s.call("AUTH", "pw") == b"OK"
        assert s.call("ACKDB.LEASE", "1", "0") == b"OK"


def test_promoted_replica_starts_fenced(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    a = start_ackdb()
    b = start_replica_of(start_ackdb, a.port, "--ackdb-lease", "yes")
    ra, rb = clients(a.port), clients(b.port)
    ra.set("k", "v")
    wait_caught_up(ra, rb)
    assert lease(rb, 1, 10_000) == b"OK"  # a replica's lease does not survive promotion
    assert rb.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    with Session(b.port) as s:
        assert error_text(s.call("SET", "k", "w")) == FENCED
    assert lease(rb, 1, 10_000) == b"OK"
    assert rb.set("k", "w")


def test_freeze_then_partial_resync_to_the_promoted_replica(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """A primary, B and C replicas. ACKDB.FREEZE 1 on B and C: their links drop and stay
    down while A keeps writing; on A it fences (with ackdb-lease off too). B is
    promoted; C, pointed at B, continues partially with its frozen history."""
    a = start_ackdb()
    b = start_replica_of(start_ackdb, a.port)
    c = start_replica_of(start_ackdb, a.port)
    ra, rb, rc = clients(a.port), clients(b.port), clients(c.port)
    for i in range(100):
        ra.set(f"k{i}", i)
    wait_caught_up(ra, rb, rc)
    b_report = freeze(rb, 1)
    c_report = freeze(rc, 1)
    assert b_report[:2] == c_report[:2]
    assert b_report[1] == int(info(ra)["master_repl_offset"])
    assert dict(info_fields(rc))["ackdb_frozen"] == "1"
    wait_until(lambda: int(info(ra)["connected_slaves"]) == 0, 10)
    ra.set("after", 1)
    time.sleep(1.5)  # several reconnect back-offs: a frozen replica stays away
    assert info(rc)["master_link_status"] == "down"
    assert int(info(rc)["master_repl_offset"]) == c_report[1]
    assert with_epoch_error(rc, 0) == "stale epoch 0 (current 1)"
    freeze(ra, 1)
    with Session(a.port) as s:
        assert error_text(s.call("SET", "k", "x")) == FENCED
    assert rb.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    assert info(rb)["master_replid2"] == b_report[0]
    rb.set("from-b", 1)
    assert rc.execute_command("REPLICAOF", "127.0.0.1", b.port) == b"OK"
    wait_caught_up(rb, rc)
    assert sync_stats(rb)[:2] == (0, 1)
    assert rc.get("from-b") == b"1" and rc.get("after") is None
    assert dict(info_fields(rc))["ackdb_frozen"] == "0"


def with_epoch_error(r: redis.Redis, epoch: int) -> str:
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("ACKDB.FREEZE", epoch)
    return str(e.value)


def test_diverged_writes_are_saved_and_replay(
    start_node: Callable[..., ServerProcess],
    clients: Callable[..., redis.Redis],
    tmp_path: Path,
) -> None:
    """The old primary A writes 30 commands (two dbs, a transaction) after its replica B
    was frozen; B is promoted. ACKDB.DIVERGED on A with B's report writes exactly those
    bytes (the count skips SELECT/MULTI/EXEC/PING/REPLCONF); ``redis-cli --pipe`` into a
    fresh server reproduces them. A second call past the backlog saves an RDB."""
    a = start_node("a", "--repl-backlog-size", "16kb")
    ra = clients(a.port)
    ra.set("common", 1)
    b = start_node("b", "--replicaof", "127.0.0.1", str(a.port))
    rb = clients(b.port)
    wait_caught_up(ra, rb)
    replid, fork, _, _ = freeze(rb, 1)
    wait_until(lambda: int(info(ra)["connected_slaves"]) == 0, 10)
    for i in range(20):
        ra.set(f"only-a:{i}", i)
    ra1 = clients(a.port, db=1)
    for i in range(5):
        ra1.rpush("list", i)
    pipe = ra.pipeline(transaction=True)
    for _ in range(5):
        pipe.incr("counter")
    pipe.execute()
    own = int(info(ra)["master_repl_offset"])
    count, first, last, path = ra.execute_command("ACKDB.DIVERGED", replid, fork, "1")
    assert (count, first, last) == (30, fork + 1, own)
    saved = Path(path.decode())
    assert saved == tmp_path / "a" / "diverged-1.aof"
    assert len(saved.read_bytes()) == own - fork
    assert "Diverged writes saved: 30 commands" in a.log()
    # Nothing diverged for a fork at our offset.
    assert ra.execute_command("ACKDB.DIVERGED", replid, own, "2") == [0, 0, 0, b""]
    # A fork on a history this primary never had: all of its data (saved as an RDB).
    count, first, last, path = ra.execute_command("ACKDB.DIVERGED", "f" * 40, 0, "2")
    assert (count, first, last) == (-1, 0, own)
    assert path.decode() == str(tmp_path / "a" / "diverged-2.rdb")
    # Replay into a fresh server.
    fresh = start_node("fresh")
    with open(saved, "rb") as f:
        out = subprocess.run(
            ["redis-cli", "-p", str(fresh.port), "--pipe"],
            stdin=f,
            capture_output=True,
            timeout=30,
            check=True,
        )
    assert b"errors: 0" in out.stdout, out.stdout
    rf, rf1 = clients(fresh.port), clients(fresh.port, db=1)
    assert rf.get("only-a:19") == b"19" and rf.get("counter") == b"5"
    assert rf1.lrange("list", 0, -1) == [b"0", b"1", b"2", b"3", b"4"]
    assert rf.get("common") is None  # before the fork: not diverged
    # Past the backlog (16 KB): the whole dataset is saved.
    for i in range(40):
        ra.set(f"big:{i}", "x" * 1000)
    count, first, last, path = ra.execute_command("ACKDB.DIVERGED", replid, fork, "3")
    assert count == -1 and first == fork + 1 and last == int(info(ra)["master_repl_offset"])
    assert path.decode() == str(tmp_path / "a" / "diverged-3.rdb")
    assert Path(path.decode()).stat().st_size > 40_000


def test_wait_and_blocked_clients_on_a_primary_fenced_meanwhile(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """Redis's WAIT semantics hold: fenced while a WAIT is parked, it answers with the
    count reached at its timeout (0: the only replica is frozen); a BLPOP parked
    meanwhile times out with nil, untouched by the fence."""
    a = start_ackdb("--ackdb-lease", "yes")
    ra = clients(a.port)
    assert lease(ra, 1, 60_000) == b"OK"
    b = start_replica_of(start_ackdb, a.port)
    rb = clients(b.port)
    wait_until(lambda: link_up(rb), SYNC_TIMEOUT_S)
    freeze(rb, 1)
    wait_until(lambda: int(info(ra)["connected_slaves"]) == 0, 10)
    waiter, blocker = clients(a.port), clients(a.port)
    results: dict[str, object] = {}

    def run_wait() -> None:
        waiter.set("w", 1)
        t0 = time.monotonic()
        results["wait"] = waiter.execute_command("WAIT", 1, 1500)
        results["wait_s"] = time.monotonic() - t0

    def run_blpop() -> None:
        results["blpop"] = blocker.blpop(["list"], 1.5)

    threads = [threading.Thread(target=run_wait), threading.Thread(target=run_blpop)]
    for t in threads:
        t.start()
    wait_until(lambda: int(info(ra, "clients")["blocked_clients"]) == 2, 5)
    assert lease(ra, 1, 0) == b"OK"
    for t in threads:
        t.join(10)
    assert results["wait"] == 0 and float(results["wait_s"]) >= 1.3  # type: ignore[arg-type]
    assert results["blpop"] is None


def test_old_primary_killed_and_restarted_saves_its_whole_dataset(
    start_node: Callable[..., ServerProcess],
    clients: Callable[..., redis.Redis],
    tmp_path: Path,
) -> None:
    """A (AOF on) writes past its frozen replica B, is SIGKILLed and restarted as a
    fenced primary (ackdb-lease yes, no replicaof): after a crash its AOF carries no
    replication history, so which of its writes diverged is unknown -- ACKDB.DIVERGED
    saves the whole dataset (count -1), and a server started on that file has them."""
    a = start_node("a", "--appendonly", "yes", "--appendfsync", "always")
    ra = clients(a.port)
    ra.set("common", 1)
    b = start_node("b", "--replicaof", "127.0.0.1", str(a.port))
    rb = clients(b.port)
    wait_caught_up(ra, rb)
    replid, fork, _, _ = freeze(rb, 1)
    for i in range(10):
        ra.set(f"only-a:{i}", i)
    a.stop(signal.SIGKILL)
    a = start_node("a", "--appendonly", "yes", "--ackdb-lease", "yes", port=a.port)
    ra = clients(a.port)
    wait_until(lambda: info(ra, "persistence")["loading"] == 0, 10)
    with Session(a.port) as s:
        assert error_text(s.call("SET", "k", "v")) == FENCED
    count, first, _, path = ra.execute_command("ACKDB.DIVERGED", replid, fork, "1")
    assert (count, first) == (-1, 0)
    assert path.decode() == str(tmp_path / "a" / "diverged-1.rdb")
    assert "unknown history" in a.log()
    check = start_node("a", "--dbfilename", "diverged-1.rdb")
    assert clients(check.port).get("only-a:9") == b"9"


def test_a_start_holds_writes_until_the_lease(
    start_ackdb: Start, clients: Callable[..., redis.Redis]
) -> None:
    """A primary started under ackdb-lease holds writes until its first lease (the node
    agent leases it within a Raft read), then runs them in order: a database just created
    answers its first writes after a pause, not -TRYAGAIN."""
    p = start_ackdb("--ackdb-lease", "yes")
    r = clients(p.port)
    held: list[object] = []

    def writer() -> None:
        with Session(p.port) as s:
            held.append(s.call("SET", "k", "1"))
            held.append(s.call("INCR", "k"))

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.3)
    assert held == [] and r.get("k") is None  # held, not refused
    assert lease(r, 1, 10_000) == b"OK"
    t.join(10)
    assert held == [b"OK", 2] and r.get("k") == b"2"
