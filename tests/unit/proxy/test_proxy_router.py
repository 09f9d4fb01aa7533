"""The router (proxy/router.py), the raw reply splitter (proxy/replies.py) and the merges
(proxy/merge.py)."""

from __future__ import annotations

import random

import pytest
from fake_shards import topology
from hypothesis import given
from hypothesis import strategies as st

from ackdb.cluster.keyslot import key_slot
from ackdb.proxy.merge import SCAN_CURSORS_MAX, ScanCursors, merge, parse_cursor
from ackdb.proxy.replies import LINE_MAX_BYTES, ReplyProtocolError, ReplySplitter, items
from ackdb.proxy.router import ROUTES, Kind, Merge, Router, find_route, slot_of


@given(st.binary(max_size=40))
def test_slot_of_is_key_slot(key: bytes) -> None:
    assert slot_of(key) == key_slot(key)


def test_routes_follow_the_tips() -> None:
    assert ROUTES[b"get"].kind is Kind.KEYED and ROUTES[b"GET"].key_at == 1
    assert ROUTES[b"set"].write
    assert ROUTES[b"mget"].kind is Kind.SPLIT and ROUTES[b"mget"].merge is Merge.ORDERED
    assert ROUTES[b"mset"].merge is Merge.ALL_OK and ROUTES[b"mset"].step == 2
    for name in (b"del", b"unlink", b"exists", b"touch"):
        assert ROUTES[name].merge is Merge.SUM
    assert ROUTES[b"msetnx"].kind is Kind.KEYED  # not split: all or nothing
    assert ROUTES[b"dbsize"].kind is Kind.FANOUT and ROUTES[b"dbsize"].merge is Merge.SUM
    assert ROUTES[b"keys"].merge is Merge.CONCAT
    assert ROUTES[b"flushall"].merge is Merge.ALL_OK and ROUTES[b"flushall"].write
    assert ROUTES[b"wait"].kind is Kind.WAIT and ROUTES[b"waitaof"].kind is Kind.WAIT
    assert ROUTES[b"sunion"].key_at == 0  # many keys: all must share a slot
    assert ROUTES[b"move"].kind is Kind.REFUSED
    # the shards' internal commands never pass through (a client could fence a shard)
    for name in (b"ackdb.syncwoff", b"ackdb.lease", b"ackdb.freeze", b"ackdb.diverged"):
        assert ROUTES[name].kind is Kind.REFUSED, name
    route = find_route([b"CONFIG", b"SET", b"x", b"y"])
    assert route is not None and route.kind is Kind.REFUSED
    route = find_route([b"config", b"get", b"x"])
    assert route is not None and route.kind is Kind.KEYED
    route = find_route([b"OBJECT", b"ENCODING", b"k"])
    assert route is not None and route.kind is Kind.KEYED
    assert find_route([b"client", b"nosuch"]) is None


def test_router_maps_every_slot_to_its_shard() -> None:
    r = Router.of(topology(3))
    assert (r.shard_of[0], r.shard_of[5460], r.shard_of[5461], r.shard_of[16383]) == (0, 0, 1, 2)
    assert r.addrs == [("127.0.0.1", 30000), ("127.0.0.1", 30001), ("127.0.0.1", 30002)]


REPLIES = [
    b"+OK\r\n",
    b"-ERR x\r\n",
    b":-12\r\n",
    b"$3\r\nbar\r\n",
    b"$0\r\n\r\n",
    b"$-1\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
    b"%1\r\n+a\r\n*1\r\n_\r\n",
    b"~2\r\n,1.5\r\n#t\r\n",
    b"|1\r\n+key\r\n+value\r\n$2\r\nhi\r\n",
    b"=8\r\ntxt:abcd\r\n",
    b"!3\r\nERR\r\n",
    b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n",
    b"$70000\r\n" + b"x" * 70000 + b"\r\n",
]


@given(st.lists(st.sampled_from(REPLIES), max_size=12), st.integers(1, 9000))
def test_splitter_finds_every_reply_whole_or_in_pieces(replies: list[bytes], chunk: int) -> None:
    data = b"".join(replies)
    s = ReplySplitter()
    got = []
    for i in range(0, len(data), chunk):
        got += s.feed(data[i : i + chunk])
    assert got == replies
    assert s.pending_bytes() == 0


def test_splitter_byte_by_byte() -> None:
    data = b"".join(REPLIES[:-1])
    s = ReplySplitter()
    got = []
    for i in range(len(data)):
        got += s.feed(data[i : i + 1])
    assert got == REPLIES[:-1]


