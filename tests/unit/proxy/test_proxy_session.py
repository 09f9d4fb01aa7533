"""The session core (proxy/session.py, fanout.py, txn.py, local.py) against fake shards:
reply order, routing, splitting and merging, SCAN cursors, WAIT aggregation, transaction
rules, shard connections lost."""

from __future__ import annotations

import pytest
from fake_shards import Harness

from ackdb.proxy.session import LOST
from ackdb.resp.replies import ReplyError


def test_replies_come_back_in_request_order_across_shards() -> None:
    h = Harness(auto=False)
    k0, k1, k2 = (h.keys_on(i)[0] for i in range(3))
    h.shards[0].hold = True
    h.send([b"SET", k0, b"a"], [b"SET", k1, b"b"], "PING", [b"GET", k2], [b"GET", k0])
    h.pump()
    assert h.out() == []  # shard 0 holds the head of the line
    h.release(0)
    assert h.out() == [b"OK", b"OK", b"PONG", None, b"a"]


def test_the_first_request_to_a_shard_authenticates_and_follows_the_protocol() -> None:
    h = Harness()
    (k,) = h.keys_on(1)
    h.call("HELLO 3", [b"GET", k])
    assert h.shards[1].requests[:2] == [[b"AUTH", b"shardpw"], [b"HELLO", b"3"]]
    assert h.shards[0].requests == []  # shard connections open lazily
    h.call("HELLO 2")
    assert h.shards[1].requests[-1] == [b"HELLO", b"2"]


def test_plain_requests_to_one_shard_are_forwarded_as_they_came() -> None:
    h = Harness(shards=1, auto=False)
    raw = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"
    h.session.commands([[b"GET", b"a"], [b"GET", b"b"]], raw)
    # A new connection's AUTH goes alone (a shard parses a whole read with the limits of
    # an unauthenticated client); the rest follows its reply.
    assert h.session.take_touched() == [0]
    assert h.session.take(0) == b"*2\r\n$4\r\nAUTH\r\n$7\r\nshardpw\r\n"
    assert h.session.take(0) == b""  # nothing more until AUTH's reply
    h.session.replies(0, [b"+OK\r\n"])
    assert h.session.take_touched() == [0]
    assert h.session.take(0) == raw


def test_multi_key_commands_split_per_shard_and_merge() -> None:
    h = Harness()
    keys = [k for i in range(3) for k in h.keys_on(i, 2)]
    args = [x for k in keys for x in (k, b"v" + k)]
    assert h.call([b"MSET", *args]) == [b"OK"]
    assert all(len(fs.data) == 2 for fs in h.shards)
    assert h.call([b"MGET", *reversed(keys), b"nope"]) == [
        [*(b"v" + k for k in reversed(keys)), None]
    ]
    assert h.call([b"EXISTS", *keys, keys[0]]) == [7]
    assert h.call([b"DEL", *keys[:3], b"nope"]) == [3]
    assert h.call("DBSIZE") == [3]


def test_other_multi_key_commands_across_slots_get_crossslot() -> None:
    h = Harness()
    k0, k1 = h.keys_on(0)[0], h.keys_on(1)[0]
    (err,) = h.call([b"SUNION", k0, k1])
    assert isinstance(err, ReplyError) and str(err).startswith("CROSSSLOT")
    (err,) = h.call([b"MSETNX", k0, b"1", k1, b"2"])
    assert isinstance(err, ReplyError)
    assert h.call([b"SUNION", b"{t}a", b"{t}b"])[0] != err  # one slot: forwarded


def test_one_shard_database_has_no_slot_rules() -> None:
    h = Harness(shards=1)
    h.call([b"SUNION", b"a", b"b"])
    assert h.shards[0].requests[-1] == [b"SUNION", b"a", b"b"]


def test_fan_out_merges() -> None:
    h = Harness()
    for i in range(3):
        for k in h.keys_on(i, i + 1):
            h.call([b"SET", k, b"1"])
    assert h.call("DBSIZE") == [6]
    assert sorted(h.call("KEYS *")[0]) == sorted(k for fs in h.shards for k in fs.data)  # type: ignore[arg-type]
    (info,) = h.call("INFO")
    assert b"db0:keys=6,expires=0,avg_ttl=0" in info  # type: ignore[operator]
    assert b"# Server" in info  # type: ignore[operator]
    assert h.call("FLUSHALL") == [b"OK"]
    assert h.call("DBSIZE") == [0]


