"""The users of one server: who may log in, with which passwords, and what each may run.

Owns: ``User`` (Redis 7.0's user: on/off, nopass, passwords as SHA-256 hex, the
sanitize-payload flag, the root selector and the extra ``(...)`` selectors), ``Acl`` (the
users by name, the ``default`` user, ACL SETUSER's rule language including selectors,
AUTH's password test, the permission check over all selectors, the ACL LOG) and
``parse_acl_file``. Pure: file text comes in as a string; never reads a file or a clock.

``User.unrestricted`` is what keeps the default user free: a client whose user has a
selector allowing every command, key and channel is never checked per command.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from ..commandtable import Command
from .log import AclLog
from .selector import (
    DENIED_CMD,
    OK,
    RuleError,
    Selector,
    apply_rule,
)

HASH_FORMAT = (
    "The password hash must be exactly 64 characters and contain only lowercase "
    "hexadecimal characters"
)
NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist"
_HEX = frozenset(b"0123456789abcdef")


def hash_password(password: bytes) -> str:
    """How Redis stores a password: the SHA-256 of it, in lowercase hex."""
    return hashlib.sha256(password).hexdigest()


@dataclass(slots=True, eq=False)
class User:
    name: bytes
    enabled: bool = False
    nopass: bool = False
    sanitize: str = ""  # "", "sanitize-payload" or "skip-sanitize-payload"
    passwords: list[str] = field(default_factory=list)
    selectors: list[Selector] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.selectors:
            self.selectors = [Selector(root=True)]

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    @property
    def unrestricted(self) -> bool:
        return any(s.unrestricted for s in self.selectors)

    def copy(self) -> User:
        return User(
            self.name,
            self.enabled,
            self.nopass,
            self.sanitize,
            list(self.passwords),
            [s.copy() for s in self.selectors],
        )

    def assign(self, other: User) -> None:
        """Take ``other``'s rules in place (clients keep pointing at this object)."""
        self.enabled = other.enabled
        self.nopass = other.nopass
        self.sanitize = other.sanitize
        self.passwords = other.passwords
        self.selectors = other.selectors

    def password_ok(self, password: bytes) -> bool:
        if self.nopass:
            return True
        digest = hash_password(password)
        return any(hmac.compare_digest(digest, h) for h in self.passwords)

    def check(self, cmd: Command, argv: list[bytes]) -> tuple[int, int]:
        """Redis's ACLCheckAllUserCommandPerm: OK when any selector allows the request;
        otherwise the most relevant denial (command < key < channel, then the later
        argument) and its argument's index."""
        worst, worst_idx = DENIED_CMD, 0
        for sel in self.selectors:
            code, idx = sel.check(cmd, argv)
            if code == OK:
                return OK, 0
            if code > worst or (code == worst and idx > worst_idx):
                worst, worst_idx = code, idx
        return worst, worst_idx

    # -- rules ---------------------------------------------------------------------------

    def apply(self, rule: bytes, pubsub_all: bool) -> None:
        """One ACL SETUSER rule (Redis's ACLSetUser); RuleError when refused."""
        low = rule.lower()
        if low == b"on":
            self.enabled = True
        elif low == b"off":
            self.enabled = False
        elif low == b"skip-sanitize-payload":
            self.sanitize = "skip-sanitize-payload"
        elif low == b"sanitize-payload":
            self.sanitize = "sanitize-payload"
        elif low == b"nopass":
            self.nopass = True
            self.passwords = []
        elif low == b"resetpass":
            self.nopass = False
            self.passwords = []
        elif rule[:1] in (b">", b"#"):
            digest = hash_password(rule[1:]) if rule[:1] == b">" else _hash_arg(rule[1:])
            if digest not in self.passwords:
                self.passwords.append(digest)
            self.nopass = False
        elif rule[:1] in (b"<", b"!"):
            digest = hash_password(rule[1:]) if rule[:1] == b"<" else _hash_arg(rule[1:])
            if digest not in self.passwords:
                raise RuleError(NO_SUCH_PASSWORD)
            self.passwords.remove(digest)
        elif low == b"clearselectors":
            del self.selectors[1:]
        elif low == b"reset":
            for r in (b"resetpass", b"resetkeys", b"resetchannels"):
                self.apply(r, pubsub_all)
            if pubsub_all:
                self.apply(b"allchannels", pubsub_all)
            for r in (b"off", b"sanitize-payload", b"clearselectors", b"-@all"):
                self.apply(r, pubsub_all)
        elif rule[:1] == b"(" and rule[-1:] == b")":
            sel = Selector(allchannels=pubsub_all)
            for part in rule[1:-1].split():
                apply_rule(sel, part)
            self.selectors.append(sel)
        else:
            apply_rule(self.root, rule)


def _hash_arg(text: bytes) -> str:
    if len(text) != 64 or not set(text) <= _HEX:
        raise RuleError(HASH_FORMAT)
    return text.decode()


def merge_selectors(rules: list[bytes]) -> list[bytes] | str:
    """Join the arguments of a ``( ... )`` selector that spans several arguments into one
    rule (Redis's ACLMergeSelectorArguments); an error text when one is left open."""
    out: list[bytes] = []
    opened: list[bytes] | None = None
    for r in rules:
        if opened is not None:
            opened.append(r)
            if r.endswith(b")"):
                out.append(b" ".join(opened))
                opened = None
        elif r.startswith(b"(") and not r.endswith(b")"):
            opened = [r]
        else:
            out.append(r)
    if opened is not None:
        first = opened[0].decode("utf-8", "replace")
        return f"ERR Unmatched parenthesis in acl selector starting at '{first}'."
    return out


