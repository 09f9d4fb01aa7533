"""Histories: every client operation with its invocation and completion, and every
nemesis event, in one time-ordered record that checkers read afterwards.

Owns: the ``Op`` record, the thread-safe ``History`` that workers append to, and its JSON
lines file (one object per line, written at the end of a run or on demand and read back
by ``load``). Times are ``time.monotonic_ns()`` of the test process, so they order events
across threads; they are never compared with a server's clock.

Outcomes: ``ok`` (the server replied with success), ``fail`` (the server replied with an
error that means the operation did not take effect), ``unknown`` (the connection broke or
timed out, or the error leaves the effect open: it may or may not have happened).

Acknowledgement: a write issued under a level records it in ``level`` (``none``,
``always``, ``everysec``, ``no``, ``wait``, ``waitaof``, ``raft``) and, for WAIT / WAITAOF,
what the server answered in ``ack`` (``{"replicas": n}`` or ``{"local": l, "replicas":
n}``) and whether the requested level was reached in ``acked``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"


@dataclass
class Op:
    process: str  # the worker ("w3") or "nemesis"
    f: str  # "rpush", "get", "set", "cas", a nemesis name ...
    key: str | None
    value: Any
    invoke_ns: int
    complete_ns: int | None = None
    outcome: str | None = None  # ok | fail | unknown
    result: Any = None
    level: str = "none"
    ack: dict[str, int] | None = None
    acked: bool = False  # the requested acknowledgement level was reached
    node: str | None = None  # which server the client talked to
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=_jsonable, sort_keys=True)


def _jsonable(o: object) -> object:
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    return repr(o)


class History:
    """Append-only, shared by worker threads and the nemesis."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._lock = threading.Lock()

    def invoke(self, process: str, f: str, key: str | None, value: Any, **kw: Any) -> Op:
        op = Op(process, f, key, value, time.monotonic_ns(), **kw)
        with self._lock:
            self.ops.append(op)
        return op

    @staticmethod
    def complete(op: Op, outcome: str, result: Any = None, **kw: Any) -> Op:
        assert outcome in (OK, FAIL, UNKNOWN), outcome
        op.complete_ns = time.monotonic_ns()
        op.outcome = outcome
        op.result = result
        for k, v in kw.items():
            setattr(op, k, v)
        return op

    def event(self, f: str, **extra: Any) -> Op:
        """A nemesis or test event: instantaneous, always ok."""
        op = self.invoke("nemesis", f, None, None, extra=extra)
        return self.complete(op, OK)

    def snapshot(self) -> list[Op]:
        with self._lock:
            return list(self.ops)

    def dump(self, path: Path) -> Path:
        with open(path, "w") as fh:
            for op in self.snapshot():
                fh.write(op.to_json() + "\n")
        return path

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for op in self.snapshot():
            if op.process == "nemesis":
                continue
            k = f"{op.f}:{op.outcome}"
            out[k] = out.get(k, 0) + 1
            if op.acked:
                out[f"{op.f}:acked"] = out.get(f"{op.f}:acked", 0) + 1
        return out


def load(path: Path) -> list[Op]:
    ops = []
    with open(path) as fh:
        for line in fh:
            if line.strip():
                ops.append(Op(**json.loads(line)))
    return ops
