"""Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.

Owns: Redis 7.2 semantics, replies and error texts of the bitmap family on the string
type (the bit arithmetic is ``keyspace.bits``): the offset limit (an offset whose byte is
at or past proto-max-bulk-len, 512 MB by default), argument checks before the key is looked up (7.2's
BITCOUNT / BITPOS order), the keyspace events (``setbit`` for SETBIT and BITFIELD, ``set``
or ``del`` for BITOP's destination). Every write propagates as itself (deterministic).
Never touches the network.
"""

from __future__ import annotations

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace import bits as kb
from ..keyspace.numbers import parse_int
from ..resp import encoder as enc
from .base import SYNTAX, CommandError, arg_int, get_string, read_string
from .table import handler

_BAD_OFFSET = "ERR bit offset is not an integer or out of range"
_BAD_BIT = "ERR bit is not an integer or out of range"
_BAD_TYPE = (
    "ERR Invalid bitfield type. Use something like i16 u8. "
    "Note that u64 is not supported but i64 is."
)


def bit_offset(c: Client, arg: bytes, hashed: bool = False, bits: int = 0) -> int:
    """Redis getBitOffsetFromArgument: a bit offset, ``#N`` meaning N fields of ``bits``;
    its byte must lie below proto-max-bulk-len."""
    use_hash = hashed and arg[:1] == b"#"
    n = parse_int(arg[1:] if use_hash else arg)
    if n is None:
        raise CommandError(_BAD_OFFSET)
    if use_hash:
        n *= bits
    if n < 0 or (n >> 3) >= c.server.config.get("proto-max-bulk-len"):
        raise CommandError(_BAD_OFFSET)
    return n


def _grown(c: Client, key: bytes, last_bit: int) -> tuple[bytearray, bool, bool]:
    """The string at ``key`` as a buffer holding bit ``last_bit`` (WRONGTYPE otherwise),
    whether the key existed, and whether it was created or lengthened — a change even
    when no bit moves (Redis lookupStringForBitCommand)."""
    cur = get_string(c.db, key)
    need = (last_bit >> 3) + 1
    buf = bytearray(b"" if cur is None else cur)
    grown = len(buf) < need
    if grown:
        buf.extend(bytes(need - len(buf)))
    return buf, cur is not None, grown


def _store(c: Client, key: bytes, buf: bytearray, existed: bool, changes: int) -> None:
    """Keep ``buf`` at ``key``; the event and the change count only when ``changes``
    (Redis creates the key even when nothing changed, as a FAILed BITFIELD INCRBY)."""
    db = c.db
    if existed:
        db.replace(key, bytes(buf))
    else:
        db.add_new(key, bytes(buf))
    if changes:
        c.server.dirty += changes
        c.server.notify(nt.STRING, b"setbit", key, db.index)


@handler("setbit")
def setbit(c: Client, argv: list[bytes]) -> bytes:
    offset = bit_offset(c, argv[2])
    bit = parse_int(argv[3])
    if bit is None or bit & ~1:
        raise CommandError(_BAD_BIT)
    db = c.db
    cur = db.lookup(argv[1])
    byte = offset >> 3
    if cur.__class__ is bytes and byte < len(cur):
        # Fast path, no growth: one copy of the string (values are immutable bytes).
        mask = 0x80 >> (offset & 7)
        was = 1 if cur[byte] & mask else 0
        if was != bit:
            db.replace(argv[1], b"%s%c%s" % (cur[:byte], cur[byte] ^ mask, cur[byte + 1 :]))
            c.server.dirty += 1
            c.server.notify(nt.STRING, b"setbit", argv[1], db.index)
        return enc.ONE if was else enc.ZERO
    buf, existed, grown = _grown(c, argv[1], offset)
    old = kb.set_bit(buf, offset, bit)
    if grown or old != bit:  # setting a bit to its value changes nothing (Redis 7)
        _store(c, argv[1], buf, existed, 1)
    return enc.ONE if old else enc.ZERO


@handler("getbit")
def getbit(c: Client, argv: list[bytes]) -> bytes:
    offset = bit_offset(c, argv[2])
    v = read_string(c, argv[1])
    return enc.ONE if v is not None and kb.get_bit(v, offset) else enc.ZERO


def _unit(arg: bytes) -> bool:
    """BYTE or BIT: True for BIT."""
    word = arg.lower()
    if word == b"bit":
        return True
    if word == b"byte":
        return False
    raise CommandError(SYNTAX)


def _clamp(start: int, end: int, total: int) -> tuple[int, int]:
    if start < 0:
        start = max(total + start, 0)
    if end < 0:
        end = max(total + end, 0)
    return start, min(end, total - 1)


