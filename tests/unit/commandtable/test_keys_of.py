"""keys_of: the keys of a request from the table's key specs (slot routing, COMMAND
GETKEYS). Expected keys are Redis 7's COMMAND GETKEYS answers for the same requests."""

from __future__ import annotations

import pytest

from ackdb.commandtable import (
    TABLE,
    BeginIndex,
    BeginKeyword,
    FindKeynum,
    FindRange,
    keys_of,
    spec,
)
from ackdb.commandtable.keyspecs import spec_positions


def argv(text: str) -> list[bytes]:
    return [w.encode() for w in text.split()]


@pytest.mark.parametrize(
    ("request_", "keys"),
    [
        ("GET k", "k"),
        ("set k v EX 10", "k"),
        ("MSET a 1 b 2 c 3", "a b c"),  # range, step 2
        ("MSETNX a 1 b 2", "a b"),
        ("DEL x y z", "x y z"),
        ("LMOVE src dst LEFT RIGHT", "src dst"),  # two specs, in spec order
        ("RPOPLPUSH src dst", "src dst"),
        ("LMPOP 2 a b LEFT COUNT 3", "a b"),  # keynum at 1
        ("BLMPOP 0 3 a b c RIGHT", "a b c"),  # keynum after the timeout
        ("ZMPOP 1 z MIN", "z"),
        ("BZMPOP 1.5 2 z1 z2 MAX COUNT 2", "z1 z2"),
        ("ZUNIONSTORE dst 2 a b WEIGHTS 1 2", "dst a b"),  # a fixed key, then keynum
        ("ZINTERSTORE dst 1 a", "dst a"),
        ("ZDIFFSTORE dst 2 a b", "dst a b"),
        ("ZUNION 2 a b WITHSCORES", "a b"),
        ("SINTERCARD 2 a b LIMIT 5", "a b"),
        ("ZINTERCARD 3 a b c", "a b c"),
        ("SINTERSTORE dst a b", "dst a b"),
        ("SMOVE src dst m", "src dst"),
        ("COPY src dst DB 1", "src dst"),
        ("BLPOP a b 0", "a b"),  # range to the one before last
        ("ZRANGESTORE dst src 0 -1", "dst src"),
        ("OBJECT ENCODING k", "k"),  # a subcommand's key
        ("EXISTS a", "a"),
        ("PING", ""),
        ("CLIENT LIST", ""),
        ("PUBLISH ch msg", ""),
    ],
)
def test_keys_of_matches_redis_getkeys(request_: str, keys: str) -> None:
    assert keys_of(argv(request_)) == argv(keys)


def test_keys_of_an_unknown_command_is_an_error() -> None:
    with pytest.raises(LookupError):
        keys_of(argv("NOSUCH a"))
    with pytest.raises(LookupError):
        keys_of(argv("OBJECT NOSUCH a"))
    with pytest.raises(LookupError):
        keys_of([])


def test_keynum_that_is_not_a_count_finds_no_keys() -> None:
    assert keys_of(argv("LMPOP x a LEFT")) == []
    assert keys_of(argv("LMPOP -1 a LEFT")) == []
    assert keys_of(argv("ZUNIONSTORE dst x a")) == [b"dst"]


def test_keys_never_run_past_the_request() -> None:
    assert keys_of(argv("LMPOP 5 a b")) == [b"a", b"b"]
    assert keys_of(argv("MSET a 1 b")) == [b"a", b"b"]
    assert keys_of(argv("BLMPOP 0")) == []


# Redis's XREAD-style spec (no command of ackdb needs one yet): the keys follow the keyword
# STREAMS, half of what remains (limit 2); MIGRATE-style: searched backwards from the end.
XREAD = spec("RO access", BeginKeyword("STREAMS", 1), FindRange(-1, 1, 2))
MIGRATE_KEYS = spec("RW access delete incomplete", BeginKeyword("KEYS", -2), FindRange(-1, 1, 0))


def test_keyword_search_forwards() -> None:
    req = argv("XREAD COUNT 2 STREAMS s1 s2 0 0")
    assert spec_positions(XREAD, req) == [4, 5]
    assert spec_positions(XREAD, argv("XREAD streams a $")) == [2]  # any case
    assert spec_positions(XREAD, argv("XREAD COUNT 2")) == []  # no keyword: no keys


def test_keyword_search_backwards() -> None:
    req = argv('MIGRATE host 6379 "" 0 5000 KEYS a b c')
    assert spec_positions(MIGRATE_KEYS, req) == [7, 8, 9]
    assert spec_positions(MIGRATE_KEYS, argv("MIGRATE host 6379 k 0 5000")) == []


def test_range_and_keynum_forms() -> None:
    req = argv("CMD a b c d e")
    assert spec_positions(spec("RO", BeginIndex(1), FindRange(0)), req) == [1]
    assert spec_positions(spec("RO", BeginIndex(2), FindRange(1)), req) == [2, 3]
    assert spec_positions(spec("RO", BeginIndex(1), FindRange(-1, 2)), req) == [1, 3, 5]
    assert spec_positions(spec("RO", BeginIndex(1), FindRange(-2)), req) == [1, 2, 3, 4]
    assert spec_positions(spec("RO", BeginIndex(9), FindRange(0)), req) == []
    counted = argv("CMD x 2 k1 k2 rest")
    assert spec_positions(spec("RO", BeginIndex(2), FindKeynum(0, 1, 1)), counted) == [3, 4]
    pairs = argv("CMD 2 k1 v1 k2 v2")
    assert spec_positions(spec("RW", BeginIndex(1), FindKeynum(0, 1, 2)), pairs) == [2, 4]


def test_legacy_positions_agree_with_key_specs() -> None:
    """first/last/step (COMMAND INFO's legacy fields) name the same keys as the specs for
    every command whose keys do not move (Redis derives one from the other)."""
    for cmd in TABLE.every():
        if "movablekeys" in cmd.flags or cmd.first_key <= 0:
            continue
        for n in range(cmd.argc_min, cmd.argc_min + 6):
            if n > cmd.argc_max:
                break
            req = [cmd.name.split("|")[0].encode()] + [b"a%d" % i for i in range(1, n)]
            last = cmd.last_key if cmd.last_key >= 0 else n + cmd.last_key
            legacy = list(range(cmd.first_key, min(last, n - 1) + 1, cmd.step))
            assert cmd.key_positions(req) == legacy, (cmd.name, n)


def test_variable_flags_are_resolved_per_request() -> None:
    """SET's one spec says variable_flags: GET makes it read (Redis 7 GETKEYSANDFLAGS)."""
    set_ = TABLE.commands["set"]
    assert set_.keys_and_flags(argv("SET k v")) == [(1, ("OW", "update"))]
    assert set_.keys_and_flags(argv("SET k v EX 1 get")) == [(1, ("RW", "access", "update"))]
    assert TABLE.commands["mset"].keys_and_flags(argv("MSET a 1")) == [(1, ("OW", "update"))]
