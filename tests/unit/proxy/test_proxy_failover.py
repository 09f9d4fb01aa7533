"""A shard failing over under a client session (issue 15 item 5; proxy/failover.py):
requests for a failing shard wait for its new primary or the bound, a write in flight to
the failed primary gets -TRYAGAIN while a read is sent again, a blocked client gets an
error, WAIT answers the count it can vouch for, other shards and the client's
connection carry on; and the pure helpers (READONLY, WAIT parts)."""

from __future__ import annotations

from fake_shards import Harness, topology

from ackdb.proxy import failover
from ackdb.proxy.session import LOST
from ackdb.replication.refusal import FENCED, READONLY
from ackdb.resp.replies import ReplyError

FAILING_0 = topology(3, version=2, failing=frozenset({0}))
PROMOTED_0 = topology(3, version=3, ports={0: 40000}, epochs={0: 2})


def errors(got: list[object]) -> list[str]:
    return [str(x).split()[0] if isinstance(x, ReplyError) else repr(x) for x in got]


def test_requests_for_a_failing_shard_wait_for_its_new_primary() -> None:
    for mux in (False, True):
        h = Harness(mux=mux)
        (k0,), (k1,) = h.keys_on(0), h.keys_on(1)
        h.call([b"SET", k0, b"old"])
        h.switch(FAILING_0)
        h.send([b"SET", k0, b"new"], [b"GET", k1], [b"GET", k0])
        assert h.out() == []  # the head waits for shard 0; shard 1 already answered
        assert [r[0] for r in h.shards[1].requests][-1:] == [b"GET"]
        assert sum(r[0] == b"SET" for r in h.shards[0].requests) == 1  # not the new SET
        old = h.shards[0]
        h.switch(PROMOTED_0)
        assert h.out() == [b"OK", None, b"new"]
        assert h.shards[0] is not old  # the new primary ran them, in order
        assert [r[0] for r in h.shards[0].requests] == [b"AUTH", b"SET", b"GET"]
        # After the failover, plain requests take their usual path again.
        assert h.call([b"GET", k0], [b"GET", k1]) == [b"new", None]
        assert not h.session.closing and not h.session.parked


def test_a_parked_request_gets_tryagain_when_the_bound_passes() -> None:
    h = Harness()
    (k0,) = h.keys_on(0)
    (k1,) = h.keys_on(1)
    h.switch(FAILING_0)
    assert h.session.router.wait_ms == 2000  # the high profile's bound
    h.send([b"GET", k0])
    h.session.tick(10_000)  # stamps: the deadline is 12 000
    h.send([b"SET", k0, b"1"])
    h.session.tick(11_999)
    assert h.out() == []
    h.session.tick(12_000)
    got = h.out()
    assert [str(e) for e in got] == [failover.EXPIRED[1:-2].decode()]
    h.session.tick(14_000)  # the SET, stamped at 11 999
    assert errors(h.out()) == ["TRYAGAIN"]
    assert not h.session.parked and h.session.stalled == 1  # still failing
    assert h.call([b"GET", k1]) == [None]  # other shards as usual
    assert all(r[0] != b"SET" for fs in h.shards for r in fs.requests)


def test_a_write_in_flight_gets_tryagain_and_a_read_in_flight_is_sent_again() -> None:
    for mux in (False, True):
        h = Harness(mux=mux)
        (k0,) = h.keys_on(0)
        h.call([b"SET", k0, b"v"])
        if mux:
            h.shared_hold[0] = True
        else:
            h.shards[0].hold = True
        h.send([b"GET", k0], [b"INCR", k0], [b"MGET", k0, h.keys_on(1)[0]], [b"GET", k0])
        h.switch(FAILING_0)
        h.switch(PROMOTED_0)  # the connection to the old primary is dropped
        got = h.out()
        assert got[0] == b"v" and got[2] == [b"v", None] and got[3] == b"v", got
        assert isinstance(got[1], ReplyError) and str(got[1]) == LOST[1:-2].decode()
        # The reads ran again on the new primary; the write was not retried.
        assert [r[0] for r in h.shards[0].requests if r[0] != b"AUTH"] == [b"GET", b"MGET", b"GET"]


def test_a_connection_lost_outside_a_failover_fails_reads_too() -> None:
    h = Harness()
    (k0,) = h.keys_on(0)
    h.shards[0].hold = True
    h.send([b"GET", k0])
    h.session.lost(0)
    assert errors(h.out()) == ["TRYAGAIN"]