class Acl:
    """The users of one server (Redis's Users dictionary and DefaultUser)."""

    def __init__(self, log_max_len: int = 128, pubsub_all: bool = False) -> None:
        # acl-pubsub-default: False is Redis 7's "resetchannels" for new users.
        self.pubsub_all = pubsub_all
        self.log = AclLog(log_max_len)
        self.default = User(b"default")
        for r in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
            self.default.apply(r, pubsub_all)
        self.users: dict[bytes, User] = {b"default": self.default}

    def new_user(self, name: bytes) -> User:
        u = User(name)
        if self.pubsub_all:
            u.root.allchannels = True
        return u

    def get(self, name: bytes) -> User | None:
        return self.users.get(name)

    def setuser(self, name: bytes, rules: list[bytes]) -> str | None:
        """ACL SETUSER: every rule applies, or none does; None, or the error's text."""
        merged = merge_selectors(rules)
        if isinstance(merged, str):
            return merged
        old = self.users.get(name)
        u = old.copy() if old is not None else self.new_user(name)
        for rule in merged:
            try:
                u.apply(rule, self.pubsub_all)
            except RuleError as e:
                shown = rule.decode("utf-8", "replace")
                return f"ERR Error in ACL SETUSER modifier '{shown}': {e.reason}"
        if old is not None:
            old.assign(u)
        else:
            self.users[name] = u
        return None

    def authenticate(self, name: bytes, password: bytes) -> User | None:
        u = self.users.get(name)
        if u is None or not u.enabled or not u.password_ok(password):
            return None
        return u

    def set_default_password(self, password: bytes) -> None:
        """requirepass: the default user's only password, or nopass when empty."""
        self.default.apply(b"resetpass", self.pubsub_all)
        self.default.apply(b">" + password if password else b"nopass", self.pubsub_all)

    def default_open(self) -> bool:
        """A new connection starts authenticated (the default user needs no password)."""
        return self.default.enabled and self.default.nopass

    def sorted_users(self) -> list[User]:
        return [self.users[n] for n in sorted(self.users)]

    def replace_all(self, users: dict[bytes, User], keep_default: bool = False) -> None:
        """ACL LOAD / start-up: the default user keeps its object (clients use it); when
        ``users`` has none, it is reset to Redis's default (ACL file) or kept as it is
        (``keep_default``: the config file's ``user`` lines)."""
        new_default = users.pop(b"default", None)
        if new_default is not None:
            self.default.assign(new_default)
        elif not keep_default:
            self.default.assign(Acl(pubsub_all=self.pubsub_all).default)
        users[b"default"] = self.default
        self.users = users

    def load_text(self, text: str, keep_default: bool = False) -> str | None:
        """Every user of an ACL file's text (ACL LOAD), or none: the error's text."""
        users = parse_user_lines(self, split_acl_text(text))
        if isinstance(users, str):
            return users
        self.replace_all(users, keep_default)
        return None


def parse_user_lines(acl: Acl, lines: list[tuple[int, list[bytes]]]) -> dict[bytes, User] | str:
    """Users from ``user <name> <rules...>`` lines (the ACL file, or the config file's
    ``user`` directives), each with its line number; the first error's text, if any."""
    users: dict[bytes, User] = {}
    for lineno, words in lines:
        if len(words) < 2 or words[0].lower() != b"user":
            return f"Error in user declaration '{_w(words[:1])}' at line {lineno}"
        name = words[1]
        if name in users:
            return f"Duplicate user '{_w([name])}' found on line {lineno}"
        if b" " in name or any(c < 0x21 for c in name):
            return f"Usernames can't contain spaces or null characters at line {lineno}"
        merged = merge_selectors(words[2:])
        if isinstance(merged, str):
            return f"{merged.removeprefix('ERR ')} at line {lineno}"
        u = acl.new_user(name)
        for rule in merged:
            try:
                u.apply(rule, acl.pubsub_all)
            except RuleError as e:
                return f"Error in applying operation '{_w([rule])}' at line {lineno}: {e.reason}"
        users[name] = u
    return users


def _w(words: list[bytes]) -> str:
    return words[0].decode("utf-8", "replace") if words else ""


def split_acl_text(text: str) -> list[tuple[int, list[bytes]]]:
    """The non-empty, non-comment lines of an ACL file, split into words."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        out.append((i, [w.encode("utf-8", "surrogateescape") for w in s.split()]))
    return out


def normalize_user_rule(text: str) -> str:
    """One ``<name> <rules...>`` user as it is stored with a cluster database: the rules
    applied to a new user and written back (clear passwords become SHA-256, as in an
    ACL file); ValueError with the reason when a rule is wrong."""
    words = [w.encode("utf-8", "surrogateescape") for w in text.split()]
    if not words:
        raise ValueError("ERR an ACL user needs a name")
    users = parse_user_lines(Acl(), [(1, [b"user", *words])])
    if isinstance(users, str):
        raise ValueError("ERR " + users.removesuffix(" at line 1"))
    (u,) = users.values()
    from .describe import describe_user

    return f"{u.name.decode('utf-8', 'surrogateescape')} {describe_user(u)}"


def database_acl(users: tuple[str, ...], password_sha256: str) -> Acl:
    """A cluster database's users for its endpoint: the default user has the database's
    password (nopass without one) unless a ``default`` line redefines it."""
    acl = Acl()
    if password_sha256:
        acl.default.apply(b"resetpass", False)
        acl.default.passwords = [password_sha256]
    lines = [
        (i, [b"user", *u.encode("utf-8", "surrogateescape").split()])
        for i, u in enumerate(users, 1)
    ]
    parsed = parse_user_lines(acl, lines)
    assert not isinstance(parsed, str), parsed  # stored lines were normalized
    acl.replace_all(parsed, keep_default=True)
    return acl
