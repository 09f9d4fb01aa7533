"""Every INFO field has a source (STYLE.md: numbers users read come from typed counters
that exist; a missing source is an error, never a silent 0).

Here, in process: the core provides every source ``InfoCore`` names (``check_sources``);
INFO's code reads no source through a fallback (``getattr(x, name, default)``,
``hasattr``); every field printed as a fixed value is declared in ``NO_SOURCE`` (with its
reason) or is a fixed fact below; the gauges behind mem_replication_backlog,
mem_aof_buffer and clients_in_timeout_table. mypy --strict proves the real shells conform
(``info_sources._sources_conform``). tests/e2e/test_info_gauges.py walks every field of
a live primary (replica, AOF, backlog) and replica, and compares with redis-server.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

from ackdb.compiled import is_compiled
from ackdb.replication.backlog import CHUNK_BYTES, Backlog
from ackdb.replication.waiters import Waiters
from ackdb.server import info, info_sources, persist
from ackdb.server.info_sources import NO_SOURCE, check_sources
from conftest import Harness

# Fields whose fixed value is a fact about ackdb, not a missing source.
FIXED_FACTS = {
    "redis_git_sha1": "ackdb is not built from Redis's git tree",
    "redis_git_dirty": "ackdb is not built from Redis's git tree",
    "redis_mode": "ackdb server is standalone (a cluster endpoint is node/'s)",
    "monotonic_clock": "Python's monotonic clock is clock_gettime",
    "atomicvar_api": "counters are plain ints under the GIL",
    "process_supervised": "ackdb has no upstart/systemd supervision mode",
    "mem_allocator": "Python's allocator",
}
# Functions of info.py that describe a core without a shell (unit tests): their fixed
# values are the truth of a server that never saved or replicated.
NO_SHELL_FUNCTIONS = {"_without_persistence", "_sync_stats", "_replication"}


def _tree(module: Any) -> ast.Module:
    return ast.parse(Path(inspect.getfile(module)).read_text())


def _fixed_fields(tree: ast.AST) -> set[str]:
    """Names of ``("field", <literal>)`` pairs in the field lists under ``tree``."""
    return {
        n.elts[0].value
        for lst in ast.walk(tree)
        if isinstance(lst, ast.List)
        for n in lst.elts
        if isinstance(n, ast.Tuple)
        and len(n.elts) == 2
        and isinstance(n.elts[0], ast.Constant)
        and isinstance(n.elts[0].value, str)
        and isinstance(n.elts[1], ast.Constant | ast.UnaryOp)
    }


def _info_fields(text: str) -> dict[str, str]:
    return dict(
        line.split(":", 1) for line in text.split("\r\n") if line and not line.startswith("#")
    )


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_the_core_provides_every_source(h: Harness) -> None:
    check_sources(h.server)


def test_a_missing_source_is_an_error(h: Harness) -> None:
    if is_compiled("ackdb.engine.core"):
        # The compiled Server's attributes are typed slots: one cannot go missing.
        with pytest.raises(AttributeError, match="stat_total_forks"):
            del h.server.stat_total_forks
        return
    del h.server.stat_total_forks
    with pytest.raises(TypeError, match="stat_total_forks"):
        check_sources(h.server)
    with pytest.raises(AttributeError, match="stat_total_forks"):
        info.info_text(h.server, [b"everything"])


def test_a_counter_must_be_an_int(h: Harness) -> None:
    if is_compiled("ackdb.engine.core"):
        # The compiled Server refuses a float in an int attribute at the assignment.
        with pytest.raises(TypeError, match="int object expected"):
            h.server.stat_keyspace_hits = 1.5
        return
    h.server.stat_keyspace_hits = 1.5
    with pytest.raises(TypeError, match="stat_keyspace_hits"):
        check_sources(h.server)


def test_no_source_is_read_through_a_fallback() -> None:
    for module in (info, info_sources):
        for n in ast.walk(_tree(module)):
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Name)):
                continue
            if n.func.id == "hasattr" and module is info:
                raise AssertionError(f"{module.__name__}: hasattr (line {n.lineno})")
            if n.func.id == "getattr" and len(n.args) == 3:
                # A platform constant, not a source: RUSAGE_THREAD exists on Linux only.
                target = n.args[0]
                assert isinstance(target, ast.Name) and target.id == "resource", n.lineno


def test_every_fixed_value_is_declared() -> None:
    tree = _tree(info)
    fixed: set[str] = set()
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name not in NO_SHELL_FUNCTIONS:
            fixed |= _fixed_fields(fn)
    assert fixed - NO_SOURCE.keys() - FIXED_FACTS.keys() == set()
    # The persistence shell prints a few fixed values too: declared the same way.
    shell = next(
        n
        for n in ast.walk(_tree(persist))
        if isinstance(n, ast.FunctionDef) and n.name == "info_fields"
    )
    assert _fixed_fields(shell) - NO_SOURCE.keys() == set()


def test_no_source_fields_print_their_declared_value(h: Harness) -> None:
    fields = _info_fields(info.info_text(h.server, [b"everything"]))
    printed = {name for name in NO_SOURCE if name in fields}
    # Every declared field is printed somewhere (the table does not go stale) ...
    assert printed == NO_SOURCE.keys()
    # ... and prints the declared value; every reason is a sentence.
    for name, (value, reason) in NO_SOURCE.items():
        assert fields[name] == str(value), name
        assert len(reason) > 10, name


def test_fixed_facts_are_printed(h: Harness) -> None:
    fields = _info_fields(info.info_text(h.server, [b"everything"]))
    assert FIXED_FACTS.keys() <= fields.keys()


# -- the gauges' sources -----------------------------------------------------------------------


def test_backlog_held_bytes_counts_what_it_keeps() -> None:
    b = Backlog(16 * 1024, 1)
    assert b.held_bytes == 0
    b.append(b"x" * 1000)
    assert b.held_bytes == b.histlen == 1000
    for _ in range(40):
        b.append(b"y" * 1000)
    # Trimmed to the window; the skipped start of the oldest chunk is still held.
    assert b.histlen == 16 * 1024
    assert b.histlen <= b.held_bytes < b.histlen + CHUNK_BYTES


class _NoAcks:
    def count_acked(self, offset: int) -> int:
        return 0

    def count_facked(self, offset: int) -> int:
        return 0


def test_waiters_count_those_with_a_deadline() -> None:
    w = Waiters()
    assert w.count_with_deadline() == 0
    for client, timeout in ((1, b"0"), (2, b"500")):
        kw: dict[str, Any] = {"now_ms": 0, "is_replica": False, "can_block": True}
        argv = [b"WAIT", b"1", timeout]
        assert w.wait(client, argv, target_offset=10, acks=_NoAcks(), **kw) is None
    assert len(w) == 2
    assert w.count_with_deadline() == 1