def test_scan_walks_every_shard_and_its_cursor_names_the_shard() -> None:
    h = Harness()
    everything = set()
    for i in range(3):
        for k in h.keys_on(i, 3):
            h.call([b"SET", k, b"1"])
            everything.add(k)
    seen: set[bytes] = set()
    cursor = b"0"
    for _ in range(20):
        (reply,) = h.call([b"SCAN", cursor])
        cursor, page = reply  # type: ignore[misc]
        seen.update(page)
        if cursor == b"0":
            break
        assert int(cursor) % 3 in (0, 1, 2)
    assert seen == everything
    (err,) = h.call("SCAN abc")
    assert str(err) == "ERR invalid cursor"


def test_wait_goes_to_the_shards_written_since_the_last_wait_and_takes_the_minimum() -> None:
    h = Harness()
    k0, k1 = h.keys_on(0)[0], h.keys_on(1)[0]
    h.shards[0].wait_reply = 2
    h.shards[1].wait_reply = 1
    h.shards[2].wait_reply = 0
    h.call([b"SET", k0, b"1"])
    assert h.call("WAIT 2 100") == [2]  # only shard 0 written
    assert [r[0] for fs in h.shards for r in fs.requests if r[0] == b"WAIT"] == [b"WAIT"]
    h.call([b"SET", k0, b"1"], [b"SET", k1, b"1"], [b"GET", h.keys_on(2)[0]])
    assert h.call("WAIT 2 100") == [1]  # shards 0 and 1: the minimum; reads do not count
    assert h.shards[2].requests[-1][0] == b"GET"
    assert h.call("WAIT 1 100") == [0]  # nothing written since: every shard is asked
    h.call([b"MSET", k0, b"1", k1, b"2"])
    assert h.call("WAITAOF 1 1 100") == [[1, 1]]  # element-wise minimum


def test_transactions_queue_here_and_run_on_one_shard() -> None:
    h = Harness()
    a, b = b"{u}a", b"{u}b"
    shard = h.shard_of(a)
    assert h.call("MULTI", [b"SET", a, b"1"], [b"GET", b], "PING", "EXEC") == [
        b"OK",
        b"QUEUED",
        b"QUEUED",
        b"QUEUED",
        [b"OK", None, b"PONG"],
    ]
    reqs = h.shards[shard].requests
    assert [r[0] for r in reqs[-5:]] == [b"MULTI", b"SET", b"GET", b"PING", b"EXEC"]
    # Keys of two slots: EXEC answers CROSSSLOT and nothing runs.
    k0, k1 = h.keys_on(0)[0], h.keys_on(1)[0]
    out = h.call("MULTI", [b"SET", k0, b"1"], [b"SET", k1, b"1"], "EXEC")
    assert out[:3] == [b"OK", b"QUEUED", b"QUEUED"]
    assert isinstance(out[3], ReplyError) and str(out[3]).startswith("CROSSSLOT")
    # A queued error: EXECABORT (Redis's rule), the queue dropped.
    out = h.call("MULTI", [b"SET", a], "EXEC")
    assert isinstance(out[1], ReplyError) and "wrong number" in str(out[1])
    assert isinstance(out[2], ReplyError) and str(out[2]).startswith("EXECABORT")
    out = h.call("EXEC", "DISCARD", "MULTI", "MULTI", "WATCH x", "DISCARD")
    assert [str(x) for x in out] == [
        "ERR EXEC without MULTI",
        "ERR DISCARD without MULTI",
        "b'OK'",
        "ERR MULTI calls can not be nested",
        "ERR WATCH inside MULTI is not allowed",
        "b'OK'",
    ]
    assert h.call("MULTI", "EXEC") == [b"OK", []]
    out = h.call("MULTI", "SELECT 0", "SELECT 1", "EXEC")
    assert out[1] == b"QUEUED" and "not available" in str(out[2])
    assert str(out[3]).startswith("EXECABORT")


