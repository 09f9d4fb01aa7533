"""Last-write-wins records: the value a leaderless replica stores per key.

Owns: the version type (``Version``: hybrid logical clock time, see
``leaderless/hlc.py``), the record of one key (``Record``), its merge (the join of a
semilattice: commutative, associative, idempotent, and never lowering any version), its
canonical encoding (wire, AOF and snapshot), its digest, and the hash-tree leaves a
replica answers for anti-entropy. Shared by the replica's commands (``commands/
leaderless.py``) and the coordinator (``leaderless/``), so both apply one rule. Never
decides *when* to write or whom to ask; sans-IO.

A record holds

- a **base cell**: the last whole-key write -- ``STRING`` (SET), ``DELETED`` (DEL, a
  tombstone with its version) or ``NONE`` (no whole-key write seen: version ``ZERO``);
- **field cells**: per hash field, the last field write -- a value (HSET) or ``None``
  (HDEL, a field tombstone) with its version. Only fields *newer* than the base are kept:
  a whole-key write at version v supersedes every field written before v.

What a reader sees (``view``): if any field cell exists, the key is a hash of its live
fields (absent when none is live); otherwise the base decides: a string, a deleted key
(its tombstone's version is kept: "deleted at v" differs from "never existed"), or
nothing. So type conflicts (SET racing HSET) resolve by version like everything else.

Expiry (the EXPIRE family): two more cells. ``expiry`` is the last expiry write --
``(version, at_ms)``, ``at_ms`` 0 meaning PERSIST -- and ``ttl_clear`` the version of the
last whole-key write that drops a TTL (SET without KEEPTTL, DEL). The expiry cell is in
effect only while it is not older than ``ttl_clear`` (SET EX writes both at one version), so "a whole-key write newer than the
expiry clears it unless KEEPTTL" holds, and both cells merge by "newer wins" on their own
(a product of two max-semilattices: still a join). A record whose effective expiry time
passed reads as absent (``view_at``). Expired records are not collected: a replica
deleting one on its own could let an older copy elsewhere come back (the zombie rule of
tombstones), so they stay until overwritten.

Merge = the newer base; per field the newer cell; then fields not newer than the base
are dropped. Versions are totally ordered (the node id breaks ties), so "newer" is
never ambiguous and every replica that saw the same writes holds the same record.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import msgpack

from .types import register


class Version(NamedTuple):
    """A hybrid logical clock time: wall milliseconds, a logical counter, the issuing
    node's id (the deterministic tie-break). Compared as a tuple."""

    ms: int
    logical: int
    node: int

    def to_bytes(self) -> bytes:
        return b"%d.%d.%d" % (self.ms, self.logical, self.node)

    @staticmethod
    def parse(b: bytes) -> Version:
        """``ms.logical.node``; ValueError when malformed or negative."""
        parts = b.split(b".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError("bad version")
        return Version(int(parts[0]), int(parts[1]), int(parts[2]))


ZERO = Version(0, 0, 0)

NONE, STRING, DELETED = 0, 1, 2
# (version, value or None for a field tombstone)
FieldCell = tuple[Version, bytes | None]
# (version, absolute expiry time in ms; 0: PERSIST)
ExpiryCell = tuple[Version, int]


class Record:
    """One key's versioned state (see the module docstring)."""

    __slots__ = ("base_kind", "base_value", "base_version", "expiry", "fields", "ttl_clear")

    def __init__(
        self,
        base_version: Version = ZERO,
        base_kind: int = NONE,
        base_value: bytes | None = None,
        fields: dict[bytes, FieldCell] | None = None,
        expiry: ExpiryCell | None = None,
        ttl_clear: Version = ZERO,
    ) -> None:
        self.base_version = base_version
        self.base_kind = base_kind
        self.base_value = base_value
        self.fields: dict[bytes, FieldCell] = {} if fields is None else fields
        self.expiry = expiry  # (version, at_ms; 0: persist), kept only if >= ttl_clear
        self.ttl_clear = ttl_clear

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.base_version == other.base_version
            and self.base_kind == other.base_kind
            and self.base_value == other.base_value
            and self.fields == other.fields
            and self.expiry == other.expiry
            and self.ttl_clear == other.ttl_clear
        )

    def __repr__(self) -> str:
        return (
            f"Record({self.base_version}, {self.base_kind}, {self.base_value!r}, {self.fields!r},"
            f" {self.expiry!r}, {self.ttl_clear!r})"
        )

    def copy(self) -> Record:
        return Record(
            self.base_version,
            self.base_kind,
            self.base_value,
            dict(self.fields),
            self.expiry,
            self.ttl_clear,
        )

    def newest(self) -> Version:
        """The highest version the record holds (ZERO for an empty record)."""
        v = max(self.base_version, self.ttl_clear)
        for fv, _ in self.fields.values():
            if fv > v:
                v = fv
        if self.expiry is not None and self.expiry[0] > v:
            v = self.expiry[0]
        return v

    def is_tombstone(self) -> bool:
        """Only a whole-key delete: nothing live, no field cells, no expiry cell."""
        return self.base_kind == DELETED and not self.fields and self.expiry is None

    def expires_at(self) -> int | None:
        """The effective expiry time in ms, or None (no TTL)."""
        e = self.expiry
        if e is None or e[1] == 0:
            return None
        return e[1]

    def view_at(self, now_ms: int) -> tuple[str, Any]:
        """``view`` at ``now_ms``: a record whose expiry time passed reads as absent."""
        at = self.expires_at()
        if at is not None and at <= now_ms:
            return "absent", None
        return self.view()

    def view(self) -> tuple[str, Any]:
        """What a reader sees: ("string", bytes) | ("hash", {field: value}) |
        ("deleted", version) | ("absent", None)."""
        if self.fields:
            live = {f: v for f, (_, v) in self.fields.items() if v is not None}
            if live:
                return "hash", live
            return "deleted", self.newest()
        if self.base_kind == STRING:
            return "string", self.base_value
        if self.base_kind == DELETED:
            return "deleted", self.base_version
        return "absent", None