@handler("bitcount")
def bitcount(c: Client, argv: list[bytes]) -> bytes:
    n = len(argv)
    if n not in (2, 4, 5):
        raise CommandError(SYNTAX)
    start = end = 0
    is_bit = False
    if n > 2:
        start, end = arg_int(argv[2]), arg_int(argv[3])
        if start < 0 and end < 0 and start > end:
            read_string(c, argv[1])  # counted as a lookup; WRONGTYPE still wins
            return enc.ZERO  # before BYTE / BIT is read (Redis's order)
        is_bit = n == 5 and _unit(argv[4])
    v = read_string(c, argv[1])
    if v is None:
        return enc.ZERO
    scale = 1 if is_bit else 8
    if n == 2:
        first, last = 0, len(v) * 8 - 1
    else:
        start, end = _clamp(start, end, len(v) * 8 // scale)
        first, last = start * scale, end * scale + scale - 1
    return enc.integer(kb.count_bits(v, first, last))


@handler("bitpos")
def bitpos(c: Client, argv: list[bytes]) -> bytes:
    n = len(argv)
    bit = arg_int(argv[2])
    if bit not in (0, 1):
        raise CommandError("ERR The bit argument must be 1 or 0.")
    if n > 6:
        raise CommandError(SYNTAX)
    start = end = 0
    is_bit = end_given = False
    if n >= 4:
        start = arg_int(argv[3])
        is_bit = n == 6 and _unit(argv[5])
        if n >= 5:
            end = arg_int(argv[4])
            end_given = True
    v = read_string(c, argv[1])
    if v is None:
        return enc.integer(-1 if bit else 0)
    scale = 1 if is_bit else 8
    total = len(v) * 8 // scale
    if not end_given:
        end = total - 1
    start, end = _clamp(start, end, total)
    if start > end:
        return enc.integer(-1)
    first, last = start * scale, end * scale + scale - 1
    pos = kb.find_bit(v, bit, first, last)
    if pos < 0 and not bit and not end_given:
        pos = last + 1  # looking for a clear bit: the string is zero-padded on the right
    return enc.integer(pos)


@handler("bitop")
def bitop(c: Client, argv: list[bytes]) -> bytes:
    op = argv[1].lower()
    if op not in (b"and", b"or", b"xor", b"not"):
        raise CommandError(SYNTAX)
    if op == b"not" and len(argv) != 4:
        raise CommandError("ERR BITOP NOT must be called with a single source key.")
    db = c.db
    dst = argv[2]
    sources = [read_string(c, k) or b"" for k in argv[3:]]
    length = max(len(s) for s in sources)
    if length:
        db.set(dst, kb.bitop(op, sources, length))
        c.server.notify(nt.STRING, b"set", dst, db.index)
        c.server.dirty += 1
    elif db.delete(dst):
        c.server.notify(nt.GENERIC, b"del", dst, db.index)
        c.server.dirty += 1
    return enc.integer(length)


def _field_type(arg: bytes) -> tuple[bool, int]:
    """Redis getBitfieldTypeFromArgument: (signed, bits) for i1..i64, u1..u63."""
    signed = arg[:1] == b"i"
    if not signed and arg[:1] != b"u":
        raise CommandError(_BAD_TYPE)
    bits = parse_int(arg[1:])
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise CommandError(_BAD_TYPE)
    return signed, bits


# One BITFIELD operation: (opcode b"get" / b"set" / b"incrby", signed, bits, offset,
# argument, overflow mode in force).
_Op = tuple[bytes, bool, int, int, int, int]


def _parse_bitfield(c: Client, argv: list[bytes]) -> tuple[list[_Op], int]:
    """The operations and the highest bit a write reaches (-1 when only GETs)."""
    ops: list[_Op] = []
    mode = kb.WRAP
    highest = -1
    j = 2
    n = len(argv)
    while j < n:
        sub = argv[j].lower()
        left = n - j - 1
        if sub == b"overflow" and left >= 1:
            kind = argv[j + 1].lower()
            modes = {b"wrap": kb.WRAP, b"sat": kb.SAT, b"fail": kb.FAIL}
            if kind not in modes:
                raise CommandError("ERR Invalid OVERFLOW type specified")
            mode = modes[kind]
            j += 2
            continue
        if not ((sub == b"get" and left >= 2) or (sub in (b"set", b"incrby") and left >= 3)):
            raise CommandError(SYNTAX)
        signed, bits = _field_type(argv[j + 1])
        offset = bit_offset(c, argv[j + 2], True, bits)
        arg = 0
        if sub != b"get":
            highest = max(highest, offset + bits - 1)
            arg = arg_int(argv[j + 3])
            j += 1
        ops.append((sub, signed, bits, offset, arg, mode))
        j += 3
    return ops, highest


def _apply(buf: bytearray, op: _Op) -> tuple[int | None, bool]:
    """One SET or INCRBY on ``buf``: its reply value (None when FAIL refused it) and
    whether the field changed."""
    sub, signed, bits, offset, arg, mode = op
    old = kb.get_field(buf, offset, bits, signed)
    if sub == b"incrby":
        over, new = kb.overflow(old, arg, bits, signed, mode)
        reply = new
    else:
        value = arg if signed else arg & (2**64 - 1)
        over, new = kb.overflow(value, 0, bits, signed, mode)
        reply = old
    if over and mode == kb.FAIL:
        return None, False
    kb.set_field(buf, offset, bits, new)
    return reply, new != old


def _bitfield(c: Client, argv: list[bytes], read_only: bool) -> bytes:
    ops, highest = _parse_bitfield(c, argv)
    key = argv[1]
    if highest < 0:
        v = read_string(c, key)
        values = [kb.get_field(v or b"", o[3], o[2], o[1]) for o in ops]
        return enc.array([enc.integer(x) for x in values])
    if read_only:
        raise CommandError("ERR BITFIELD_RO only supports the GET subcommand")
    buf, existed, grown = _grown(c, key, highest)
    replies = []
    changes = 0
    for op in ops:
        if op[0] == b"get":
            replies.append(enc.integer(kb.get_field(buf, op[3], op[2], op[1])))
            continue
        got, changed = _apply(buf, op)
        changes += got is not None and (grown or changed)
        replies.append(c.p.null if got is None else enc.integer(got))
    if changes or grown:
        _store(c, key, buf, existed, changes)
    return enc.array(replies)


@handler("bitfield")
def bitfield(c: Client, argv: list[bytes]) -> bytes:
    return _bitfield(c, argv, False)


@handler("bitfield_ro")
def bitfield_ro(c: Client, argv: list[bytes]) -> bytes:
    return _bitfield(c, argv, True)
