"""Seeded simulation of primary/replica replication with WAIT, WAITAOF and FAILOVER.

One seed builds a world (src/ackdb/sim/repl_world.py) of simulated servers running the
real server core, keyspace and replication driver (src/ackdb/sim/replication.py): a primary and 1-3
replicas (sometimes a sub-replica chain), AOF policies per node, clients writing, WAITing
and WAITAOFing. A safety phase injects faults the protocol claims to survive -- dropped
links, isolated nodes, replica crash-restarts, primary crashes followed by promotion of the
most up-to-date replica, FAILOVER commands -- while checking every reply:
- WAIT n: the client's last write had reached >= n distinct replicas when the reply left;
- WAITAOF [l, n]: l=1 only if the primary's fsynced state held the write; n distinct
  replicas had fsynced it;
- on every promotion: each write whose WAIT reply counted the promoted replica (and it has
  not crashed since), or whose WAITAOF reply counted it, is in its history.
A liveness phase then heals everything and requires every node to converge on the
primary's id, offset, history and digest.

Replay one seed:  ACKDB_SIM_SEED=<seed> python3 -m pytest tests/sim/test_replication_sim.py -k replay
Many random seeds: ACKDB_SIM_SEEDS=<n> python3 -m pytest tests/sim/test_replication_sim.py -k random
"""

from __future__ import annotations

import os
import random
import re

import pytest

from ackdb.replication import primary as primary_mod
from ackdb.replication import replica as replica_mod
from ackdb.replication.util import encode_command
from ackdb.sim.linearizability import Verdict
from ackdb.sim.repl_world import Conn, World
from ackdb.sim.replication import Client, Node
from ackdb.sim.world import SimFailure
from ackdb.sim.world import World as RaftWorld
from conftest import skip_if_compiled

pytestmark = pytest.mark.sim

SAFETY_MS = 30_000
LIVENESS_MS = 60_000
KEYS = [b"k%d" % i for i in range(20)]
CI_SEEDS = list(range(1, 41))
# Seeds of the world that holds a Raft cluster and a primary/replica shard together.
MIXED_SEEDS = list(range(1, 6))


