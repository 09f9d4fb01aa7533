"""One engine's view of the command table: its dispatch entries and their call counters.

Owns: ``Entry`` — a table command's hot-path fields copied next to this engine's INFO
commandstats counters (calls, time, rejected and failed calls) — and ``Dispatch``, the
engine's lookup by name, built once from ``ackdb.commandtable.TABLE`` after the handlers
are bound. Two engines in one process (the simulator runs several) each have their own
``Dispatch``, so they never share counters; the shared table stays read-only data.

Lookups cost what the table's did: one dictionary hit for a command without
subcommands (``plain``), and the entry it returns carries the counters, so counting adds
no lookup. Never runs a command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..commandtable import Command, CommandTable

# Latency buckets per command: one per bit length of a duration in ns (< 2^63 ns).
BUCKETS = 64


class Entry:
    """A command as this engine dispatches it, with its counters."""

    __slots__ = (
        "spec",
        "name",
        "handler",
        "arity",
        "flags",
        "argc_min",
        "argc_max",
        "write",
        "no_auth",
        "stale_ok",
        "loading_ok",
        "no_multi",
        "skip_slowlog",
        "monitored",
        "subcommands",
        "parent",
        "hist",
        "nsec",
        "rejected_calls",
        "failed_calls",
    )

    def __init__(self, spec: Command, parent: Entry | None = None) -> None:
        self.spec = spec  # the table's entry: docs, key specs, categories...
        self.name = spec.name
        self.handler: Callable[[Any, list[bytes]], bytes] | None = spec.handler
        self.arity = spec.arity
        self.flags = spec.flags
        self.argc_min = spec.argc_min
        self.argc_max = spec.argc_max
        self.write = spec.write
        self.no_auth = spec.no_auth
        self.stale_ok = spec.stale_ok
        self.loading_ok = spec.loading_ok
        self.no_multi = spec.no_multi
        self.skip_slowlog = spec.skip_slowlog
        self.monitored = spec.monitored
        self.parent = parent
        self.subcommands = {k: Entry(s, self) for k, s in spec.subcommands.items()}
        # INFO commandstats; ``nsec`` is summed in ns on the hot path (INFO shows usec).
        # ``hist`` counts the calls by the bit length of their duration in ns (the
        # latency histogram of engine/cmdlatency.py); the calls are its total.
        self.hist = [0] * BUCKETS
        self.nsec = 0
        self.rejected_calls = 0
        self.failed_calls = 0

    @property
    def calls(self) -> int:
        return sum(self.hist)

    @property
    def usec(self) -> int:
        return self.nsec // 1000

    def reset(self) -> None:
        self.hist = [0] * BUCKETS
        self.nsec = self.rejected_calls = self.failed_calls = 0


class Dispatch:
    """Lookup by name in any case, as ``CommandTable`` does, returning this engine's
    entries; ``plain`` holds the commands without subcommands by name as sent."""

    def __init__(self, table: CommandTable) -> None:
        self.entries = [Entry(cmd) for cmd in table.all()]
        self._lookup: dict[bytes, Entry] = {}
        self.plain: dict[bytes, Entry] = {}
        for e in self.entries:
            raw = e.name.encode()
            for name in (raw, raw.upper()):
                self._lookup[name] = e
                if not e.subcommands:
                    self.plain[name] = e

    def get(self, name: bytes) -> Entry | None:
        e = self._lookup.get(name)
        if e is None:
            e = self._lookup.get(name.lower())
        return e

    def every(self) -> list[Entry]:
        """Every command and subcommand, each parent before its subcommands."""
        return [x for e in self.entries for x in [e, *e.subcommands.values()]]

    def reset(self) -> None:
        for e in self.every():
            e.reset()
