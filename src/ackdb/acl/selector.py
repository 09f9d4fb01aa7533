"""One ACL selector: which commands, keys and channels it allows, and the rules that edit it.

Owns: ``Selector`` (Redis 7.0's ``aclSelector``: the set of allowed commands by full name,
the first-argument exceptions, key patterns with their read / write permissions, channel
patterns, and the allcommands / allkeys / allchannels flags), ``apply_rule`` (one rule of
ACL SETUSER that belongs to a selector: ``+get``, ``-@write``, ``~k*``, ``%R~r*``,
``&ch*``, ``allkeys``...) and ``check`` (may this selector run this request?). Pure: the
command table is its only input besides the arguments; never sees a client or a clock.

Redis 7.0 semantics kept on purpose: ``+cmd`` on a command with subcommands allows every
subcommand; a category rule applies to each command and subcommand in the category (a
container in it takes its subcommands along); ``+@all`` also allows future commands (the
``all_future`` bit, which only ``-@all`` clears) and ``-anything`` clears ``allcommands``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..commandtable import TABLE, Command
from ..keyspace.glob import glob_match

READ = 1
WRITE = 2
READ_WRITE = READ | WRITE

# Check results, in Redis's order (a higher one is the more relevant error to report).
OK = 0
DENIED_CMD = 1
DENIED_KEY = 2
DENIED_AUTH = 3
DENIED_CHANNEL = 4

# Redis 7.0's categories in ACL CAT's order.
CATEGORIES = (
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
)

# Commands naming channels (Redis 7.0's getChannelsFromCommand): first channel argument,
# whether every following argument is a channel too, whether they are patterns. Only
# publishing and subscribing are checked (unsubscribing never is).
CHANNEL_ARGS: dict[str, tuple[int, bool, bool]] = {
    "publish": (1, False, False),
    "spublish": (1, False, False),
    "subscribe": (1, True, False),
    "ssubscribe": (1, True, False),
    "psubscribe": (1, True, True),
}


class RuleError(Exception):
    """A rule ACL SETUSER refuses; ``reason`` is Redis's text for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


UNKNOWN = "Unknown command or category name in ACL"
SYNTAX = "Syntax error"
KEYS_AFTER_ALL = (
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
    "have any effect. Try 'resetkeys' to start with an empty list of patterns"
)
CHANNELS_AFTER_ALL = (
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does "
    "not have any effect. Try 'resetchannels' to start with an empty list of channels"
)
SUBCOMMAND_FIRSTARG = "Allowing first-arg of a subcommand is not supported"


def every_command() -> list[Command]:
    """Every command and subcommand, each parent before its subcommands."""
    return TABLE.every()


def in_category(cmd: Command, category: str) -> bool:
    return ("@" + category) in cmd.acl


@dataclass(slots=True, eq=False)
class Selector:
    root: bool = False
    allowed: set[str] = field(default_factory=set)  # full names: get, config|get
    allcommands: bool = False
    all_future: bool = False  # set by +@all only: commands added later are allowed too
    firstargs: dict[str, list[bytes]] = field(default_factory=dict)  # select -> [b"0"]
    patterns: list[tuple[bytes, int]] = field(default_factory=list)  # (pattern, READ|WRITE)
    allkeys: bool = False
    channels: list[bytes] = field(default_factory=list)
    allchannels: bool = False

    def copy(self) -> Selector:
        return Selector(
            self.root,
            set(self.allowed),
            self.allcommands,
            self.all_future,
            {k: list(v) for k, v in self.firstargs.items()},
            list(self.patterns),
            self.allkeys,
            list(self.channels),
            self.allchannels,
        )

    @property
    def unrestricted(self) -> bool:
        """Allows every command on every key and channel: nothing to check."""
        return self.allcommands and self.allkeys and self.allchannels

    # -- commands ------------------------------------------------------------------------

    def _set(self, cmd: Command, allow: bool) -> None:
        """Redis's ACLChangeSelectorPerm: the command and all its subcommands."""
        names = [cmd.name, *(s.name for s in cmd.subcommands.values())]
        for name in names:
            if allow:
                self.allowed.add(name)
            else:
                self.allowed.discard(name)
        if not allow:
            self.allcommands = False
        self.firstargs.pop(cmd.name, None)

    def set_all(self, allow: bool) -> None:
        self.allowed = {c.name for c in every_command()} if allow else set()
        self.allcommands = self.all_future = allow
        self.firstargs = {}

    def set_category(self, category: str, allow: bool) -> None:
        for cmd in every_command():
            if in_category(cmd, category):
                self._set(cmd, allow)

    def allow_command(self, cmd: Command, allow: bool) -> None:
        self._set(cmd, allow)

    def allow_firstarg(self, cmd: Command, arg: bytes) -> None:
        args = self.firstargs.setdefault(cmd.name, [])
        if arg.lower() not in (a.lower() for a in args):
            args.append(arg)

    # -- keys and channels ---------------------------------------------------------------

    def add_key_pattern(self, pattern: bytes, perm: int) -> None:
        if pattern == b"*" and perm == READ_WRITE:
            self.allkeys = True
            self.patterns = []
            return
        for i, (p, f) in enumerate(self.patterns):
            if p == pattern:
                self.patterns[i] = (p, f | perm)
                return
        self.patterns.append((pattern, perm))

    def add_channel(self, pattern: bytes) -> None:
        if pattern == b"*":
            self.allchannels = True
            self.channels = []
        elif pattern not in self.channels:
            self.channels.append(pattern)

    # -- checks --------------------------------------------------------------------------

    def check(self, cmd: Command, argv: list[bytes]) -> tuple[int, int]:
        """(OK or the denial, index of the argument denied) for ``argv`` calling ``cmd``
        (a subcommand when it is one); Redis's ACLSelectorCheckCmd."""
        if not self.allcommands and not cmd.no_auth and cmd.name not in self.allowed:
            args = self.firstargs.get(cmd.name)
            if not args or len(argv) < 2 or argv[1].lower() not in [a.lower() for a in args]:
                return DENIED_CMD, 0
        if not self.allkeys and (cmd.key_specs or cmd.keys_func is not None):
            for idx, flags in cmd.keys_and_flags(argv):
                if not self.key_allowed(argv[idx], key_permission(flags)):
                    return DENIED_KEY, idx
        if not self.allchannels:
            where = CHANNEL_ARGS.get(cmd.name)
            if where is not None:
                first, rest, pattern = where
                last = len(argv) if rest else first + 1
                for idx in range(first, min(last, len(argv))):
                    if not self.channel_allowed(argv[idx], pattern):
                        return DENIED_CHANNEL, idx
        return OK, 0

    def key_allowed(self, key: bytes, perm: int) -> bool:
        if self.allkeys:
            return True
        for pattern, flags in self.patterns:
            if flags & perm == perm and glob_match(pattern, key):
                return True
        return False

    def channel_allowed(self, channel: bytes, is_pattern: bool) -> bool:
        """A pattern subscription must name an allowed pattern literally (Redis)."""
        if self.allchannels:
            return True
        for p in self.channels:
            if (is_pattern and p == channel) or (not is_pattern and glob_match(p, channel)):
                return True
        return False


