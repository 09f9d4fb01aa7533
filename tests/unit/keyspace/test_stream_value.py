"""The stream value type (keyspace/stream.py) against a naive reference: a sorted dict of
live entries; node boundaries, trimming (exact and approximate, by MAXLEN and MINID, with
LIMIT), the read counters, pending entries lists and the plain-data round trip."""

from __future__ import annotations

import random

from ackdb.commands.streams_info import rax_nodes
from ackdb.keyspace.stream import (
    ENTRIES_READ_UNKNOWN,
    MAX_ID,
    MIN_ID,
    NODE_MAX_ENTRIES,
    Stream,
    decr_id,
    incr_id,
)
from ackdb.keyspace.stream_groups import Consumer, Group, Nack, PelMap
from ackdb.keyspace.stream_plain import from_plain, resp_commands, to_plain


def _filled(n: int, fv: list[bytes] | None = None) -> Stream:
    s = Stream()
    for i in range(1, n + 1):
        s.append((i, 0), fv or [b"f", b"v"])
    return s


def test_ids_step_over_the_sequence_boundary() -> None:
    assert incr_id((1, 2**64 - 1)) == (2, 0)
    assert incr_id(MAX_ID) is None
    assert decr_id((2, 0)) == (1, 2**64 - 1)
    assert decr_id(MIN_ID) is None


def test_random_operations_match_a_sorted_dict() -> None:
    rng = random.Random(3)
    s = Stream()
    ref: dict[tuple[int, int], list[bytes]] = {}
    ms = 0
    for _ in range(3000):
        op = rng.randrange(10)
        if op < 6:
            ms += rng.randrange(0, 3)
            sid = (ms, rng.randrange(0, 3))
            if sid > s.last_id:
                fv = [b"f", b"%d" % rng.randrange(100)]
                s.append(sid, fv)
                ref[sid] = fv
        elif op < 8 and ref:
            sid = rng.choice(list(ref))
            assert s.delete(sid)
            del ref[sid]
            assert not s.delete(sid)
        else:
            lo = (rng.randrange(ms + 1), rng.randrange(3))
            hi = (rng.randrange(ms + 1), rng.randrange(3))
            want = [(k, v) for k, v in sorted(ref.items()) if lo <= k <= hi]
            count = rng.randrange(0, 5)
            assert list(s.range(lo, hi, count)) == (want[:count] if count else want)
            assert s.range_list(lo, hi, count) == (want[:count] if count else want)
            rev = list(reversed(want))
            assert list(s.revrange(lo, hi, count)) == (rev[:count] if count else rev)
        assert len(s) == len(ref)
        last = max(ref) if ref else None
        assert s.last_entry() == ((last, ref[last]) if last is not None else None)
        for sid in rng.sample(list(ref), min(3, len(ref))):
            assert s.get(sid) == ref[sid]


def test_nodes_fill_by_count_and_by_bytes() -> None:
    s = _filled(NODE_MAX_ENTRIES * 2 + 1)
    assert [len(n.ids) for n in s.nodes] == [NODE_MAX_ENTRIES, NODE_MAX_ENTRIES, 1]
    big = Stream()
    for i in range(1, 20):
        big.append((i, 0), [b"f", b"x" * 1000])
    assert all(len(n.ids) <= 4 for n in big.nodes) and len(big.nodes) > 4


def test_a_node_whose_last_live_entry_goes_is_dropped() -> None:
    s = _filled(150)
    for i in range(1, 101):
        s.delete((i, 0))
    assert len(s.nodes) == 1 and len(s) == 50


def test_exact_maxlen_trim_marks_entries_in_the_first_kept_node() -> None:
    s = _filled(250)
    assert s.trim(120, None, False, 0) == 130
    assert len(s) == 120
    assert s.first_entry() == ((131, 0), [b"f", b"v"])
    assert len(s.nodes) == 2  # the first node kept its deleted slots
    assert s.first_id == (131, 0)


