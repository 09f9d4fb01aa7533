"""Script and library headers: ``#!lua flags=no-writes,allow-oom`` and ``#!lua name=lib``.

Owns: parsing a body's first line into flags (EVAL) or a library name (FUNCTION LOAD),
with Redis 7's error texts, and the body Lua compiles (the shebang commented out, so line
numbers stay). Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

# Redis 7's script flags (EVAL shebang and register_function's ``flags``).
NO_WRITES = "no-writes"
ALLOW_OOM = "allow-oom"
ALLOW_STALE = "allow-stale"
NO_CLUSTER = "no-cluster"
ALLOW_CROSS_SLOT = "allow-cross-slot-keys"
FLAGS = (NO_WRITES, ALLOW_OOM, ALLOW_STALE, NO_CLUSTER, ALLOW_CROSS_SLOT)


class HeaderError(ValueError):
    """A header Redis refuses; the message is the error reply's text."""


@dataclass(frozen=True, slots=True)
class ScriptHeader:
    has_shebang: bool  # without one, a script keeps Redis 6's rules (may write)
    flags: frozenset[str]
    body: bytes  # what Lua compiles


def parse_flag_list(
    words: list[str], what: str = "Unexpected flag in script shebang"
) -> frozenset[str]:
    out = set()
    for w in words:
        if not w:
            continue
        if w not in FLAGS:
            raise HeaderError(f"ERR {what}: {w}")
        out.add(w)
    return frozenset(out)


def script_header(code: bytes) -> ScriptHeader:
    """EVAL's body: its shebang's flags, and the body with the shebang commented out."""
    if not code.startswith(b"#!"):
        return ScriptHeader(False, frozenset(), code)
    end = code.find(b"\n")
    line = code[: end if end >= 0 else len(code)].decode("utf-8", "replace")
    parts = line.split(" ")
    if parts[0] != "#!lua":
        raise HeaderError(f"ERR Unexpected engine in script shebang: {parts[0]}")
    flags: frozenset[str] = frozenset()
    for opt in parts[1:]:
        if not opt:
            continue
        if opt.startswith("flags="):
            flags = parse_flag_list(opt[len("flags=") :].split(","))
        else:
            raise HeaderError(f"ERR Unknown lua shebang option: {opt}")
    return ScriptHeader(True, flags, b"--" + code)


@dataclass(frozen=True, slots=True)
class LibraryHeader:
    name: str
    body: bytes


def _valid_name(name: str) -> bool:
    return bool(name) and all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name)


def library_header(code: bytes) -> LibraryHeader:
    """FUNCTION LOAD's header: ``#!<engine> name=<library>``."""
    if not code.startswith(b"#!"):
        raise HeaderError("ERR Missing library metadata")
    end = code.find(b"\n")
    line = code[2 : end if end >= 0 else len(code)].decode("utf-8", "replace")
    parts = line.split(" ")
    engine = parts[0]
    name = None
    for opt in parts[1:]:
        if not opt:
            continue
        if opt.startswith("name="):
            name = opt[len("name=") :]
        else:
            raise HeaderError(f"ERR Invalid metadata value given: {opt}")
    if engine.lower() != "lua":
        raise HeaderError(f"ERR Engine '{engine}' not found")
    if name is None:
        raise HeaderError("ERR Library name was not given")
    if not _valid_name(name):
        raise HeaderError(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must "
            "be at least one character long"
        )
    return LibraryHeader(name, b"--" + code)


def valid_function_name(name: str) -> bool:
    return _valid_name(name)