def key_permission(flags: tuple[str, ...]) -> int:
    """The permissions a key spec's flags need: access reads, insert / delete / update
    write (Redis's ACLSelectorCheckKey); none for a key only looked at (EXISTS)."""
    perm = 0
    for f in flags:
        if f == "access":
            perm |= READ
        elif f in ("insert", "delete", "update"):
            perm |= WRITE
    return perm


def apply_rule(sel: Selector, rule: bytes) -> None:
    """One selector rule (Redis's ACLSetSelector); RuleError when refused."""
    op = rule.decode("utf-8", "surrogateescape")
    low = op.lower()
    if low in ("allkeys", "~*"):
        sel.allkeys = True
        sel.patterns = []
    elif low == "resetkeys":
        sel.allkeys = False
        sel.patterns = []
    elif low in ("allchannels", "&*"):
        sel.add_channel(b"*")
    elif low == "resetchannels":
        sel.allchannels = False
        sel.channels = []
    elif low in ("allcommands", "+@all"):
        sel.set_all(True)
    elif low in ("nocommands", "-@all"):
        sel.set_all(False)
    elif op[:1] in ("~", "%"):
        _key_rule(sel, rule)
    elif op[:1] == "&":
        if sel.allchannels:
            raise RuleError(CHANNELS_AFTER_ALL)
        sel.add_channel(rule[1:])
    elif op[:2] in ("+@", "-@"):
        category = low[2:]
        if category not in CATEGORIES:
            raise RuleError(UNKNOWN)
        sel.set_category(category, op[0] == "+")
    elif op[:1] in ("+", "-"):
        _command_rule(sel, op[0] == "+", op[1:], rule[1:])
    else:
        raise RuleError(SYNTAX)


def _key_rule(sel: Selector, rule: bytes) -> None:
    if sel.allkeys:
        raise RuleError(KEYS_AFTER_ALL)
    perm = READ_WRITE
    offset = 1
    if rule[:1] == b"%":
        # Redis 7.0: %<R|W...>~pattern; a rule ending before its ~ is the empty pattern.
        perm = 0
        offset = len(rule)
        for i in range(1, len(rule)):
            ch = rule[i : i + 1].upper()
            if ch == b"R" and not perm & READ:
                perm |= READ
            elif ch == b"W" and not perm & WRITE:
                perm |= WRITE
            elif ch == b"~":
                offset = i + 1
                break
            else:
                raise RuleError(SYNTAX)
        if not perm:
            raise RuleError(SYNTAX)
    sel.add_key_pattern(rule[offset:], perm)


def _command_rule(sel: Selector, allow: bool, name: str, raw: bytes) -> None:
    if "|" not in name or not allow:
        cmd = TABLE.by_fullname(name.lower())
        if cmd is None:
            raise RuleError(UNKNOWN)
        sel.allow_command(cmd, allow)
        return
    top, _, sub = name.rpartition("|")
    cmd = TABLE.by_fullname(top.lower())
    if cmd is None:
        raise RuleError(UNKNOWN)
    if cmd.parent is not None:
        raise RuleError(SUBCOMMAND_FIRSTARG)
    if not sub:
        raise RuleError(SYNTAX)
    if cmd.subcommands:
        subcmd = cmd.subcommands.get(sub.lower().encode())
        if subcmd is None:
            raise RuleError(UNKNOWN)
        sel.allow_command(subcmd, True)
    else:
        sel.allow_firstarg(cmd, raw.rpartition(b"|")[2])
