"""ACL users at a database's endpoint (proxy/access.py): users stored with the database log
in with AUTH / HELLO, and the endpoint refuses what a user may not run with a server's
NOPERM texts before anything reaches a shard."""

from __future__ import annotations

import dataclasses

import pytest
from fake_shards import Harness, topology

from ackdb.acl import normalize_user_rule
from ackdb.proxy.router import Router
from ackdb.proxy.session import Session
from ackdb.resp.replies import ReplyError


def acl_harness(*users: str, password: str = "") -> Harness:
    h = Harness(password=password)
    topo = topology(3, password)
    db = dataclasses.replace(topo.db, acl_users=tuple(normalize_user_rule(u) for u in users))
    h.router = Router.of(dataclasses.replace(topo, db=db))
    h.session = Session(h.router, 7, b"shardpw")
    return h


def test_stored_users_hold_no_clear_password() -> None:
    line = normalize_user_rule("alice on >secret ~a* +get")
    assert "secret" not in line
    assert line.startswith("alice on #")
    with pytest.raises(ValueError, match="Unknown command"):
        normalize_user_rule("bob +nosuch")


def test_a_limited_user_is_checked_at_the_endpoint() -> None:
    h = acl_harness("alice on >apw ~a* +get +set +multi +exec +acl|whoami", password="dbpw")
    (err,) = h.call("GET a1")
    assert str(err) == "NOAUTH Authentication required."
    out = h.call("AUTH alice bad", "AUTH alice apw", "ACL WHOAMI", "SET a1 v", "GET a1")
    assert str(out[0]).startswith("WRONGPASS")
    assert out[1:] == [b"OK", b"alice", b"OK", b"v"]
    assert h.session.acl_limited
    sent = sum(len(fs.requests) for fs in h.shards)
    out = h.call("GET b1", "DEL a1", "MULTI", "DEL a1", "EXEC")
    assert [x.decode() if isinstance(x, bytes) else str(x) for x in out] == [
        "NOPERM this user has no permissions to access one of the keys used as arguments",
        "NOPERM this user has no permissions to run the 'del' command",
        "OK",
        "NOPERM this user has no permissions to run the 'del' command",
        "EXECABORT Transaction discarded because of previous errors.",
    ]
    assert sum(len(fs.requests) for fs in h.shards) == sent  # nothing reached a shard


def test_default_user_keeps_the_database_password() -> None:
    h = acl_harness("ro on >rpw ~* +@read", password="dbpw")
    out = h.call("AUTH dbpw", "ACL WHOAMI", "SET k v")
    assert out == [b"OK", b"default", b"OK"]
    assert not h.session.acl_limited
    out = h.call("AUTH ro rpw", "GET k", "SET k w", "RESET", "GET k")
    assert out[:2] == [b"OK", b"v"]
    assert isinstance(out[2], ReplyError) and str(out[2]).startswith("NOPERM")
    assert str(out[4]) == "NOAUTH Authentication required."


def test_acl_administration_is_refused_at_the_endpoint() -> None:
    h = acl_harness("ro on nopass ~* +@all")
    (err,) = h.call("ACL SETUSER x on")
    assert isinstance(err, ReplyError) and "not available through a database endpoint" in str(err)
    assert all(fs.requests == [] for fs in h.shards)


def test_a_database_without_users_is_unchanged() -> None:
    h = Harness()
    assert h.router.acl is None and not h.session.acl_limited
    assert h.call("ACL WHOAMI") == [b"default"]
