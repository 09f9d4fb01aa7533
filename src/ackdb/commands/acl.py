"""ACL and its subcommands: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, LOG,
GENPASS, DRYRUN, LOAD, SAVE, HELP.

Owns: the replies of ACL, in Redis 7.0's shapes and error texts. The users, rules and
checks are ``ackdb.acl``'s; which clients are limited is ``engine.access``'s (every change
here ends with ``users_changed``); the ACL file is read and written through the shell's
``acl_file`` port (never here).
"""

from __future__ import annotations

from ..acl import CATEGORIES, DENIED_CMD, DENIED_KEY, OK, User, describe_user
from ..acl.describe import describe_channels, describe_commands, describe_keys, user_flags
from ..acl.log import LogEntry
from ..acl.selector import in_category
from ..commandtable import TABLE
from ..engine import access
from ..engine.client import Client
from ..resp import encoder as enc
from ..resp.encoder import Resp2
from .base import CommandError, arg_int
from .introspection import info_line
from .table import handler

# GENPASS: the most bits of a password (Redis's limit).
GENPASS_BITS_MAX = 4096
NO_ACL_FILE = (
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify "
    "users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a "
    "Redis configuration file set) in order to store users in the Redis configuration."
)


def _client_line(c: Client, cmd_name: str) -> bytes:
    return info_line(c, c.server.now_ms(), cmd_name)


access.client_line = _client_line


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


@handler("acl|setuser")
def acl_setuser(c: Client, argv: list[bytes]) -> bytes:
    name = argv[2]
    if b" " in name or b"\x00" in name:
        raise CommandError("ERR Usernames can't contain spaces or null characters")
    err = c.server.acl.setuser(name, argv[3:])
    if err is not None:
        raise CommandError(err)
    access.users_changed(c.server, c)
    return enc.OK


@handler("acl|getuser")
def acl_getuser(c: Client, argv: list[bytes]) -> bytes:
    u = c.server.acl.get(argv[2])
    p: Resp2 = c.p
    if u is None:
        return p.null
    return getuser_reply(p, u)


def getuser_reply(p: Resp2, u: User) -> bytes:
    flags = [f.encode() for f in user_flags(u)]
    root = u.root
    pairs = [
        (enc.bulk(b"flags"), p.set_header(len(flags)) + b"".join(enc.bulk(f) for f in flags)),
        (enc.bulk(b"passwords"), enc.bulk_array(h.encode() for h in u.passwords)),
        (enc.bulk(b"commands"), enc.bulk(describe_commands(root).encode())),
        (enc.bulk(b"keys"), enc.bulk(describe_keys(root).encode())),
        (enc.bulk(b"channels"), enc.bulk(describe_channels(root).encode())),
    ]
    selectors = [
        p.map_bulks(
            [
                (b"commands", describe_commands(s).encode()),
                (b"keys", describe_keys(s).encode()),
                (b"channels", describe_channels(s).encode()),
            ]
        )
        for s in u.selectors[1:]
    ]
    pairs.append((enc.bulk(b"selectors"), enc.array(selectors)))
    return p.map_encoded(pairs)


@handler("acl|deluser")
def acl_deluser(c: Client, argv: list[bytes]) -> bytes:
    acl = c.server.acl
    deleted = 0
    try:
        for name in argv[2:]:
            if name == b"default":
                raise CommandError("ERR The 'default' user cannot be removed")
            if acl.users.pop(name, None) is not None:
                deleted += 1
    finally:
        access.users_changed(c.server, c)  # their connections close
    return enc.integer(deleted)


@handler("acl|list")
def acl_list(c: Client, argv: list[bytes]) -> bytes:
    return enc.bulk_array(acl_lines(c.server.acl.sorted_users()))


def acl_lines(users: list[User]) -> list[bytes]:
    return [b"user %s %s" % (u.name, describe_user(u).encode()) for u in users]


@handler("acl|users")
def acl_users(c: Client, argv: list[bytes]) -> bytes:
    return enc.bulk_array(u.name for u in c.server.acl.sorted_users())


@handler("acl|whoami")
def acl_whoami(c: Client, argv: list[bytes]) -> bytes:
    return enc.bulk(c.user.name if c.user is not None else b"default")


