"""The package layering of ackdb, enforced (ARCHITECTURE.md "Intended package layout").

Two rules, one table each:

1. ``ALLOWED``: which units (ackdb's top-level packages and modules; ``commandtable`` is
   the command table, which ARCHITECTURE.md wants importable alone) may import which
   others. The table must be acyclic, so imports only flow downward. Every unit that
   exists under ``src/ackdb`` must be in the table, so a new package gets a deliberate place.
2. ``FORBIDDEN``: what a sans-IO unit (``SANS_IO``) may never import: sockets, event loops,
   threads, clocks, files, processes, signals -- and ``random`` except the ``random.Random``
   class, which a core takes as an injected argument (STYLE.md "Sans-IO cores"). It applies
   to every module that appears under a sans-IO package, including packages not built yet
   (``proxy/``, ``leaderless/``) from their first file. ``SHELL_MODULES`` names
   the few modules inside those packages that are IO shells on purpose, each with its reason.

Imports are read with ``ast`` from the source (nothing is imported): module-level,
function-level (lazy) imports and ``if TYPE_CHECKING:`` imports all count, for both rules.
A type-only import creates no runtime cycle, but it still ties the importer to the other
package's shape, so the table treats it like any import. ``importlib.import_module`` calls
(``commands.load_all``) are not seen; they load modules of the caller's own package only.

Where today's tree departs from the target, the departure is listed in
``KNOWN_VIOLATIONS`` (for rule 1) or ``KNOWN_IO`` (for rule 2): the lists may only shrink.
A listed entry that no longer occurs fails ``test_known_violations_still_occur``: delete it.
docs/architecture.md draws ``ALLOWED``; ``test_architecture_doc_matches_table`` keeps the
drawing and this table in step.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

import ackdb

ROOT = Path(ackdb.__file__).parent
DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"

# unit -> the units it may import (itself and the root ``ackdb`` -- version constants --
# always allowed). Ordered top to bottom; docs/architecture.md draws this table.
ALLOWED: dict[str, frozenset[str]] = {
    "__main__": frozenset({"cli"}),
    "cli": frozenset({"node", "server", "proxy", "coordinator", "persistence", "compiled"}),
    # The mypyc build's module list (setup.py reads it as text): the standard library only.
    "compiled": frozenset(),
    # node/ hosts services (Raft member, shard supervisor, endpoints); shards are
    # processes it starts, so it uses server/ only for shared plumbing (the log).
    "node": frozenset(
        {"server", "proxy", "leaderless", "cluster", "consensus", "acl", "commandtable", "resp"}
    ),
    # coordinator/ is the leaderless endpoint's shell (like proxy/'s shell modules): it
    # runs leaderless/'s cores and plans, and reuses the proxy's topology feed and log.
    "coordinator": frozenset({"proxy", "leaderless", "cluster", "keyspace", "resp"}),
    # sim/ runs the real engine and cores, and the shells' drivers, behind simulated ports.
    "sim": frozenset(
        {
            "server",
            "proxy",
            "leaderless",
            "cluster",
            "engine",
            "commands",
            "commandtable",
            "replication",
            "persistence",
            "consensus",
            "keyspace",
            "resp",
        }
    ),
    "server": frozenset(
        {
            "engine",
            "commands",
            "acl",
            "commandtable",
            "replication",
            "persistence",
            "keyspace",
            "resp",
        }
    ),
    "proxy": frozenset({"cluster", "acl", "commandtable", "resp"}),
    "leaderless": frozenset({"cluster", "keyspace", "resp"}),
    "cluster": frozenset({"consensus"}),
    # Command families call the engine (clients, blocking, errors); never the shell.
    # (cluster: the leaderless replicas check writes with cluster/schema.py, the one check
    # the coordinators run too.)
    "commands": frozenset(
        {"engine", "acl", "commandtable", "scripting", "cluster", "keyspace", "resp"}
    ),
    # The Lua state, its sandbox and libraries, conversions, function libraries: run by
    # the command families through a bridge; never the engine itself.
    "scripting": frozenset({"resp"}),
    # The engine runs commands through the table and reaches replication and persistence
    # through typed ports (their value types and cores; never their shells).
    "engine": frozenset({"acl", "commandtable", "replication", "persistence", "keyspace", "resp"}),
    # ACL users, rules and checks: the engine and the endpoint both check with them.
    "acl": frozenset({"commandtable", "keyspace"}),
    "commandtable": frozenset(),
    "replication": frozenset({"resp"}),
    "persistence": frozenset({"keyspace", "resp"}),
    "consensus": frozenset(),
    # Redis's number rules (string2ll) have one home, resp.ints; keyspace reads them.
    "keyspace": frozenset({"resp"}),
    "resp": frozenset(),
}
# Units of the target layout that have no file yet (docs/architecture.md marks them).
NOT_BUILT: frozenset[str] = frozenset()

# Units whose every module must be sans-IO (ARCHITECTURE.md "sans-IO cores"). The engine
# runs the command families, so they are held to the engine's rule.
SANS_IO = frozenset(
    {
        "acl",
        "resp",
        "keyspace",
        "consensus",
        "replication",
        "persistence",
        "cluster",
        "proxy",
        "leaderless",
        "engine",
        "commands",
        "commandtable",
        "scripting",
        "sim",
    }
)
FORBIDDEN = frozenset(
    {
        "socket",
        "ssl",
        "asyncio",
        "uvloop",
        "threading",
        "multiprocessing",
        "concurrent",
        "subprocess",
        "signal",
        "select",
        "selectors",
        "time",
        "datetime",
        "os",
        "io",
        "pathlib",
        "shutil",
        "tempfile",
        "mmap",
        "fcntl",
        "logging",
        # Never pickle what crosses a socket or lands on disk (STYLE.md).
        "pickle",
        # Randomness from the OS: a core's randomness is an injected random.Random.
        "uuid",
        "secrets",
    }
)
# Stricter rules of single units: unit -> (extra forbidden modules, why).
EXTRA_FORBIDDEN: dict[str, tuple[frozenset[str], str]] = {
    "cluster": (
        frozenset({"random"}),
        "the metadata state machine must apply identically on every node: no randomness",
    ),
}
# Modules inside sans-IO packages that are IO shells on purpose: module -> reason.
SHELL_MODULES: dict[str, str] = {
    "ackdb.persistence.aof": "writes and fsyncs the AOF files; owns the everysec fsync thread",
    "ackdb.persistence.files": "atomic file replacement and directory fsync",
    "ackdb.persistence.child": "forks the BGSAVE / AOF-rewrite child and reads its pipe",
    "ackdb.persistence.check": "the offline check-aof / check-snapshot tools (a CLI)",
    "ackdb.resp.aio": "the asyncio.Protocol shell of the ordered-pipeline front end",
    "ackdb.resp.client": "the RESP client: asyncio and blocking sockets",
    "ackdb.proxy.shell": "the endpoint's asyncio shell: listener, client and shard sockets",
    "ackdb.proxy.shared": "the endpoint's shared shard connections: asyncio sockets",
    "ackdb.proxy.main": "the ackdb proxy process: files, signals, the event loop, the meta feed",
    "ackdb.proxy.log": "the endpoint's log: reads the clock, writes the log file",
}

# Imports of today's tree that break ALLOWED: (importer module, imported module), each
# with a comment saying what removes it. This list only shrinks. (The command families'
# imports of server/ went when the engine moved into engine/.)
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()
# Forbidden imports of today's tree in sans-IO units: (module, forbidden name). Shrinks only.
KNOWN_IO: frozenset[tuple[str, str]] = frozenset(
    {
        # rdb-key-save-delay sleeps per key in the save child; target: the child's driver
        # injects the pause.
        ("ackdb.persistence.dataset", "time"),
    }
)


# -- reading the source ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module (or package), dotted; absolute
    line: int


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["ackdb", *parts])


def unit_of(module: str) -> str:
    """The layering unit of an ackdb module (``ackdb`` itself for the root package)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "ackdb"
    return parts[1]


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


