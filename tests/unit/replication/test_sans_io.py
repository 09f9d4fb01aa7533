"""The replication package is sans-IO: no sockets, files, clocks, threads, subprocesses
or module-level randomness (STYLE.md "Sans-IO cores")."""

from __future__ import annotations

import ast
from pathlib import Path

import ackdb.replication

FORBIDDEN = {
    "socket",
    "asyncio",
    "threading",
    "time",
    "os",
    "select",
    "selectors",
    "subprocess",
    "multiprocessing",
    "io",
    "pathlib",
    "shutil",
    "signal",
    "uvloop",
    "datetime",
}
PACKAGE = Path(ackdb.replication.__file__).parent


def modules() -> list[Path]:
    found = sorted(PACKAGE.glob("*.py"))
    assert len(found) >= 10
    return found


def test_no_io_imports() -> None:
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_randomness_only_through_an_injected_random_instance() -> None:
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "random"
            ):
                assert node.attr == "Random", f"{path.name} uses random.{node.attr}"