def test_watch_pins_the_transaction_to_its_slot() -> None:
    h = Harness()
    a = b"{u}a"
    shard = h.shard_of(a)
    other = h.keys_on((shard + 1) % 3)[0]
    assert h.call([b"WATCH", a], "MULTI", [b"SET", a, b"2"], "EXEC") == [
        b"OK",
        b"OK",
        b"QUEUED",
        [b"OK"],
    ]
    assert h.shards[shard].requests[-4][0] == b"WATCH"
    out = h.call([b"WATCH", a], "MULTI", [b"SET", other, b"2"], "EXEC")
    assert str(out[3]).startswith("CROSSSLOT")
    assert h.shards[shard].requests[-1] == [b"UNWATCH"]  # the failed EXEC unwatched


def test_a_lost_shard_connection_fails_what_it_owed_and_reopens() -> None:
    h = Harness(auto=False)
    k0, k1 = h.keys_on(0)[0], h.keys_on(1)[0]
    h.send([b"GET", k0], [b"MGET", k0, k1], [b"GET", k1])
    h.session.take(0)
    h.session.take(1)
    h.session.take_touched()
    h.session.replies(1, [b"+OK\r\n", b"$1\r\nx\r\n", b"$1\r\ny\r\n"])  # AUTH first
    h.session.lost(0)
    out = h.out()
    assert [type(x) for x in out] == [ReplyError, ReplyError, bytes]
    assert str(out[0]).startswith("TRYAGAIN")
    h.send([b"GET", k0])
    assert h.session.take(0).startswith(b"*2\r\n$4\r\nAUTH")  # a new connection


def test_auth_and_noauth() -> None:
    h = Harness(password="pw")
    out = h.call("GET a", "AUTH x", "AUTH pw", "GET a", "AUTH a b c")
    assert [str(x) for x in out[:2]] == [
        "NOAUTH Authentication required.",
        "WRONGPASS invalid username-password pair or user is disabled.",
    ]
    assert out[2:4] == [b"OK", None]
    assert str(out[4]) == "ERR syntax error"
    (err,) = Harness().call("AUTH x")
    assert "without any password configured" in str(err)


def test_local_commands_and_refusals() -> None:
    h = Harness()
    out = h.call("PING", "PING hi", "ECHO x", "SELECT 0", "CLIENT SETNAME n", "CLIENT GETNAME")
    assert out == [b"PONG", b"hi", b"x", b"OK", b"OK", b"n"]
    for cmd in ("MOVE a 1", "SWAPDB 0 1", "SELECT 2", "BGSAVE", "CONFIG SET x y", "MONITOR"):
        (err,) = h.call(cmd)
        assert isinstance(err, ReplyError) and "endpoint" in str(err), cmd
    (err,) = h.call("NOSUCH a b")
    assert str(err) == "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "
    (err,) = h.call("CLIENT")
    assert "wrong number of arguments" in str(err)
    h.call("COMMAND")
    assert h.shards[0].requests[-1] == [b"COMMAND"]  # the whole table, from a shard
    out = h.call("QUIT", "PING")
    assert out == [b"OK"] and h.session.closing


@pytest.mark.parametrize("shards", [1, 3])
def test_pipelines_of_every_kind_keep_order(shards: int) -> None:
    h = Harness(shards=shards)
    cmds: list[list[bytes] | str] = []
    expect: list[object] = []
    for i in range(30):
        k = b"key%d" % i
        cmds += [[b"SET", k, b"%d" % i], [b"GET", k], "PING", "DBSIZE"]
        expect += [b"OK", b"%d" % i, b"PONG", i + 1]
    assert h.call(*cmds) == expect


def test_pass_through_only_when_every_owed_reply_is_from_one_shard() -> None:
    from ackdb.proxy.replies import ReplyCounter

    h = Harness(auto=False)
    k0, k1 = h.keys_on(0)[0], h.keys_on(1)[0]
    s = h.session
    h.send([b"GET", k0], [b"GET", k0])
    s.take_touched()
    assert not s.can_pass(0)  # the AUTH reply is swallowed first
    s.replies(0, [b"+OK\r\n"])
    assert s.can_pass(0)
    data = b"$1\r\na\r\n$-1\r\n"
    n = ReplyCounter().count(data)
    assert n == 2
    s.passed(0, data, n)
    assert h.out() == [b"a", None]
    h.send([b"GET", k0], [b"GET", k1])
    s.take_touched()
    assert not s.can_pass(0) and not s.can_pass(1)  # shard 1 owes one too
    s.replies(1, [b"+OK\r\n", b"$1\r\nb\r\n"])  # AUTH, then GET k1
    assert not s.can_pass(0)  # GET k1's reply waits behind GET k0's
    s.replies(0, [b"$1\r\na\r\n"])
    assert h.out() == [b"a", b"b"]
    assert ReplyCounter().count(b"$3\r\nab") is None  # not on a boundary: split instead
    assert ReplyCounter().count(b"#f\r\n_\r\n") == 2  # RESP3 false is a reply too


