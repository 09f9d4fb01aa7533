"""Requests a demoted (or fenced) primary refused, sent again by the endpoint (issue 15,
planned failover without client errors; proxy/failover.py ``take``): a refusal proves
the command did not run, so the endpoint sends it to the new primary once its topology
names one, with every later request of the client in flight behind it, keeping the
client's order (pipelines, MULTI/EXEC), without holding back other shards, bounded in
time (``Router.wait_ms``) and in tries (``RESEND_MAX``)."""

from __future__ import annotations

from fake_shards import READONLY, Harness, topology

from ackdb.proxy import failover
from ackdb.replication.refusal import FENCED
from ackdb.resp.replies import ReplyError

FAILING_0 = topology(3, version=2, failing=frozenset({0}))
PROMOTED_0 = topology(3, version=3, ports={0: 40000}, epochs={0: 2})
FENCED_REPLY = b"-" + FENCED.text.encode() + b"\r\n"


def names(h: Harness, shard: int) -> list[bytes]:
    """What the shard's (new) primary ran, without the connection's AUTH."""
    return [r[0].upper() for r in h.shards[shard].requests if r[0] != b"AUTH"]


def test_a_write_the_demoted_primary_refused_runs_on_the_new_one() -> None:
    for mux in (False, True):
        for refusal in (READONLY, FENCED_REPLY):
            h = Harness(mux=mux)
            (k0,) = h.keys_on(0)
            h.shards[0].refuse = refusal
            assert h.call([b"SET", k0, b"v"]) == []  # waits for the new topology
            assert h.session.demoted == 1 and h.session.stalled == 1
            h.switch(PROMOTED_0)
            assert h.out() == [b"OK"]
            assert names(h, 0) == [b"SET"] and h.shards[0].data == {k0: b"v"}
            assert h.session.demoted == 0 and not h.session.parked and not h.session.stalled
            assert h.call([b"GET", k0]) == [b"v"]  # and the plain path again


def test_a_pipeline_in_flight_behind_the_refusal_is_sent_again_in_order() -> None:
    """Later writes are refused too (the demotion is sticky), and later reads must see
    the writes before them: everything the client had in flight for that shard goes to
    the new primary, in order, then what it sent after; its other shards carry on."""
    for mux in (False, True):
        h = Harness(mux=mux)
        (k0,), (k1,) = h.keys_on(0), h.keys_on(1)
        h.call([b"SET", k0, b"old"])
        h.shards[0].refuse = READONLY
        if mux:
            h.shared_hold[0] = True
        else:
            h.shards[0].hold = True
        h.send([b"SET", k0, b"a"], [b"GET", k0], [b"SET", k0, b"b"], [b"GET", k1], [b"GET", k0])
        assert names(h, 1)[-1:] == [b"GET"]  # shard 1 not held back
        if mux:
            h.release_shared(0)
        else:
            h.release(0)
        h.send([b"SET", k0, b"c"], [b"GET", k0])  # parked behind them
        assert h.out() == []
        h.switch(PROMOTED_0)
        assert h.out() == [b"OK", b"a", b"OK", None, b"b", b"OK", b"c"]
        assert names(h, 0) == [b"SET", b"GET", b"SET", b"GET", b"SET", b"GET"]


def test_a_refusal_after_newer_requests_were_parked_goes_before_them() -> None:
    """The shard starts failing while a write is in flight to its old primary; newer
    requests are parked; then the write's refusal comes: it is sent first."""
    for mux in (False, True):
        h = Harness(mux=mux)
        (k0,) = h.keys_on(0)
        h.shards[0].refuse = READONLY
        if mux:
            h.shared_hold[0] = True
        else:
            h.shards[0].hold = True
        h.send([b"SET", k0, b"first"], [b"GET", k0])
        h.switch(FAILING_0)
        h.send([b"SET", k0, b"second"], [b"GET", k0])  # parked
        if mux:
            h.release_shared(0)
        else:
            h.release(0)
        assert h.out() == [] and h.session.demoted == 0  # failing: waits for the promotion
        assert [e.argv[2] for e in h.session.parked[0] if e.argv[0] == b"SET"] == [
            b"first",
            b"second",
        ]
        h.switch(PROMOTED_0)
        assert h.out() == [b"OK", b"first", b"OK", b"second"]


