"""End to end: ACL users of a real ``ackdb server`` (issue 17 item 3): the ``aclfile`` with
ACL LOAD / ACL SAVE, ``user`` lines in the config file next to ``requirepass``, the
refusal to start with both, and a replica logging in to its primary as an ACL user
(``masteruser`` / ``masterauth``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from repl_support import link_up

from conftest import ServerProcess, ackdb_argv, free_port, no_retry, wait_until

pytestmark = pytest.mark.e2e

StartNode = Callable[..., ServerProcess]


def test_aclfile_load_and_save(start_ackdb: StartNode, tmp_path: Path) -> None:
    path = tmp_path / "users.acl"
    path.write_text("user default on nopass ~* &* +@all\nuser alice on >apw ~a* +get +set\n")
    srv = start_ackdb("--aclfile", str(path))
    admin = srv.client(decode_responses=True)
    alice = srv.client(username="alice", password="apw")
    assert alice.set("a1", "v")
    with pytest.raises(redis.exceptions.NoPermissionError):
        alice.get("b1")
    admin.acl_setuser("bob", enabled=True, passwords=["+bpw"], commands=["+ping"])
    bob = srv.client(username="bob", password="bpw", retry=no_retry())
    assert bob.ping()
    assert admin.acl_save()
    saved = path.read_text().splitlines()
    assert [line.split()[1] for line in saved] == ["alice", "bob", "default"]
    # Drop bob from the file: ACL LOAD removes him and closes his connection.
    path.write_text("\n".join(line for line in saved if " bob " not in line) + "\n")
    assert admin.acl_load()
    assert admin.acl_users() == ["alice", "default"]
    with pytest.raises(redis.exceptions.ConnectionError):
        bob.ping()
    path.write_text("user alice on +nosuch\n")
    with pytest.raises(redis.exceptions.ResponseError, match="Error loading ACLs"):
        admin.acl_load()
    assert admin.acl_users() == ["alice", "default"]  # a bad file changes nothing


def test_user_lines_in_the_config_file(start_ackdb: StartNode, tmp_path: Path) -> None:
    conf = tmp_path / "ackdb.conf"
    conf.write_text("requirepass dpw\nuser carol on >cpw ~* &* +@all -flushall\n")
    port = free_port()
    srv = ServerProcess([*ackdb_argv(port), "--include", str(conf)], port, tmp_path, "conf")
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            srv.client(retry=no_retry()).ping()
        assert srv.client(password="dpw").ping()
        carol = srv.client(username="carol", password="cpw", decode_responses=True)
        assert carol.acl_whoami() == "carol"
        with pytest.raises(redis.exceptions.NoPermissionError):
            carol.flushall()
    finally:
        srv.stop()


def test_user_lines_and_aclfile_together_refuse_to_start(tmp_path: Path) -> None:
    conf = tmp_path / "both.conf"
    conf.write_text(f"aclfile {tmp_path / 'x.acl'}\nuser a on nopass\n")
    out = subprocess.run(
        [sys.executable, "-m", "ackdb", "server", str(conf), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert "ACL file path is invalid" in out.stdout + out.stderr


def test_missing_aclfile_refuses_to_start(tmp_path: Path) -> None:
    out = subprocess.run(
        [*ackdb_argv(free_port()), "--aclfile", str(tmp_path / "none.acl")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert "Aborting Redis startup because of ACL errors" in out.stdout + out.stderr


def test_replica_logs_in_with_masteruser(start_node: StartNode) -> None:
    primary = start_node(
        "primary",
        "--requirepass",
        "nobody-knows",
        "--user",
        "repl on >rpw +psync +replconf +ping",
    )
    replica = start_node(
        "replica",
        "--replicaof",
        "127.0.0.1",
        str(primary.port),
        "--masteruser",
        "repl",
        "--masterauth",
        "rpw",
    )
    r = replica.client()
    wait_until(lambda: link_up(r), 20)
    p = primary.client(password="nobody-knows")
    p.set("k", "v")
    wait_until(lambda: r.get("k") == b"v", 20)
    # The replica's connection runs as repl (CLIENT LIST on the primary says so).
    assert any(c["user"] == "repl" for c in p.client_list(_type="replica"))
