"""The table entries of the hyperloglog commands: data only, Redis 7.2's facts (key specs and
tips as Redis reports them in COMMAND INFO)."""

from __future__ import annotations

from .keyspecs import BeginIndex, FindRange, spec
from .model import Command, entry

ENTRIES: list[Command] = [
    entry(
        "pfadd",
        -2,
        "write denyoom fast",
        (1, 1, 1),
        group="hyperloglog",
        summary="Adds the specified elements to the specified HyperLogLog.",
        since="2.8.9",
        complexity="O(1) to add every element.",
        args="key [element [element ...]]",
        acl="@write @hyperloglog @fast",
        specs=(spec("RW insert", BeginIndex(1), FindRange(0, 1, 0)),),
    ),
    entry(
        "pfcount",
        -2,
        "readonly may_replicate",
        (1, -1, 1),
        group="hyperloglog",
        summary="Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
        since="2.8.9",
        complexity="O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.",
        args="key [key ...]",
        acl="@read @hyperloglog @slow",
        specs=(
            spec(
                "RW access",
                BeginIndex(1),
                FindRange(-1, 1, 0),
                "RW because it may change the internal representation of the key, and propagate to replicas",
            ),
        ),
    ),
    entry(
        "pfmerge",
        -2,
        "write denyoom",
        (1, -1, 1),
        group="hyperloglog",
        summary="Merge N different HyperLogLogs into a single one.",
        since="2.8.9",
        complexity="O(N) to merge N HyperLogLogs, but with high constant times.",
        args="destkey sourcekey [sourcekey ...]",
        acl="@write @hyperloglog @slow",
        specs=(
            spec("RW access insert", BeginIndex(1), FindRange(0, 1, 0)),
            spec("RO access", BeginIndex(2), FindRange(-1, 1, 0)),
        ),
    ),
    entry(
        "pfdebug",
        3,
        "write denyoom admin",
        (2, 2, 1),
        group="hyperloglog",
        summary="Internal commands for debugging HyperLogLog values",
        since="2.8.9",
        complexity="N/A",
        args="subcommand key",
        acl="@write @hyperloglog @admin @slow @dangerous",
        specs=(spec("RW access", BeginIndex(2), FindRange(0, 1, 0)),),
    ),
    entry(
        "pfselftest",
        1,
        "admin",
        (0, 0, 0),
        group="hyperloglog",
        summary="An internal command for testing HyperLogLog values",
        since="2.8.9",
        complexity="N/A",
        args="",
        acl="@hyperloglog @admin @slow @dangerous",
    ),
]
