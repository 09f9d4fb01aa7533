"""The cluster secret and the secrets derived from it.

Owns: the secret file's format and rules -- 32 random bytes as 64 hex characters plus a
newline, mode 0600, created once (at bootstrap, or copied to a joining node) and never
rewritten -- and the derivation of per-purpose secrets (HMAC-SHA256 of the purpose under
the cluster secret), so the shards' internal password, the peer links' key and anything
later never share a value and none of them needs its own file.

Purposes in use: ``SHARD_AUTH`` (the password shard processes require: the node's agent
and the proxies authenticate with it; replicas use it as ``masterauth``), ``PEER_AUTH``
(the key of the Raft links' handshake).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

SECRET_BYTES = 32
SHARD_AUTH = b"ackdb shard auth v1"
PEER_AUTH = b"ackdb peer auth v1"


class SecretError(Exception):
    """A secret file that is missing, unreadable or malformed."""


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def encode(secret: bytes) -> bytes:
    return secret.hex().encode() + b"\n"


def decode(data: bytes) -> bytes:
    text = data.strip()
    try:
        secret = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise SecretError("a cluster secret is 64 hexadecimal characters") from None
    if len(secret) != SECRET_BYTES:
        raise SecretError("a cluster secret is 64 hexadecimal characters")
    return secret


def write_secret(path: str, secret: bytes) -> None:
    """Write ``secret`` to ``path`` (mode 0600), atomically; an existing file is kept
    only if it holds the same secret (a node never silently changes cluster)."""
    if os.path.exists(path):
        if read_secret(path) != secret:
            raise SecretError(f"{path} holds another cluster's secret")
        return
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, encode(secret))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_secret(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return decode(f.read(4096))
    except OSError as e:
        raise SecretError(f"cannot read the cluster secret {path}: {e.strerror}") from None


def derive(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, purpose, hashlib.sha256).digest()


def shard_password(secret: bytes) -> str:
    """The password every shard process requires (``requirepass`` / ``masterauth``)."""
    return derive(secret, SHARD_AUTH).hex()
