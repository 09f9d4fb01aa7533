"""The checkers fail when they must: hand-made histories with a lost acknowledged write,
a phantom, a duplicate, a reordering, an over-counted WAITAOF, a stale read and a
non-linearizable register history — and pass on their correct twins. Plus the power-loss
oracle on a file of its own."""

from __future__ import annotations

import os
from pathlib import Path

from jepsen.checkers import (
    check_ack_counts,
    check_durability,
    check_linearizable,
    linearizable_ok,
)
from jepsen.history import FAIL, OK, UNKNOWN, History, Op, load
from jepsen.oracle import power_loss

from ackdb.sim.linearizability import Verdict


def w(
    token: str, t0: int, t1: int | None, outcome: str = OK, acked: bool = True, **kw: object
) -> Op:
    return Op("w1", "rpush", str(kw.pop("key", "k")), token, t0, t1, outcome, acked=acked, **kw)  # type: ignore[arg-type]


def test_durability_passes_when_every_acknowledged_write_is_present() -> None:
    ops = [w("a", 0, 1), w("b", 2, 3), w("c", 4, None, UNKNOWN, acked=False)]
    res = check_durability(ops, {"k": ["a", "b"]})
    assert res.ok and res.checked == 2 and res.unknown_absent == 1


def test_durability_reports_a_lost_acknowledged_write() -> None:
    ops = [w("a", 0, 1), w("b", 2, 3)]
    res = check_durability(ops, {"k": ["a"]})
    assert not res.ok and len(res.lost) == 1 and "k:b" in res.lost[0]


def test_an_unacknowledged_write_may_be_missing_but_not_invented() -> None:
    ops = [w("a", 0, 1, acked=False), w("b", 2, 3, FAIL, acked=False)]
    assert check_durability(ops, {"k": []}).ok
    res = check_durability(ops, {"k": ["b", "zz"]})
    assert sorted(res.phantom) == ["k:b", "k:zz"]


def test_durability_reports_duplicates_and_real_time_reordering() -> None:
    ops = [w("a", 0, 1), w("b", 2, 3)]
    assert check_durability(ops, {"k": ["a", "b", "b"]}).duplicated == ["k:b"]
    res = check_durability(ops, {"k": ["b", "a"]})
    assert not res.ok and len(res.reordered) == 1
    # Concurrent writes may land in either order.
    ops = [w("a", 0, 3), w("b", 1, 2)]
    assert check_durability(ops, {"k": ["b", "a"]}).ok


def test_ack_counts_must_be_backed_by_replica_disks() -> None:
    op = w("a", 0, 1, ack={"local": 1, "replicas": 2}, node="p")
    held = {"k": ["a"]}
    assert check_ack_counts([op], {"r1": held, "r2": held}, held).ok
    res = check_ack_counts([op], {"r1": held, "r2": {"k": []}}, held)
    assert len(res.overcounted) == 1
    res = check_ack_counts([op], {"r1": held, "r2": held}, {"k": []})
    assert res.local_lost == ["k:a"]


def reg(process: str, f: str, value: object, t0: int, t1: int | None, result: object = None,
        outcome: str = OK) -> Op:  # fmt: skip
    return Op(process, f, "x", value, t0, t1, outcome, result)


def test_linearizable_register_history_passes() -> None:
    ops = [
        reg("a", "set", "1", 0, 10),
        reg("b", "get", None, 5, 15, "1"),
        reg("a", "cas", ("1", "2"), 20, 30, 1),
        reg("b", "get", None, 31, 40, "2"),
        reg("c", "set", "3", 35, None, outcome=UNKNOWN),  # may or may not have happened
        reg("b", "get", None, 41, 50, "2"),
    ]
    assert linearizable_ok(check_linearizable(ops))


def test_a_stale_read_is_not_linearizable() -> None:
    ops = [
        reg("a", "set", "1", 0, 10),
        reg("a", "set", "2", 11, 20),
        reg("b", "get", None, 21, 30, "1"),  # begins after "2" was acknowledged
    ]
    res = check_linearizable(ops)
    assert res.verdict == Verdict.VIOLATION and res.key == "x"


def test_a_cas_that_succeeds_on_a_value_never_there_is_not_linearizable() -> None:
    ops = [
        reg("a", "set", "1", 0, 10),
        reg("b", "cas", ("9", "2"), 11, 20, 1),
    ]
    assert check_linearizable(ops).verdict == Verdict.VIOLATION


def test_failed_operations_are_dropped_and_unknown_writes_may_appear_late() -> None:
    ops = [
        reg("a", "set", "1", 0, 10),
        reg("b", "set", "2", 5, 15, "NOQUORUM", outcome=FAIL),
        reg("c", "set", "3", 16, None, outcome=UNKNOWN),
        reg("a", "get", None, 100, 110, "1"),
        reg("a", "get", None, 120, 130, "3"),  # the unknown write landed late
    ]
    assert linearizable_ok(check_linearizable(ops))
    ops.append(reg("a", "get", None, 140, 150, "2"))  # the failed write cannot appear
    assert check_linearizable(ops).verdict == Verdict.VIOLATION


def test_history_round_trips_through_json_lines(tmp_path: Path) -> None:
    h = History()
    op = h.invoke("w1", "rpush", "k", "t1", level="wait1")
    h.complete(op, OK, "pushed", ack={"replicas": 1}, acked=True)
    h.event("kill", node="p")
    back = load(h.dump(tmp_path / "h.jsonl"))
    assert [(o.f, o.outcome, o.ack, o.acked) for o in back] == [
        ("rpush", OK, {"replicas": 1}, True),
        ("kill", OK, None, False),
    ]


def test_power_loss_cuts_a_file_to_its_last_fsynced_size(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    f = data / "aof"
    f.write_bytes(b"x" * 100)
    st = os.stat(f)
    log = tmp_path / "fsync.log"
    log.write_text(f"{st.st_dev} {st.st_ino} 40\n{st.st_dev} {st.st_ino} 60\n")
    (data / "never").write_bytes(b"y" * 10)
    cuts = power_loss(data, log)
    assert f.stat().st_size == 60 and (data / "never").stat().st_size == 0
    assert cuts == {"aof": (100, 60), "never": (10, 0)}