def test_a_read_that_ends_inside_a_reply_is_not_passed_through() -> None:
    """hiredis consumes a lone type byte, or an array's header and its complete elements,
    and then reports no data left: such a read must not count as ending on a reply
    boundary (found by the failover simulator: a shard's "+" passed to the client, then
    the connection lost, and the client read "+-TRYAGAIN ...")."""
    from ackdb.proxy.replies import ReplyCounter

    for partial in (b"+", b"*2\r\n:1\r\n", b"+OK\r\n*2\r\n$1\r\na\r\n", b"*1\r\n*2\r\n:1\r\n"):
        assert ReplyCounter().count(partial) is None, partial
    c = ReplyCounter()
    assert c.count(b"+OK\r\n") == 1
    assert c.count(b"*2\r\n:1\r\n:2\r\n$-1\r\n") == 2  # still on a boundary after each
    assert c.count(b"+") is None
    assert c.count(b"*2\r\n:1\r\n:2\r\n") == 1  # a fresh reader after a None


# -- shared shard connections (mux) ---------------------------------------------------------


def test_plain_requests_go_over_the_shared_connection_and_wait_syncs_first() -> None:
    h = Harness(mux=True)
    k0, k1 = h.keys_on(0)[0], h.keys_on(1)[0]
    assert h.call([b"SET", k0, b"1"], [b"GET", k1], [b"MGET", k0, k1]) == [
        b"OK",
        None,
        [b"1", None],
    ]
    assert h.shared[0] == [[b"SET", k0, b"1"], [b"MGET", k0]]
    assert h.shards[0].requests == h.shared[0]  # no dedicated connection yet
    h.shards[0].wait_reply = 2
    assert h.call("WAIT 1 100") == [2]  # only shard 0 written
    assert h.shards[0].requests[2:] == [
        [b"AUTH", b"shardpw"],
        [b"ACKDB.SYNCWOFF"],
        [b"WAIT", b"1", b"100"],
    ]
    assert h.shards[1].requests == h.shared[1]  # no WAIT there
    assert h.call("WAIT 1 100") == [1]  # nothing written since: asked, not synced
    assert h.shards[0].requests[-1] == [b"WAIT", b"1", b"100"]
    assert h.shards[0].requests.count([b"ACKDB.SYNCWOFF"]) == 1


def test_wait_is_held_until_the_shared_connection_answered_the_writes_before_it() -> None:
    h = Harness(mux=True)
    k0 = h.keys_on(0)[0]
    h.shared_hold[0] = True
    h.send([b"SET", k0, b"1"], "WAIT 1 0", "PING")
    assert [r[0] for r in h.shards[0].requests] == [b"SET"]  # WAIT not sent yet
    assert h.session.held and h.out() == []
    h.release_shared(0)
    h.pump()
    assert [r[0] for r in h.shards[0].requests] == [b"SET", b"AUTH", b"ACKDB.SYNCWOFF", b"WAIT"]
    assert h.out() == [b"OK", 1, b"PONG"]
    assert not h.session.held


def test_a_wait_in_flight_and_its_age_are_known_until_its_reply() -> None:
    # The endpoint's INFO clients (waits_in_flight, wait_oldest_ms) reads these: a WAIT
    # that gets no reply shows from outside (issue 14).
    h = Harness(mux=True)
    now = [1000]
    h.session.clock_ms = lambda: now[0]
    k0 = h.keys_on(0)[0]
    assert h.call([b"SET", k0, b"1"]) == [b"OK"]
    assert h.session.wait_age_ms(now[0]) is None
    h.shards[0].hold = True
    h.send("WAIT 1 0")
    now[0] = 1500
    assert h.session.wait_age_ms(now[0]) == 500
    h.release(0)
    assert h.out() == [1]
    assert h.session.wait_age_ms(now[0]) is None