def test_approximate_trim_drops_whole_nodes_only_and_obeys_limit() -> None:
    s = _filled(250)
    assert s.trim(120, None, True, 10000) == 100  # 150 left: a node of 100 would go below
    assert len(s) == 150
    assert s.trim(0, None, True, 50) == 0  # LIMIT 50 < a node of 100
    assert s.trim(0, None, True, 100) == 100


def test_minid_trim() -> None:
    s = _filled(250)
    assert s.trim(None, (150, 0), True, 0) == 100  # only the first node is all below
    assert s.trim(None, (150, 0), False, 0) == 49
    assert s.first_entry() is not None and s.first_entry()[0] == (150, 0)  # type: ignore[index]


def test_read_counters_follow_redis_estimates() -> None:
    s = _filled(5)
    g = Group(b"g", MIN_ID, ENTRIES_READ_UNKNOWN)
    assert s.lag(g) == 5  # before the first entry: entries_added - length
    s.advance_group(g, (2, 0))  # neither first nor last: Redis cannot tell
    assert (g.last_id, g.entries_read) == ((2, 0), ENTRIES_READ_UNKNOWN)
    g.last_id, g.entries_read = MIN_ID, ENTRIES_READ_UNKNOWN
    s.advance_group(g, (1, 0))  # the first entry: entries_added - length + 1
    assert g.entries_read == 1
    s.advance_group(g, (2, 0))  # a known counter and no tombstone ahead: counted
    assert (g.last_id, g.entries_read) == ((2, 0), 2)
    s.advance_group(g, (3, 0))
    assert g.entries_read == 3 and s.lag(g) == 2
    s.delete((4, 0))
    s.max_deleted_id = (4, 0)
    assert s.lag(g) is None  # a tombstone ahead of the group: unknown
    assert s.estimate_read_counter((5, 0)) == 5
    assert s.estimate_read_counter((9, 0)) == ENTRIES_READ_UNKNOWN


def test_pel_map_keeps_id_order() -> None:
    pel = PelMap()
    con = Consumer(b"c", 0)
    for sid in [(5, 0), (1, 0), (3, 0), (9, 0)]:
        pel.add(sid, Nack(0, 1, con))
    assert [sid for sid, _ in pel.from_id(MIN_ID)] == [(1, 0), (3, 0), (5, 0), (9, 0)]
    assert [sid for sid, _ in pel.range((2, 0), (5, 0))] == [(3, 0), (5, 0)]
    assert pel.remove((3, 0)) is not None and pel.remove((3, 0)) is None
    assert len(pel) == 3


def test_plain_round_trip_keeps_nodes_groups_and_pending_entries() -> None:
    s = _filled(230)
    s.delete((50, 0))
    s.max_deleted_id = (50, 0)
    g = Group(b"g", (10, 0), 10)
    s.groups[b"g"] = g
    con = g.create_consumer(b"alice", 123)
    con.active_time = 456
    g.create_consumer(b"idle", 7)
    for sid in [(3, 0), (7, 0)]:
        nack = Nack(1000 + sid[0], 2, con)
        g.pel.add(sid, nack)
        con.pel.add(sid, nack)
    back = from_plain(to_plain(s))
    assert to_plain(back) == to_plain(s)
    assert [len(n.ids) for n in back.nodes] == [len(n.ids) for n in s.nodes]
    assert back.groups[b"g"].pel.get((7, 0)).consumer is back.groups[b"g"].consumers[b"alice"]  # type: ignore[union-attr]


def test_resp_commands_rebuild_an_empty_stream_with_the_maxlen_trick() -> None:
    s = Stream()
    s.last_id = (5, 5)
    cmds = resp_commands(b"k", s)
    assert cmds[0] == [b"XADD", b"k", b"MAXLEN", b"0", b"0-1", b"x", b"y"]
    assert cmds[1][:3] == [b"XSETID", b"k", b"5-5"]


def test_rax_nodes_of_an_empty_and_a_one_node_stream() -> None:
    # Redis's XINFO STREAM radix-tree-nodes: 1 for no node, 2 for one (checked on 7.0.15);
    # larger trees are compared with redis-server by the differential test.
    assert rax_nodes([]) == 1
    assert rax_nodes([b"a" * 16]) == 2