def test_splitter_long_array_in_small_reads() -> None:
    """An array arriving in many reads comes out whole, once; the scanned part is kept
    apart (pending_bytes counts it) and never scanned again."""
    reply = b"*20000\r\n" + b"".join(b"$5\r\n%05d\r\n" % i for i in range(20000)) + b"+OK\r\n"
    s = ReplySplitter()
    got = []
    for i in range(0, len(reply), 7):
        got += s.feed(reply[i : i + 7])
        if i + 7 < len(reply) - 5:
            assert not got and s.pending_bytes() == i + 7
    assert got == [reply[:-5], b"+OK\r\n"] and s.pending_bytes() == 0


NOT_RESP = {
    "type byte": b"?x\r\n",
    "length not a number": b"$abc\r\n",
    "length below -1": b"$-2\r\n",
    "count then junk": b"*1x\r\n",
    "count below -1": b"*-5\r\n",
    "empty length": b"$\r\n",
    "CR without LF in a header": b"$3\rxbar\r\n",
    "CR without LF in a line": b"+OK\rx\n",
    "19 digits": b"$" + b"9" * 19 + b"\r\n",
    "line too long": b"+" + b"x" * (LINE_MAX_BYTES + 1),
}


@pytest.mark.parametrize("data", NOT_RESP.values(), ids=NOT_RESP.keys())
def test_splitter_refuses_what_is_not_resp(data: bytes) -> None:
    with pytest.raises(ReplyProtocolError):
        ReplySplitter().feed(data)
    s = ReplySplitter()  # the same, one byte a read (a long line is searched once)
    with pytest.raises(ReplyProtocolError):
        for i in range(len(data)):
            s.feed(data[i : i + 1])


def test_splitter_line_in_many_reads() -> None:
    line = b"-ERR " + b"e" * 5000 + b"\r\n"
    s = ReplySplitter()
    got = []
    for i in range(len(line)):
        got += s.feed(line[i : i + 1])
        assert s.pending_bytes() == (i + 1) % len(line)
    assert got == [line]


def test_items() -> None:
    assert items(b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n") == [b"$1\r\na\r\n", b"*1\r\n:1\r\n"]
    assert items(b"*0\r\n") == [] and items(b"*-1\r\n") == []


def test_merges() -> None:
    rng = random.Random(1)
    assert merge(Merge.SUM, [b":1\r\n", b":2\r\n"], rng) == b":3\r\n"
    assert merge(Merge.SUM, [b":1\r\n", b"-ERR no\r\n"], rng) == b"-ERR no\r\n"
    assert merge(Merge.MIN, [b":3\r\n", b":1\r\n", b":2\r\n"], rng) == b":1\r\n"
    waitaof = [b"*2\r\n:1\r\n:2\r\n", b"*2\r\n:0\r\n:3\r\n"]
    assert merge(Merge.MIN, waitaof, rng) == b"*2\r\n:0\r\n:2\r\n"
    assert merge(Merge.ALL_OK, [b"+OK\r\n", b"+OK\r\n"], rng) == b"+OK\r\n"
    assert merge(Merge.CONCAT, [b"*1\r\n$1\r\na\r\n", b"*0\r\n"], rng) == b"*1\r\n$1\r\na\r\n"
    assert merge(Merge.RANDOM, [b"$-1\r\n", b"$1\r\nk\r\n"], rng) == b"$1\r\nk\r\n"
    assert merge(Merge.RANDOM, [b"$-1\r\n", b"$-1\r\n"], rng) == b"$-1\r\n"


@given(st.integers(1, 256), st.integers(0, 2**63 - 1), st.data())
def test_scan_cursor_round_trip(shards: int, shard_cursor: int, data: st.DataObject) -> None:
    cursors = ScanCursors()
    shard = data.draw(st.integers(0, shards - 1))
    c = cursors.encode(shard, shard_cursor, shards)
    assert 0 <= c < 2**64  # Redis's unsigned 64 bits, whatever the shard's cursor
    if shard_cursor:
        assert cursors.decode(c, shards) == (shard, shard_cursor)
    elif shard + 1 < shards:
        assert cursors.decode(c, shards) == (shard + 1, 0)  # the next shard from its start
    else:
        assert c == 0  # the iteration is over


def test_scan_cursor_table_is_bounded() -> None:
    cursors = ScanCursors()
    first = cursors.encode(1, 2**62, 3)
    assert first >= 2**63
    for _ in range(SCAN_CURSORS_MAX):
        cursors.encode(1, 2**62, 3)
    assert len(cursors.entries) == SCAN_CURSORS_MAX
    assert cursors.decode(first, 3) is None  # the oldest went first: ERR invalid cursor


def test_parse_cursor_follows_redis() -> None:
    assert parse_cursor(b"") == 0 and parse_cursor(b"12") == 12
    assert parse_cursor(b"-1") == 2**64 - 1
    assert parse_cursor(b"x") is None and parse_cursor(str(2**64).encode()) is None
