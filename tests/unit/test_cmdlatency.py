"""engine/cmdlatency.py: the per-command histograms behind LATENCY HISTOGRAM and INFO
latencystats (the wire replies are compared with redis-server in
tests/compat/test_latency_vs_redis.py)."""

from __future__ import annotations

from ackdb.commandtable import TABLE
from ackdb.engine.cmdlatency import CommandLatency, percentile_label, step_key_us
from ackdb.engine.dispatch import BUCKETS, Dispatch


def test_step_keys_match_redis() -> None:
    # What redis-server 7.0 prints for its first steps (us).
    assert [step_key_us(k) for k in range(10)] == [1, 2, 4, 8, 16, 33, 66, 132, 264, 528]


def test_cdf_and_percentiles() -> None:
    hist = [0] * BUCKETS
    hist[5] = 2  # 16..31 ns: Redis's first step (<= 1031 ns)
    hist[11] = 1  # 1024..2047 ns
    hist[14] = 1  # 8192..16383 ns
    assert CommandLatency.cdf(hist) == [(1, 2), (2, 3), (16, 4)]
    assert CommandLatency.percentile_us(hist, 50) == 0.031
    assert CommandLatency.percentile_us(hist, 99) == 16.383
    assert CommandLatency.percentile_us(hist, 0) == 0.031  # at least one call
    assert [percentile_label(p) for p in (50.0, 99.0, 99.9, 99.99)] == [
        "p50",
        "p99",
        "p99.9",
        "p99.99",
    ]


def test_tracking_off_hides_new_calls_and_keeps_old() -> None:
    d = Dispatch(TABLE)
    t = CommandLatency(d)
    get = d.get(b"get")
    assert get is not None
    assert t.shown(get) is None
    get.hist[12] += 2
    t.set_enabled(False)
    get.hist[12] += 1  # a call while tracking is off: counted, not shown
    get.hist[3] += 1
    assert get.calls == 4
    assert t.shown(get) == [2 if i == 12 else 0 for i in range(BUCKETS)]
    t.set_enabled(True)
    get.hist[20] += 1
    shown = t.shown(get)
    assert shown is not None and shown[12] == 2 and shown[20] == 1 and sum(shown) == 3
    d.reset()
    t.reset()
    assert t.shown(get) is None and get.calls == 0


def test_named_entries() -> None:
    d = Dispatch(TABLE)
    t = CommandLatency(d)
    names = [e.name for e in t.entries_named([b"GET", b"nosuch", b"config|GET", b"client"])]
    assert names[:2] == ["get", "config|get"]
    assert names[2] == "client" and "client|list" in names[3:]
    assert all(n.startswith("client|") for n in names[3:])
