"""Command families. ``load_all()`` binds every command's handler to its table entry.

The table's entries are data in ``ackdb.commandtable``; each module of this package binds
its handlers with the ``handler`` decorator of ``table``; ``load_all`` imports them in a
fixed (sorted) order, then checks that no entry lacks a handler. Whoever builds an engine
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
    from .table import TABLE, check_bound

    check_bound()
    TABLE.loaded = True
