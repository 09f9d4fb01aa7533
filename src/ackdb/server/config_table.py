"""The directive table of `ackdb server` and how each kind of value is parsed and printed.

Owns: one `Directive` per redis-server 7.2 directive (name, aliases, flags, typed default) and
the codecs that turn directive arguments into typed values, typed values into the text
CONFIG GET prints, and typed values into CONFIG REWRITE lines. Reason texts in `ValueError`s
are Redis 7.2's (`src/config.c`), so the CONFIG layer can pass them through unchanged.

Must never: touch files, sockets or process state (no chdir, no setlocale) -- except
`DirCodec`, which may stat a directory to refuse a missing one, as Redis's chdir would.
It holds no state: codecs are frozen, values are immutable (tuples, frozensets).

Deliberate differences from redis-server 7.2, each for a reason:
- `enable-debug-command` defaults to "local" (Redis: "no"): redis-py's test suite calls DEBUG.
- TLS directives are absent (ackdb has no TLS; Redis built without TLS lists none either).
- `save ""` always clears the save points, also after earlier `save` lines of the same load.
"""

from __future__ import annotations

import enum
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from ackdb.resp.ints import parse_ll_text

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
UINT_MAX = 2**32 - 1
LLONG_MIN, LLONG_MAX = -(2**63), 2**63 - 1
ULLONG_MAX = 2**64 - 1
LONG_MAX = SSIZE_MAX = LLONG_MAX

HZ_MIN, HZ_MAX = 1, 500  # Redis CONFIG_MIN_HZ / CONFIG_MAX_HZ: hz is clamped, not refused.
BIND_ADDRESSES_MAX = 16  # Redis CONFIG_BINDADDR_MAX
HOSTNAME_BYTES_MAX = 256  # Redis NET_HOST_STR_LEN

_KB, _MB, _GB = 1024, 1024**2, 1024**3
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": _KB, "m": 1000**2, "mb": _MB}
_MEMORY_UNITS |= {"g": 1000**3, "gb": _GB}
_MEMORY_RE = re.compile(r"([0-9]*)(.*)", re.DOTALL)
_STRTOLL_RE = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


class Flag(enum.Flag):
    """Redis's per-config flags, as far as ackdb uses them."""

    NONE = 0
    IMMUTABLE = enum.auto()  # CONFIG SET refuses: "can't set immutable config"
    PROTECTED = enum.auto()  # CONFIG SET needs enable-protected-configs
    HIDDEN = enum.auto()  # CONFIG GET lists it only for an exact name, never for a glob
    SENSITIVE = enum.auto()  # the value must be redacted from logs, slowlog and MONITOR
    DENY_LOADING = enum.auto()  # CONFIG SET answers -LOADING while a dataset loads
    MULTI_ARG = enum.auto()  # takes several arguments; CONFIG SET splits its value on " "


# ---------------------------------------------------------------------------------------------
# Number parsing, with the exact acceptance rules of Redis's helpers.


def strtoll_whole(text: str) -> int | None:
    """C `strtoll(s, &end, 10)` with `*end == '\\0'` required; "" and blanks read as 0."""
    if not text.strip(" \t\n\v\f\r"):
        return 0
    if not _STRTOLL_RE.fullmatch(text):
        return None
    return max(LLONG_MIN, min(LLONG_MAX, int(text)))


def parse_memory(text: str) -> int | None:
    """Redis `memtoull`: digits then an optional unit (k=1000, kb=1024, ...), any case."""
    match = _MEMORY_RE.fullmatch(text)
    assert match is not None  # the pattern matches every string
    digits, unit = match.groups()
    multiplier = _MEMORY_UNITS.get(unit.lower())
    if multiplier is None:
        return None
    value = int(digits or "0") * multiplier  # glibc strtoull("") is 0, so "kb" reads as 0
    return value if value <= ULLONG_MAX else None


def format_memory(value: int) -> str:
    """How CONFIG REWRITE writes a byte count: the largest exact gb, mb or kb unit."""
    for unit, size in (("gb", _GB), ("mb", _MB), ("kb", _KB)):
        if value and value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def quote_arg(text: str) -> str:
    """Redis `sdscatrepr`: a double-quoted form that `split_args` reads back unchanged."""
    out = ['"']
    for byte in text.encode("utf-8", "surrogateescape"):
        char = chr(byte)
        if char in '\\"':
            out.append("\\" + char)
        elif char in _REPR_ESCAPES:
            out.append(_REPR_ESCAPES[char])
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)


