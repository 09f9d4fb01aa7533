"""The mypyc build (issue 19): which build the suite runs on, and the module list."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from ackdb.compiled import MODULES, build_kind, is_compiled

ROOT = Path(__file__).resolve().parents[2]


def test_the_suite_runs_on_the_build_it_was_asked_for() -> None:
    """scripts/test.sh runs the suite twice and says which build each run must be on: a
    compiled run that silently fell back to pure Python would prove nothing."""
    expected = os.environ.get("ACKDB_EXPECT_BUILD")
    if not expected:
        pytest.skip("ACKDB_EXPECT_BUILD not set (scripts/test.sh sets it)")
    assert build_kind() == expected


def test_every_compiled_module_is_source_in_the_tree() -> None:
    for name in MODULES:
        spec = importlib.util.find_spec(name)
        assert spec is not None, name
        assert (ROOT / "src" / (name.replace(".", "/") + ".py")).is_file(), name


def test_build_kind_reports_each_module() -> None:
    n = sum(is_compiled(m) for m in MODULES)
    expected = {0: "pure", len(MODULES): "compiled"}.get(n, f"partial ({n}/{len(MODULES)})")
    assert build_kind() == expected
    assert not is_compiled("ackdb.compiled")  # never in the list: setup.py reads it as text
