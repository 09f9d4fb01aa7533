"""The timeout argument of the blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
BZPOPMIN, BZPOPMAX, BZMPOP): ``parse_timeout_ms`` and the replies through the server core.

Expected values are redis-server 7.0.15's where 7.0 and 7.2 agree (a timeout rounded up to
whole ms, redis#11688, in 7.0.8); the "out of range" cases are Redis 7.2's (redis#11338:
7.0 lets seconds * 1000 overflow into "timeout is negative", or the deadline wrap and
block forever). Found by tests/compat/test_clients_vs_redis.py.
"""

from __future__ import annotations

import pytest

from ackdb.commands.base import CommandError
from ackdb.commands.lists_blocking import parse_timeout_ms
from conftest import Harness

NOW_MS = 1_700_000_000_000
NOT_A_FLOAT = "ERR timeout is not a float or out of range"
NEGATIVE = "ERR timeout is negative"
OUT_OF_RANGE = "ERR timeout is out of range"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        (b"0", 0),
        (b"-0", 0),
        (b"1", 1000),
        (b"2.5", 2500),
        (b"0.0001", 1),  # rounded up: a positive timeout never means "forever"
        (b"0.001", 1),  # 0.001 * 1000 is just below 1 in long double (redis#11687)
        (b"0.0015", 2),
        (b"0x1p-10", 1),  # strtold's hex floats
        (b"1e-400", 1),  # below DBL_MIN but a long double
        (b"-0.001", 0),  # rounds up to 0: blocks forever in Redis 7.0.15 too
        (b"-1e-400", 0),
        (b"9223372036", 9_223_372_036_000),
    ],
)
def test_timeouts(text: bytes, ms: int) -> None:
    assert parse_timeout_ms(text, NOW_MS) == ms


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b"abc", NOT_A_FLOAT),
        (b"nan", NOT_A_FLOAT),
        (b" 1", NOT_A_FLOAT),
        (b"1 ", NOT_A_FLOAT),
        (b"", NOT_A_FLOAT),
        (b"1e-5000", NOT_A_FLOAT),  # underflows a long double too
        (b"-1", NEGATIVE),
        (b"-0.0011", NEGATIVE),
        (b"-inf", NEGATIVE),  # the x86-64 conversion of -inf is LLONG_MIN
        (b"-1e400", NEGATIVE),
        (b"inf", OUT_OF_RANGE),  # 7.0.15: "timeout is negative"
        (b"1e400", OUT_OF_RANGE),  # a long double; 7.0.15: "timeout is negative"
        (b"9.3e15", OUT_OF_RANGE),  # over LLONG_MAX ms; 7.0.15: "timeout is negative"
        (b"9223372036854775.807", OUT_OF_RANGE),  # LLONG_MAX ms: now + ms overflows
        (b"9223372036854000", OUT_OF_RANGE),  # 7.0.15 blocks forever (wrapped deadline)
    ],
)
def test_timeout_errors(text: bytes, error: str) -> None:
    with pytest.raises(CommandError) as e:
        parse_timeout_ms(text, NOW_MS)
    assert str(e.value) == error


def test_deadline_overflow_depends_on_now() -> None:
    ms = (2**63 - 1) - NOW_MS
    assert parse_timeout_ms(b"%d" % (ms // 1000), NOW_MS) == ms // 1000 * 1000
    with pytest.raises(CommandError, match="out of range"):
        parse_timeout_ms(b"%d" % (ms // 1000 + 1), NOW_MS)


@pytest.mark.parametrize(
    "command",
    [
        ("BLPOP", "k", "{}"),
        ("BRPOP", "k", "{}"),
        ("BLMOVE", "k", "d", "LEFT", "RIGHT", "{}"),
        ("BRPOPLPUSH", "k", "d", "{}"),
        ("BLMPOP", "{}", "1", "k", "LEFT"),
        ("BZPOPMIN", "k", "{}"),
        ("BZPOPMAX", "k", "{}"),
        ("BZMPOP", "{}", "1", "k", "MIN"),
    ],
)
def test_every_blocking_command_parses_its_timeout_alike(
    harness: Harness, command: tuple[str, ...]
) -> None:
    c = harness.client()
    for timeout, reply in (
        ("inf", b"-ERR timeout is out of range\r\n"),
        ("-inf", b"-ERR timeout is negative\r\n"),
        ("x", b"-ERR timeout is not a float or out of range\r\n"),
    ):
        assert harness.run(c, *(a.format(timeout) for a in command)) == reply
    # Inside MULTI a blocking command answers at once, as if its timeout had passed.
    assert harness.run(c, "MULTI") == b"+OK\r\n"
    for timeout in ("-0.001", "1e-400", "0"):
        assert harness.run(c, *(a.format(timeout) for a in command)) == b"+QUEUED\r\n"
    exec_reply = harness.run(c, "EXEC")
    assert exec_reply.startswith(b"*3\r\n") and b"-ERR" not in exec_reply, exec_reply
