"""Tests for ackdb.acl: rules, descriptions, checks, selectors, the log, the ACL file.

Expected texts are redis-server 7.0.15's (checked with redis-cli; the differential test
tests/compat/test_acl_vs_redis.py compares the same against a running Redis).
"""

from __future__ import annotations

import pytest

import ackdb.commands  # noqa: F401  (the table's handlers; the ACL core needs only the table)
from ackdb.acl import OK, Acl, describe_user, hash_password, parse_user_lines, split_acl_text
from ackdb.acl.log import GROUPING_MS, AclLog
from ackdb.acl.selector import DENIED_CHANNEL, DENIED_CMD, DENIED_KEY, RuleError
from ackdb.acl.users import merge_selectors
from ackdb.commandtable import TABLE


def _acl_with(name: bytes, *rules: str) -> Acl:
    acl = Acl()
    err = acl.setuser(name, [r.encode() for r in rules])
    assert err is None, err
    return acl


def _check(acl: Acl, name: bytes, *argv: str) -> int:
    u = acl.get(name)
    assert u is not None
    args = [a.encode() for a in argv]
    cmd = TABLE.find(args)
    assert cmd is not None
    return u.check(cmd, args)[0]


def test_default_user_is_unrestricted() -> None:
    acl = Acl()
    assert describe_user(acl.default) == "on nopass ~* &* +@all"
    assert acl.default.unrestricted
    assert acl.default_open()


def test_new_user_is_off_with_no_permissions() -> None:
    acl = _acl_with(b"alice")
    assert describe_user(acl.users[b"alice"]) == "off resetchannels -@all"
    assert not acl.users[b"alice"].unrestricted


def test_passwords_are_sha256_hex() -> None:
    acl = _acl_with(b"bob", "on", ">p1", "~cached:*", "+get")
    u = acl.users[b"bob"]
    assert u.passwords == [hash_password(b"p1")]
    assert describe_user(u) == f"on #{hash_password(b'p1')} ~cached:* resetchannels -@all +get"
    assert acl.authenticate(b"bob", b"p1") is u
    assert acl.authenticate(b"bob", b"p2") is None
    acl.setuser(b"bob", [b"off"])
    assert acl.authenticate(b"bob", b"p1") is None  # disabled


def test_commands_subcommands_and_first_args() -> None:
    acl = _acl_with(b"u", "on", "nopass", "~*", "+get", "+config|get", "+select|0")
    assert _check(acl, b"u", "get", "k") == OK
    assert _check(acl, b"u", "config", "get", "port") == OK
    assert _check(acl, b"u", "config", "set", "port", "1") == DENIED_CMD
    assert _check(acl, b"u", "select", "0") == OK
    assert _check(acl, b"u", "select", "1") == DENIED_CMD
    assert _check(acl, b"u", "auth", "x") == OK  # no-auth commands are always allowed


def test_categories_and_removal() -> None:
    acl = _acl_with(b"u", "~*", "+@all", "-@dangerous", "-@write", "+set")
    assert _check(acl, b"u", "set", "a", "1") == OK
    assert _check(acl, b"u", "del", "a") == DENIED_CMD
    assert _check(acl, b"u", "flushall") == DENIED_CMD
    assert _check(acl, b"u", "get", "a") == OK


def test_key_permissions() -> None:
    acl = _acl_with(b"w", "%R~r*", "%W~w*", "~rw*", "+@all")
    assert _check(acl, b"w", "get", "r1") == OK
    assert _check(acl, b"w", "set", "r1", "v") == DENIED_KEY
    assert _check(acl, b"w", "set", "w1", "v") == OK
    assert _check(acl, b"w", "get", "w1") == DENIED_KEY
    assert _check(acl, b"w", "copy", "r1", "w2") == OK
    assert _check(acl, b"w", "incr", "rw1") == OK
    assert _check(acl, b"w", "exists", "w1") == OK  # a key only looked at needs no permission


def test_channels() -> None:
    acl = _acl_with(b"s", "~*", "resetchannels", "&news.*", "+@all")
    assert _check(acl, b"s", "publish", "news.a", "m") == OK
    assert _check(acl, b"s", "publish", "other", "m") == DENIED_CHANNEL
    assert _check(acl, b"s", "subscribe", "news.a", "x") == DENIED_CHANNEL
    assert _check(acl, b"s", "psubscribe", "news.*") == OK  # a pattern matches literally
    assert _check(acl, b"s", "psubscribe", "news.a") == DENIED_CHANNEL
    assert _check(acl, b"s", "unsubscribe", "x") == OK