class Scenario:
    """Clients, faults and checks for one seed."""

    def __init__(self, seed: int, raft: RaftWorld | None = None) -> None:
        """``raft``: a Raft world whose event queue (and clock) this one shares."""
        self.seed = seed
        self.replay = f"ACKDB_SIM_SEED={seed} python3 -m pytest {__file__} -k replay"
        if raft is None:
            self.w = w = World(seed)
        else:
            self.w = w = World(seed, queue=raft.queue, step=raft.step_event)
            self.replay = f"python3 -m pytest '{__file__}::test_one_world_with_raft[{seed}]'"
        self.rng = w.rng
        w.on_reply = self.on_reply
        w.on_promoted = self.on_promoted
        self.covers: dict[str, list[tuple[int, str, int]]] = {}
        self.faults_on = True
        self.clients_on = True
        self.stuck_since: dict[str, int] = {}
        self.stats = {"wait": 0, "waitaof": 0, "promotions": 0, "failovers": 0, "writes": 0}
        policies = ["always", "everysec", "no"]
        primary = w.add_node("n0", 7000, self.rng.choice(policies[:2]))
        self.n_replicas = self.rng.randint(1, 3)
        first = None
        for i in range(1, self.n_replicas + 1):
            upstream = primary
            if i >= 2 and first is not None and self.rng.random() < 0.3:
                upstream = first  # a sub-replica chain
            node = w.add_node(f"n{i}", 7000 + i, self.rng.choice(policies), replica_of=upstream)
            first = first or node
        self.clients = [Client(100 + i) for i in range(4)]
        for c in self.clients:
            w.after(self.rng.randint(50, 500), lambda c=c: self.client_step(c))
        w.after(self.rng.randint(500, 1500), self.fault_step)

    # -- running ------------------------------------------------------------------------

    def run(self) -> None:
        w = self.w
        w.run_until(SAFETY_MS)
        self.faults_on = False
        self.heal()
        self.clients_on = False
        converged = w.run_until(SAFETY_MS + LIVENESS_MS, stop=self.converged)
        self.fail_if(not converged, f"no convergence: {self.describe()}")
        self.fail_if(bool(w.violations), "; ".join(w.violations[:5]))
        self.check_backlogs()

    def check_backlogs(self) -> None:
        """Replicas hold the primary's stream byte for byte (same end, same bytes)."""
        p = self.primary()
        assert p is not None
        pb = p.engine.state.backlog
        assert pb is not None
        for n in self.w.nodes.values():
            b = n.engine.state.backlog
            if n is p or b is None or not b.histlen:
                continue
            start = max(b.first_byte_offset, pb.first_byte_offset)
            same = b.end_offset == pb.end_offset and b.read_from(start) == pb.read_from(start)
            self.fail_if(not same, f"{n.name}'s backlog differs from the primary's")

    def fail_if(self, cond: bool, msg: str) -> None:
        if cond:
            pytest.fail(f"seed {self.seed}: {msg}\nreplay: {self.replay}", pytrace=False)

    def primary(self) -> Node | None:
        prims = self.w.primaries()
        if len(prims) > 1:
            self.w.violations.append(f"t={self.w.now}: two primaries {[p.name for p in prims]}")
        return prims[0] if len(prims) == 1 else None

    def converged(self) -> bool:
        p = self.primary()
        if p is None or any(not n.alive for n in self.w.nodes.values()):
            return False
        if any(c.waiting for c in self.clients) or p.engine.failover.active:
            return False
        ps = p.engine.state
        for n in self.w.nodes.values():
            if n is p:
                continue
            st = n.engine.state
            if n.engine.link.state != "connected" or st.master_repl_offset != ps.master_repl_offset:
                return False
            if st.replid != ps.replid or n.history != p.history or n.digest() != p.digest():
                return False
        return True

    def describe(self) -> str:
        parts = []
        for n in self.w.nodes.values():
            e = n.engine
            parts.append(
                f"{n.name}(alive={n.alive} role={'P' if e.is_primary else e.link.state}"
                f"->{e.link.host} id={e.state.replid[:6]} off={e.state.master_repl_offset}"
                f" hist={len(n.history)} digest={n.digest()[:6]} failover={e.failover.state})"
            )
        waiting = [c.waiting for c in self.clients if c.waiting]
        return " ".join(parts) + f" waiting={waiting}"

    # -- clients ------------------------------------------------------------------------

    def client_step(self, c: Client) -> None:
        w = self.w
        if not self.clients_on and c.waiting is None:
            return
        w.after(self.rng.randint(2, 25), lambda: self.client_step(c))
        if c.waiting is not None:
            return
        p = self.primary()
        if p is None or p.paused:
            return
        if c.node is not p or c.cid not in p.clients:
            if c.node is not None:
                c.node.clients.pop(c.cid, None)
            c.last_write = None
            p.attach(c)  # a new connection
        r = self.rng.random()
        if r < 0.6:
            self.client_write(c, p)
        elif r < 0.8:
            self.client_wait(c, p)
        else:
            self.client_waitaof(c, p)
        p.end_pass()

    def client_write(self, c: Client, p: Node) -> None:
        db = self.rng.choice([0, 1])
        ops = []
        for _ in range(self.rng.choice([1, 1, 1, 2, 3])):
            wid = self.w.next_write
            self.w.next_write += 1
            key = self.rng.choice(KEYS)
            if self.rng.random() < 0.85:
                ops.append([b"SET", key, b"v%d" % wid])
                c.last_write = wid
            else:
                ops.append([b"DEL", key])  # the SET before it carries the key's id
        cmds = [[b"SELECT", b"%d" % db]]
        cmds += ops if len(ops) == 1 else [[b"MULTI"], *ops, [b"EXEC"]]
        for argv in cmds:
            reply = p.command(c, argv)
            assert reply is not None and not reply.startswith(b"-"), (argv, reply)
        self.stats["writes"] += len(ops)

    def _timeout(self) -> bytes:
        return b"%d" % self.rng.choice([0, 20, 100, 300, 1000])

    def client_wait(self, c: Client, p: Node) -> None:
        n = self.rng.randint(0, self.n_replicas)
        argv = [b"WAIT", b"%d" % n, self._timeout()]
        if argv[2] == b"0":
            n = min(n, 1)
            argv[1] = b"%d" % n
        c.waiting = ("wait", c.woff, c.last_write or 0)
        reply = p.command(c, argv)
        if reply is not None:
            self.on_reply(c, p, reply)

    def client_waitaof(self, c: Client, p: Node) -> None:
        local = self.rng.choice([0, 1]) if p.aof != "no" else 0
        n = self.rng.randint(0, self.n_replicas)
        timeout = self._timeout()
        if timeout == b"0":
            timeout = b"500"  # replicas without AOF never FACK: no endless waits
        argv = [b"WAITAOF", b"%d" % local, b"%d" % n, timeout]
        c.waiting = ("waitaof", c.woff, c.last_write or 0)
        reply = p.command(c, argv)
        if reply is not None:
            self.on_reply(c, p, reply)

    # -- checks -------------------------------------------------------------------------

    def on_reply(self, c: Client, node: Node, data: bytes) -> None:
        assert c.waiting is not None, data
        kind, target, wid = c.waiting
        c.waiting = None
        w = self.w
        if data.startswith(b"-UNBLOCKED"):
            return
        assert not data.startswith(b"-"), data
        if wid == 0 or wid in w.lost:
            return
        # Which replica (and which incarnation of it) each counted connection is.
        peers = {
            r.conn: node.server_conns[r.conn]
            for r in node.engine.table.online()
            if r.conn in node.server_conns
        }
        if kind == "wait":
            self.stats["wait"] += 1
            n = int(data[1:-2])
            had = w.ever_had.get(wid, set()) - {node.name}
            if len(had) < n:
                w.violations.append(
                    f"t={w.now}: WAIT replied {n} for write {wid} held by {sorted(had)}"
                )
            for r in node.engine.table.online():
                if r.ack_offset >= target and r.conn in peers:
                    self._cover(peers[r.conn], wid, "wait")
            return
        self.stats["waitaof"] += 1
        local, n = (int(x[1:]) for x in data.split(b"\r\n")[1:3])
        durable = w.ever_durable.get(wid, set())
        if local and node.name not in durable:
            w.violations.append(
                f"t={w.now}: WAITAOF local=1 but write {wid} not fsynced on {node.name}"
            )
        if len(durable - {node.name}) < n:
            w.violations.append(
                f"t={w.now}: WAITAOF replied {n} for write {wid}, fsynced on {sorted(durable)}"
            )
        for r in node.engine.table.online():
            if r.fack_offset >= target and r.conn in peers:
                self._cover(peers[r.conn], wid, "aof")

    def _cover(self, conn: Conn, wid: int, kind: str) -> None:
        """``conn``'s replica was counted for ``wid``; a WAIT cover holds only while that
        incarnation of the replica lives (a crash may lose what it had received)."""
        self.covers.setdefault(conn.client.name, []).append((wid, kind, conn.epoch))

    def on_promoted(self, node: Node) -> None:
        w = self.w
        self.stats["promotions"] += 1
        for wid, kind, crashes in self.covers.get(node.name, []):
            if wid in w.lost or (kind == "wait" and crashes != node.crashes):
                continue
            if wid not in node.history_set:
                w.violations.append(
                    f"t={w.now}: {node.name} promoted without write {wid} its {kind} covered"
                )
        # Writes the promoted node lacks are gone by a failure the protocol allows
        # (nothing covered them on this node); later checks ignore them.
        w.lost.update(i for i in range(1, w.next_write) if i not in node.history_set)

    # -- faults -------------------------------------------------------------------------

    def fault_step(self) -> None:
        w = self.w
        if not self.faults_on:
            return
        w.after(self.rng.randint(300, 2000), self.fault_step)
        kinds = ["drop", "drop", "drop", "isolate", "crash_replica", "crash_primary", "failover"]
        kind = self.rng.choice(kinds)
        alive = [n for n in w.nodes.values() if n.alive]
        if kind == "drop" and w.conns:
            w.break_conn(w.conns[self.rng.choice(sorted(w.conns))])
        elif kind == "isolate" and alive:
            self.isolate(self.rng.choice(alive), self.rng.randint(300, 4000))
        elif kind == "crash_replica":
            replicas = [n for n in alive if not n.engine.is_primary]
            if replicas:
                self.crash_restart(self.rng.choice(replicas), self.rng.randint(200, 3000))
        elif kind == "crash_primary":
            p = self.primary()
            if p is not None and len(alive) > 1:
                self.crash_primary(p)
        elif kind == "failover":
            self.failover()

    def isolate(self, node: Node, ms: int) -> None:
        node.isolated = True
        for conn in list(self.w.conns.values()):
            if node in (conn.client, conn.server):
                self.w.break_conn(conn)

        def heal() -> None:
            node.isolated = False

        self.w.after(ms, heal)

    def crash_restart(self, node: Node, down_ms: int) -> None:
        follow = node.engine.link.host
        node.crash()

        def restart() -> None:
            if node.alive:
                return
            upstream = self.w.nodes.get(follow) if follow else None
            if upstream is None or not upstream.alive or upstream is node:
                upstream = self.primary()
            if upstream is not None:
                node.boot(replica_of=upstream)
            elif not any(n.alive for n in self.w.nodes.values()):
                self.restart_as_primary()
            else:
                self.w.after(200, restart)

        self.w.after(down_ms, restart)

    def restart_as_primary(self) -> None:
        """Every node is down: the one with the most durable history restarts as primary
        (a promotion, as far as the checks are concerned)."""

        def durable_offset(n: Node) -> tuple[int, str]:
            return (n.durable.saved.offset if n.durable else -1, n.name)

        best = max((n for n in self.w.nodes.values() if not n.alive), key=durable_offset)
        best.boot(replica_of=None)
        self.on_promoted(best)

    def crash_primary(self, p: Node) -> None:
        self.crash_restart(p, self.rng.randint(500, 4000))
        self.w.after(self.rng.randint(200, 1500), self.promote_best)

    def promote_best(self) -> None:
        """The failover controller: promote the most up-to-date reachable replica."""
        w = self.w
        if w.primaries():
            return
        if any(n.alive and n.engine.failover.active for n in w.nodes.values()):
            # A coordinated FAILOVER is between demotion and promotion: no primary for a
            # moment is expected, and promoting someone else would make two.
            w.after(200, self.promote_best)
            return
        cands = [n for n in w.nodes.values() if n.alive and not n.isolated]
        if not cands:
            w.after(200, self.promote_best)
            return
        best = max(cands, key=lambda n: (n.engine.state.master_repl_offset, n.name))
        best.promote()
        for n in cands:
            up = w.nodes.get(n.engine.link.host or "")
            if n is not best and (up is None or not up.alive):
                n.admin([b"REPLICAOF", best.name.encode(), b"%d" % best.port])

    def failover(self) -> None:
        p = self.primary()
        if p is None or not p.engine.table.online() or p.engine.failover.active:
            return
        argv = [b"FAILOVER"]
        if self.rng.random() < 0.5:
            r = self.rng.choice(p.engine.table.online())
            argv += [b"TO", r.ip.encode(), b"%d" % r.listening_port]
            if self.rng.random() < 0.3:
                argv.append(b"FORCE")
        if self.rng.random() < 0.7 or b"FORCE" in argv:
            argv += [b"TIMEOUT", b"%d" % self.rng.randint(100, 3000)]
        reply = p.admin(argv)
        assert reply == b"+OK\r\n", (argv, reply)
        self.stats["failovers"] += 1

    def heal(self) -> None:
        for n in self.w.nodes.values():
            n.isolated = False
        if not any(n.alive for n in self.w.nodes.values()):
            self.restart_as_primary()

        def restart_all() -> None:
            p = self.primary()
            if p is None:
                self.promote_best()
                self.w.after(200, restart_all)
                return
            for n in self.w.nodes.values():
                if not n.alive:
                    n.boot(replica_of=p)

        self.w.after(100, restart_all)
        self.w.after(100, self.operator)

    def operator(self) -> None:
        """Liveness phase: a FAILOVER stuck for 5 s is aborted, as an operator would.
        Like Redis, one without TIMEOUT whose replicas all dropped waits for ever (and
        refuses their PSYNC); one in progress whose target died retries for ever."""
        for n in self.w.nodes.values():
            if not (n.alive and n.engine.failover.active):
                self.stuck_since.pop(n.name, None)
                continue
            since = self.stuck_since.setdefault(n.name, self.w.now)
            if self.w.now - since >= 5000:
                reply = n.admin([b"FAILOVER", b"ABORT"])
                assert reply == b"+OK\r\n", reply
        self.w.after(500, self.operator)