def test_a_blocking_command_never_goes_over_the_shared_connection() -> None:
    h = Harness(mux=True)
    (k,) = h.keys_on(2)
    h.shared_hold[2] = True
    h.send([b"RPUSH", k, b"x"], [b"BLPOP", k, b"0"], [b"GET", k])
    assert h.shared[2] == [[b"RPUSH", k, b"x"]]  # the BLPOP and what follows wait
    h.release_shared(2)
    h.pump()
    assert h.shared[2] == [[b"RPUSH", k, b"x"]]
    assert h.shards[2].requests[1:] == [[b"AUTH", b"shardpw"], [b"BLPOP", k, b"0"], [b"GET", k]]


def test_a_plain_request_follows_the_dedicated_connection_while_it_owes_replies() -> None:
    h = Harness(mux=True, auto=False)
    (k,) = h.keys_on(1)
    h.send([b"WATCH", k], [b"GET", k])  # WATCH on the dedicated connection, GET behind it
    h.pump()
    assert h.shared[1] == []
    assert [r[0] for r in h.shards[1].requests] == [b"AUTH", b"WATCH", b"GET"]
    h.send([b"GET", k])  # the dedicated connection owes nothing now
    h.pump()
    assert h.shared[1] == [[b"GET", k]]


def test_a_resp3_client_uses_its_dedicated_connections() -> None:
    h = Harness(mux=True)
    (k,) = h.keys_on(0)
    h.call("HELLO 3", [b"GET", k])
    assert h.shared[0] == []
    assert h.shards[0].requests == [[b"AUTH", b"shardpw"], [b"HELLO", b"3"], [b"GET", k]]


def test_a_lost_shared_connection_fails_what_it_owed() -> None:
    h = Harness(mux=True)
    k0, k1 = h.keys_on(0)[0], h.keys_on(1)[0]
    h.shared_hold[0] = True
    h.send([b"GET", k0], [b"MGET", k0, k1], "WAIT 0 0")
    h.release_shared(0, lost=LOST)
    h.pump()
    got = h.out()
    assert [str(e)[:8] for e in got[:2]] == ["TRYAGAIN", "TRYAGAIN"]
    assert got[2] == 1  # WAIT ran once nothing was owed


def test_a_subscribe_waits_for_the_shared_connection_and_goes_on_the_dedicated_one() -> None:
    h = Harness(mux=True)
    (k,) = h.keys_on(0)
    h.shared_hold[0] = True
    h.send([b"GET", k], [b"SUBSCRIBE", b"{b}x"])
    assert [r[0] for r in h.shards[0].requests] == [b"GET"]
    h.release_shared(0)
    h.pump()
    assert h.shared[0] == [[b"GET", k]]
    assert [r[0] for r in h.shards[0].requests[1:]] == [b"AUTH", b"HELLO", b"SUBSCRIBE"]


def test_scripts_go_to_their_keys_shard_and_functions_to_every_shard() -> None:
    # Redis Enterprise's rules: a script's keys in one slot, else CROSSSLOT; FUNCTION LOAD
    # (tips: all_shards) on every shard.
    h = Harness()
    k0, k1 = h.keys_on(0)[0], h.keys_on(1)[0]
    h.call([b"EVAL", b"return 1", b"1", k1, b"arg"])
    assert h.shards[1].requests[-1] == [b"EVAL", b"return 1", b"1", k1, b"arg"]
    assert not any(r[0] == b"EVAL" for r in h.shards[0].requests)
    (err,) = h.call([b"EVALSHA", b"abc", b"2", k0, k1])
    assert isinstance(err, ReplyError) and str(err).startswith("CROSSSLOT")
    (err,) = h.call([b"FCALL_RO", b"f", b"2", k0, k1])
    assert isinstance(err, ReplyError) and str(err).startswith("CROSSSLOT")
    h.call([b"FCALL", b"f", b"2", b"{t}a", b"{t}b"])
    h.call([b"FUNCTION", b"LOAD", b"#!lua name=l\n"])
    h.call([b"SCRIPT", b"LOAD", b"return 1"])
    for fs in h.shards:
        names = [r[:2] for r in fs.requests]
        assert [b"FUNCTION", b"LOAD"] in names and [b"SCRIPT", b"LOAD"] in names