def test_selectors_and_most_relevant_denial() -> None:
    acl = _acl_with(b"u", "~a*", "-@all", "+get", "(~b*", "+set)")
    assert _check(acl, b"u", "get", "a1") == OK
    assert _check(acl, b"u", "set", "b1", "v") == OK
    assert _check(acl, b"u", "set", "a1", "v") == DENIED_KEY  # the key beats the command
    assert _check(acl, b"u", "del", "a1") == DENIED_CMD
    u = acl.users[b"u"]
    assert describe_user(u) == "off ~a* resetchannels -@all +get (~b* resetchannels -@all +set)"
    acl.setuser(b"u", [b"clearselectors"])
    assert len(u.selectors) == 1


@pytest.mark.parametrize(
    ("rules", "described"),
    [
        (["+@all", "-@string", "+get", "-acl|list"], "+@all -@string -acl|list +get"),
        (["-@all", "+@slow", "+@all", "-@slow", "+@fast"], "+@all -@slow"),
        (["-@all", "+client", "-client|id"], "-@all +client -client|id"),
        (["allcommands", "nocommands"], "-@all"),
    ],
)
def test_command_rules_are_described_as_redis_70(rules: list[str], described: str) -> None:
    acl = _acl_with(b"d", *rules)
    assert describe_user(acl.users[b"d"]) == "off resetchannels " + described


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("+nosuch", "Unknown command or category name in ACL"),
        ("+@nosuch", "Unknown command or category name in ACL"),
        ("+config|get|x", "Allowing first-arg of a subcommand is not supported"),
        ("-select|0", "Unknown command or category name in ACL"),
        ("<nopw", "The password you are trying to remove from the user does not exist"),
        ("#abc", "The password hash must be exactly 64 characters and contain only lowercase "
         "hexadecimal characters"),
        ("xx", "Syntax error"),
        ("%X~a", "Syntax error"),
        ("%~x", "Syntax error"),
    ],
)  # fmt: skip
def test_rule_errors(rule: str, reason: str) -> None:
    acl = Acl()
    err = acl.setuser(b"e", [b"on", rule.encode()])
    assert err == f"ERR Error in ACL SETUSER modifier '{rule}': {reason}"
    assert acl.get(b"e") is None  # nothing applied


def test_patterns_after_all_are_refused() -> None:
    acl = Acl()
    assert acl.setuser(b"e", [b"~*", b"~foo"]) is not None
    assert acl.setuser(b"e", [b"&*", b"&x"]) is not None


def test_percent_rules_merge_and_empty_pattern() -> None:
    acl = _acl_with(b"p", "%R", "%RW", "%W~")
    assert describe_user(acl.users[b"p"]) == "off ~ resetchannels -@all"
    acl = _acl_with(b"q", "%W~a", "%R~a", "~b", "%R~b")
    assert describe_user(acl.users[b"q"]) == "off ~a ~b resetchannels -@all"


def test_reset() -> None:
    acl = _acl_with(b"r", "on", ">x", "~*", "+@all", "(+get)")
    acl.setuser(b"r", [b"reset"])
    assert describe_user(acl.users[b"r"]) == "off sanitize-payload resetchannels -@all"


def test_merge_selectors() -> None:
    assert merge_selectors([b"(~a", b"+get)", b"on"]) == [b"(~a +get)", b"on"]
    assert merge_selectors([b"(~a", b"+get"]) == (
        "ERR Unmatched parenthesis in acl selector starting at '(~a'."
    )


def test_requirepass_sets_the_default_password() -> None:
    acl = Acl()
    acl.set_default_password(b"secret")
    assert not acl.default_open()
    assert acl.authenticate(b"default", b"secret") is acl.default
    acl.set_default_password(b"")
    assert acl.default_open()


def test_acl_file_lines() -> None:
    acl = Acl()
    text = "# users\nuser default on nopass ~* &* +@all\n\nuser alice on >pw ~a* +get\n"
    users = parse_user_lines(acl, split_acl_text(text))
    assert isinstance(users, dict)
    assert sorted(users) == [b"alice", b"default"]
    assert parse_user_lines(acl, split_acl_text("user a on\nuser a off\n")) == (
        "Duplicate user 'a' found on line 2"
    )
    err = parse_user_lines(acl, split_acl_text("user b +nosuch\n"))
    assert isinstance(err, str) and "line 1" in err
    default = acl.default
    assert acl.load_text("user alice on nopass\n") is None
    assert acl.default is default and describe_user(default) == "on nopass ~* &* +@all"
    assert sorted(acl.users) == [b"alice", b"default"]


def test_log_groups_similar_entries() -> None:
    log = AclLog(max_len=2)
    log.add("command", "toplevel", b"get", b"u", 1000, b"")
    log.add("key", "toplevel", b"k", b"u", 1001, b"")
    log.add("command", "toplevel", b"get", b"u", 1002, b"")
    assert [(e.object, e.count) for e in log.entries] == [(b"get", 2), (b"k", 1)]
    log.add("command", "toplevel", b"get", b"u", 1002 + GROUPING_MS, b"")
    assert [(e.object, e.count) for e in log.entries] == [(b"get", 1), (b"get", 2)]
    with pytest.raises(RuleError):
        raise RuleError("x")