@handler("acl|cat")
def acl_cat(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) == 2:
        return enc.bulk_array(cat.encode() for cat in CATEGORIES)
    if len(argv) > 3:
        raise CommandError("ERR wrong number of arguments for 'acl|cat' command")
    category = _text(argv[2]).lower()
    if category not in CATEGORIES:
        raise CommandError(f"ERR Unknown category '{_text(argv[2])}'")
    return enc.bulk_array(cmd.name.encode() for cmd in TABLE.every() if in_category(cmd, category))


@handler("acl|log")
def acl_log(c: Client, argv: list[bytes]) -> bytes:
    log = c.server.acl.log
    count = 10
    if len(argv) > 3:
        raise CommandError("ERR wrong number of arguments for 'acl|log' command")
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            log.reset()
            return enc.OK
        count = arg_int(argv[2])
    now = c.server.now_ms()
    p: Resp2 = c.p
    return enc.array([_log_entry(p, e, now) for e in log.entries[: max(count, 0)]])


def _log_entry(p: Resp2, e: LogEntry, now_ms: int) -> bytes:
    age = max(now_ms - e.created_ms, 0) / 1000
    age_text = repr(age).encode() if p.version == 3 else b"%.17g" % age
    pairs = [
        (b"count", enc.integer(e.count)),
        (b"reason", enc.bulk(e.reason.encode())),
        (b"context", enc.bulk(e.context.encode())),
        (b"object", enc.bulk(e.object)),
        (b"username", enc.bulk(e.username)),
        (b"age-seconds", p.double(age_text)),
        (b"client-info", enc.bulk(e.client_info)),
    ]
    return p.map_encoded([(enc.bulk(k), v) for k, v in pairs])


@handler("acl|genpass")
def acl_genpass(c: Client, argv: list[bytes]) -> bytes:
    bits = 256
    if len(argv) > 3:
        raise CommandError("ERR wrong number of arguments for 'acl|genpass' command")
    if len(argv) == 3:
        bits = arg_int(argv[2])
        if bits <= 0 or bits > GENPASS_BITS_MAX:
            raise CommandError(
                "ERR ACL GENPASS argument must be the number of bits for the output "
                "password, a positive number up to 4096"
            )
    chars = (bits + 3) // 4
    value = c.server.secure_rng.getrandbits(chars * 4)
    return enc.bulk(b"%0*x" % (chars, value))


@handler("acl|dryrun")
def acl_dryrun(c: Client, argv: list[bytes]) -> bytes:
    u = c.server.acl.get(argv[2])
    if u is None:
        raise CommandError(f"ERR User '{_text(argv[2])}' not found")
    args = argv[3:]
    cmd = TABLE.find(args)
    if cmd is None or (cmd.subcommands and cmd.handler is None and len(args) < 2):
        raise CommandError(f"ERR Command '{_text(args[0])}' not found")
    n = len(args)
    if (cmd.arity > 0 and n != cmd.arity) or n < -cmd.arity:
        raise CommandError(f"ERR wrong number of arguments for '{cmd.name}' command")
    code, idx = u.check(cmd, args)
    if code == OK:
        return enc.OK
    text = {
        DENIED_CMD: f"This user has no permissions to run the '{cmd.name}' command",
        DENIED_KEY: f"This user has no permissions to access the '{_text(args[idx])}' key",
    }.get(code, f"This user has no permissions to access the '{_text(args[idx])}' channel")
    return enc.bulk(text.encode())


@handler("acl|load")
def acl_load(c: Client, argv: list[bytes]) -> bytes:
    store = c.server.acl_file
    if store is None:
        raise CommandError(NO_ACL_FILE)
    try:
        text = store.read()
    except OSError as e:
        raise CommandError(
            f"ERR Error loading ACLs, opening file '{store.path}': {e.strerror}"
        ) from None
    err = c.server.acl.load_text(text)
    if err is not None:
        raise CommandError(f"ERR Error loading ACLs: {err}")
    access.users_changed(c.server, c)
    return enc.OK


@handler("acl|save")
def acl_save(c: Client, argv: list[bytes]) -> bytes:
    store = c.server.acl_file
    if store is None:
        raise CommandError(NO_ACL_FILE)
    lines = acl_lines(c.server.acl.sorted_users())
    try:
        store.write(b"".join(line + b"\n" for line in lines))
    except OSError:
        raise CommandError(
            "ERR There was an error trying to save the ACLs. Please check the server logs "
            "for more information"
        ) from None
    return enc.OK


_HELP = [
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
]


@handler("acl|help")
def acl_help(c: Client, argv: list[bytes]) -> bytes:
    return enc.array([enc.simple(s) for s in _HELP])
