"""CLIENT UNBLOCK (Redis 5+): a client blocked on keys (BLPOP) or in WAIT / WAITAOF is
answered now -- as if its timeout had run out, or with the UNBLOCKED error -- and the
replies and errors match Redis's texts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.conftest import ServerProcess, wait_until
from tests.e2e.repl_support import Session, client, link_up


def _blocked_id(p: ServerProcess, cmd: str) -> int:
    found: list[int] = []

    def look() -> bool:
        for line in client(p.port).execute_command("CLIENT", "LIST").decode().splitlines():
            fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
            if fields.get("cmd") == cmd and "b" in fields.get("flags", ""):
                found.append(int(fields["id"]))
                return True
        return False

    wait_until(look, 10)
    return found[0]


@pytest.mark.parametrize("how", ["TIMEOUT", "ERROR"])
def test_unblock_a_blpop(start_ackdb: Callable[..., ServerProcess], how: str) -> None:
    p = start_ackdb()
    with Session(p.port) as s:
        s.send("BLPOP", "q", 0)
        cid = _blocked_id(p, "blpop")
        assert client(p.port).execute_command("CLIENT", "UNBLOCK", cid, how) == 1
        reply = s.read()
        if how == "TIMEOUT":
            assert reply is None
        else:
            assert isinstance(reply, Exception)
            assert str(reply) == "UNBLOCKED client unblocked via CLIENT UNBLOCK"
        assert s.call("PING") == b"PONG"  # the connection goes on
    assert client(p.port).execute_command("CLIENT", "UNBLOCK", cid) == 0  # not blocked


def test_unblock_a_wait_answers_the_count_reached(
    start_ackdb: Callable[..., ServerProcess],
) -> None:
    primary = start_ackdb()
    replica = start_ackdb("--replicaof", "127.0.0.1", str(primary.port))
    wait_until(lambda: link_up(client(replica.port)), 20)
    with Session(primary.port) as s:
        assert s.call("SET", "k", "v") == b"OK"
        s.send("WAIT", 2, 0)  # one replica only: waits for ever
        cid = _blocked_id(primary, "wait")
        assert client(primary.port).execute_command("CLIENT", "UNBLOCK", cid, "TIMEOUT") == 1
        assert s.read() == 1
        s.send("WAIT", 2, 0)
        cid = _blocked_id(primary, "wait")
        assert client(primary.port).execute_command("CLIENT", "UNBLOCK", cid, "ERROR") == 1
        assert "UNBLOCKED" in str(s.read())


def test_unblock_errors(start_ackdb: Callable[..., ServerProcess]) -> None:
    p = start_ackdb()
    with Session(p.port) as s:
        assert "not an integer" in str(s.call("CLIENT", "UNBLOCK", "abc"))
        assert str(s.call("CLIENT", "UNBLOCK", 5, "x")) == (
            "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
        )
        assert "wrong number of arguments for 'unblock'" in str(
            s.call("CLIENT", "UNBLOCK", 5, "TIMEOUT", "extra")
        )
        assert s.call("CLIENT", "UNBLOCK", 99999) == 0
