"""The command table: every command's name, arity, flags, key positions and docs.

Owns: registration (the ``command`` decorator used by each family module), lookup for
dispatch, and the data COMMAND INFO / DOCS / COUNT / LIST / GETKEYS report. The same
entries will drive replication (``write``), routing (key positions) and ACLs (categories).
Never executes anything itself.

Flags are Redis's words: write, readonly, denyoom, admin, pubsub, noscript, blocking,
loading, stale, skip_monitor, skip_slowlog, fast, no_auth, may_replicate, no_mandatory_keys,
no_multi, allow_busy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[Any, list[bytes]], bytes]

# Redis ACL categories implied by flags and groups (used by COMMAND INFO).
_GROUP_CATEGORY = {
    "string": "@string",
    "hash": "@hash",
    "list": "@list",
    "set": "@set",
    "sorted_set": "@sortedset",
    "generic": "@keyspace",
    "connection": "@connection",
    "server": "",
    "transactions": "@transaction",
    "pubsub": "@pubsub",
    "scripting": "@scripting",
}


@dataclass(slots=True, eq=False)
class Command:
    name: str  # lower case; subcommands as "parent|sub"
    handler: Handler | None
    arity: int  # Redis convention: N exact, -N at least N (the name counts)
    flags: frozenset[str]
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    complexity: str = ""
    args_doc: str = ""  # human syntax, e.g. "key value [EX seconds|PX milliseconds]"
    # Movable keys counted by an argument (LMPOP 2 a b LEFT): the index of that count;
    # the keys follow it. 0 when the keys are at fixed positions.
    numkeys_at: int = 0
    extra_acl: tuple[str, ...] = ()  # categories flags and group do not imply
    tips: tuple[str, ...] = ()  # COMMAND INFO tips, e.g. "nondeterministic_output"
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
    # INFO commandstats.
    calls: int = 0
    nsec: int = 0  # time spent, summed in ns on the hot path (INFO shows usec)
    rejected_calls: int = 0
    failed_calls: int = 0

    def __post_init__(self) -> None:
        a = self.arity
        self.argc_min = a if a > 0 else -a
        self.argc_max = a if a > 0 else 1 << 62
        self.monitored = not self.skip_monitor and "admin" not in self.flags

    @property
    def usec(self) -> int:
        return self.nsec // 1000

    @property
    def fullname(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.name

    def acl_categories(self) -> list[str]:
        cats = []
        f = self.flags
        if "write" in f:
            cats.append("@write")
        if "readonly" in f:
            cats.append("@read")
        if "admin" in f:
            cats += ["@admin", "@dangerous"]
        if "fast" in f:
            cats.append("@fast")
        else:
            cats.append("@slow")
        if "blocking" in f:
            cats.append("@blocking")
        cat = _GROUP_CATEGORY.get(self.group, "")
        if cat:
            cats.append(cat)
        cats += [c for c in self.extra_acl if c not in cats]
        return cats

    def key_positions(self, argv: list[bytes]) -> list[int]:
        """Indexes of the key arguments in ``argv`` (COMMAND GETKEYS, routing)."""
        if self.numkeys_at:
            fixed = list(range(1, self.numkeys_at)) if self.first_key > 0 else []
            if len(argv) <= self.numkeys_at or not argv[self.numkeys_at].isdigit():
                return fixed
            n = int(argv[self.numkeys_at])
            start = self.numkeys_at + 1
            return fixed + list(range(start, min(start + n, len(argv))))
        if self.first_key <= 0:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return list(range(self.first_key, min(last, len(argv) - 1) + 1, self.step or 1))


class CommandTable:
    """Lookup by name in any case; top-level commands only (subcommands hang below)."""

    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}
        self._lookup: dict[bytes, Command] = {}
        # The hot path's table: commands without subcommands, by lower- and upper-case
        # name (one dictionary hit decides that no subcommand lookup is needed).
        self.plain: dict[bytes, Command] = {}
        # Set by ``ackdb.commands.load_all`` once every family registered its handlers.
        self.loaded = False

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


TABLE = CommandTable()

_FLAG_ALIASES = {"no-auth": "no_auth", "may-replicate": "may_replicate"}


def command(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    *,
    group: str = "generic",
    summary: str = "",
    since: str = "1.0.0",
    complexity: str = "O(1)",
    args: str = "",
    acl: str = "",
    tips: str = "",
    numkeys: int = 0,
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``name``."""

    def register(fn: Handler) -> Handler:
        fl = frozenset(_FLAG_ALIASES.get(f, f) for f in flags.split())
        TABLE.add(
            Command(
                name=name,
                handler=fn,
                arity=arity,
                flags=fl,
                first_key=keys[0],
                last_key=keys[1],
                step=keys[2],
                group=group,
                summary=summary,
                since=since,
                complexity=complexity,
                args_doc=args,
                numkeys_at=numkeys,
                extra_acl=tuple(acl.split()),
                tips=tuple(tips.split()),
                write="write" in fl,
                no_auth="no_auth" in fl,
                stale_ok="stale" in fl,
                loading_ok="loading" in fl,
                no_multi="no_multi" in fl,
                skip_monitor="skip_monitor" in fl,
                skip_slowlog="skip_slowlog" in fl,
            )
        )
        return fn

    return register


def container(
    name: str,
    flags: str = "",
    *,
    group: str = "server",
    summary: str = "",
    since: str = "1.0.0",
) -> None:
    """Register a command that only dispatches to its subcommands (CONFIG, CLIENT...)."""
    fl = frozenset(_FLAG_ALIASES.get(f, f) for f in flags.split())
    TABLE.add(
        Command(
            name=name,
            handler=None,
            arity=-2,
            flags=fl,
            group=group,
            summary=summary,
            since=since,
            no_auth="no_auth" in fl,
            stale_ok="stale" in fl,
            loading_ok="loading" in fl,
        )
    )