def run_seed(seed: int) -> Scenario:
    s = Scenario(seed)
    s.run()
    return s


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_seed(seed: int) -> None:
    run_seed(seed)


@pytest.mark.parametrize("seed", MIXED_SEEDS)
def test_one_world_with_raft(seed: int) -> None:
    """One seed, one event queue and clock: Raft members (src/ackdb/sim/world.py, with its
    faults, per-event safety checks and linearizability) and this file's primary/replica
    shard run side by side, their events interleaved; each keeps every check it has alone.
    The Raft world's phases run first; the shard's phases then go on on the same clock."""
    raft = RaftWorld(seed)
    s = Scenario(seed, raft=raft)
    try:
        result = raft.run()
    except SimFailure as exc:
        pytest.fail(f"{exc}\nreplay: {s.replay}", pytrace=False)
    assert result.committed > 0 and result.linearizability.verdict != Verdict.VIOLATION
    assert s.stats["writes"] > 0, "the shard ran while the Raft members did"
    s.run()
    assert s.stats["wait"] + s.stats["waitaof"] > 0


def test_replay() -> None:
    seed = os.environ.get("ACKDB_SIM_SEED")
    if seed is None:
        pytest.skip("set ACKDB_SIM_SEED=<seed> to replay one seed")
    run_seed(int(seed))


