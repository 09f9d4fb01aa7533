"""One client connection of a leaderless coordinator: its levels, receipts and tokens.

Owns: the connection's read and write levels (the database's defaults until
``CONSISTENCY`` sets them), whether receipts are on, the last receipt, the session
token of its last write, and the tokens of its recent writes per key (read-your-writes:
``token_for``). Also the token itself (``Token``): its text form and the **covers** rule.
Never does IO, never reads a clock.

A session token names one write: the key, the version it was written at, what it wrote
(a whole-key write, an expiry, or which hash fields) and the replicas (node ids) that
acknowledged it. A record read later **covers** the token when it holds that write or a
newer one in the same place:

- its whole-key version (base, or the TTL-clearing version) is >= the token's version
  (a whole-key write at or after the token's supersedes everything the token wrote); or
- a whole-key token (SET, DEL): nothing more -- only the base counts;
- an expiry token: the record's expiry cell is at or after the token's version;
- a field token: every field it wrote has a cell at or after the token's version.

A read that presents a token (``AFTER``, or the connection's own recent write of the
key) is read first from one of the token's replicas, then from the next of them while
the record it gets does not cover the token, waiting and trying again (bounded) while
none does, then fails with ``TRYAGAIN`` -- the plan is ``tokenread.TokenRead``, carried
out by coordinator/endpoint.py and by the simulator. Tokens of other keys constrain
nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ..keyspace import lww
from ..keyspace.lww import Record, Version
from .levels import Level

# Tokens a connection keeps for its own recent writes (read-your-writes), one per key.
SESSION_TOKENS_MAX = 1024
WHOLE, EXPIRY, FIELDS = "k", "e", "f"


@dataclass(frozen=True, slots=True)
class Token:
    key: bytes
    version: Version
    kind: str  # WHOLE | EXPIRY | FIELDS
    fields: tuple[bytes, ...]
    replicas: tuple[str, ...]  # node ids that acknowledged

    def text(self) -> bytes:
        """``<version>:<kind>:<hex key>:<hex fields, comma separated>:<node ids, hex>``."""
        return b":".join(
            (
                self.version.to_bytes(),
                self.kind.encode(),
                self.key.hex().encode(),
                b",".join(f.hex().encode() for f in self.fields),
                b",".join(n.encode().hex().encode() for n in self.replicas),
            )
        )

    @staticmethod
    def parse(b: bytes) -> Token:
        """ValueError when malformed."""
        parts = b.split(b":")
        if len(parts) != 5 or parts[1] not in (b"k", b"e", b"f"):
            raise ValueError("bad token")
        v = Version.parse(parts[0])
        fields = tuple(bytes.fromhex(f.decode()) for f in parts[3].split(b",") if f)
        nodes = tuple(bytes.fromhex(n.decode()).decode() for n in parts[4].split(b",") if n)
        return Token(bytes.fromhex(parts[2].decode()), v, parts[1].decode(), fields, nodes)

    @staticmethod
    def of_write(key: bytes, rec: Record, replicas: tuple[str, ...]) -> Token:
        """The token of ``rec`` written to ``key`` (a write's record has one version)."""
        v = rec.newest()
        if rec.base_kind != lww.NONE or rec.ttl_clear != lww.ZERO:
            return Token(key, v, WHOLE, (), replicas)
        if rec.expiry is not None:
            return Token(key, v, EXPIRY, (), replicas)
        return Token(key, v, FIELDS, tuple(sorted(rec.fields)), replicas)

    def covered_by(self, rec: Record | None) -> bool:
        if rec is None:
            return False
        v = self.version
        if rec.base_version >= v or rec.ttl_clear >= v:
            return True
        if self.kind == WHOLE:
            return False
        if self.kind == EXPIRY:
            return rec.expiry is not None and rec.expiry[0] >= v
        return all(f in rec.fields and rec.fields[f][0] >= v for f in self.fields)


@dataclass(frozen=True, slots=True)
class LastReceipt:
    replicas: tuple[str, ...]
    version: Version
    repaired: tuple[str, ...]
    level: str


class Session:
    """See the module docstring."""

    def __init__(self, client_id: int, read_level: Level, write_level: Level) -> None:
        self.client_id = client_id
        self.protocol = 2
        self.authenticated = False
        self.internal = False  # logged in with the shards' password (ackdb-internal)
        self.name = b""
        self.read_level: Level | None = None  # None: the database's default
        self.write_level: Level | None = None
        self.default_read, self.default_write = read_level, write_level
        self.receipts = False
        self.last_receipt: LastReceipt | None = None
        self.last_token: Token | None = None
        self._tokens: OrderedDict[bytes, Token] = OrderedDict()
        self.closing = False
        self.commands = 0

    def levels(self) -> tuple[Level, Level]:
        return (self.read_level or self.default_read, self.write_level or self.default_write)

    def set_defaults(self, read_level: Level, write_level: Level) -> None:
        """The database's defaults changed (a new topology)."""
        self.default_read, self.default_write = read_level, write_level

    def wrote(self, token: Token) -> None:
        self.last_token = token
        tokens = self._tokens
        tokens[token.key] = token
        tokens.move_to_end(token.key)
        while len(tokens) > SESSION_TOKENS_MAX:
            tokens.popitem(last=False)

    def token_for(self, key: bytes) -> Token | None:
        return self._tokens.get(key)

    def reset(self) -> None:
        self.protocol = 2
        self.name = b""
        self.read_level = self.write_level = None
        self.receipts = False
        self.last_receipt = None
        self.last_token = None
        self._tokens.clear()
