"""The engine's side of ACLs: which user a client is, and refusing what it may not run.

Owns: the per-client decision "must this client's commands be checked?" (``acl_limited``,
taken once per login and per ACL change, so a client whose user may run everything --
the default user, the common case -- pays nothing per command), the NOPERM replies with
Redis 7.0's texts, and ACL LOG entries for denials and failed logins. The rules and checks
themselves live in ``ackdb.acl``; the handlers of AUTH, HELLO and ACL call in here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..acl import DENIED_CHANNEL, DENIED_CMD, DENIED_KEY, OK, Acl, User

if TYPE_CHECKING:
    from ..commandtable import Command
    from .client import Client
    from .core import Server

# The CLIENT LIST line of a client, for ACL LOG's client-info (the introspection commands
# set it when they load; the engine does not format CLIENT LIST itself).
client_line: Callable[[Client, str], bytes] | None = None

NOPERM = {
    DENIED_CMD: "NOPERM this user has no permissions to run the '%s' command",
    DENIED_KEY: "NOPERM this user has no permissions to access one of the keys used as arguments",
    DENIED_CHANNEL: (
        "NOPERM this user has no permissions to access one of the channels used as arguments"
    ),
}
# EXEC of a queued command the user may no longer run (Redis 7.0 execCommand).
_EXEC_REASON = {
    DENIED_CMD: "no permission to execute the command or subcommand",
    DENIED_KEY: "no permission to touch the specified keys",
    DENIED_CHANNEL: "no permission to access one of the channels used as arguments",
}
EXEC_CHANGED = (
    "NOPERM ACLs rules changed between the moment the transaction was accumulated and the "
    "EXEC call. This command is no longer allowed for the following reason: %s"
)
REASON_WORD = {DENIED_CMD: "command", DENIED_KEY: "key", DENIED_CHANNEL: "channel"}


def new_acl(server: Server) -> Acl:
    """The server's users from its configuration: ``requirepass`` is the default user's
    password; the ``user`` lines and ``aclfile`` are the shell's to load."""
    cfg = server.config
    acl = Acl(cfg.get("acllog-max-len"), cfg.get("acl-pubsub-default") == "allchannels")
    requirepass = cfg.get("requirepass") or ""
    if requirepass:
        acl.set_default_password(requirepass.encode())
    return acl


def limited(user: User | None) -> bool:
    return user is not None and not user.unrestricted


def login(c: Client, user: User | None) -> None:
    """``c`` now runs as ``user`` (None: the superuser of internal clients)."""
    c.user = user
    c.acl_limited = limited(user)
    c.set_authenticated(True)


def reset_login(c: Client) -> None:
    """RESET and new connections: the default user, authenticated if it needs no password."""
    acl = c.server.acl
    c.user = acl.default
    c.acl_limited = limited(acl.default)
    c.set_authenticated(acl.default_open())


def users_changed(server: Server, current: Client | None = None) -> None:
    """After ACL SETUSER / LOAD / CONFIG SET requirepass: recompute every client's flag,
    and close the connections of users that no longer exist (Redis); ``current``, the
    client that made the change, is closed after its reply."""
    users = server.acl.users
    for c in list(server.clients.values()):
        u = c.user
        if u is None:
            continue
        if users.get(u.name) is not u:
            if c is current:
                c.close_after_reply = True
            else:
                server.kill_client(c)
            continue
        c.acl_limited = limited(u)
        c.refresh_gate()


def check(
    server: Server, c: Client, cmd: Command, argv: list[bytes], context: str = ""
) -> str | None:
    """The NOPERM text when ``c``'s user may not run ``argv`` (logged), else None.
    ``context``: the ACL LOG's (``lua`` for a script's ``redis.call``); by default
    ``multi`` while a transaction is queued, else ``toplevel``."""
    user = c.user
    if user is None:
        return None  # an internal client
    code, idx = user.check(cmd, argv)
    if code == OK:
        return None
    context = context or ("multi" if c.multi is not None else "toplevel")
    log_denial(server, c, code, cmd, argv, idx, context)
    text = NOPERM[code]
    return text % cmd.name if code == DENIED_CMD else text


def check_at_exec(server: Server, c: Client, cmd: Command, argv: list[bytes]) -> str | None:
    """EXEC runs a queued command only if the user may still run it (Redis 7.0)."""
    user = c.user
    assert user is not None
    code, idx = user.check(cmd, argv)
    if code == OK:
        return None
    log_denial(server, c, code, cmd, argv, idx, "multi")
    return EXEC_CHANGED % _EXEC_REASON[code]


def log_denial(
    server: Server,
    c: Client,
    code: int,
    cmd: Command,
    argv: list[bytes],
    idx: int,
    context: str,
) -> None:
    obj = cmd.name.encode() if code == DENIED_CMD else argv[idx]
    if code == DENIED_CMD:
        server.stat_acl_denied_cmd += 1
    elif code == DENIED_KEY:
        server.stat_acl_denied_key += 1
    else:
        server.stat_acl_denied_channel += 1
    user = c.user
    name = user.name if user is not None else b"default"
    server.acl.log.add(REASON_WORD[code], context, obj, name, server.now_ms(), _line(c, cmd))


def log_failed_login(server: Server, c: Client, cmd_name: bytes, username: bytes) -> None:
    """AUTH / HELLO refused: the entry's object is the command's name as sent (Redis)."""
    server.stat_auth_denied += 1
    context = "multi" if c.multi is not None else "toplevel"
    name = cmd_name.decode("utf-8", "replace").lower()
    line = client_line(c, name) if client_line is not None else b""
    server.acl.log.add("auth", context, cmd_name, username, server.now_ms(), line)


def _line(c: Client, cmd: Command) -> bytes:
    return client_line(c, cmd.name) if client_line is not None else b""
