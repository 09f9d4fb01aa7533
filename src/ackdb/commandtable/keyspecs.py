"""Key specifications: where a command's keys are, in Redis's begin-search / find-keys form.

Owns: the key-spec data types and ``key_positions``, which applies a command's specs to
one argv (COMMAND GETKEYS, slot routing). Pure functions of their arguments; never
imports the engine or the handlers.

A spec first finds where its keys begin (``BeginIndex``: a fixed argument; or
``BeginKeyword``: the argument after a keyword, searched forwards from ``startfrom``, or
backwards from the end when it is negative), then which arguments from there are keys
(``FindRange``: up to ``lastkey`` — negative counts from the end — every ``keystep``;
or ``FindKeynum``: an argument counting the keys, then that many keys). Redis 7 "Key
specs" documents the model; the specs themselves are Redis 7's for each command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BeginIndex:
    index: int


@dataclass(frozen=True, slots=True)
class BeginKeyword:
    keyword: str
    startfrom: int


@dataclass(frozen=True, slots=True)
class BeginUnknown:
    """Redis's "unknown" begin-search: the keys cannot be found from the specs (SORT's
    BY / GET / STORE); the command's own function in ``KEYS_FUNCS`` finds them."""


@dataclass(frozen=True, slots=True)
class FindUnknown:
    """Redis's "unknown" find-keys, paired with ``BeginUnknown``."""


@dataclass(frozen=True, slots=True)
class FindRange:
    lastkey: int
    keystep: int = 1
    # With a negative lastkey: 0 takes every argument to the end, N takes 1/N of them.
    limit: int = 0


@dataclass(frozen=True, slots=True)
class FindKeynum:
    keynumidx: int  # the count's position, from where the search began
    firstkey: int  # the first key's position, from where the search began
    keystep: int = 1


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One key spec. ``flags`` are Redis's words in Redis's order: RW/RO/OW/RM, then
    access, update, insert, delete, not_key, incomplete, variable_flags."""

    flags: tuple[str, ...]
    begin: BeginIndex | BeginKeyword | BeginUnknown
    find: FindRange | FindKeynum | FindUnknown
    notes: str = ""


def spec(
    flags: str,
    begin: BeginIndex | BeginKeyword | BeginUnknown,
    find: FindRange | FindKeynum | FindUnknown,
    notes: str = "",
) -> KeySpec:
    """A ``KeySpec`` with its flags written as one space-separated string."""
    return KeySpec(tuple(flags.split()), begin, find, notes)


def _begin(begin: BeginIndex | BeginKeyword | BeginUnknown, argv: list[bytes]) -> int:
    """Where the keys start, or 0 when the keyword is absent (0 is never a key: the name)."""
    if isinstance(begin, BeginIndex):
        return begin.index
    if isinstance(begin, BeginUnknown):
        return 0
    word = begin.keyword.lower().encode()
    n = len(argv)
    if begin.startfrom >= 0:
        candidates = range(begin.startfrom, n)
    else:
        candidates = range(n + begin.startfrom, 0, -1)
    for i in candidates:
        if argv[i].lower() == word:
            return i + 1
    return 0


def _count(arg: bytes) -> int | None:
    return int(arg) if arg.isdigit() else None


def spec_positions(ks: KeySpec, argv: list[bytes]) -> list[int]:
    """The indexes of ``argv`` that ``ks`` names as keys (none past the end of argv)."""
    n = len(argv)
    first = _begin(ks.begin, argv)
    if first <= 0 or first >= n:
        return []
    find = ks.find
    if isinstance(find, FindUnknown):
        return []
    if isinstance(find, FindRange):
        step = find.keystep
        if find.lastkey >= 0:
            last = first + find.lastkey
        elif find.limit <= 1:
            last = n + find.lastkey
        else:
            last = first + (n - first) // find.limit + find.lastkey
    else:
        at = first + find.keynumidx
        numkeys = _count(argv[at]) if at < n else None
        if not numkeys:
            return []
        step = find.keystep
        first += find.firstkey
        last = first + (numkeys - 1) * step
    return list(range(first, min(last, n - 1) + 1, step))


def key_positions(specs: tuple[KeySpec, ...], argv: list[bytes]) -> list[tuple[int, KeySpec]]:
    """Every key of ``argv`` with the spec that found it, in spec order (Redis's order)."""
    return [(i, ks) for ks in specs for i in spec_positions(ks, argv)]


def _set_flags(argv: list[bytes]) -> tuple[str, ...]:
    """SET: with GET it reads the old value; without, it only overwrites (Redis 7's
    COMMAND GETKEYSANDFLAGS answers)."""
    if any(a.lower() == b"get" for a in argv[3:]):
        return ("RW", "access", "update")
    return ("OW", "update")


def _bitfield_flags(argv: list[bytes]) -> tuple[str, ...]:
    """BITFIELD: read-only while every subcommand is a complete GET or OVERFLOW; a SET,
    an INCRBY or anything malformed makes it a write (Redis's bitfieldGetKeys)."""
    i, n = 2, len(argv)
    while i < n:
        word, left = argv[i].lower(), n - i - 1
        if word == b"get" and left >= 2:
            i += 3
        elif word == b"overflow" and left >= 1:
            i += 2
        else:
            return ("RW", "access", "update")
    return ("RO", "access")


# The flags of a ``variable_flags`` spec for one request, by command name.
VARIABLE_FLAGS: dict[str, Callable[[list[bytes]], tuple[str, ...]]] = {
    "set": _set_flags,
    "bitfield": _bitfield_flags,
}


KeysAndFlags = list[tuple[int, tuple[str, ...]]]


def _sort_keys(argv: list[bytes]) -> KeysAndFlags:
    """SORT: the sorted key, and the last STORE's destination (Redis's sortGetKeys skips
    LIMIT's two arguments and BY's and GET's one)."""
    out: KeysAndFlags = [(1, ("RO", "access"))]
    store = 0
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i, n = 2, len(argv)
    while i < n:
        word = argv[i].lower()
        if word in skip:
            i += skip[word]
        elif word == b"store" and i + 1 < n:
            store = i + 1
        i += 1
    if store:
        out.append((store, ("OW", "update")))
    return out


# Commands whose keys their specs cannot find ("unknown" specs): their keys and flags for
# one request, by command name.
KEYS_FUNCS: dict[str, Callable[[list[bytes]], KeysAndFlags]] = {
    "sort": _sort_keys,
}
