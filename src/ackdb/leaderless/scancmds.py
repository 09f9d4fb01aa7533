"""SCAN, KEYS, DBSIZE and RANDOMKEY-free key listing on a leaderless database, at the
requested read level.

Owns: the plans of SCAN (MATCH / COUNT / TYPE), KEYS and DBSIZE over every partition,
each page a ``ScanPage`` (``leaderless/scans.ScanRequest``: the leaves' records from as
many replicas as the level needs, merged, tombstones and expired records hidden), and the
cursor: ``partition * LEAVES + next leaf`` (0: start, and the end). The leaves are fixed
ranges of the key hash, the same on every replica, so a cursor means one thing on every
replica and every coordinator. ``COUNT`` is the number of leaves a page covers (at least
1; the keys per leaf vary). Never does IO.
"""

from __future__ import annotations

from ..keyspace.glob import glob_match
from ..resp import encoder as enc
from ..resp.ints import parse_ll
from .ops import Ctx, Outcome, Plan, ScanPage
from .usercmds import NOT_INT, SYNTAX, command, error_of

DEPTH = 8  # hash-tree depth of a scan page's leaves (LL.RANGE depth)
LEAVES = 1 << DEPTH


def _live_keys(ctx: Ctx, o: Outcome, typ: bytes | None) -> list[bytes]:
    out = []
    for key, rec in o.items.items():
        kind = rec.view_at(ctx.now_ms)[0]
        if kind in ("string", "hash") and (typ is None or kind.encode() == typ):
            out.append(key)
    return sorted(out)


def _all_pages(ctx: Ctx) -> list[ScanPage]:
    return [ScanPage(p, 0, LEAVES, ctx.read) for p in range(ctx.partitions)]


@command("keys", 2)
def keys(ctx: Ctx, argv: list[bytes]) -> Plan:
    outs = yield list(_all_pages(ctx))
    failed = error_of(outs)
    if failed is not None:
        return failed
    pattern = argv[1]
    found = [k for o in outs for k in _live_keys(ctx, o, None) if glob_match(pattern, k)]
    return enc.bulk_array(found)


@command("dbsize", 1)
def dbsize(ctx: Ctx, argv: list[bytes]) -> Plan:
    outs = yield list(_all_pages(ctx))
    failed = error_of(outs)
    if failed is not None:
        return failed
    return enc.integer(sum(len(_live_keys(ctx, o, None)) for o in outs))


@command("scan", -2)
def scan(ctx: Ctx, argv: list[bytes]) -> Plan:
    cursor = parse_ll(argv[1])
    if cursor is None or cursor < 0 or cursor >= ctx.partitions * LEAVES:
        return enc.error("ERR invalid cursor")
    pattern: bytes | None = None
    count = 10
    typ: bytes | None = None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            return enc.error(SYNTAX)
        if opt == b"match":
            pattern = argv[i + 1]
        elif opt == b"count":
            n = parse_ll(argv[i + 1])
            if n is None:
                return enc.error(NOT_INT)
            if n < 1:
                return enc.error(SYNTAX)
            count = n
        elif opt == b"type":
            typ = argv[i + 1].lower()
        else:
            return enc.error(SYNTAX)
        i += 2
    part, lo = divmod(cursor, LEAVES)
    hi = min(LEAVES, lo + count)
    outs = yield [ScanPage(part, lo, hi, ctx.read)]
    failed = error_of(outs)
    if failed is not None:
        return failed
    found = _live_keys(ctx, outs[0], typ)
    if pattern is not None:
        found = [k for k in found if glob_match(pattern, k)]
    nxt = part * LEAVES + hi
    if hi == LEAVES:
        nxt = 0 if part + 1 >= ctx.partitions else (part + 1) * LEAVES
    return b"*2\r\n" + enc.bulk(b"%d" % nxt) + enc.bulk_array(found)
