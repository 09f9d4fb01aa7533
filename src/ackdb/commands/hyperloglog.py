"""HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.

Owns: Redis 7.2 semantics, replies and error texts of the HyperLogLog family on string
values in Redis's representation (``keyspace.hll``): "WRONGTYPE Key is not a valid
HyperLogLog string value." for a string that is no HLL, "INVALIDOBJ Corrupted HLL object
detected" for registers that do not decode; the cached cardinality (PFCOUNT of one key
stores it, and that change propagates as the PFCOUNT itself, as Redis's may-replicate
PFCOUNT does); the ``pfadd`` event for PFADD and PFMERGE. Never touches the network.
"""

from __future__ import annotations

import random

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace import hll
from ..resp import encoder as enc
from .base import WRONGTYPE, CommandError, get_string, read_typed
from .table import handler

INVALID = "INVALIDOBJ Corrupted HLL object detected"
_NOT_HLL = "WRONGTYPE Key is not a valid HyperLogLog string value."


def _checked(v: object) -> bytes | None:
    """A looked-up value as an HLL (None when absent); Redis's errors otherwise."""
    if v is None:
        return None
    if v.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    assert isinstance(v, bytes)
    if not hll.is_valid_header(v):
        raise CommandError(_NOT_HLL)
    return v


def _max_bytes(c: Client) -> int:
    return int(c.server.config.get("hll-sparse-max-bytes"))


def _store(c: Client, key: bytes, buf: bytearray, existed: bool) -> None:
    if existed:
        c.db.replace(key, bytes(buf))
    else:
        c.db.add_new(key, bytes(buf))


@handler("pfadd")
def pfadd(c: Client, argv: list[bytes]) -> bytes:
    db = c.db
    key = argv[1]
    cur = _checked(db.lookup(key))
    buf = hll.new_sparse() if cur is None else bytearray(cur)
    updated = 1 if cur is None else 0
    limit = _max_bytes(c)
    try:
        for element in argv[2:]:
            changed, buf = hll.add(buf, element, limit)
            updated += changed
    except hll.Corrupt:
        if cur is not None and buf != cur:
            # Redis updates in place: what the elements before the bad one changed stays
            # (with no event and no propagation).
            db.replace(key, bytes(buf))
        raise CommandError(INVALID) from None
    if updated:
        hll.invalidate(buf)
        _store(c, key, buf, cur is not None)
        c.server.notify(nt.STRING, b"pfadd", key, db.index)
        c.server.dirty += updated
    return enc.ONE if updated else enc.ZERO


def _count_one(c: Client, argv: list[bytes]) -> bytes:
    key = argv[1]
    v = _checked(read_typed(c, key, bytes))
    if v is None:
        return enc.ZERO
    card = hll.cached(v)
    if card is not None:
        return enc.integer(card)
    try:
        card = hll.estimate(hll.registers(v))
    except hll.Corrupt:
        raise CommandError(INVALID) from None
    buf = bytearray(v)
    hll.set_cache(buf, card)
    c.db.replace(key, bytes(buf))
    srv = c.server
    srv.dirty += 1
    # A read-only command that changed the value: Redis propagates it (may_replicate).
    srv.propagate(c.db.index, argv)
    return enc.integer(card)


@handler("pfcount")
def pfcount(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) == 2:
        return _count_one(c, argv)
    regs = [0] * hll.REGISTERS
    for key in argv[1:]:
        v = _checked(read_typed(c, key, bytes))
        if v is None:
            continue
        try:
            hll.merge_max(regs, v)
        except hll.Corrupt:
            raise CommandError(INVALID) from None
    return enc.integer(hll.estimate(regs))


@handler("pfmerge")
def pfmerge(c: Client, argv: list[bytes]) -> bytes:
    regs = [0] * hll.REGISTERS
    dense = False
    for key in argv[1:]:
        v = _checked(read_typed(c, key, bytes))
        if v is None:
            continue
        dense = dense or v[4] == hll.DENSE
        try:
            hll.merge_max(regs, v)
        except hll.Corrupt:
            raise CommandError(INVALID) from None
    db = c.db
    dst = argv[1]
    cur = get_string(db, dst)
    buf = hll.new_sparse() if cur is None else bytearray(cur)
    try:
        if dense and buf[4] == hll.SPARSE:
            buf = hll.to_dense(buf)
        buf = hll.set_all(buf, regs, _max_bytes(c))
    except hll.Corrupt:
        raise CommandError(INVALID) from None
    hll.invalidate(buf)
    _store(c, dst, buf, cur is not None)
    c.server.notify(nt.STRING, b"pfadd", dst, db.index)
    c.server.dirty += 1
    return enc.OK


@handler("pfdebug")
def pfdebug(c: Client, argv: list[bytes]) -> bytes:
    sub = argv[1].lower()
    key = argv[2]
    v = _checked(c.db.lookup(key))
    if v is None:
        raise CommandError("ERR The specified key does not exist")
    name = argv[1].decode(errors="replace")
    if sub in (b"getreg", b"decode", b"encoding", b"todense") and len(argv) != 3:
        raise CommandError(f"ERR Wrong number of arguments for the '{name}' subcommand")
    if sub in (b"getreg", b"todense"):
        converted = v[4] == hll.SPARSE
        if converted:
            try:
                c.db.replace(key, bytes(hll.to_dense(v)))
            except hll.Corrupt:
                raise CommandError(INVALID) from None
            c.server.dirty += 1  # Redis forces the encoding change through
        if sub == b"todense":
            return enc.ONE if converted else enc.ZERO
        regs = hll.dense_registers(c.db.lookup(key))
        return enc.array([enc.integer(r) for r in regs])
    if sub == b"decode":
        if v[4] != hll.SPARSE:
            raise CommandError("ERR HLL encoding is not sparse")
        return enc.bulk(hll.decode(v))
    if sub == b"encoding":
        return enc.simple(b"dense" if v[4] == hll.DENSE else b"sparse")
    raise CommandError(f"ERR Unknown PFDEBUG subcommand '{name}'")


@handler("pfselftest")
def pfselftest(c: Client, argv: list[bytes]) -> bytes:
    """Checks the dense register packing and that the sparse and dense encodings of the
    same elements agree register by register and in their estimate."""
    rng = random.Random(0)
    dense = bytearray(hll.DENSE_SIZE)
    expected = [rng.randrange(64) for _ in range(hll.REGISTERS)]
    for i, r in enumerate(expected):
        hll.dense_put(dense, i, r)
    for i, r in enumerate(expected):
        if hll.dense_get(dense, i) != r:
            raise CommandError(f"ERR TESTFAILED Register error at {i}")
    sparse = hll.new_sparse()
    other = hll.to_dense(hll.new_sparse())
    for n in range(2000):
        element = b"%d" % rng.getrandbits(32)
        _, sparse = hll.add(sparse, element, hll.DENSE_SIZE)
        _, other = hll.add(other, element, hll.DENSE_SIZE)
        if n % 500 == 0 and hll.registers(sparse) != hll.registers(other):
            raise CommandError("ERR TESTFAILED sparse and dense registers differ")
    if hll.estimate(hll.registers(sparse)) != hll.estimate(hll.registers(other)):
        raise CommandError("ERR TESTFAILED sparse and dense estimates differ")
    return enc.OK