_REPR_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b"}


def _one(args: Sequence[str]) -> str:
    if len(args) != 1:
        raise ValueError("wrong number of arguments")
    return args[0]


# ---------------------------------------------------------------------------------------------
# Codecs: one per kind of value.

RewriteLines = list[tuple[str, bool]]  # (line, force): force appends the line if it is new


class Codec(Protocol):
    def parse(self, args: Sequence[str], current: Any) -> Any:
        """Typed value for the arguments after the directive name; ValueError(reason)."""
        ...

    def show(self, value: Any) -> str:
        """The text CONFIG GET prints."""
        ...

    def rewrite(self, name: str, value: Any, default: Any) -> RewriteLines:
        """CONFIG REWRITE lines; [] removes every line of this directive."""
        ...


@dataclass(frozen=True, slots=True)
class BoolCodec:
    def parse(self, args: Sequence[str], current: Any) -> bool:
        word = _one(args).lower()
        if word not in ("yes", "no"):
            raise ValueError("argument must be 'yes' or 'no'")
        return word == "yes"

    def show(self, value: bool) -> str:
        return "yes" if value else "no"

    def rewrite(self, name: str, value: bool, default: bool) -> RewriteLines:
        return [(f"{name} {self.show(value)}", value != default)]


@dataclass(frozen=True, slots=True)
class IntCodec:
    """Numbers; `memory` accepts units, `percent` stores N% as -N, `octal` reads base 8."""

    low: int
    high: int
    memory: bool = False
    percent: bool = False
    octal: bool = False
    clamp: tuple[int, int] | None = None

    def parse(self, args: Sequence[str], current: Any) -> int:
        text = _one(args)
        value = self._read(text)
        if value is None:
            raise ValueError(self._parse_error())
        if self.percent and value < 0:
            if value < self.low:
                raise ValueError(f"percentage argument must be less or equal to {-self.low}")
        elif not self.low <= value <= self.high:
            low, high = (f"{self.low:o}", f"{self.high:o}") if self.octal else (self.low, self.high)
            raise ValueError(f"argument must be between {low} and {high} inclusive")
        if self.clamp is not None:
            value = max(self.clamp[0], min(self.clamp[1], value))
        return value

    def _read(self, text: str) -> int | None:
        if self.memory and (value := parse_memory(text)) is not None:
            return value
        if self.percent and len(text) > 1 and text.endswith("%"):
            number = parse_ll_text(text[:-1])
            if number is not None and number >= 0:
                return -number
        if self.octal and re.fullmatch(r"[ \t\n\v\f\r]*[+-]?[0-7]+", text):
            return int(text, 8)
        if not (self.memory or self.percent or self.octal):
            return parse_ll_text(text)
        return None

    def _parse_error(self) -> str:
        if self.memory and self.percent:
            return "argument must be a memory or percent value"
        if self.memory:
            return "argument must be a memory value"
        if self.octal:
            return "argument couldn't be parsed as an octal number"
        return "argument couldn't be parsed into an integer"

    def show(self, value: int) -> str:
        if self.percent and value < 0:
            return f"{-value}%"
        return f"{value:o}" if self.octal else str(value)

    def rewrite(self, name: str, value: int, default: int) -> RewriteLines:
        if self.memory and not (self.percent and value < 0):
            text = format_memory(value)
        else:
            text = self.show(value)
        return [(f"{name} {text}", value != default)]


@dataclass(frozen=True, slots=True)
class EnumCodec:
    """One word of `choices`, any case; `same_as` maps a synonym to the word CONFIG GET shows."""

    choices: tuple[str, ...]
    same_as: dict[str, str] = field(default_factory=dict)

    def parse(self, args: Sequence[str], current: Any) -> str:
        word = _one(args).lower()
        if word not in self.choices:
            raise ValueError(self.error())
        return self.same_as.get(word, word)

    def error(self) -> str:
        return "argument(s) must be one of the following: " + ", ".join(self.choices)

    def show(self, value: str) -> str:
        return value

    def rewrite(self, name: str, value: str, default: str) -> RewriteLines:
        return [(f"{name} {value}", value != default)]


