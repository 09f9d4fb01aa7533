"""The command table stands alone: importable without the engine, the handlers or the
server (tests/unit/test_layering.py checks its imports; this checks what a process that
loads it alone gets); handlers bind to its entries by name, and a missing or stray handler
is an error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ackdb.commandtable import TABLE, BeginIndex, CommandTable, FindRange, entry, spec


def test_a_proxy_loads_the_table_alone() -> None:
    code = (
        "import sys, ackdb.commandtable as t\n"
        "assert t.keys_of([b'MSET', b'a', b'1', b'b', b'2']) == [b'a', b'b']\n"
        "loaded = [m for m in sys.modules if m.startswith('ackdb.')]\n"
        "assert all(m.startswith('ackdb.commandtable') for m in loaded), loaded\n"
        "assert all(c.handler is None for c in t.TABLE.every())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_every_entry_needing_a_handler_has_one() -> None:
    # ackdb.commands.load_all ran (tests/conftest.py): it checks this too.
    assert TABLE.loaded
    assert TABLE.unbound() == []
    containers = [c.name for c in TABLE.every() if c.container]
    assert containers == [
        "acl", "client", "object", "latency", "module", "memory", "pubsub", "script",
        "function", "config", "slowlog", "xgroup", "xinfo",
    ]  # fmt: skip
    assert all(c.handler is None and c.subcommands for c in TABLE.every() if c.container)


def _small() -> CommandTable:
    return CommandTable(
        [
            entry(
                "get",
                2,
                "readonly fast",
                (1, 1, 1),
                specs=(spec("RO", BeginIndex(1), FindRange(0)),),
            ),
            entry("config", -2, container=True),
            entry("config|get", -3),
        ]
    )


def _handler(c: object, argv: list[bytes]) -> bytes:
    return b"+OK\r\n"


def test_bind_by_name() -> None:
    t = _small()
    assert t.unbound() == ["get", "config|get"]  # a container needs none
    t.bind("get", _handler)
    t.bind("config|get", _handler)
    assert t.unbound() == []
    assert t.get(b"GET") is t.by_fullname("get") and t.commands["get"].handler is _handler
    assert t.plain.get(b"get") is t.commands["get"] and b"config" not in t.plain


def test_bind_errors() -> None:
    t = _small()
    with pytest.raises(LookupError, match="no such command"):
        t.bind("nosuch", _handler)
    with pytest.raises(LookupError, match="no such command"):
        t.bind("config|nosuch", _handler)
    t.bind("get", _handler)
    with pytest.raises(LookupError, match="two handlers"):
        t.bind("get", _handler)


def test_entries_carry_redis_facts() -> None:
    """Spot checks against Redis 7.0.15's COMMAND INFO."""
    set_ = TABLE.commands["set"]
    (ks,) = set_.key_specs
    assert ks.flags == ("RW", "access", "update", "variable_flags")
    assert ks.notes == "RW and ACCESS due to the optional `GET` argument"
    assert TABLE.commands["keys"].tips == (
        "request_policy:all_shards",
        "nondeterministic_output_order",
    )
    assert TABLE.commands["get"].acl == ("@read", "@string", "@fast")
    assert len(TABLE.commands["zunionstore"].key_specs) == 2
