"""The table entries of ACL and its subcommands: data only, Redis 7.2's facts (flags, ACL
categories as Redis reports them in COMMAND INFO)."""

from __future__ import annotations

from .model import Command, entry

_ADMIN = "admin noscript loading stale"
_ACL = "@admin @slow @dangerous"


def _sub(
    name: str,
    arity: int,
    flags: str,
    summary: str,
    *,
    complexity: str,
    args: str = "",
    since: str = "6.0.0",
    acl: str = _ACL,
) -> Command:
    return entry(
        "acl|" + name,
        arity,
        flags,
        group="server",
        summary=summary,
        since=since,
        complexity=complexity,
        args=args,
        acl=acl,
    )


ENTRIES: list[Command] = [
    entry(
        "acl",
        -2,
        group="server",
        summary="A container for Access List Control commands.",
        since="6.0.0",
        complexity="Depends on subcommand.",
        acl="@slow",
        container=True,
    ),
    _sub(
        "cat",
        -2,
        "noscript loading stale",
        "Lists the ACL categories, or the commands inside a category.",
        complexity="O(1) since the categories and commands are a fixed set.",
        args="[category]",
        acl="@slow",
    ),
    _sub(
        "deluser",
        -3,
        _ADMIN,
        "Deletes ACL users, and terminates their connections.",
        complexity="O(1) amortized time considering the typical user.",
        args="username [username ...]",
    ),
    _sub(
        "dryrun",
        -4,
        _ADMIN,
        "Simulates the execution of a command by a user, without executing the command.",
        since="7.0.0",
        complexity="O(1).",
        args="username command [arg [arg ...]]",
    ),
    _sub(
        "genpass",
        -2,
        "noscript loading stale",
        "Generates a pseudorandom, secure password that can be used to identify ACL users.",
        complexity="O(1)",
        args="[bits]",
        acl="@slow",
    ),
    _sub(
        "getuser",
        3,
        _ADMIN,
        "Lists the ACL rules of a user.",
        complexity="O(N). Where N is the number of password, command and pattern rules "
        "that the user has.",
        args="username",
    ),
    _sub(
        "help",
        2,
        "loading stale",
        "Returns helpful text about the different subcommands.",
        complexity="O(1)",
        acl="@slow",
    ),
    _sub(
        "list",
        2,
        _ADMIN,
        "Dumps the effective rules in ACL file format.",
        complexity="O(N). Where N is the number of configured users.",
    ),
    _sub(
        "load",
        2,
        _ADMIN,
        "Reloads the rules from the configured ACL file.",
        complexity="O(N). Where N is the number of configured users.",
    ),
    _sub(
        "log",
        -2,
        _ADMIN,
        "Lists recent security events generated due to ACL rules.",
        complexity="O(N) with N being the number of entries shown.",
        args="[count|RESET]",
    ),
    _sub(
        "save",
        2,
        _ADMIN,
        "Saves the effective ACL rules in the configured ACL file.",
        complexity="O(N). Where N is the number of configured users.",
    ),
    _sub(
        "setuser",
        -3,
        _ADMIN,
        "Creates and modifies an ACL user and its rules.",
        complexity="O(N). Where N is the number of rules provided.",
        args="username [rule [rule ...]]",
    ),
    _sub(
        "users",
        2,
        _ADMIN,
        "Lists all ACL users.",
        complexity="O(N). Where N is the number of configured users.",
    ),
    _sub(
        "whoami",
        2,
        "noscript loading stale",
        "Returns the authenticated username of the current connection.",
        complexity="O(1)",
        acl="@slow",
    ),
]