@dataclass(frozen=True, slots=True)
class FlagsCodec:
    """A set of words (shutdown-on-sigint); `choices[0]` is the empty set ("default")."""

    choices: tuple[str, ...]

    def parse(self, args: Sequence[str], current: Any) -> frozenset[str]:
        words = [arg.lower() for arg in args]
        if not words or any(word not in self.choices for word in words):
            raise ValueError("argument(s) must be one of the following: " + ", ".join(self.choices))
        return frozenset(words) - {self.choices[0]}

    def show(self, value: frozenset[str]) -> str:
        return " ".join(word for word in self.choices[1:] if word in value) or self.choices[0]

    def rewrite(self, name: str, value: frozenset[str], default: frozenset[str]) -> RewriteLines:
        return [(f"{name} {self.show(value)}", value != default)]


@dataclass(frozen=True, slots=True)
class StringCodec:
    """Text; `nullable` strings have no default, so an empty one is removed on rewrite."""

    nullable: bool = False
    check: Callable[[str], str | None] | None = None  # returns a reason to refuse

    def parse(self, args: Sequence[str], current: Any) -> str:
        text = _one(args)
        reason = self.check(text) if self.check is not None else None
        if reason is not None:
            raise ValueError(reason)
        return text

    def show(self, value: str) -> str:
        return value

    def rewrite(self, name: str, value: str, default: str) -> RewriteLines:
        if self.nullable and not value:
            return []
        return [(f"{name} {quote_arg(value)}", self.nullable or value != default)]


@dataclass(frozen=True, slots=True)
class DirCodec:
    """The working directory: relative paths resolve against the current one, like chdir."""

    def parse(self, args: Sequence[str], current: Any) -> str:
        text = _one(args)
        path = os.path.join(current or os.getcwd(), text) if text else ""
        if not os.path.isdir(path):
            missing = not path or not os.path.exists(path)
            raise ValueError("No such file or directory" if missing else "Not a directory")
        if not os.access(path, os.X_OK):
            raise ValueError("Permission denied")
        return os.path.realpath(path)

    def show(self, value: str) -> str:
        return value

    def rewrite(self, name: str, value: str, default: str) -> RewriteLines:
        return [(f"{name} {quote_arg(value)}", True)]


@dataclass(frozen=True, slots=True)
class SaveCodec:
    """Snapshot points: pairs of (seconds >= 1, changes >= 0); `save ""` means none."""

    def parse(self, args: Sequence[str], current: Any) -> tuple[tuple[int, int], ...]:
        if list(args) == [""]:
            return ()
        numbers = [strtoll_whole(arg) for arg in args]
        if len(args) % 2 or any(
            n is None or n < (1 if i % 2 == 0 else 0) for i, n in enumerate(numbers)
        ):
            raise ValueError("Invalid save parameters")
        ints = [n for n in numbers if n is not None]
        return tuple(zip(ints[::2], ints[1::2], strict=True))

    def show(self, value: tuple[tuple[int, int], ...]) -> str:
        return " ".join(f"{seconds} {changes}" for seconds, changes in value)

    def rewrite(self, name: str, value: tuple[tuple[int, int], ...], default: Any) -> RewriteLines:
        if not value:
            return [(f'{name} ""', True)]
        return [(f"{name} {seconds} {changes}", True) for seconds, changes in value]


@dataclass(frozen=True, slots=True)
class BindCodec:
    def parse(self, args: Sequence[str], current: Any) -> tuple[str, ...]:
        if len(args) > BIND_ADDRESSES_MAX:
            raise ValueError("Too many bind addresses specified.")
        return () if list(args) == [""] else tuple(args)

    def show(self, value: tuple[str, ...]) -> str:
        return " ".join(value)

    def rewrite(self, name: str, value: tuple[str, ...], default: Any) -> RewriteLines:
        if value == default:
            return []
        return [(f"{name} {' '.join(value) if value else chr(34) * 2}", True)]


@dataclass(frozen=True, slots=True)
class ReplicaofCodec:
    """`host port`, or `no one` for none (typed None)."""

    def parse(self, args: Sequence[str], current: Any) -> tuple[str, int] | None:
        if len(args) != 2:
            raise ValueError("wrong number of arguments")
        host, port_text = args
        if host.lower() == "no" and port_text.lower() == "one":
            return None
        port = strtoll_whole(port_text)
        if port is None or not 0 <= port <= 65535 or not port_text.strip():
            raise ValueError("Invalid master port")
        return (host, port)

    def show(self, value: tuple[str, int] | None) -> str:
        return "" if value is None else f"{value[0]} {value[1]}"

    def rewrite(self, name: str, value: tuple[str, int] | None, default: Any) -> RewriteLines:
        return [] if value is None else [(f"{name} {self.show(value)}", True)]


