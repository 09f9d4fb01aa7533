"""Checkers: read a finished history (and the state read back from the servers) and say
whether the guarantees held.

Owns three verdicts, each a pure function of its inputs except ``convergence`` (which
polls the servers):

- ``check_durability``: the append-only list model. Every write is ``RPUSH key token``
  with a token unique in the whole run, so the final list of a key tells exactly which
  writes are in the data set. Each write acknowledged at a level the fault schedule
  claims to survive (``must_survive(op)``) must be present; a token that no write sent
  (or a write that definitely failed) is a *phantom*; a token twice is a *duplicate*; if
  write A completed before write B was invoked, A must come before B in the list
  (*reordered* otherwise). A write whose outcome is unknown may or may not be present.
  Because a key's list only grows, "overwritten by a later write" cannot hide a loss:
  every value stays observable, so the question is always decidable.
- ``check_linearizable``: single-key registers (META.SET / META.GET / META.CAS) checked by
  the Wing–Gong search of ``ackdb.sim.linearizability``, per key. Definite failures are
  dropped (they had no effect); writes with unknown outcome never return; reads with an
  unknown outcome are dropped (a read has no effect).
- ``convergence``: after heal and quiesce, every replica's ``DEBUG DIGEST`` equals its
  primary's within a stated time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ackdb.sim.linearizability import CheckResult, OpKind, Verdict, check_history
from ackdb.sim.linearizability import Op as LinOp

from .history import FAIL, OK, UNKNOWN, Op


def acknowledged(op: Op) -> bool:
    """The default claim: a write whose reply was OK and whose requested acknowledgement
    level (WAIT / WAITAOF count, or none) was reached."""
    return op.outcome == OK and op.acked


@dataclass
class DurabilityResult:
    checked: int = 0  # writes that had to survive
    present: int = 0
    lost: list[str] = field(default_factory=list)
    phantom: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)
    unknown_present: int = 0
    unknown_absent: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.phantom or self.duplicated or self.reordered)

    def explain(self, limit: int = 10) -> str:
        parts = [f"checked {self.checked} acknowledged writes, {self.present} present"]
        for name in ("lost", "phantom", "duplicated", "reordered"):
            items: list[str] = getattr(self, name)
            if items:
                parts.append(f"{len(items)} {name}: {items[:limit]}")
        parts.append(f"unknown: {self.unknown_present} present, {self.unknown_absent} absent")
        return "; ".join(parts)


def check_durability(
    ops: Iterable[Op],
    final: dict[str, list[str]],
    must_survive: Callable[[Op], bool] = acknowledged,
    f: str = "rpush",
) -> DurabilityResult:
    writes = [op for op in ops if op.f == f and op.process != "nemesis"]
    res = DurabilityResult()
    positions: dict[str, dict[str, int]] = {}
    for key, items in final.items():
        pos: dict[str, int] = {}
        for i, tok in enumerate(items):
            if tok in pos:
                res.duplicated.append(f"{key}:{tok}")
            pos.setdefault(tok, i)
        positions[key] = pos
    sent: dict[str, Op] = {}
    for op in writes:
        sent[str(op.value)] = op
    for key, pos in positions.items():
        for tok in pos:
            w = sent.get(tok)
            if w is None or w.key != key or w.outcome == FAIL:
                res.phantom.append(f"{key}:{tok}")
    for op in writes:
        here = str(op.value) in positions.get(str(op.key), {})
        if must_survive(op):
            res.checked += 1
            if here:
                res.present += 1
            else:
                res.lost.append(f"{op.key}:{op.value} ({op.process}, level {op.level}, {op.ack})")
        elif op.outcome == UNKNOWN:
            if here:
                res.unknown_present += 1
            else:
                res.unknown_absent += 1
    res.reordered = _real_time_order(writes, positions)
    return res


def _real_time_order(writes: list[Op], positions: dict[str, dict[str, int]]) -> list[str]:
    """Writes present in a key's list must be in an order consistent with real time: if A
    completed before B was invoked, A's position is before B's."""
    bad: list[str] = []
    by_key: dict[str, list[tuple[Op, int]]] = defaultdict(list)
    for op in writes:
        p = positions.get(str(op.key), {}).get(str(op.value))
        if p is not None and op.complete_ns is not None and op.outcome == OK:
            by_key[str(op.key)].append((op, p))
    for key, present in by_key.items():
        # Sweep: events (time, kind, ...) with completions (kind 0) before invocations at
        # equal times would be wrong; invocations first keeps the permissive reading.
        events: list[tuple[int, int, int, Op]] = []
        for op, p in present:
            assert op.complete_ns is not None
            events.append((op.invoke_ns, 0, p, op))
            events.append((op.complete_ns, 1, p, op))
        events.sort(key=lambda e: (e[0], e[1]))
        top, top_op = -1, None
        for _, kind, p, op in events:
            if kind == 1:
                if p > top:
                    top, top_op = p, op
            elif p < top and top_op is not None:
                bad.append(f"{key}: {top_op.value}@{top} completed before {op.value}@{p} began")
    return bad


# -- linearizability -------------------------------------------------------------------------

_KINDS = {"set": OpKind.PUT, "get": OpKind.GET, "cas": OpKind.CAS}


def to_lin_ops(ops: Iterable[Op], unknown_errors: tuple[str, ...] = ()) -> list[LinOp]:
    """``unknown_errors``: error replies (by prefix) whose writes are taken as unknown
    rather than as definite failures."""
    out: list[LinOp] = []
    for op in ops:
        kind = _KINDS.get(op.f)
        if kind is None or op.process == "nemesis" or op.outcome is None:
            continue
        outcome = op.outcome
        if outcome == FAIL and str(op.result).startswith(unknown_errors or ("\0",)):
            outcome = UNKNOWN
        if outcome == FAIL or (kind == OpKind.GET and outcome == UNKNOWN):
            continue
        known = outcome == OK
        ret = float(op.complete_ns) if known and op.complete_ns is not None else None
        value: Any = op.value
        expected: Any = None
        if kind == OpKind.CAS:
            expected, value = op.value
        output = op.result if kind != OpKind.CAS else bool(op.result)
        out.append(
            LinOp(op.process, kind, op.key, float(op.invoke_ns), ret, value, expected, output)
        )
    return out


def check_linearizable(
    ops: Iterable[Op], max_steps_per_key: int = 500_000, unknown_errors: tuple[str, ...] = ()
) -> CheckResult:
    return check_history(to_lin_ops(ops, unknown_errors), max_steps_per_key)


def failed_writes_observed(ops: Iterable[Op], error: str) -> list[str]:
    """Writes answered ``error`` (a definite failure by the docs) whose value a later
    successful read returned or a successful CAS expected: proof they were applied."""
    ops = list(ops)
    failed: dict[Any, Op] = {}
    for op in ops:
        if op.f in ("set", "cas") and op.outcome == FAIL and str(op.result).startswith(error):
            failed[op.value if op.f == "set" else op.value[1]] = op
    seen = []
    for op in ops:
        if op.outcome != OK:
            continue
        v = op.result if op.f == "get" else (op.value[0] if op.f == "cas" and op.result else None)
        w = failed.get(v)
        if w is not None and w.complete_ns is not None and op.complete_ns is not None:
            seen.append(f"{w.process} {w.f} {w.key}={v!r} answered {error}; read by {op.process}")
    return seen


def linearizable_ok(result: CheckResult) -> bool:
    return result.verdict == Verdict.OK


# -- convergence -------------------------------------------------------------------------------


def convergence(
    primary: Any, replicas: list[Any], timeout_s: float, interval_s: float = 0.05
) -> float:
    """Poll until every replica's DEBUG DIGEST equals ``primary``'s (each is a redis-py
    client); return the seconds it took, or raise AssertionError with the digests."""
    t0 = time.monotonic()
    last: list[Any] = []
    while True:
        try:
            want = primary.execute_command("DEBUG", "DIGEST")
            last = [want, *(r.execute_command("DEBUG", "DIGEST") for r in replicas)]
            if all(d == want for d in last):
                return time.monotonic() - t0
        except Exception as e:  # noqa: BLE001 -- a server still loading: poll again
            last = [repr(e)]
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"no convergence within {timeout_s}s: digests {last}")
        time.sleep(interval_s)


# -- acknowledgement counts against disks ------------------------------------------------------


@dataclass
class CountResult:
    checked: int = 0
    counted_replicas: int = 0  # replies whose replica count was >= 1
    overcounted: list[str] = field(default_factory=list)
    local_lost: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.overcounted or self.local_lost)

    def explain(self, limit: int = 10) -> str:
        return (
            f"checked {self.checked} counts ({self.counted_replicas} counting a replica); "
            f"{len(self.overcounted)} over-counted "
            f"{self.overcounted[:limit]}; {len(self.local_lost)} local lost "
            f"{self.local_lost[:limit]}"
        )


def check_ack_counts(
    ops: Iterable[Op],
    replica_disks: dict[str, dict[str, list[str]]],
    primary_disk: dict[str, list[str]] | None,
    f: str = "rpush",
) -> CountResult:
    """WAITAOF's promise, write by write: a reply ``[local, n]`` means the write is on the
    issuing primary's disk (``local`` = 1) and on the disks of at least ``n`` replicas.
    ``replica_disks``: node name -> lists read back after a restart from what its disk
    held (after a power-loss cut); ``primary_disk`` likewise for the primary the writes
    went to (None: not checked)."""
    res = CountResult()
    sets = {
        name: {(k, t) for k, items in disk.items() for t in items}
        for name, disk in replica_disks.items()
    }
    primary = {(k, t) for k, items in (primary_disk or {}).items() for t in items}
    for op in ops:
        if op.f != f or op.outcome != OK or not op.ack or "local" not in op.ack:
            continue
        res.checked += 1
        res.counted_replicas += op.ack["replicas"] >= 1
        item = (str(op.key), str(op.value))
        holders = [name for name, s in sets.items() if item in s and name != op.node]
        if len(holders) < op.ack["replicas"]:
            res.overcounted.append(
                f"{op.key}:{op.value} acked by {op.ack['replicas']} replicas, on the disk "
                f"of {holders}"
            )
        if primary_disk is not None and op.ack["local"] and item not in primary:
            res.local_lost.append(f"{op.key}:{op.value}")
    return res


def explain_violation(ops: Iterable[Op], key: str, context: int = 12) -> str:
    """A short failing excerpt of ``key``'s history, for a report: the shortest prefix
    (by invocation time) found non-linearizable by bisection, and its last ``context``
    operations. Bisection assumes a longer prefix of a violation stays one, which is
    usual but not guaranteed; the excerpt is a lead, the verdict is check_linearizable."""
    mine = sorted((op for op in ops if op.key == key and op.f in _KINDS), key=lambda o: o.invoke_ns)
    lo, hi = 1, len(mine)
    while lo < hi:
        mid = (lo + hi) // 2
        if check_linearizable(mine[:mid]).verdict == Verdict.VIOLATION:
            hi = mid
        else:
            lo = mid + 1
    t0 = mine[0].invoke_ns if mine else 0
    lines = [f"shortest failing prefix of {key}: {lo} ops; its last {context}:"]
    for op in mine[max(0, lo - context) : lo]:
        end = "?" if op.complete_ns is None else f"{(op.complete_ns - t0) / 1e6:.1f}"
        lines.append(
            f"  [{(op.invoke_ns - t0) / 1e6:.1f} .. {end} ms] {op.process}@{op.node} "
            f"{op.f} {op.value!r} -> {op.outcome} {op.result!r}"
        )
    return "\n".join(lines)
