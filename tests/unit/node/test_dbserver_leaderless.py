"""The client port's leaderless commands (issue 16): DB.CREATE with TYPE leaderless and
its options (parsed as the sharded ones are, refusals that never reach the log), the
SCHEMA.* commands through the (fake, apply-at-once) log, and the CLIs' argument lists."""

from __future__ import annotations

import pytest
from test_dbserver import Conn, FakeAgent

from ackdb.cluster.databases import DbType, Persistence
from ackdb.cluster.dbtext import parse_info
from ackdb.node import cli_db
from ackdb.node.dbserver import parse_create


def test_parse_create_leaderless() -> None:
    name, o = parse_create(
        [b"DB.CREATE", b"ll", b"type", b"LEADERLESS", b"replication-factor", b"3",
         b"PARTITIONS", b"4", b"READ-CONSISTENCY", b"one", b"WRITE-CONSISTENCY", b"all",
         b"DELETION-STRATEGY", b"deleteonconflict", b"MAX-CLOCK-SKEW-MS", b"200"]
    )  # fmt: skip
    assert name == "ll" and o.type is DbType.LEADERLESS
    assert (o.replication_factor, o.partitions, o.read_consistency, o.write_consistency) == (
        3,
        4,
        "ONE",
        "ALL",
    )
    assert (o.deletion_strategy, o.max_clock_skew_ms) == ("DeleteOnConflict", 200)
    assert o.persistence is Persistence.AOF_ALWAYS  # the leaderless default
    assert (o.hint_bytes_max, o.hint_count_max, o.hint_age_ms_max) == (None, None, None)
    _, o = parse_create(
        [b"DB.CREATE", b"ll", b"TYPE", b"leaderless", b"REPLICATION-FACTOR", b"3",
         b"hint-bytes-max", b"1048576", b"HINT-COUNT-MAX", b"50", b"HINT-AGE-MS-MAX", b"60000"]
    )  # fmt: skip
    assert (o.hint_bytes_max, o.hint_count_max, o.hint_age_ms_max) == (1 << 20, 50, 60_000)
    _, o = parse_create(
        [b"DB.CREATE", b"ll", b"TYPE", b"leaderless", b"REPLICATION-FACTOR", b"1",
         b"PERSISTENCE", b"none"]
    )  # fmt: skip
    assert o.persistence is Persistence.NONE


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["TYPE", "other"], "ERR type must be sharded|leaderless"),
        (["TYPE", "leaderless"], "ERR a leaderless database needs REPLICATION-FACTOR"),
        (["TYPE", "leaderless", "REPLICATION-FACTOR", "x"], "ERR value is not an integer"),
        (["TYPE", "leaderless", "REPLICATION-FACTOR", "2", "SHARDS", "1"], "ERR SHARDS is for"),
        (["TYPE", "leaderless", "REPLICATION-FACTOR", "2", "REPLICATION", "yes"], "ERR REPLICATION"),
        (["TYPE", "leaderless", "REPLICATION-FACTOR", "2", "FAILOVER-GUARANTEE", "wait:1"],
         "ERR FAILOVER-GUARANTEE is for sharded"),
        (["TYPE", "leaderless", "REPLICATION-FACTOR", "2", "READ-CONSISTENCY", "most"],
         "ERR read consistency must be ONE|QUORUM|ALL"),
        (["TYPE", "leaderless", "REPLICATION-FACTOR", "2", "DELETION-STRATEGY", "never"],
         "ERR deletion strategy must be"),
        (["REPLICATION-FACTOR", "2"], "ERR REPLICATION-FACTOR is for leaderless databases"),
        (["SHARDS", "2", "WRITE-CONSISTENCY", "ONE"], "ERR WRITE-CONSISTENCY is for leaderless"),
        (["HINT-COUNT-MAX", "5"], "ERR HINT-COUNT-MAX is for leaderless databases"),
        (["TYPE", "leaderless", "REPLICATION-FACTOR", "2", "HINT-BYTES-MAX", "0"],
         "ERR HINT-BYTES-MAX must be between 1 and"),
        (["TYPE", "leaderless", "REPLICATION-FACTOR", "2", "HINT-AGE-MS-MAX", "-5"],
         "ERR value is not an integer"),
        (["TYPE", "leaderless", "REPLICATION-FACTOR", "2", "HINT-AGE-MS-MAX", "9999999999999"],
         "ERR HINT-AGE-MS-MAX must be between 1 and"),
    ],
)  # fmt: skip
def test_leaderless_argument_errors(args: list[str], error: str) -> None:
    conn = Conn(FakeAgent())
    r = conn.call("DB.CREATE", "ll", *args)
    assert str(r).startswith(error), r
    assert conn.call("DB.LIST") == []


