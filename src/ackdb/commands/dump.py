"""DUMP and RESTORE.

Owns: Redis 7.0's RESTORE (cluster.c restoreCommand): option parsing (REPLACE, ABSTTL,
IDLETIME and FREQ, which exclude each other), its errors in Redis's order (syntax and
option values, BUSYKEY, the TTL, then the payload: "DUMP payload version or checksum are
wrong" for a payload that is not ackdb's of this version, "Bad data format" for one whose
checksum holds but whose body is no value), a TTL already past (the key is not created; a
replaced key is deleted and that propagates as DEL / UNLINK), a relative TTL propagated
as absolute with ABSTTL appended, and the ``restore`` event. DUMP's payload is
``keyspace.dumpfmt``'s, not Redis's RDB bytes. Never touches the network.

IDLETIME and FREQ are checked as Redis checks them and then dropped: ackdb keeps no
per-key access clock or counter (docs/compat.md).
"""

from __future__ import annotations

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace import dumpfmt
from ..resp import encoder as enc
from .base import SYNTAX, CommandError, arg_int, read_key
from .table import handler


@handler("dump")
def dump(c: Client, argv: list[bytes]) -> bytes:
    v = read_key(c, argv[1])
    if v is None:
        return c.p.null
    return enc.bulk(dumpfmt.dump(v))


def _options(argv: list[bytes]) -> tuple[bool, bool]:
    """(REPLACE, ABSTTL); Redis's errors for the rest."""
    replace = absttl = False
    idle = freq = -1
    j, n = 4, len(argv)
    while j < n:
        opt = argv[j].lower()
        more = n - j - 1
        if opt == b"replace":
            replace = True
        elif opt == b"absttl":
            absttl = True
        elif opt == b"idletime" and more >= 1 and freq == -1:
            idle = arg_int(argv[j + 1])
            if idle < 0:
                raise CommandError("ERR Invalid IDLETIME value, must be >= 0")
            j += 1
        elif opt == b"freq" and more >= 1 and idle == -1:
            freq = arg_int(argv[j + 1])
            if freq < 0 or freq > 255:
                raise CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255")
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    return replace, absttl


@handler("restore")
def restore(c: Client, argv: list[bytes]) -> bytes:
    replace, absttl = _options(argv)
    db, srv = c.db, c.server
    key = argv[1]
    if not replace and db.lookup(key) is not None:
        raise CommandError("BUSYKEY Target key name already exists.")
    ttl = arg_int(argv[2])
    if ttl < 0:
        raise CommandError("ERR Invalid TTL value, must be >= 0")
    try:
        value = dumpfmt.restore(argv[3])
    except dumpfmt.WrongPayload:
        raise CommandError("ERR DUMP payload version or checksum are wrong") from None
    except dumpfmt.BadData:
        raise CommandError("ERR Bad data format") from None
    deleted = replace and db.lookup(key) is not None and db.delete(key)
    now = srv.now_ms()
    if ttl and not absttl:
        ttl += now
    if ttl and ttl <= now and not srv.loading and not srv.role_replica:
        if deleted:
            lazy = srv.config.get("lazyfree-lazy-server-del")
            c.prop = [[b"UNLINK" if lazy else b"DEL", key]]
            srv.notify(nt.GENERIC, b"del", key, db.index)
            srv.dirty += 1
        return enc.OK
    db.add_new(key, value)
    if ttl:
        db.set_expire(key, ttl)
        if not absttl:
            c.prop = [[argv[0], key, b"%d" % ttl, *argv[3:], b"ABSTTL"]]
    srv.notify(nt.GENERIC, b"restore", key, db.index)
    srv.dirty += 1
    return enc.OK
