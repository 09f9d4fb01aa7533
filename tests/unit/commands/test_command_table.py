"""The command table's hot-path copies agree with what they are copied from: the table
of commands without subcommands, arity as bounds, and the MONITOR flag."""

from __future__ import annotations

from ackdb.commands.table import TABLE
from conftest import Harness


def test_plain_table_holds_exactly_the_commands_without_subcommands() -> None:
    Harness()  # every command module registered
    for cmd in TABLE.all():
        raw = cmd.name.encode()
        for name in (raw, raw.upper()):
            assert (TABLE.plain.get(name) is cmd) == (not cmd.subcommands), cmd.name
    assert all(not cmd.subcommands for cmd in TABLE.plain.values())


def test_arity_bounds_and_monitor_flag_match_their_sources() -> None:
    Harness()
    for cmd in TABLE.all():
        a = cmd.arity
        for n in range(0, abs(a) + 4):
            redis_rule = (a > 0 and n != a) or n < -a  # Redis: N exact, -N at least N
            assert (n < cmd.argc_min or n > cmd.argc_max) == redis_rule, (cmd.name, n)
        assert cmd.monitored == (not cmd.skip_monitor and "admin" not in cmd.flags)
