"""ACL LOG: the recent denials (commands, keys, channels) and failed logins.

Owns: ``AclLog`` -- entries newest first, at most ``max_len`` (``acllog-max-len``); a
denial like one logged less than ``GROUPING_MS`` ago (same reason, context, object and
user) counts into that entry and moves it to the front, as Redis 7.0 does. Time comes in
as ``now_ms``; the client's CLIENT LIST line is given by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

# Redis groups a denial into an entry younger than this (ACL_LOG_GROUPING_MAX_TIME_DELTA).
GROUPING_MS = 60_000

REASONS = {1: "command", 2: "key", 3: "auth", 4: "channel"}


@dataclass(slots=True)
class LogEntry:
    count: int
    reason: str  # command | key | channel | auth
    context: str  # toplevel | multi | lua
    object: bytes  # the command's full name, the key, the channel, or AUTH's command
    username: bytes
    created_ms: int
    client_info: bytes


class AclLog:
    def __init__(self, max_len: int = 128) -> None:
        self.max_len = max_len
        self.entries: list[LogEntry] = []  # newest first

    def add(
        self,
        reason: str,
        context: str,
        obj: bytes,
        username: bytes,
        now_ms: int,
        client_info: bytes,
    ) -> None:
        for i, e in enumerate(self.entries):
            if (
                e.reason == reason
                and e.context == context
                and e.object == obj
                and e.username == username
                and now_ms - e.created_ms < GROUPING_MS
            ):
                e.count += 1
                e.created_ms = now_ms
                e.client_info = client_info
                del self.entries[i]
                self.entries.insert(0, e)
                return
        self.entries.insert(0, LogEntry(1, reason, context, obj, username, now_ms, client_info))
        self.trim()

    def trim(self) -> None:
        del self.entries[max(self.max_len, 0) :]

    def reset(self) -> None:
        self.entries = []
