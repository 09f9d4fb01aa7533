"""Command families. ``load_all()`` registers every command in the table.

Each module of this package registers its commands with the ``command`` decorator of
``table``; ``load_all`` imports them in a fixed (sorted) order. Whoever builds an engine
calls it first (the server shell, the simulator, the tests' conftest); the engine only
checks that it ran, so the engine never imports the handlers that import it.
"""

import importlib
import pkgutil

_SUPPORT = {"table", "base"}
_loaded = False


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name not in _SUPPORT:
            importlib.import_module(f"{__name__}.{info.name}")
    from .table import TABLE

    TABLE.loaded = True
