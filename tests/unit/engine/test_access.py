"""Tests for ackdb.engine.access: who is checked, and what changes when users change.

The default user (every permission) must cost nothing per command: its clients are not
gated; a limited user's are, and see NOPERM with Redis 7.0's texts.
"""

from __future__ import annotations

from conftest import Harness


def test_default_client_is_not_gated(harness: Harness) -> None:
    c = harness.client()
    assert not c.acl_limited and not c.gate
    assert harness.run(c, "acl", "whoami") == b"$7\r\ndefault\r\n"


def test_limited_user_is_gated_and_refused(harness: Harness) -> None:
    admin = harness.client()
    assert harness.run(admin, "acl", "setuser", "u", "on", ">pw", "~k*", "+get", "+set") == (
        b"+OK\r\n"
    )
    c = harness.client()
    assert harness.run(c, "auth", "u", "pw") == b"+OK\r\n"
    assert c.acl_limited and c.gate
    assert harness.run(c, "set", "k1", "v") == b"+OK\r\n"
    assert harness.run(c, "get", "x") == (
        b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    )
    assert harness.run(c, "del", "k1") == (
        b"-NOPERM this user has no permissions to run the 'del' command\r\n"
    )
    log = harness.server.acl.log.entries
    assert [(e.reason, e.object, e.username) for e in log] == [
        ("command", b"del", b"u"),
        ("key", b"x", b"u"),
    ]
    assert b" user=u " in log[0].client_info
    # Widening the user's rules lifts the gate of its connected clients at once.
    harness.run(admin, "acl", "setuser", "u", "allkeys", "allchannels", "+@all")
    assert not c.acl_limited and not c.gate
    assert harness.run(c, "del", "k1") == b":1\r\n"


def test_deluser_closes_its_connections_and_reset_returns_to_default(harness: Harness) -> None:
    admin = harness.client()
    harness.run(admin, "acl", "setuser", "v", "on", "nopass", "+@all", "~*")
    c = harness.client()
    d = harness.client()
    harness.run(c, "auth", "v", "x")
    harness.run(d, "auth", "v", "x")
    assert harness.run(d, "reset") == b"+RESET\r\n"
    assert d.user is harness.server.acl.default
    assert harness.run(admin, "client", "kill", "user", "nobody") == (
        b"-ERR No such user 'nobody'\r\n"
    )
    assert harness.run(admin, "acl", "deluser", "v") == b":1\r\n"
    assert c.closed and not d.closed


def test_exec_rechecks_queued_commands(harness: Harness) -> None:
    admin = harness.client()
    harness.run(admin, "acl", "setuser", "m", "on", "nopass", "~*", "+@all", "-flushall")
    c = harness.client()
    harness.run(c, "auth", "m", "x")
    assert harness.run(c, "multi") == b"+OK\r\n"
    assert harness.run(c, "get", "a") == b"+QUEUED\r\n"
    harness.run(admin, "acl", "setuser", "m", "-get")
    assert harness.run(c, "exec") == (
        b"*1\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated "
        b"and the EXEC call. This command is no longer allowed for the following reason: no "
        b"permission to execute the command or subcommand\r\n"
    )
    assert harness.server.acl.log.entries[0].context == "multi"


def test_failed_logins_are_counted_and_logged(harness: Harness) -> None:
    c = harness.client()
    assert harness.run(c, "auth", "nobody", "x").startswith(b"-WRONGPASS")
    assert harness.server.stat_auth_denied == 1
    e = harness.server.acl.log.entries[0]
    assert (e.reason, e.object, e.username) == ("auth", b"auth", b"nobody")


def test_requirepass_at_start_is_the_default_password() -> None:
    h = Harness("requirepass secret")
    c = h.client()
    assert not c.authenticated
    assert h.run(c, "get", "x") == b"-NOAUTH Authentication required.\r\n"
    assert h.run(c, "auth", "secret") == b"+OK\r\n"
    assert h.run(c, "acl", "whoami") == b"$7\r\ndefault\r\n"


def test_denials_are_counted_for_info(harness: Harness) -> None:
    admin = harness.client()
    harness.run(admin, "acl", "setuser", "z", "on", "nopass", "~k", "+get", "+publish")
    c = harness.client()
    harness.run(c, "auth", "z", "x")
    harness.run(c, "del", "k")
    harness.run(c, "get", "x")
    harness.run(c, "publish", "ch", "m")
    srv = harness.server
    assert (srv.stat_acl_denied_cmd, srv.stat_acl_denied_key, srv.stat_acl_denied_channel) == (
        1,
        1,
        1,
    )