# -- writes as records ---------------------------------------------------------------


def string_write(v: Version, value: bytes, keep_ttl: bool = False) -> Record:
    """SET: drops the key's TTL (``ttl_clear``) unless ``keep_ttl`` (KEEPTTL)."""
    return Record(v, STRING, value, ttl_clear=ZERO if keep_ttl else v)


def delete_write(v: Version) -> Record:
    return Record(v, DELETED, ttl_clear=v)


def string_write_ex(v: Version, value: bytes, at_ms: int) -> Record:
    """SET with EX / PX / EXAT / PXAT: the value and its new TTL at one version."""
    return Record(v, STRING, value, expiry=(v, at_ms), ttl_clear=v)


def expiry_write(v: Version, at_ms: int) -> Record:
    """EXPIRE family (``at_ms`` > 0) and PERSIST (``at_ms`` 0) at version ``v``."""
    assert at_ms >= 0
    return Record(expiry=(v, at_ms))


def fields_write(v: Version, pairs: dict[bytes, bytes | None]) -> Record:
    """HSET (values) and HDEL (None) of several fields at one version."""
    return Record(fields={f: (v, x) for f, x in pairs.items()})


# -- merge -----------------------------------------------------------------------------


def merge(a: Record, b: Record) -> Record:
    """The join of ``a`` and ``b``: a new record; neither input changes."""
    out = a.copy()
    merge_into(out, b)
    return out


def merge_into(a: Record, b: Record) -> bool:
    """Fold ``b`` into ``a`` in place; True when ``a`` changed. Never lowers a version:
    this is the compare-and-set of repair (a newer concurrent write always survives)."""
    changed = False
    fields = a.fields
    if b.base_version > a.base_version or (
        b.base_version == a.base_version and _base_key(b) > _base_key(a)
    ):
        a.base_version, a.base_kind, a.base_value = b.base_version, b.base_kind, b.base_value
        changed = True
        base = a.base_version
        stale = [f for f, (fv, _) in fields.items() if fv <= base]
        for f in stale:
            del fields[f]
    base = a.base_version
    for f, cell in b.fields.items():
        if cell[0] <= base:
            continue
        mine = fields.get(f)
        if (
            mine is None
            or cell[0] > mine[0]
            or (cell[0] == mine[0] and _cell_key(cell) > _cell_key(mine))
        ):
            fields[f] = cell
            changed = True
    if b.ttl_clear > a.ttl_clear or (b.expiry is not None and b.expiry != a.expiry):
        changed = _merge_expiry(a, b) or changed
    return changed


def _merge_expiry(a: Record, b: Record) -> bool:
    """The expiry cells: the newer ``ttl_clear``, the newer expiry cell, and the expiry
    dropped when a whole-key write at or after it cleared it. True when ``a`` changed."""
    before = (a.expiry, a.ttl_clear)
    clear = max(a.ttl_clear, b.ttl_clear)
    e = a.expiry
    if b.expiry is not None and (e is None or b.expiry > e):
        e = b.expiry
    if e is not None and e[0] < clear:
        e = None
    a.expiry, a.ttl_clear = e, clear
    return (e, clear) != before


def _base_key(r: Record) -> tuple[int, bytes]:
    """Orders two different bases of one version. One version is one write, so this only
    happens with forged input; ordering it anyway keeps merge a join on any input."""
    return r.base_kind, r.base_value or b""


def _cell_key(cell: FieldCell) -> tuple[bool, bytes]:
    return cell[1] is not None, cell[1] or b""


def covers(a: Record, b: Record) -> bool:
    """True when ``a`` already holds everything ``b`` says (merge(a, b) == a)."""
    return merge(a, b) == a


