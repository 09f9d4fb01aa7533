"""Handler binding: the ``handler`` decorator that ties a function to its table entry.

Owns: binding by name. The entries themselves (arity, flags, key specs, docs...) are data
in ``ackdb.commandtable``, importable without the handlers; a handler names the entry it
serves, and ``ackdb.commands.load_all`` fails when an entry that needs a handler has none
(``bind`` already fails for a handler without an entry, or a second handler). Never
executes anything itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..commandtable import TABLE, Command, CommandTable
from ..engine.client import Client

__all__ = ["TABLE", "Command", "CommandTable", "Handler", "handler", "check_bound"]

# A command handler: the calling client and the request (argv[0] is the command's name);
# returns the encoded reply, raises CommandError for an error reply.
Handler = Callable[[Client, list[bytes]], bytes]
H = TypeVar("H", bound=Handler)


def handler(name: str) -> Callable[[H], H]:
    """Bind the decorated function as the handler of the table entry ``name``."""

    def bind(fn: H) -> H:
        TABLE.bind(name, fn)
        return fn

    return bind


def check_bound() -> None:
    """Every entry that needs a handler has one (pure containers need none)."""
    missing = TABLE.unbound()
    if missing:
        raise LookupError(f"commands without a handler: {', '.join(missing)}")
