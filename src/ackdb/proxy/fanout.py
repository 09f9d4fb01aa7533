"""Requests that go to more than one shard: split per slot group, fanned out to every
shard, SCAN across shards, WAIT / WAITAOF over the shards written, INFO.

Owns: how each such request becomes shard requests and which merge answers it. Never does
IO; runs inside the session core (proxy/session.py), which sends and orders.

Splitting groups keys by shard (a shard is one process, so one request per shard keeps
each part atomic on its shard and costs one round trip); the merge follows the command's
tip: DEL / UNLINK / EXISTS / TOUCH sum, MSET all-succeeded, MGET puts values back in
request order.

WAIT and WAITAOF (tips: all_shards, agg_min): sent to every shard this client wrote to
since its last WAIT, each on the client's own connection to that shard, so each shard waits
for the offset of this client's last write there; all run at once, so the timeout is one
timeout overall; the reply is the minimum. A client that wrote nothing asks every shard,
which answers as Redis does for a connection without writes. A shard whose primary changed
under the client's writes, or whose reply is lost, counts 0 (proxy/failover.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import failover, local
from .merge import keyspace_lines, merge, ordered, parse_cursor, scan_reply
from .router import Merge, Route, slot_of

if TYPE_CHECKING:
    from .session import Session

INVALID_CURSOR = b"-ERR invalid cursor\r\n"


def split(s: Session, r: Route, argv: list[bytes]) -> None:
    step = r.step
    n = len(argv)
    if n < 2 or (n - 1) % step:
        s._forward(0, argv, r.write, True, not r.write)  # the shard words the arity error
        return
    router = s.router
    groups: dict[int, list[int]] = {}  # shard -> indexes of the keys in argv
    single = router.nshards == 1 and s.redirect is None
    if single:
        s._forward(0, argv, r.write, True, not r.write)
        return
    shard_of = router.shard_of
    if router.cluster is not None:  # a cluster node: one slot, its own (CROSSSLOT, MOVED)
        slots = {slot_of(argv[i]) for i in range(1, n, step)}
        refusal = router.cluster.check_slots(slots)
        if refusal is not None and refusal[:6] == b"-MOVED" and s.readonly and not r.write:
            refusal = None if all(s._reads(slot) for slot in slots) else refusal
        if refusal is not None:
            s._reply(refusal)
            return
    for i in range(1, n, step):
        groups.setdefault(shard_of[slot_of(argv[i])], []).append(i)
    if len(groups) == 1:
        s._forward(next(iter(groups)), argv, r.write, True, not r.write)
        return
    shards = sorted(groups)
    requests = []
    for shard in shards:
        req = [argv[0]]
        for i in groups[shard]:
            req.extend(argv[i : i + step])
        requests.append(req)
        if r.write:
            s.written |= 1 << shard
    if r.merge is Merge.ORDERED:
        positions = [[(i - 1) // step for i in groups[shard]] for shard in shards]
        total = (n - 1) // step
        s.fan(shards, requests, lambda parts: ordered(parts, positions, total), True, True)
    else:
        kind = r.merge
        rng = s.rng
        s.fan(shards, requests, lambda parts: merge(kind, parts, rng), True, not r.write)


# Fan-outs over the dataset: with the cluster API they cover the shards this endpoint owns
# (a Redis Cluster node's DBSIZE counts its own keys; redis-py sums over the nodes).
_KEYSPACE = frozenset({"dbsize", "keys", "randomkey", "flushall", "flushdb"})
# Their reply from an endpoint that owns no slot (a Redis Cluster node without slots).
_NOTHING_OWNED = {
    Merge.SUM: b":0\r\n",
    Merge.CONCAT: b"*0\r\n",
    Merge.ALL_OK: b"+OK\r\n",
}


def fan_out(s: Session, r: Route, argv: list[bytes]) -> None:
    shards = s.keyspace_shards() if r.name in _KEYSPACE else s.all_shards()
    if not shards:
        null = b"_\r\n" if s.protocol == 3 else b"$-1\r\n"
        s._reply(_NOTHING_OWNED.get(r.merge, null))
        return
    if r.write:
        for shard in shards:
            s.written |= 1 << shard
    s.merged(shards, argv, r.merge, True, not r.write)


def scan(s: Session, r: Route, argv: list[bytes]) -> None:
    if len(argv) < 2:
        s._forward(0, argv, False, True, True)
        return
    cursor = parse_cursor(argv[1])
    if cursor is None:
        s._reply(INVALID_CURSOR)
        return
    shards = s.keyspace_shards()  # with the cluster API: the owned ones
    n = len(shards)
    if not n:
        s._reply(b"*2\r\n$1\r\n0\r\n*0\r\n")
        return
    cursors = s.cursors
    found = cursors.decode(cursor, n)
    if found is None or found[0] >= n:
        s._reply(INVALID_CURSOR)
        return
    at, shard_cursor = found  # ``at``: the position in ``shards``
    req = [argv[0], b"%d" % shard_cursor, *argv[2:]]
    s.fan([shards[at]], [req], lambda parts: scan_reply(parts[0], at, n, cursors), True, True)


def wait(s: Session, r: Route, argv: list[bytes]) -> None:
    written = s.written
    if written:
        shards = [i for i in range(s.router.nshards) if written >> i & 1]
    else:
        shards = s.all_shards()
    # A shard whose primary changed (or started failing over) since this client wrote
    # there counts 0 (its replicas are not the ones that got those writes); so does one
    # whose reply is lost (its connection broke mid-WAIT, or it stayed failing past the
    # bound): the count the endpoint can vouch for.
    zero = failover.zero_for(argv)
    zeros = failover.wait_zero(s, shards)
    if zeros:
        shards = [i for i in shards if i not in zeros]
    s.unsure = 0
    if written and s.mux:
        # The writes may have gone over the shared connections (whose last write offset
        # is every client's): the dedicated connection's is raised to the shard's
        # offset, >= this client's last write there, before WAIT asks for it.
        for shard in shards:
            s._send(shard, [b"ACKDB.SYNCWOFF"], None)
    s.written = 0
    rng = s.rng
    extra = [zero] if zeros else []

    def finish(parts: list[bytes]) -> bytes:
        return merge(Merge.MIN, [failover.wait_part(p, zero) for p in parts] + extra, rng)

    if not shards:
        s._reply(finish([]))
        return
    s.wait_pending = s.fan(shards, [argv] * len(shards), finish)
    s.wait_sent_ms = s.clock_ms()


_ALL_SECTIONS = ("server", "clients", "stats", "cluster", "keyspace")


def info(s: Session, r: Route, argv: list[bytes]) -> None:
    """The endpoint's own sections (server, clients, stats) and the database's keyspace,
    summed over the shards."""
    asked = [a.decode("utf-8", "replace").lower() for a in argv[1:]]
    if not asked or any(a in ("default", "all", "everything") for a in asked):
        sections = list(_ALL_SECTIONS)
    else:
        sections = [a for a in _ALL_SECTIONS if a in asked]
    protocol = s.protocol

    def finish(parts: list[bytes]) -> bytes:
        return local.info_reply(s.info(), sections, keyspace_lines(parts), protocol)

    shards = s.keyspace_shards()
    if "keyspace" not in sections or not shards:
        s._reply(finish([]))
        return
    s.fan(shards, [[b"INFO", b"keyspace"]] * len(shards), finish, True, True)
