"""The table entries of scripting and functions (EVAL, SCRIPT, FUNCTION, FCALL): data only,
Redis 7.2's facts (flags, key specs and tips as Redis reports them in COMMAND INFO)."""

from __future__ import annotations

from .keyspecs import BeginIndex, FindKeynum, spec
from .model import Command, entry

_RW_NOTES = "We cannot tell how the keys will be used so we assume the worst, RW and UPDATE"
_RO_NOTES = "We cannot tell how the keys will be used so we assume the worst, RO and ACCESS"
_RW = (spec("RW access update", BeginIndex(2), FindKeynum(0, 1, 1), notes=_RW_NOTES),)
_RW_SHA = (spec("RW access update", BeginIndex(2), FindKeynum(0, 1, 1)),)
_RO = (spec("RO access", BeginIndex(2), FindKeynum(0, 1, 1), notes=_RO_NOTES),)
_RO_SHA = (spec("RO access", BeginIndex(2), FindKeynum(0, 1, 1)),)
_RUN = "noscript stale skip_monitor no_mandatory_keys movablekeys"
_ACL = "@slow @scripting"


def _run(name: str, flags: str, specs: tuple, summary: str, args: str, since: str) -> Command:  # type: ignore[type-arg]
    return entry(
        name,
        -3,
        flags,
        group="scripting",
        summary=summary,
        since=since,
        complexity="Depends on the script that is executed.",
        args=args,
        acl=_ACL,
        specs=specs,
    )


def _sub(name: str, arity: int, flags: str, summary: str, args: str = "", **kw: str) -> Command:
    acl = "@write @slow @scripting" if "write" in flags.split() else _ACL
    return entry(
        name,
        arity,
        flags,
        group="scripting",
        summary=summary,
        since=kw.get("since", "7.0.0"),
        complexity=kw.get("complexity", "O(1)"),
        args=args,
        acl=acl,
        tips=kw.get("tips", ""),
    )


_ALL_SHARDS_OK = "request_policy:all_shards response_policy:all_succeeded"
_ALL_NODES_OK = "request_policy:all_nodes response_policy:all_succeeded"
_ONE_OK = "request_policy:all_shards response_policy:one_succeeded"

ENTRIES: list[Command] = [
    _run(
        "eval",
        _RUN,
        _RW,
        "Executes a server-side Lua script.",
        "script numkeys [key [key ...]] [arg [arg ...]]",
        "2.6.0",
    ),
    _run(
        "evalsha",
        _RUN,
        _RW_SHA,
        "Executes a server-side Lua script by SHA1 digest.",
        "sha1 numkeys [key [key ...]] [arg [arg ...]]",
        "2.6.0",
    ),
    _run(
        "eval_ro",
        "readonly " + _RUN,
        _RO,
        "Executes a read-only server-side Lua script.",
        "script numkeys [key [key ...]] [arg [arg ...]]",
        "7.0.0",
    ),
    _run(
        "evalsha_ro",
        "readonly " + _RUN,
        _RO_SHA,
        "Executes a read-only server-side Lua script by SHA1 digest.",
        "sha1 numkeys [key [key ...]] [arg [arg ...]]",
        "7.0.0",
    ),
    _run(
        "fcall",
        _RUN,
        _RW,
        "Invokes a function.",
        "function numkeys [key [key ...]] [arg [arg ...]]",
        "7.0.0",
    ),
    _run(
        "fcall_ro",
        "readonly " + _RUN,
        _RO,
        "Invokes a read-only function.",
        "function numkeys [key [key ...]] [arg [arg ...]]",
        "7.0.0",
    ),
    entry(
        "script",
        -2,
        group="scripting",
        summary="A container for Lua scripts management commands.",
        since="2.6.0",
        complexity="Depends on subcommand.",
        acl="@slow",
        container=True,
    ),
    _sub(
        "script|debug",
        3,
        "noscript",
        "Sets the debug mode of server-side Lua scripts.",
        "YES|SYNC|NO",
        since="3.2.0",
    ),
    _sub(
        "script|exists",
        -3,
        "noscript",
        "Determines whether server-side Lua scripts exist in the script cache.",
        "sha1 [sha1 ...]",
        since="2.6.0",
        complexity="O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).",
        tips="request_policy:all_shards response_policy:agg_logical_and",
    ),
    _sub(
        "script|flush",
        -2,
        "noscript",
        "Removes all server-side Lua scripts from the script cache.",
        "[ASYNC|SYNC]",
        since="2.6.0",
        complexity="O(N) with N being the number of scripts in cache",
        tips=_ALL_NODES_OK,
    ),
    _sub(
        "script|help",
        2,
        "loading stale",
        "Returns helpful text about the different subcommands.",
        since="5.0.0",
    ),
    _sub(
        "script|kill",
        2,
        "noscript allow_busy",
        "Terminates a server-side Lua script during execution.",
        since="2.6.0",
        tips=_ONE_OK,
    ),
    _sub(
        "script|load",
        3,
        "noscript stale",
        "Loads a server-side Lua script to the script cache.",
        "script",
        since="2.6.0",
        complexity="O(N) with N being the length in bytes of the script body.",
        tips=_ALL_NODES_OK,
    ),
    entry(
        "function",
        -2,
        group="scripting",
        summary="A container for function commands.",
        since="7.0.0",
        complexity="Depends on subcommand.",
        acl="@slow",
        container=True,
    ),
    _sub(
        "function|delete",
        3,
        "write noscript",
        "Deletes a library and its functions.",
        "library-name",
        tips=_ALL_SHARDS_OK,
    ),
    _sub(
        "function|dump",
        2,
        "noscript",
        "Dumps all libraries into a serialized binary payload.",
        complexity="O(N) where N is the number of functions",
    ),
    _sub(
        "function|flush",
        -2,
        "write noscript",
        "Deletes all libraries and functions.",
        "[ASYNC|SYNC]",
        complexity="O(N) where N is the number of functions deleted",
        tips=_ALL_SHARDS_OK,
    ),
    _sub(
        "function|help", 2, "loading stale", "Returns helpful text about the different subcommands."
    ),
    _sub(
        "function|kill",
        2,
        "noscript allow_busy",
        "Terminates a function during execution.",
        tips=_ONE_OK,
    ),
    _sub(
        "function|list",
        -2,
        "noscript",
        "Returns information about all libraries.",
        "[LIBRARYNAME library-name-pattern] [WITHCODE]",
        complexity="O(N) where N is the number of functions",
        tips="nondeterministic_output_order",
    ),
    _sub(
        "function|load",
        -3,
        "write denyoom noscript",
        "Creates a library.",
        "[REPLACE] function-code",
        complexity="O(1) (considering compilation time is redundant)",
        tips=_ALL_SHARDS_OK,
    ),
    _sub(
        "function|restore",
        -3,
        "write denyoom noscript",
        "Restores all libraries from a payload.",
        "serialized-value [FLUSH|APPEND|REPLACE]",
        complexity="O(N) where N is the number of functions on the payload",
        tips=_ALL_SHARDS_OK,
    ),
    _sub(
        "function|stats",
        2,
        "noscript allow_busy",
        "Returns information about a function during execution.",
        tips="nondeterministic_output request_policy:all_shards response_policy:special",
    ),
]
