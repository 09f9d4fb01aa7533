"""The cluster secret and the secrets derived from it.

Owns: the secret file's format and rules -- 32 random bytes as 64 hex characters plus a
newline, mode 0600, created once (at bootstrap, or copied to a joining node) and never
rewritten -- and the derivation of per-purpose secrets (HMAC-SHA256 of the purpose under
the cluster secret), so the shards' internal password, the peer links' key and anything
later never share a value and none of them needs its own file.

Where it lives: each node's data directory holds ``cluster.secret`` (``secret_path``);
``provision_secret`` puts it there when a node starts (created for a one-voter bootstrap,
copied from ``--cluster-secret-file`` otherwise, and from then on read from the data
directory: a different file given later is refused), and ``node_secret`` reads it for the
node's services (the Raft member, the shard supervisor).

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
SECRET_FILE = "cluster.secret"
SHARD_AUTH = b"ackdb shard auth v1"
PEER_AUTH = b"ackdb peer auth v1"


class SecretError(Exception):
    """A secret file that is missing, unreadable or malformed."""


class MissingSecret(SecretError):
    """A data directory without a secret, and nothing to take one from."""


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


def secret_path(data_dir: str) -> str:
    return os.path.join(data_dir, SECRET_FILE)


def node_secret(data_dir: str) -> bytes:
    """The cluster secret of the node whose data directory is ``data_dir`` (placed there
    by ``provision_secret`` when the node started); SecretError if there is none."""
    return read_secret(secret_path(data_dir))


def provision_secret(data_dir: str, given: str | None, may_create: bool) -> tuple[bytes, str]:
    """Make sure ``data_dir`` holds the node's secret; returns it and what was done
    ("kept", "copied" or "created").

    - the data directory has one: it is the node's; ``given`` must hold the same secret
      (a node never changes cluster);
    - else ``given`` (``--cluster-secret-file``) is copied there;
    - else, if ``may_create`` (a one-voter bootstrap), a new secret is created;
    - else SecretError (the caller says which option is missing).
    """
    path = secret_path(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    if os.path.exists(path):
        secret = read_secret(path)
        if given is not None and read_secret(given) != secret:
            raise SecretError(
                f"{given} holds another secret than {path}: this node belongs to the "
                f"cluster whose secret is in {path} (a node never changes cluster; to add "
                "it to another one, start it with an empty data directory)"
            )
        return secret, "kept"
    if given is not None:
        secret = read_secret(given)
        write_secret(path, secret)
        return secret, "copied"
    if may_create:
        secret = new_secret()
        write_secret(path, secret)
        return secret, "created"
    raise MissingSecret(f"no cluster secret in {data_dir}")