def test_create_info_and_replication_factor_refusal() -> None:
    conn = Conn(FakeAgent())  # two nodes
    r = conn.call("DB.CREATE", "ll", "TYPE", "leaderless", "REPLICATION-FACTOR", "3")
    assert "replication factor 3" in str(r) and "2 active nodes" in str(r)
    text = conn.call("DB.CREATE", "ll", "TYPE", "leaderless", "REPLICATION-FACTOR", "2")
    info = parse_info(text.decode())
    assert info.fields["type"] == "leaderless" and info.fields["replication_factor"] == "2"
    assert info.fields["hint_count_max"] == "100000"
    assert len(info.partitions) == 1 and len(info.partitions[0].replicas) == 2
    assert conn.call("DB.DELETE", "ll") == b"OK"


def test_schema_commands() -> None:
    conn = Conn(FakeAgent())
    conn.call("DB.CREATE", "ll", "TYPE", "leaderless", "REPLICATION-FACTOR", "2")
    conn.call("DB.CREATE", "sh")
    assert conn.call("SCHEMA.GET", "ll") == [0, []]
    assert conn.call("SCHEMA.CREATE", "ll", "users", "user:", "name:string", "age:INT") == 1
    assert conn.call("SCHEMA.ADD", "ll", "users", "score:float") == 2
    assert conn.call("SCHEMA.CREATE", "ll", "tags", "tag:") == 3
    assert conn.call("SCHEMA.GET", "ll") == [
        3,
        [
            [b"users", b"user:", [b"name", b"string", b"age", b"int", b"score", b"float"]],
            [b"tags", b"tag:", []],
        ],
    ]
    assert conn.call("SCHEMA.DROP", "ll", "tags") == 4
    info = parse_info(conn.call("DB.INFO", "ll").decode())
    assert info.fields["schema_version"] == "4" and [n for n, _ in info.collections] == ["users"]
    for args, error in (
        (("SCHEMA.ADD", "ll", "users", "age:int"), "ERR SCHEMA property 'age' is declared twice"),
        (("SCHEMA.ADD", "ll", "users", "agebad"), "ERR SCHEMA property 'agebad' is not name:type"),
        (("SCHEMA.CREATE", "ll", "bad-name", "b:"), "ERR SCHEMA invalid collection name"),
        (("SCHEMA.DROP", "ll", "nope"), "ERR SCHEMA database 'll' has no collection 'nope'"),
        (("SCHEMA.GET", "sh"), "ERR database 'sh' is sharded: only leaderless databases"),
        (("SCHEMA.DROP", "sh", "x"), "ERR database 'sh' is sharded: only leaderless databases"),
        (("SCHEMA.GET", "nope"), "ERR no such database 'nope'"),
        (("SCHEMA.CREATE", "ll", "x"), "ERR wrong number of arguments"),
        (("SCHEMA.DROP", "ll", "x", "y"), "ERR wrong number of arguments"),
    ):
        assert str(conn.call(*args)).startswith(error), (args, conn.call(*args))
    assert conn.call("SCHEMA.GET", "ll")[0] == 4  # the refusals changed nothing


def test_cli_create_arguments() -> None:
    a = cli_db._parser().parse_args(
        ["create", "ll", "--type", "leaderless", "--replication-factor", "3", "--partitions", "2",
         "--read-consistency", "one", "--write-consistency", "ALL",
         "--deletion-strategy", "DeleteOnConflict", "--max-clock-skew-ms", "100",
         "--hint-bytes-max", "4096", "--hint-count-max", "8", "--hint-age-ms-max", "1000"]
    )  # fmt: skip
    args = cli_db._create_args(a)
    _, o = parse_create([w.encode() for w in args])
    assert (o.type, o.replication_factor, o.partitions) == (DbType.LEADERLESS, 3, 2)
    assert (o.read_consistency, o.write_consistency, o.max_clock_skew_ms) == ("ONE", "ALL", 100)
    assert (o.hint_bytes_max, o.hint_count_max, o.hint_age_ms_max) == (4096, 8, 1000)
