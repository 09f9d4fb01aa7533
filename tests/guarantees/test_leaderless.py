"""Leaderless databases on a real three-node cluster (issue 16 item 12, real processes).

One ``ackdb node`` cluster on three loopback hosts holds a leaderless database (n = 3,
``aof-always``); register clients (one writer per key; writes and reads at QUORUM /
QUORUM, ONE / ALL and ALL / ONE: r + w > n) run through the coordinators while faults
hit one node. Checked on the
recorded history (tests/guarantees/jepsen/leaderless.py): no read returns less than a
write acknowledged before it began; after healing and ``CONVERGE`` every replica holds
the same value, at least every acknowledged one, and nothing no one wrote.

Scenarios: a node killed (agent, coordinator and replica: SIGKILL) during the writes and
restarted -- its replica gets the hints the other coordinators kept; one replica cut off
by an iptables DROP of its port (root; SIGSTOP otherwise) and healed; a replica whose data
directory was wiped, rebuilt by anti-entropy; a schema change during hash writes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from jepsen.history import OK
from jepsen.leaderless import RegisterClient, check_final, check_strong_reads
from jepsen.report import scenario

from ackdb.cluster.dbtext import DbInfo, parse_info
from ackdb.keyspace import lww
from ackdb.node.localcluster import LocalCluster, wait_for
from ackdb.node.secrets import read_secret, shard_password
from ackdb.resp.client import ReplyError

pytestmark = pytest.mark.e2e

DB = "lltest"
WRITERS = 4
CONVERGE_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("ll"), 3, distinct_hosts=True) as c:
        c.start_all()
        wait_for(lambda: c.leader() is not None, 30, "a leader")
        wait_for(lambda: _create(c), 60, "the database to be created")
        for n in sorted(c.members):
            wait_for(lambda n=n: _serves(c, n), 60, f"the coordinator on {n}")
        yield c
        c.close()
        c.kill_leftovers()


def _create(c: LocalCluster) -> bool:
    """DB.CREATE once every member registered (until then it is refused: too few nodes)."""
    try:
        with c.client(c.wait_leader(), timeout_s=60) as cl:
            cl.call("DB.CREATE", DB, "TYPE", "leaderless", "REPLICATION-FACTOR", "3")
        return True
    except ReplyError as e:
        if "not registered yet" in str(e):
            return False
        raise


def _info(c: LocalCluster) -> DbInfo:
    with c.client(c.wait_leader()) as cl:
        return parse_info(cl.call("DB.INFO", DB).decode())


def _coordinator(c: LocalCluster, node: str) -> tuple[str, int]:
    return c[node].host, _info(c).port


def _serves(c: LocalCluster, node: str) -> bool:
    try:
        with redis.Redis(*_coordinator(c, node), socket_timeout=5) as r:
            return bool(r.execute_command("AT", "ALL", "SET", "probe", "1"))
    except (redis.RedisError, OSError):
        return False


def _replicas(c: LocalCluster) -> list[tuple[str, str, int]]:
    """(node, host, port) of every replica of partition 0."""
    part = _info(c).partitions[0]
    out = []
    for inst in part.replicas:
        node, host, port = inst.split(":")
        out.append((node, host, int(port)))
    return out


def _replica_conn(c: LocalCluster, host: str, port: int) -> redis.Redis:
    password = shard_password(read_secret(str(c.secret_file)))
    return redis.Redis(host, port, password=password, socket_timeout=10)


def _finals(c: LocalCluster, keys: list[str]) -> list[dict[str, Any]]:
    out = []
    for _, host, port in _replicas(c):
        held: dict[str, Any] = {}
        with _replica_conn(c, host, port) as r:
            for k in keys:
                raw = r.execute_command("LL.GET", k)
                kind, value = lww.decode(raw).view() if raw is not None else ("absent", None)
                held[k] = value if kind == "string" else None
        out.append(held)
    return out


def _converge(c: LocalCluster, node: str) -> None:
    with redis.Redis(*_coordinator(c, node), socket_timeout=CONVERGE_TIMEOUT_MS / 1000 + 5) as r:
        assert r.execute_command("CONVERGE", "TIMEOUT", CONVERGE_TIMEOUT_MS) == b"OK"


def _info_field(c: LocalCluster, node: str, field: str) -> int:
    with redis.Redis(*_coordinator(c, node), socket_timeout=5) as r:
        return int(r.info("leaderless")[field])


# (write level, read level) of each register client: every pair with r + w > n for n = 3.
LEVEL_PAIRS = [("QUORUM", "QUORUM"), ("ONE", "ALL"), ("ALL", "ONE"), ("QUORUM", "QUORUM")]


class Load:
    """WRITERS register clients; writers 0..k use the coordinators of ``nodes``; client
    i writes and reads at ``LEVEL_PAIRS[i]``."""

    def __init__(self, c: LocalCluster, run: Any, prefix: str, nodes: list[str]) -> None:
        self.keys = [f"{prefix}:{i}" for i in range(WRITERS)]
        addrs = [_coordinator(c, n) for n in nodes]
        self.clients = [
            RegisterClient(
                run.history,
                f"w{i}",
                k,
                self.keys,
                lambda i=i: addrs[i % len(addrs)],
                *LEVEL_PAIRS[i % len(LEVEL_PAIRS)],
                run.seed * 100 + i,
            )
            for i, k in enumerate(self.keys)
        ]
        self.threads = [threading.Thread(target=w, daemon=True) for w in self.clients]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self.clients:
            w.stop.set()
        for t in self.threads:
            t.join(30)

    def acked(self) -> int:
        return sum(w.acked for w in self.clients)


def _check(c: LocalCluster, run: Any, keys: list[str], node: str) -> None:
    _converge(c, node)
    bad = check_strong_reads(run.history) + check_final(run.history, _finals(c, keys))
    assert not bad, "\n".join(f"{f.kind}: {f.detail}" for f in bad[:20])
    oks = [op for op in run.history.ops if op.f == "set" and op.outcome == OK]
    assert len(oks) >= WRITERS, "too few writes were acknowledged to check anything"


def test_a_node_killed_during_quorum_writes_gets_its_hints_back(
    cluster: LocalCluster, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    c = cluster
    victim = sorted(c.members)[-1]
    others = [n for n in sorted(c.members) if n != victim]
    with scenario(request, tmp_path, 7) as run, Load(c, run, "kill", others) as load:
        wait_for(lambda: load.acked() >= 20, 30, "writes before the kill")
        run.history.event("kill-node", node=victim)
        c.kill_node(victim)
        acked = load.acked()
        wait_for(lambda: load.acked() >= acked + 40, 30, "QUORUM writes with a node down")
        hints = max(_info_field(c, n, "ll_hints_pending") for n in others)
        assert hints > 0, "no hint was kept for the dead replica"
        run.history.event("restart-node", node=victim)
        c.start(victim)
        wait_for(
            lambda: all(_info_field(c, n, "ll_hints_pending") == 0 for n in others),
            60, "the hints to be replayed",
        )  # fmt: skip
        assert sum(_info_field(c, n, "ll_hints_replayed") for n in others) > 0
    _check(c, run, load.keys, others[0])


def test_a_cut_replica_converges_after_the_heal(
    cluster: LocalCluster, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    c = cluster
    victim, host, port = _replicas(c)[-1]
    others = [n for n in sorted(c.members) if n != victim]
    rule = ["INPUT", "-p", "tcp", "-d", host, "--dport", str(port), "-j", "DROP"]
    pid = c.unit_pids(victim, "shards").get(f"shards/{_info(c).fields['uid']}-0")
    use_iptables = os.geteuid() == 0 and shutil.which("iptables") is not None
    with scenario(request, tmp_path, 11) as run, Load(c, run, "cut", others) as load:
        wait_for(lambda: load.acked() >= 20, 30, "writes before the cut")
        run.history.event("cut", node=victim, by="iptables" if use_iptables else "SIGSTOP")
        if use_iptables:
            subprocess.run(["iptables", "-I", *rule], check=True)
        else:
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
        try:
            acked = load.acked()
            wait_for(lambda: load.acked() >= acked + 40, 30, "QUORUM writes during the cut")
        finally:
            if use_iptables:
                subprocess.run(["iptables", "-D", *rule], check=False)
            elif pid is not None:
                os.kill(pid, signal.SIGCONT)
        run.history.event("heal")
        time.sleep(0.5)
    _check(c, run, load.keys, others[0])


def test_a_wiped_replica_is_rebuilt_by_anti_entropy(
    cluster: LocalCluster, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    c = cluster
    with scenario(request, tmp_path, 13) as run, Load(c, run, "wipe", sorted(c.members)) as load:
        wait_for(lambda: load.acked() >= 40, 30, "writes before the wipe")
    victim, host, port = _replicas(c)[0]
    uid = _info(c).fields["uid"]
    pid = c.unit_pids(victim, "shards")[f"shards/{uid}-0"]
    shard_dir = c[victim].dir / "shards" / f"{uid}-0"
    run.history.event("wipe", node=victim)
    os.kill(pid, signal.SIGSTOP)
    for p in shard_dir.iterdir():
        if p.is_dir() and p.name.startswith("appendonly"):
            shutil.rmtree(p)
        elif p.suffix in (".aof", ".rdb"):
            p.unlink()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _replica_answers(c, host, port), 60, "the wiped replica back")
    with _replica_conn(c, host, port) as r:
        assert r.dbsize() < len(load.keys), "the replica was not wiped"
    _check(c, run, load.keys, victim)


def _replica_answers(c: LocalCluster, host: str, port: int) -> bool:
    try:
        with _replica_conn(c, host, port) as r:
            return bool(r.ping())
    except (redis.RedisError, OSError):
        return False


def test_a_schema_change_during_hash_writes(cluster: LocalCluster) -> None:
    """Writes naming a property are refused until the change that adds it is committed
    and accepted after; no refused write is stored; each replica checks the version."""
    c = cluster
    leader = c.wait_leader()
    with c.client(leader) as cl:
        cl.call("SCHEMA.CREATE", DB, "Article", "art:", "title:string", "year:int")
    coord = redis.Redis(*_coordinator(c, sorted(c.members)[0]), socket_timeout=10)
    wait_for(lambda: _refuses(coord, "art:0", "year", "abc"), 30, "the schema to apply")
    stop = threading.Event()
    results: list[tuple[int, int, bool]] = []  # (invoke ns, complete ns, accepted)

    def writer() -> None:
        i = 0
        with redis.Redis(*_coordinator(c, sorted(c.members)[1]), socket_timeout=10) as r:
            while not stop.is_set():
                i += 1
                t0 = time.monotonic_ns()
                try:
                    r.hset(f"art:{i}", mapping={"title": "t", "pages": i})
                    ok = True
                except redis.ResponseError as e:
                    assert "SCHEMA" in str(e), e
                    ok = False
                results.append((t0, time.monotonic_ns(), ok))
                time.sleep(0.01)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        added_at = time.monotonic_ns()
        with c.client(leader) as cl:
            cl.call("SCHEMA.ADD", DB, "Article", "pages:int")
        wait_for(lambda: any(ok for _, _, ok in results), 30, "a write with the new property")
    finally:
        stop.set()
        t.join(30)
    assert results and not results[0][2], "the first writes must be refused"
    early = [r for r in results if r[2] and r[1] < added_at]
    assert not early, f"writes accepted before the property existed: {early[:3]}"
    assert _refuses(coord, "art:x", "pages", "many")
    coord.close()


def _refuses(r: redis.Redis, key: str, field: str, value: str) -> bool:
    try:
        r.hset(key, field, value)
    except redis.ResponseError as e:
        return "SCHEMA" in str(e)
    return False


def test_the_checkers_find_a_stale_read_a_loss_a_divergence_and_an_invention() -> None:
    """The leaderless checkers on hand-made histories: each fault is reported."""
    from jepsen.history import UNKNOWN, History

    h = History()
    w1 = h.invoke("w", "set", "k", 1, level="QUORUM")
    h.complete(w1, OK)
    w2 = h.invoke("w", "set", "k", 2)
    h.complete(w2, UNKNOWN, "LEVEL write at ALL reached 2 of 3 replicas")
    stale = h.invoke("r", "get", "k", None, level="QUORUM")
    h.complete(stale, OK, 0)  # began after 1 was acknowledged, returned nothing
    fine = h.invoke("r", "get", "k", None, level="QUORUM")
    h.complete(fine, OK, 2)  # the unknown write may win
    weak = h.invoke("r", "get", "k", None, level="ONE")
    h.complete(weak, OK, 0)  # QUORUM + ONE = n: may miss the write
    assert [f.kind for f in check_strong_reads(h)] == ["stale-read"]
    assert check_final(h, [{"k": b"2"}, {"k": b"2"}]) == []  # an unknown write may stand
    assert [f.kind for f in check_final(h, [{"k": b"1"}, {"k": b"2"}])] == ["diverged"]
    assert [f.kind for f in check_final(h, [{"k": None}, {"k": None}])] == ["lost"]
    assert [f.kind for f in check_final(h, [{"k": b"7"}, {"k": b"7"}])] == ["invented"]
