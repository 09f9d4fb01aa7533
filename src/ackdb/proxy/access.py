"""ACL users at a database's endpoint: logging in as a user and refusing what it may not run.

Owns: the endpoint's side of issue 17 item 4 ("ACL users defined for a database apply at
its endpoints"). The users are stored with the database (``Database.acl_users``; the
router builds them once per topology as an ``ackdb.acl.Acl``); the endpoint checks each
request of a limited user itself, with the same rules and NOPERM texts as a server,
before routing it -- shards never see the client's user (they are reached over the
endpoint's own connections). A session whose user may run everything (the default user
of a database without ACL users: the common case) is never checked. Never does IO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..acl import DENIED_CHANNEL, DENIED_CMD, DENIED_KEY, OK, User
from ..commandtable import TABLE

if TYPE_CHECKING:
    from .session import Session

_NOPERM = {
    DENIED_KEY: b"-NOPERM this user has no permissions to access one of the keys used as "
    b"arguments\r\n",
    DENIED_CHANNEL: b"-NOPERM this user has no permissions to access one of the channels "
    b"used as arguments\r\n",
}


def login(s: Session, user: User) -> None:
    s.user = user
    s.acl_limited = not user.unrestricted
    s.authenticated = True


def reset_login(s: Session) -> None:
    """A new session and RESET: the default user, logged in if it needs no password."""
    acl = s.router.acl
    if acl is None:
        s.user = None
        s.acl_limited = False
        s.authenticated = not s.router.password_sha256
        return
    s.user = acl.default
    s.acl_limited = not acl.default.unrestricted
    s.authenticated = acl.default_open()


def authenticate(s: Session, user: bytes, password: bytes) -> bool:
    """AUTH / HELLO AUTH against the database's users."""
    acl = s.router.acl
    assert acl is not None
    u = acl.authenticate(user, password)
    if u is None:
        return False
    login(s, u)
    return True


def denial(s: Session, argv: list[bytes]) -> bytes | None:
    """The NOPERM reply when the session's user may not run ``argv``, else None (unknown
    commands and wrong arities are left to the usual path, as a server checks them first)."""
    user = s.user
    cmd = TABLE.find(argv)
    if user is None or cmd is None or cmd.container:
        return None
    n = len(argv)
    if (cmd.arity > 0 and n != cmd.arity) or n < -cmd.arity:
        return None
    code, _ = user.check(cmd, argv)
    if code == OK:
        return None
    if code == DENIED_CMD:
        return b"-NOPERM this user has no permissions to run the '%s' command\r\n" % (
            cmd.name.encode()
        )
    return _NOPERM[code]