@cache
def all_modules() -> tuple[Path, ...]:
    return tuple(sorted(ROOT.rglob("*.py")))


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imports_of(path: Path, tree: ast.Module | None = None) -> Iterator[Import]:
    """Every import in the module at ``path`` (its source, or ``tree``), at any depth,
    relative ones made absolute."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(tree or parse(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(me, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                # ``from ..commands import table`` imports the module commands.table.
                sub = f"{source}.{alias.name}"
                if source.startswith("ackdb") and _is_module(sub):
                    yield Import(me, sub, node.lineno)
                else:
                    yield Import(me, source, node.lineno)
                    if not source.startswith("ackdb") and source.split(".")[0] == "random":
                        # ``from random import choice``: keep the name for the random rule.
                        yield Import(me, f"random.{alias.name}", node.lineno)


def package_edges() -> dict[tuple[str, str], list[Import]]:
    """(importer module, imported ackdb module) -> where, for imports across units."""
    edges: dict[tuple[str, str], list[Import]] = {}
    for path in all_modules():
        for imp in imports_of(path):
            if imp.target.split(".")[0] != "ackdb":
                continue
            if unit_of(imp.target) in (unit_of(imp.module), "ackdb"):
                continue
            edges.setdefault((imp.module, imp.target), []).append(imp)
    return edges


def _random_misuse(tree: ast.Module) -> list[str]:
    """Uses of ``random.X`` other than the ``random.Random`` class (module-level state)."""
    return [
        f"random.{n.attr} (line {n.lineno})"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id == "random"
        and n.attr != "Random"
    ]


def io_problems(path: Path, tree: ast.Module | None = None) -> set[str]:
    """The forbidden names a sans-IO module uses (``random.choice``, ``time``, ``open`` ...)."""
    unit = unit_of(module_name(path))
    extra = EXTRA_FORBIDDEN.get(unit, (frozenset(), ""))[0]
    tree = tree or parse(path)
    found: set[str] = set()
    imports = list(imports_of(path, tree))
    for imp in imports:
        top = imp.target.split(".")[0]
        if top in FORBIDDEN or top in extra:
            found.add(top)
        elif top == "random" and "." in imp.target and imp.target != "random.Random":
            found.add(imp.target)
    if any(imp.target == "random" for imp in imports):
        found.update(_random_misuse(tree))
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open":
            found.add("open")
    return found


def sans_io_modules() -> list[Path]:
    return [p for p in all_modules() if unit_of(module_name(p)) in SANS_IO]


# -- the table itself ----------------------------------------------------------------------


def layer_order() -> list[str]:
    """The units in an order where every allowed import points later (a topological
    order); fails when ALLOWED has a cycle."""
    order: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(u: str, path: tuple[str, ...]) -> None:
        if u in done:
            return
        assert u not in visiting, f"ALLOWED has a cycle: {' -> '.join((*path, u))}"
        visiting.add(u)
        for v in sorted(ALLOWED[u]):
            visit(v, (*path, u))
        visiting.discard(u)
        done.add(u)
        order.append(u)

    for u in ALLOWED:
        visit(u, ())
    return order[::-1]


def test_allowed_table_is_acyclic_and_closed() -> None:
    for u, deps in ALLOWED.items():
        assert u not in deps, u
        assert deps <= ALLOWED.keys(), (u, deps - ALLOWED.keys())
    assert len(layer_order()) == len(ALLOWED)
    assert NOT_BUILT <= ALLOWED.keys() and SANS_IO <= ALLOWED.keys()


def test_every_unit_has_a_place_in_the_table() -> None:
    present = {unit_of(module_name(p)) for p in all_modules()} - {"ackdb"}
    assert present - ALLOWED.keys() == set(), "give the new package a row in ALLOWED"
    # A unit marked not built that now exists: drop it from NOT_BUILT (and the doc's mark).
    assert present & NOT_BUILT == set(), f"built now: {sorted(present & NOT_BUILT)}"


def test_imports_flow_downward() -> None:
    bad = []
    for (src, dst), where in sorted(package_edges().items()):
        if unit_of(dst) in ALLOWED[unit_of(src)] or (src, dst) in KNOWN_VIOLATIONS:
            continue
        bad.append(f"{src} (line {where[0].line}) imports {dst}")
    assert not bad, "imports against the layering table:\n" + "\n".join(bad)


def test_sans_io_units_import_no_io() -> None:
    modules = sans_io_modules()
    assert len(modules) >= 60  # the walk found the packages (not vacuous)
    bad = []
    for path in modules:
        name = module_name(path)
        if name in SHELL_MODULES:
            continue
        for what in sorted(io_problems(path)):
            if (name, what) not in KNOWN_IO:
                bad.append(f"{name}: {what}")
    assert not bad, "sans-IO modules using IO, clocks or global randomness:\n" + "\n".join(bad)


def test_known_violations_still_occur() -> None:
    """The lists of known departures only shrink: a fixed one must be deleted from them."""
    edges = package_edges()
    gone = sorted(v for v in KNOWN_VIOLATIONS if v not in edges)
    assert not gone, f"fixed: delete from KNOWN_VIOLATIONS: {gone}"
    allowed_anyway = sorted(v for v in KNOWN_VIOLATIONS if unit_of(v[1]) in ALLOWED[unit_of(v[0])])
    assert not allowed_anyway, f"not a violation: {allowed_anyway}"
    by_name = {module_name(p): p for p in all_modules()}
    gone_io = sorted(
        (m, what) for m, what in KNOWN_IO if m not in by_name or what not in io_problems(by_name[m])
    )
    assert not gone_io, f"fixed: delete from KNOWN_IO: {gone_io}"


def test_shell_modules_exist_and_are_in_sans_io_units() -> None:
    names = {module_name(p) for p in all_modules()}
    for name, reason in SHELL_MODULES.items():
        assert name in names, f"{name} is gone: remove it from SHELL_MODULES"
        assert unit_of(name) in SANS_IO and reason


# -- the checker itself can fail -------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import socket\n", {"socket"}),
        ("def f():\n    import time\n    return time.time()\n", {"time"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import asyncio\n", {"asyncio"}),
        ("from os import path\n", {"os"}),
        ("import random\nX = random.random()\n", {"random.random (line 2)"}),
        ("from random import choice\n", {"random.choice"}),
        (
            "import random\n\n\ndef f(rng: random.Random) -> int:\n    return rng.randrange(3)\n",
            set(),
        ),
        ("from random import Random\n", set()),
        ("def f(p):\n    return open(p)\n", {"open"}),
    ],
)
def test_io_rule_catches(source: str, expected: set[str]) -> None:
    # As if the module were the first file of a package not built yet: the rule applies.
    path = ROOT / "proxy" / "probe.py"
    assert io_problems(path, ast.parse(source)) == expected


def test_extra_rule_forbids_random_in_cluster() -> None:
    path = ROOT / "cluster" / "probe.py"
    assert io_problems(path, ast.parse("from random import Random\n")) == {"random"}


def test_layering_rule_catches_an_upward_import() -> None:
    path = ROOT / "keyspace" / "probe.py"
    tree = ast.parse("def f():\n    from ..server import node\n")
    (imp,) = imports_of(path, tree)
    assert imp == Import("ackdb.keyspace.probe", "ackdb.server.node", 2)
    assert unit_of(imp.target) not in ALLOWED[unit_of(imp.module)]


# -- docs/architecture.md draws the same table ---------------------------------------------

_DOC_START = "<!-- layering-table:start -->"
_DOC_END = "<!-- layering-table:end -->"


def doc_table() -> dict[str, frozenset[str]]:
    text = DOC.read_text()
    body = text[text.index(_DOC_START) + len(_DOC_START) : text.index(_DOC_END)]
    table: dict[str, frozenset[str]] = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        unit = cells[0].strip("`").rstrip("/").removesuffix(".py")
        table[unit] = frozenset(re.findall(r"`([^`]+?)/?`", cells[1]))
    return table


def test_architecture_doc_matches_table() -> None:
    assert doc_table() == ALLOWED