def test_a_read_lost_while_the_shard_is_failing_waits_for_the_new_primary() -> None:
    h = Harness()
    (k0,) = h.keys_on(0)
    h.call([b"SET", k0, b"v"])
    h.shards[0].hold = True
    h.send([b"GET", k0])
    h.switch(FAILING_0)
    h.session.lost(0)  # the old primary died
    h.send([b"GET", k0])
    assert h.out() == []
    h.switch(PROMOTED_0)
    assert h.out() == [b"v", b"v"]


def test_a_blocked_client_on_the_failed_primary_gets_an_error() -> None:
    h = Harness(mux=True)
    (k0,) = h.keys_on(0)
    h.shards[0].hold = True
    h.send([b"BLPOP", k0, b"0"])
    h.switch(FAILING_0)
    assert h.out() == []
    h.switch(PROMOTED_0)
    assert errors(h.out()) == ["TRYAGAIN"]
    assert h.call([b"BLPOP", k0, b"1"]) == [None]  # blocking commands work again


def test_wait_answers_the_count_it_can_vouch_for() -> None:
    h = Harness()
    (k0,), (k1,) = h.keys_on(0), h.keys_on(1)
    for fs in h.shards:
        fs.wait_reply = 2
    # The shard written is failing: 0 at once, without asking it.
    h.call([b"SET", k0, b"1"], [b"SET", k1, b"1"])
    h.switch(FAILING_0)
    assert h.call("WAIT 2 100") == [0]
    assert all(r[0] != b"WAIT" for r in h.shards[0].requests)
    assert h.call([b"SET", k1, b"1"], "WAITAOF 1 2 100") == [b"OK", [1, 2]]
    # Writes to the old primary, then the primary moved: 0 (its replicas are not counted).
    h = Harness()
    for fs in h.shards:
        fs.wait_reply = 2
    h.call([b"SET", k0, b"1"])
    h.switch(PROMOTED_0)
    h.shards[0].wait_reply = 2
    assert h.call("WAITAOF 0 1 100") == [[0, 0]]
    h.call([b"SET", k0, b"1"])
    assert h.call("WAIT 2 100") == [2]  # written on the new primary: counted again
    # Writes parked while the shard fails run on the new primary: WAIT waits there too.
    h.switch(topology(3, version=4, ports={0: 40000}, epochs={0: 3}, failing=frozenset({0})))
    h.send([b"SET", k0, b"2"], "WAIT 2 100")
    assert h.out() == []
    h.switch(topology(3, version=5, ports={0: 40001}, epochs={0: 4}))
    assert h.out() == [b"OK", 1]  # the new primary's count (its FakeShard answers 1)
    assert [r[0] for r in h.shards[0].requests] == [b"AUTH", b"SET", b"WAIT"]


def test_a_wait_in_flight_when_its_connection_is_lost_answers_zero() -> None:
    h = Harness()
    (k0,), (k1,) = h.keys_on(0), h.keys_on(1)
    for fs in h.shards:
        fs.wait_reply = 1
    h.call([b"SET", k0, b"1"], [b"SET", k1, b"1"])
    h.shards[0].hold = True
    h.send("WAIT 1 1000")
    h.session.lost(0)
    assert h.out() == [0]  # not -TRYAGAIN: WAIT's reply is the count reached


def test_other_clients_and_shards_are_not_affected() -> None:
    a, b = Harness(), Harness()
    (k0,), (k2,) = a.keys_on(0), a.keys_on(2)
    a.switch(FAILING_0)
    b.switch(FAILING_0)
    a.send([b"GET", k0])
    assert b.call([b"SET", k2, b"x"], [b"GET", k2], "PING") == [b"OK", b"x", b"PONG"]
    assert a.out() == []
    b.send("DBSIZE")  # a fan-out covers the failing shard: it waits too
    assert b.out() == []
    b.switch(PROMOTED_0)
    assert b.out() == [1]
    assert b.call("PING") == [b"PONG"]


def test_a_split_read_across_a_failing_shard_waits_for_it() -> None:
    h = Harness(mux=True)
    keys = [h.keys_on(i)[0] for i in range(3)]
    h.call([b"MSET", *(x for k in keys for x in (k, k))])
    h.switch(FAILING_0)
    h.send([b"MGET", *keys], "DBSIZE")
    assert h.out() == []
    h.switch(PROMOTED_0)
    assert h.out() == [keys, 3]


