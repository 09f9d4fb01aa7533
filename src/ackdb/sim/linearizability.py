"""A linearizability checker for histories of a key-value register map.

Owns: deciding whether a concurrent history of put / get / cas operations has a
linearization (Herlihy & Wing 1990) consistent with a sequential map of registers. Never
does IO; pure functions over the history.

Algorithm: Wing & Gong's search (1993) with Lowe's memoisation of (linearized set, state)
pairs, as in Porcupine (anishathalye/porcupine): the invocation/response events in time
order form a list; the operations that may be linearized next are those invoked before the
earliest pending response; try each (if the model accepts its output), remove it from the
list and go deeper; when none fits, backtrack. The history is partitioned per key first (ops on different keys commute), which
keeps each search small.

An operation whose outcome is unknown (the client timed out) has its response at infinity
and accepts any output: linearizing it last is the same as it never taking effect, so
"may or may not have happened" needs no special case.

The search is bounded by ``max_steps`` per key; past it the verdict is UNKNOWN rather than
a hang.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, replace

Value = Hashable  # register values: bytes/str/int or None for "absent"


class OpKind(enum.Enum):
    PUT = "put"
    GET = "get"
    CAS = "cas"


@dataclass(frozen=True, slots=True)
class Op:
    """One client operation. ``ret`` is None when the outcome is unknown (timeout); then
    ``output`` is ignored.

    PUT: ``value`` written, output ignored (always "ok").
    GET: output = the value read (None: absent).
    CAS: ``expected`` and ``value``; output = True if it swapped.
    """

    client: str
    kind: OpKind
    key: Hashable
    invoke: float
    ret: float | None
    value: Value = None
    expected: Value = None
    output: object = None


class Verdict(enum.Enum):
    OK = "linearizable"
    VIOLATION = "not linearizable"
    UNKNOWN = "unknown (search budget exhausted)"


@dataclass(frozen=True, slots=True)
class CheckResult:
    verdict: Verdict
    key: Hashable = None  # the first key that failed or ran out of budget
    steps: int = 0


def step_model(state: Value, op: Op) -> tuple[bool, Value]:
    """The sequential register: does ``op`` with its output fit ``state``? -> (ok, next)."""
    known = op.ret is not None
    if op.kind == OpKind.PUT:
        return True, op.value
    if op.kind == OpKind.GET:
        return (not known or op.output == state), state
    swapped = state == op.expected
    if known and bool(op.output) != swapped:
        return False, state
    return True, (op.value if swapped else state)


class _Node:
    __slots__ = ("op_id", "is_call", "match", "prev", "next")

    def __init__(self, op_id: int, is_call: bool) -> None:
        self.op_id = op_id
        self.is_call = is_call
        self.match: _Node | None = None
        self.prev: _Node | None = None
        self.next: _Node | None = None


def _build_list(ops: list[Op]) -> _Node:
    events: list[tuple[float, int, int, bool]] = []
    for i, op in enumerate(ops):
        assert op.ret is None or op.ret >= op.invoke, f"op returns before invoked: {op}"
        # At equal times invocations sort before responses: the operations are then
        # treated as concurrent, the permissive reading.
        events.append((op.invoke, 0, i, True))
        events.append((math.inf if op.ret is None else op.ret, 1, i, False))
    events.sort()
    head = _Node(-1, False)
    calls: dict[int, _Node] = {}
    prev = head
    for _, _, i, is_call in events:
        n = _Node(i, is_call)
        if is_call:
            calls[i] = n
        else:
            calls[i].match = n
            n.match = calls[i]
        prev.next = n
        n.prev = prev
        prev = n
    return head


def _lift(call: _Node) -> None:
    assert call.prev is not None and call.match is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    ret = call.match
    assert ret.prev is not None
    ret.prev.next = ret.next
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Node) -> None:
    ret = call.match
    assert ret is not None and ret.prev is not None and call.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call


def _window(head: _Node, ops: list[Op], unknown: list[bool], state: Value) -> list[_Node]:
    """The operations worth linearizing next, among those invoked before the earliest
    pending response (the only ones that may go next).

    Operations with a known outcome are all tried. One with an unknown outcome (it never
    returns, so it can always be postponed) is tried only when placing it here can matter:
    it changes the state, and the new state either lets a known candidate that does not
    fit now fit, or is the expected value of a pending unknown cas (a chain of them). By an
    exchange argument some linearization, if any exists, places every unknown operation
    either so or at the very end. Unknown operations with the same effect are
    interchangeable while both are pending, so only the earliest is tried."""
    known: list[_Node] = []
    maybe: list[_Node] = []
    n = head.next
    while n is not None and n.is_call:
        (maybe if unknown[n.op_id] else known).append(n)
        n = n.next
    stuck = [ops[k.op_id] for k in known if not step_model(state, ops[k.op_id])[0]]
    if not stuck or not maybe:
        return known
    chain = {ops[u.op_id].expected for u in maybe if ops[u.op_id].kind == OpKind.CAS}
    useful: list[_Node] = []
    seen: set[tuple[OpKind, Value, Value]] = set()
    for u in maybe:
        op = ops[u.op_id]
        sig = (op.kind, op.value, op.expected)
        if sig in seen:
            continue
        seen.add(sig)
        after = step_model(state, op)[1]
        if after != state and (after in chain or any(step_model(after, k)[0] for k in stuck)):
            useful.append(u)
    return known + useful


class _Unobserved:
    """The one value standing for every value no operation can tell apart."""

    def __repr__(self) -> str:
        return "<unobserved>"


UNOBSERVED = _Unobserved()


def _canonical(ops: list[Op]) -> list[Op]:
    """Written values that no read returns and no cas expects are indistinguishable to
    every operation; map them all to UNOBSERVED so the memo merges their states."""
    observed: set[Value] = {op.expected for op in ops if op.kind == OpKind.CAS}
    observed |= {op.output for op in ops if op.kind == OpKind.GET and op.ret is not None}
    out = []
    for op in ops:
        if op.kind != OpKind.GET and op.value not in observed:
            op = replace(op, value=UNOBSERVED)
        out.append(op)
    return out


def check_key(ops: list[Op], init: Value = None, max_steps: int = 200_000) -> tuple[Verdict, int]:
    """Search for a linearization of ``ops`` (all on one key)."""
    ops = _canonical(ops)
    head = _build_list(ops)
    unknown = [op.ret is None for op in ops]
    # Once every operation with a known outcome is linearized, the unknown ones can all
    # go last (they accept any output), so the search is done.
    known_left = unknown.count(False)
    state = init
    linearized = 0
    cache: set[tuple[int, Value]] = set()
    # Each frame: the candidates of a level, the next one to try, the state before it and
    # the operation linearized at that level.
    stack: list[tuple[list[_Node], int, Value, _Node]] = []
    cands = _window(head, ops, unknown, state)
    i = 0
    steps = 0
    while known_left:
        steps += 1
        if steps > max_steps:
            return Verdict.UNKNOWN, steps
        if i < len(cands):
            node = cands[i]
            i += 1
            ok, new_state = step_model(state, ops[node.op_id])
            new_lin = linearized | (1 << node.op_id)
            if not ok or (new_lin, new_state) in cache:
                continue
            cache.add((new_lin, new_state))
            stack.append((cands, i, state, node))
            state, linearized = new_state, new_lin
            known_left -= not unknown[node.op_id]
            _lift(node)
            cands, i = _window(head, ops, unknown, state), 0
        else:
            # Nothing at this level fits: undo the last choice and try its next sibling.
            if not stack:
                return Verdict.VIOLATION, steps
            cands, i, state, node = stack.pop()
            _unlift(node)
            linearized &= ~(1 << node.op_id)
            known_left += not unknown[node.op_id]
    return Verdict.OK, steps


def check_history(ops: Iterable[Op], max_steps_per_key: int = 200_000) -> CheckResult:
    """Check a whole history, one key at a time (locality, Herlihy & Wing §3.3)."""
    by_key: dict[Hashable, list[Op]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    total = 0
    unknown_key: Hashable = None
    unknown = False
    for key in sorted(by_key, key=repr):
        verdict, steps = check_key(by_key[key], max_steps=max_steps_per_key)
        total += steps
        if verdict == Verdict.VIOLATION:
            return CheckResult(Verdict.VIOLATION, key, total)
        if verdict == Verdict.UNKNOWN and not unknown:
            unknown, unknown_key = True, key
    if unknown:
        return CheckResult(Verdict.UNKNOWN, unknown_key, total)
    return CheckResult(Verdict.OK, None, total)
