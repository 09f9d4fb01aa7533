"""The server's ACL files: the ``aclfile`` and the config file's ``user`` lines.

Owns: reading and atomically rewriting the ``aclfile`` (the engine's ``AclFile`` port,
for ACL LOAD / ACL SAVE) and loading the users at start-up (Redis's
ACLLoadUsersAtStartup). The rules and their errors are ``ackdb.acl``'s; this module only
moves text between disk and the core.
"""

from __future__ import annotations

import os
import tempfile

from ..acl import parse_user_lines
from ..engine.core import Server
from .config import Config


class AclStartupError(Exception):
    """The users cannot be loaded: Redis refuses to start."""


class AclFileStore:
    """The ``aclfile``: read whole, replaced by rename (a crash leaves old or new)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self) -> str:
        with open(self.path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")

    def write(self, data: bytes) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, temp = tempfile.mkstemp(prefix=os.path.basename(self.path) + ".", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise


def load_users_at_startup(core: Server, config: Config) -> None:
    """The ``user`` lines (the default user keeps ``requirepass`` unless one redefines
    it), or the ``aclfile``; AclStartupError with Redis's reason when they are wrong."""
    path = config.get("aclfile")
    if path:
        store = AclFileStore(path)
        core.acl_file = store
        try:
            text = store.read()
        except OSError as e:
            raise AclStartupError(
                f"Error loading ACLs, opening file '{path}': {e.strerror}"
            ) from None
        err = core.acl.load_text(text)
        if err is not None:
            raise AclStartupError(err)
        return
    if config.user_lines:
        lines = [
            (n, [w.encode("utf-8", "surrogateescape") for w in words])
            for n, words in config.user_lines
        ]
        users = parse_user_lines(core.acl, lines)
        if isinstance(users, str):
            raise AclStartupError(users)
        core.acl.replace_all(users, keep_default=True)
