"""Command families; importing this package registers every command in the table.

Each module of this package registers its commands with the ``command`` decorator of
``table``; they are imported here in a fixed (sorted) order, containers before the
modules that add subcommands to them.
"""

import importlib
import pkgutil

_SUPPORT = {"table", "base"}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name not in _SUPPORT:
        importlib.import_module(f"{__name__}.{_info.name}")