def test_a_refused_request_expires_when_no_new_primary_comes() -> None:
    """Refused, then the shard fails over with no new primary within the bound."""
    h = Harness()
    (k0,), (k1,) = h.keys_on(0), h.keys_on(1)
    h.shards[0].refuse = READONLY
    h.send([b"SET", k0, b"v"])
    h.switch(FAILING_0)
    h.session.tick(1_000)  # stamped: the bound is wait_ms after
    assert h.call([b"GET", k1]) == []  # in order behind the SET
    h.session.tick(1_000 + h.session.router.wait_ms - 1)
    assert h.out() == []
    h.session.tick(1_000 + h.session.router.wait_ms)
    got = h.out()
    assert isinstance(got[0], ReplyError) and str(got[0]) == failover.EXPIRED[1:-2].decode()
    assert got[1:] == [None]
    assert not h.session.parked and h.session.demoted == 0
    assert names(h, 0) == [b"SET"]  # never sent again


def test_a_shard_lagging_its_topology_gets_the_request_again() -> None:
    """No topology change within RESEND_AFTER_MS (the topology was current: a new primary
    not switched yet): sent again to the primary the topology names, then answered."""
    h = Harness()
    (k0,) = h.keys_on(0)
    h.shards[0].refuse = READONLY
    h.send([b"SET", k0, b"v"])
    h.session.tick(1_000)  # stamped
    h.session.tick(1_000 + failover.RESEND_AFTER_MS - 1)
    h.pump()
    assert h.out() == [] and names(h, 0) == [b"SET"]
    h.shards[0].refuse = None  # it became the primary
    h.session.tick(1_000 + failover.RESEND_AFTER_MS)
    h.pump()
    assert h.out() == [b"OK"] and names(h, 0) == [b"SET", b"SET"]
    assert not h.session.parked and not h.session.demoted and not h.session.stalled


def test_a_shard_that_keeps_refusing_gets_its_error_after_resend_max() -> None:
    h = Harness()
    (k0,), (k1,) = h.keys_on(0), h.keys_on(1)
    h.shards[0].refuse = READONLY
    h.send([b"SET", k0, b"v"], [b"GET", k1])
    now = 1_000
    while not (got := h.out()) and now < 10_000:
        h.session.tick(now)
        h.pump()
        now += 100
    assert str(got[0]) == failover.DEMOTED[1:-2].decode() and got[1:] == [None]
    assert names(h, 0) == [b"SET"] * (1 + failover.RESEND_MAX)
    assert now < 1_000 + h.session.router.wait_ms  # sooner than the bound
    assert not h.session.parked and not h.session.demoted and not h.session.stalled
    # The next request tries the primary again.
    h.shards[0].refuse = None
    assert h.call([b"SET", k0, b"w"]) == [b"OK"]


def test_a_request_is_sent_again_at_most_resend_max_times() -> None:
    h = Harness()
    (k0,) = h.keys_on(0)
    h.shards[0].refuse = READONLY
    h.new_refuse = READONLY  # every new primary refuses too
    h.send([b"SET", k0, b"v"])
    for i in range(failover.RESEND_MAX):
        assert h.out() == []
        h.switch(topology(3, version=3 + i, ports={0: 40000 + i}, epochs={0: 2 + i}))
    got = h.out()
    assert len(got) == 1 and str(got[0]) == failover.DEMOTED[1:-2].decode()
    assert not h.session.parked and not h.session.stalled


def test_a_split_write_resends_only_the_refused_shards_part() -> None:
    for mux in (False, True):
        h = Harness(mux=mux)
        (k0,), (k1,) = h.keys_on(0), h.keys_on(1)
        h.shards[0].refuse = READONLY
        assert h.call([b"MSET", k0, b"a", k1, b"b"], [b"GET", k1]) == []
        assert h.shards[1].data == {k1: b"b"}  # its part ran at once
        assert h.call([b"SET", k1, b"c"]) == []  # in order behind the MSET
        assert h.shards[1].data == {k1: b"c"}  # but not held back
        h.switch(PROMOTED_0)
        assert h.out() == [b"OK", b"b", b"OK"]
        assert h.shards[0].data == {k0: b"a"}


def test_a_transaction_the_demoted_primary_refused_runs_whole_on_the_new_one() -> None:
    h = Harness()
    (k0,), (k1,) = h.keys_on(0), h.keys_on(1)
    h.shards[0].refuse = READONLY
    h.shards[0].hold = True
    h.send("MULTI", [b"SET", k0, b"x"], [b"GET", k0], "EXEC", [b"GET", k0], [b"GET", k1])
    h.release(0)
    assert h.out() == [b"OK", b"QUEUED", b"QUEUED"]  # answered by the endpoint
    h.switch(PROMOTED_0)
    assert h.out() == [[b"OK", b"x"], b"x", None]
    assert names(h, 0) == [b"MULTI", b"SET", b"GET", b"EXEC", b"GET"]