def test_an_aborted_failover_resumes_on_the_same_primary() -> None:
    h = Harness()
    (k0,) = h.keys_on(0)
    h.switch(FAILING_0)
    h.send([b"SET", k0, b"1"])
    first = h.shards[0]
    h.switch(topology(3, version=3, epochs={0: 3}))
    assert h.out() == [b"OK"] and h.shards[0] is first


def test_refusals_that_prove_the_command_did_not_run() -> None:
    ro = b"-READONLY You can't write against a read only replica.\r\n"
    assert failover.refused(ro) and failover.as_error(ro) == failover.DEMOTED
    assert failover.DEMOTED.startswith(b"-TRYAGAIN ")
    fenced = b"-" + FENCED.text.encode() + b"\r\n"
    assert failover.refused(fenced) and failover.as_error(fenced) == fenced
    assert b"-" + READONLY.text.encode() + b"\r\n" == ro  # the shard's very texts
    for why in (READONLY.text, FENCED.text):
        assert failover.refused(
            b"-EXECABORT Transaction discarded because of: %s\r\n" % why.encode()
        )
    # Not proof: the connection's loss, another TRYAGAIN, an abort for another reason.
    assert not failover.refused(LOST)
    assert not failover.refused(failover.EXPIRED)
    assert not failover.refused(b"-EXECABORT Transaction discarded because of previous errors.\r\n")
    assert not failover.refused(b"-ERR READONLY You can't write\r\n")


def test_wait_parts() -> None:
    assert failover.wait_part(LOST, b":0\r\n") == b":0\r\n"
    assert failover.wait_part(failover.EXPIRED, b":0\r\n") == b":0\r\n"
    assert failover.wait_part(b":2\r\n", b":0\r\n") == b":2\r\n"
    err = b"-ERR timeout is negative\r\n"
    assert failover.wait_part(err, b":0\r\n") == err
    # a shard demoted under the WAIT (planned failover): 0, not an error for the client
    demoted = b"-ERR WAIT cannot be used with replica instances. Please also note ...\r\n"
    assert failover.wait_part(demoted, b":0\r\n") == b":0\r\n"
    assert failover.wait_part(b"-UNBLOCKED force unblock\r\n", b":0\r\n") == b":0\r\n"
    assert failover.zero_for([b"waitaof", b"1", b"1", b"0"]) == failover.WAITAOF_ZERO
    assert failover.zero_for([b"WAIT", b"1", b"0"]) == failover.WAIT_ZERO


def test_a_replica_endpoint_serves_reads_after_readonly() -> None:
    from ackdb.cluster.databases import Database, DbType, Instance, Persistence, Shard, Topology

    shard = Shard(0, 0, 16383, 1, Instance("n1", 30000), (Instance("n2", 31000),))
    db = Database("d", 1, DbType.SHARDED, 12000, True, 1, Persistence.NONE, "", True, (shard,))
    hosts = {"n1": "127.0.0.1", "n2": "127.0.0.2"}
    h = Harness(shards=1)
    h.switch(Topology(2, db, hosts, "n2"))  # this endpoint runs on n2: the replica
    (moved,) = h.call([b"GET", b"a"])
    assert str(moved) == "MOVED 15495 127.0.0.1:12000"
    got = h.call("READONLY", [b"GET", b"a"], [b"SET", b"a", b"1"], "READWRITE", [b"GET", b"a"])
    assert got[:2] == [b"OK", None] and errors(got[2:]) == ["MOVED", "b'OK'", "MOVED"]
    assert h.call("READONLY", [b"MGET", b"{a}1", b"{a}2"]) == [b"OK", [None, None]]


def test_requests_held_behind_a_lost_shared_connection_go_to_the_new_primary() -> None:
    h = Harness(mux=True)
    (k0,) = h.keys_on(0)
    h.call([b"SET", k0, b"v"])
    h.shared_hold[0] = True
    h.send([b"GET", k0], [b"BLPOP", b"{%s}l" % k0, b"1"], [b"GET", k0])
    old = h.shards[0]
    h.switch(PROMOTED_0)
    assert h.out() == [b"v", None, b"v"]
    assert [r[0] for r in old.requests] == [b"SET", b"GET"]  # the BLPOP never went there
    assert [r[0] for r in h.shards[0].requests] == [b"AUTH", b"GET", b"BLPOP", b"GET"]
