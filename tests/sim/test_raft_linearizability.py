"""The linearizability checker (src/ackdb/sim/linearizability.py) on small histories whose
verdict is known, and against a brute-force reference on random ones."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.sim.linearizability import Op, OpKind, Verdict, check_history, check_key, step_model

pytestmark = pytest.mark.sim


def put(c: str, v: str, t0: float, t1: float | None, key: str = "k") -> Op:
    return Op(client=c, kind=OpKind.PUT, key=key, invoke=t0, ret=t1, value=v, output="ok")


def get(c: str, out: str | None, t0: float, t1: float, key: str = "k") -> Op:
    return Op(client=c, kind=OpKind.GET, key=key, invoke=t0, ret=t1, output=out)


def cas(c: str, exp: str | None, new: str, ok: bool | None, t0: float, t1: float | None) -> Op:
    return Op(
        client=c, kind=OpKind.CAS, key="k", invoke=t0, ret=t1, value=new, expected=exp, output=ok
    )


LINEARIZABLE = {
    "sequential": [put("a", "1", 0, 1), get("b", "1", 2, 3)],
    "concurrent read sees either": [
        put("a", "1", 0, 10),
        get("b", None, 1, 2),
        get("c", "1", 3, 4),
    ],
    "overlapping writes any order": [
        put("a", "1", 0, 10),
        put("b", "2", 0, 10),
        get("c", "1", 11, 12),
    ],
    "cas chain": [
        put("a", "1", 0, 1),
        cas("b", "1", "2", True, 2, 3),
        cas("c", "1", "3", False, 4, 5),
        get("d", "2", 6, 7),
    ],
    "unknown write took effect": [put("a", "1", 0, None), get("b", "1", 5, 6)],
    "unknown write never happened": [
        put("a", "1", 0, None),
        get("b", None, 5, 6),
        get("c", None, 7, 8),
    ],
    "unknown cas took effect late": [
        put("a", "1", 0, 1),
        cas("b", "1", "2", None, 2, None),
        get("c", "1", 3, 4),
        get("d", "2", 5, 6),
    ],
    "equal times are concurrent": [put("a", "1", 0, 5), get("b", "1", 5, 6)],
}

NOT_LINEARIZABLE = {
    "stale read after write": [put("a", "1", 0, 1), get("b", None, 2, 3)],
    "read of a value never written": [get("a", "9", 0, 1)],
    "reads go back in time": [
        put("a", "1", 0, 1),
        put("a", "2", 2, 3),
        get("b", "2", 4, 5),
        get("c", "1", 6, 7),
    ],
    "double cas success": [
        put("a", "1", 0, 1),
        cas("b", "1", "2", True, 2, 10),
        cas("c", "1", "3", True, 2, 10),
    ],
    "failed cas without cause": [put("a", "1", 0, 1), cas("b", "1", "2", False, 2, 3)],
    "unknown write cannot explain two values": [
        put("a", "1", 0, None),
        get("b", "1", 2, 3),
        get("c", None, 4, 5),
        get("d", "1", 6, 7),
    ],
    "applied twice": [put("a", "x", 0, 1), put("b", "y", 2, 3), get("c", "x", 4, 5)],
}


@pytest.mark.parametrize("name", sorted(LINEARIZABLE))
def test_linearizable_histories(name: str) -> None:
    assert check_history(LINEARIZABLE[name]).verdict == Verdict.OK


@pytest.mark.parametrize("name", sorted(NOT_LINEARIZABLE))
def test_non_linearizable_histories(name: str) -> None:
    result = check_history(NOT_LINEARIZABLE[name])
    assert result.verdict == Verdict.VIOLATION and result.key == "k"


def test_keys_are_checked_independently() -> None:
    ops = [
        put("a", "1", 0, 1, key="x"),
        get("b", "1", 2, 3, key="x"),
        put("a", "2", 0, 1, key="y"),
        get("b", None, 2, 3, key="y"),
    ]
    result = check_history(ops)
    assert result.verdict == Verdict.VIOLATION and result.key == "y"


def test_search_budget_reports_unknown() -> None:
    # Many concurrent writes and a read that no order explains: the search must give up
    # within its budget instead of hanging.
    ops = [put(f"c{i}", str(i), 0, 100) for i in range(14)] + [get("r", "none", 0, 100)]
    verdict, steps = check_key(ops, max_steps=500)
    assert verdict == Verdict.UNKNOWN and steps == 501


def _brute_force(ops: list[Op]) -> bool:
    """Try every order of the operations (and every subset of the unknown ones)."""
    unknown = [i for i, op in enumerate(ops) if op.ret is None]
    known = [i for i, op in enumerate(ops) if op.ret is not None]
    for r in range(len(unknown) + 1):
        for subset in itertools.combinations(unknown, r):
            chosen = known + list(subset)
            for order in itertools.permutations(chosen):
                pos = {op_id: n for n, op_id in enumerate(order)}
                if any(
                    ops[a].ret is not None and ops[a].ret < ops[b].invoke and pos[a] > pos[b]
                    for a in chosen
                    for b in chosen
                ):
                    continue
                state = None
                ok = True
                for op_id in order:
                    fits, state = step_model(state, ops[op_id])
                    if not fits:
                        ok = False
                        break
                if ok:
                    return True
    return False


@st.composite
def histories(draw: st.DrawFn) -> list[Op]:
    """Up to 6 overlapping operations on one key, half of the writes with unknown outcome
    (about half of these histories are linearizable)."""
    n = draw(st.integers(1, 6))
    values = st.sampled_from(["1", "2", "3"])
    ops = []
    for i in range(n):
        t0 = draw(st.integers(0, 8))
        t1 = None if draw(st.booleans()) else t0 + draw(st.integers(0, 4))
        kind = draw(st.sampled_from(OpKind))
        if kind == OpKind.PUT:
            ops.append(put(f"c{i}", draw(values), t0, t1))
        elif kind == OpKind.GET:
            out = draw(st.none() | values)
            ops.append(get(f"c{i}", out, t0, t0 + draw(st.integers(0, 4))))
        else:
            exp = draw(st.none() | values)
            ok = None if t1 is None else draw(st.booleans())
            ops.append(cas(f"c{i}", exp, draw(values), ok, t0, t1))
    return ops


@settings(max_examples=500, deadline=None)
@given(histories())
def test_agrees_with_brute_force(ops: list[Op]) -> None:
    verdict, _ = check_key(ops)
    assert (verdict == Verdict.OK) == _brute_force(ops)


def test_large_sequential_history_is_fast() -> None:
    rng = random.Random(3)
    ops = []
    value = None
    for i in range(2000):
        if rng.random() < 0.5:
            value = str(i)
            ops.append(put("a", value, 2 * i, 2 * i + 1))
        else:
            ops.append(get("b", value, 2 * i, 2 * i + 1))
    verdict, steps = check_key(ops)
    assert verdict == Verdict.OK and steps < 10_000