def test_a_transaction_refused_at_exec_is_sent_again() -> None:
    """Demoted between MULTI and EXEC: the shard refuses EXEC itself (EXECABORT ...
    because of: READONLY ...)."""
    h = Harness()
    (k0,) = h.keys_on(0)
    h.shards[0].hold = True
    h.send("MULTI", [b"SET", k0, b"x"], "EXEC")
    h.shards[0].held = [
        b"+OK\r\n+QUEUED\r\n-EXECABORT Transaction discarded because of: " + READONLY[1:]
    ]
    h.release(0)
    assert h.out() == [b"OK", b"QUEUED"]
    h.switch(PROMOTED_0)
    assert h.out() == [[b"OK"]]
    assert names(h, 0) == [b"MULTI", b"SET", b"EXEC"]


def test_a_watched_transaction_is_not_sent_again() -> None:
    h = Harness()
    (k0,) = h.keys_on(0)
    assert h.call([b"WATCH", k0]) == [b"OK"]
    h.shards[0].refuse = READONLY
    got = h.call("MULTI", [b"SET", k0, b"x"], "EXEC")
    assert got[:2] == [b"OK", b"QUEUED"] and str(got[2]).startswith("EXECABORT")


def test_wait_behind_a_refused_write_counts_zero_or_waits() -> None:
    """On the client's own connection a WAIT in flight behind the refused write is
    answered by the demoted shard: 0, never an error (a WAIT cannot vouch for the old
    primary). Over the shared connections WAIT waits for the write's reply, so it is
    parked behind the write and runs on the new primary."""
    for mux in (False, True):
        h = Harness(mux=mux)
        (k0,) = h.keys_on(0)
        h.shards[0].refuse = READONLY
        h.send([b"SET", k0, b"v"], "WAIT 1 100")
        h.switch(PROMOTED_0)
        assert h.out() == [b"OK", 1 if mux else 0]
        assert names(h, 0)[0] == b"SET"


def test_a_write_lost_in_flight_still_gets_tryagain() -> None:
    """No refusal, the connection broke: the write may have run; it is not sent again."""
    h = Harness()
    (k0,) = h.keys_on(0)
    h.shards[0].hold = True
    h.send([b"SET", k0, b"v"])
    h.switch(PROMOTED_0)
    got = h.out()
    assert len(got) == 1 and str(got[0]).startswith("TRYAGAIN the connection to the shard")
    assert names(h, 0) == []


def test_wait_behind_a_write_sent_again_counts_zero() -> None:
    """A fenced primary answers a WAIT in flight behind the refused write with a real
    count, which cannot cover the write (it has not run yet): the endpoint counts 0. Over
    the shared connections the WAIT comes after the refusal and counts 0 too: the
    client's earlier writes may have run on the fenced primary and be lost with it."""
    for mux in (False, True):
        h = Harness(mux=mux)
        (k0,) = h.keys_on(0)
        h.shards[0].refuse = FENCED_REPLY
        if mux:
            h.shared_hold[0] = True
        else:
            h.shards[0].hold = True
        h.send([b"SET", k0, b"v"], "WAIT 1 100")
        if mux:
            h.release_shared(0)
        else:
            h.release(0)
        h.switch(PROMOTED_0)
        assert h.out() == [b"OK", 0]
        assert h.call([b"SET", k0, b"w"], "WAIT 1 100") == [b"OK", 1]  # as usual again


def test_a_fenced_refusal_with_a_write_behind_it_is_not_sent_again() -> None:
    """A fenced primary may get its lease back before the next write (not sticky): that
    one could run before this one is sent again, so this one gets the error; the last
    write refused (nothing behind it) is sent again."""
    for mux in (False, True):
        h = Harness(mux=mux)
        (k0,) = h.keys_on(0)
        h.shards[0].refuse = FENCED_REPLY
        if mux:
            h.shared_hold[0] = True
        else:
            h.shards[0].hold = True
        h.send([b"SET", k0, b"a"], [b"GET", k0], [b"SET", k0, b"b"], [b"GET", k0])
        if mux:
            h.release_shared(0)
        else:
            h.release(0)
        h.switch(PROMOTED_0)
        got = h.out()
        assert str(got[0]) == FENCED.text and got[1:] == [None, b"OK", b"b"], got
        assert names(h, 0) == [b"SET", b"GET"]