def test_random_seeds() -> None:
    count = int(os.environ.get("ACKDB_SIM_SEEDS", "0"))
    if not count:
        pytest.skip("set ACKDB_SIM_SEEDS=<n> to run n random seeds")
    for seed in random.Random().sample(range(10**9), count):
        run_seed(seed)


def test_checks_catch_an_ack_that_counts_unprocessed_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica acknowledging 37 bytes it has not processed (as if it counted a GETACK
    before answering it) makes WAIT answer early: the WAIT check must catch it."""

    def over_ack(self: replica_mod.ReplicaLink) -> bytes:
        offset = self.repl.master_repl_offset + 37
        return encode_command([b"REPLCONF", b"ACK", b"%d" % offset])

    skip_if_compiled("ackdb.replication.replica")
    monkeypatch.setattr(replica_mod.ReplicaLink, "_ack_command", over_ack)
    _caught_within_seeds(r"WAIT replied \d+ for write")


def _caught_within_seeds(match: str, seeds: range = range(1, 31)) -> None:
    """Some seed among ``seeds`` must fail with ``match``: which seed first meets the
    broken path depends on every timing of the world, so no single seed is pinned."""
    for seed in seeds:
        try:
            run_seed(seed)
        except pytest.fail.Exception as e:
            assert re.search(match, str(e)), str(e)
            return
    pytest.fail(f"no seed of {seeds} caught it ({match})")


def test_checks_catch_waitaof_counting_acks_instead_of_facks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    skip_if_compiled("ackdb.replication.primary")
    monkeypatch.setattr(
        primary_mod.ReplicaTable, "count_facked", primary_mod.ReplicaTable.count_acked
    )
    _caught_within_seeds("WAITAOF replied .* fsynced on")
