"""``ackdb node`` options (ackdb.node.options)."""

from __future__ import annotations

import pytest

from ackdb.node.options import OptionsError, parse_bootstrap, parse_node_args

BASE = ["--id", "n1", "--dir", "d", "--port", "7001", "--cluster-port", "7101"]


def test_defaults_and_addresses() -> None:
    o = parse_node_args(BASE)
    assert (o.node_id, o.data_dir, o.port, o.cluster_port) == ("n1", "d", 7001, 7101)
    assert o.client_addr == "127.0.0.1:7001" and o.cluster_addr == "127.0.0.1:7101"
    assert (o.tick_ms, o.election_ticks, o.election_ms) == (100, 8, 800)
    assert o.join is None and o.bootstrap == ()


def test_bootstrap_and_join() -> None:
    o = parse_node_args([*BASE, "--bootstrap", "n1=127.0.0.1:7101, n2=h:7102"])
    assert o.bootstrap == (("n1", "127.0.0.1:7101"), ("n2", "h:7102"))
    o = parse_node_args([*BASE, "--join", "127.0.0.1:7002", "--advertise-host", "::1"])
    assert o.join == "127.0.0.1:7002" and o.client_addr == "[::1]:7001"
    o = parse_node_args([*BASE, "--bind", "0.0.0.0", "--snapshot-entries", "50"])
    assert o.advertise_host == "127.0.0.1" and o.snapshot_entries == 50


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--bootstrap", "n2=h:1,n3=h:2"], "must list this node"),
        (["--bootstrap", "n1=h:1,n1=h:2"], "listed twice"),
        (["--bootstrap", "n1"], "expected id=host:port"),
        (["--bootstrap", "n1=nohost"], "bad address"),
        (["--bootstrap", ","], "no members"),
        (["--join", "x"], "--join"),
        (["--election-ticks", "1"], "at least 2"),
        (["--tick-ms", "0"], "positive"),
    ],
)
def test_rejections(extra: list[str], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        parse_node_args([*BASE, *extra])


def test_bad_id_and_ports() -> None:
    with pytest.raises(OptionsError, match="invalid node id"):
        parse_node_args(["--id", "n 1", *BASE[2:]])
    with pytest.raises(OptionsError, match="must differ"):
        parse_node_args([*BASE[:6], "--cluster-port", "7001"])
    with pytest.raises(OptionsError, match="between 1 and 65535"):
        parse_node_args([*BASE[:4], "--port", "70000", *BASE[6:]])


def test_usage_errors_exit() -> None:
    with pytest.raises(SystemExit):
        parse_node_args(["--id", "n1"])
    with pytest.raises(SystemExit):
        parse_node_args([*BASE, "--join", "h:1", "--bootstrap", "n1=h:2"])


def test_parse_bootstrap_order_kept() -> None:
    assert [i for i, _ in parse_bootstrap("b=h:1,a=h:2")] == ["b", "a"]
