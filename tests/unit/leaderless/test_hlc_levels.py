"""The hybrid logical clock and the level arithmetic (leaderless/hlc.py, levels.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ackdb.keyspace.lww import Version
from ackdb.leaderless.hlc import HybridClock
from ackdb.leaderless.levels import Level, required, strong

steps = st.lists(
    st.tuples(
        st.booleans(),
        st.integers(0, 2000),
        st.builds(Version, st.integers(0, 3000), st.integers(0, 5), st.integers(0, 4)),
    ),
    max_size=40,
)


@given(steps)
def test_never_issues_below_anything_issued_or_accepted(script: list) -> None:  # type: ignore[type-arg]
    clock = HybridClock(node=7, max_skew_ms=300)
    high = Version(0, 0, 0)
    issued: list[Version] = []
    for issue, wall, seen in script:
        if issue:
            v = clock.now(wall)
            assert v > high and v.node == 7 and v.ms >= wall
            issued.append(v)
            high = v
        elif clock.observe(seen, wall):
            high = max(high, seen)
        else:
            assert seen.ms - wall > 300
    assert issued == sorted(set(issued))


def test_skewed_peer_is_flagged_and_refused() -> None:
    clock = HybridClock(node=1, max_skew_ms=500)
    assert clock.observe(Version(1_400, 0, 2), 1_000)
    assert not clock.observe(Version(10_000, 0, 3), 1_000)
    assert not clock.observe(Version(20_000, 0, 3), 1_000)
    assert clock.flagged[3].ahead_ms == 19_000 and clock.flagged[3].refused == 2
    assert 2 not in clock.flagged
    assert clock.now(1_000) == Version(1_400, 1, 1)  # moved by the accepted one only


def test_ties_on_the_same_millisecond_count_up() -> None:
    clock = HybridClock(node=2)
    assert [clock.now(5) for _ in range(3)] == [Version(5, i, 2) for i in range(3)]
    assert clock.now(4) == Version(5, 3, 2)  # wall clock went back: never below
    assert clock.now(9) == Version(9, 0, 2)


@pytest.mark.parametrize(
    ("n", "one", "quorum", "all_"),
    [(1, 1, 1, 1), (2, 1, 2, 2), (3, 1, 2, 3), (4, 1, 3, 4), (5, 1, 3, 5)],
)
def test_required_counts(n: int, one: int, quorum: int, all_: int) -> None:
    assert (required(Level.ONE, n), required(Level.QUORUM, n), required(Level.ALL, n)) == (
        one,
        quorum,
        all_,
    )


@given(st.integers(1, 9), st.sampled_from(list(Level)), st.sampled_from(list(Level)))
def test_strong_means_every_read_set_meets_every_write_set(n: int, r: Level, w: Level) -> None:
    # Naive reference: read and write sets of those sizes can be disjoint iff r + w <= n.
    rs, ws = required(r, n), required(w, n)
    disjoint_possible = rs + ws <= n
    assert strong(r, w, n) is not disjoint_possible


def test_level_parse() -> None:
    assert Level.parse(b"quorum") is Level.QUORUM
    with pytest.raises(ValueError):
        Level.parse(b"TWO")
