"""The incrementally kept hash tree (keyspace/lltree.py) always equals the tree computed
from scratch over the stored records (``lww.tree_leaves``), whatever changed them: the
LL.* commands, ordinary commands on the same keys (DEL, FLUSHALL, SET over a record,
RENAME, EXPIRE and an expiry, SWAPDB, MULTI/EXEC), and loads: the AOF's commands
replayed, a RESP base (AOF rewrite without preamble) and a snapshot (AOF rewrite with
one) loaded into a fresh server, as on a restart."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.keyspace import lltree, lww
from ackdb.keyspace.lww import Record, Version
from ackdb.persistence import dataset
from ackdb.persistence import snapshot as snap
from conftest import Harness

KEYS = [b"a", b"b", b"c", b"d", b"e", b"f"]
FIELDS = [b"x", b"y"]

_key = st.sampled_from(KEYS)
_ver = st.builds(lambda ms, n: b"%d.0.%d" % (ms, n), st.integers(1, 6), st.integers(1, 2))
_op = st.one_of(
    st.tuples(st.just("LL.SET"), _key, _ver, st.sampled_from([b"1", b"2"])),
    st.tuples(st.just("LL.DEL"), _key, _ver),
    st.tuples(st.just("LL.HSET"), _key, _ver, st.sampled_from(FIELDS), st.just(b"v")),
    st.tuples(st.just("LL.HDEL"), _key, _ver, st.sampled_from(FIELDS)),
    st.tuples(st.just("LL.PURGE"), _key, _ver),
    st.tuples(st.just("APPLY"), _key, _ver),
    st.tuples(st.just("DEL"), _key),
    st.tuples(st.just("SET"), _key, st.just(b"plain")),
    st.tuples(st.just("RENAME"), _key, _key),
    st.tuples(st.just("EXPIRE"), _key),
    st.tuples(st.just("TICK")),
    st.tuples(st.just("FLUSHALL")),
    st.tuples(st.just("SWAPDB")),
    st.tuples(st.just("MULTI-DEL"), _key, _ver),
    st.tuples(st.just("TREE"), st.integers(0, lww.TREE_DEPTH_MAX)),
)


def _scratch(h: Harness, depth: int) -> bytes:
    items = h.server.dbs[0].data.items()
    return b"".join(x.to_bytes(8, "big") for x in lww.tree_leaves(items, depth))


def _check(h: Harness, depth: int) -> None:
    c = h.client()
    reply = h.run(c, "LL.TREE", depth)
    head = b"$%d\r\n" % (8 << depth)
    assert reply == head + _scratch(h, depth) + b"\r\n"
    # The leaf index pages exactly the records of the range.
    want = sorted(
        k
        for k, v in h.server.dbs[0].data.items()
        if isinstance(v, Record) and lww.leaf_of(k, 2) < 2
    )
    t = h.server.dbs[0].lltree
    assert sorted(k for k, _ in t.range_items(2, 0, 2)) == want


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def _run(h: Harness, clock: Clock, op: tuple) -> None:  # type: ignore[type-arg]
    c = h.client()
    name = op[0]
    if name == "APPLY":
        rec = lww.merge(
            lww.string_write(Version.parse(op[2]), b"s"),
            lww.fields_write(Version(7, 0, 1), {b"x": b"late"}),
        )
        h.run(c, "LL.APPLY", op[1], lww.encode(rec))
    elif name == "EXPIRE":
        h.run(c, "PEXPIRE", op[1], 5)
    elif name == "TICK":
        clock.now += 10
        h.run(c, "EXISTS", *KEYS)  # lazy expiry of every key due
    elif name == "SWAPDB":
        h.run(c, "SWAPDB", 0, 1)
    elif name == "MULTI-DEL":
        h.run(c, "MULTI")
        h.run(c, "DEL", op[1])
        h.run(c, "LL.SET", op[1] + b"2", op[2], b"m")
        h.run(c, "EXEC")
    elif name == "TREE":
        _check(h, op[1])
    else:
        h.run(c, *op)


def _harness(clock: Clock) -> Harness:
    h = Harness()
    h.server.now_ms = clock  # type: ignore[method-assign]
    return h


@settings(max_examples=150, deadline=None)
@given(st.lists(_op, max_size=40), st.integers(0, lww.TREE_DEPTH_MAX))
def test_incremental_tree_equals_scratch(ops: list[tuple], depth: int) -> None:  # type: ignore[type-arg]
    clock = Clock()
    h = _harness(clock)
    for op in ops:
        _run(h, clock, op)
    _check(h, depth)
    _check(h, lww.TREE_DEPTH_MAX)

    # Restart from the AOF: the logged effects replayed into a fresh server.
    aof = _harness(clock)
    c = aof.client()
    for db, argv in h.effects:
        aof.run(c, "SELECT", db)
        aof.run(c, *argv)
    assert _live(aof) == _live(h)
    _check(aof, depth)

    # AOF rewrite (a RESP base, or a snapshot preamble) and a restart from it.
    base = io.BytesIO()
    dataset.write_resp(base, h.server.dbs, now_ms=clock.now)
    rewritten = _harness(clock)
    c = rewritten.client()
    _replay_resp(rewritten, c, base.getvalue())
    _check(rewritten, depth)
    out = io.BytesIO()
    dataset.write_snapshot(out, h.server.dbs, {"replid": "a" * 40}, now_ms=clock.now)
    loaded = _harness(clock)
    target = dataset.DbTarget(loaded.server.dbs, now_ms=clock.now)
    snap.load(io.BytesIO(out.getvalue()), target)
    target.finish()
    _check(loaded, depth)


def _live(h: Harness) -> dict[bytes, Record]:
    return {k: v for k, v in h.server.dbs[0].data.items() if isinstance(v, Record)}


def _replay_resp(h: Harness, c: object, raw: bytes) -> None:
    import hiredis

    r = hiredis.Reader()
    r.feed(raw)
    while (argv := r.gets()) is not False:
        h.run(c, *argv)


def test_range_pages_cost_their_keys_and_follow_leaf_order() -> None:
    h = Harness()
    c = h.client()
    for i in range(300):
        h.run(c, "LL.SET", b"k%d" % i, b"1.0.1", b"x")
    t = lltree.current(h.server.dbs[0], h.server.dirty)
    items = t.range_items(4, 3, 5)
    leaves = [lww.leaf_of(k, 4) for k, _ in items]
    assert leaves == sorted(leaves) and set(leaves) <= {3, 4}
    assert len(items) == sum(3 <= lww.leaf_of(b"k%d" % i, 4) < 5 for i in range(300))
    assert len(t.range_items(16, 0, 1 << 16)) == 300


def test_an_untouched_tree_is_not_rehashed() -> None:
    h = Harness()
    c = h.client()
    for i in range(50):
        h.run(c, "LL.SET", b"k%d" % i, b"1.0.1", b"x")
    db = h.server.dbs[0]
    t = lltree.current(db, h.server.dirty)
    assert not t.suspect and t.resync(db.data) == 0
    h.run(c, "DEL", "k1")  # an ordinary command: noticed at the next read, one key fixed
    assert t._stale(db, h.server.dirty)
    assert t.resync(db.data) == 1


_ll_op = st.one_of(
    st.tuples(st.just("LL.SET"), _key, _ver, st.sampled_from([b"1", b"2"])),
    st.tuples(st.just("LL.DEL"), _key, _ver),
    st.tuples(st.just("LL.HSET"), _key, _ver, st.sampled_from(FIELDS), st.just(b"v")),
    st.tuples(st.just("LL.HDEL"), _key, _ver, st.sampled_from(FIELDS)),
    st.tuples(st.just("LL.PURGE"), _key, _ver),
    st.tuples(st.just("APPLY"), _key, _ver),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_ll_op, min_size=1, max_size=40))
def test_ll_commands_keep_the_tree_without_a_resync(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    """Only LL.* writes: the tree is kept by their hooks alone (never stale, nothing for
    a re-check to fix), and equals the scratch tree at every step."""
    clock = Clock()
    h = _harness(clock)
    db = h.server.dbs[0]
    lltree.current(db, h.server.dirty)
    for op in ops:
        _run(h, clock, op)
        t = db.lltree
        assert not t.suspect and not t._stale(db, h.server.dirty)
        assert t.leaves(lww.TREE_DEPTH_MAX) == _scratch(h, lww.TREE_DEPTH_MAX)
        assert t.leaves(3) == _scratch(h, 3)
    assert db.lltree.resync(db.data) == 0
