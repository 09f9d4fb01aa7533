"""The command table's hot-path copies agree with what they are copied from: the table
of commands without subcommands, arity as bounds, and the MONITOR flag; each engine's
dispatch entries mirror the table and count calls for that engine only."""

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


def _commandstats(h: Harness) -> dict[str, str]:
    reply = h.run(h.client(), "INFO", "commandstats").split(b"\r\n", 1)[1]
    lines = [x for x in reply.decode().splitlines() if x.startswith("cmdstat_")]
    return dict(x.split(":", 1) for x in lines)


def test_each_engine_counts_its_own_calls() -> None:
    """Two engines in one process (the simulator runs several) share the table's data,
    never its counters: calls, rejections, failures and CONFIG RESETSTAT stay per engine."""
    a, b = Harness(), Harness()
    ca, cb = a.client(), b.client()
    a.run(ca, "SET", "k", "v")
    a.run(ca, "SET", "k", "v")
    a.run(ca, "INCR", "k")  # failed
    a.run(ca, "GET")  # rejected
    b.run(cb, "CONFIG", "GET", "hz")
    sa, sb = _commandstats(a), _commandstats(b)
    assert sa["cmdstat_set"].startswith("calls=2,")
    assert sa["cmdstat_incr"].endswith("failed_calls=1")
    assert sa["cmdstat_get"].startswith("calls=0,usec=0,usec_per_call=0.00,rejected_calls=1")
    assert "cmdstat_set" not in sb and "cmdstat_config|get" not in sa
    assert sb["cmdstat_config|get"].startswith("calls=1,")
    a.run(ca, "CONFIG", "RESETSTAT")
    assert "cmdstat_set" not in _commandstats(a)
    assert _commandstats(b)["cmdstat_config|get"].startswith("calls=")
    assert a.server.dispatch.get(b"set") is not b.server.dispatch.get(b"set")
    assert TABLE.commands["set"] is a.server.dispatch.get(b"set").spec  # type: ignore[union-attr]


def test_engine_entries_mirror_the_table() -> None:
    """The engine's hot-path dictionary holds the same names as the table's, each entry
    with the table's handler and bounds (one dictionary hit per command, as before)."""
    s = Harness().server
    assert set(s._plain) == set(TABLE.plain)
    for name, e in s._plain.items():
        cmd = TABLE.plain[name]
        assert e.spec is cmd and e.handler is cmd.handler
        assert (e.argc_min, e.argc_max, e.write, e.name) == (
            cmd.argc_min, cmd.argc_max, cmd.write, cmd.name,
        )  # fmt: skip
    config = s.dispatch.get(b"CONFIG")
    assert config is not None and config.subcommands[b"get"].parent is config
