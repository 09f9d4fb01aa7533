"""The command table's entries and the table itself.

Owns: ``Command`` (one command's or subcommand's metadata: arity, flags, group, docs,
legacy key positions, key specs, ACL categories, tips), ``CommandTable`` (lookup by
name in any case, the hot path's plain-name dictionary, key extraction) and the binding
of handlers by name. Never runs a command and never imports the engine or the handlers:
a proxy or router loads this table alone; ``ackdb.commands.load_all`` binds handlers.

Flags are Redis's words: write, readonly, denyoom, admin, pubsub, noscript, blocking,
loading, stale, skip_monitor, skip_slowlog, fast, no_auth, may_replicate, no_mandatory_keys,
no_multi, allow_busy, movablekeys, no_async_loading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .keyspecs import KEYS_FUNCS, VARIABLE_FLAGS, KeysAndFlags, KeySpec, key_positions

# What a handler is to this table: called with (client, argv), returns the encoded reply.
# ``ackdb.commands`` types the client precisely; this package never imports the engine.
Handler = Callable[..., bytes]

_FLAG_ALIASES = {"no-auth": "no_auth", "may-replicate": "may_replicate"}


@dataclass(slots=True, eq=False)
class Command:
    name: str  # lower case; subcommands as "parent|sub"
    arity: int  # Redis convention: N exact, -N at least N (the name counts)
    flags: frozenset[str]
    # Redis's legacy key positions (COMMAND INFO fields 4-6); routing uses ``key_specs``.
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    complexity: str = ""
    args_doc: str = ""  # human syntax, e.g. "key value [EX seconds|PX milliseconds]"
    acl: tuple[str, ...] = ()  # ACL categories in Redis's order, e.g. ("@read", "@fast")
    tips: tuple[str, ...] = ()  # e.g. "nondeterministic_output", "request_policy:all_shards"
    key_specs: tuple[KeySpec, ...] = ()
    # Only dispatches to its subcommands (CONFIG, CLIENT...): needs no handler.
    container: bool = False
    handler: Handler | None = None  # bound by name when the handlers load
    subcommands: dict[bytes, Command] = field(default_factory=dict)
    parent: Command | None = None
    # Hot-path copies of flags.
    write: bool = False
    no_auth: bool = False
    stale_ok: bool = False
    loading_ok: bool = False
    no_multi: bool = False
    skip_monitor: bool = False
    skip_slowlog: bool = False
    monitored: bool = True  # MONITOR shows it (not skip_monitor, not admin)
    # Arity as the bounds of len(argv), for one test on the hot path.
    argc_min: int = 0
    argc_max: int = 0
    # Finds the keys where the key specs cannot (SORT's STORE): ``keyspecs.KEYS_FUNCS``.
    keys_func: Callable[[list[bytes]], KeysAndFlags] | None = None

    def __post_init__(self) -> None:
        f = self.flags
        a = self.arity
        self.argc_min = a if a > 0 else -a
        self.argc_max = a if a > 0 else 1 << 62
        self.write = "write" in f
        self.no_auth = "no_auth" in f
        self.stale_ok = "stale" in f
        self.loading_ok = "loading" in f
        self.no_multi = "no_multi" in f
        self.skip_monitor = "skip_monitor" in f
        self.skip_slowlog = "skip_slowlog" in f
        self.monitored = not self.skip_monitor and "admin" not in f
        self.keys_func = KEYS_FUNCS.get(self.name)

    def key_positions(self, argv: list[bytes]) -> list[int]:
        """Indexes of the key arguments in ``argv`` (argv[0] is this command's name, or
        the parent's for a subcommand), from the key specs."""
        if self.keys_func is not None:
            return [i for i, _ in self.keys_func(argv)]
        return [i for i, _ in key_positions(self.key_specs, argv)]

    def keys_and_flags(self, argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
        """Each key's index with its flags for this request (COMMAND GETKEYSANDFLAGS):
        its spec's flags, resolved for this argv when the spec says variable_flags."""
        if self.keys_func is not None:
            return self.keys_func(argv)
        out = []
        for i, ks in key_positions(self.key_specs, argv):
            flags = ks.flags
            if "variable_flags" in flags and self.name in VARIABLE_FLAGS:
                flags = VARIABLE_FLAGS[self.name](argv)
            out.append((i, flags))
        return out


def entry(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    *,
    group: str = "generic",
    summary: str = "",
    since: str = "1.0.0",
    complexity: str = "",
    args: str = "",
    acl: str = "",
    tips: str = "",
    specs: tuple[KeySpec, ...] = (),
    container: bool = False,
) -> Command:
    """A ``Command`` written the way the data modules declare it (space-separated words)."""
    return Command(
        name=name,
        arity=arity,
        flags=frozenset(_FLAG_ALIASES.get(f, f) for f in flags.split()),
        first_key=keys[0],
        last_key=keys[1],
        step=keys[2],
        group=group,
        summary=summary,
        since=since,
        complexity=complexity,
        args_doc=args,
        acl=tuple(acl.split()),
        tips=tuple(tips.split()),
        key_specs=specs,
        container=container,
    )


class CommandTable:
    """Lookup by name in any case; top-level commands only (subcommands hang below)."""

    def __init__(self, entries: list[Command] | None = None) -> None:
        self.commands: dict[str, Command] = {}
        self._lookup: dict[bytes, Command] = {}
        # The hot path's table: commands without subcommands, by lower- and upper-case
        # name (one dictionary hit decides that no subcommand lookup is needed).
        self.plain: dict[bytes, Command] = {}
        # Set by ``ackdb.commands.load_all`` once every handler is bound.
        self.loaded = False
        for cmd in entries or ():
            self.add(cmd)

    def add(self, cmd: Command) -> None:
        if "|" in cmd.name:
            parent_name, sub = cmd.name.split("|", 1)
            parent = self.commands[parent_name]
            cmd.parent = parent
            parent.subcommands[sub.encode()] = cmd
            raw = parent_name.encode()
            self.plain.pop(raw, None)
            self.plain.pop(raw.upper(), None)
            return
        self.commands[cmd.name] = cmd
        raw = cmd.name.encode()
        self._lookup[raw] = cmd
        self._lookup[raw.upper()] = cmd
        if not cmd.subcommands:
            self.plain[raw] = cmd
            self.plain[raw.upper()] = cmd

    def get(self, name: bytes) -> Command | None:
        cmd = self._lookup.get(name)
        if cmd is None:
            cmd = self._lookup.get(name.lower())
        return cmd

    def all(self) -> list[Command]:
        return list(self.commands.values())

    def every(self) -> list[Command]:
        """Every command and subcommand, each parent before its subcommands."""
        return [x for cmd in self.commands.values() for x in [cmd, *cmd.subcommands.values()]]

    def by_fullname(self, name: str) -> Command | None:
        """A command by its full name: ``get``, ``config|get`` (lower case)."""
        top, _, sub = name.partition("|")
        cmd = self.commands.get(top)
        if cmd is None or not sub:
            return cmd
        return cmd.subcommands.get(sub.encode())

    def find(self, argv: list[bytes]) -> Command | None:
        """The command ``argv`` calls: a subcommand when the command has them (OBJECT
        ENCODING k, COMMAND INFO); None when unknown."""
        cmd = self.get(argv[0]) if argv else None
        if cmd is not None and cmd.subcommands and len(argv) >= 2:
            return cmd.subcommands.get(argv[1].lower())
        return cmd

    def keys_of(self, argv: list[bytes]) -> list[bytes]:
        """The keys of one request, for slot routing; LookupError for an unknown command."""
        cmd = self.find(argv)
        if cmd is None:
            raise LookupError(f"unknown command {argv[:2]!r}")
        return [argv[i] for i in cmd.key_positions(argv)]

    # -- handlers ------------------------------------------------------------------------

    def bind(self, name: str, fn: Handler) -> None:
        """Make ``fn`` the handler of the command named ``name`` (full name)."""
        cmd = self.by_fullname(name)
        if cmd is None:
            raise LookupError(f"handler {fn.__qualname__} for {name!r}: no such command")
        if cmd.handler is not None:
            raise LookupError(f"{name!r} has two handlers: {cmd.handler.__qualname__}, ...")
        cmd.handler = fn

    def unbound(self) -> list[str]:
        """Commands that need a handler and have none (every one but pure containers)."""
        return [cmd.name for cmd in self.every() if cmd.handler is None and not cmd.container]
