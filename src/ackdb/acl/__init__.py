"""Access control lists with Redis 7.0's semantics: users, their rules, their checks.

Owns: users and selectors (``users``, ``selector``), their written form (``describe``)
and the ACL LOG (``log``). Sans-IO: the engine, the command handlers and the endpoint
call it with requests and ``now_ms``; it never reads files, sockets or clocks.
"""

from __future__ import annotations

from .describe import describe_user
from .log import AclLog, LogEntry
from .selector import (
    CATEGORIES,
    DENIED_AUTH,
    DENIED_CHANNEL,
    DENIED_CMD,
    DENIED_KEY,
    OK,
    Selector,
)
from .users import (
    Acl,
    User,
    database_acl,
    hash_password,
    normalize_user_rule,
    parse_user_lines,
    split_acl_text,
)

__all__ = [
    "CATEGORIES",
    "DENIED_AUTH",
    "DENIED_CHANNEL",
    "DENIED_CMD",
    "DENIED_KEY",
    "OK",
    "Acl",
    "AclLog",
    "LogEntry",
    "Selector",
    "User",
    "database_acl",
    "describe_user",
    "hash_password",
    "normalize_user_rule",
    "parse_user_lines",
    "split_acl_text",
]
