"""Build hook: compiles ackdb's per-command hot path with mypyc (issue 19; docs/performance.md).

The modules in ``src/ackdb/compiled.py`` (``MODULES``) are turned into C extensions by mypyc
when a wheel is built (``pip install .``). They stay ordinary Python source: the same files
run uncompiled wherever the build cannot compile, and the suite runs on both builds.

``ACKDB_COMPILE``:
- ``auto`` (default): compile for a wheel; an editable install (``pip install -e``) stays
  pure Python, so an edit takes effect without a rebuild. When mypyc or a C compiler is
  missing or fails, the build warns and the package installs as pure Python.
- ``1``: compile, and fail the build when that fails (CI's compiled build).
- ``0``: never compile.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
MODE = os.environ.get("ACKDB_COMPILE", "auto").strip().lower()
STRICT = MODE in ("1", "yes", "true")  # compile, or fail the build


def _modules() -> list[str]:
    """The module list, read from the package without importing it (the build runs
    before ackdb's own dependencies are installed)."""
    ns: dict[str, object] = {}
    exec((HERE / "src" / "ackdb" / "compiled.py").read_text(), ns)
    return list(ns["MODULES"])  # type: ignore[call-overload]


def _warn(msg: str) -> None:
    sys.stderr.write(f"ackdb build: {msg}\n")


def _wanted() -> bool:
    if MODE in ("0", "no", "false"):
        return False
    # Only for the commands that build extensions (not for metadata: egg_info, dist_info).
    if not any(a in ("bdist_wheel", "build", "build_ext", "install") for a in sys.argv):
        return False
    editable = any(a in ("editable_wheel", "develop") for a in sys.argv)
    return STRICT or not editable


def _extensions() -> list[object]:
    if not _wanted():
        return []
    paths = [f"src/{m.replace('.', '/')}.py" for m in _modules()]
    try:
        from mypyc.build import mypycify

        # The build environment has only the build requirements: ackdb's own
        # dependencies (hiredis, msgpack, lupa, uvloop) are typed as Any there.
        return list(mypycify(["--ignore-missing-imports", *paths], opt_level="3"))
    except BaseException as e:  # SystemExit too: mypy reports type errors that way
        if STRICT:
            raise
        _warn(f"mypyc could not translate the hot path ({e!r}); installing pure Python")
        return []


class OptionalBuildExt(build_ext):
    """All or nothing: the mypyc modules share one C library, so when any part fails to
    build, none is installed and the pure-Python source is used."""

    def run(self) -> None:
        # Extensions of an earlier build with another module list would be packaged too.
        for stale in Path(self.build_lib).rglob("*.so"):
            stale.unlink()
        try:
            super().run()
        except Exception as e:
            if STRICT:
                raise
            _warn(f"compiling the hot path failed ({e!r}); installing pure Python")
            for out in self.get_outputs():
                Path(out).unlink(missing_ok=True)
            shutil.rmtree(self.build_temp, ignore_errors=True)
            self.extensions = []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