class ObufLimit(NamedTuple):
    """One client class's output buffer limit; 0 means no limit."""

    hard_bytes: int
    soft_bytes: int
    soft_seconds: int


OBUF_CLASSES = ("normal", "replica", "pubsub")  # CONFIG GET shows "slave" for "replica"
_OBUF_CLASS_NAMES = {"normal": 0, "slave": 1, "replica": 1, "pubsub": 2}


@dataclass(frozen=True, slots=True)
class ObufCodec:
    """`<class> <hard> <soft> <seconds>` groups; classes not named keep their limits."""

    def parse(self, args: Sequence[str], current: Any) -> tuple[ObufLimit, ...]:
        if len(args) % 4:
            raise ValueError("Wrong number of arguments in buffer limit configuration.")
        limits = list(current)
        for i in range(0, len(args), 4):
            index = _OBUF_CLASS_NAMES.get(args[i].lower())
            if index is None:
                raise ValueError("Invalid client class specified in buffer limit configuration.")
            hard, soft = parse_memory(args[i + 1]), parse_memory(args[i + 2])
            seconds = strtoll_whole(args[i + 3])
            if hard is None or soft is None or seconds is None or seconds < 0:
                raise ValueError(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                )
            limits[index] = ObufLimit(hard, soft, seconds)
        return tuple(limits)

    def show(self, value: tuple[ObufLimit, ...]) -> str:
        names = ("normal", "slave", "pubsub")
        return " ".join(f"{n} {h} {s} {sec}" for n, (h, s, sec) in zip(names, value, strict=True))

    def rewrite(self, name: str, value: tuple[ObufLimit, ...], default: Any) -> RewriteLines:
        return [
            (f"{name} {cls} {format_memory(lim[0])} {format_memory(lim[1])} {lim[2]}", lim != d)
            for cls, lim, d in zip(OBUF_CLASSES, value, default, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class OomValuesCodec:
    def parse(self, args: Sequence[str], current: Any) -> tuple[int, ...]:
        if len(args) != 3:
            raise ValueError("wrong number of arguments")
        values = [strtoll_whole(arg) for arg in args]
        if any(v is None or not -2000 <= v <= 2000 for v in values):
            raise ValueError(
                "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
            )
        return tuple(v for v in values if v is not None)

    def show(self, value: tuple[int, ...]) -> str:
        return " ".join(map(str, value))

    def rewrite(self, name: str, value: tuple[int, ...], default: Any) -> RewriteLines:
        return [(f"{name} {self.show(value)}", value != default)]


_NOTIFY_CLASSES = "g$lshzxetd"  # what 'A' stands for, in the order CONFIG GET prints them
_NOTIFY_ALL_CHARS = frozenset(_NOTIFY_CLASSES + "KEmn")


@dataclass(frozen=True, slots=True)
class NotifyCodec:
    """notify-keyspace-events: a set of class characters; 'A' is shorthand for g$lshzxetd."""

    def parse(self, args: Sequence[str], current: Any) -> frozenset[str]:
        text = _one(args)
        if any(char not in _NOTIFY_ALL_CHARS and char != "A" for char in text):
            raise ValueError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
        return frozenset(text.replace("A", _NOTIFY_CLASSES))

    def show(self, value: frozenset[str]) -> str:
        # Redis prints 'n' only when 'A' is not printed (keyspaceEventsFlagsToString).
        if value >= frozenset(_NOTIFY_CLASSES):
            text = "A"
        else:
            text = "".join(char for char in _NOTIFY_CLASSES + "n" if char in value)
        return text + "".join(char for char in "KEm" if char in value)

    def rewrite(self, name: str, value: frozenset[str], default: Any) -> RewriteLines:
        return [(f"{name} {quote_arg(self.show(value))}", bool(value))]


@dataclass(frozen=True, slots=True)
class PercentilesCodec:
    """latency-tracking-info-percentiles: numbers in [0, 100]; `""` means none."""

    def parse(self, args: Sequence[str], current: Any) -> tuple[float, ...]:
        if list(args) == [""]:
            return ()
        values = []
        for arg in args:
            try:
                if not arg or arg != arg.strip() or "_" in arg:
                    raise ValueError
                value = float(arg)
            except ValueError:
                raise ValueError("Invalid latency-tracking-info-percentiles parameters") from None
            if math.isnan(value):
                raise ValueError("Invalid latency-tracking-info-percentiles parameters")
            if not 0.0 <= value <= 100.0:
                raise ValueError(
                    "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                )
            values.append(value)
        return tuple(values)

    def show(self, value: tuple[float, ...]) -> str:
        return " ".join(f"{v:f}".rstrip("0").rstrip(".") for v in value)

    def rewrite(self, name: str, value: tuple[float, ...], default: Any) -> RewriteLines:
        return [(f"{name} {self.show(value) if value else chr(34) * 2}", True)]


# ---------------------------------------------------------------------------------------------
# Validators for string directives (Redis's is_valid functions).


def _basename(what: str, kind: str = "filename") -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        if what != "dbfilename" and not text:
            return f"{what} can't be empty"
        if "/" in text or "\\" in text:
            return f"{what} can't be a path, just a {kind}"
        return None

    return check


def _hostname(text: str) -> str | None:
    if len(text.encode()) >= HOSTNAME_BYTES_MAX:
        return f"Hostnames must be less than {HOSTNAME_BYTES_MAX} characters"
    if not re.fullmatch(r"[A-Za-z0-9.-]*", text):
        return "Hostnames may only contain alphanumeric characters, hyphens or dots"
    return None


_TITLE_VARIABLES = {"title", "listen-addr", "server-mode", "port", "tls-port", "unixsocket"}
_TITLE_VARIABLES.add("config-file")
_TITLE_TOKEN_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|([{}])|[^{}]+")


def _proc_title(text: str) -> str | None:
    """Redis validates by expanding with an empty title: unknown {names} or a blank result fail."""
    expanded = []
    for match in _TITLE_TOKEN_RE.finditer(text):
        variable, stray = match.groups()
        if stray is not None or (variable is not None and variable not in _TITLE_VARIABLES):
            return "template format is invalid or contains unknown variables"
        expanded.append("" if variable == "title" else match.group(0) if variable is None else "x")
    if not "".join(expanded):
        return "template format is invalid or contains unknown variables"
    return None


# ---------------------------------------------------------------------------------------------
# The table.


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    codec: Codec
    default: Any  # typed; None for `dir` means "the working directory at startup"
    flags: Flag = Flag.NONE
    aliases: tuple[str, ...] = ()

    @property
    def mutable(self) -> bool:
        return Flag.IMMUTABLE not in self.flags

    @property
    def multi_arg(self) -> bool:
        return Flag.MULTI_ARG in self.flags


_BOOL, _STR, _NULLSTR = BoolCodec(), StringCodec(), StringCodec(nullable=True)
_I = Flag.IMMUTABLE
_HIDDEN, _SENSITIVE, _MULTI = Flag.HIDDEN, Flag.SENSITIVE, Flag.MULTI_ARG
_SHUTDOWN = FlagsCodec(("default", "save", "nosave", "now", "force"))
_PROTECTED_ACTION = EnumCodec(("no", "yes", "local"))


def _b(name: str, default: bool, flags: Flag = Flag.NONE, alias: str = "") -> Directive:
    return Directive(name, _BOOL, default, flags, (alias,) if alias else ())


def _n(
    name: str,
    default: int,
    low: int,
    high: int,
    flags: Flag = Flag.NONE,
    alias: str = "",
    **kw: Any,
) -> Directive:
    return Directive(name, IntCodec(low, high, **kw), default, flags, (alias,) if alias else ())


def _m(name: str, default: int, low: int, high: int, alias: str = "", **kw: Any) -> Directive:
    return _n(name, default, low, high, alias=alias, memory=True, **kw)


def _e(name: str, default: str, choices: str, flags: Flag = Flag.NONE) -> Directive:
    return Directive(name, EnumCodec(tuple(choices.split())), default, flags)


def _s(name: str, default: str, flags: Flag = Flag.NONE, alias: str = "", **kw: Any) -> Directive:
    codec = StringCodec(**kw) if kw else _STR
    return Directive(name, codec, default, flags, (alias,) if alias else ())


def _ns(name: str, flags: Flag = Flag.NONE, alias: str = "", **kw: Any) -> Directive:
    codec = StringCodec(nullable=True, **kw) if kw else _NULLSTR
    return Directive(name, codec, "", flags, (alias,) if alias else ())


_OBUF_DEFAULT = (
    ObufLimit(0, 0, 0),
    ObufLimit(256 * _MB, 64 * _MB, 60),
    ObufLimit(32 * _MB, 8 * _MB, 60),
)

# Redis 7.2 `src/config.c` static_configs[], without TLS; names, defaults, bounds and flags.
DIRECTIVES: tuple[Directive, ...] = (
    # Booleans.
    _b("rdbchecksum", True, _I),
    _b("daemonize", False, _I),
    _b("io-threads-do-reads", False, _I),
    _b("always-show-logo", False, _I),
    _b("protected-mode", True),
    _b("rdbcompression", True),
    _b("rdb-del-sync-files", False),
    _b("activerehashing", True),
    _b("stop-writes-on-bgsave-error", True),
    _b("set-proc-title", True, _I),
    _b("dynamic-hz", True),
    _b("lazyfree-lazy-eviction", False),
    _b("lazyfree-lazy-expire", False),
    _b("lazyfree-lazy-server-del", False),
    _b("lazyfree-lazy-user-del", False),
    _b("lazyfree-lazy-user-flush", False),
    _b("repl-disable-tcp-nodelay", False),
    _b("repl-diskless-sync", True),
    _b("aof-rewrite-incremental-fsync", True),
    _b("no-appendfsync-on-rewrite", False),
    _b("cluster-require-full-coverage", True),
    _b("rdb-save-incremental-fsync", True),
    _b("aof-load-truncated", True),
    _b("aof-use-rdb-preamble", True),
    _b("aof-timestamp-enabled", False),
    # ackdb (issue 15, docs/fencing.md): a primary writes only under an ACKDB.LEASE.
    _b("ackdb-lease", False),
    # ackdb (docs/performance.md, fifth pass): how long the event loop polls the sockets
    # it just served before it sleeps, in microseconds; 0 never polls.
    _n("ackdb-busy-poll-us", 50, 0, 1000),
    _b("cluster-replica-no-failover", False, alias="cluster-slave-no-failover"),
    _b("replica-lazy-flush", False, alias="slave-lazy-flush"),
    _b("replica-serve-stale-data", True, alias="slave-serve-stale-data"),
    _b("replica-read-only", True, alias="slave-read-only"),
    _b("replica-ignore-maxmemory", True, alias="slave-ignore-maxmemory"),
    _b("jemalloc-bg-thread", True),
    _b("activedefrag", False),
    _b("syslog-enabled", False, _I),
    _b("cluster-enabled", False, _I),
    _b("appendonly", False, Flag.DENY_LOADING),
    _b("cluster-allow-reads-when-down", False),
    _b("cluster-allow-pubsubshard-when-down", True),
    _b("crash-log-enabled", True),
    _b("crash-memcheck-enabled", True),
    _b("use-exit-on-panic", False, _HIDDEN),
    _b("disable-thp", True, _I),
    _b("cluster-allow-replica-migration", True),
    _b("replica-announced", True),
    _b("latency-tracking", True),
    _b("aof-disable-auto-gc", False, _HIDDEN),
    _b("replica-ignore-disk-write-errors", False),
    # Strings.
    _s("aclfile", "", _I),
    _ns("unixsocket", _I),
    _ns("pidfile", _I),
    _ns("replica-announce-ip", alias="slave-announce-ip"),
    _ns("masteruser", _SENSITIVE),
    _ns("cluster-announce-ip"),
    _s("cluster-config-file", "nodes.conf", _I),
    _ns("cluster-announce-hostname", check=_hostname),
    _ns("cluster-announce-human-nodename"),
    _s("syslog-ident", "redis", _I),
    _s("dbfilename", "dump.rdb", Flag.PROTECTED, check=_basename("dbfilename")),
    _s("appendfilename", "appendonly.aof", _I, check=_basename("appendfilename")),
    _s("appenddirname", "appendonlydir", _I, check=_basename("appenddirname", "dirname")),
    _ns("server_cpulist", _I),
    _ns("bio_cpulist", _I),
    _ns("aof_rewrite_cpulist", _I),
    _ns("bgsave_cpulist", _I),
    _s("ignore-warnings", ""),
    _s("proc-title-template", "{title} {listen-addr} {server-mode}", check=_proc_title),
    _ns("bind-source-addr"),
    _s("logfile", "", _I),
    _s("locale-collate", ""),
    _ns("masterauth", _SENSITIVE),
    _ns("requirepass", _SENSITIVE),
    # Enumerations.
    _e("supervised", "no", "upstart systemd auto no", _I),
    _e("syslog-facility", "local0", "user " + " ".join(f"local{i}" for i in range(8)), _I),
    _e("repl-diskless-load", "disabled", "disabled on-empty-db swapdb", Flag.DENY_LOADING),
    _e("loglevel", "notice", "debug verbose notice warning nothing"),
    _e(
        "maxmemory-policy",
        "noeviction",
        "volatile-lru volatile-lfu volatile-random volatile-ttl "
        "allkeys-lru allkeys-lfu allkeys-random noeviction",
    ),
    _e("appendfsync", "everysec", "everysec always no"),
    Directive(
        "oom-score-adj",
        EnumCodec(("no", "yes", "relative", "absolute"), {"relative": "yes"}),
        "no",
    ),
    _e("acl-pubsub-default", "resetchannels", "allchannels resetchannels"),
    _e("sanitize-dump-payload", "no", "no yes clients"),
    Directive("enable-protected-configs", _PROTECTED_ACTION, "no", _I),
    Directive("enable-debug-command", _PROTECTED_ACTION, "local", _I),  # Redis: "no"
    Directive("enable-module-command", _PROTECTED_ACTION, "no", _I),
    _e("cluster-preferred-endpoint-type", "ip", "ip hostname unknown-endpoint"),
    _e("propagation-error-behavior", "ignore", "ignore panic panic-on-replicas"),
    Directive("shutdown-on-sigint", _SHUTDOWN, frozenset(), _MULTI),
    Directive("shutdown-on-sigterm", _SHUTDOWN, frozenset(), _MULTI),
    # Integers.
    _n("databases", 16, 1, INT_MAX, _I),
    _n("port", 6379, 0, 65535),
    _n("io-threads", 1, 1, 128, _I),
    _n("auto-aof-rewrite-percentage", 100, 0, INT_MAX),
    _n("cluster-replica-validity-factor", 10, 0, INT_MAX, alias="cluster-slave-validity-factor"),
    _n("list-max-listpack-size", -2, INT_MIN, INT_MAX, alias="list-max-ziplist-size"),
    _n("tcp-keepalive", 300, 0, INT_MAX),
    _n("cluster-migration-barrier", 1, 0, INT_MAX),
    _n("active-defrag-cycle-min", 1, 1, 99),
    _n("active-defrag-cycle-max", 25, 1, 99),
    _n("active-defrag-threshold-lower", 10, 0, 1000),
    _n("active-defrag-threshold-upper", 100, 0, 1000),
    _n("lfu-log-factor", 10, 0, INT_MAX),
    _n("lfu-decay-time", 1, 0, INT_MAX),
    _n("replica-priority", 100, 0, INT_MAX, alias="slave-priority"),
    _n("repl-diskless-sync-delay", 5, 0, INT_MAX),
    _n("maxmemory-samples", 5, 1, INT_MAX),
    _n("maxmemory-eviction-tenacity", 10, 0, 100),
    _n("timeout", 0, 0, INT_MAX),
    _n("replica-announce-port", 0, 0, 65535, alias="slave-announce-port"),
    _n("tcp-backlog", 511, 0, INT_MAX, _I),
    _n("cluster-port", 0, 0, 65535, _I),
    _n("cluster-announce-bus-port", 0, 0, 65535),
    _n("cluster-announce-port", 0, 0, 65535),
    _n("cluster-announce-tls-port", 0, 0, 65535),
    _n("repl-timeout", 60, 1, INT_MAX),
    _n("repl-ping-replica-period", 10, 1, INT_MAX, alias="repl-ping-slave-period"),
    _n("list-compress-depth", 0, 0, INT_MAX),
    _n("rdb-key-save-delay", 0, INT_MIN, INT_MAX, _HIDDEN),
    _n("key-load-delay", 0, INT_MIN, INT_MAX, _HIDDEN),
    _n("active-expire-effort", 1, 1, 10),
    _n("hz", 10, 0, INT_MAX, clamp=(HZ_MIN, HZ_MAX)),
    _n("min-replicas-to-write", 0, 0, INT_MAX, alias="min-slaves-to-write"),
    _n("min-replicas-max-lag", 10, 0, INT_MAX, alias="min-slaves-max-lag"),
    _n("watchdog-period", 0, 0, INT_MAX, _HIDDEN),
    _n("shutdown-timeout", 10, 0, INT_MAX),
    _n("repl-diskless-sync-max-replicas", 0, 0, INT_MAX),
    _n("maxclients", 10000, 1, UINT_MAX),
    _n("unixsocketperm", 0, 0, 0o777, _I, octal=True),
    _n("socket-mark-id", 0, 0, UINT_MAX, _I),
    _n("active-defrag-max-scan-fields", 1000, 1, LONG_MAX),
    _n("slowlog-max-len", 128, 0, LONG_MAX),
    _n("acllog-max-len", 128, 0, LONG_MAX),
    _n("busy-reply-threshold", 5000, 0, LONG_MAX, alias="lua-time-limit"),
    _n("cluster-node-timeout", 15000, 0, LLONG_MAX),
    _n("slowlog-log-slower-than", 10000, -1, LLONG_MAX),
    _n("latency-monitor-threshold", 0, 0, LLONG_MAX),
    _m("proto-max-bulk-len", 512 * _MB, _MB, LONG_MAX),
    _n("stream-node-max-entries", 100, 0, LLONG_MAX),
    _m("repl-backlog-size", _MB, 1, LLONG_MAX),
    _m("maxmemory", 0, 0, ULLONG_MAX),
    _m("cluster-link-sendbuf-limit", 0, 0, ULLONG_MAX),
    _n("hash-max-listpack-entries", 512, 0, LONG_MAX, alias="hash-max-ziplist-entries"),
    _n("set-max-intset-entries", 512, 0, LONG_MAX),
    _n("set-max-listpack-entries", 128, 0, LONG_MAX),
    _n("set-max-listpack-value", 64, 0, LONG_MAX),
    _n("zset-max-listpack-entries", 128, 0, LONG_MAX, alias="zset-max-ziplist-entries"),
    _m("active-defrag-ignore-bytes", 100 * _MB, 1, LLONG_MAX),
    _m("hash-max-listpack-value", 64, 0, LONG_MAX, alias="hash-max-ziplist-value"),
    _m("stream-node-max-bytes", 4096, 0, LONG_MAX),
    _m("zset-max-listpack-value", 64, 0, LONG_MAX, alias="zset-max-ziplist-value"),
    _m("hll-sparse-max-bytes", 3000, 0, LONG_MAX),
    _n("tracking-table-max-keys", 1000000, 0, LONG_MAX),
    _m("client-query-buffer-limit", _GB, _MB, LONG_MAX),
    _m("maxmemory-clients", 0, -100, SSIZE_MAX, percent=True),
    _n("repl-backlog-ttl", 3600, 0, LONG_MAX),
    _m("auto-aof-rewrite-min-size", 64 * _MB, 0, LLONG_MAX),
    _n("loading-process-events-interval-bytes", 2 * _MB, 1024, INT_MAX, _HIDDEN),
    # Special.
    Directive("dir", DirCodec(), None, Flag.PROTECTED | Flag.DENY_LOADING),
    Directive("save", SaveCodec(), ((3600, 1), (300, 100), (60, 10000)), _MULTI),
    Directive("client-output-buffer-limit", ObufCodec(), _OBUF_DEFAULT, _MULTI),
    Directive("oom-score-adj-values", OomValuesCodec(), (0, 200, 800), _MULTI),
    Directive("notify-keyspace-events", NotifyCodec(), frozenset()),
    Directive("bind", BindCodec(), ("*", "-::*"), _MULTI),
    Directive("replicaof", ReplicaofCodec(), None, _I | _MULTI, ("slaveof",)),
    Directive("latency-tracking-info-percentiles", PercentilesCodec(), (50.0, 99.0, 99.9), _MULTI),
)

# Every name, canonical or alias, to its directive. Lookups lower-case the name first.
BY_NAME: dict[str, Directive] = {}
for _directive in DIRECTIVES:
    for _name in (_directive.name, *_directive.aliases):
        assert _name not in BY_NAME, _name
        BY_NAME[_name] = _directive

# Accepted in a config file and silently ignored, with this many arguments (Redis does too).
DEPRECATED = {"list-max-ziplist-entries": 1, "list-max-ziplist-value": 1}
DEPRECATED["lua-replicate-commands"] = 1
