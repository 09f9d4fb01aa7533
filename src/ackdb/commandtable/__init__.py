"""The command table, importable on its own: every command ackdb has, as data.

Owns: ``TABLE`` — each command's name, arity, flags, group, summary, since, complexity,
argument syntax, legacy first/last/step, ACL categories, key specs (Redis's begin-search /
find-keys form) and command tips, as Redis 7.2's COMMAND INFO / COMMAND DOCS report them —
and ``keys_of`` for slot routing. Sans-IO and handler-free: it never imports the engine,
the command handlers or the server, so a proxy routes with the same table without loading
them. ``ackdb.commands.load_all`` binds the handlers to these entries by name.

The family modules (``strings``, ``zsets``...) hold the entries, one module per module of
``ackdb.commands``; their order here is the order COMMAND and COMMAND LIST report.
"""

from __future__ import annotations

from . import (
    acl,
    bitmaps,
    connection,
    geo,
    hashes,
    hyperloglog,
    introspection,
    keys,
    latency,
    leaderless,
    lists,
    lists_blocking,
    memory,
    persistence,
    pubsub,
    replication,
    scripting,
    server_admin,
    sets,
    sort,
    streams,
    strings,
    zsets,
    zsets_blocking,
)
from .keyspecs import (
    BeginIndex,
    BeginKeyword,
    BeginUnknown,
    FindKeynum,
    FindRange,
    FindUnknown,
    KeySpec,
    spec,
)
from .model import Command, CommandTable, Handler, entry

__all__ = [
    "TABLE",
    "BeginIndex",
    "BeginKeyword",
    "BeginUnknown",
    "Command",
    "CommandTable",
    "FindKeynum",
    "FindRange",
    "FindUnknown",
    "Handler",
    "KeySpec",
    "entry",
    "keys_of",
    "spec",
]

TABLE = CommandTable(
    [
        *acl.ENTRIES,
        *bitmaps.ENTRIES,
        *connection.ENTRIES,
        *geo.ENTRIES,
        *hashes.ENTRIES,
        *hyperloglog.ENTRIES,
        *introspection.ENTRIES,
        *keys.ENTRIES,
        *latency.ENTRIES,
        *leaderless.ENTRIES,
        *lists.ENTRIES,
        *lists_blocking.ENTRIES,
        *memory.ENTRIES,
        *persistence.ENTRIES,
        *pubsub.ENTRIES,
        *replication.ENTRIES,
        *scripting.ENTRIES,
        *server_admin.ENTRIES,
        *sets.ENTRIES,
        *sort.ENTRIES,
        *streams.ENTRIES,
        *strings.ENTRIES,
        *zsets.ENTRIES,
        *zsets_blocking.ENTRIES,
    ]
)


def keys_of(argv: list[bytes]) -> list[bytes]:
    """The keys of one request (``TABLE.keys_of``); LookupError for an unknown command."""
    return TABLE.keys_of(argv)
