"""The cluster package is sans-IO (ARCHITECTURE.md): it imports nothing that does IO,
reads clocks or draws random numbers -- the metadata must apply identically everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import ackdb.cluster

FORBIDDEN = {
    "socket", "asyncio", "time", "threading", "os", "io", "pathlib", "select",
    "subprocess", "datetime", "selectors", "pickle", "shutil", "tempfile", "random",
    "uuid", "secrets",
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_cluster_imports_nothing_that_does_io() -> None:
    files = sorted(Path(ackdb.cluster.__file__).parent.glob("*.py"))
    assert len(files) >= 3
    for f in files:
        bad = _imports(f) & FORBIDDEN
        assert not bad, f"{f.name} imports {bad}"
