"""The consensus package is sans-IO (ARCHITECTURE.md): it imports no module that does IO,
reads clocks or holds global randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import ackdb.consensus

FORBIDDEN = {
    "socket",
    "asyncio",
    "time",
    "threading",
    "os",
    "io",
    "pathlib",
    "select",
    "subprocess",
    "datetime",
    "selectors",
    "pickle",
    "shutil",
    "tempfile",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_consensus_imports_nothing_that_does_io() -> None:
    pkg = Path(ackdb.consensus.__file__).parent
    files = sorted(pkg.glob("*.py"))
    assert len(files) >= 8
    for f in files:
        bad = _imports(f) & FORBIDDEN
        assert not bad, f"{f.name} imports {bad}"


def test_randomness_is_injected_not_global() -> None:
    pkg = Path(ackdb.consensus.__file__).parent
    for f in sorted(pkg.glob("*.py")):
        text = f.read_text()
        # ``random`` may appear only as a type (random.Random) handed in by the shell.
        for line in text.splitlines():
            if "random." in line and "random.Random" not in line:
                raise AssertionError(f"{f.name}: {line.strip()}")
