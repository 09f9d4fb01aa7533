"""Geo commands: GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS,
GEORADIUSBYMEMBER and their _RO forms, on sorted sets scored by 52-bit geohashes.

Owns: Redis 7.2 semantics, replies and error texts of the geo family (the geometry is
``keyspace.geohash``): GEOADD is Redis's rewrite into ZADD (its reply, its ``zadd``
event, and ZADD with the computed scores as the effect); a search scans the nine cells
in Redis's order, skipping a cell equal to the one scanned just before, and stops early
only with ANY; COUNT without ASC / DESC / ANY sorts ascending; ties keep the scan order.
The STORE forms replace the destination (event ``georadiusstore`` / ``geosearchstore``,
or ``del`` for an empty result) and propagate as themselves, as Redis does. Never
touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import notify as nt
from ..engine.client import Client
from ..keyspace import geohash as gh
from ..keyspace.numbers import parse_float
from ..keyspace.zrange import ScoreRange
from ..keyspace.zset import ZSet
from ..resp import encoder as enc
from .base import SYNTAX, CommandError, arg_int, read_typed
from .table import handler
from .zsets import zadd

_BAD_MEMBER = "ERR could not decode requested zset member"


def _float(arg: bytes, msg: str = "ERR value is not a valid float") -> float:
    v = parse_float(arg)
    if v is None or v != v:
        raise CommandError(msg)
    return v


def _lonlat(lon_arg: bytes, lat_arg: bytes) -> tuple[float, float]:
    lon, lat = _float(lon_arg), _float(lat_arg)
    if not (gh.LONG_MIN <= lon <= gh.LONG_MAX and gh.LAT_MIN <= lat <= gh.LAT_MAX):
        raise CommandError(f"ERR invalid longitude,latitude pair {lon:f},{lat:f}")
    return lon, lat


def _unit(arg: bytes) -> float:
    to_m = gh.UNITS.get(arg.lower())
    if to_m is None:
        raise CommandError("ERR unsupported unit provided. please use M, KM, FT, MI")
    return to_m


def _zset(c: Client, key: bytes) -> ZSet | None:
    return read_typed(c, key, ZSet)  # type: ignore[no-any-return]


@handler("geoadd")
def geoadd(c: Client, argv: list[bytes]) -> bytes:
    i = 2
    nx = xx = False
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"nx":
            nx = True
        elif opt == b"xx":
            xx = True
        elif opt != b"ch":
            break
        i += 1
    if (len(argv) - i) % 3 or (nx and xx):
        raise CommandError(SYNTAX)
    rewritten = [b"zadd", *argv[1:i]]
    for j in range(i, len(argv), 3):
        lon, lat = _lonlat(argv[j], argv[j + 1])
        rewritten += [b"%d" % gh.score_of(lon, lat), argv[j + 2]]
    reply = zadd(c, rewritten)
    c.prop = [rewritten]  # Redis replaces the command with the ZADD it runs
    return reply


@handler("geodist")
def geodist(c: Client, argv: list[bytes]) -> bytes:
    to_m = 1.0
    if len(argv) == 5:
        to_m = _unit(argv[4])
    elif len(argv) > 5:
        raise CommandError(SYNTAX)
    z = _zset(c, argv[1])
    if z is None:
        return c.p.null
    s1, s2 = z.score(argv[2]), z.score(argv[3])
    if s1 is None or s2 is None:
        return c.p.null
    d = gh.distance(*gh.decode_score(s1), *gh.decode_score(s2))
    return enc.bulk(gh.distance_text(d / to_m))


@handler("geohash")
def geohash(c: Client, argv: list[bytes]) -> bytes:
    z = _zset(c, argv[1])
    out = []
    for m in argv[2:]:
        s = None if z is None else z.score(m)
        out.append(c.p.null if s is None else enc.bulk(gh.hash_text(s)))
    return enc.array(out)


def _coords(c: Client, lon: float, lat: float) -> bytes:
    return enc.array([c.p.double(gh.coord_text(lon)), c.p.double(gh.coord_text(lat))])


@handler("geopos")
def geopos(c: Client, argv: list[bytes]) -> bytes:
    z = _zset(c, argv[1])
    out = []
    for m in argv[2:]:
        s = None if z is None else z.score(m)
        out.append(c.p.null_array if s is None else _coords(c, *gh.decode_score(s)))
    return enc.array(out)


# -- searches ----------------------------------------------------------------------------

RADIUS_COORDS, RADIUS_MEMBER, NOSTORE, SEARCH, SEARCHSTORE = 1, 2, 4, 8, 16


@dataclass(slots=True)
class _Options:
    withdist: bool = False
    withhash: bool = False
    withcoord: bool = False
    any: bool = False
    sort: int = 0  # 0 none, 1 ASC, -1 DESC
    count: int = 0
    store: bytes | None = None
    storedist: bool = False
    center: tuple[float, float] | None = None
    from_member: bool = False
    from_loc: bool = False
    radius: tuple[float, float] | None = None  # (radius, meters per unit)
    box: tuple[float, float, float] | None = None  # (width, height, meters per unit)


def _distance_arg(arg: bytes, unit: bytes) -> tuple[float, float]:
    r = _float(arg, "ERR need numeric radius")
    if r < 0:
        raise CommandError("ERR radius cannot be negative")
    return r, _unit(unit)


def _member_center(z: ZSet, member: bytes) -> tuple[float, float]:
    s = z.score(member)
    if s is None:
        raise CommandError(_BAD_MEMBER)
    return gh.decode_score(s)


def _parse(argv: list[bytes], base: int, flags: int, z: ZSet | None, o: _Options) -> None:
    """The optional arguments from ``base`` (Redis georadiusGeneric's loop)."""
    i, n = base, len(argv)
    search = bool(flags & SEARCH)
    can_store = not flags & (NOSTORE | SEARCH)
    while i < n:
        arg = argv[i].lower()
        left = n - i - 1
        if arg in (b"withdist", b"withhash", b"withcoord", b"any"):
            setattr(o, arg.decode(), True)
        elif arg in (b"asc", b"desc"):
            o.sort = 1 if arg == b"asc" else -1
        elif arg == b"count" and left >= 1:
            o.count = arg_int(argv[i + 1])
            if o.count <= 0:
                raise CommandError("ERR COUNT must be > 0")
            i += 1
        elif arg in (b"store", b"storedist") and left >= 1 and can_store:
            o.store, o.storedist = argv[i + 1], arg == b"storedist"
            i += 1
        elif arg == b"storedist" and flags & SEARCHSTORE:
            o.storedist = True
        elif arg == b"frommember" and left >= 1 and search and not o.from_loc:
            if z is not None:
                o.center = _member_center(z, argv[i + 1])
            o.from_member = True
            i += 1
        elif arg == b"fromlonlat" and left >= 2 and search and not o.from_member:
            o.center = _lonlat(argv[i + 1], argv[i + 2])
            o.from_loc = True
            i += 2
        elif arg == b"byradius" and left >= 2 and search and o.box is None:
            o.radius = _distance_arg(argv[i + 1], argv[i + 2])
            i += 2
        elif arg == b"bybox" and left >= 3 and search and o.radius is None:
            w = _float(argv[i + 1], "ERR need numeric width")
            h = _float(argv[i + 2], "ERR need numeric height")
            if h < 0 or w < 0:
                raise CommandError("ERR height or width cannot be negative")
            o.box = (w, h, _unit(argv[i + 3]))
            i += 3
        else:
            raise CommandError(SYNTAX)
        i += 1


def _check(argv: list[bytes], flags: int, o: _Options) -> None:
    name = argv[0].decode(errors="replace")
    if (o.store is not None or o.storedist) and (o.withdist or o.withhash or o.withcoord):
        what = "GEOSEARCHSTORE" if flags & SEARCHSTORE else "STORE option in GEORADIUS"
        raise CommandError(
            f"ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )
    if flags & SEARCH and o.center is None and not o.from_member:
        raise CommandError(
            f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )
    if flags & SEARCH and o.radius is None and o.box is None:
        raise CommandError(f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if o.any and not o.count:
        raise CommandError("ERR the ANY argument requires COUNT argument")


# One match: (distance in meters, score, member, longitude, latitude).
_Hit = tuple[float, float, bytes, float, float]


def _scan(z: ZSet, shape: gh.Shape, limit: int) -> list[_Hit]:
    """The members inside ``shape``, cell by cell in Redis's order (stops at ``limit``
    matches when it is not 0)."""
    hits: list[_Hit] = []
    last: tuple[int, int] | None = None
    for i, cell in enumerate(gh.search_cells(shape)):
        if cell is None:
            continue
        if last is not None and cell == last:
            continue  # a huge radius: adjacent cells can be the same one
        if hits and limit and len(hits) >= limit:
            break
        lo, hi = gh.cell_scores(*cell)
        a, b = z.score_span(ScoreRange(float(lo), float(hi), False, True))
        for score, member, _ in z.iter_entries(a, b, False):
            lon, lat = gh.decode_score(score)
            d = shape.within(lon, lat)
            if d is not None:
                hits.append((d, score, member, lon, lat))
            if hits and limit and len(hits) >= limit:
                break
        if i:
            last = cell
    return hits


def _shape(o: _Options) -> gh.Shape:
    assert o.center is not None
    lon, lat = o.center
    if o.box is not None:
        w, h, to_m = o.box
        return gh.Shape(lon, lat, to_m, width=w, height=h, box=True)
    assert o.radius is not None
    r, to_m = o.radius
    return gh.Shape(lon, lat, to_m, radius=r)


def _search(c: Client, argv: list[bytes], src: int, flags: int) -> bytes:
    z = _zset(c, argv[src])
    o = _Options()
    if flags & RADIUS_COORDS:
        base = 6
        o.center = _lonlat(argv[2], argv[3])
        o.radius = _distance_arg(argv[4], argv[5])
    elif flags & RADIUS_MEMBER:
        base = 5
        if z is not None:
            o.center = _member_center(z, argv[2])
            o.radius = _distance_arg(argv[3], argv[4])
    else:
        base = 3 if flags & SEARCHSTORE else 2
        if flags & SEARCHSTORE:
            o.store = argv[1]
    _parse(argv, base, flags, z, o)
    _check(argv, flags, o)
    if z is None:
        return _stored(c, o.store, [], flags) if o.store is not None else enc.EMPTY_ARRAY
    if o.count and not o.sort and not o.any:
        o.sort = 1
    shape = _shape(o)
    hits = _scan(z, shape, o.count if o.any else 0)
    if o.sort:
        hits.sort(key=lambda h: h[0], reverse=o.sort < 0)
    if o.count:
        hits = hits[: o.count]
    if o.store is not None:
        rows = [(h[2], h[0] / shape.to_m if o.storedist else h[1]) for h in hits]
        return _stored(c, o.store, rows, flags)
    return _reply(c, hits, shape.to_m, o)


def _reply(c: Client, hits: list[_Hit], to_m: float, o: _Options) -> bytes:
    if not (o.withdist or o.withhash or o.withcoord):
        return enc.array([enc.bulk(h[2]) for h in hits])
    out = []
    for d, score, member, lon, lat in hits:
        item = [enc.bulk(member)]
        if o.withdist:
            item.append(enc.bulk(gh.distance_text(d / to_m)))
        if o.withhash:
            item.append(enc.integer(int(score)))
        if o.withcoord:
            item.append(_coords(c, lon, lat))
        out.append(enc.array(item))
    return enc.array(out)


def _stored(c: Client, dst: bytes, rows: list[tuple[bytes, float]], flags: int) -> bytes:
    db = c.db
    if rows:
        db.set(dst, ZSet(rows))
        event = b"geosearchstore" if flags & SEARCH else b"georadiusstore"
        c.server.notify(nt.ZSET, event, dst, db.index)
        c.server.dirty += len(rows)
    elif db.delete(dst):
        c.server.notify(nt.GENERIC, b"del", dst, db.index)
        c.server.dirty += 1
    return enc.integer(len(rows))


@handler("georadius")
def georadius(c: Client, argv: list[bytes]) -> bytes:
    return _search(c, argv, 1, RADIUS_COORDS)


@handler("georadius_ro")
def georadius_ro(c: Client, argv: list[bytes]) -> bytes:
    return _search(c, argv, 1, RADIUS_COORDS | NOSTORE)


@handler("georadiusbymember")
def georadiusbymember(c: Client, argv: list[bytes]) -> bytes:
    return _search(c, argv, 1, RADIUS_MEMBER)


@handler("georadiusbymember_ro")
def georadiusbymember_ro(c: Client, argv: list[bytes]) -> bytes:
    return _search(c, argv, 1, RADIUS_MEMBER | NOSTORE)


@handler("geosearch")
def geosearch(c: Client, argv: list[bytes]) -> bytes:
    return _search(c, argv, 1, SEARCH)


@handler("geosearchstore")
def geosearchstore(c: Client, argv: list[bytes]) -> bytes:
    return _search(c, argv, 2, SEARCH | SEARCHSTORE)
