"""The cluster secret (ackdb.node.secrets): its file, where a node keeps it, the rules of
--bootstrap / --join / --cluster-secret-file (agent.cluster_secret), and `ackdb cluster
secret`."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ackdb.node.agent import cluster_secret
from ackdb.node.cli_cluster import cluster_main
from ackdb.node.options import AgentOptions
from ackdb.node.secrets import (
    SECRET_BYTES,
    MissingSecret,
    SecretError,
    decode,
    derive,
    new_secret,
    node_secret,
    provision_secret,
    read_secret,
    secret_path,
    shard_password,
    write_secret,
)
from ackdb.server.log import Log


def test_file_round_trip_mode_and_checks(tmp_path: Path) -> None:
    s = new_secret()
    assert len(s) == SECRET_BYTES
    p = str(tmp_path / "s")
    write_secret(p, s)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert read_secret(p) == s
    write_secret(p, s)  # the same secret again: kept
    with pytest.raises(SecretError, match="another cluster's secret"):
        write_secret(p, new_secret())
    for bad in (b"", b"zz" * 32, b"ab" * 31):
        with pytest.raises(SecretError):
            decode(bad)
    with pytest.raises(SecretError, match="cannot read"):
        read_secret(str(tmp_path / "missing"))
    assert derive(s, b"a") != derive(s, b"b") and len(shard_password(s)) == 64


def test_provision_rules(tmp_path: Path) -> None:
    d = str(tmp_path / "data")
    with pytest.raises(MissingSecret):
        provision_secret(d, None, may_create=False)
    created, how = provision_secret(d, None, may_create=True)
    assert how == "created" and node_secret(d) == created
    assert provision_secret(d, None, may_create=False) == (created, "kept")
    # Given the same secret again (a restart with the same flags): fine.
    same = str(tmp_path / "same")
    write_secret(same, created)
    assert provision_secret(d, same, may_create=False) == (created, "kept")
    # Given another: refused, the node keeps its cluster.
    other = str(tmp_path / "other")
    write_secret(other, new_secret())
    with pytest.raises(SecretError, match="holds another secret than"):
        provision_secret(d, other, may_create=True)
    assert node_secret(d) == created
    # A fresh directory copies the file it is given.
    d2 = str(tmp_path / "data2")
    assert provision_secret(d2, other, may_create=False) == (read_secret(other), "copied")
    assert stat.S_IMODE(os.stat(secret_path(d2)).st_mode) == 0o600


def _opts(tmp: Path, **kw: object) -> AgentOptions:
    return AgentOptions(node_id="n1", data_dir=str(tmp / "n1"), port=1, cluster_port=2, **kw)  # type: ignore[arg-type]


def test_node_rules_for_bootstrap_join_and_restart(tmp_path: Path) -> None:
    log = Log("warning")
    three = (("n1", "h:1"), ("n2", "h:2"), ("n3", "h:3"))
    with pytest.raises(SecretError, match="several voters needs --cluster-secret-file"):
        cluster_secret(_opts(tmp_path, bootstrap=three), log)
    with pytest.raises(SecretError, match="--join needs --cluster-secret-file"):
        cluster_secret(_opts(tmp_path, join="h:7001"), log)
    with pytest.raises(SecretError, match="waiting to be added needs"):
        cluster_secret(_opts(tmp_path), log)
    # A one-voter bootstrap makes its own; its restarts read it from the data directory.
    one = _opts(tmp_path, bootstrap=(("n1", "h:1"),))
    s = cluster_secret(one, log)
    assert cluster_secret(one, log) == s
    assert cluster_secret(_opts(tmp_path), log) == s  # later, without any flag
    other = tmp_path / "other.secret"
    write_secret(str(other), new_secret())
    with pytest.raises(SecretError, match="holds another secret"):
        cluster_secret(_opts(tmp_path, join="h:7001", cluster_secret_file=str(other)), log)


def test_cli_secret_new_print_and_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "c.secret"
    assert cluster_main(["secret", "--new", str(f)]) == 0
    assert cluster_main(["secret", "--new", str(f)]) == 1  # never overwritten
    assert "never overwritten" in capsys.readouterr().err
    node = tmp_path / "n1"
    provision_secret(str(node), str(f), may_create=False)
    capsys.readouterr()
    assert cluster_main(["secret", "--dir", str(node)]) == 0
    assert bytes.fromhex(capsys.readouterr().out.strip()) == read_secret(str(f))
    out = tmp_path / "copy.secret"
    assert cluster_main(["secret", "--dir", str(node), "--out", str(out)]) == 0
    assert read_secret(str(out)) == read_secret(str(f))
    assert cluster_main(["secret", "--dir", str(tmp_path / "none")]) == 1
    assert "cannot read the cluster secret" in capsys.readouterr().err