# -- encoding --------------------------------------------------------------------------


def to_plain(r: Record) -> list[Any]:
    """Canonical plain form (fields sorted), for msgpack on the wire and on disk."""
    flat: list[Any] = []
    for f in sorted(r.fields):
        fv, x = r.fields[f]
        flat.extend((f, fv.ms, fv.logical, fv.node, x))
    bv = r.base_version
    out = [bv.ms, bv.logical, bv.node, r.base_kind, r.base_value, flat]
    if r.expiry is not None or r.ttl_clear != ZERO:
        # Only records with expiry cells carry the 7th element: records without keep the
        # encoding (and so the digests and tree leaves) they had before expiry existed.
        ev, at = r.expiry if r.expiry is not None else (ZERO, -1)
        c = r.ttl_clear
        out.append([ev.ms, ev.logical, ev.node, at, c.ms, c.logical, c.node])
    return out


def from_plain(p: Any) -> Record:
    """ValueError on anything that is not a well-formed plain record."""
    try:
        ms, lg, node, kind, value, flat = p[:6]
        expiry, clear = _expiry_cells(p[6:])
        if kind not in (NONE, STRING, DELETED) or len(flat) % 5:
            raise ValueError("bad record")
        if (kind == STRING) != (value.__class__ is bytes) or (kind != STRING and value is not None):
            raise ValueError("bad record value")
        fields: dict[bytes, FieldCell] = {}
        for i in range(0, len(flat), 5):
            f, fm, fl, fn, x = flat[i : i + 5]
            if f.__class__ is not bytes or not (x is None or x.__class__ is bytes):
                raise ValueError("bad field")
            fields[f] = (_version(fm, fl, fn), x)
        base = _version(ms, lg, node)
        # Canonical form: fields not newer than the base are superseded (forged input).
        fields = {f: c for f, c in fields.items() if c[0] > base}
        if expiry is not None and expiry[0] < clear:
            expiry = None
        return Record(base, kind, value, fields, expiry, clear)
    except (TypeError, AttributeError) as e:
        raise ValueError("bad record") from e


def _expiry_cells(rest: Any) -> tuple[ExpiryCell | None, Version]:
    """The optional 7th element of a plain record: (expiry cell, ttl_clear)."""
    if not rest:
        return None, ZERO
    if len(rest) != 1 or len(rest[0]) != 7:
        raise ValueError("bad record")
    em, el, en, at, cm, cl, cn = rest[0]
    if at.__class__ is not int or at < -1:
        raise ValueError("bad expiry")
    clear = _version(cm, cl, cn)
    if at == -1:
        return None, clear
    return (_version(em, el, en), at), clear


def _version(ms: Any, lg: Any, node: Any) -> Version:
    if not all(x.__class__ is int and x >= 0 for x in (ms, lg, node)):
        raise ValueError("bad version")
    return Version(ms, lg, node)


def encode(r: Record) -> bytes:
    return msgpack.packb(to_plain(r), use_bin_type=True)  # type: ignore[no-any-return]


def decode(b: bytes) -> Record:
    """ValueError on malformed bytes."""
    try:
        p = msgpack.unpackb(b, raw=True, use_list=True)
    except Exception as e:  # msgpack raises several unrelated types on bad input
        raise ValueError("bad record encoding") from e
    return from_plain(p)


def digest(r: Record) -> bytes:
    """8 bytes identifying the record's content (two equal records, equal digests)."""
    return hashlib.blake2b(encode(r), digest_size=8).digest()


# -- hash-tree leaves ------------------------------------------------------------------

# Depth of the anti-entropy tree (2**depth leaves) a replica answers at most.
TREE_DEPTH_MAX = 16


def leaf_of(key: bytes, depth: int) -> int:
    """The leaf a key belongs to: the top ``depth`` bits of a hash of the key, so a
    leaf is a fixed range of the hash space on every replica."""
    h = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return h >> (64 - depth) if depth else 0


def entry_hash(key: bytes, r: Record) -> int:
    """A 64-bit hash of (key, record content); a leaf is the XOR of its entries' hashes,
    computed afresh from the stored records (never folded in incrementally, so a write
    applied twice cannot cancel itself out)."""
    d = hashlib.blake2b(digest_size=8)
    d.update(len(key).to_bytes(4, "big"))
    d.update(key)
    d.update(encode(r))
    return int.from_bytes(d.digest(), "big")


def tree_leaves(items: Any, depth: int) -> list[int]:
    """Leaf hashes over ``(key, Record)`` items (every other value is skipped)."""
    leaves = [0] * (1 << depth)
    for key, r in items:
        if r.__class__ is Record:
            leaves[leaf_of(key, depth)] ^= entry_hash(key, r)
    return leaves


def _encoding(value: Record, limits: dict[str, int]) -> bytes:
    return b"lww"


register(Record, b"leaderless", _encoding)
